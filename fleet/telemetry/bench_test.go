package telemetry_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/fleet/telemetry"
	"github.com/edgefleet/edgefleet/fleet/wire"
)

// BenchmarkDrift24h is one drift query over a day of per-minute rollups
// of the current and the baseline version (the reference window).
func BenchmarkDrift24h(b *testing.B) {
	ctx := context.Background()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	tel, err := telemetry.OpenWith(ctx, store.NewMem(), telemetry.Options{Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	seq := uint64(0)
	for m := 0; m < 24*60; m++ {
		var recs []wire.TelemetryRecord
		for _, v := range []string{"1", "2"} {
			seq++
			recs = append(recs, monRec(seq, now.Add(-time.Duration(m)*time.Minute), v, monitoring(100, 18, 5)))
		}
		if _, _, err := tel.Ingest(ctx, &wire.TelemetryBatch{V: 1, DeviceID: fmt.Sprint("d", m%50), Records: recs}, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		r := tel.Drift(telemetry.DriftQuery{ModelID: "m", Version: "2", Baseline: "1", Since: now.Add(-time.Hour), Until: now})
		if !r.Evaluated {
			b.Fatal("not evaluated")
		}
	}
}
