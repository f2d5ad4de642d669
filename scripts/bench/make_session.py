#!/usr/bin/env python3
"""Writes a synthetic long session folder for the workbench's memory and frame-time figures.

It takes a real session written by `qgoft train` (its session.json, and its last statistics
record as the shape of every layer's figures) and writes a new finished session of --steps
steps beside it: one step record per step (a decaying noisy loss, lambda and learning-rate
changes), an evaluation every --eval-every steps, a statistics record every --stats-every
steps (the template's record with its drifts scaled to grow over the run), and the events the
trainer writes (started, lambda / lr changes, evaluations, snapshots, finished). The result is
a real session folder: `qgoft sessions`, `qgoft inspect` and `qgoft bench --workbench` read it.

    python3 scripts/bench/make_session.py --template sessions/ID --steps 100000 --out /tmp/s
"""
import argparse
import copy
import json
import math
import os
import random
import sys


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--template", required=True, help="a session folder written by qgoft train (with a stats record)")
    p.add_argument("--out", required=True, help="sessions folder to write the new session into (created)")
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--stats-every", type=int, default=100)
    p.add_argument("--eval-every", type=int, default=1000)
    p.add_argument("--id", default=None, help="session id (default: synthetic-<steps>)")
    a = p.parse_args()
    if a.steps < 1 or a.stats_every < 1 or a.eval_every < 1:
        sys.exit("make_session.py: --steps, --stats-every and --eval-every must be at least 1")
    try:
        info = json.load(open(os.path.join(a.template, "session.json")))
    except (OSError, ValueError) as e:
        sys.exit(f"make_session.py: --template {a.template}: cannot read session.json: {e}")
    stats = None
    with open(os.path.join(a.template, "metrics.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if r.get("type") == "stats":
                stats = r
    if stats is None:
        sys.exit(f"make_session.py: --template {a.template}: metrics.jsonl has no stats record")
    sid = a.id or f"synthetic-{a.steps}"
    folder = os.path.join(a.out, sid)
    if os.path.exists(folder):
        sys.exit(f"make_session.py: {folder} exists; nothing is overwritten (remove it or pick --id)")
    os.makedirs(folder)

    rng = random.Random(7)
    steps_per_epoch = info["run"].get("stepsPerEpoch", 1000) or 1000
    t0 = 1_796_000_000.0
    lam, lr_scale = 1e-4, 1.0
    changes = {a.steps // 5: ("lambda", 2e-4), a.steps // 3: ("lr", 0.5), a.steps // 2: ("lambda", 5e-5), 4 * a.steps // 5: ("lr", 0.25)}
    events = [{"kind": "started", "message": f"started: synthetic {a.steps} steps", "step": 0, "time": t0}]
    with open(os.path.join(folder, "metrics.jsonl"), "w") as m:
        for s in range(1, a.steps + 1):
            if s in changes:
                what, v = changes[s]
                if what == "lambda":
                    events.append({"kind": "lambdaChanged", "message": f"lambda {lam:.4g} -> {v:.4g}", "step": s - 1,
                                   "time": t0 + s * 0.05, "from": lam, "to": v})
                    lam = v
                else:
                    events.append({"kind": "lrChanged", "message": f"learning rate {3e-3 * lr_scale:.4g} -> {3e-3 * v:.4g}",
                                   "step": s - 1, "time": t0 + s * 0.05, "from": 3e-3 * lr_scale, "to": 3e-3 * v})
                    lr_scale = v
            task = 0.69 * math.exp(-s / (a.steps / 4)) + 0.25 + 0.05 * rng.uniform(-1, 1)
            pen = 40 * (1 - math.exp(-s / (a.steps / 10)))
            skipped = s == a.steps // 7
            rec = {"elapsed": s * 0.05, "epoch": s / steps_per_epoch, "gradNorm": 1.5 + rng.uniform(-1, 1),
                   "lambda": lam, "loss": None if skipped else task + lam * pen, "lr": 3e-3 * lr_scale * (1 - s / (a.steps + 1)),
                   "penalty": pen, "skipped": skipped, "step": s, "taskLoss": None if skipped else task, "tokens": 2048,
                   "tokensPerSecond": 2100 + 50 * rng.uniform(-1, 1), "type": "step"}
            if skipped:
                rec["loss"] = rec["taskLoss"] = "NaN"  # the session format's non-finite numbers are strings
            m.write(json.dumps(rec, separators=(",", ":")) + "\n")
            if skipped:
                events.append({"kind": "nanSkipped", "message": f"step {s} produced a non-finite loss and was not applied (1 so far)",
                               "step": s, "time": t0 + s * 0.05})
            if s % a.eval_every == 0 or s == a.steps:
                acc = 0.6 + 0.25 * (1 - math.exp(-s / (a.steps / 5))) + 0.01 * rng.uniform(-1, 1)
                m.write(json.dumps({"samples": 1066, "seconds": 4.0, "step": s, "type": "eval", "valAccuracy": acc,
                                    "valLoss": task + 0.02}, separators=(",", ":")) + "\n")
                events.append({"kind": "evaluated", "message": f"validation accuracy {acc * 100:.2f}%", "step": s,
                               "time": t0 + s * 0.05 + 4})
            if s % a.stats_every == 0 or s == a.steps:
                g = 1 + 20 * (1 - math.exp(-s / (a.steps / 3)))
                r = copy.deepcopy(stats)
                r["step"] = s
                for l in r["layers"]:
                    st = l["stats"]
                    for k in ("matrixDrift", "blockDriftMean", "blockDriftMax", "normAdjustmentMean", "normAdjustmentMax",
                              "angleAdjustmentMean", "angleAdjustmentMax"):
                        st[k] = st[k] * g * (1 + 0.05 * rng.uniform(-1, 1))
                    st["stageDrift"] = [v * g for v in st["stageDrift"]]
                    st["binnedDrift"] = [v * g for v in st["binnedDrift"]]
                m.write(json.dumps(r, separators=(",", ":")) + "\n")
            if s % 10_000 == 0 and s < a.steps:
                path = os.path.join(folder, "snapshots", f"step-{s}")
                events.append({"kind": "snapshotSaved", "message": f"snapshot (every 10000 steps) saved to {path} in 50 ms",
                               "path": path, "step": s, "time": t0 + s * 0.05 + 5})
    events.append({"kind": "finished", "message": f"finished {a.steps} steps", "step": a.steps, "time": t0 + a.steps * 0.05 + 10})
    with open(os.path.join(folder, "events.jsonl"), "w") as e:
        for ev in events:
            e.write(json.dumps(ev, separators=(",", ":")) + "\n")
    info["id"] = sid
    info["status"] = "finished"
    info["step"] = a.steps
    info["run"]["sessionID"] = sid
    info["run"]["totalSteps"] = a.steps
    info["configuration"]["maxSteps"] = a.steps
    info["configuration"]["statsEvery"] = a.stats_every
    info["configuration"]["evalEvery"] = a.eval_every
    info["resumes"] = []
    with open(os.path.join(folder, "session.json"), "w") as f:
        json.dump(info, f, indent=2, sort_keys=True)
    size = sum(os.path.getsize(os.path.join(folder, x)) for x in os.listdir(folder) if os.path.isfile(os.path.join(folder, x)))
    print(f"{folder}: {a.steps} steps, {a.steps // a.stats_every} statistics records, {len(events)} events, {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
