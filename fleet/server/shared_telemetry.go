package server

import (
	"context"
	"sync"
	"time"
)

// Replicas sharing a PostgreSQL store each ingest part of the fleet's
// telemetry. The rollout leader merges what the others stored (records of
// the last sharedLookback) before its gates evaluate, at most every
// sharedSyncEvery, so that gates see the whole fleet's telemetry.
const (
	sharedSyncEvery = 2 * time.Second
	sharedLookback  = time.Minute
)

var telSyncOf sync.Map // *Server → time.Time of the last sync (kept out of Server to keep server.go edits minimal)

// syncSharedTelemetry merges the other replicas' recent telemetry (leader
// only, on a shared store).
func (s *Server) syncSharedTelemetry(ctx context.Context) {
	now := time.Now()
	if v, ok := telSyncOf.Load(s); ok && now.Sub(v.(time.Time)) < sharedSyncEvery {
		return
	}
	telSyncOf.Store(s, now)
	n, err := s.tel.SyncShared(ctx, sharedLookback)
	if err != nil {
		s.log.Warn("telemetry of the other replicas not merged", "err", err)
		return
	}
	if n > 0 {
		s.log.Debug("merged telemetry of the other replicas", "records", n)
	}
}
