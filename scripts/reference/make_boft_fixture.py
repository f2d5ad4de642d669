#!/usr/bin/env python3
"""Writes the BOFT fixtures Tests/Fixtures/adapters/boft_*.json from PEFT's own layer.

Run with the venv python (peft 0.21.2, torch):

    ~/.cache/qgoft/venv/bin/python scripts/reference/make_boft_fixture.py
    ~/.cache/qgoft/venv/bin/python scripts/reference/make_boft_fixture.py --check-save   # also save_pretrained on minilm

Each case wraps an nn.Linear(in 16, out 8) (seeded weight and bias) in `peft.tuners.boft.layer.Linear`
with a `BOFTConfig`, sets `boft_R` and `boft_s` to seeded non-trivial values, and records for a few
rows x and a random dy (L = sum(y * dy)): PEFT's y, dx, d boft_R, d boft_s (autograd), the
permutations PEFT builds (`boft_P` as index arrays) and the merged weight and bias (`merge()`).

PEFT without its CUDA extension (`fbd_cuda`, compiled at first use with nvcc and ninja) silently
sets `boft_n_butterfly_factor` to 1. To get PEFT's m = 2 and m = 3 semantics on a CPU, this script
installs a pure-torch stand-in for the extension's two functions (block-diagonal assembly and its
backward) before building the layer; everything else is PEFT's code. Computed in float64.
"""
import argparse
import json
import os
import sys
import tempfile

import torch
from torch import nn

import peft
import peft.tuners.boft.layer as boft_layer
from peft import BOFTConfig

FORMAT_VERSION = 1
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "..", "Tests", "Fixtures", "adapters"))

IN, OUT, ROWS = 16, 8, 5


class TorchBlockDiag:
    """What fbd_cuda computes: (N, D, H, H) -> [(N, D H, D H)] block-diagonal, and its backward."""

    @staticmethod
    def forward(x):
        return [torch.stack([torch.block_diag(*torch.unbind(x[n])) for n in range(x.shape[0])])]

    @staticmethod
    def backward(grad, x):
        N, D, H, _ = x.shape
        g = torch.stack([torch.stack([grad[n, d * H:(d + 1) * H, d * H:(d + 1) * H] for d in range(D)]) for n in range(N)])
        return [g]


def f32(t):
    return t.detach().to(torch.float32).to(torch.float64)


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def make_case(name, block_size, factors, seed):
    g = torch.Generator().manual_seed(seed)
    base = nn.Linear(IN, OUT)
    with torch.no_grad():
        base.weight.copy_(f32(torch.randn(OUT, IN, generator=g) * 0.5))
        base.bias.copy_(f32(torch.randn(OUT, generator=g) * 0.1))
    w0, b0 = base.weight.detach().clone(), base.bias.detach().clone()
    cfg = BOFTConfig(boft_block_size=block_size, boft_block_num=0, boft_n_butterfly_factor=factors, target_modules=["lin"])
    layer = boft_layer.Linear(base, "default", config=cfg).double()
    R = layer.boft_R["default"]
    S = layer.boft_s["default"]
    assert tuple(R.shape) == (factors, IN // block_size, block_size, block_size), R.shape
    with torch.no_grad():
        R.copy_(f32(torch.randn(*R.shape, generator=g) * 0.3))
        S.copy_(f32(1 + 0.2 * torch.randn(*S.shape, generator=g)))
    x = f32(torch.randn(ROWS, IN, generator=g)).requires_grad_(True)
    dy = f32(torch.randn(ROWS, OUT, generator=g))
    y = layer(x)
    (y * dy).sum().backward()
    perms = [[int(P[k].argmax()) for k in range(IN)] for P in layer.boft_P]
    layer.merge()
    merged_w = layer.get_base_layer().weight.detach().clone()
    merged_b = layer.get_base_layer().bias.detach().clone()
    with torch.no_grad():
        y_merged = x.detach() @ merged_w.T + merged_b
        assert torch.allclose(y_merged, y.detach(), atol=1e-12), name
    return {
        "format_version": FORMAT_VERSION,
        "peft_version": peft.__version__,
        "method": "boft",
        "case": name,
        "in": IN, "out": OUT, "rows": ROWS,
        "block_size": block_size, "factors": factors,
        "permutations": perms,
        "weight": flat(w0), "bias": flat(b0),
        "boft_R": flat(R), "boft_R_shape": list(R.shape), "boft_s": flat(S), "boft_s_shape": list(S.shape),
        "x": flat(x), "dy": flat(dy), "y": flat(y), "dx": flat(x.grad),
        "grad_boft_R": flat(R.grad), "grad_boft_s": flat(S.grad),
        "merged_weight": flat(merged_w), "merged_bias": flat(merged_b),
    }


CASES = [
    ("boft_m1_b4", dict(block_size=4, factors=1, seed=1)),
    ("boft_m2_b4", dict(block_size=4, factors=2, seed=2)),
    ("boft_m3_b2", dict(block_size=2, factors=3, seed=3)),
]


def check_save():
    from transformers import BertModel
    from peft import get_peft_model
    from safetensors import safe_open

    model = BertModel.from_pretrained(os.path.expanduser("~/.cache/qgoft/minilm-l6"))
    pm = get_peft_model(model, BOFTConfig(boft_block_size=4, boft_n_butterfly_factor=1, target_modules=["query"]))
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
    if a.check_save:
        check_save()  # PEFT's own path (no stand-in): factor 1 only on a CPU
    boft_layer._FBD_CUDA = TorchBlockDiag
    torch.set_default_dtype(torch.float64)
    os.makedirs(a.out, exist_ok=True)
    for name, kw in CASES:
        case = make_case(name, **kw)
        with open(os.path.join(a.out, name + ".json"), "w") as f:
            json.dump(case, f)
        print("wrote", name, "perms", case["permutations"])


if __name__ == "__main__":
    sys.exit(main())
