#!/usr/bin/env python3
"""Writes the OFT fixtures Tests/Fixtures/adapters/oft_*.json from PEFT's own layer.

Run with the venv python (peft 0.21.2, torch):

    ~/.cache/qgoft/venv/bin/python scripts/reference/make_oft_fixture.py
    ~/.cache/qgoft/venv/bin/python scripts/reference/make_oft_fixture.py --check-save   # also save_pretrained on minilm

Each case wraps an nn.Linear(in 12, out 8) (seeded weight and bias) in `peft.tuners.oft.layer.Linear`
with an `OFTConfig`, sets `oft_R.weight` to seeded non-trivial values, and records, for a few
rows x and a random dy (L = sum(y * dy)): PEFT's y, dx, d oft_R.weight (autograd), the parameter
after PEFT's forward (COFT projects it in place), and the merged weight (`merge()`).
Cases: exact Cayley, Cayley-Neumann with 5 and 3 terms, COFT (exact), block sharing (exact and Neumann).
All inputs are float32 values; PEFT computes in float64 here (the layer is cast to double) so the
fixture is the float64 truth of PEFT's formulas.

`--check-save` saves a PEFT OFT model of ~/.cache/qgoft/minilm-l6 and prints its tensor names,
shapes and adapter_config.json (what qgoft's snapshot writer must match).
"""
import argparse
import json
import os
import sys
import tempfile

import torch
from torch import nn

import peft
from peft import OFTConfig
from peft.tuners.oft.layer import Linear as OFTLinear

FORMAT_VERSION = 1
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "..", "Tests", "Fixtures", "adapters"))

IN, OUT, ROWS = 12, 8, 5


def f32(t):
    return t.detach().to(torch.float32).to(torch.float64)


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def make_case(name, block_size, neumann, coft_eps, block_share, seed, scales=None):
    g = torch.Generator().manual_seed(seed)
    base = nn.Linear(IN, OUT)
    with torch.no_grad():
        base.weight.copy_(f32(torch.randn(OUT, IN, generator=g) * 0.5))
        base.bias.copy_(f32(torch.randn(OUT, generator=g) * 0.1))
    cfg = OFTConfig(
        r=0, oft_block_size=block_size, target_modules=["lin"],
        use_cayley_neumann=neumann is not None, num_cayley_neumann_terms=neumann or 5,
        coft=coft_eps is not None, eps=coft_eps if coft_eps is not None else 6e-5, block_share=block_share,
    )
    layer = OFTLinear(base, "default", config=cfg, r=0).double()
    w0 = base.weight.detach().clone()
    b0 = base.bias.detach().clone()
    rot = layer.oft_R["default"]
    shape = tuple(rot.weight.shape)
    raw = torch.randn(*shape, generator=g) * 0.3
    if scales is not None:
        raw = raw * torch.tensor(scales, dtype=raw.dtype).view(-1, 1)
    raw = f32(raw)
    with torch.no_grad():
        rot.weight.copy_(raw)
    x = f32(torch.randn(ROWS, IN, generator=g)).requires_grad_(True)
    dy = f32(torch.randn(ROWS, OUT, generator=g))
    y = layer(x)
    (y * dy).sum().backward()
    projected = rot.weight.detach().clone()
    grad = rot.weight.grad.detach().clone()
    # Merge on a copy of the layer's parameter state (merge() recomputes from the projected weight).
    layer.merge()
    merged_w = layer.get_base_layer().weight.detach().clone()
    merged_b = layer.get_base_layer().bias.detach().clone()
    layer.unmerge()

    # Self-check: the orientation (x_block R) and the transpose between the two transforms.
    with torch.no_grad():
        R = rot._cayley_batch(projected, block_size, neumann is not None, neumann or 5)
        blocks = R if not block_share else R.repeat(IN // block_size, 1, 1)
        full = torch.block_diag(*blocks)
        y_ref = (x.detach() @ full) @ w0.T + b0
        assert torch.allclose(y_ref, y.detach(), atol=1e-12), name
        assert torch.allclose(merged_w, w0 @ full.T, atol=1e-12), name

    return {
        "format_version": FORMAT_VERSION,
        "peft_version": peft.__version__,
        "method": "oft",
        "case": name,
        "in": IN, "out": OUT, "rows": ROWS,
        "block_size": block_size,
        "neumann_terms": neumann,
        "coft_eps": coft_eps,
        "block_share": block_share,
        "param_name": "oft_R.weight",
        "param_shape": list(shape),
        "weight": flat(w0), "bias": flat(b0),
        "param": flat(raw),
        "param_after_forward": flat(projected),
        "x": flat(x), "dy": flat(dy),
        "y": flat(y), "dx": flat(x.grad), "grad": flat(grad),
        "merged_weight": flat(merged_w), "merged_bias": flat(merged_b),
    }


CASES = [
    ("oft_exact_b4", dict(block_size=4, neumann=None, coft_eps=None, block_share=False, seed=1)),
    ("oft_neumann5_b4", dict(block_size=4, neumann=5, coft_eps=None, block_share=False, seed=2)),
    ("oft_neumann3_b6", dict(block_size=6, neumann=3, coft_eps=None, block_share=False, seed=3)),
    # Block 0 scaled down so it stays inside the COFT ball, blocks 1 and 2 are projected onto it.
    ("oft_coft_b4", dict(block_size=4, neumann=None, coft_eps=0.5, block_share=False, seed=4, scales=[0.05, 1.0, 2.0])),
    ("oft_share_b4", dict(block_size=4, neumann=None, coft_eps=None, block_share=True, seed=5)),
    ("oft_share_neumann5_b3", dict(block_size=3, neumann=5, coft_eps=None, block_share=True, seed=6)),
]


def check_save():
    from transformers import BertModel
    from peft import get_peft_model
    from safetensors import safe_open

    model = BertModel.from_pretrained(os.path.expanduser("~/.cache/qgoft/minilm-l6"))
    cfg = OFTConfig(r=0, oft_block_size=32, target_modules=["query", "value"], use_cayley_neumann=False)
    pm = get_peft_model(model, cfg)
    with tempfile.TemporaryDirectory() as d:
        pm.save_pretrained(d)
        with safe_open(os.path.join(d, "adapter_model.safetensors"), "pt") as f:
            for k in sorted(f.keys())[:4]:
                print(k, list(f.get_tensor(k).shape))
        print(open(os.path.join(d, "adapter_config.json")).read())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--check-save", action="store_true")
    a = ap.parse_args()
    torch.set_default_dtype(torch.float64)
    os.makedirs(a.out, exist_ok=True)
    for name, kw in CASES:
        case = make_case(name, **kw)
        with open(os.path.join(a.out, name + ".json"), "w") as f:
            json.dump(case, f)
        print("wrote", name)
    if a.check_save:
        torch.set_default_dtype(torch.float32)
        check_save()


if __name__ == "__main__":
    sys.exit(main())
