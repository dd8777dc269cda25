package telemetry

import (
	"time"

	"github.com/edgefleet/edgefleet/internal/wire"
)

// HotRecordBytes is the size of one raw record in the hot window: fixed
// numeric fields and small integer ids for the device, the model/version/
// role and the rollout stage, no pointers (the garbage collector does not
// scan the window). The window's memory is at most MaxHot × HotRecordBytes
// plus one copy of each distinct device id, model/version/role and stage
// string of the records in it.
const HotRecordBytes = 112

// counters are a record's numbers that the aggregates add up.
type counters struct {
	requests, errors, crashes, rollbacks, installFailures, shadowCompared, shadowAgreed uint64
	p50, p95, p99                                                                       float64
}

func countersOf(r *wire.TelemetryRecord) counters {
	return counters{requests: r.Requests, errors: r.Errors, crashes: r.Crashes, rollbacks: r.Rollbacks,
		installFailures: r.InstallFailures, shadowCompared: r.ShadowCompared, shadowAgreed: r.ShadowAgreed,
		p50: r.LatencyP50Ms, p95: r.LatencyP95Ms, p99: r.LatencyP99Ms}
}

// hotRec is one raw record of the hot window (HotRecordBytes): the record
// time as unix seconds and nanoseconds (exact for any time.Time; the
// location is not kept: records come back in UTC), and ids into the
// Store's symbol tables.
type hotRec struct {
	counters
	seq   uint64
	sec   int64
	nsec  int32
	dev   uint32 // t.strs: device id
	stage uint32 // t.strs: rollout stage tag ("" outside rollouts)
	key   uint32 // t.keys: model, version and role as reported
}

// hotKey is the model, version and role of a hot record (the role as the
// device reported it: "" and "primary" are both primary).
type hotKey struct {
	model, version string
	role           wire.Role
}

func (h *hotRec) time() time.Time { return time.Unix(h.sec, int64(h.nsec)).UTC() }

// before orders hot records by time.
func (h *hotRec) before(o *hotRec) bool {
	return h.sec < o.sec || h.sec == o.sec && h.nsec < o.nsec
}

func beforeTime(h *hotRec, t time.Time) bool {
	s := t.Unix()
	return h.sec < s || h.sec == s && int64(h.nsec) < int64(t.Nanosecond())
}

// symtab interns values of the hot window as small integer ids, counting
// the hot records that use each id; an id no record uses is freed and
// reused, so the table holds only what the window references.
type symtab[K comparable] struct {
	ids  map[K]uint32
	vals []K
	refs []uint32
	free []uint32
}

func newSymtab[K comparable]() symtab[K] { return symtab[K]{ids: map[K]uint32{}} }

// ref returns v's id and counts one more user.
func (s *symtab[K]) ref(v K) uint32 {
	id, ok := s.ids[v]
	if !ok {
		if n := len(s.free); n > 0 {
			id = s.free[n-1]
			s.free = s.free[:n-1]
			s.vals[id] = v
		} else {
			id = uint32(len(s.vals))
			s.vals = append(s.vals, v)
			s.refs = append(s.refs, 0)
		}
		s.ids[v] = id
	}
	s.refs[id]++
	return id
}

// unref drops one user of id, freeing it with the last.
func (s *symtab[K]) unref(id uint32) {
	if s.refs[id]--; s.refs[id] == 0 {
		delete(s.ids, s.vals[id])
		var zero K
		s.vals[id] = zero
		s.free = append(s.free, id)
	}
}

// compactLocked builds the hot form of r, referencing its strings.
func (t *Store) compactLocked(r *Record) hotRec {
	return hotRec{counters: countersOf(&r.TelemetryRecord), seq: r.Seq, sec: r.Time.Unix(), nsec: int32(r.Time.Nanosecond()),
		dev: t.strs.ref(r.DeviceID), stage: t.strs.ref(r.Stage), key: t.keys.ref(hotKey{r.ModelID, r.Version, r.Role})}
}

// releaseLocked drops h's references (h leaves the window).
func (t *Store) releaseLocked(h *hotRec) {
	t.strs.unref(h.dev)
	t.strs.unref(h.stage)
	t.keys.unref(h.key)
}

// recordLocked expands a hot record (without monitoring: it is kept on
// disk and in the rollups only).
func (t *Store) recordLocked(h *hotRec) Record {
	k := t.keys.vals[h.key]
	return Record{TelemetryRecord: wire.TelemetryRecord{Seq: h.seq, Time: h.time(), ModelID: k.model, Version: k.version, Role: k.role,
		Requests: h.requests, Errors: h.errors, LatencyP50Ms: h.p50, LatencyP95Ms: h.p95, LatencyP99Ms: h.p99,
		Crashes: h.crashes, Rollbacks: h.rollbacks, InstallFailures: h.installFailures, ShadowCompared: h.shadowCompared, ShadowAgreed: h.shadowAgreed},
		DeviceID: t.strs.vals[h.dev], Stage: t.strs.vals[h.stage]}
}

// insertHotLocked puts r into the time-ordered window (after records of
// the same time).
func (t *Store) insertHotLocked(r *Record) {
	t.hot.insert(t.compactLocked(r))
}

// matchHot is Query.match on a hot record.
func (t *Store) matchHot(q *Query, h *hotRec) bool {
	k := &t.keys.vals[h.key]
	if q.ModelID != "" && k.model != q.ModelID {
		return false
	}
	if q.Version != "" && (k.version == q.Version) == q.ExcludeVersion {
		return false
	}
	if len(q.Roles) > 0 {
		role := k.role
		if role == "" {
			role = wire.RolePrimary
		}
		ok := false
		for _, x := range q.Roles {
			ok = ok || x == role
		}
		if !ok {
			return false
		}
	}
	if q.Devices != nil && !q.Devices[t.strs.vals[h.dev]] {
		return false
	}
	if !q.Since.IsZero() && beforeTime(h, q.Since) {
		return false
	}
	if !q.Until.IsZero() && !beforeTime(h, q.Until) {
		return false
	}
	return true
}

// eachHotLocked calls fn with every hot record matching q, oldest first
// (fn must not keep h); t.mu held.
func (t *Store) eachHotLocked(q Query, fn func(h *hotRec)) {
	ci, j := 0, 0
	if !q.Since.IsZero() {
		ci, j = t.hot.seek(q.Since)
	}
	t.hot.each(ci, j, func(h *hotRec) {
		if t.matchHot(&q, h) {
			fn(h)
		}
	})
}
