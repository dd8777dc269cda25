package telemetry

import (
	"errors"
	"math"
	"syscall"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// TestNonFiniteRecordEncodes: NaN and ±Inf (a shadow that diverges, huge
// inputs) no longer make a record fail to encode and vanish.
func TestNonFiniteRecordEncodes(t *testing.T) {
	r, err := OpenRing(t.TempDir(), 10)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rec := rec("m")
	rec.FeatureMean = []float64{1, math.NaN()}
	rec.FeatureStd = []float64{math.Inf(1), 0}
	rec.ShadowMaxAbsDiff = math.Inf(-1)
	if _, err := r.Append(rec); err != nil {
		t.Fatalf("append: %v", err)
	}
	got, err := r.Read(0, 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("read: %v, %d records", err, len(got))
	}
	g := got[0]
	if g.NonFinite != 3 || g.FeatureMean[0] != 1 || g.FeatureMean[1] != 0 || g.FeatureStd[0] != math.MaxFloat64 || g.ShadowMaxAbsDiff != -math.MaxFloat64 {
		t.Fatalf("record %+v", g)
	}
}

// TestCollectorNonFinite: a NaN score or Inf feature reaches a record that
// stores.
func TestCollectorNonFinite(t *testing.T) {
	c := NewCollector(clock.NewFake(time.Unix(100, 0)))
	k := Key{Model: "m", Version: "1", Role: wire.RolePrimary}
	c.Request(k, time.Millisecond, 1, "")
	c.Prediction(k, 0, math.NaN())
	c.Features(k, []float64{math.Inf(1), 3e300, -3e300})
	c.Shadow("m", "2", false, math.Inf(1))
	r, err := OpenRing(t.TempDir(), 10)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if lost := c.FlushTo(r, nil); lost != 0 {
		t.Fatalf("%d records lost", lost)
	}
	if st, _ := r.Stats(); st.Pending != 2 || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// failingSink is a ring whose disk is full.
type failingSink struct{ *Ring }

func (failingSink) Append(Record) (uint64, error) {
	return 0, errors.New("write telemetry.db: " + syscall.ENOSPC.Error())
}

// TestLostRecordsCounted: a record that cannot be stored is counted in the
// ring's dropped count (at once, and persisted by the next append) and in
// the lost metric.
func TestLostRecordsCounted(t *testing.T) {
	dir := t.TempDir()
	r, err := OpenRing(dir, 10)
	if err != nil {
		t.Fatal(err)
	}
	c := NewCollector(nil)
	k := Key{Model: "m", Version: "1"}
	c.Request(k, time.Millisecond, 1, "")
	c.Request(Key{Model: "n", Version: "1"}, time.Millisecond, 1, "")
	if lost := c.FlushTo(failingSink{r}, nil); lost != 2 {
		t.Fatalf("lost %d, want 2", lost)
	}
	if st, _ := r.Stats(); st.Dropped != 2 {
		t.Fatalf("dropped %d after a failed write, want 2", st.Dropped)
	}
	if v := counterValue(t, c, "edge_agent_telemetry_lost_records_total"); v != 2 {
		t.Fatalf("lost metric %v", v)
	}
	c.Request(k, time.Millisecond, 1, "")
	if lost := c.FlushTo(r, nil); lost != 0 {
		t.Fatal("lost with a working disk")
	}
	r.Close()
	r, err = OpenRing(dir, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if st, _ := r.Stats(); st.Dropped != 2 || st.Pending != 1 {
		t.Fatalf("after reopen: %+v, want dropped 2 persisted", st)
	}
}

func counterValue(t *testing.T, c *Collector, name string) float64 {
	t.Helper()
	mfs, err := c.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return -1
}
