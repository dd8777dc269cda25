#!/usr/bin/env bash
# Latency of the conformance set's vision models on the pure-Go runtime,
# TensorFlow Lite's builtin kernels, XNNPACK, and XNNPACK with quantized
# operators, one thread, through the agent's engine (edge-agent-tflite bench
# --backend): prints a Markdown table of p50 (min) in ms. Needs
# bin/edge-agent-tflite (make build-tflite) and a library (make tflite-lib
# or LIB=path). REPEAT (default 30) timed runs after 3 warm-up runs.
set -euo pipefail
cd "$(dirname "$0")/.."
lib=${LIB:-$(bash build/tflite-lib.sh)}
agent=${AGENT:-bin/edge-agent-tflite}
repeat=${REPEAT:-30}
echo "| model | native (pure Go) | tflite builtin | tflite + xnnpack | tflite + xnnpack quantized=true |"
echo "| --- | --- | --- | --- | --- |"
for m in mobilenet_v1_0.25_128_quant mobilenet_v2_1.0_224_quant tf2_mobilenet_v2_1.0_224_ptq person_detect; do
  row="| $m"
  for args in "--backend native" "--backend tflite" "--backend tflite --delegate xnnpack" "--backend tflite --delegate xnnpack --delegate-option quantized=true"; do
    # shellcheck disable=SC2086
    if out=$("$agent" bench $args --tflite-lib "$lib" --model "testdata/conformance/$m/model.tflite" --threads 1 --warmup 3 --repeat "$repeat" --json 2>/dev/null); then
      row+=$(echo "$out" | jq -r '" | \(.p50_ms * 100 | round / 100) (\(.min_ms * 100 | round / 100))" + (if (.engine | test("rejected")) then " rejected → builtin" else "" end)')
    else
      row+=" | refused"
    fi
  done
  echo "$row |"
done
