#!/usr/bin/env bash
# Runs every fuzz target of the module for FUZZTIME each (default 10s):
# make fuzz-short. Stops at the first failure (its input is saved under
# the package's testdata/fuzz, where every later go test replays it).
set -euo pipefail
cd "$(dirname "$0")/.."
go=${GO:-go}
fuzztime=${FUZZTIME:-10s}
for pkg in $($go list ./...); do
  for target in $($go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "fuzz-all: $pkg $target ($fuzztime)"
    $go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 5s "$pkg"
  done
done
