#!/usr/bin/env bash
# Runs the runtime's tests for linux/arm64 and linux/arm/v7 under
# qemu-user-static: test binaries are cross-compiled (CGO off) and executed
# from their package directory so testdata paths resolve.
set -euo pipefail
cd "$(dirname "$0")/.."
# The SIMD kernels (arm64 NEON) need the experiment, as in the Makefile;
# armv7 has none and runs the pure-Go kernels.
export GOEXPERIMENT=${GOEXPERIMENT-simd}
# QEMU_CPU picks the emulated arm64 core (e.g. cortex-a53: plain NEON;
# max: every extension, dot product included).
arm64_cpu=${QEMU_CPU:-max}
unset QEMU_CPU
pkgs=(./inference ./inference/schema ./quant)
for k in inference/kernels/*/; do pkgs+=("./${k%/}"); done
passed=0
run() {
  local arch=$1 arm=$2 qemu=$3
  command -v "$qemu" >/dev/null || { echo "test-cross: $qemu not found (run build/setup-deps.sh)" >&2; exit 1; }
  for p in "${pkgs[@]}"; do
    ls "$p"/*_test.go >/dev/null 2>&1 || continue
    bin=$(mktemp -d)/test.bin
    CGO_ENABLED=0 GOOS=linux GOARCH=$arch GOARM=$arm go test -c -o "$bin" "$p"
    echo "test-cross: $arch${arm:+v$arm} $p"
    (cd "$p" && "$qemu" "$bin" -test.short -test.count=1 -test.timeout=15m >"$(dirname "$bin")/log" 2>&1) || { cat "$(dirname "$bin")/log"; echo "FAIL $arch $p"; exit 1; }
    tail -1 "$(dirname "$bin")/log"
    passed=$((passed + 1))
    rm -rf "$(dirname "$bin")"
  done
}
QEMU_CPU=$arm64_cpu run arm64 "" qemu-aarch64-static
run arm 7 qemu-arm-static
echo "test-cross: ${passed} passed, 0 failed"
