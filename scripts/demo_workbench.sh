#!/usr/bin/env bash
# Opens the real workbench on a real run, to look at the screen (replaces the fake-trainer demo
# that used to sit in the test target):
#
#   scripts/demo_workbench.sh live     # a short qGOFT run on Tests/Fixtures/e2e/tiny.csv, live
#   scripts/demo_workbench.sh replay   # the same run, then its session in replay mode (qgoft inspect)
#
# Needs a release build (swift build -c release) and the model (qgoft fetch). The session goes to a
# temporary sessions folder, removed at the end. Extra arguments go to `qgoft train`.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-live}
shift || true
qgoft=.build/release/qgoft
[ -x "$qgoft" ] || { echo "no $qgoft: run swift build -c release first" >&2; exit 1; }
sessions=$(mktemp -d)
trap 'rm -rf "$sessions"' EXIT
train=("$qgoft" train --data Tests/Fixtures/e2e/tiny.csv --batch-size 8 --epochs 20 --eval-every 10 --stats-every 5
    --sessions-dir "$sessions" "$@")
case "$mode" in
    live) "${train[@]}" ;;
    replay)
        "${train[@]}" --headless --max-steps 60 --log-every 20
        id=$(ls "$sessions" | grep -v README | head -n 1)
        "$qgoft" inspect "$id" --sessions-dir "$sessions"
        ;;
    *) echo "usage: $0 live|replay [qgoft train options]" >&2; exit 2 ;;
esac
