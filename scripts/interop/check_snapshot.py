#!/usr/bin/env python3
"""Independent check of a qgoft snapshot against `qgoft export --merge`.

Reads a snapshot's adapter_model.safetensors (PEFT layout, see docs/sessions.md), rebuilds every
adapter's Q from its tensors following ../shared/spec/method.md (Q = diag(s) S_L ... S_1 with the
tree or butterfly pairing; qGOFT blocks [[a, b], [c, e]], GOFT rotations by pi * tanh(p)),
merges W' = W Q into the base weights read from the base model's model.safetensors, and compares
with the merged model.safetensors: every adapted weight within --tol (default 1e-5), every other
tensor and the head equal. Only numpy and safetensors are used; nothing from qgoft.

Exit status: 0 when everything matches, 1 on any mismatch, 2 on bad input, 3 if its own self-test
(the stage-wise product against a dense Q) fails.

    check_snapshot.py SNAPSHOT_DIR --merged MERGED_DIR [--base MODEL_DIR] [--tol 1e-5] [--expect-change]
"""
import argparse
import json
import os
import sys

import numpy as np
from safetensors.numpy import load_file

PREFIX = "base_model.model."


def tree_stages(d):
    """The spec's tree: stage s pairs (2*step*p, 2*step*p + step), p < count // 2."""
    stages, count, step = [], d, 1
    while count > 1:
        pairs, carry = count // 2, count % 2
        stages.append([(2 * step * p, 2 * step * p + step) for p in range(pairs)])
        step *= 2
        count = pairs + carry
    return stages


def butterfly_stages(d):
    """Stride 1, 2, 4, ...: pairs (i, i + stride) for i with i & stride == 0."""
    stages, stride = [], 1
    while stride < d:
        stages.append([(i, i + stride) for i in range(d - stride) if i & stride == 0])
        stride *= 2
    return stages


def dense_q(blocks, stages, d, scale=None):
    """Q (d x d, float64) from blocks[k] = [[a, b], [c, e]] acting as x_i' = a x_i + b x_j,
    x_j' = c x_i + e x_j; stage 1 is applied first: Q = diag(s) S_L ... S_1."""
    n = sum(len(s) for s in stages)
    if blocks.shape != (n, 2, 2):
        raise ValueError(f"{blocks.shape[0]} blocks but the layout of width {d} has {n}")
    q = np.eye(d)
    k = 0
    for stage in stages:
        s = np.eye(d)
        for i, j in stage:
            (a, b), (c, e) = blocks[k]
            s[i, i], s[i, j], s[j, i], s[j, j] = a, b, c, e
            k += 1
        q = s @ q
    if scale is not None:
        q = np.diag(scale) @ q
    return q


def times_q(w, blocks, stages, scale=None):
    """W Q without forming Q: W Q = W diag(s) S_L ... S_1, so scale the columns, then multiply by
    S_L, ..., S_1 on the right. Right-multiplying by a stage mixes column pairs:
    (M S)[:, i] = a M[:, i] + c M[:, j] and (M S)[:, j] = b M[:, i] + e M[:, j]."""
    m = w.copy()
    if scale is not None:
        m = m * scale[None, :]
    starts = np.cumsum([0] + [len(s) for s in stages])
    if blocks.shape != (starts[-1], 2, 2):
        raise ValueError(f"{blocks.shape[0]} blocks but the layout of width {w.shape[1]} has {starts[-1]}")
    for st in reversed(range(len(stages))):
        ij = np.array(stages[st])
        i, j = ij[:, 0], ij[:, 1]
        b = blocks[starts[st]:starts[st + 1]]
        mi, mj = m[:, i].copy(), m[:, j].copy()
        m[:, i] = mi * b[:, 0, 0] + mj * b[:, 1, 0]
        m[:, j] = mi * b[:, 0, 1] + mj * b[:, 1, 1]
    return m


def self_test():
    """times_q against the dense Q of the spec on small random cases, both layouts."""
    rng = np.random.default_rng(0)
    for d in (1, 2, 3, 7, 8, 13):
        for stages in (tree_stages(d), butterfly_stages(d)):
            n = sum(len(s) for s in stages)
            blocks = rng.normal(size=(n, 2, 2))
            scale = rng.normal(size=d)
            w = rng.normal(size=(5, d))
            if not np.allclose(times_q(w, blocks, stages, scale), w @ dense_q(blocks, stages, d, scale), atol=1e-12):
                fail(f"self-test failed at d={d}", 3)
    if tree_stages(384) and [len(s) for s in tree_stages(384)] != [192, 96, 48, 24, 12, 6, 3, 1, 1]:
        fail("self-test: the tree of d=384 does not have the spec's stages", 3)


def goft_blocks(raw):
    """GOFT: theta = pi * tanh(p); the block is the rotation [[cos, -sin], [sin, cos]]."""
    theta = np.pi * np.tanh(raw.astype(np.float64))
    c, s = np.cos(theta), np.sin(theta)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def fail(msg, code=2):
    print(f"check_snapshot: {msg}", file=sys.stderr)
    sys.exit(code)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("snapshot", help="snapshot folder (adapter_model.safetensors, qgoft_snapshot.json) or an exported adapter folder")
    ap.add_argument("--merged", required=True, help="folder written by `qgoft export --merge`")
    ap.add_argument("--base", help="base model folder (default: base_model.path of qgoft_snapshot.json)")
    ap.add_argument("--tol", type=float, default=1e-5, help="largest allowed |W Q (here) - W' (merged)|")
    ap.add_argument("--expect-change", action="store_true", help="also fail when no adapter moves its weight (a vacuous check)")
    args = ap.parse_args()
    self_test()

    for f in ("adapter_model.safetensors", "qgoft_snapshot.json", "adapter_config.json"):
        if not os.path.exists(os.path.join(args.snapshot, f)):
            fail(f"{os.path.join(args.snapshot, f)}: missing")
    with open(os.path.join(args.snapshot, "qgoft_snapshot.json")) as fh:
        side = json.load(fh)
    with open(os.path.join(args.snapshot, "adapter_config.json")) as fh:
        config = json.load(fh)
    base_dir = args.base or side["base_model"]["path"]
    adapter = load_file(os.path.join(args.snapshot, "adapter_model.safetensors"))
    base = load_file(os.path.join(base_dir, "model.safetensors"))
    merged = load_file(os.path.join(args.merged, "model.safetensors"))

    layout = side["layout"]
    stages_of = {"tree": tree_stages, "butterfly": butterfly_stages}.get(layout)
    if stages_of is None:
        fail(f"unknown layout {layout!r} in qgoft_snapshot.json")
    peft_type = config["peft_type"]
    if peft_type not in ("QGOFT", "GOFT"):
        fail(f"adapter_config.json: peft_type {peft_type!r} is not QGOFT or GOFT")

    # Group the adapter tensors by module.
    modules = {}
    for name, t in adapter.items():
        if not name.startswith(PREFIX):
            fail(f"tensor {name!r} does not start with {PREFIX!r}")
        module, _, tensor = name[len(PREFIX):].rpartition(".")
        modules.setdefault(module, {})[tensor] = t
    head = modules.pop("classifier", None)
    if sorted(modules) != sorted(config["target_modules"]):
        fail("adapter_config.json target_modules do not match the tensors in adapter_model.safetensors")

    worst, moved, bad = 0.0, 0.0, []
    for module in sorted(modules):
        t = modules[module]
        w = base[module + ".weight"].astype(np.float64)
        d = w.shape[1]
        stages = stages_of(d)
        if peft_type == "QGOFT":
            want = times_q(w, t["givens_soft"].astype(np.float64), stages)  # W' = W Q
        else:
            scale = t.get("givens_scaler")
            want = times_q(w, goft_blocks(t["givens_hard"]), stages, None if scale is None else scale.astype(np.float64))
        got = merged[module + ".weight"].astype(np.float64)
        diff = float(np.max(np.abs(got - want)))
        worst = max(worst, diff)
        moved = max(moved, float(np.max(np.abs(want - w))))
        if diff > args.tol:
            bad.append(f"{module}.weight: max |diff| {diff:.3e} > {args.tol:g}")

    # Everything else is the base model unchanged, plus the head.
    # qgoft's merged export leaves out what its model does not use: the position_ids buffer and
    # the pooler (the head reads mean pooling, not the pooled [CLS]).
    adapted = {m + ".weight" for m in modules}
    unused = [n for n in base if n == "embeddings.position_ids" or n.startswith("pooler.")]
    for name, t in base.items():
        if name in adapted or (name in unused and name not in merged):
            continue
        if name not in merged:
            bad.append(f"{name}: missing from the merged model")
        elif merged[name].shape != t.shape or not np.array_equal(merged[name], t.astype(merged[name].dtype)):
            bad.append(f"{name}: differs from the base model")
    if head is not None:
        for k in ("weight", "bias"):
            if not np.array_equal(merged.get("classifier." + k), head[k]):
                bad.append(f"classifier.{k}: differs from base_model.model.classifier.{k} of the snapshot")

    print(f"check_snapshot: {peft_type} ({layout}), {len(modules)} adapted layers, step {side['step']}: "
          f"max |W Q - W'| = {worst:.3e} (tolerance {args.tol:g}); the adapters move W by up to {moved:.3e}")
    if args.expect_change and moved == 0.0:
        bad.append("no adapter changes its weight: the check would be vacuous (train a few steps first)")
    if unused:
        print(f"check_snapshot: not compared (unused by the model, left out of the export): {', '.join(sorted(unused))}")
    for b in bad:
        print("MISMATCH " + b, file=sys.stderr)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
