package telemetry_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgefleet/edgefleet/fleet/store/boltstore"
	"github.com/edgefleet/edgefleet/fleet/telemetry"
	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// monitoring is a record's distributions: n predictions with their
// confidence at bucket peak, feature 0 around center.
func monitoring(n uint64, peak int, center float64) *wire.Monitoring {
	m := &wire.Monitoring{Predictions: n, Classes: []wire.ClassCount{{Class: 0, Count: n / 2}, {Class: 1, Count: n - n/2}},
		Confidence: make([]uint64, wire.ConfidenceBuckets)}
	m.Confidence[peak] = n
	var s wire.Sketch
	for i := uint64(0); i < n; i++ {
		s.Add(center + float64(i%5)*0.1)
	}
	m.Features = []wire.FeatureSummary{{Index: 0, Count: n, Mean: center + 0.2, Std: 0.14, Min: center, Max: center + 0.4, Sketch: s}}
	m.Resources = &wire.Resources{ProcessRSSBytes: 1 << 20, DeviceMemTotalBytes: 1 << 30, DeviceMemAvailableBytes: 1 << 29, DeviceCPUPercent: 10, Load1: 0.5}
	return m
}

func monRec(seq uint64, at time.Time, version string, m *wire.Monitoring) wire.TelemetryRecord {
	r := rec(seq, at, version, m.Predictions, 0, 5)
	r.Monitoring = m
	return r
}

// TestDriftAgainstBaselineAndReference: a version whose confidence
// collapsed drifts against the other version's telemetry and against
// reference stats; an unshifted one does not (control). Distributions
// survive a restart; the hot window keeps no distributions; Prometheus
// shows bounded drift gauges.
func TestDriftAgainstBaselineAndReference(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	db, err := boltstore.Open(filepath.Join(t.TempDir(), "fleet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg := prometheus.NewRegistry()
	clk := clock.Func(func() time.Time { return now })
	tel, err := telemetry.OpenWith(ctx, db, telemetry.Options{Clock: clk, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	var batch []wire.TelemetryRecord
	seq := uint64(0)
	add := func(at time.Time, v string, m *wire.Monitoring) {
		seq++
		batch = append(batch, monRec(seq, at, v, m))
	}
	for i := 0; i < 10; i++ {
		at := now.Add(-time.Duration(10-i) * time.Minute)
		add(at, "1", monitoring(100, 19, 5))
		add(at, "2", monitoring(50, 19, 5)) // unshifted
		add(at, "3", monitoring(50, 6, 5))  // confidence collapsed
	}
	if _, _, err := tel.Ingest(ctx, &wire.TelemetryBatch{V: 1, DeviceID: "d1", Records: batch}, nil); err != nil {
		t.Fatal(err)
	}
	check := func(tel *telemetry.Store) {
		t.Helper()
		ok := tel.Drift(telemetry.DriftQuery{ModelID: "m", Version: "2", Baseline: "1"})
		if !ok.Evaluated || ok.Drift > 1e-9 || ok.Reference.Source != "version" || ok.Reference.Versions[0] != "1" {
			t.Fatalf("unshifted: %+v", ok.Result)
		}
		bad := tel.Drift(telemetry.DriftQuery{ModelID: "m", Version: "3", Baseline: "1"})
		if !bad.Evaluated || bad.Drift < 5 || *bad.KSConfidence != 1 || *bad.PSI.Classes > 1e-9 || bad.PSI.Features[0].PSI > 1e-9 {
			t.Fatalf("shifted: %+v", bad.Result)
		}
		if bad.Current.Predictions != 500 || bad.ReferenceDist.Predictions != 1000 || bad.Current.Confidence.Counts[6] != 500 ||
			len(bad.Current.Confidence.Bounds) != wire.ConfidenceBuckets+1 || bad.Current.Resources == nil || bad.Current.Resources.Samples != 10 {
			t.Fatalf("distributions: %+v", bad.Current)
		}
		f := bad.Current.Features[0]
		if f.Count != 500 || f.Min != 5 || f.Max != 5.4 || f.P50 < 5 || f.P50 > 5.4 {
			t.Fatalf("feature view %+v", f)
		}
		s := tel.DriftSeries(telemetry.DriftQuery{ModelID: "m", Version: "3", Baseline: "1"}, 5*time.Minute)
		if len(s.Points) != 2 || s.Points[0].Drift < 5 {
			t.Fatalf("series %+v", s)
		}
	}
	check(tel)
	// The replaced version is preferred as the reference; without data of
	// its own every other version is (the rolled-back shifted "3" included).
	if r := tel.Drift(telemetry.DriftQuery{ModelID: "m", Version: "2", BaselineHint: "1"}); len(r.Reference.Versions) != 1 || r.Reference.Versions[0] != "1" || r.Drift > 1e-9 {
		t.Fatalf("hinted baseline: %+v %+v", r.Reference, r.Result)
	}
	if r := tel.Drift(telemetry.DriftQuery{ModelID: "m", Version: "2", BaselineHint: "9"}); len(r.Reference.Versions) != 2 || r.Drift < 0.1 {
		t.Fatalf("hint without data: %+v %+v", r.Reference, r.Result)
	}
	if recs := tel.Records(telemetry.Query{ModelID: "m"}); len(recs) != 30 || recs[0].Monitoring != nil {
		t.Fatalf("hot window keeps distributions: %d records, %+v", len(recs), recs[0].Monitoring)
	}

	// Reference stats given at push take precedence; bad ones are refused.
	if err := tel.SetReference(ctx, "m", "2", &wire.Monitoring{}); err == nil {
		t.Fatal("empty reference accepted")
	}
	if err := tel.SetReference(ctx, "m", "2", &wire.Monitoring{Confidence: []uint64{1}}); err == nil || !strings.Contains(err.Error(), "buckets") {
		t.Fatalf("invalid reference: %v", err)
	}
	if err := tel.SetReference(ctx, "m", "2", monitoring(10, 6, 5)); err != nil {
		t.Fatal(err)
	}
	if r := tel.Drift(telemetry.DriftQuery{ModelID: "m", Version: "2"}); r.Reference.Source != "reference_stats" || r.Drift < 5 {
		t.Fatalf("against reference stats: %+v %+v", r.Reference, r.Result)
	}
	if got := (metricVec(t, reg, "edgefleet_model_drift_psi", map[string]string{"model": "m", "version": "3", "histogram": "confidence"})); got < 5 {
		t.Fatalf("drift gauge %v", got)
	}

	// Restart: rollup distributions and reference stats come back.
	cur := now
	tel2, err := telemetry.OpenWith(ctx, db, telemetry.Options{Clock: clock.Func(func() time.Time { return cur })})
	if err != nil {
		t.Fatal(err)
	}
	check(tel2)
	if tel2.Reference("m", "2") == nil {
		t.Fatal("reference stats lost on restart")
	}
	if err := tel2.SetReference(ctx, "m", "2", nil); err != nil || tel2.Reference("m", "2") != nil {
		t.Fatalf("delete reference: %v", err)
	}
	// Past DistWindow the distributions leave memory (counters stay):
	// when Prune runs, and when the store is opened.
	cur = now.Add(25 * time.Hour)
	if _, err := tel2.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if r := tel2.Drift(telemetry.DriftQuery{ModelID: "m", Version: "3", Baseline: "1", Since: now.Add(-time.Hour), Until: now}); r.Evaluated || r.Current.Predictions != 0 {
		t.Fatalf("distribution older than DistWindow still in memory after Prune: %+v", r.Current)
	}
	if h := tel2.Health(telemetry.Query{ModelID: "m", Version: "3"}); h.Requests != 500 {
		t.Fatalf("counters lost: %+v", h)
	}
	later := now.Add(25 * time.Hour)
	tel3, err := telemetry.OpenWith(ctx, db, telemetry.Options{Clock: clock.Func(func() time.Time { return later })})
	if err != nil {
		t.Fatal(err)
	}
	if r := tel3.Drift(telemetry.DriftQuery{ModelID: "m", Version: "3", Baseline: "1", Since: now.Add(-time.Hour), Until: now}); r.Evaluated || r.Current.Predictions != 0 {
		t.Fatalf("distribution older than DistWindow still in memory: %+v", r.Current)
	}
	if h := tel3.Health(telemetry.Query{ModelID: "m", Version: "3"}); h.Requests != 500 {
		t.Fatalf("counters lost: %+v", h)
	}
}

// metricVec finds one labelled sample of a gathered metric family.
func metricVec(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s%v", name, labels)
	return 0
}
