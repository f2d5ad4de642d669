#!/usr/bin/env bash
# Fault injection: the session folder fills up, turns immutable or read-only in the middle of a
# real run. Expected each time: the headless run stops with status 6 ("could not save"), every
# snapshot written before is intact, and once the fault is gone `qgoft train --resume` finishes
# the run (status 0) with one record per step. Needs root (tmpfs mounts, chattr) and the release
# binary; without root it says so and exits 0, except under CI=true where that is a failure.
#
#   bash scripts/reliability/faults.sh [--keep]
set -euo pipefail
cd "$(dirname "$0")/../.."
Q=${QGOFT:-$PWD/.build/release/qgoft}
[ -x "$Q" ] || { echo "faults: $Q missing: swift build -c release" >&2; exit 2; }
if [ "$(id -u)" -ne 0 ]; then
    echo "faults: needs root (tmpfs mounts, chattr); skipped"
    [ "${CI:-}" = true ] && exit 1
    exit 0
fi
work=$(mktemp -d)
mnt="$work/mnt"
mkdir -p "$mnt"
cleanup() {
    chattr -R -i "$mnt" 2>/dev/null || true
    mountpoint -q "$mnt/sessions" 2>/dev/null && umount "$mnt/sessions"
    mountpoint -q "$mnt" && umount "$mnt"
    [ "${1:-}" = keep ] || rm -rf "$work"
}
[ "${1:-}" = --keep ] && trap 'cleanup keep; echo "faults: kept $work"' EXIT || trap cleanup EXIT

python3 - "$work/data.csv" <<'PY'
import random, sys
r = random.Random(3)
w = "good bad fine great awful plot actor scene music boring fun".split()
with open(sys.argv[1], "w") as f:
    f.write("text,label\n")
    for i in range(300):
        f.write('"%s",%d\n' % (" ".join(r.choice(w) for _ in range(4 + r.randrange(20))), i % 2))
PY
args=(train --headless --data "$work/data.csv" --max-steps 40 --batch-size 12 --max-len 32 --snapshot-every 4
      --eval-every 20 --stats-every 10 --log-every 1000 --threads 2 --sessions-dir "$mnt/sessions")
faults=0 checks=0 passed=0 failed=0
check() {  # name, expected status, actual status, log
    checks=$((checks + 1))
    if [ "$2" = "$3" ]; then passed=$((passed + 1)); echo "ok    $1 (status $3)"
    else failed=$((failed + 1)); echo "FAIL  $1: status $3, expected $2"; tail -5 "$4"; fi
}
# Every step-N folder exports (which validates it), no temporary folder is left, and after the
# resume the run is finished with exactly one step record per step (checked by inspect --print).
intact() {  # name
    local id; id=$(ls "$mnt/sessions")
    local bad=0
    for snap in "$mnt/sessions/$id"/snapshots/step-*; do
        [ -d "$snap" ] || continue
        "$Q" export "$id" --snapshot "${snap##*step-}" --out "$work/x-$RANDOM" --sessions-dir "$mnt/sessions" >/dev/null 2>&1 || bad=1
    done
    check "$1: every earlier snapshot intact" 0 "$bad" /dev/null
}
resume_finishes() {  # name
    local id; id=$(ls "$mnt/sessions")
    set +e; "$Q" train --headless --resume "$id" --sessions-dir "$mnt/sessions" >"$work/resume.log" 2>&1; local rc=$?; set -e
    check "$1: resume after the fault finishes" 0 "$rc" "$work/resume.log"
    "$Q" inspect "$id" --print --sessions-dir "$mnt/sessions" >"$work/inspect.txt" 2>&1
    if grep -q "^status     finished" "$work/inspect.txt" && grep -q "^curve      steps 1...40 of 40" "$work/inspect.txt"; then
        check "$1: finished, steps 1...40 logged" 0 0 /dev/null
    else
        check "$1: finished, steps 1...40 logged" 0 1 "$work/inspect.txt"
    fi
}
fresh() {  # size
    chattr -R -i "$mnt" 2>/dev/null || true
    mountpoint -q "$mnt" && umount "$mnt"
    mount -t tmpfs -o "size=$1" tmpfs "$mnt"
}
wait_step() {  # pid, step: until the session has logged that step
    for _ in $(seq 1 3000); do
        grep -qs "\"step\":$2," "$mnt"/sessions/*/metrics.jsonl && return 0
        kill -0 "$1" 2>/dev/null || return 1
        sleep 0.01
    done
    return 1
}

faults=$((faults + 1))
# 1. The disk fills up with the snapshots: 3 MiB hold the logs and two snapshots.
fresh 3m
set +e; "$Q" "${args[@]}" >"$work/full.log" 2>&1; rc=$?; set -e
check "disk full at a snapshot: stops, could not save" 6 "$rc" "$work/full.log"
intact "disk full at a snapshot"
mount -o remount,size=64m "$mnt"
resume_finishes "disk full at a snapshot"

faults=$((faults + 1))
# 2. The disk fills up under the logs (a filler file takes all that is left at step 3).
fresh 16m
"$Q" "${args[@]}" >"$work/logs.log" 2>&1 & pid=$!
wait_step "$pid" 3 && { dd if=/dev/zero of="$mnt/filler" bs=64k 2>/dev/null || true; }
set +e; wait "$pid"; rc=$?; set -e
check "disk full under the logs: stops, could not save" 6 "$rc" "$work/logs.log"
rm -f "$mnt/filler"
intact "disk full under the logs"
resume_finishes "disk full under the logs"

faults=$((faults + 1))
# 3. The session folder turns immutable (chattr +i) at step 3.
fresh 64m
"$Q" "${args[@]}" >"$work/immutable.log" 2>&1 & pid=$!
wait_step "$pid" 3 && chattr -R +i "$mnt/sessions"
set +e; wait "$pid"; rc=$?; set -e
check "immutable session folder: stops, could not save" 6 "$rc" "$work/immutable.log"
chattr -R -i "$mnt/sessions"
intact "immutable session folder"
resume_finishes "immutable session folder"

faults=$((faults + 1))
# 4. The session folder turns read-only at step 3 (a read-only bind mount over it: new files fail
# with EROFS; a file system with files open for writing cannot itself be remounted read-only).
fresh 64m
"$Q" "${args[@]}" >"$work/ro.log" 2>&1 & pid=$!
wait_step "$pid" 3 && mount --bind "$mnt/sessions" "$mnt/sessions" && mount -o remount,bind,ro "$mnt/sessions"
set +e; wait "$pid"; rc=$?; set -e
check "read-only session folder: stops, could not save" 6 "$rc" "$work/ro.log"
umount "$mnt/sessions"
intact "read-only session folder"
resume_finishes "read-only session folder"

echo "faults: $faults faults injected, $checks checks, $passed passed, $failed failed; data lost: $([ "$failed" = 0 ] && echo none || echo see above)"
[ "$failed" = 0 ]
