#!/bin/sh
# Creates the service user and data directory, then enables the unit.
set -e
getent group edgefleet >/dev/null || groupadd --system edgefleet
getent passwd edgefleet >/dev/null || useradd --system --gid edgefleet --home-dir /var/lib/edgefleet --shell /usr/sbin/nologin edgefleet
mkdir -p /var/lib/edgefleet /etc/edgefleet
chown edgefleet:edgefleet /var/lib/edgefleet
# Self-update replaces the binary in place (new file + rename in its directory).
chown edgefleet:edgefleet /opt/edgefleet/bin /opt/edgefleet/bin/edge-agent
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
  systemctl enable edge-agent.service || true
fi
