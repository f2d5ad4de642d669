#!/usr/bin/env bash
# Runs every fuzz target for a fixed budget and fails on any crash, hang or over-allocation.
#
#   scripts/fuzz/run.sh [--seconds N] [--no-build] [TARGET...]
#
# Builds .build-fuzz/qgoft-fuzz (scripts/fuzz/build.sh) unless --no-build, makes seed corpora from
# the real files (scripts/fuzz/seeds.py: test fixtures, the fetched model and data, a real session
# from a 2-step `qgoft train` when .build/release/qgoft and the model are there), then runs each
# target for N seconds (default 30) with libFuzzer's bounds:
#   -max_len        largest input (per target, below)
#   -timeout=10     one input taking longer than 10 s is a hang
#   -rss_limit_mb=2048, -malloc_limit_mb=512   memory beyond that is a failure
# and prints the inputs executed per target. A failing input is kept in .build-fuzz/artifacts/;
# minimise it (qgoft-fuzz -minimize_crash=1), fix the parser, and commit the input under
# Tests/Fixtures/fuzz/<target>/ with a regression test.
set -uo pipefail
cd "$(dirname "$0")/../.."
seconds=30
build=1
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        --no-build) build=0; shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) targets+=("$1"); shift ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=(safetensors json config tokenizer-json vocab tokenize dataset session-json session-lines)
declare -A maxlen=([safetensors]=262144 [json]=65536 [config]=16384 [tokenizer-json]=131072 [vocab]=65536
    [tokenize]=4096 [dataset]=65536 [session-json]=65536 [session-lines]=65536)

out=.build-fuzz
bin=$out/qgoft-fuzz
if [ "$build" = 1 ]; then bash scripts/fuzz/build.sh || exit 1; fi
[ -x "$bin" ] || { echo "no $bin; run scripts/fuzz/build.sh" >&2; exit 1; }

export QGOFT_FUZZ_MODEL=${QGOFT_FUZZ_MODEL:-$HOME/.cache/qgoft/minilm-l6}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
session_args=()
if [ -x .build/release/qgoft ] && [ -f "$QGOFT_FUZZ_MODEL/model.safetensors" ]; then
    if .build/release/qgoft train --headless --data Tests/Fixtures/e2e/tiny.csv --max-steps 2 --batch-size 4 \
        --log-every 1 --sessions-dir "$work/sessions" >"$work/train.log" 2>&1; then
        session_args=(--session "$(find "$work/sessions" -mindepth 1 -maxdepth 1 -type d | head -n 1)")
    else
        echo "note: the seed session run failed; fuzzing without session seeds" >&2; tail -3 "$work/train.log" >&2
    fi
else
    echo "note: no .build/release/qgoft or model: no session seeds" >&2
fi
python3 scripts/fuzz/seeds.py "$work/seeds" "${session_args[@]}" --max-len 262144 || exit 1

failed=()
printf '%-16s %12s %10s %8s %s\n' target inputs exec/s corpus result
for t in "${targets[@]}"; do
    if [ -z "${maxlen[$t]:-}" ]; then echo "unknown target $t" >&2; exit 2; fi
    corpus=$out/corpus/$t
    mkdir -p "$corpus" "$out/artifacts/$t"
    [ -d "$work/seeds/$t" ] || mkdir -p "$work/seeds/$t"
    log=$out/logs/$t.log
    mkdir -p "$out/logs"
    QGOFT_FUZZ_TARGET=$t ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=0 "$bin" \
        -max_total_time="$seconds" -max_len="${maxlen[$t]}" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
        -print_final_stats=1 -artifact_prefix="$out/artifacts/$t/" "$corpus" "$work/seeds/$t" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    size=$(find "$corpus" -type f | wc -l)
    if [ $rc -eq 0 ]; then result=ok; else result="FAILED (rc $rc, see $log)"; failed+=("$t"); fi
    printf '%-16s %12s %10s %8s %s\n' "$t" "${runs:-?}" "${speed:-?}" "$size" "$result"
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzzing failed: ${failed[*]}" >&2
    for t in "${failed[@]}"; do grep -m 3 -E "ERROR|Fatal error|panic|==[0-9]+==" "$out/logs/$t.log" >&2; ls "$out/artifacts/$t" >&2; done
    exit 1
fi
