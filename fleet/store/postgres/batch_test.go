package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/fleet/store/postgres/pgtest"
	"github.com/edgefleet/edgefleet/internal/waitfor"
)

// TestGroupCommit: concurrent Updates that queue while the writer is busy
// commit together in one transaction; a call whose fn fails is taken out
// (its write is not committed, it gets its own error) and the others
// commit without it; a call whose context ended while it waited never
// runs. Control: the first call, alone, commits in its own transaction.
func TestGroupCommit(t *testing.T) {
	dsn := pgtest.Start(t)
	ctx := context.Background()
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	var mu sync.Mutex
	txOf := map[int]store.Tx{} // call → the transaction of its last run
	gate := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- s.Update(ctx, func(tx store.Tx) error {
			mu.Lock()
			txOf[-1] = txOfRun(tx)
			mu.Unlock()
			<-gate // holds the writer while the others queue
			return tx.Put("g", "first", []byte("1"))
		})
	}()
	waitfor.Until(t, "first update running", func() bool { mu.Lock(); defer mu.Unlock(); return txOf[-1] != nil })

	const n, failing = 200, 7
	boom := errors.New("boom")
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Update(ctx, func(tx store.Tx) error {
				mu.Lock()
				txOf[i] = txOfRun(tx)
				mu.Unlock()
				if err := tx.Put("g", fmt.Sprint(i), []byte("v")); err != nil {
					return err
				}
				if i == failing {
					return boom
				}
				return nil
			})
		}()
	}
	cctx, cancel := context.WithCancel(ctx)
	canceled := make(chan error, 1)
	ranCanceled := false
	go func() {
		canceled <- s.Update(cctx, func(tx store.Tx) error { ranCanceled = true; return tx.Put("g", "canceled", nil) })
	}()
	waitfor.Until(t, "all updates queued", func() bool { return len(s.calls) == n+1 })
	cancel()
	close(gate)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-canceled; !errors.Is(err, context.Canceled) || ranCanceled {
		t.Errorf("canceled call: %v, ran %v; want context.Canceled, never run", err, ranCanceled)
	}
	batchTx := map[store.Tx]int{}
	for i, err := range errs {
		switch {
		case i == failing && !errors.Is(err, boom):
			t.Errorf("failing call: %v, want boom", err)
		case i != failing && err != nil:
			t.Errorf("call %d: %v", i, err)
		case i != failing:
			batchTx[txOf[i]]++
		}
	}
	if len(batchTx) != 1 {
		t.Errorf("%d calls committed in %d transactions, want 1 (one batch)", n-1, len(batchTx))
	}
	if _, ok := batchTx[txOf[-1]]; ok {
		t.Error("control: the first call shares its transaction with the queued ones")
	}
	if _, ok := batchTx[txOf[failing]]; ok {
		t.Error("the failing call's last run was in the batch's transaction, want alone")
	}
	err = s.View(ctx, func(tx store.Tx) error {
		for i := range n {
			_, err := tx.Get("g", fmt.Sprint(i))
			if i == failing && !errors.Is(err, store.ErrNotFound) {
				t.Errorf("failing call's write committed: %v", err)
			}
			if i != failing && err != nil {
				t.Errorf("call %d's write: %v", i, err)
			}
		}
		if _, err := tx.Get("g", "canceled"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("canceled call's write: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBufferedWrites: a batch transaction's writes wait for the next List
// or the commit, but the transaction sees them: Get returns a buffered
// Put, a buffered Delete hides the row, List includes both effects; a bad
// telemetry key is refused at the Put, not at the flush.
func TestBufferedWrites(t *testing.T) {
	dsn := pgtest.Start(t)
	ctx := context.Background()
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.Put("w", "gone", []byte("x")) }); err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(tx store.Tx) error {
		if err := tx.Put("w", "new", []byte("1")); err != nil {
			return err
		}
		if err := tx.Put("w", "new", []byte("2")); err != nil { // the last write wins
			return err
		}
		if err := tx.Delete("w", "gone"); err != nil {
			return err
		}
		if v, err := tx.Get("w", "new"); err != nil || string(v) != "2" {
			return fmt.Errorf("get buffered put: %q %v", v, err)
		}
		if _, err := tx.Get("w", "gone"); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("get buffered delete: %v", err)
		}
		var keys []string
		if err := tx.List("w", "", func(k string, v []byte) error { keys = append(keys, k+"="+string(v)); return nil }); err != nil {
			return err
		}
		if fmt.Sprint(keys) != "[new=2]" {
			return fmt.Errorf("list: %v, want [new=2]", keys)
		}
		if err := tx.Put(TelemetryBucket, "not-a-time-key", []byte("v")); err == nil {
			return errors.New("bad telemetry key accepted")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(ctx, func(tx store.Tx) error {
		if v, err := tx.Get("w", "new"); err != nil || string(v) != "2" {
			return fmt.Errorf("committed: %q %v", v, err)
		}
		if _, err := tx.Get("w", "gone"); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("committed delete: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// txOfRun is the transaction a run of a batch's fn is part of (a
// speculative run has its own store.Tx).
func txOfRun(tx store.Tx) store.Tx {
	if s, ok := tx.(*specTx); ok {
		return s.t
	}
	return tx
}
