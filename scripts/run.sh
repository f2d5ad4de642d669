#!/usr/bin/env bash
# Quick start: installs what is missing, builds qgoft in release mode, fetches the default model
# and data, and runs the main job (`qgoft train` with the peer's defaults: the workbench in a
# terminal, progress lines otherwise). Extra arguments go to `qgoft`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product qgoft
.build/release/qgoft fetch
exec .build/release/qgoft "$@"
