package registry

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// Jobs are the devices' jobs and their state machine.
type Jobs struct {
	base
	briefs rowCache[JobBrief] // EachBrief and TimeOut decode only changed jobs
}

// JobRecord is a job with the server's bookkeeping.
type JobRecord struct {
	wire.Job
	DeviceID string    `json:"device_id"`
	Reason   string    `json:"reason,omitempty"`
	Updated  time.Time `json:"updated"`
}

// Add stores a queued job for the device. A job without an id gets a
// new sortable one; a job whose id already exists is left as it is and
// returned (adding is idempotent, so a controller may retry).
func (r *Jobs) Add(ctx context.Context, deviceID string, j wire.Job) (JobRecord, error) {
	var rec JobRecord
	err := r.s.Update(ctx, func(tx store.Tx) error {
		if j.JobID != "" {
			if err := getJSON(tx, bucketJobs, deviceID+"/"+j.JobID, &rec); err == nil {
				return nil
			}
			j.State = wire.JobQueued
			if j.Created.IsZero() {
				j.Created = r.now()
			}
			rec = JobRecord{Job: j, DeviceID: deviceID, Updated: j.Created}
			return putJSON(tx, bucketJobs, deviceID+"/"+j.JobID, rec)
		}
		var seq uint64
		if b, err := tx.Get(bucketMeta, "job-seq"); err == nil {
			fmt.Sscan(string(b), &seq)
		}
		seq++
		if err := tx.Put(bucketMeta, "job-seq", []byte(fmt.Sprint(seq))); err != nil {
			return err
		}
		j.JobID = fmt.Sprintf("j%08d", seq)
		j.State = wire.JobQueued
		j.Created = r.now()
		rec = JobRecord{Job: j, DeviceID: deviceID, Updated: j.Created}
		return putJSON(tx, bucketJobs, deviceID+"/"+j.JobID, rec)
	})
	if err != nil {
		return JobRecord{}, fmt.Errorf("add job for %s: %w", deviceID, err)
	}
	return rec, nil
}

// Update moves a job to state with a reason, enforcing the job state
// machine. Repeating the current terminal state is a no-op (duplicate
// delivery), reported with changed=false.
func (r *Jobs) Update(ctx context.Context, deviceID, jobID string, state wire.JobState, reason string) (rec JobRecord, changed bool, err error) {
	err = r.s.Update(ctx, func(tx store.Tx) error {
		key := deviceID + "/" + jobID
		if err := getJSON(tx, bucketJobs, key, &rec); err != nil {
			return err
		}
		if rec.State.Terminal() && (rec.State == state || state == wire.JobInProgress) {
			// Duplicate delivery, or a progress update overtaken by the
			// final one (updates may be processed concurrently).
			return nil
		}
		if rec.State == wire.JobQueued && rec.State.Transition(state) != nil && wire.JobInProgress.Transition(state) == nil {
			// The final update overtook the in_progress one (device
			// messages may be handled concurrently): the job went through
			// in_progress on the device.
			rec.State = wire.JobInProgress
		}
		if err := rec.State.Transition(state); err != nil {
			return err
		}
		changed = rec.State != state || reason != rec.Reason
		rec.State, rec.Reason, rec.Updated = state, reason, r.now()
		return putJSON(tx, bucketJobs, key, rec)
	})
	if err != nil {
		return JobRecord{}, false, fmt.Errorf("update job %s/%s: %w", deviceID, jobID, err)
	}
	return rec, changed, nil
}

// List lists a device's jobs (all devices when deviceID is ""), oldest first.
func (r *Jobs) List(ctx context.Context, deviceID string) ([]JobRecord, error) {
	var out []JobRecord
	prefix := ""
	if deviceID != "" {
		prefix = deviceID + "/"
	}
	err := r.s.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = listJSON[JobRecord](tx, bucketJobs, prefix)
		return err
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].JobID < out[j].JobID })
	return out, err
}

// TimeOut moves every unfinished job whose deadline has passed to
// timed_out and returns them.
func (r *Jobs) TimeOut(ctx context.Context) ([]JobRecord, error) {
	now := r.now()
	overdue := func(state wire.JobState, deadline time.Time) bool {
		return !state.Terminal() && !deadline.IsZero() && !now.Before(deadline)
	}
	// Find overdue jobs in a read transaction: this runs on every rollout
	// tick, and scanning every job inside a write transaction held the
	// store's single writer (telemetry, job updates) for the whole scan.
	// Only jobs that changed since the previous scan are decoded.
	var due []string
	err := r.s.View(ctx, func(tx store.Tx) error {
		return r.briefs.scan(tx, bucketJobs, func(k string, j *JobBrief) error {
			if overdue(j.State, j.Deadline) {
				due = append(due, k)
			}
			return nil
		})
	})
	if err != nil || len(due) == 0 {
		if err != nil {
			return nil, fmt.Errorf("time out jobs: %w", err)
		}
		return nil, nil
	}
	var out []JobRecord
	err = r.s.Update(ctx, func(tx store.Tx) error {
		out = out[:0]
		for _, key := range due {
			var j JobRecord
			if err := getJSON(tx, bucketJobs, key, &j); errors.Is(err, store.ErrNotFound) {
				continue // deleted meanwhile
			} else if err != nil {
				return err
			}
			if !overdue(j.State, j.Deadline) {
				continue // finished meanwhile
			}
			j.State, j.Reason, j.Updated = wire.JobTimedOut, "deadline "+j.Deadline.UTC().Format(time.RFC3339)+" passed", now
			if err := putJSON(tx, bucketJobs, key, j); err != nil {
				return err
			}
			out = append(out, j)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("time out jobs: %w", err)
	}
	return out, nil
}

// Pending lists a device's queued and in-progress jobs, oldest first.
func (r *Jobs) Pending(ctx context.Context, deviceID string) ([]JobRecord, error) {
	all, err := r.List(ctx, deviceID)
	var out []JobRecord
	for _, j := range all {
		if !j.State.Terminal() {
			out = append(out, j)
		}
	}
	return out, err
}
