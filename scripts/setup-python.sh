#!/usr/bin/env bash
# The Python environment for the interop checks that need more than numpy: a virtual environment
# outside the source tree (default ~/.cache/qgoft/venv, or $QGOFT_VENV) with tensorboard (its own
# event readers check `qgoft export --tensorboard`), numpy and safetensors. Idempotent: packages
# already there are not installed again. Prints the environment's python on stdout.
set -euo pipefail
venv=${QGOFT_VENV:-$HOME/.cache/qgoft/venv}
if [ ! -x "$venv/bin/python" ]; then
    echo "setup-python: creating $venv" >&2
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import tensorboard, numpy, safetensors" >/dev/null 2>&1; then
    echo "setup-python: installing tensorboard numpy safetensors into $venv" >&2
    "$venv/bin/python" -m pip install -q --disable-pip-version-check tensorboard numpy safetensors >&2
fi
echo "$venv/bin/python"
