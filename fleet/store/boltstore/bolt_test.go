package boltstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/fleet/store/boltstore"
	"github.com/edgefleet/edgefleet/fleet/store/storetest"
)

func TestBolt(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := boltstore.Open(filepath.Join(t.TempDir(), "fleet.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestBoltPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fleet.db")
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.Put("b", "k", []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.View(ctx, func(tx store.Tx) error {
		v, err := tx.Get("b", "k")
		if err == nil && string(v) != "v" {
			t.Errorf("got %q", v)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// TestBoltSecondOpenerGetsClearError: a second opener of the same file (a
// second fleet-server replica on one data dir) gets ErrLocked, not a hang
// or a panic; the control opens fine once the first has closed.
func TestBoltSecondOpenerGetsClearError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fleet.db")
	first, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = boltstore.OpenWith(path, boltstore.Options{LockTimeout: 200 * time.Millisecond})
	if !errors.Is(err, boltstore.ErrLocked) || !strings.Contains(err.Error(), "another fleet-server") {
		t.Fatalf("second open = %v, want ErrLocked naming another fleet-server", err)
	}
	first.Close()
	second, err := boltstore.OpenWith(path, boltstore.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	second.Close()
	var nilStore *boltstore.Store
	if err := nilStore.Close(); err != nil {
		t.Fatalf("close nil store: %v", err)
	}
}

// TestBoltGroupCommit: many concurrent updates all land, each atomically;
// a failing update in the same batch leaves no trace.
func TestBoltGroupCommit(t *testing.T) {
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "fleet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Update(ctx, func(tx store.Tx) error {
				if err := tx.Put("b", fmt.Sprintf("k%03d", i), []byte("v")); err != nil {
					return err
				}
				if i%50 == 7 {
					return fmt.Errorf("fail %d", i)
				}
				return nil
			})
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			failed++
		}
	}
	n := 0
	s.View(ctx, func(tx store.Tx) error {
		return tx.List("b", "", func(string, []byte) error { n++; return nil })
	})
	if failed != 4 || n != 196 {
		t.Fatalf("failed %d updates, stored %d keys; want 4 and 196", failed, n)
	}
}
