#!/usr/bin/env bash
# Training throughput with the workbench open against headless, same configuration, alternating
# pairs (the machine's speed drifts): 60 qGOFT steps each, the workbench under tmux at 120x40.
# Prints the mean tokens/s of steps 6-60 of each run and the ratio. Needs a release build and tmux.
set -euo pipefail
cd "$(dirname "$0")/.."
B=$PWD/.build/release/qgoft
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
for i in 1 2; do
  "$B" train --headless --max-steps 60 --eval-every 1000 --sessions-dir "$D/h$i" > "$D/h$i.log" 2>&1
  tmux new-session -d -s "qgoft-wbb$i" -x 120 -y 40 "$B train --max-steps 60 --eval-every 1000 --sessions-dir $D/w$i"
  for _ in $(seq 1 600); do
    grep -q '"finished"' "$D"/w$i/*/session.json 2>/dev/null && break
    sleep 1
  done
  tmux send-keys -t "qgoft-wbb$i" q; sleep 1; tmux kill-session -t "qgoft-wbb$i" 2>/dev/null || true
done
python3 - "$D" <<'PY'
import glob, json, sys
def tps(d):
    f = glob.glob(f'{sys.argv[1]}/{d}/*/metrics.jsonl')[0]
    s = [r['tokensPerSecond'] for r in map(json.loads, filter(str.strip, open(f))) if r.get('type') == 'step'][5:]
    return sum(s) / len(s)
for i in (1, 2):
    h, w = tps(f'h{i}'), tps(f'w{i}')
    print(f'pair {i}: headless {h:.0f} tok/s, workbench {w:.0f} tok/s, ratio {w / h:.3f}')
PY
