#!/usr/bin/env bash
# Installs what the tests and the demo need that Go modules do not bring:
# qemu-user-static (cross tests), mosquitto (external-broker tests),
# chromium (console browser test), gcc (the TensorFlow Lite backend's cgo). Idempotent: installs only what is missing.
set -euo pipefail
# The module's toolchain (as the Makefile and .ci/run set it), also when
# the script runs on its own on a machine whose go defaults to local.
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
need=()
command -v qemu-aarch64-static >/dev/null 2>&1 || need+=(qemu-user-static)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# dpkg and systemd-analyze (make test-package installs each .deb into a
# scratch root and verifies its units).
command -v dpkg-deb >/dev/null 2>&1 || need+=(dpkg)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
# A C compiler (make test-tflite and make build-tflite use cgo), and the
# arm64 cross compiler with its libc (make cross-tflite, test-tflite-arm64).
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
# The README doc test (internal/doctest) runs the walkthrough with these.
for t in curl openssl jq; do command -v $t >/dev/null 2>&1 || need+=($t); done
command -v sha256sum >/dev/null 2>&1 || need+=(coreutils)
# PostgreSQL server binaries (fleet/store/postgres tests start a real one).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup-deps: installing ${need[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
go mod download
# A real libtensorflowlite_c for make test-tflite (npm package, pinned
# sha256, cached): without npm or the registry the TensorFlow Lite tests
# skip, so this only warns.
if ! bash "$(dirname "$0")/tflite-lib.sh" >/dev/null; then
  echo "setup-deps: warning: no prebuilt libtensorflowlite_c (see above); make test-tflite will skip the real-library tests" >&2
fi
