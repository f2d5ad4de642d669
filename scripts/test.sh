#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds in release mode, fetches the assets
# (the parity tests run on the real all-MiniLM-L6-v2 and Rotten Tomatoes), runs the Swift tests
# (unit, gradient checks, parity, rendering, end to end), the Python interop checks, the report
# and TensorBoard checks, the kill soak, fault injection and a short fuzzing run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests
swift build -c release
.build/release/qgoft fetch
swift test -c release "$@"

# Interop: per method, a tiny real run, exported as a merged model, checked by an independent
# numpy script that rebuilds Q from the snapshot's PEFT-named tensors (exits non-zero on mismatch).
interop=$(mktemp -d)
trap 'rm -rf "$interop"' EXIT
for method in qgoft goft; do
    log="$interop/$method.log"
    if ! .build/release/qgoft train --headless --method "$method" --max-steps 3 --batch-size 8 --lr 0.02 \
        --log-every 100 --sessions-dir "$interop/sessions" >"$log" 2>&1; then
        cat "$log"
        exit 1
    fi
    id=$(sed -n 's/^session \([^ ]*\) in .*/\1/p' "$log" | head -n 1)
    .build/release/qgoft export "$id" --merge --out "$interop/$method-merged" --sessions-dir "$interop/sessions"
    python3 scripts/interop/check_snapshot.py "$interop/sessions/$id/snapshots/step-3" \
        --merged "$interop/$method-merged" --expect-change
done

# Exports: the HTML report rendered in headless Chromium, the TensorBoard files read back by
# TensorBoard's own readers (tensorboard in a virtual environment outside the tree).
TB_PYTHON=$(bash scripts/setup-python.sh) bash scripts/report/check_report.sh

# The PyTorch side: qgoft-torch (python/) unit tests, snapshots both ways between qgoft and torch,
# an HF Trainer fine-tune under torchrun (2 processes, gloo) steered through commands.jsonl and
# again by keys typed into `qgoft attach` under tmux, the plain-loop example. Installs torch and
# transformers into the same virtual environment (about 5 GB, once).
bash scripts/torch/check.sh

# PEFT: every method PEFT has is trained a few steps, its snapshot loaded with
# PeftModel.from_pretrained(BertModel, folder) (no missing adapter keys) and its logits on real
# sentences compared with `qgoft eval --predictions` (the venv of the step above, with peft).
"$(bash scripts/setup-python.sh --torch)" scripts/interop/check_peft.py --qgoft .build/release/qgoft --work "$interop/peft"

# Reliability: a short kill soak (5 SIGKILLs, resumed, compared with a straight run) and fault
# injection (full disk, immutable and read-only session folder; needs root, as CI runs).
bash scripts/reliability/kill-soak.sh --kills 5
bash scripts/reliability/faults.sh

# Fuzzing: every parser of outside data, 10 seconds a target (builds .build-fuzz/ first).
bash scripts/fuzz/run.sh --seconds 10

# Every stage above stops the script on failure (set -e), so reaching here means all passed.
echo "test.sh: swift test, snapshot interop, report and TensorBoard, PyTorch side, PEFT, kill soak, faults, fuzzing"
echo "stages: 8 passed, 0 failed"
