#!/usr/bin/env bash
# Fetches a real, prebuilt TensorFlow Lite C library for the TensorFlow Lite
# backend's tests and for boards without one (docs/acceleration.md):
# libtensorflowlite_c.so (TensorFlow Lite 2.9.0, XNNPACK built in) and
# libexternal_delegate_obj.so for linux amd64 and arm64, as shipped in the
# npm package tfjs-tflite-node@0.0.2 (Google, Apache-2.0). The package is
# fetched with `npm pack` (no install scripts run), its sha256 and each
# library's sha256 are checked against the pins below, and the libraries are
# kept in ${XDG_CACHE_HOME:-~/.cache}/edgefleet/tflite-lib/2.9.0/linux_<arch>/.
# Nothing is committed. Idempotent: a verified cache is used as is.
#
#   build/tflite-lib.sh            prints the path of this machine's libtensorflowlite_c.so
#   build/tflite-lib.sh arm64      ... of the arm64 one (amd64 likewise)
#
# Exits 1 with one line on stderr when npm is missing or unreachable or a
# checksum does not match (then nothing is left in the cache).
set -euo pipefail
PKG=tfjs-tflite-node@0.0.2
VERSION=2.9.0
TGZ_SHA256=3be1632328a76a2475e5b6833253763c802c859433becb4d879ee1860e3b5284
declare -A PINS=(
  [linux_amd64/libtensorflowlite_c.so]=dc89b4cd86d956516570bd483668e6dd98907f49901d0567dedc69a29a56b7f7
  [linux_amd64/libexternal_delegate_obj.so]=84cce7d984c01c55d8f286244e789294ef2f6893e2947b39e256941b55835c19
  [linux_arm64/libtensorflowlite_c.so]=ec0dee4fb3418e680d010248ac1e304d9656cc5c8de54caaf91d666712e2f633
  [linux_arm64/libexternal_delegate_obj.so]=7cc05a58e977a67b2907e60f43b3d9e18d9d5090a2292af3cf31b67645938b98
)
cache=${TFLITE_LIB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edgefleet/tflite-lib}/$VERSION

arch=${1:-}
if [ -z "$arch" ]; then
  case $(uname -m) in
    x86_64|amd64) arch=amd64 ;;
    aarch64|arm64) arch=arm64 ;;
    *) echo "tflite-lib: no prebuilt TensorFlow Lite C library for $(uname -m) (amd64 and arm64 only): build it (docs/acceleration.md)" >&2; exit 1 ;;
  esac
fi
case $arch in amd64|arm64) ;; *) echo "tflite-lib: unknown architecture $arch (amd64 or arm64)" >&2; exit 1 ;; esac

verified() {
  local f
  for f in "${!PINS[@]}"; do
    [ -f "$cache/$f" ] && [ "$(sha256sum "$cache/$f" | cut -d' ' -f1)" = "${PINS[$f]}" ] || return 1
  done
}

if ! verified; then
  command -v npm >/dev/null || { echo "tflite-lib: npm not found (apt-get install npm), so no libtensorflowlite_c" >&2; exit 1; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "tflite-lib: fetching $PKG (TensorFlow Lite $VERSION C libraries) into $cache" >&2
  if ! (cd "$tmp" && timeout 180 npm pack "$PKG" --loglevel=error --fetch-retries=1 --fetch-timeout=60000 >/dev/null 2>"$tmp/npm.log"); then
    echo "tflite-lib: npm pack $PKG failed (registry unreachable?): $(tail -n1 "$tmp/npm.log")" >&2
    exit 1
  fi
  tgz=$(ls "$tmp"/*.tgz)
  got=$(sha256sum "$tgz" | cut -d' ' -f1)
  if [ "$got" != "$TGZ_SHA256" ]; then
    echo "tflite-lib: $PKG has sha256 $got, pinned $TGZ_SHA256: refusing it" >&2
    exit 1
  fi
  tar -xzf "$tgz" -C "$tmp" package/cc_deps/linux_amd64 package/cc_deps/linux_arm64
  rm -rf "$cache"
  mkdir -p "$cache"
  for f in "${!PINS[@]}"; do
    mkdir -p "$cache/$(dirname "$f")"
    cp "$tmp/package/cc_deps/$f" "$cache/$f"
    chmod 0755 "$cache/$f"
  done
  if ! verified; then
    rm -rf "$cache"
    echo "tflite-lib: a library in $PKG does not match its pinned sha256: refusing it" >&2
    exit 1
  fi
fi
echo "$cache/linux_$arch/libtensorflowlite_c.so"
