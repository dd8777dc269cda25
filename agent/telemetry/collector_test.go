package telemetry

import (
	"math"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/internal/wire"
)

func TestCollectorFlush(t *testing.T) {
	now := time.Unix(1000, 0)
	c := NewCollector(clock.Func(func() time.Time { return now }))
	k := Key{Model: "m", Version: "1", Role: wire.RolePrimary}
	for i := 1; i <= 100; i++ {
		c.Request(k, time.Duration(i)*time.Millisecond, 2, "")
	}
	c.Request(k, time.Millisecond, 1, "invalid_input")
	c.Prediction(k, 3, 0.95)
	c.Prediction(k, 3, 0.15)
	c.Features(k, []float64{1, 10})
	c.Features(k, []float64{3, 10})
	c.Cache("m", "1", true)
	c.Shadow("m", "2", true, 0.01)
	c.Shadow("m", "2", false, 0.3)
	c.TrackQueue("m", "1", func() int { return 7 })
	now = now.Add(10 * time.Second)
	recs := c.Flush()
	if len(recs) != 2 {
		t.Fatalf("%d records, want primary and shadow: %+v", len(recs), recs)
	}
	r, s := recs[0], recs[1]
	if r.Requests != 101 || r.Errors != 1 || r.ErrorsByCode["invalid_input"] != 1 || r.Instances != 200 || r.ThroughputPerSec != 20 || r.PeriodSec != 10 {
		t.Fatalf("counts %+v", r)
	}
	// Percentiles come from log buckets (15 % wide): within 15 % of the truth.
	for _, p := range []struct{ got, want float64 }{{r.LatencyP50Ms, 50}, {r.LatencyP95Ms, 95}, {r.LatencyP99Ms, 99}} {
		if math.Abs(p.got-p.want)/p.want > 0.16 {
			t.Errorf("percentile %v, want about %v", p.got, p.want)
		}
	}
	if r.Classes["3"] != 2 || r.Confidence[9] != 1 || r.Confidence[1] != 1 || r.CacheHits != 1 || r.QueueLength != 7 {
		t.Fatalf("detail %+v", r)
	}
	if r.FeatureMean[0] != 2 || r.FeatureStd[0] != 1 || r.FeatureStd[1] != 0 {
		t.Fatalf("features mean %v std %v", r.FeatureMean, r.FeatureStd)
	}
	if s.Role != wire.RoleShadow || s.ShadowCompared != 2 || s.ShadowAgreed != 1 || s.ShadowMaxAbsDiff != 0.3 {
		t.Fatalf("shadow %+v", s)
	}
	if got := c.Flush(); len(got) != 0 {
		t.Fatalf("second flush not empty: %+v", got)
	}
	// Every record is valid on the wire.
	b := wire.TelemetryBatch{V: 1, DeviceID: "dev-1"}
	for i, rec := range recs {
		rec.Seq = uint64(i + 1)
		b.Records = append(b.Records, rec.TelemetryRecord)
	}
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestSnapshotKeepsWindow(t *testing.T) {
	c := NewCollector(nil)
	k := Key{Model: "m", Version: "1"}
	c.Request(k, time.Millisecond, 1, "")
	if s := c.Snapshot(); len(s) != 1 || s[0].Requests != 1 {
		t.Fatalf("snapshot %+v", s)
	}
	if f := c.Flush(); len(f) != 1 || f[0].Requests != 1 {
		t.Fatalf("flush after snapshot %+v", f)
	}
}

// TestClassMetricBounded: a 1000-class model adds at most MetricClasses + 1
// series to edge_agent_predicted_class_total; the tail counts as "other".
func TestClassMetricBounded(t *testing.T) {
	c := NewCollector(clock.Real{})
	k := Key{Model: "m", Version: "1", Role: wire.RolePrimary}
	for class := -1; class < 1000; class++ {
		c.Prediction(k, class, 0.5)
	}
	mfs, err := c.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	series, other := 0, 0.0
	for _, mf := range mfs {
		if mf.GetName() != "edge_agent_predicted_class_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			series++
			for _, l := range m.GetLabel() {
				if l.GetName() == "class" && l.GetValue() == "other" {
					other = m.GetCounter().GetValue()
				}
			}
		}
	}
	// Control: the first classes have their own series.
	if series != MetricClasses+1 || other != 1000-MetricClasses+1 {
		t.Fatalf("%d series (want %d), other=%v (want %d)", series, MetricClasses+1, other, 1000-MetricClasses+1)
	}
}
