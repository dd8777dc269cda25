package fleetlink

import (
	"github.com/edgefleet/edgefleet/agent/telemetry"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// RingSource adapts the agent's telemetry ring to TelemetrySource; the
// fleet receives each record's wire part, the detail fields stay local.
func RingSource(r *telemetry.Ring) TelemetrySource { return ringSource{r} }

type ringSource struct{ r *telemetry.Ring }

func (s ringSource) Read(after uint64, limit int) ([]wire.TelemetryRecord, error) {
	recs, err := s.r.Read(after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]wire.TelemetryRecord, len(recs))
	for i, r := range recs {
		out[i] = r.TelemetryRecord
	}
	return out, nil
}

func (s ringSource) Ack(upTo uint64) error    { return s.r.Ack(upTo) }
func (s ringSource) Dropped() (uint64, error) { return s.r.Dropped() }
func (s ringSource) Notify() <-chan struct{}  { return s.r.Notify() }
