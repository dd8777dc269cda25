#!/usr/bin/env bash
# Prepares the real TensorFlow Lite reference runner (WebAssembly, node) used
# to regenerate goldens (`go test ... -args -update-goldens`) and by
# build/bench-reference.sh: copies ../shared/tflite-reference into a cache
# directory and installs its npm packages there, once. Prints the directory.
set -euo pipefail
cd "$(dirname "$0")/.."
ref=${TFLITE_REFERENCE:-../shared/tflite-reference}
work=${TFLITE_REFERENCE_WORK:-${XDG_CACHE_HOME:-$HOME/.cache}/edgefleet/tflite-reference}
if [ ! -f "$ref/run.mjs" ]; then
  echo "tflite-reference: $ref/run.mjs not found (set TFLITE_REFERENCE to the shared runner)" >&2
  exit 1
fi
if [ ! -d "$work/node_modules" ]; then
  command -v npm >/dev/null || { echo "tflite-reference: npm not found (apt-get install nodejs npm)" >&2; exit 1; }
  echo "tflite-reference: installing the runner into $work (npm ci)" >&2
  rm -rf "$work"; mkdir -p "$(dirname "$work")"; cp -r "$ref" "$work"; chmod -R u+w "$work"
  (cd "$work" && npm ci --silent) >&2
fi
echo "$work"
