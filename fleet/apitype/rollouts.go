package apitype

import (
	"github.com/edgefleet/edgefleet/fleet/rollout"
	"github.com/edgefleet/edgefleet/fleet/telemetry"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// RolloutRequest is the body of POST /api/v1/rollouts; durations are Go
// duration strings ("10m").
type RolloutRequest struct {
	ID string `json:"id,omitempty"`
	// Kind is "model" (default) or "agent" (no model_id: an edge-agent release).
	Kind           rollout.Kind          `json:"kind,omitempty"`
	ModelID        string                `json:"model_id"`
	Version        string                `json:"version"`
	Strategy       rollout.Strategy      `json:"strategy,omitempty"`
	Stages         []int                 `json:"stages,omitempty"`
	SplitPercent   int                   `json:"split_percent,omitempty"`
	Selector       string                `json:"selector,omitempty"`
	Soak           string                `json:"soak,omitempty"`
	DeviceDeadline string                `json:"device_deadline,omitempty"`
	BaselineWindow string                `json:"baseline_window,omitempty"`
	OnFailure      rollout.FailureAction `json:"on_failure,omitempty"`
	ManualPromote  bool                  `json:"manual_promote,omitempty"`
	Gates          *rollout.Gates        `json:"gates,omitempty"`
}

// RolloutDevices is GET /api/v1/rollouts/{id}/devices.
type RolloutDevices struct {
	ID     string `json:"id"`
	Phase  string `json:"phase"`
	Reason string `json:"reason,omitempty"`
	// FailedGates are the rollout's gates that failed (fleet-wide values).
	FailedGates []rollout.GateResult `json:"failed_gates"`
	Devices     []RolloutDevice      `json:"devices"`
}

// RolloutDevice is one device of a rollout as the console shows it.
type RolloutDevice struct {
	ID            string        `json:"id"`
	Stage         int           `json:"stage"`
	Presence      wire.Presence `json:"presence,omitempty"`
	Active        string        `json:"active,omitempty"`
	Baseline      string        `json:"baseline,omitempty"`
	JobID         string        `json:"job_id,omitempty"`
	JobState      wire.JobState `json:"job_state,omitempty"`
	Reason        string        `json:"reason,omitempty"`
	RollbackState wire.JobState `json:"rollback_state,omitempty"`
	// Health is the new version on this device since the rollout began.
	Health telemetry.Health `json:"health"`
	// Failed lists the gates this device fails by itself.
	Failed []DeviceGate `json:"failed_gates"`
}

// DeviceGate is one gate a device fails on its own.
type DeviceGate struct {
	Gate      string  `json:"gate"`
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	// Reason is the device's own explanation where it gave one (a failed
	// install), otherwise what the fleet measured.
	Reason string `json:"reason"`
}
