#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds in release mode, fetches the assets
# (the parity tests run on the real all-MiniLM-L6-v2 and Rotten Tomatoes), runs the Swift tests
# (unit, gradient checks, parity, rendering, end to end) and the Python interop checks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release
.build/release/qgoft fetch
swift test -c release "$@"
