package telemetry_test

import (
	"context"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/fleet/telemetry"
	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// TestSyncShared: two Stores on one store (two replicas); each record the
// other one ingested is merged exactly once, its own never twice, and a
// record older than the lookback is left on disk.
func TestSyncShared(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	clk := clock.Func(func() time.Time { return now })
	s := store.NewMem()
	a, err := telemetry.Open(ctx, s, 0, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := telemetry.Open(ctx, s, 0, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	batch := func(dev string, seq uint64, at time.Time) *wire.TelemetryBatch {
		return &wire.TelemetryBatch{V: wire.Version, DeviceID: dev, Epoch: "e", Records: []wire.TelemetryRecord{{
			Seq: seq, Time: at, ModelID: "m", Version: "1", Requests: 10, Errors: 1}}}
	}
	for _, tc := range []struct {
		st       *telemetry.Store
		dev      string
		seq      uint64
		age      time.Duration
		inLookbk bool
	}{
		{a, "d1", 1, 10 * time.Second, true},
		{b, "d1", 2, 5 * time.Second, true}, // same device, other replica
		{a, "d2", 1, 3 * time.Minute, false},
		{b, "d3", 1, time.Second, true},
	} {
		if _, _, err := tc.st.Ingest(ctx, batch(tc.dev, tc.seq, now.Add(-tc.age)), nil); err != nil {
			t.Fatal(err)
		}
	}
	q := telemetry.Query{Devices: map[string]bool{"d1": true, "d2": true, "d3": true}}
	if h := b.Health(q); h.Requests != 20 {
		t.Fatalf("control: b holds %d requests before syncing, want 20 (its own)", h.Requests)
	}
	for round := range 2 {
		n, err := b.SyncShared(ctx, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if want := []int{1, 0}[round]; n != want {
			t.Fatalf("sync %d merged %d records, want %d", round, n, want)
		}
		if h := b.Health(q); h.Requests != 30 || h.Errors != 3 || h.Records != 3 {
			t.Fatalf("sync %d: b sees %+v, want 3 records, 30 requests, 3 errors (d2's old record left out)", round, h)
		}
	}
	// a ingests more after b synced: merged at the next sync.
	if _, _, err := a.Ingest(ctx, batch("d1", 3, now), nil); err != nil {
		t.Fatal(err)
	}
	if n, err := b.SyncShared(ctx, time.Minute); err != nil || n != 1 {
		t.Fatalf("sync after a's new record: %d, %v; want 1", n, err)
	}
}
