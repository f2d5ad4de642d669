#!/usr/bin/env bash
# Installs what qgoft needs on a Debian machine, only what is missing: OpenBLAS, ncursesw and
# pkg-config (build), tmux (the end-to-end workbench test), pip and venv (Debian ships them apart
# from python3; the Python checks install numpy and safetensors, and scripts/setup-python.sh makes
# its virtual environment); with --tests also Chromium (the HTML report is checked in a real browser).
# Idempotent; run as root (or with sudo available).
set -euo pipefail

packages=(libopenblas-dev libncurses-dev pkg-config tmux python3-pip python3-venv)
[ "${1:-}" = --tests ] && packages+=(chromium)
need=()
for pkg in "${packages[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "setup: installing ${need[*]}" >&2
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}"
fi

if ! python3 -c "import numpy, safetensors" >/dev/null 2>&1; then
    echo "setup: installing numpy and safetensors (python)" >&2
    python3 -m pip install -q numpy safetensors
fi
