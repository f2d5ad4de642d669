#!/usr/bin/env bash
# The Python environment for the interop checks that need more than numpy: a virtual environment
# outside the source tree (default ~/.cache/qgoft/venv, or $QGOFT_VENV) with tensorboard (its own
# event readers check `qgoft export --tensorboard`), numpy and safetensors. Idempotent: packages
# already there are not installed again. Prints the environment's python on stdout.
#
#   scripts/setup-python.sh           tensorboard, numpy, safetensors
#   scripts/setup-python.sh --torch   also torch, transformers, accelerate, peft and ./python (qgoft-torch)
#
# torch from PyPI pulls its CUDA wheels (about 5 GB on Linux): installed once, then reused.
# qgoft-torch is installed from ./python again only when its sources changed (a stamp in the venv).
set -euo pipefail
torch=0
for arg in "$@"; do
    case "$arg" in
        --torch) torch=1 ;;
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup-python: unknown option '$arg' (known: --torch)" >&2; exit 2 ;;
    esac
done
venv=${QGOFT_VENV:-$HOME/.cache/qgoft/venv}
pip() { "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@" >&2; }
if [ ! -x "$venv/bin/python" ]; then
    echo "setup-python: creating $venv" >&2
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import tensorboard, numpy, safetensors" >/dev/null 2>&1; then
    echo "setup-python: installing tensorboard numpy safetensors into $venv" >&2
    pip tensorboard numpy safetensors
fi
if [ "$torch" = 1 ]; then
    if ! "$venv/bin/python" -c "import torch, transformers, accelerate" >/dev/null 2>&1; then
        echo "setup-python: installing torch transformers accelerate into $venv (torch's CUDA wheels are about 5 GB)" >&2
        start=$(date +%s)
        pip torch transformers accelerate
        echo "setup-python: torch, transformers and accelerate installed in $(( $(date +%s) - start )) s" >&2
    fi
    # PEFT, for scripts/interop/check_peft.py: the release whose file format qgoft writes
    # (SnapshotFormat.peftFormatVersion), without touching torch.
    if ! "$venv/bin/python" -c "import peft, sys; sys.exit(peft.__version__ != '0.21.2')" >/dev/null 2>&1; then
        echo "setup-python: installing peft 0.21.2 into $venv" >&2
        pip "peft==0.21.2"
    fi
    root=$(cd "$(dirname "$0")/.." && pwd)
    stamp="$venv/.qgoft-torch-stamp"
    sum=$(cd "$root/python" && find . -name '*.py' -o -name 'pyproject.toml' | grep -v -e '/tests/' -e '/examples/' | LC_ALL=C sort | xargs cat | cksum)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ] || ! "$venv/bin/python" -c "import qgoft_torch" >/dev/null 2>&1; then
        echo "setup-python: installing qgoft-torch from $root/python into $venv" >&2
        pip --no-deps --force-reinstall "$root/python"
        echo "$sum" > "$stamp"
    fi
fi
echo "$venv/bin/python"
