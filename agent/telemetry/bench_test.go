package telemetry

import (
	"testing"

	"github.com/edgefleet/edgefleet/internal/wire"
)

// BenchmarkMonitorInstance is the telemetry cost of one predicted
// instance: its top-1 class and score and 16 input features.
func BenchmarkMonitorInstance(b *testing.B) {
	c := NewCollector(nil)
	k := Key{Model: "m", Version: "1", Role: wire.RolePrimary}
	vals := make([]float64, wire.MaxFeatures)
	for i := range vals {
		vals[i] = float64(i) * 0.37
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.Prediction(k, i%10, 0.8)
		c.Features(k, vals)
	}
}
