package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/fleet/telemetry"
	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/internal/wire"
)

func rec(seq uint64, at time.Time, version string, req, errs uint64, p95 float64) wire.TelemetryRecord {
	return wire.TelemetryRecord{Seq: seq, Time: at, ModelID: "m", Version: version, Requests: req, Errors: errs, LatencyP50Ms: p95 / 2, LatencyP95Ms: p95, LatencyP99Ms: p95 * 1.2}
}

// TestIngestExactlyOnce: a redelivered or overlapping batch stores nothing
// twice, the ack is the high-water mark, and retention prunes old records.
func TestIngestExactlyOnce(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	reg := prometheus.NewRegistry()
	tel, err := telemetry.Open(ctx, store.NewMem(), time.Hour, clock.Func(func() time.Time { return now }), reg)
	if err != nil {
		t.Fatal(err)
	}
	b1 := &wire.TelemetryBatch{V: 1, DeviceID: "d", Records: []wire.TelemetryRecord{rec(1, now.Add(-2*time.Hour), "1", 10, 0, 5), rec(2, now, "1", 100, 1, 10)}}
	ack, n, err := tel.Ingest(ctx, b1, nil)
	if err != nil || ack != 2 || n != 2 {
		t.Fatalf("first: ack %d stored %d err %v", ack, n, err)
	}
	ack, n, _ = tel.Ingest(ctx, b1, nil)
	if ack != 2 || n != 0 {
		t.Fatalf("redelivery: ack %d stored %d, want 2/0", ack, n)
	}
	b2 := &wire.TelemetryBatch{V: 1, DeviceID: "d", Records: []wire.TelemetryRecord{rec(2, now, "1", 100, 1, 10), rec(3, now, "2", 100, 5, 30)}}
	ack, n, _ = tel.Ingest(ctx, b2, func(wire.TelemetryRecord) string { return "r1/1" })
	if ack != 3 || n != 1 {
		t.Fatalf("overlap: ack %d stored %d, want 3/1", ack, n)
	}
	if got := gauge(t, reg, "edgefleet_telemetry_duplicates_total"); got != 3 {
		t.Fatalf("duplicates metric = %v, want 3", got)
	}
	h := tel.Health(telemetry.Query{ModelID: "m", Version: "1"})
	if h.Requests != 110 || h.Errors != 1 {
		t.Fatalf("v1 health %+v", h)
	}
	base := tel.Health(telemetry.Query{ModelID: "m", Version: "2", ExcludeVersion: true, Since: now.Add(-time.Minute)})
	if base.Requests != 100 || base.P95 != 10 {
		t.Fatalf("baseline %+v", base)
	}
	recs := tel.Records(telemetry.Query{Version: "2"})
	if len(recs) != 1 || recs[0].Stage != "r1/1" {
		t.Fatalf("stage attribution: %+v", recs)
	}
	if pts := tel.Series(telemetry.Query{ModelID: "m"}, time.Minute); len(pts) != 2 {
		t.Fatalf("series %+v", pts)
	}
	pruned, err := tel.Prune(ctx)
	if err != nil || pruned != 1 {
		t.Fatalf("prune = %d, %v; want 1", pruned, err)
	}
	if hw, _ := tel.HighWater(ctx, "d"); hw != 3 {
		t.Fatalf("high water %d", hw)
	}
}

func TestAggregateWeighting(t *testing.T) {
	h := telemetry.Aggregate([]telemetry.Record{
		{TelemetryRecord: wire.TelemetryRecord{Requests: 300, LatencyP95Ms: 10, ShadowCompared: 10, ShadowAgreed: 9}, DeviceID: "a"},
		{TelemetryRecord: wire.TelemetryRecord{Requests: 100, LatencyP95Ms: 30, Errors: 4}, DeviceID: "b"},
	})
	if h.P95 != 15 || h.ErrorRate != 0.01 || h.Devices != 2 || h.ShadowAgreement != 0.9 {
		t.Fatalf("%+v", h)
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func openTel(t *testing.T, s store.Store, now *time.Time, o telemetry.Options) *telemetry.Store {
	t.Helper()
	o.Clock = clock.Func(func() time.Time { return *now })
	tel, err := telemetry.OpenWith(context.Background(), s, o)
	if err != nil {
		t.Fatal(err)
	}
	return tel
}

// TestReflashedDeviceNewEpoch: after a re-flash the device restarts at seq 1
// with a new epoch; its records are stored and acknowledged per epoch. The
// control (same epoch, seq 1 again) is a duplicate, as before. A late batch
// of the old epoch is still deduplicated against the old epoch's mark.
func TestReflashedDeviceNewEpoch(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	tel := openTel(t, store.NewMem(), &now, telemetry.Options{Retention: time.Hour})
	old := &wire.TelemetryBatch{V: 1, DeviceID: "d", Epoch: "boot-a", Records: []wire.TelemetryRecord{rec(1, now, "1", 1, 0, 1), rec(2, now, "1", 1, 0, 1), rec(3, now, "1", 1, 0, 1)}}
	if ack, n, err := tel.Ingest(ctx, old, nil); err != nil || ack != 3 || n != 3 {
		t.Fatalf("epoch a: ack %d stored %d err %v", ack, n, err)
	}
	same := &wire.TelemetryBatch{V: 1, DeviceID: "d", Epoch: "boot-a", Records: []wire.TelemetryRecord{rec(1, now, "1", 50, 0, 1)}}
	if ack, n, _ := tel.Ingest(ctx, same, nil); ack != 3 || n != 0 {
		t.Fatalf("control, same epoch seq 1: ack %d stored %d, want 3/0", ack, n)
	}
	fresh := &wire.TelemetryBatch{V: 1, DeviceID: "d", Epoch: "boot-b", Records: []wire.TelemetryRecord{rec(1, now, "1", 7, 0, 1), rec(2, now, "1", 7, 0, 1)}}
	if ack, n, err := tel.Ingest(ctx, fresh, nil); err != nil || ack != 2 || n != 2 {
		t.Fatalf("re-flashed: ack %d stored %d err %v, want 2/2", ack, n, err)
	}
	if ack, n, _ := tel.Ingest(ctx, old, nil); ack != 3 || n != 0 {
		t.Fatalf("late old-epoch batch: ack %d stored %d, want 3/0", ack, n)
	}
	if h := tel.Health(telemetry.Query{ModelID: "m"}); h.Requests != 17 || h.Records != 5 {
		t.Fatalf("health %+v, want 17 requests in 5 records", h)
	}
	if hw, _ := tel.HighWater(ctx, "d"); hw != 2 {
		t.Fatalf("high water of the newest epoch = %d, want 2", hw)
	}
}

// TestSeqPoisoningRefused: seq 2^64−1 is rejected and does not move the
// mark; the control (the next seq) is stored afterwards.
func TestSeqPoisoningRefused(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	tel := openTel(t, store.NewMem(), &now, telemetry.Options{})
	tel.Ingest(ctx, &wire.TelemetryBatch{V: 1, DeviceID: "d", Records: []wire.TelemetryRecord{rec(1, now, "1", 1, 0, 1)}}, nil)
	evil := &wire.TelemetryBatch{V: 1, DeviceID: "d", Records: []wire.TelemetryRecord{rec(2, now, "1", 1, 0, 1), rec(math.MaxUint64, now, "1", 1, 0, 1)}}
	ack, n, err := tel.Ingest(ctx, evil, nil)
	if !errors.Is(err, telemetry.ErrSeqOutOfRange) || ack != 2 || n != 1 {
		t.Fatalf("poison: ack %d stored %d err %v; want ack 2, 1 stored, ErrSeqOutOfRange", ack, n, err)
	}
	ack, n, err = tel.Ingest(ctx, &wire.TelemetryBatch{V: 1, DeviceID: "d", Records: []wire.TelemetryRecord{rec(3, now, "1", 1, 0, 1)}}, nil)
	if err != nil || ack != 3 || n != 1 {
		t.Fatalf("control after poison: ack %d stored %d err %v, want 3/1", ack, n, err)
	}
}

// TestCountersSaturate: huge per-record counters saturate instead of
// wrapping around to small numbers.
func TestCountersSaturate(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	tel := openTel(t, store.NewMem(), &now, telemetry.Options{})
	big := rec(1, now, "1", math.MaxUint64-5, 0, 1)
	big.Crashes = math.MaxUint64
	big2 := rec(2, now, "1", 100, 0, 1)
	big2.Crashes = 10
	tel.Ingest(ctx, &wire.TelemetryBatch{V: 1, DeviceID: "d", Records: []wire.TelemetryRecord{big, big2}}, nil)
	for _, q := range []telemetry.Query{{ModelID: "m"}, {ModelID: "m", Devices: map[string]bool{"d": true}}} {
		h := tel.Health(q)
		if h.Requests != math.MaxUint64 || h.Crashes != math.MaxUint64 {
			t.Fatalf("health(%+v) = %d requests, %d crashes; want both saturated at MaxUint64", q, h.Requests, h.Crashes)
		}
	}
}

// TestHotWindowAndRollupsAgree: memory keeps only the hot window of raw
// records; older telemetry is answered from the rollups, which survive a
// reopen together with the hot window.
func TestHotWindowAndRollupsAgree(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	s := store.NewMem()
	o := telemetry.Options{Retention: 24 * time.Hour, HotWindow: 10 * time.Minute}
	tel := openTel(t, s, &now, o)
	for i := 1; i <= 60; i++ { // one record a minute for an hour
		at := now.Add(time.Duration(i-60) * time.Minute)
		tel.Ingest(ctx, &wire.TelemetryBatch{V: 1, DeviceID: "d", Records: []wire.TelemetryRecord{rec(uint64(i), at, "1", 10, 1, 4)}}, nil)
	}
	if n := len(tel.Records(telemetry.Query{})); n > 11 {
		t.Fatalf("%d raw records in memory, want only the 10-minute hot window", n)
	}
	all := tel.Health(telemetry.Query{ModelID: "m", Since: now.Add(-2 * time.Hour)})
	if all.Requests != 600 || all.Errors != 60 || all.P95 != 4 {
		t.Fatalf("rollup health %+v, want 600 requests, 60 errors, p95 4", all)
	}
	recent := tel.Health(telemetry.Query{ModelID: "m", Since: now.Add(-5*time.Minute + time.Second)})
	if recent.Requests != 50 || recent.Devices != 1 {
		t.Fatalf("hot health %+v, want 50 requests from 1 device", recent)
	}
	re := openTel(t, s, &now, o)
	if h := re.Health(telemetry.Query{ModelID: "m", Since: now.Add(-2 * time.Hour)}); h.Requests != 600 {
		t.Fatalf("after reopen: rollup health %+v, want 600 requests", h)
	}
	if h := re.Health(telemetry.Query{ModelID: "m", Since: now.Add(-5*time.Minute + time.Second)}); h.Requests != 50 {
		t.Fatalf("after reopen: hot health %+v, want 50 requests", h)
	}
	now = now.Add(23*time.Hour + 30*time.Minute) // records before minute -30 leave retention
	n, err := re.Prune(ctx)
	if err != nil || n != 29 {
		t.Fatalf("prune = %d, %v; want 29 (minutes -59..-31)", n, err)
	}
	if h := re.Health(telemetry.Query{ModelID: "m"}); h.Requests != 310 {
		t.Fatalf("after prune: %+v, want 310 requests", h)
	}
}

// TestRollupShards: a minute's rollup is stored in several rows (by
// device, so concurrent batches rarely write the same row) and merged back
// whole when the store is reopened.
func TestRollupShards(t *testing.T) {
	ctx := context.Background()
	st := store.NewMem()
	now := time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)
	clk := clock.Func(func() time.Time { return now })
	tel, err := telemetry.OpenWith(ctx, st, telemetry.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	const devices = 40
	for i := range devices {
		b := &wire.TelemetryBatch{V: 1, DeviceID: fmt.Sprintf("d%02d", i), Records: []wire.TelemetryRecord{{Seq: 1, Time: now, ModelID: "m", Version: "1", Requests: 10, Errors: 1}}}
		if _, _, err := tel.Ingest(ctx, b, nil); err != nil {
			t.Fatal(err)
		}
	}
	rows := 0
	st.View(ctx, func(tx store.Tx) error {
		return tx.List("telemetry-rollup", "", func(string, []byte) error { rows++; return nil })
	})
	if rows < 2 || rows > devices {
		t.Fatalf("%d rollup rows for one cell of %d devices, want it spread over several", rows, devices)
	}
	// Reopened later (the raw records out of the hot window): the rollups
	// answer, every shard counted once.
	now = now.Add(time.Hour)
	tel2, err := telemetry.OpenWith(ctx, st, telemetry.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	h := tel2.Health(telemetry.Query{ModelID: "m", Version: "1"})
	if h.Records != devices || h.Requests != 10*devices || h.Errors != devices {
		t.Fatalf("health after reopen: %+v, want %d records, %d requests, %d errors", h, devices, 10*devices, devices)
	}
}

// writeCountingStore counts the Update transactions that reach a store.
type writeCountingStore struct {
	store.Store
	updates int
}

func (w *writeCountingStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	w.updates++
	return w.Store.Update(ctx, fn)
}

// TestResendAckedWithoutWrite: a batch the server already stored whole (a
// device resending after a lost or late ack) is acknowledged with the
// high-water mark and counted as duplicates without a write transaction.
// Controls: a batch with one new record, and the first batch of a new
// epoch holding old seqs (a re-flashed device), each write.
func TestResendAckedWithoutWrite(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	ws := &writeCountingStore{Store: store.NewMem()}
	reg := prometheus.NewRegistry()
	tel, err := telemetry.Open(ctx, ws, time.Hour, clock.Func(func() time.Time { return now }), reg)
	if err != nil {
		t.Fatal(err)
	}
	b1 := &wire.TelemetryBatch{V: 1, DeviceID: "d", Epoch: "e1", Records: []wire.TelemetryRecord{rec(1, now, "1", 10, 0, 5), rec(2, now, "1", 10, 0, 5)}}
	if ack, n, err := tel.Ingest(ctx, b1, nil); err != nil || ack != 2 || n != 2 {
		t.Fatalf("first: ack %d stored %d err %v", ack, n, err)
	}
	before := ws.updates
	for _, b := range []*wire.TelemetryBatch{b1, {V: 1, DeviceID: "d", Epoch: "e1", Records: []wire.TelemetryRecord{rec(2, now, "1", 10, 0, 5)}}} {
		ack, n, err := tel.Ingest(ctx, b, nil)
		if err != nil || ack != 2 || n != 0 {
			t.Fatalf("resend: ack %d stored %d err %v; want 2, 0", ack, n, err)
		}
	}
	if ws.updates != before {
		t.Fatalf("resends cost %d write transactions, want 0", ws.updates-before)
	}
	if got := gauge(t, reg, "edgefleet_telemetry_duplicates_total"); got != 3 {
		t.Fatalf("duplicates metric = %v, want 3", got)
	}
	b3 := &wire.TelemetryBatch{V: 1, DeviceID: "d", Epoch: "e1", Records: []wire.TelemetryRecord{rec(2, now, "1", 10, 0, 5), rec(3, now, "1", 10, 0, 5)}}
	if ack, n, _ := tel.Ingest(ctx, b3, nil); ack != 3 || n != 1 || ws.updates != before+1 {
		t.Fatalf("one new record: ack %d stored %d, %d writes; want 3, 1, 1 (control)", ack, n, ws.updates-before)
	}
	b4 := &wire.TelemetryBatch{V: 1, DeviceID: "d", Epoch: "e2", Records: []wire.TelemetryRecord{rec(1, now, "1", 10, 0, 5)}}
	if ack, n, _ := tel.Ingest(ctx, b4, nil); ack != 1 || n != 1 || ws.updates != before+2 {
		t.Fatalf("new epoch: ack %d stored %d, %d writes; want 1, 1, 2 (control)", ack, n, ws.updates-before)
	}
}
