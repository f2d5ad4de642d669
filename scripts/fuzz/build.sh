#!/usr/bin/env bash
# Builds the qgoft fuzz binary: QGOFTCore's sources plus scripts/fuzz/*.swift compiled as one
# module with libFuzzer and AddressSanitizer (swiftc -sanitize=fuzzer,address, Linux). Output:
# .build-fuzz/qgoft-fuzz (git-ignored). Not part of the SwiftPM package or of `swift test`.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.build-fuzz
mkdir -p "$out"
blas_cflags=$(pkg-config --cflags openblas 2>/dev/null || echo "-I/usr/include/x86_64-linux-gnu/openblas-pthread")
blas_libs=$(pkg-config --libs openblas 2>/dev/null || echo "-lopenblas")
mapfile -t sources < <(find Sources/QGOFTCore -name '*.swift' | sort)
xcc=()
for f in $blas_cflags; do xcc+=(-Xcc "$f"); done
start=$(date +%s)
swiftc -module-name QGOFTCore -parse-as-library -swift-version 6 -O -wmo \
    -sanitize=fuzzer,address \
    -I Sources/CBLAS "${xcc[@]}" $blas_libs \
    "${sources[@]}" scripts/fuzz/Targets.swift scripts/fuzz/Entry.swift \
    -o "$out/qgoft-fuzz"
echo "built $out/qgoft-fuzz in $(( $(date +%s) - start ))s"
