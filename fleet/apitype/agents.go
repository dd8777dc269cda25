package apitype

import (
	"github.com/edgefleet/edgefleet/internal/wire"
)

// AgentBodyType is the media type of POST /api/v1/agents: the raw binary.
// It is not a type an HTML form or a "simple" cross-site request can send,
// so the guard's CSRF defence holds for this route too.
const AgentBodyType = "application/octet-stream"

// AgentRelease is one released edge-agent binary as the API shows it.
type AgentRelease struct {
	Version string `json:"version"`
	// Platform is GOOS/GOARCH[/vGOARM], e.g. linux/arm64, linux/arm/v7.
	Platform string      `json:"platform"`
	Target   wire.Target `json:"target"`
	// Devices counts the devices whose status reports this version (any
	// platform: devices report GOARCH, not GOARM).
	Devices int `json:"devices"`
	// Existed is true when a push found the same bytes already released.
	Existed bool `json:"existed,omitempty"`
}
