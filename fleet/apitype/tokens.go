package apitype

import (
	"github.com/edgefleet/edgefleet/fleet/auth"
)

// Principal is who made a request.
type Principal struct {
	ID    string     `json:"id"`
	Name  string     `json:"name"`
	Scope auth.Scope `json:"scope"`
}

// APITokenRequest is the body of POST /api/v1/tokens.
type APITokenRequest struct {
	Name  string     `json:"name"`
	Scope auth.Scope `json:"scope"`
	// TTL is a Go duration ("720h"); empty means no expiry.
	TTL string `json:"ttl,omitempty"`
}

// APITokenResponse carries a new token's secret (shown once).
type APITokenResponse struct {
	Token string     `json:"token"`
	Info  auth.Token `json:"info"`
}

// AuditPage is the answer of GET /api/v1/audit: entries newest first and
// the "before" value of the next page (0: no more).
type AuditPage struct {
	Entries []auth.Entry `json:"entries"`
	Next    uint64       `json:"next,omitempty"`
}
