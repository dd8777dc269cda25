#!/usr/bin/env bash
# `make test-package` (part of `make test`): builds the edge-agent and
# fleet-server .debs for this machine's arch with build/package.sh and
# checks that each installs into a scratch root: dpkg -x, the expected
# files with their modes, conffiles, maintainer scripts that parse, the
# binaries run, and `systemd-analyze verify` of the units (when
# systemd-analyze exists; `make setup` installs dpkg and systemd tools).
# The first run compiles nfpm (minutes on a busy machine); later runs take
# it from the Go build cache, or set NFPM to an nfpm binary.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
for tool in dpkg dpkg-deb; do
  command -v $tool >/dev/null || { echo "test-package: $tool missing (run make setup)" >&2; exit 1; }
done
arch=$($GO env GOARCH)
case $arch in amd64|arm64) ;; *) echo "test-package: skipped on $arch (fleet-server is packaged for amd64 and arm64)"; exit 0;; esac
BIN=${BIN:-bin}
LDFLAGS=${LDFLAGS:--s -w -X main.version=0.0.0-test}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin"
start=$SECONDS

# Only this machine's arch is packaged and tested (make package builds
# every board). The three binaries come from $BIN when fresh (built by
# `make build` or `make cross` for this arch, CGO-free, newer than every
# non-test .go file, go.mod and go.sum); the others are built here in one
# go build with make build's flags, so its compile cache is shared.
# fresh FILE: FILE is a linux/$arch CGO-free Go binary newer than the sources.
fresh() {
  local f=$1 info
  [ -x "$f" ] || return 1
  info=$($GO version -m "$f" 2>/dev/null) || return 1
  grep -q "GOOS=linux" <<<"$info" && grep -q "GOARCH=$arch\b" <<<"$info" && grep -q "CGO_ENABLED=0" <<<"$info" || return 1
  [ -z "$(find . -path ./.git -prune -o \( -name '*.go' ! -name '*_test.go' -o -name go.mod -o -name go.sum \) -newer "$f" -print -quit)" ]
}
build=()
for cmd in edge-agent fleet-server fleetctl; do
  reused=""
  for cand in "$BIN/$cmd-linux-$arch" "$BIN/$cmd"; do
    if fresh "$cand"; then
      cp "$cand" "$tmp/bin/$cmd-linux-$arch"
      reused=$cand
      break
    fi
  done
  if [ -n "$reused" ]; then echo "test-package: reusing $reused"; else build+=("./cmd/$cmd"); fi
done
if [ ${#build[@]} -gt 0 ]; then
  echo "test-package: building ${build[*]} (linux/$arch)"
  mkdir -p "$tmp/build"
  CGO_ENABLED=0 GOOS=linux GOARCH=$arch $GO build -trimpath -ldflags "$LDFLAGS" -o "$tmp/build/" "${build[@]}"
  for f in "$tmp"/build/*; do mv "$f" "$tmp/bin/$(basename "$f")-linux-$arch"; done
fi
built=$SECONDS
ARCHES=$arch FORMATS=deb BIN="$tmp/bin" DIST="$tmp/dist" bash build/package.sh 0.0.0-test >"$tmp/package.log" 2>&1 || {
  cat "$tmp/package.log" >&2; echo "test-package: build/package.sh failed" >&2; exit 1; }
grep -q '^build ' "$tmp/package.log" && { grep '^build ' "$tmp/package.log" >&2; echo "test-package: package.sh rebuilt a binary it was given" >&2; exit 1; }
packaged=$SECONDS

fail() { echo "test-package: $*" >&2; exit 1; }
checked=0
for deb in "$tmp"/dist/*.deb; do
  [ -e "$deb" ] || fail "no .deb built"
  name=$(dpkg-deb -f "$deb" Package)
  [ "$(dpkg-deb -f "$deb" Architecture)" = "$arch" ] || fail "$deb: architecture $(dpkg-deb -f "$deb" Architecture), want $arch"
  root="$tmp/root-$name"
  dpkg -x "$deb" "$root"
  dpkg-deb -e "$deb" "$root/DEBIAN"
  case $name in
    edge-agent)   bins="edge-agent"; units="edge-agent.service"; confs="/etc/edgefleet/agent.yaml";;
    fleet-server) bins="fleet-server fleetctl"; units="fleet-server.service"; confs="/etc/default/fleet-server";;
    *) fail "unexpected package $name";;
  esac
  for b in $bins; do
    bin="$root/usr/bin/$b"
    if [ -L "$bin" ]; then
      # edge-agent: /usr/bin links to the self-updatable copy in /opt.
      target=$(readlink "$bin")
      [ "$target" = "/opt/edgefleet/bin/$b" ] || fail "$name: /usr/bin/$b links to $target, want /opt/edgefleet/bin/$b"
      bin="$root$target"
      grep -q "ReadWritePaths=.*/opt/edgefleet/bin" "$root/lib/systemd/system/$b.service" ||
        fail "$name: the unit does not let the agent replace $target (self-update)"
      grep -q "chown edgefleet:edgefleet /opt/edgefleet/bin" "$root/DEBIAN/postinst" ||
        fail "$name: postinst does not give /opt/edgefleet/bin to the service user (self-update)"
    fi
    [ -x "$bin" ] || fail "$name: $bin missing or not executable"
    "$bin" --help >/dev/null || fail "$name: $bin --help failed"
  done
  for c in $confs; do
    [ -f "$root$c" ] || fail "$name: $c missing"
    grep -qx "$c" "$root/DEBIAN/conffiles" || fail "$name: $c is not a conffile"
  done
  [ -f "$root/DEBIAN/postinst" ] || fail "$name: no postinst"
  sh -n "$root/DEBIAN/postinst" || fail "$name: postinst does not parse"
  for u in $units; do
    f="$root/lib/systemd/system/$u"
    [ -f "$f" ] || fail "$name: unit $u missing"
    if command -v systemd-analyze >/dev/null; then
      # --root resolves ExecStart= and the other paths inside a copy of the
      # scratch root that also holds this machine's standard units
      # (sysinit.target, network-online.target, ...).
      vroot="$tmp/vroot-$name"
      rm -rf "$vroot"
      cp -a "$root" "$vroot"
      cp -an /usr/lib/systemd/system/. "$vroot/lib/systemd/system/"
      out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no --root="$vroot" "$vroot/lib/systemd/system/$u" 2>&1) || {
        echo "$out" >&2; fail "$name: systemd-analyze verify $u failed"; }
      if [ -n "$out" ]; then echo "$out" >&2; fail "$name: systemd-analyze verify $u warned"; fi
      # control: the same check fails on a unit whose binary is missing
      sed -i 's|^ExecStart=/[^ ]*|ExecStart=/usr/bin/not-installed|' "$vroot/lib/systemd/system/$u"
      if SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no --root="$vroot" "$vroot/lib/systemd/system/$u" >/dev/null 2>&1; then
        fail "$name: systemd-analyze verify passes a unit whose ExecStart is missing: the check proves nothing"
      fi
    else
      echo "test-package: systemd-analyze not found, unit $u not verified" >&2
    fi
  done
  echo "test-package: $name $(dpkg-deb -f "$deb" Version) ($arch): $(dpkg-deb -c "$deb" | wc -l) entries, installs into a scratch root, units verify"
  checked=$((checked + 1))
done
[ "$checked" -eq 2 ] || fail "checked $checked packages, want 2 (edge-agent, fleet-server)"
echo "test-package: ok in $((SECONDS - start)) s (binaries $((built - start)) s, nfpm $((packaged - built)) s, checks $((SECONDS - packaged)) s)"
