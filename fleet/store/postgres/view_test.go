package postgres

import (
	"context"
	"errors"
	"testing"

	"github.com/edgefleet/edgefleet/fleet/store"
)

// TestViewRoundTrips: a View's BEGIN goes with its first read (one round
// trip for BEGIN + read, one for COMMIT: the check every telemetry batch
// makes took three); a View that reads nothing sends nothing; a View's
// reads share one snapshot taken at the first read (an Update committed
// between two reads is not seen by the second); a View cannot write; a
// failing fn's error is returned and the connection is reusable.
func TestViewRoundTrips(t *testing.T) {
	ctx := context.Background()
	rt := &roundTrips{}
	s, dsn := openTraced(t, rt)
	for _, k := range []string{"a", "b"} {
		if err := s.Update(ctx, put("v", k)); err != nil {
			t.Fatal(err)
		}
	}
	count := func(fn func(store.Tx) error) (int64, error) {
		before := rt.n.Load()
		err := s.View(ctx, fn)
		return rt.n.Load() - before, err
	}

	n, err := count(func(tx store.Tx) error { _, err := tx.Get("v", "a"); return err })
	if err != nil || n != 2 {
		t.Errorf("View with one Get: %d round trips (%v), want 2", n, err)
	}
	n, err = count(func(tx store.Tx) error {
		return tx.List("v", "", func(string, []byte) error { return nil })
	})
	if err != nil || n != 2 {
		t.Errorf("View with one List: %d round trips (%v), want 2", n, err)
	}
	n, err = count(func(store.Tx) error { return nil })
	if err != nil || n != 0 {
		t.Errorf("control: View without reads: %d round trips (%v), want 0", n, err)
	}

	// One snapshot from the first read on.
	err = s.View(ctx, func(tx store.Tx) error {
		if _, err := tx.Get("v", "a"); err != nil {
			return err
		}
		done := make(chan error, 1)
		go func() { // another store, as another replica
			s2, err := Open(ctx, dsn)
			if err != nil {
				done <- err
				return
			}
			defer s2.Close()
			done <- s2.Update(ctx, func(tx store.Tx) error { return tx.Put("v", "b", []byte("changed")) })
		}()
		if err := <-done; err != nil {
			return err
		}
		v, err := tx.Get("v", "b")
		if err != nil {
			return err
		}
		if string(v) != "v" {
			t.Errorf("second read saw %q, committed after the View's first read; want the snapshot's %q", v, "v")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	if err := s.View(ctx, func(tx store.Tx) error { return tx.Put("v", "c", []byte("x")) }); err == nil {
		t.Error("a View wrote")
	}
	boom := errors.New("boom")
	if err := s.View(ctx, func(tx store.Tx) error { tx.Get("v", "a"); return boom }); !errors.Is(err, boom) {
		t.Errorf("failing View: %v, want boom", err)
	}
	if err := s.View(ctx, func(tx store.Tx) error {
		v, err := tx.Get("v", "b")
		if err == nil && string(v) != "changed" {
			t.Errorf("after the failed View: b = %q, want the committed value", v)
		}
		return err
	}); err != nil {
		t.Errorf("View after a failed one: %v", err)
	}
}
