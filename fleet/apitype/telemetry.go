package apitype

import (
	"github.com/edgefleet/edgefleet/fleet/telemetry"
)

// Series is one version's time series.
type Series struct {
	Model   string            `json:"model"`
	Version string            `json:"version"`
	Points  []telemetry.Point `json:"points"`
}
