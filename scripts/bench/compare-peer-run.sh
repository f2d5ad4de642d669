#!/usr/bin/env bash
# The real workload side by side: the default qGOFT fine-tune (Rotten Tomatoes, the reference
# split, batch 32, 64 tokens, lr 3e-3, lambda 1e-4, 6 % warm-up, seed 0) run by the PyTorch peer
# and then by `qgoft train --headless`, one after the other in one sitting, at the same thread
# count. Prints each run's wall time (from start to exit, set-up and evaluations included), its
# training time, validation accuracy after every epoch and peak RSS, and the ratios qgoft / peer.
#
#   scripts/bench/compare-peer-run.sh [--epochs 3] [--threads 2] [--max-steps K] [--out DIR]
#
# --max-steps K stops both runs after K steps (a quick check of the set-up; the ratio then says
# little). The peer's log and JSON, qgoft's log and session, and summary.md land in DIR (default:
# a new folder under /tmp). Needs the release build (.build/release/qgoft, or $QGOFT) with
# `qgoft fetch` done, and scripts/bench/setup-peer.sh. A 3-epoch pair takes about 25 minutes on 2 cores.
set -euo pipefail
name=compare-peer-run
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
epochs=3 threads=2 maxsteps=0 out=
while [[ $# -gt 0 ]]; do
    case $1 in
        --epochs) [[ $# -ge 2 ]] || die "--epochs needs a value"; posint "$1" "$2" 1; epochs=$2; shift 2 ;;
        --max-steps) [[ $# -ge 2 ]] || die "--max-steps needs a value"; posint "$1" "$2" 1; maxsteps=$2; shift 2 ;;
        *) common_option "$@"; shift "$shifted" ;;
    esac
done
check_tools
make_out "$out"
limit=()
[[ $maxsteps -gt 0 ]] && limit=(--max-steps "$maxsteps")

echo "compare-peer-run: $epochs epochs, $threads threads${limit[*]:+, ${limit[*]}}, results in $out"
echo "compare-peer-run: peer $peer with $py"
t0=$(date +%s.%N)
(cd "$peer" && "$py" peer.py --method qgoft --lr 3e-3 --lambda 1e-4 --epochs "$epochs" --threads "$threads" \
    "${limit[@]}" --out "$out/peer.json") > "$out/peer.log" 2>&1 \
    || { tail -20 "$out/peer.log" >&2; die "peer.py failed (its log: $out/peer.log)"; }
t1=$(date +%s.%N)
echo "compare-peer-run: qgoft $qgoft"
"$qgoft" train --headless --epochs "$epochs" --threads "$threads" "${limit[@]}" --sessions-dir "$out/sessions" \
    > "$out/qgoft.log" 2>&1 || { tail -20 "$out/qgoft.log" >&2; die "qgoft train failed (its log: $out/qgoft.log)"; }
t2=$(date +%s.%N)

python3 - "$out" "$t0" "$t1" "$t2" <<'PY' | tee "$out/summary.md"
import glob, json, sys
out, t0, t1, t2 = sys.argv[1], *map(float, sys.argv[2:5])
peer = json.load(open(f"{out}/peer.json"))
sessions = glob.glob(f"{out}/sessions/*/session.json")
if len(sessions) != 1:
    sys.exit(f"compare-peer-run: expected one qgoft session under {out}/sessions, found {len(sessions)}")
session = json.load(open(sessions[0]))
records = [json.loads(line) for line in open(sessions[0].replace("session.json", "metrics.jsonl"))]
evals = [r for r in records if r.get("type") == "eval"]
steps = [r for r in records if r.get("type") == "step"]
if not steps:
    sys.exit(f"compare-peer-run: no step records in {sessions[0]}")
# The peer's train_s leaves its evaluations out; so does this: the run's elapsed time at its
# last step, less the seconds of the evaluations before it (an evaluation at step k follows
# step k's record).
last = steps[-1]
q_train = last["elapsed"] - sum(e["seconds"] for e in evals if e["step"] < last["step"])
p_wall, q_wall = t1 - t0, t2 - t1
acc = lambda xs: " / ".join(f"{100 * x:.1f}" for x in xs) or "-"
print("| | peer (PyTorch) | qgoft | qgoft / peer |")
print("|---|---|---|---|")
print(f"| steps | {peer['steps']} | {len(steps)} | |")
print(f"| wall time, start to exit | {p_wall:.0f} s | {q_wall:.0f} s | **{q_wall / p_wall:.2f}x** |")
print(f"| training time, evaluations left out | {peer['train_s']:.0f} s | {q_train:.0f} s | {q_train / peer['train_s']:.2f}x |")
print(f"| validation accuracy % after each epoch | {acc(peer['val_acc'])} | {acc([e['valAccuracy'] for e in evals])} | |")
print(f"| peak RSS | {peer['peak_rss_mib']:.0f} MiB | {session['peak_rss_mib']:.0f} MiB | {session['peak_rss_mib'] / peer['peak_rss_mib']:.2f}x |")
PY
