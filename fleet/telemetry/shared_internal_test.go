package telemetry

import (
	"context"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// TestSyncSharedIncremental: a merge decodes only the records it has not
// merged or ingested before (the records' keys name them), however many
// the lookback holds; the results are those of decoding everything.
func TestSyncSharedIncremental(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	clk := clock.Func(func() time.Time { return now })
	s := store.NewMem()
	a, err := Open(ctx, s, 0, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(ctx, s, 0, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	ingest := func(st *Store, dev string, seq uint64, age time.Duration) {
		t.Helper()
		bt := &wire.TelemetryBatch{V: wire.Version, DeviceID: dev, Epoch: "e", Records: []wire.TelemetryRecord{{
			Seq: seq, Time: now.Add(-age), ModelID: "m", Version: "1", Requests: 10, Errors: 1}}}
		if _, _, err := st.Ingest(ctx, bt, nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 50 {
		ingest(a, "d1", uint64(i+1), time.Duration(i)*time.Second/2)
		ingest(b, "d2", uint64(i+1), time.Duration(i)*time.Second/2)
	}
	q := Query{Devices: map[string]bool{"d1": true, "d2": true}}
	for _, tc := range []struct {
		name            string
		before          func()
		decoded, merged int64
		records         uint64
	}{
		{"first sync: a's 50 records (b's own are known from memory)", func() {}, 50, 50, 100},
		{"nothing new: nothing decoded", func() {}, 0, 0, 100},
		{"control: one new record of a's is decoded and merged", func() { ingest(a, "d1", 51, 0) }, 1, 1, 101},
		{"b's own new record: known, not decoded", func() { ingest(b, "d2", 51, 0) }, 0, 0, 102},
	} {
		tc.before()
		d0 := decoded.Load()
		n, err := b.SyncShared(ctx, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if got := decoded.Load() - d0; got != tc.decoded || int64(n) != tc.merged {
			t.Errorf("%s: decoded %d, merged %d; want %d, %d", tc.name, got, n, tc.decoded, tc.merged)
		}
		if h := b.Health(q); uint64(h.Records) != tc.records || h.Requests != 10*tc.records {
			t.Errorf("%s: b sees %d records, %d requests; want %d, %d", tc.name, h.Records, h.Requests, tc.records, 10*tc.records)
		}
	}
}

// TestRecIDOfKey: the id parsed from a record key is the record's; keys of
// another shape are not parsed (their records are decoded).
func TestRecIDOfKey(t *testing.T) {
	at := time.Date(2026, 12, 4, 12, 0, 0, 123, time.UTC)
	r := &Record{DeviceID: "dev-1", Time: at}
	r.Seq = 42
	for _, tc := range []struct {
		key  string
		want recID
		ok   bool
	}{
		{recKey(r, "ep"), recID{"dev-1", 42, at.UnixNano()}, true},
		{recKey(r, ""), recID{"dev-1", 42, at.UnixNano()}, true},
		{recKey(&Record{DeviceID: "d", Time: time.Unix(-5, 0)}, "e"), recID{}, false}, // clamped time
		{"", recID{}, false},
		{"123/dev/e/42", recID{}, false},
		{recPrefix(at) + "//e/00000000000000000042", recID{}, false},
		{recPrefix(at) + "/dev/e/0000000000000000004x", recID{}, false},
		{recPrefix(at) + "/dev", recID{}, false},
	} {
		got, ok := recIDOfKey(tc.key)
		if got != tc.want || ok != tc.ok {
			t.Errorf("recIDOfKey(%q) = %+v, %v; want %+v, %v", tc.key, got, ok, tc.want, tc.ok)
		}
	}
}
