package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/fleet/store/postgres/pgtest"
	"github.com/edgefleet/edgefleet/internal/waitfor"
)

// roundTrips counts the statements and pipelined batches sent to
// PostgreSQL (each one round trip).
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// TestBatchReadsAhead: 200 queued Updates shaped like telemetry ingests
// (read the device's row, then a row its value names, write both, and a
// counter every call reads and increments, ignoring a read error as the
// rollups do) commit in one transaction with a handful of round trips,
// not one per read; every call sees the earlier calls' writes (the counter
// ends at 200, each second-level row was read at its stored value). A
// call that lists runs too. Control: the same work one Update at a time
// takes several round trips per call.
func TestBatchReadsAhead(t *testing.T) {
	ctx := context.Background()
	rt := &roundTrips{}
	s, _ := openTraced(t, rt)
	var err error
	const n = 200
	err = s.Update(ctx, func(tx store.Tx) error {
		for i := 0; i < n; i += 2 { // even devices exist, each naming its cell
			if err := tx.Put("d", fmt.Sprint("dev-", i), []byte(fmt.Sprint("cell-", i%7))); err != nil {
				return err
			}
		}
		for c := range 7 {
			if err := tx.Put("r", fmt.Sprint("cell-", c), []byte("0")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ingest := func(i int) func(store.Tx) error {
		return func(tx store.Tx) error {
			count := 0
			if v, err := tx.Get("c", "counter"); err == nil { // an error counts as "none yet"
				count, _ = strconv.Atoi(string(v))
			}
			if err := tx.Put("c", "counter", []byte(strconv.Itoa(count+1))); err != nil {
				return err
			}
			dev := fmt.Sprint("dev-", i)
			cell, err := tx.Get("d", dev)
			if errors.Is(err, store.ErrNotFound) {
				cell = []byte(fmt.Sprint("cell-", i%7))
			} else if err != nil {
				return err
			}
			sum := 0
			if v, err := tx.Get("r", string(cell)); err == nil {
				sum, _ = strconv.Atoi(string(v))
			}
			if err := tx.Put("r", string(cell), []byte(strconv.Itoa(sum+i))); err != nil {
				return err
			}
			if i == n/2 { // a List sees the batch's writes so far, its own included
				var listed string
				if err := tx.List("c", "", func(_ string, v []byte) error { listed = string(v); return nil }); err != nil {
					return err
				}
				if listed != strconv.Itoa(count+1) {
					return fmt.Errorf("listed counter %q, want %d", listed, count+1)
				}
			}
			return tx.Put("d", dev, cell)
		}
	}

	gate := make(chan struct{})
	first := make(chan error, 1)
	running := make(chan struct{})
	go func() {
		first <- s.Update(ctx, func(tx store.Tx) error {
			close(running)
			<-gate // holds the writer while the others queue
			return tx.Put("g", "first", []byte("1"))
		})
	}()
	<-running
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = s.Update(ctx, ingest(i)) }()
	}
	waitfor.Until(t, "all updates queued", func() bool { return len(s.calls) == n })
	before := rt.n.Load()
	close(gate)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	batched := rt.n.Load() - before
	for i, err := range errs {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	want := map[string]int{}
	for i := range n {
		want[fmt.Sprint("cell-", i%7)] += i
	}
	err = s.View(ctx, func(tx store.Tx) error {
		v, err := tx.Get("c", "counter")
		if err != nil || string(v) != strconv.Itoa(n) {
			t.Errorf("counter %q (%v), want %d: a call did not see the earlier calls' writes", v, err, n)
		}
		for c, sum := range want {
			v, err := tx.Get("r", c)
			if err != nil || string(v) != strconv.Itoa(sum) {
				t.Errorf("%s = %q (%v), want %d", c, v, err, sum)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Control: one call alone.
	before = rt.n.Load()
	if err := s.Update(ctx, ingest(n+1)); err != nil {
		t.Fatal(err)
	}
	alone := rt.n.Load() - before
	t.Logf("%d calls in one batch: %d round trips; one call alone: %d", n, batched, alone)
	if alone < 5 {
		t.Errorf("control: one call alone took %d round trips, want ≥ 5 (lock, begin, its reads, write, commit, unlock)", alone)
	}
	if batched > 30 {
		t.Errorf("%d calls took %d round trips, want ≤ 30 (reads ahead, not one per Get)", n, batched)
	}
}

// openTraced opens a store on a fresh PostgreSQL server (dsn) whose
// connections report every query to tracer; it closes with the test.
func openTraced(t *testing.T, tracer pgx.QueryTracer) (s *Store, dsn string) {
	t.Helper()
	dsn = pgtest.Start(t)
	s, err := open(context.Background(), dsn, func(c *pgxpool.Config) { c.ConnConfig.Tracer = tracer })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dsn
}
