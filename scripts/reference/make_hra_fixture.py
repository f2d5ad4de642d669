#!/usr/bin/env python3
"""PEFT's own HRA layer on a small nn.Linear, written as fixtures for the Swift HRA adapter.

Run with the venv python (peft, torch):  ~/.cache/qgoft/venv/bin/python scripts/reference/make_hra_fixture.py

Each case builds `peft.tuners.hra.layer.HRALinear` (apply_GS false) around a seeded nn.Linear,
sets `hra_u` [in, r] to seeded non-paired values (so the product of reflections is far from the
identity), and records, in float64 from float32 inputs:
  x [rows, in], dy [rows, out]; PEFT's forward y = layer(x) [rows, out]; by autograd of
  L = sum(y * dy): dx [rows, in] and d hra_u [in, r]; the merged weight after `layer.merge()`
  [out, in] (bias unchanged); the HRA paper's orthogonality regulariser
  ||U^T U - I||_F^2 on the column-normalised U (PEFT computes none in the layer; arXiv 2405.17484,
  and PEFT's HRA docs: "an orthogonality regularizer of the HR planes is added to the loss") and
  its gradient with respect to hra_u, by autograd.
Also one case at PEFT's initialisation (init_weights true: pairs of equal columns), whose y must
equal the frozen layer's.
"""
import json
import os
import sys

import torch
from torch import nn

from peft import HRAConfig
from peft.tuners.hra.layer import HRALinear

FORMAT_VERSION = 1
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "Fixtures", "adapters")


def f32(t):
    """Inputs: float32 values (exact in Swift)."""
    return [float(v) for v in t.detach().to(torch.float32).reshape(-1).tolist()]


def f64(t):
    """Outputs: PEFT's float64 results."""
    return [float(v) for v in t.detach().double().reshape(-1).tolist()]


def case(name, d_in, d_out, r, rows, seed, paired_init):
    g = torch.Generator().manual_seed(seed)
    base = nn.Linear(d_in, d_out)
    with torch.no_grad():
        base.weight.copy_(torch.randn(d_out, d_in, generator=g) * 0.5)
        base.bias.copy_(torch.randn(d_out, generator=g) * 0.1)
    cfg = HRAConfig(r=r, apply_GS=False, init_weights=paired_init, target_modules=["x"])
    torch.manual_seed(seed)
    layer = HRALinear(base, "default", config=cfg, r=r)
    if not paired_init:
        with torch.no_grad():
            layer.hra_u["default"].copy_(torch.randn(d_in, r, generator=g))
    # float32 values throughout, so Swift holds the inputs exactly; the outputs in float64
    layer = layer.double()
    u = layer.hra_u["default"]
    x = torch.randn(rows, d_in, generator=g).to(torch.float32).double().requires_grad_(True)
    dy = torch.randn(rows, d_out, generator=g).to(torch.float32).double()
    with torch.no_grad():
        u.copy_(u.to(torch.float32).double())
        base.weight.copy_(base.weight.to(torch.float32).double())
        base.bias.copy_(base.bias.to(torch.float32).double())
    y = layer(x)
    (y * dy).sum().backward()
    dx = x.grad.clone()
    du = u.grad.clone()
    u.grad = None
    un = u / u.norm(dim=0)
    pen = ((un.t() @ un - torch.eye(r, dtype=u.dtype)) ** 2).sum()
    pen.backward()
    dpen = u.grad.clone()
    with torch.no_grad():
        frozen = base(x)
        w0 = base.weight.clone()
        layer.merge()
        merged = layer.get_base_layer().weight.clone()
    doc = {
        "format_version": FORMAT_VERSION, "method": "hra", "peft_version": __import__("peft").__version__,
        "in": d_in, "out": d_out, "r": r, "rows": rows, "paired_init": paired_init,
        "weight": f32(w0), "bias": f32(base.bias), "hra_u": f32(u),
        "x": f32(x), "dy": f32(dy), "y": f64(y), "frozen_y": f64(frozen), "dx": f64(dx), "grad_hra_u": f64(du),
        "merged_weight": f64(merged), "penalty": pen.item(), "penalty_grad": f64(dpen),
    }
    path = os.path.join(OUT_DIR, name)
    with open(path, "w") as fh:
        json.dump(doc, fh)
        fh.write("\n")
    print(f"wrote {path}: y max {y.abs().max().item():.3f}, |y - frozen| max {(y - frozen).abs().max().item():.3g}, penalty {float(pen):.4f}")


if __name__ == "__main__":
    torch.set_default_dtype(torch.float32)
    case("hra_in12_out8_r4.json", 12, 8, 4, 5, 1, False)
    case("hra_in12_out8_r6.json", 12, 8, 6, 5, 2, False)
    case("hra_in12_out8_r4_init.json", 12, 8, 4, 3, 3, True)
    sys.exit(0)
