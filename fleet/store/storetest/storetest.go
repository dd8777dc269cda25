// Package storetest is the conformance suite every store.Store passes.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/store"
)

// Run checks s (a fresh, empty store) for the behaviour the fleet relies on.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	t.Run("GetPutDelete", func(t *testing.T) {
		s := open(t)
		err := s.View(ctx, func(tx store.Tx) error { _, err := tx.Get("b", "k"); return err })
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("get missing = %v, want ErrNotFound", err)
		}
		must(t, s.Update(ctx, func(tx store.Tx) error { return tx.Put("b", "k", []byte("v1")) }))
		must(t, s.View(ctx, func(tx store.Tx) error {
			v, err := tx.Get("b", "k")
			if err != nil || string(v) != "v1" {
				return fmt.Errorf("get = %q, %v", v, err)
			}
			v[0] = 'X' // copies: must not change the store
			return nil
		}))
		must(t, s.View(ctx, func(tx store.Tx) error {
			v, _ := tx.Get("b", "k")
			if string(v) != "v1" {
				return fmt.Errorf("stored value changed through a returned slice: %q", v)
			}
			return nil
		}))
		must(t, s.Update(ctx, func(tx store.Tx) error { return tx.Delete("b", "k") }))
		must(t, s.Update(ctx, func(tx store.Tx) error { return tx.Delete("nobucket", "k") }))
		err = s.View(ctx, func(tx store.Tx) error { _, err := tx.Get("b", "k"); return err })
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("get deleted = %v", err)
		}
	})
	t.Run("ListPrefixOrder", func(t *testing.T) {
		s := open(t)
		must(t, s.Update(ctx, func(tx store.Tx) error {
			for _, k := range []string{"a/3", "b/1", "a/1", "a/2", "ab"} {
				if err := tx.Put("b", k, []byte(k)); err != nil {
					return err
				}
			}
			return tx.Delete("b", "a/2")
		}))
		var got []string
		must(t, s.View(ctx, func(tx store.Tx) error {
			return tx.List("b", "a/", func(k string, v []byte) error {
				if k != string(v) {
					return fmt.Errorf("key %s value %s", k, v)
				}
				got = append(got, k)
				return nil
			})
		}))
		if fmt.Sprint(got) != "[a/1 a/3]" {
			t.Fatalf("list = %v, want [a/1 a/3]", got)
		}
		got = nil
		must(t, s.View(ctx, func(tx store.Tx) error {
			return tx.ListFrom("b", "a/2", func(k string, _ []byte) error { got = append(got, k); return nil })
		}))
		if fmt.Sprint(got) != "[a/3 ab b/1]" {
			t.Fatalf("list from a/2 = %v, want [a/3 ab b/1]", got)
		}
	})
	t.Run("UpdateAtomic", func(t *testing.T) {
		s := open(t)
		boom := errors.New("boom")
		err := s.Update(ctx, func(tx store.Tx) error {
			if err := tx.Put("b", "k", []byte("v")); err != nil {
				return err
			}
			// Reads inside the transaction see its own writes.
			if v, err := tx.Get("b", "k"); err != nil || string(v) != "v" {
				return fmt.Errorf("read own write: %q %v", v, err)
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("update error = %v, want boom", err)
		}
		err = s.View(ctx, func(tx store.Tx) error { _, err := tx.Get("b", "k"); return err })
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("failed update leaked a write: %v", err)
		}
	})
	t.Run("TimeKeyedBucket", func(t *testing.T) {
		// The telemetry records bucket: keys start with 20-digit unix
		// nanoseconds (a store may partition it by time, as PostgreSQL
		// does); order, prefix lists, reads, overwrites and deletes behave
		// as in any bucket, across days.
		s := open(t)
		const bucket = "telemetry"
		day := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		var keys []string
		for _, d := range []int{2, 0, 1, 40} {
			keys = append(keys, fmt.Sprintf("%020d/dev/e/%020d", day.AddDate(0, 0, d).UnixNano(), d))
		}
		must(t, s.Update(ctx, func(tx store.Tx) error {
			for _, k := range keys {
				if err := tx.Put(bucket, k, []byte("old")); err != nil {
					return err
				}
			}
			if err := tx.Put(bucket, keys[0], []byte(keys[0])); err != nil {
				return err
			}
			return tx.Delete(bucket, keys[3])
		}))
		var got []string
		must(t, s.View(ctx, func(tx store.Tx) error {
			if v, err := tx.Get(bucket, keys[0]); err != nil || string(v) != keys[0] {
				return fmt.Errorf("get overwritten %s = %q, %v", keys[0], v, err)
			}
			if _, err := tx.Get(bucket, keys[3]); !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("get deleted %s = %v, want ErrNotFound", keys[3], err)
			}
			return tx.List(bucket, "", func(k string, _ []byte) error { got = append(got, k); return nil })
		}))
		if want := fmt.Sprint([]string{keys[1], keys[2], keys[0]}); fmt.Sprint(got) != want {
			t.Fatalf("list = %v, want time order %v", got, want)
		}
		got = nil
		must(t, s.View(ctx, func(tx store.Tx) error {
			return tx.List(bucket, keys[2][:20], func(k string, _ []byte) error { got = append(got, k); return nil })
		}))
		if fmt.Sprint(got) != fmt.Sprint([]string{keys[2]}) {
			t.Fatalf("list by time prefix = %v, want [%s]", got, keys[2])
		}
		got = nil
		must(t, s.View(ctx, func(tx store.Tx) error {
			return tx.ListFrom(bucket, keys[2][:20], func(k string, _ []byte) error { got = append(got, k); return nil })
		}))
		if want := fmt.Sprint([]string{keys[2], keys[0]}); fmt.Sprint(got) != want {
			t.Fatalf("list from a time = %v, want %v", got, want)
		}
	})
	t.Run("CanceledContext", func(t *testing.T) {
		s := open(t)
		c, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.Update(c, func(store.Tx) error { return nil }); err == nil {
			t.Fatal("update with canceled context succeeded")
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
