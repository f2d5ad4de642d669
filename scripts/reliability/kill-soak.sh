#!/usr/bin/env bash
# Kill soak: a real run killed with SIGKILL at random moments (some while a snapshot is being
# written), resumed after each kill, must end exactly as the same run straight through.
#
#   bash scripts/reliability/kill-soak.sh [--kills N] [--steps S] [--seed K] [--keep]
#
# At the end it checks: `qgoft inspect --print` reads the session; every snapshot folder is
# complete and valid (each one exported, which validates it); metrics.jsonl has exactly one step
# record per step once the resume rule is applied (docs/sessions.md); the final
# adapter_model.safetensors and optimizer.safetensors are byte-identical to those of the
# uninterrupted run with the same seed. It prints kills, resumes, steps and mismatches and exits
# non-zero on any mismatch. Needs the release binary (or $QGOFT) and the fetched model.
set -euo pipefail
cd "$(dirname "$0")/../.."
kills=20 steps=250 seed=1 keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --kills) kills=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        *) echo "kill-soak: unknown option $1 (use --kills N, --steps S, --seed K, --keep)" >&2; exit 2 ;;
    esac
done
Q=${QGOFT:-$PWD/.build/release/qgoft}
[ -x "$Q" ] || { echo "kill-soak: $Q missing: swift build -c release" >&2; exit 2; }
work=$(mktemp -d)
[ "$keep" = 1 ] && echo "kill-soak: working in $work" || trap 'rm -rf "$work"' EXIT
RANDOM=$seed

# A small labelled CSV (420 rows: 378 training, 42 validation, batch 12: 32 steps an epoch).
python3 - "$work/data.csv" <<'PY'
import random, sys
r = random.Random(7)
good = "wonderful moving sharp funny brilliant tender gripping warm".split()
bad = "tedious flat clumsy dull bland shrill hollow messy".split()
nouns = "film script cast story ending score pacing dialogue".split()
with open(sys.argv[1], "w") as f:
    f.write("text,label\n")
    for i in range(420):
        words = good if i % 2 else bad
        s = ["the"] + [r.choice(nouns) if k % 3 == 2 else r.choice(words) for k in range(3 + r.randrange(12))]
        f.write('"%s",%d\n' % (" ".join(s), i % 2))
PY
args=(train --headless --data "$work/data.csv" --epochs 100 --max-steps "$steps" --batch-size 12 --max-len 32 --eval-every 10
      --stats-every 5 --snapshot-every 7 --autosave-every 0.02 --log-every 1000 --threads 2)

# The reference: straight through.
"$Q" "${args[@]}" --sessions-dir "$work/straight" >"$work/straight.log" 2>&1 || { cat "$work/straight.log"; exit 1; }
ref=$(ls "$work/straight")

# The soak: start, kill -9, resume, ... until the kills are spent, then let it finish.
sessions="$work/soak"
"$Q" "${args[@]}" --sessions-dir "$sessions" >"$work/run-0.log" 2>&1 &
pid=$!
n=0 resumes=0 at_snapshot=0
while [ "$n" -lt "$kills" ]; do
    if [ $((n % 4)) = 3 ]; then
        # Kill while a snapshot is being written: wait for a temporary snapshot folder.
        for _ in $(seq 1 4000); do
            compgen -G "$sessions/*/snapshots/.step-*" >/dev/null && break
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.001
        done
        at_snapshot=$((at_snapshot + 1))
    else
        sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.5 + 3.0 * r / 32768 }')"
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" || true
        break  # finished before the kill: fewer kills than asked
    fi
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null || true
    n=$((n + 1))
    id=$(ls "$sessions")
    # Killed while it was exiting after its last step: nothing left to resume.
    grep -q '"status" : "finished"' "$sessions/$id/session.json" && { pid=; break; }
    "$Q" train --headless --resume "$id" --sessions-dir "$sessions" >"$work/run-$n.log" 2>&1 &
    pid=$!
    resumes=$((resumes + 1))
done
[ -z "$pid" ] || wait "$pid" || { echo "kill-soak: the last resume failed:"; tail -5 "$work/run-$n.log"; exit 1; }
id=$(ls "$sessions")

# Checks.
mismatches=0
fail() { echo "MISMATCH: $*"; mismatches=$((mismatches + 1)); }
"$Q" inspect "$id" --print --sessions-dir "$sessions" >"$work/inspect.txt" 2>&1 || fail "qgoft inspect --print failed: $(tail -1 "$work/inspect.txt")"
for snap in "$sessions/$id"/snapshots/step-*; do
    s=${snap##*step-}
    "$Q" export "$id" --snapshot "$s" --out "$work/export-$s" --sessions-dir "$sessions" >/dev/null 2>"$work/export-$s.err" \
        || fail "snapshot step-$s does not export: $(tail -1 "$work/export-$s.err")"
done
leftovers=$(find "$sessions/$id/snapshots" -maxdepth 1 -name '.step-*' | wc -l)
[ "$leftovers" = 0 ] || fail "$leftovers temporary snapshot folders left behind"
logged=$(python3 - "$sessions/$id/metrics.jsonl" "$steps" <<'PY'
import json, sys
# The resume rule (docs/sessions.md): a resume marker at step S drops earlier records with step > S.
records = []
for line in open(sys.argv[1], encoding="utf-8"):
    try:
        r = json.loads(line)
    except ValueError:
        continue  # a torn line of a killed writer
    if r.get("type") == "resume":
        records = [x for x in records if x["step"] <= r["step"]]
    else:
        records.append(r)
steps = [r["step"] for r in records if r.get("type") == "step"]
want = list(range(1, int(sys.argv[2]) + 1))
print("ok" if steps == want else "steps %s (want 1..%s)" % (steps[:5] + ["..."] + steps[-5:], sys.argv[2]))
PY
)
[ "$logged" = ok ] || fail "metrics.jsonl: $logged"
for f in adapter_model.safetensors optimizer.safetensors; do
    cmp -s "$work/straight/$ref/snapshots/step-$steps/$f" "$sessions/$id/snapshots/step-$steps/$f" \
        || fail "final $f differs from the uninterrupted run"
done
grep -q '"status" : "finished"' "$sessions/$id/session.json" || fail "session.json does not say finished"
echo "kill-soak: kills $n (during a snapshot write: $at_snapshot), resumes $resumes, steps $steps, temporary folders left $leftovers, mismatches $mismatches"
[ "$mismatches" = 0 ]
