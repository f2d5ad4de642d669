#!/usr/bin/env python3
"""Writes the LoRA fixtures Tests/Fixtures/adapters/lora_*.json from PEFT's own LoRA layer.

For each case, a tiny torch module holding one nn.Linear(12, 8) ("lin") is wrapped by PEFT
(`LoraConfig(r, lora_alpha, use_rslora, target_modules=["lin"])`), its `lora_A` / `lora_B` are set
to seeded non-trivial values (B is zero at PEFT's init, which would hide half the layer), and
PEFT's forward, autograd backward of L = sum(y * dy) and `merge()` give the expected values.
Everything runs in float64 on inputs and parameters rounded to float32, so the Swift side (Float)
holds exactly the values PEFT used. The tensor names are the keys PEFT's
`get_peft_model_state_dict` gives (as `save_pretrained` writes them, without the module path).

Run with the venv that has PEFT 0.21 (`~/.cache/qgoft/venv/bin/python`):

    ~/.cache/qgoft/venv/bin/python scripts/reference/make_lora_fixture.py
"""
import argparse
import json
import os

import numpy as np
import peft
import torch
from peft import LoraConfig, get_peft_model, get_peft_model_state_dict

FORMAT_VERSION = 1
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "..", "Tests", "Fixtures", "adapters"))
IN, OUT, ROWS = 12, 8, 5
CASES = [  # (name, rank, alpha, rslora, seed)
    ("lora_r3_a16", 3, 16.0, False, 1),
    ("lora_r4_a6_rslora", 4, 6.0, True, 2),
]


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(IN, OUT)

    def forward(self, x):
        return self.lin(x)


def f32(rng, shape, scale=1.0):
    return torch.tensor(np.float32(rng.standard_normal(shape) * scale), dtype=torch.float64)


def flat(t):
    return [float(v) for v in t.detach().double().flatten().tolist()]


def case(name, rank, alpha, rslora, seed):
    rng = np.random.default_rng(seed)
    base = Tiny().double()
    with torch.no_grad():
        base.lin.weight.copy_(f32(rng, (OUT, IN), 0.5))
        base.lin.bias.copy_(f32(rng, (OUT,), 0.2))
    weight, bias = base.lin.weight.detach().clone(), base.lin.bias.detach().clone()
    model = get_peft_model(base, LoraConfig(r=rank, lora_alpha=alpha, use_rslora=rslora, target_modules=["lin"], lora_dropout=0.0))
    layer = model.base_model.model.lin
    a, b = layer.lora_A["default"].weight, layer.lora_B["default"].weight
    assert tuple(a.shape) == (rank, IN) and tuple(b.shape) == (OUT, rank)
    assert float(b.detach().abs().max()) == 0.0, "PEFT's B starts at zero"
    with torch.no_grad():
        a.copy_(f32(rng, (rank, IN), 0.4))
        b.copy_(f32(rng, (OUT, rank), 0.4))
    x = f32(rng, (ROWS, IN)).requires_grad_(True)
    dy = f32(rng, (ROWS, OUT))
    y = model(x)
    (y * dy).sum().backward()
    names = sorted(get_peft_model_state_dict(model).keys())
    prefix = "base_model.model.lin."
    assert all(n.startswith(prefix) for n in names), names
    names = [n[len(prefix):] for n in names]
    assert names == ["lora_A.weight", "lora_B.weight"], names
    scaling = layer.scaling["default"]
    with torch.no_grad():
        # Independent check of PEFT's forward: x W^T + b + s x A^T B^T.
        want = x @ weight.T + bias + scaling * (x @ a.T) @ b.T
        assert torch.allclose(y, want, atol=1e-12), "PEFT's LoRA forward is not x W^T + b + s x A^T B^T"
    grads = {"lora_A.weight": flat(a.grad), "lora_B.weight": flat(b.grad)}
    dx = flat(x.grad)
    layer.merge()
    with torch.no_grad():
        merged_w, merged_b = layer.base_layer.weight.detach().clone(), layer.base_layer.bias.detach().clone()
        assert torch.allclose(x @ merged_w.T + merged_b, y, atol=1e-12), "merged layer differs"
    return {
        "format_version": FORMAT_VERSION,
        "method": "lora",
        "peft_version": peft.__version__,
        "in_width": IN,
        "out_width": OUT,
        "rows": ROWS,
        "rank": rank,
        "alpha": alpha,
        "use_rslora": rslora,
        "scaling": float(scaling),
        "weight": flat(weight),
        "bias": flat(bias),
        "params": {"lora_A.weight": flat(a), "lora_B.weight": flat(b)},
        "x": flat(x),
        "dy": flat(dy),
        "y": flat(y),
        "dx": dx,
        "grads": grads,
        "merged_weight": flat(merged_w),
        "merged_bias": flat(merged_b),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    for name, rank, alpha, rslora, seed in CASES:
        out = case(name, rank, alpha, rslora, seed)
        path = os.path.join(args.out, name + ".json")
        with open(path, "w") as f:
            f.write("{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in out.items()) + "\n}\n")
        print("wrote", path)


if __name__ == "__main__":
    main()
