package apitype

import (
	"github.com/edgefleet/edgefleet/fleet/registry"
)

// DeviceView is a device as the API shows it (no password hash).
type DeviceView struct {
	registry.Device
	PasswordHash string               `json:"password_hash,omitempty"`
	Jobs         []registry.JobRecord `json:"jobs,omitempty"`
}

// TokenRequest creates an enrollment token (POST /api/v1/enroll-tokens).
type TokenRequest struct {
	Labels  map[string]string `json:"labels,omitempty"`
	MaxUses int               `json:"max_uses,omitempty"`
	TTL     string            `json:"ttl,omitempty"`
}

// EnrollTokenResponse is the answer of POST /api/v1/enroll-tokens: the
// token's secret (shown once) and its record.
type EnrollTokenResponse struct {
	Info  registry.Token `json:"info"`
	Token string         `json:"token"`
}
