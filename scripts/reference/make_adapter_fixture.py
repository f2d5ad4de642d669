#!/usr/bin/env python3
"""Writes the Givens adapter fixtures Tests/Fixtures/adapters/*.json (numpy only, float64).

An independent reference for the Swift adapters (Sources/QGOFTCore/Adapters): the layouts are
built from the spec's pseudocode (shared/spec/method.md, "GOFT: d - 1 Givens rotations in a tree")
and from the butterfly definition in GivensLayout.swift's doc comment; the adapter is evaluated
with dense d x d stage matrices, Q = diag(s) S_L ... S_1, and the gradients come from matrix
calculus on those dense stages (not from the per-pair kernel the Swift code uses):

    rows as row vectors: y = x S_1^T ... S_L^T D,  D = diag(s)
    X_t  = x S_1^T ... S_{t-1}^T                 (input of stage t)
    G_t  = dy D S_L ... S_{t+1}                  (gradient at the output of stage t)
    dS_t = G_t^T X_t,  dB_k = dS_t[[i, j]][:, [i, j]],  dx = dy Q,  ds = sum_rows dy * z

GOFT: a = cos t, b = -sin t, c = sin t, e = cos t with t = pi tanh(p); dp by the chain rule.
Every case is checked against central finite differences of L = sum(y * dy) in float64 before it
is written (the script stops if they disagree).

Inputs and parameters are drawn in float64 and rounded to float32, so the Swift side (Float)
holds exactly the values the reference used. Regenerate with:

    python3 scripts/reference/make_adapter_fixture.py            # writes Tests/Fixtures/adapters
"""
import argparse
import json
import math
import os

import numpy as np

FORMAT_VERSION = 1
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "..", "Tests", "Fixtures", "adapters"))


def tree_layout(d):
    """The spec's pseudocode: list of stages, each a list of (i, j)."""
    stages = []
    count, step = d, 1
    while count > 1:
        pairs, carry = count // 2, count % 2
        stages.append([(2 * step * p, 2 * step * p + step) for p in range(pairs)])
        step *= 2
        count = pairs + carry
    return stages


def butterfly_layout(d):
    """Stage t = 0 .. ceil(log2 d) - 1, stride s = 2^t: pairs (i, i + s), (i & s) == 0, i + s < d."""
    stages = []
    s = 1
    while s < d:
        stages.append([(i, i + s) for i in range(d) if (i & s) == 0 and i + s < d])
        s *= 2
    return stages


def stage_matrix(d, pairs, blocks):
    """Dense S for one stage; blocks[p] = [[a, b], [c, e]] acts on (x_i, x_j)."""
    S = np.eye(d)
    for (i, j), B in zip(pairs, blocks):
        S[i, i], S[i, j] = B[0, 0], B[0, 1]
        S[j, i], S[j, j] = B[1, 0], B[1, 1]
    return S


def split_blocks(stages, B):
    out, k = [], 0
    for st in stages:
        out.append(B[k:k + len(st)])
        k += len(st)
    return out


def dense_forward_backward(stages, B, s, x, dy):
    d = x.shape[1]
    per_stage = split_blocks(stages, B)
    mats = [stage_matrix(d, st, bl) for st, bl in zip(stages, per_stage)]
    D = np.diag(s) if s is not None else np.eye(d)
    # Stage inputs X_t (rows).
    X = [x]
    for S in mats:
        X.append(X[-1] @ S.T)
    z = X[-1]
    y = z @ D
    # Gradients at stage outputs, last stage first.
    G = [None] * len(mats)
    g = dy @ D
    for t in range(len(mats) - 1, -1, -1):
        G[t] = g
        g = g @ mats[t]
    dx = g
    dB = []
    for t, st in enumerate(stages):
        dS = G[t].T @ X[t]
        for (i, j) in st:
            dB.append(np.array([[dS[i, i], dS[i, j]], [dS[j, i], dS[j, j]]]))
    dB = np.array(dB).reshape(-1, 2, 2)
    ds = (dy * z).sum(0) if s is not None else None
    return y, dx, dB, ds


def goft_blocks(p):
    t = math.pi * np.tanh(p)
    c, sn = np.cos(t), np.sin(t)
    return np.stack([np.stack([c, -sn], -1), np.stack([sn, c], -1)], -2)


def goft_dp(p, dB):
    t = np.tanh(p)
    th = math.pi * t
    c, sn = np.cos(th), np.sin(th)
    dth = -sn * dB[:, 0, 0] - c * dB[:, 0, 1] + c * dB[:, 1, 0] - sn * dB[:, 1, 1]
    return dth * math.pi * (1 - t * t)


def penalty(B):
    a, b, c, e = B[:, 0, 0], B[:, 0, 1], B[:, 1, 0], B[:, 1, 1]
    m00, m11, m01 = a * a + c * c - 1, b * b + e * e - 1, a * b + c * e
    val = float((m00 * m00 + m11 * m11 + 2 * m01 * m01).sum())
    g = np.stack([4 * (a * m00 + b * m01), 4 * (b * m11 + a * m01),
                  4 * (c * m00 + e * m01), 4 * (e * m11 + c * m01)], -1).reshape(-1, 2, 2)
    return val, g


def f32(a):
    return np.asarray(a, dtype=np.float64).astype(np.float32).astype(np.float64)


def fd_check(loss, theta, analytic, name, h=1e-6, tol=1e-7):
    flat = theta.reshape(-1)
    num = np.zeros_like(flat)
    for q in range(flat.size):
        old = flat[q]
        flat[q] = old + h
        lp = loss()
        flat[q] = old - h
        lm = loss()
        flat[q] = old
        num[q] = (lp - lm) / (2 * h)
    err = np.abs(num - analytic.reshape(-1)).max() / max(1.0, np.abs(num).max())
    if err > tol:
        raise SystemExit(f"finite-difference check failed for {name}: rel err {err:.3e}")
    return err


def make_case(method, layout, d, rows, scaling, seed):
    rng = np.random.default_rng(seed)
    stages = tree_layout(d) if layout == "tree" else butterfly_layout(d)
    P = sum(len(st) for st in stages)
    x = f32(rng.standard_normal((rows, d)))
    dy = f32(rng.standard_normal((rows, d)))
    s = f32(1 + 0.2 * rng.standard_normal(d)) if scaling else None
    if method == "qgoft":
        theta = f32(np.eye(2) + 0.4 * rng.standard_normal((P, 2, 2)))
        blocks = lambda: theta
    else:
        theta = f32(0.6 * rng.standard_normal(P))
        blocks = lambda: goft_blocks(theta)

    y, dx, dB, ds = dense_forward_backward(stages, blocks(), s, x, dy)
    grads = {}
    if method == "qgoft":
        grads["givens_soft"] = dB
    else:
        grads["givens_hard"] = goft_dp(theta, dB)
        if scaling:
            grads["givens_scaler"] = ds

    # Self-check: L = sum(y * dy), central differences in float64.
    loss = lambda: float((dense_forward_backward(stages, blocks(), s, x, dy)[0] * dy).sum())
    errs = {}
    pname = "givens_soft" if method == "qgoft" else "givens_hard"
    errs[pname] = fd_check(loss, theta, grads[pname], pname)
    errs["x"] = fd_check(loss, x, dx, "x")
    if scaling:
        errs["givens_scaler"] = fd_check(loss, s, ds, "givens_scaler")
    out = {
        "format_version": FORMAT_VERSION,
        "generator": "scripts/reference/make_adapter_fixture.py",
        "method": method, "layout": layout, "width": d, "rows": rows, "scaling": scaling, "seed": seed,
        "stage_sizes": [len(st) for st in stages],
        "pairs": [[i, j] for st in stages for (i, j) in st],
        "params": {pname: theta.reshape(-1).tolist()},
        "x": x.reshape(-1).tolist(), "dy": dy.reshape(-1).tolist(),
        "y": y.reshape(-1).tolist(), "dx": dx.reshape(-1).tolist(),
        "grads": {k: v.reshape(-1).tolist() for k, v in grads.items()},
    }
    if scaling:
        out["params"]["givens_scaler"] = s.tolist()
    if method == "qgoft":
        val, g = penalty(theta)
        out["penalty"] = val
        out["penalty_grad"] = g.reshape(-1).tolist()
        fd_check(lambda: penalty(theta)[0], theta, g, "penalty")
    else:
        out["penalty"] = 0.0
    return out, errs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    cases = []
    seed = 1000
    for method in ("qgoft", "goft"):
        for layout in ("tree", "butterfly"):
            for d in (7, 12):
                # GOFT: without scaling at d = 7, with it at d = 12.
                scaling = method == "goft" and d == 12
                cases.append((method, layout, d, 11, scaling, seed))
                seed += 1
    for method, layout, d, rows, scaling, seed in cases:
        out, errs = make_case(method, layout, d, rows, scaling, seed)
        name = f"{method}_{layout}_d{d}.json"
        with open(os.path.join(args.out, name), "w") as f:
            # One key per line, arrays on one line: small diffs when regenerated.
            f.write("{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in out.items()) + "\n}\n")
        print(f"{name}: stages {out['stage_sizes']} fd-rel-err " +
              " ".join(f"{k}={v:.1e}" for k, v in errs.items()))


if __name__ == "__main__":
    main()
