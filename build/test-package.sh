#!/usr/bin/env bash
# `make test-package` (part of `make test`): builds the edge-agent and
# fleet-server .debs for this machine's arch with build/package.sh and
# checks that each installs into a scratch root: dpkg -x, the expected
# files with their modes, conffiles, maintainer scripts that parse, the
# binaries run, and `systemd-analyze verify` of the units (when
# systemd-analyze exists; `make setup` installs dpkg and systemd tools).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
for tool in dpkg dpkg-deb; do
  command -v $tool >/dev/null || { echo "test-package: $tool missing (run make setup)" >&2; exit 1; }
done
arch=$($GO env GOARCH)
case $arch in amd64|arm64) ;; *) echo "test-package: skipped on $arch (fleet-server is packaged for amd64 and arm64)"; exit 0;; esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin"
CGO_ENABLED=0 $GO build -trimpath -o "$tmp/bin/edge-agent-linux-$arch" ./cmd/edge-agent
ARCHES=$arch FORMATS=deb BIN="$tmp/bin" DIST="$tmp/dist" bash build/package.sh 0.0.0-test >"$tmp/package.log" 2>&1 || {
  cat "$tmp/package.log" >&2; echo "test-package: build/package.sh failed" >&2; exit 1; }

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
    [ -x "$root/usr/bin/$b" ] || fail "$name: /usr/bin/$b missing or not executable"
    "$root/usr/bin/$b" --help >/dev/null || fail "$name: /usr/bin/$b --help failed"
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
      sed -i 's|^ExecStart=/usr/bin/[a-z-]*|ExecStart=/usr/bin/not-installed|' "$vroot/lib/systemd/system/$u"
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
