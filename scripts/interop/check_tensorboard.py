#!/usr/bin/env python3
"""Independent check of `qgoft export --tensorboard` (and `--scalars`) against a session folder.

Reads the session's own files (session.json, metrics.jsonl, events.jsonl; the resume rule of
docs/sessions.md applied), derives every scalar the export documents (docs/notes-reports.md: tags,
steps, wall times), then reads the event file back with TensorBoard's own readers:

- `tensorboard.backend.event_processing.event_file_loader.EventFileLoader`, which checks both
  masked CRC32Cs of every TFRecord frame: the first event must carry file_version "brain.Event:2";
- `tensorboard.backend.event_processing.event_accumulator.EventAccumulator` (every scalar kept):
  the same tags, and per tag the same steps, values (as float32) and wall times;
- `plugin_event_accumulator.EventAccumulator`, what the TensorBoard 2.x server reads: every tag
  routed to the scalars plugin, with the same steps and values.

With --scalars FILE (.csv or .json) it also compares that file, exactly (doubles), with the same
derivation. Nothing from qgoft is imported. Needs: pip install tensorboard (2.x; tested with 2.21).

Exit status: 0 when everything matches, 1 on any mismatch, 2 on bad input.

    check_tensorboard.py SESSION_DIR TB_DIR [--scalars FILE] [--min-points N]

TB_DIR is the folder given to --tensorboard (the run folder SESSION_ID inside it is read) or the
run folder itself.
"""
import argparse
import csv
import json
import math
import os
import struct
import sys
from datetime import datetime

# (tag, field of the metrics.jsonl record); per-layer tags are f"{quantity}/{module}".
TRAIN = [("train/loss", "loss"), ("train/task_loss", "taskLoss"), ("train/penalty", "penalty"),
         ("train/lambda", "lambda"), ("train/lr", "lr"), ("train/grad_norm", "gradNorm"),
         ("train/tokens_per_s", "tokensPerSecond"), ("train/epoch", "epoch")]
LAYER = [("drift", "matrixDrift"), ("block_drift_mean", "blockDriftMean"),
         ("norm_adjustment_mean", "normAdjustmentMean"), ("norm_adjustment_max", "normAdjustmentMax"),
         ("angle_adjustment_mean_deg", "angleAdjustmentMean"), ("angle_adjustment_max_deg", "angleAdjustmentMax"),
         ("scale_deviation_mean", "scaleDeviationMean")]


def number(x):
    """Session files write non-finite numbers as the strings NaN, Infinity, -Infinity."""
    if isinstance(x, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[x]
    return float(x)


def read_lines(path):
    """Complete JSON lines (a torn last line and lines that do not parse are skipped)."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if not data.endswith(b"\n"):
        lines = lines[:-1]
    for line in lines:
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


def load_session(folder):
    with open(os.path.join(folder, "session.json")) as f:
        info = json.load(f)
    records = []
    for r in read_lines(os.path.join(folder, "metrics.jsonl")):
        if r.get("type") == "resume":
            records = [x for x in records if x["step"] <= r["step"]]
        elif r.get("type") in ("step", "eval", "stats"):
            records.append(r)
    events = []
    for e in read_lines(os.path.join(folder, "events.jsonl")):
        if e.get("kind") == "resumed":
            events = [x for x in events if x["step"] <= e["step"]]
        events.append(e)
    return info, records, events


def expected_points(info, records, events):
    """(tag, step, wall_time, value) in record order, as the export documents them."""
    steps = [r for r in records if r["type"] == "step"]
    created = datetime.fromisoformat(info["created"].replace("Z", "+00:00")).timestamp()
    starts = [e for e in events if e["kind"] in ("started", "resumed")]
    stretches = []  # (from_step, start_time, elapsed_before)
    if not starts or starts[0]["step"] > 0:
        stretches.append((0, created, 0.0))
    for e in starts:
        before = [r for r in steps if r["step"] <= e["step"]]
        eb = number(before[-1]["elapsed"]) if before else 0.0
        stretches = [s for s in stretches if s[0] < e["step"]] + [(e["step"], float(e["time"]), eb)]

    def step_time(r):
        st = [s for s in stretches if s[0] < r["step"]]
        st = st[-1] if st else stretches[0]
        return st[1] + max(0.0, number(r["elapsed"]) - st[2])

    step_times = {r["step"]: step_time(r) for r in steps}
    evaluated = {e["step"]: float(e["time"]) for e in events if e["kind"] == "evaluated"}

    def time_of(step):
        if step in step_times:
            return step_times[step]
        st = [s for s in stretches if s[0] <= step]
        return (st[-1] if st else stretches[0])[1]

    out = []
    for r in records:
        if r["type"] == "step":
            t = step_time(r)
            for tag, field in TRAIN:
                out.append((tag, r["step"], t, number(r[field])))
        elif r["type"] == "eval":
            t = evaluated.get(r["step"], time_of(r["step"]) + number(r["seconds"]))
            out.append(("val/accuracy", r["step"], t, number(r["valAccuracy"])))
            out.append(("val/loss", r["step"], t, number(r["valLoss"])))
        else:
            t = time_of(r["step"])
            for layer in r["layers"]:
                stats = layer["stats"]
                for q, field in LAYER:
                    v = stats.get(field)
                    if v is not None:
                        out.append((f"{q}/{layer['module']}", r["step"], t, number(v)))
    return out


def same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0] if math.isfinite(x) and abs(x) < 3.4e38 else \
        (x if not math.isfinite(x) else math.copysign(math.inf, x))


def check_tensorboard(run_dir, points, problems):
    from tensorboard.backend.event_processing import event_accumulator, event_file_loader

    files = sorted(f for f in os.listdir(run_dir) if "tfevents" in f)
    if len(files) != 1:
        problems.append(f"{run_dir}: expected one event file, found {files}")
        return
    path = os.path.join(run_dir, files[0])
    raw = list(event_file_loader.EventFileLoader(path).Load())  # raises on a bad CRC
    if not raw or raw[0].file_version != "brain.Event:2":
        problems.append(f"{path}: the first event is not file_version brain.Event:2")
    print(f"{path}: {len(raw)} events read by EventFileLoader (CRCs checked)")

    acc = event_accumulator.EventAccumulator(path, size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    want = {}
    for tag, step, t, v in points:
        want.setdefault(tag, []).append((step, t, v))
    if tags != set(want):
        problems.append(f"tags differ: only in the file {sorted(tags - set(want))[:5]}, missing {sorted(set(want) - tags)[:5]}")
    compared = 0
    for tag in sorted(tags & set(want)):
        got = acc.Scalars(tag)
        exp = want[tag]
        if [e.step for e in got] != [s for s, _, _ in exp]:
            problems.append(f"{tag}: steps {[e.step for e in got][:8]} != {[s for s, _, _ in exp][:8]}")
            continue
        for e, (step, t, v) in zip(got, exp):
            if not same(e.value, f32(v)):
                problems.append(f"{tag} step {step}: value {e.value!r} != float32({v!r})")
            if abs(e.wall_time - t) > 1e-6:
                problems.append(f"{tag} step {step}: wall time {e.wall_time!r} != {t!r}")
            compared += 1
    print(f"{path}: {compared} scalars under {len(tags)} tags compared with EventAccumulator")

    # What the TensorBoard 2.x server reads: simple_value converted to the scalars plugin's tensors.
    from tensorboard.backend.event_processing import plugin_event_accumulator
    from tensorboard.util import tensor_util
    pacc = plugin_event_accumulator.EventAccumulator(path, size_guidance={plugin_event_accumulator.TENSORS: 0})
    pacc.Reload()
    ptags = set(pacc.Tags()["tensors"])
    if ptags != set(want):
        problems.append(f"plugin accumulator tags differ: {len(ptags)} vs {len(want)}")
    for tag in sorted(ptags & set(want)):
        if pacc.SummaryMetadata(tag).plugin_data.plugin_name != "scalars":
            problems.append(f"{tag}: not routed to the scalars plugin")
        got = [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in pacc.Tensors(tag)]
        exp = [(step, f32(v)) for step, _, v in want[tag]]
        if len(got) != len(exp) or any(a[0] != b[0] or not same(a[1], b[1]) for a, b in zip(got, exp)):
            problems.append(f"{tag}: the scalars plugin sees {got[:4]}..., expected {exp[:4]}...")
    print(f"{path}: {len(ptags)} tags seen by the scalars plugin (plugin_event_accumulator)")
    return compared


def check_scalars(path, points, session_id, problems):
    rows = []
    if path.lower().endswith(".csv"):
        with open(path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader)
            if header != ["tag", "step", "wall_time", "value"]:
                problems.append(f"{path}: header {header}")
            rows = [(r[0], int(r[1]), float(r[2]), float(r[3])) for r in reader]
    else:
        with open(path) as f:
            doc = json.load(f)
        if doc.get("format") != "qgoft-scalars" or doc.get("format_version") != 1 or doc.get("session") != session_id:
            problems.append(f"{path}: header fields {[doc.get(k) for k in ('format', 'format_version', 'session')]}")
        rows = [(r["tag"], r["step"], number(r["wall_time"]), number(r["value"])) for r in doc["scalars"]]
    if len(rows) != len(points):
        problems.append(f"{path}: {len(rows)} rows, expected {len(points)}")
    for got, exp in zip(rows, points):
        if got[0] != exp[0] or got[1] != exp[1] or not same(got[3], exp[3]) or abs(got[2] - exp[2]) > 1e-6:
            problems.append(f"{path}: row {got} != expected {exp}")
            break
    print(f"{path}: {len(rows)} rows compared exactly")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("session", help="session folder")
    ap.add_argument("tensorboard", help="the --tensorboard folder, or the run folder inside it")
    ap.add_argument("--scalars", help="a --scalars export (.csv or .json) to compare as well")
    ap.add_argument("--min-points", type=int, default=1, help="fail unless at least this many scalars were compared")
    args = ap.parse_args()
    try:
        info, records, events = load_session(args.session)
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {args.session}: {e}", file=sys.stderr)
        return 2
    run_dir = args.tensorboard
    if os.path.isdir(os.path.join(run_dir, info["id"])):
        run_dir = os.path.join(run_dir, info["id"])
    if not os.path.isdir(run_dir):
        print(f"error: {run_dir}: not a folder", file=sys.stderr)
        return 2
    points = expected_points(info, records, events)
    problems = []
    compared = check_tensorboard(run_dir, points, problems) or 0
    if args.scalars:
        check_scalars(args.scalars, points, info["id"], problems)
    if compared < args.min_points:
        problems.append(f"only {compared} scalars compared, expected at least {args.min_points}")
    for p in problems[:20]:
        print("MISMATCH " + p)
    if problems:
        print(f"FAILED: {len(problems)} problems")
        return 1
    print("OK: the event file holds exactly the session's scalars")
    return 0


if __name__ == "__main__":
    sys.exit(main())
