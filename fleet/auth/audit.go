package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/internal/clock"
)

// Entry is one audited call.
type Entry struct {
	Seq    uint64            `json:"seq"`
	Time   time.Time         `json:"time"`
	Actor  string            `json:"actor"`            // token id, or "-" when unauthenticated
	Name   string            `json:"name,omitempty"`   // token name
	Scope  Scope             `json:"scope,omitempty"`  // token scope
	Method string            `json:"method"`           // HTTP method
	Route  string            `json:"route"`            // the route pattern, e.g. /api/v1/devices/{id}
	Path   string            `json:"path"`             // the request path
	Target map[string]string `json:"target,omitempty"` // ids acted on (path values, created ids)
	Status int               `json:"status"`           // HTTP answer
	Client string            `json:"client"`           // remote address
	Error  string            `json:"error,omitempty"`  // error code of a refused/failed call
}

// Filter selects audit entries; zero fields match everything.
type Filter struct {
	Actor  string    // token id or name
	Method string    // e.g. POST
	Route  string    // substring of the route pattern
	Since  time.Time // entries at or after
	Before uint64    // only entries with Seq < Before (paging; 0 = newest)
	Limit  int       // at most this many (default 100, max 1000)
}

// Audit is an append-only, bounded log of entries in a store.Store. When
// more than Max entries exist the oldest are deleted.
type Audit struct {
	s   store.Store
	max uint64
	now func() time.Time
	mu  sync.Mutex
}

const (
	bucketAudit     = "audit"
	bucketAuditMeta = "audit_meta"
	// DefaultAuditMax is the default retention in entries.
	DefaultAuditMax = 100_000
)

type auditMeta struct {
	Next   uint64 `json:"next"`
	Oldest uint64 `json:"oldest"`
}

// NewAudit returns the audit log over s keeping at most max entries
// (DefaultAuditMax if max <= 0); c supplies entry times (the system clock if
// nil).
func NewAudit(s store.Store, max int, c clock.Clock) *Audit {
	if max <= 0 {
		max = DefaultAuditMax
	}
	return &Audit{s: s, max: uint64(max), now: clock.Or(c).Now}
}

func auditKey(seq uint64) string { return fmt.Sprintf("%020d", seq) }

// Append stores e (its Seq and, if zero, Time are set) and prunes entries
// beyond the retention.
func (a *Audit) Append(ctx context.Context, e Entry) (Entry, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e.Time.IsZero() {
		e.Time = a.now().UTC()
	}
	err := a.s.Update(ctx, func(tx store.Tx) error {
		var m auditMeta
		if b, err := tx.Get(bucketAuditMeta, "meta"); err == nil {
			if err := json.Unmarshal(b, &m); err != nil {
				return fmt.Errorf("decode audit meta: %w", err)
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if m.Next == 0 {
			m.Next, m.Oldest = 1, 1
		}
		e.Seq = m.Next
		m.Next++
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if err := tx.Put(bucketAudit, auditKey(e.Seq), b); err != nil {
			return err
		}
		for m.Next-m.Oldest > a.max {
			if err := tx.Delete(bucketAudit, auditKey(m.Oldest)); err != nil {
				return err
			}
			m.Oldest++
		}
		mb, _ := json.Marshal(m)
		return tx.Put(bucketAuditMeta, "meta", mb)
	})
	if err != nil {
		return e, fmt.Errorf("audit append: %w", err)
	}
	return e, nil
}

// Query returns matching entries, newest first, and the Before value of
// the next page (0 when there is none). It walks back from the newest (or
// Before) entry, so an unfiltered page costs Limit reads.
func (a *Audit) Query(ctx context.Context, f Filter) ([]Entry, uint64, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	if f.Limit > 1000 {
		f.Limit = 1000
	}
	out := []Entry{}
	var next uint64
	err := a.s.View(ctx, func(tx store.Tx) error {
		var m auditMeta
		if b, err := tx.Get(bucketAuditMeta, "meta"); err == nil {
			if err := json.Unmarshal(b, &m); err != nil {
				return fmt.Errorf("decode audit meta: %w", err)
			}
		} else if errors.Is(err, store.ErrNotFound) {
			return nil
		} else {
			return err
		}
		top := m.Next
		if f.Before != 0 && f.Before < top {
			top = f.Before
		}
		for seq := top; seq > m.Oldest; {
			seq--
			b, err := tx.Get(bucketAudit, auditKey(seq))
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			var e Entry
			if err := json.Unmarshal(b, &e); err != nil {
				return fmt.Errorf("decode audit %d: %w", seq, err)
			}
			if !f.Since.IsZero() && e.Time.Before(f.Since) {
				break // older entries are older still
			}
			if !f.matches(e) {
				continue
			}
			if len(out) == f.Limit {
				next = out[len(out)-1].Seq
				break
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("audit query: %w", err)
	}
	return out, next, nil
}

func (f Filter) matches(e Entry) bool {
	if f.Actor != "" && f.Actor != e.Actor && f.Actor != e.Name {
		return false
	}
	if f.Method != "" && !strings.EqualFold(f.Method, e.Method) {
		return false
	}
	if f.Route != "" && !strings.Contains(e.Route, f.Route) {
		return false
	}
	if !f.Since.IsZero() && e.Time.Before(f.Since) {
		return false
	}
	return true
}
