package server

import (
	"context"
	"sync"
	"time"
)

// Replicas sharing a PostgreSQL store each ingest part of the fleet's
// telemetry. The rollout leader merges what the others stored (records of
// the last sharedLookback) before its gates evaluate, at most every
// sharedSyncEvery — and at most every sharedSyncCost times as long as the
// last merge took, so that gates see the whole fleet's telemetry without
// the merge becoming the leader's main work: each merge reads every record
// of the lookback (at 5,000 devices and 1 record / 10 s, 30,000 records)
// but decodes only those it has not merged yet (telemetry.SyncShared
// recognises the others by their keys).
const (
	sharedSyncEvery = 2 * time.Second
	sharedSyncCost  = 10
	sharedSyncMax   = 30 * time.Second
	sharedLookback  = time.Minute
)

// telSync is when the leader last merged and how long that took.
type telSync struct {
	at   time.Time
	took time.Duration
}

var telSyncOf sync.Map // *Server → telSync (kept out of Server to keep server.go edits minimal)

// nextSharedSync is the earliest time of the merge after one that started
// at last.at and took last.took.
func nextSharedSync(last telSync) time.Time {
	wait := min(max(sharedSyncEvery, sharedSyncCost*last.took), sharedSyncMax)
	return last.at.Add(wait)
}

// syncSharedTelemetry merges the other replicas' recent telemetry (leader
// only, on a shared store).
func (s *Server) syncSharedTelemetry(ctx context.Context) {
	now := time.Now()
	if v, ok := telSyncOf.Load(s); ok && now.Before(nextSharedSync(v.(telSync))) {
		return
	}
	telSyncOf.Store(s, telSync{at: now})
	n, err := s.tel.SyncShared(ctx, sharedLookback)
	telSyncOf.Store(s, telSync{at: now, took: time.Since(now)})
	if err != nil {
		s.log.Warn("telemetry of the other replicas not merged", "err", err)
		return
	}
	if n > 0 {
		s.log.Debug("merged telemetry of the other replicas", "records", n)
	}
}
