package postgres_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/fleet/store/postgres"
	"github.com/edgefleet/edgefleet/fleet/store/postgres/pgtest"
	"github.com/edgefleet/edgefleet/fleet/store/storetest"
)

func TestPostgresConformance(t *testing.T) {
	dsn := pgtest.Start(t)
	n := 0
	storetest.Run(t, func(t *testing.T) store.Store {
		// A fresh, empty store per subtest: its own database.
		n++
		ctx := context.Background()
		admin, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		db := fmt.Sprintf("t%d", n)
		if _, err := admin.Pool().Exec(ctx, "CREATE DATABASE "+db); err != nil {
			t.Fatal(err)
		}
		admin.Close()
		s, err := postgres.Open(ctx, dsn[:len(dsn)-len("postgres?sslmode=disable")]+db+"?sslmode=disable")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestPostgresConcurrentUpdates: serializable read-modify-write counters
// from many goroutines lose no increment (conflicts are retried).
func TestPostgresConcurrentUpdates(t *testing.T) {
	dsn := pgtest.Start(t)
	ctx := context.Background()
	s, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				err := s.Update(ctx, func(tx store.Tx) error {
					n := 0
					if v, err := tx.Get("c", "n"); err == nil {
						n, _ = strconv.Atoi(string(v))
					}
					return tx.Put("c", "n", []byte(strconv.Itoa(n+1)))
				})
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	s.View(ctx, func(tx store.Tx) error {
		v, err := tx.Get("c", "n")
		if err != nil || string(v) != "80" {
			t.Errorf("counter = %q, %v; want 80", v, err)
		}
		return nil
	})
}

// TestLeaderElection: of two replicas only one leads; the standby takes
// over when the leader's session dies (backend terminated, as when its
// process is killed) — the control is that it did not lead before.
func TestLeaderElection(t *testing.T) {
	dsn := pgtest.Start(t)
	ctx := context.Background()
	a, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	la, lb := postgres.NewLeader(a, 42), postgres.NewLeader(b, 42)
	defer la.Resign(ctx) // before the pools close: a held lock keeps a connection
	defer lb.Resign(ctx)
	if ok, err := la.Leading(ctx); !ok || err != nil {
		t.Fatalf("a: leading %v, %v; want the lock", ok, err)
	}
	if ok, err := lb.Leading(ctx); ok || err != nil {
		t.Fatalf("b: leading %v, %v while a holds the lock", ok, err)
	}
	if ok, _ := la.Leading(ctx); !ok {
		t.Fatal("a lost the lock without reason")
	}
	if _, err := b.Pool().Exec(ctx, `SELECT pg_terminate_backend($1)`, int64(la.BackendPID())); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := lb.Leading(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b never took over after a's session died")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ok, _ := la.Leading(ctx); ok {
		t.Fatal("a still believes it leads after its session died")
	}
	lb.Resign(ctx)
	if ok, _ := la.Leading(ctx); !ok {
		t.Fatal("a did not take the lock back after b resigned")
	}
}

// TestPoolSize: the pool is DefaultMaxConns connections unless the DSN
// says otherwise.
func TestPoolSize(t *testing.T) {
	dsn := pgtest.Start(t)
	ctx := context.Background()
	for _, tc := range []struct {
		dsn  string
		want int32
	}{{dsn, postgres.DefaultMaxConns}, {dsn + "&pool_max_conns=7", 7}} {
		s, err := postgres.Open(ctx, tc.dsn)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Pool().Config().MaxConns; got != tc.want {
			t.Errorf("%s: pool of %d, want %d", tc.dsn, got, tc.want)
		}
		s.Close()
	}
}
