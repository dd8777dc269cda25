package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// rowCache keeps the decoded form of every row of a bucket next to the
// row's bytes, so a scan decodes only the rows whose bytes changed since
// the previous scan (the rollout controller scans every device and job
// once a second; between two ticks few of them change). The result is the
// same as decoding every row: a row is reused only when its bytes are
// identical.
type rowCache[T any] struct {
	mu      sync.Mutex
	rows    map[string]*cachedRow[T]
	gen     uint64
	decoded atomic.Int64 // rows decoded so far (tests)
}

type cachedRow[T any] struct {
	raw []byte
	v   T
	gen uint64
}

// scan calls fn with every row of bucket, by key, decoding only rows that
// are new or changed; rows gone from the bucket leave the cache. fn must
// not keep or modify v beyond the call's documented contract (values are
// shared with later scans). Scans are serialized.
func (c *rowCache[T]) scan(tx store.Tx, bucket string, fn func(k string, v *T) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rows == nil {
		c.rows = map[string]*cachedRow[T]{}
	}
	c.gen++
	gen := c.gen
	err := tx.List(bucket, "", func(k string, b []byte) error {
		row := c.rows[k]
		if row == nil || !bytes.Equal(row.raw, b) {
			var v T
			c.decoded.Add(1)
			if err := json.Unmarshal(b, &v); err != nil {
				return fmt.Errorf("decode %s/%s: %w", bucket, k, err)
			}
			row = &cachedRow[T]{raw: b, v: v} // b is the caller's copy (store.Tx)
			c.rows[k] = row
		}
		row.gen = gen
		return fn(k, &row.v)
	})
	if err != nil {
		c.rows = nil // a partial scan: start over next time
		return err
	}
	for k, row := range c.rows {
		if row.gen != gen {
			delete(c.rows, k)
		}
	}
	return nil
}

// DeviceBrief is the part of a device record the rollout controller
// decides on. Its Models and Labels are shared with the registry's cache:
// read them, never modify them.
type DeviceBrief struct {
	ID           string             `json:"id"`
	AgentVersion string             `json:"agent_version,omitempty"`
	Models       []wire.ModelStatus `json:"models,omitempty"`
	Labels       map[string]string  `json:"labels,omitempty"`
	Presence     wire.Presence      `json:"presence"`
}

// ActiveVersion returns the active version of model on the device, or "".
func (d *DeviceBrief) ActiveVersion(model string) string {
	for _, m := range d.Models {
		if m.ID == model {
			return m.Active
		}
	}
	return ""
}

// Briefs lists the devices matching the selector (all when empty), by id,
// as DeviceBriefs. Every record is read, but only records that changed
// since the previous Briefs are decoded (and only the brief's fields).
func (r *Devices) Briefs(ctx context.Context, sel Selector) ([]DeviceBrief, error) {
	var out []DeviceBrief
	err := r.s.View(ctx, func(tx store.Tx) error {
		out = make([]DeviceBrief, 0, r.listed.Load())
		return r.briefs.scan(tx, bucketDevices, func(_ string, d *DeviceBrief) error {
			if sel.Matches(d.Labels) {
				out = append(out, *d)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	return out, nil
}

// JobBrief is the part of a job record the rollout controller and the
// job timeout read.
type JobBrief struct {
	JobID     string        `json:"job_id"`
	DeviceID  string        `json:"device_id"`
	RolloutID string        `json:"rollout_id,omitempty"`
	State     wire.JobState `json:"state"`
	Reason    string        `json:"reason,omitempty"`
	Deadline  time.Time     `json:"deadline,omitzero"`
}

// EachBrief calls fn with every job (all devices), decoding only the jobs
// that changed since the previous EachBrief or TimeOut. fn runs inside the
// store's read transaction: keep it short, and do not call the registry
// from it.
func (r *Jobs) EachBrief(ctx context.Context, fn func(JobBrief)) error {
	err := r.s.View(ctx, func(tx store.Tx) error {
		return r.briefs.scan(tx, bucketJobs, func(_ string, j *JobBrief) error {
			fn(*j)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("list jobs: %w", err)
	}
	return nil
}

// DecodedBriefs is how many device records Briefs has decoded so far
// (tests bound the decoding per rollout tick).
func (r *Devices) DecodedBriefs() int64 { return r.briefs.decoded.Load() }

// DecodedBriefs is how many job records EachBrief and TimeOut have decoded
// so far (tests bound the decoding per rollout tick).
func (r *Jobs) DecodedBriefs() int64 { return r.briefs.decoded.Load() }
