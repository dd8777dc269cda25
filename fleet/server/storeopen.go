package server

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/fleet/store/boltstore"
	"github.com/edgefleet/edgefleet/fleet/store/postgres"
)

// rolloutLeaderKey is the PostgreSQL advisory lock key of the rollout
// controller ("edgeflt" in ASCII).
const rolloutLeaderKey = 0x65646765666c74

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
	s.leader = postgres.NewLeader(pg, rolloutLeaderKey)
	return pg, nil
}

// tickRollouts runs the rollout controller when this replica leads (always
// on bbolt). On a shared store every replica first reloads the rollouts
// if another replica changed them since this one last read or wrote them
// (one version row read per tick otherwise), so API reads on standbys and
// a new leader see the current state.
func (s *Server) tickRollouts(ctx context.Context) error {
	if s.leader == nil {
		return s.mgr.Tick(ctx)
	}
	if _, err := s.mgr.ReloadIfChanged(ctx); err != nil {
		return err
	}
	leading, err := s.leader.Leading(ctx)
	if err != nil || !leading {
		return err
	}
	s.syncSharedTelemetry(ctx) // shared_telemetry.go: gates see every replica's telemetry
	return s.mgr.Tick(ctx)
}

// resignLeader releases the rollout leadership before the store closes.
func (s *Server) resignLeader() {
	if s.leader != nil {
		s.leader.Resign(context.Background())
	}
}
