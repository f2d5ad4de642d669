#!/usr/bin/env python3
"""Writes the RoAd fixtures Tests/Fixtures/adapters/road_*.json from PEFT's own RoAd layer.

For each case, a tiny torch module holding one nn.Linear(12, OUT) ("lin") is wrapped by PEFT
(`RoadConfig(variant, group_size, target_modules=["lin"])`), its `road_theta` / `road_alpha` are
set to seeded values away from the identity (theta 0, alpha 1 at init), and PEFT's forward
(`_apply_road` on the base output), autograd backward of L = sum(y * dy) and `merge()` (R W and
R b) give the expected values. The group sizes are below PEFT's default 64 so that a small layer
has several groups (the Swift adapter takes the group size; qgoft's runs use 64). Everything runs
in float64 on inputs and parameters rounded to float32. The tensor names are the keys PEFT's
`get_peft_model_state_dict` gives, without the module path.

    ~/.cache/qgoft/venv/bin/python scripts/reference/make_road_fixture.py
"""
import argparse
import json
import os

import numpy as np
import peft
import torch
from peft import RoadConfig, get_peft_model, get_peft_model_state_dict

FORMAT_VERSION = 1
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "..", "Tests", "Fixtures", "adapters"))
IN, ROWS = 12, 5
CASES = [  # (name, variant, out width, group size, seed)
    ("road_1_o8_g4", "road_1", 8, 4, 1),
    ("road_2_o16_g8", "road_2", 16, 8, 2),
    ("road_4_o8_g4", "road_4", 8, 4, 3),
]


class Tiny(torch.nn.Module):
    def __init__(self, out):
        super().__init__()
        self.lin = torch.nn.Linear(IN, out)

    def forward(self, x):
        return self.lin(x)


def f32(rng, shape, scale=1.0, offset=0.0):
    return torch.tensor(np.float32(offset + rng.standard_normal(shape) * scale), dtype=torch.float64)


def flat(t):
    return [float(v) for v in t.detach().double().flatten().tolist()]


def case(name, variant, out, group, seed):
    rng = np.random.default_rng(seed)
    base = Tiny(out).double()
    with torch.no_grad():
        base.lin.weight.copy_(f32(rng, (out, IN), 0.5))
        base.lin.bias.copy_(f32(rng, (out,), 0.2))
    weight, bias = base.lin.weight.detach().clone(), base.lin.bias.detach().clone()
    model = get_peft_model(base, RoadConfig(variant=variant, group_size=group, target_modules=["lin"]))
    layer = model.base_model.model.lin
    theta, alpha = layer.road_theta["default"], layer.road_alpha["default"]
    n = {"road_1": out // 2, "road_2": out, "road_4": 2 * out}[variant]
    assert tuple(theta.shape) == (n,) and tuple(alpha.shape) == (n,)
    assert float(theta.detach().abs().max()) == 0.0 and float((alpha.detach() - 1).abs().max()) == 0.0, "identity init"
    with torch.no_grad():
        theta.copy_(f32(rng, (n,), 0.6))
        alpha.copy_(f32(rng, (n,), 0.3, 1.0))
    x = f32(rng, (ROWS, IN)).requires_grad_(True)
    dy = f32(rng, (ROWS, out))
    y = model(x)
    (y * dy).sum().backward()
    names = sorted(get_peft_model_state_dict(model).keys())
    prefix = "base_model.model.lin."
    assert all(k.startswith(prefix) for k in names), names
    names = [k[len(prefix):] for k in names]
    assert names == ["road_alpha", "road_theta"], names
    grads = {"road_theta": flat(theta.grad), "road_alpha": flat(alpha.grad)}
    dx = flat(x.grad)
    layer.merge()
    with torch.no_grad():
        merged_w, merged_b = layer.base_layer.weight.detach().clone(), layer.base_layer.bias.detach().clone()
        assert torch.allclose(x @ merged_w.T + merged_b, y, atol=1e-12), "merged layer differs"
    return {
        "format_version": FORMAT_VERSION,
        "method": "road",
        "peft_version": peft.__version__,
        "variant": variant,
        "group_size": group,
        "in_width": IN,
        "out_width": out,
        "rows": ROWS,
        "weight": flat(weight),
        "bias": flat(bias),
        "params": {"road_theta": flat(theta), "road_alpha": flat(alpha)},
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
    for name, variant, out, group, seed in CASES:
        res = case(name, variant, out, group, seed)
        path = os.path.join(args.out, name + ".json")
        with open(path, "w") as f:
            f.write("{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in res.items()) + "\n}\n")
        print("wrote", path)


if __name__ == "__main__":
    main()
