package telemetry_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/fleet/telemetry"
	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// BenchmarkDrift24h is one drift query over a day of per-minute rollups
// of the current and the baseline version (the reference window).
func BenchmarkDrift24h(b *testing.B) {
	ctx := context.Background()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	tel, err := telemetry.OpenWith(ctx, store.NewMem(), telemetry.Options{Clock: clock.Func(func() time.Time { return now })})
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

// BenchmarkIngestMonitoring is the ingestion of one 10-record batch whose
// records carry full monitoring (32 classes, 16 features); compare with
// BenchmarkIngestPlain, the same records without it.
func BenchmarkIngestMonitoring(b *testing.B) { benchIngest(b, true) }

// BenchmarkIngestPlain is BenchmarkIngestMonitoring without monitoring.
func BenchmarkIngestPlain(b *testing.B) { benchIngest(b, false) }

func benchIngest(b *testing.B, withMon bool) {
	ctx := context.Background()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	tel, err := telemetry.OpenWith(ctx, store.NewMem(), telemetry.Options{Clock: clock.Func(func() time.Time { return now })})
	if err != nil {
		b.Fatal(err)
	}
	m := monitoring(100, 18, 5)
	m.Classes = nil
	for i := 0; i < wire.MaxClasses; i++ {
		m.Classes = append(m.Classes, wire.ClassCount{Class: i * 7, Count: uint64(i + 1)})
	}
	f := m.Features[0]
	m.Features = nil
	for i := 0; i < wire.MaxFeatures; i++ {
		f.Index = i
		m.Features = append(m.Features, f)
	}
	seq := uint64(0)
	b.ReportAllocs()
	for b.Loop() {
		recs := make([]wire.TelemetryRecord, 10)
		for j := range recs {
			seq++
			recs[j] = rec(seq, now, "1", 100, 0, 5)
			if withMon {
				recs[j].Monitoring = m
			}
		}
		if _, _, err := tel.Ingest(ctx, &wire.TelemetryBatch{V: 1, DeviceID: "d", Records: recs}, nil); err != nil {
			b.Fatal(err)
		}
	}
}
