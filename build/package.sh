#!/usr/bin/env bash
# Builds the edge-agent and fleet-server packages (.deb, .rpm, .apk) with
# nfpm (fetched through the Go module proxy).
#
#   build/package.sh VERSION
#
# Environment: ARCHES (default "amd64 arm64 armv7 riscv64" for the agent;
# fleet-server is packaged for amd64 and arm64 only), FORMATS (default
# "deb rpm apk"), BIN (binaries, default bin/), DIST (output, default dist/),
# NFPM (an nfpm binary, or the module go run fetches; default v2.48.0).
# The agent binaries come from `make cross` (bin/edge-agent-linux-ARCH);
# fleet-server and fleetctl are built here when missing.
#
# nfpm does not expand environment variables in contents.src, so each
# package/arch gets its own rendered config (DIST/nfpm/*.yaml) from the
# templates build/nfpm-agent.yaml and build/nfpm-server.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-0.0.0}
version=${version#v}
case $version in [0-9]*) ;; *) version="0.0.0+${version}";; esac
ARCHES=${ARCHES:-amd64 arm64 armv7 riscv64}
FORMATS=${FORMATS:-deb rpm apk}
BIN=${BIN:-bin}
DIST=${DIST:-dist}
GO=${GO:-go}
NFPM=${NFPM:-github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0}
mkdir -p "$DIST/nfpm" "$BIN"

# nfpm ARGS...: NFPM is an nfpm binary or a module to `go run` (cached in
# the Go build cache after the first run).
nfpm() {
  if [ -x "$NFPM" ]; then "$NFPM" "$@"; else $GO run "$NFPM" "$@"; fi
}

# render TEMPLATE OUT ARCH BINARY [EXTRA_BINARY]: a config with literal values.
render() {
  local tmpl=$1 out=$2 arch=$3 binary=$4 extra=${5:-}
  sed -e "s|\${PKG_ARCH}|$arch|g" -e "s|\${VERSION}|$version|g" \
      -e "s|\${BINARY}|$binary|g" -e "s|\${FLEETCTL}|$extra|g" "$tmpl" >"$out"
  if grep -n '^[^#]*\${' "$out"; then
    echo "package: $out still has unexpanded variables" >&2
    exit 1
  fi
}

# goarch ARCH: GOARCH and GOARM of a package arch name.
goenv() {
  case $1 in
    amd64) echo "amd64 ";; arm64) echo "arm64 ";; armv7) echo "arm 7";; riscv64) echo "riscv64 ";;
    *) echo "package: unknown arch $1" >&2; exit 1;;
  esac
}

for arch in $ARCHES; do
  case $arch in amd64) pkg=amd64;; arm64) pkg=arm64;; armv7) pkg=arm7;; riscv64) pkg=riscv64;; *) echo "package: unknown arch $arch" >&2; exit 1;; esac
  agent=$BIN/edge-agent-linux-$arch
  if [ ! -x "$agent" ]; then
    echo "package: $agent missing (run make cross)" >&2
    exit 1
  fi
  render build/nfpm-agent.yaml "$DIST/nfpm/edge-agent-$arch.yaml" "$pkg" "$agent"
  configs=("$DIST/nfpm/edge-agent-$arch.yaml")
  case $arch in
    amd64|arm64)
      read -r goarch goarm < <(goenv "$arch")
      for cmd in fleet-server fleetctl; do
        out=$BIN/$cmd-linux-$arch
        if [ ! -x "$out" ]; then
          echo "build $out"
          CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=$goarm $GO build -trimpath \
            -ldflags "-s -w -X main.version=$version" -o "$out" "./cmd/$cmd"
        fi
      done
      render build/nfpm-server.yaml "$DIST/nfpm/fleet-server-$arch.yaml" "$pkg" "$BIN/fleet-server-linux-$arch" "$BIN/fleetctl-linux-$arch"
      configs+=("$DIST/nfpm/fleet-server-$arch.yaml")
      ;;
  esac
  for cfg in "${configs[@]}"; do
    for fmt in $FORMATS; do
      nfpm package --config "$cfg" --packager "$fmt" --target "$DIST/"
    done
  done
done
ls -l "$DIST"/*.deb "$DIST"/*.rpm "$DIST"/*.apk 2>/dev/null || true
