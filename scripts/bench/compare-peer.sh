#!/usr/bin/env bash
# Runs qgoft and the PyTorch peer side by side, alternating in one sitting, both at the same
# thread count, on the padded bench (the first 32 training sentences, 64-token slots):
#   per round: qgoft bench --train, peer.py --method qgoft --bench,
#              qgoft bench --forward, peer.py --method head --bench (its forward + head step)
# and prints ms/step (median) and tokens/s per padded slot (from the median step, for both),
# the ratios qgoft tokens/s / peer tokens/s, qgoft's BLAS-bound fractions and peak RSS.
#
#   scripts/bench/compare-peer.sh [--rounds 2] [--steps 15] [--warmup 3] [--threads 2] [--out DIR]
#
# Every run's JSON and log land in DIR (default: a new folder under /tmp), with summary.md.
# Needs the release build (.build/release/qgoft, or $QGOFT) and scripts/bench/setup-peer.sh.
set -euo pipefail
name=compare-peer
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
rounds=2 steps=15 warmup=3 threads=2 out=
while [[ $# -gt 0 ]]; do
    case $1 in
        --rounds) [[ $# -ge 2 ]] || die "--rounds needs a value"; posint "$1" "$2" 1; rounds=$2; shift 2 ;;
        --steps) [[ $# -ge 2 ]] || die "--steps needs a value"; posint "$1" "$2" 1; steps=$2; shift 2 ;;
        --warmup) [[ $# -ge 2 ]] || die "--warmup needs a value"; posint "$1" "$2" 0; warmup=$2; shift 2 ;;
        *) common_option "$@"; shift "$shifted" ;;
    esac
done
check_tools
make_out "$out"

echo "compare-peer: $rounds rounds of $warmup warm-up + $steps timed steps, $threads threads, results in $out"
echo "compare-peer: qgoft $qgoft; peer $peer with $py"
for r in $(seq 1 "$rounds"); do
    echo "== round $r"
    "$qgoft" bench --train --steps "$steps" --warmup "$warmup" --threads "$threads" --json "$out/qgoft-train-$r.json" \
        > "$out/qgoft-train-$r.log" 2>&1 || { cat "$out/qgoft-train-$r.log" >&2; die "qgoft bench --train failed"; }
    grep -E '^(ms/step|BLAS-bound)' "$out/qgoft-train-$r.log" | sed 's/^/  qgoft train: /'
    (cd "$peer" && "$py" peer.py --method qgoft --lr 3e-3 --lambda 1e-4 --bench --max-steps "$steps" --warmup-steps "$warmup" \
        --threads "$threads" --out "$out/peer-train-$r.json") > "$out/peer-train-$r.log" 2>&1 \
        || { cat "$out/peer-train-$r.log" >&2; die "peer.py --method qgoft --bench failed"; }
    grep -E '^bench' "$out/peer-train-$r.log" | sed 's/^/  peer train: /'
    "$qgoft" bench --forward --steps "$steps" --warmup "$warmup" --threads "$threads" --json "$out/qgoft-forward-$r.json" \
        > "$out/qgoft-forward-$r.log" 2>&1 || { cat "$out/qgoft-forward-$r.log" >&2; die "qgoft bench --forward failed"; }
    grep -E '^(ms/step|BLAS-bound)' "$out/qgoft-forward-$r.log" | sed 's/^/  qgoft forward: /'
    (cd "$peer" && "$py" peer.py --method head --lr 1e-2 --bench --max-steps "$steps" --warmup-steps "$warmup" \
        --threads "$threads" --out "$out/peer-head-$r.json") > "$out/peer-head-$r.log" 2>&1 \
        || { cat "$out/peer-head-$r.log" >&2; die "peer.py --method head --bench failed"; }
    grep -E '^bench' "$out/peer-head-$r.log" | sed 's/^/  peer head: /'
done

python3 - "$out" "$rounds" <<'PY' | tee "$out/summary.md"
import json, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def load(name):
    with open(f"{out}/{name}.json") as f:
        return json.load(f)
q0 = load("qgoft-train-1")
m = q0["machine"]
print(f"Machine: {m['cpu_model']}, {m['cores']} cores, OpenBLAS {m['openblas_core']} kernels, "
      f"{m['threads']} threads; {q0['bench']['timed_steps']} timed steps after {q0['bench']['warmup_steps']} warm-up, "
      f"batch {q0['bench']['batch_size']} x {q0['bench']['seq_len']} padded slots (qgoft computes the "
      f"{q0['batches']['real_tokens'][0]} real tokens only); tokens/s = padded slots / median step, for both.")
print()
print("| round | step | qgoft ms/step | qgoft tokens/s | peer ms/step | peer tokens/s | ratio | qgoft BLAS-bound ms | fraction | qgoft GFLOP/s | peak RSS qgoft / peer |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in range(1, rounds + 1):
    for what, qn, pn in [("training (qGOFT)", "qgoft-train", "peer-train"), ("forward (peer: forward + head step)", "qgoft-forward", "peer-head")]:
        q, p = load(f"{qn}-{r}"), load(f"{pn}-{r}")
        slots = q["bench"]["batch_size"] * q["bench"]["seq_len"]
        qms = q["overall"]["step_ms"]["median"]
        pms = p["ms_per_step_median"]
        qt, pt = slots / (qms / 1000), p["batch_size"] * p["seq_len"] / (pms / 1000)
        print(f"| {r} | {what} | {qms:.1f} | {qt:,.0f} | {pms:.1f} | {pt:,.0f} | {qt / pt:.2f}x | "
              f"{q['overall']['blas_bound_ms']['median']:.1f} | {q['overall']['blas_bound_fraction']['median']:.2f} | "
              f"{q['overall']['step_gflop_per_s']:.0f} | {q['peak_rss_mib']:.0f} / {p['peak_rss_mib']:.0f} MiB |")
PY
