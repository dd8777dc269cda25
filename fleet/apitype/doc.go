// Package apitype holds the request and response types of fleet-server's
// /api/v1 HTTP API, shared by the server (fleet/server) and its clients
// (fleet/client, fleetctl, the console's tests) so a client does not link
// the server. Values the API returns as they are stored (devices, models,
// rollouts, telemetry, tokens) keep their types in the packages that own
// them (fleet/registry, fleet/rollout, fleet/telemetry, fleet/auth); those
// packages link neither a broker nor a database engine.
package apitype
