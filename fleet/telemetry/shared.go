package telemetry

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/edgefleet/edgefleet/fleet/store"
)

// recID identifies a stored record without its epoch (two epochs of a
// device with the same seq and the same nanosecond do not happen).
type recID struct {
	device string
	seq    uint64
	ns     int64
}

// decoded counts the records SyncShared decoded (tests: a merge decodes
// only records it has not seen).
var decoded atomic.Int64

// recIDOfKey is the record id a record key names (recKey:
// <unix ns, 20 digits>/<device>/<epoch>/<seq, 20 digits>), so a merge
// skips the records it knows without decoding them. ok is false for a key
// of another shape (the record is then decoded).
func recIDOfKey(k string) (recID, bool) {
	ts, rest, ok := strings.Cut(k, "/")
	if !ok || len(ts) != 20 {
		return recID{}, false
	}
	dev, rest, ok := strings.Cut(rest, "/")
	i := strings.LastIndexByte(rest, '/')
	if !ok || dev == "" || i < 0 || len(rest)-i-1 != 20 {
		return recID{}, false
	}
	ns, err1 := strconv.ParseInt(ts, 10, 64)
	seq, err2 := strconv.ParseUint(rest[i+1:], 10, 64)
	if err1 != nil || err2 != nil || ns == 0 {
		return recID{}, false // 0: a time before 1970 clamped (recPrefix), not the record's
	}
	return recID{dev, seq, ns}, true
}

// SyncShared merges into this Store's memory (hot window and rollups) the
// records that other replicas sharing the store wrote with a record time
// in the last lookback, skipping those this Store ingested or merged
// before — recognised by their keys, so only new records are decoded
// (each merge is incremental, however long the lookback). Replicas each hold only what they ingested; the rollout leader
// calls this before its gates so that they judge the whole fleet's
// telemetry. Records whose time is older than lookback when they are
// stored (a device's backlog after being offline) are not merged: they
// are in the store and in the on-disk rollups only. It returns how many
// records were merged. Process-local counters (/metrics) do not change.
func (t *Store) SyncShared(ctx context.Context, lookback time.Duration) (int, error) {
	now := t.now()
	from := now.Add(-lookback)
	t.mu.Lock()
	if t.known == nil {
		// First sync: what is in memory now was ingested here.
		t.known = map[recID]struct{}{}
		t.hot.each(0, 0, func(h *hotRec) {
			t.known[recID{t.strs.vals[h.dev], h.seq, h.time().UnixNano()}] = struct{}{}
		})
	}
	t.mu.Unlock()
	var add []Record
	err := t.s.View(ctx, func(tx store.Tx) error {
		return tx.ListFrom(bucketRecords, recPrefix(from), func(k string, v []byte) error {
			if id, ok := recIDOfKey(k); ok {
				t.mu.RLock()
				_, seen := t.known[id]
				t.mu.RUnlock()
				if seen {
					return nil // merged or ingested here before: not decoded again
				}
			}
			decoded.Add(1)
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode telemetry %s: %w", k, err)
			}
			id := recID{r.DeviceID, r.Seq, r.Time.UnixNano()}
			t.mu.RLock()
			_, seen := t.known[id]
			t.mu.RUnlock()
			if !seen {
				add = append(add, r)
			}
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("sync shared telemetry: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for i := range add {
		r := &add[i]
		if _, seen := t.known[recID{r.DeviceID, r.Seq, r.Time.UnixNano()}]; seen {
			continue // ingested here meanwhile
		}
		t.addLocked(r)
		n++
	}
	t.trimHotLocked()
	cut := from.Add(-time.Minute).UnixNano()
	for id := range t.known {
		if id.ns < cut {
			delete(t.known, id)
		}
	}
	return n, nil
}
