package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/fleet/store/boltstore"
	"github.com/edgefleet/edgefleet/fleet/store/postgres/pgtest"
)

func replicaConfig(t *testing.T, dataDir, storeURL string) Config {
	return Config{DataDir: dataDir, HTTPAddr: "127.0.0.1:0", EmbeddedAddr: "127.0.0.1:0", StoreURL: storeURL,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// TestSecondReplicaOnBoltDataDir: a second server on a data dir in use gets
// a clear error (not a panic, not a hang); the control, a fresh data dir,
// starts.
func TestSecondReplicaOnBoltDataDir(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, err := Start(ctx, replicaConfig(t, dir, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	_, err = Start(ctx, replicaConfig(t, dir, ""))
	if !errors.Is(err, boltstore.ErrLocked) || !strings.Contains(err.Error(), "another fleet-server") {
		t.Fatalf("second server on %s: %v; want ErrLocked naming another fleet-server", dir, err)
	}
	c, err := Start(ctx, replicaConfig(t, t.TempDir(), ""))
	if err != nil {
		t.Fatalf("control, fresh data dir: %v", err)
	}
	c.Close()
}

// TestReplicasSharePostgres: two servers on one PostgreSQL database see the
// same registry; exactly one leads the rollout controller, and the other
// takes over when the leader stops.
func TestReplicasSharePostgres(t *testing.T) {
	dsn := pgtest.Start(t)
	ctx := context.Background()
	a, err := Start(ctx, replicaConfig(t, t.TempDir(), dsn))
	if err != nil {
		t.Fatal(err)
	}
	closeA := sync.OnceValue(a.Close)
	defer closeA()
	b, err := Start(ctx, replicaConfig(t, t.TempDir(), dsn))
	if err != nil {
		t.Fatal(err)
	}
	closeB := sync.OnceValue(b.Close)
	defer closeB()
	sel, _ := registry.ParseSelector("site=lab")
	if err := a.Registry().Groups.Put(ctx, "lab", sel); err != nil {
		t.Fatal(err)
	}
	groups, err := b.Registry().Groups.List(ctx)
	if err != nil || groups["lab"].String() != "site=lab" {
		t.Fatalf("replica b sees groups %v, %v; want lab written through a", groups, err)
	}
	for _, s := range []*Server{a, b} {
		if err := s.tickRollouts(ctx); err != nil {
			t.Fatal(err)
		}
	}
	leading := func(s *Server) bool {
		if s.leader == nil {
			t.Fatal("no leader elector on a PostgreSQL store")
		}
		ok, err := s.leader.Leading(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	la, lb := leading(a), leading(b)
	if la == lb {
		t.Fatalf("leaders: a %v, b %v; want exactly one", la, lb)
	}
	stopLeader, standby := closeA, b
	if lb {
		stopLeader, standby = closeB, a
	}
	stopLeader() // resigns: the lock goes with the session

	if err := standby.tickRollouts(ctx); err != nil {
		t.Fatal(err)
	}
	if !leading(standby) {
		t.Fatal("the standby did not take over after the leader stopped")
	}
}

// TestReplicasShareCA: replicas started at the same moment on one
// PostgreSQL database (the schema and the first CA are created once, under
// concurrency) end up with one fleet CA and one command-signing key; the
// control, a server on bbolt, has its own.
func TestReplicasShareCA(t *testing.T) {
	dsn := pgtest.Start(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	srvs := make([]*Server, 3)
	errs := make([]error, 3)
	for i := range srvs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srvs[i], errs[i] = Start(ctx, replicaConfig(t, t.TempDir(), dsn))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		defer srvs[i].Close()
	}
	for i, s := range srvs[1:] {
		if s.CAFingerprint() != srvs[0].CAFingerprint() {
			t.Fatalf("replica %d CA %s, replica 0 CA %s", i+1, s.CAFingerprint(), srvs[0].CAFingerprint())
		}
		if !s.cmdKey.Equal(srvs[0].cmdKey) {
			t.Fatalf("replica %d signs jobs with another command key than replica 0", i+1)
		}
	}
	bolt, err := Start(ctx, replicaConfig(t, t.TempDir(), ""))
	if err != nil {
		t.Fatal(err)
	}
	defer bolt.Close()
	if bolt.CAFingerprint() == srvs[0].CAFingerprint() {
		t.Fatal("a bbolt server got the shared CA")
	}
}
