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
	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/fleet/store/postgres"
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
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "another fleet-server") {
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
	if err := a.Registry().PutGroup(ctx, "lab", sel); err != nil {
		t.Fatal(err)
	}
	groups, err := b.Registry().Groups(ctx)
	if err != nil || groups["lab"].String() != "site=lab" {
		t.Fatalf("replica b sees groups %v, %v; want lab written through a", groups, err)
	}
	for _, s := range []*Server{a, b} {
		if err := s.tickRollouts(ctx); err != nil {
			t.Fatal(err)
		}
	}
	leading := func(s *Server) bool {
		v, ok := leaderOf.Load(s)
		if !ok {
			t.Fatal("no leader elector on a PostgreSQL store")
		}
		ok, err := v.(*postgres.Leader).Leading(ctx)
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
