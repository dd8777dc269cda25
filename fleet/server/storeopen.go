package server

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/fleet/store/boltstore"
	"github.com/edgefleet/edgefleet/fleet/store/postgres"
)

// rolloutLeaderKey is the PostgreSQL advisory lock key of the rollout
// controller ("edgeflt" in ASCII).
const rolloutLeaderKey = 0x65646765666c74

var leaderOf sync.Map // *Server → *postgres.Leader (kept out of Server to keep server.go edits minimal)

// openStore opens the bbolt file in the data dir, or the PostgreSQL
// database of Config.StoreURL (with a leader elector for the rollout
// controller).
func (s *Server) openStore(ctx context.Context) (store.Store, error) {
	u := s.cfg.StoreURL
	if u == "" {
		b, err := boltstore.Open(filepath.Join(s.cfg.DataDir, "fleet.db"))
		if err != nil {
			return nil, err // a nil *Bolt must not become a non-nil Store
		}
		return b, nil
	}
	if !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		return nil, fmt.Errorf("store %q: want postgres://user:password@host:port/database (or empty for bbolt in the data dir)", u)
	}
	pg, err := postgres.Open(ctx, u)
	if err != nil {
		return nil, err
	}
	leaderOf.Store(s, postgres.NewLeader(pg, rolloutLeaderKey))
	return pg, nil
}

// tickRollouts runs the rollout controller when this replica leads (always
// on bbolt). On a shared store every replica first reloads the rollouts, so
// API reads on standbys and a new leader see the current state.
func (s *Server) tickRollouts(ctx context.Context) error {
	v, ok := leaderOf.Load(s)
	if !ok {
		return s.mgr.Tick(ctx)
	}
	if err := s.mgr.Reload(ctx); err != nil {
		return err
	}
	leading, err := v.(*postgres.Leader).Leading(ctx)
	if err != nil || !leading {
		return err
	}
	s.syncSharedTelemetry(ctx) // shared_telemetry.go: gates see every replica's telemetry
	return s.mgr.Tick(ctx)
}

// resignLeader releases the rollout leadership before the store closes.
func (s *Server) resignLeader() {
	if v, ok := leaderOf.LoadAndDelete(s); ok {
		v.(*postgres.Leader).Resign(context.Background())
	}
}
