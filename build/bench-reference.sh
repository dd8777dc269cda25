#!/usr/bin/env bash
# Compares edge-agent's p50 latency (one and two threads, with allocations
# per Invoke; the median of ROUNDS alternating runs, default 3) with
# TensorFlow Lite (WebAssembly build, single thread,
# XNNPACK on and off) on every conformance model, in one run on this
# machine. Needs node; installs the reference runner's npm
# packages into a cached copy of ../shared/tflite-reference
# (build/tflite-reference.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# The SIMD kernels need the experiment (as in the Makefile).
export GOEXPERIMENT=${GOEXPERIMENT-simd}
work=$(build/tflite-reference.sh)
go build -o /tmp/edge-agent-bench ./cmd/edge-agent
repeat=${REPEAT:-20}
rounds=${ROUNDS:-3}
printf '| model | edge-agent p50 ms | edge-agent 2 threads p50 ms | allocs/Invoke | TFLite builtin (XNNPACK off) p50 ms | TFLite XNNPACK p50 ms |\n|---|---:|---:|---:|---:|---:|\n'
ratios=()
# MODELS (a glob, default every model) limits the run.
for d in testdata/conformance/${MODELS:-*}/; do
  name=$(basename "$d")
  # ROUNDS runs of one and two threads, alternating (a shared machine's
  # slow minutes then hit both), each reported as the median of the
  # rounds' p50s. The JSON is read after the runs end: a parser started
  # in a pipe alongside would take a core while edge-agent measures.
  ones=() twos=()
  for _ in $(seq "$rounds"); do
    ones+=("$(/tmp/edge-agent-bench bench --model "$d/model.tflite" --repeat "$repeat" --json)")
    twos+=("$(/tmp/edge-agent-bench bench --model "$d/model.tflite" --threads 2 --repeat "$repeat" --json)")
  done
  median_p50='import json,statistics,sys; print("%.4f" % statistics.median(json.loads(a)["p50_ms"] for a in sys.argv[1:]))'
  ours=$(python3 -c "$median_p50" "${ones[@]}")
  two="$(python3 -c "$median_p50" "${twos[@]}") $(python3 -c 'import json,sys; print("%g" % json.loads(sys.argv[1])["allocs_per_invoke"])' "${twos[-1]}")"
  ins=()
  for f in "$d"/case_0/input_*.bin; do ins+=(--input "$f"); done
  t=$(mktemp -d)
  off=$(node "$work/run.mjs" --model "$d/model.tflite" "${ins[@]}" --outdir "$t/off" --xnnpack off --repeat "$repeat" --warmup 3 >/dev/null && python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); t=m.get("timing") or m.get("latency_ms") or m; print("%.4f" % (t.get("median_ms") or t.get("median")))' "$t/off/meta.json")
  on=$(node "$work/run.mjs" --model "$d/model.tflite" "${ins[@]}" --outdir "$t/on" --xnnpack on --repeat "$repeat" --warmup 3 >/dev/null && python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); t=m.get("timing") or m.get("latency_ms") or m; print("%.4f" % (t.get("median_ms") or t.get("median")))' "$t/on/meta.json")
  printf '| %s | %s | %s | %s | %s | %s |\n' "$name" "$ours" "${two% *}" "${two#* }" "$off" "$on"
  case $name in
  mobilenet_v2_1.0_224_quant | tf2_mobilenet_v2_1.0_224_ptq | mobilenet_v1_0.25_128_quant | person_detect)
    ratios+=("$ours/$on") ;;
  esac
  rm -rf "$t"
done
# The issue-10 figure: geometric mean of edge-agent / XNNPACK over the four
# MobileNet-class models (goal <= 0.5).
if [ ${#ratios[@]} -gt 0 ]; then
  python3 -c 'import math,sys; r=[float(x.split("/")[0])/float(x.split("/")[1]) for x in sys.argv[1:]]; print("geomean edge-agent/XNNPACK over %d models: %.3f" % (len(r), math.exp(sum(map(math.log,r))/len(r))))' "${ratios[@]}"
fi
