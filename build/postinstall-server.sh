#!/bin/sh
# Creates fleet-server's own system user and data directory, then enables
# the unit. The agent's user (edgefleet) is separate.
set -e
getent group edgefleet-server >/dev/null || groupadd --system edgefleet-server
getent passwd edgefleet-server >/dev/null || useradd --system --gid edgefleet-server --home-dir /var/lib/edgefleet-server --shell /usr/sbin/nologin edgefleet-server
mkdir -p /var/lib/edgefleet-server
chown edgefleet-server:edgefleet-server /var/lib/edgefleet-server
chmod 0750 /var/lib/edgefleet-server
if [ -f /etc/default/fleet-server ]; then
  chgrp edgefleet-server /etc/default/fleet-server || true
fi
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
  systemctl enable fleet-server.service || true
fi
