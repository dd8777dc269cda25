package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/fleet/store/postgres"
	"github.com/edgefleet/edgefleet/fleet/store/postgres/pgtest"
	"github.com/edgefleet/edgefleet/fleet/telemetry"
	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// placement maps each telemetry record (device id) to the physical table
// PostgreSQL routed it to.
func placement(t *testing.T, s *postgres.Store) map[string]string {
	t.Helper()
	rows, err := s.Pool().Query(context.Background(), `SELECT tableoid::regclass::text, key FROM edgefleet_telemetry`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var table, key string
		if err := rows.Scan(&table, &key); err != nil {
			t.Fatal(err)
		}
		dev := strings.Split(key, "/")[1]
		out[dev] = table
	}
	return out
}

func tableExists(t *testing.T, s *postgres.Store, name string) bool {
	t.Helper()
	var ok bool
	if err := s.Pool().QueryRow(context.Background(), `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func part(day time.Time) string { return "edgefleet_telemetry_p" + day.Format("20060102") }

// TestTelemetryPartitions runs the telemetry store on the real server:
// records are routed to their day's partition (created ahead), a record
// whose day has no partition yet lands in the DEFAULT partition and moves
// into its partition when that is created, queries read across partitions,
// and retention DROPs whole partitions (the rows of the partition that
// contains the cut-off stay: retention is rounded up to a day).
func TestTelemetryPartitions(t *testing.T) {
	if postgres.TelemetryBucket != telemetry.RecordsBucket {
		t.Fatalf("postgres partitions bucket %q, telemetry records bucket %q", postgres.TelemetryBucket, telemetry.RecordsBucket)
	}
	ctx := context.Background()
	s, err := postgres.Open(ctx, pgtest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	real := time.Now().UTC()
	today := real.Truncate(24 * time.Hour)
	parts, err := s.Partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range parts {
		names = append(names, p.Name)
	}
	var want []string
	for d := -1; d <= postgres.PartitionsAhead; d++ {
		want = append(want, part(today.AddDate(0, 0, d)))
	}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Fatalf("partitions after Open: %v, want %v", names, want)
	}

	// One record per device at these times.
	at := map[string]time.Time{
		"old":      today.AddDate(0, 0, -5).Add(time.Hour), // before every partition: DEFAULT
		"yday":     today.AddDate(0, 0, -1).Add(time.Hour),
		"today":    today.Add(time.Hour),
		"ahead":    today.AddDate(0, 0, 2).Add(time.Hour),
		"far":      today.AddDate(0, 0, 10).Add(time.Hour), // no partition yet: DEFAULT
		"today-b":  today.Add(2 * time.Hour),
		"today-cc": today.Add(3 * time.Hour),
	}
	// The telemetry store's clock: 40 days of retention, so nothing is
	// pruned until the test moves it.
	fakeNow := real
	var clockMu sync.Mutex
	now := clock.Func(func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return fakeNow })
	tel, err := telemetry.OpenWith(ctx, s, telemetry.Options{Retention: 40 * 24 * time.Hour, HotWindow: 60 * 24 * time.Hour, Clock: now})
	if err != nil {
		t.Fatal(err)
	}
	for dev, ts := range at {
		b := &wire.TelemetryBatch{V: 1, DeviceID: dev, Epoch: "e", Records: []wire.TelemetryRecord{{Seq: 1, Time: ts, ModelID: "m", Version: "1", Requests: 10}}}
		if ack, n, err := tel.Ingest(ctx, b, nil); err != nil || ack != 1 || n != 1 {
			t.Fatalf("ingest %s: ack %d stored %d, %v", dev, ack, n, err)
		}
	}
	got := placement(t, s)
	wantPlace := map[string]string{"old": "edgefleet_telemetry_default", "yday": part(today.AddDate(0, 0, -1)),
		"today": part(today), "today-b": part(today), "today-cc": part(today), "ahead": part(today.AddDate(0, 0, 2)),
		"far": "edgefleet_telemetry_default"}
	if fmt.Sprint(got) != fmt.Sprint(wantPlace) {
		t.Fatalf("records routed to\n%v\nwant\n%v", got, wantPlace)
	}

	// Queries across partitions: a fresh telemetry store (another replica)
	// reads every record back, in time order.
	tel2, err := telemetry.OpenWith(ctx, s, telemetry.Options{Retention: 40 * 24 * time.Hour, HotWindow: 60 * 24 * time.Hour, Clock: now})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, r := range tel2.Records(telemetry.Query{ModelID: "m"}) {
		order = append(order, r.DeviceID)
	}
	if fmt.Sprint(order) != "[old yday today today-b today-cc ahead far]" {
		t.Fatalf("records across partitions: %v", order)
	}
	if h := tel2.Health(telemetry.Query{ModelID: "m", Devices: map[string]bool{"yday": true, "far": true}}); h.Records != 2 || h.Requests != 20 {
		t.Fatalf("health across partitions: %+v", h)
	}
	// A prefix bounded in time reads its partition only, and finds the row.
	err = s.View(ctx, func(tx store.Tx) error {
		n := 0
		err := tx.List(telemetry.RecordsBucket, fmt.Sprintf("%020d", at["ahead"].UnixNano()), func(k string, _ []byte) error { n++; return nil })
		if err == nil && n != 1 {
			return fmt.Errorf("time-prefix list found %d records, want 1", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// Nine days on, maintenance creates the partitions ahead of then: the
	// "far" record moves out of DEFAULT into its own day's partition.
	if _, err := s.Maintain(ctx, today.AddDate(0, 0, 9), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if p := placement(t, s)["far"]; p != part(today.AddDate(0, 0, 10)) {
		t.Fatalf("far record in %s after its partition was created, want %s", p, part(today.AddDate(0, 0, 10)))
	}
	// Inserting the same key again (a redelivery that passed the seq check
	// on another replica) updates, not duplicates.
	err = s.Update(ctx, func(tx store.Tx) error {
		return tx.List(telemetry.RecordsBucket, fmt.Sprintf("%020d", at["far"].UnixNano()), func(k string, v []byte) error {
			return tx.Put(telemetry.RecordsBucket, k, v)
		})
	})
	if err != nil || len(placement(t, s)) != len(at) {
		t.Fatalf("re-put: %v, %d records", err, len(placement(t, s)))
	}

	// Retention through the telemetry store: at today+2d with 36 h of
	// retention the cut-off is today+12h. Yesterday's partition ends before
	// it and is DROPPED; the DEFAULT row older than the cut-off is deleted;
	// today's partition contains the cut-off and stays whole.
	clockMu.Lock()
	fakeNow = today.AddDate(0, 0, 2)
	clockMu.Unlock()
	tel3, err := telemetry.OpenWith(ctx, s, telemetry.Options{Retention: 36 * time.Hour, Clock: now})
	if err != nil {
		t.Fatal(err)
	}
	n, err := tel3.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 { // one partition dropped + one default row
		t.Fatalf("prune reported %d, want 2 (one partition, one DEFAULT row)", n)
	}
	if tableExists(t, s, part(today.AddDate(0, 0, -1))) {
		t.Fatalf("partition %s still exists after retention", part(today.AddDate(0, 0, -1)))
	}
	if !tableExists(t, s, part(today)) {
		t.Fatalf("partition %s (contains the cut-off) was dropped", part(today))
	}
	got = placement(t, s)
	if _, ok := got["yday"]; ok {
		t.Fatal("yesterday's record survived its partition's retention")
	}
	if _, ok := got["old"]; ok {
		t.Fatal("the DEFAULT partition's old record survived retention")
	}
	for _, dev := range []string{"today", "today-b", "today-cc", "ahead", "far"} {
		if _, ok := got[dev]; !ok {
			t.Fatalf("record %s (partition not expired) lost by retention", dev)
		}
	}
}

// TestMaintainConcurrent: replicas running maintenance at once all succeed
// and create each partition once.
func TestMaintainConcurrent(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t)
	var stores []*postgres.Store
	for range 4 {
		s, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores = append(stores, s)
	}
	future := time.Now().UTC().AddDate(0, 0, 30)
	var wg sync.WaitGroup
	errs := make(chan error, len(stores))
	for _, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Maintain(ctx, future, time.Time{})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	parts, err := stores[0].Partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 * (postgres.PartitionsAhead + 2); len(parts) != want {
		t.Fatalf("%d partitions, want %d (now and 30 days on, each yesterday..+%d)", len(parts), want, postgres.PartitionsAhead)
	}
}

// TestTelemetryBadKey: a telemetry key without the time prefix is a clear
// error, not a panic or a row in the wrong place; the control key works.
func TestTelemetryBadKey(t *testing.T) {
	ctx := context.Background()
	s, err := postgres.Open(ctx, pgtest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"x", false},
		{"abcdefghijklmnopqrstuvwxyz", false},
		{"-0000000000000000001/d", false},
		{fmt.Sprintf("%020d/d/e/1", time.Now().UnixNano()), true},
	} {
		err := s.Update(ctx, func(tx store.Tx) error { return tx.Put(telemetry.RecordsBucket, tc.key, []byte("v")) })
		if (err == nil) != tc.ok {
			t.Errorf("put %q: %v, want ok=%v", tc.key, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "unix-nanosecond prefix") {
			t.Errorf("put %q: %v, want an error naming the expected key form", tc.key, err)
		}
	}
}
