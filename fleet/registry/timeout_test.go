package registry_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// countingStore counts write transactions.
type countingStore struct {
	store.Store
	updates atomic.Int64
}

func (c *countingStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	c.updates.Add(1)
	return c.Store.Update(ctx, fn)
}

// TestTimeOutJobsWritesOnlyWhenDue: the per-tick deadline check opens no
// write transaction while nothing is overdue (it used to scan every job
// inside one, holding the store's single writer on every rollout tick);
// once a deadline passes, the job is timed out in one write.
func TestTimeOutJobsWritesOnlyWhenDue(t *testing.T) {
	ctx := context.Background()
	var now atomic.Pointer[time.Time]
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	now.Store(&t0)
	cs := &countingStore{Store: store.NewMem()}
	r := registry.New(cs, clock.Func(func() time.Time { return *now.Load() }))
	for _, id := range []string{"j1", "j2"} {
		if _, err := r.Jobs.Add(ctx, "d1", wire.Job{JobID: id, Kind: wire.JobInstall, ModelID: "m", Version: "1", Deadline: t0.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := r.Jobs.Update(ctx, "d1", "j2", wire.JobInProgress, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Jobs.Update(ctx, "d1", "j2", wire.JobSucceeded, ""); err != nil {
		t.Fatal(err)
	}
	before := cs.updates.Load()
	out, err := r.Jobs.TimeOut(ctx)
	if err != nil || len(out) != 0 {
		t.Fatalf("before the deadline: %v %v", out, err)
	}
	if n := cs.updates.Load() - before; n != 0 {
		t.Fatalf("%d write transactions with nothing overdue, want 0", n)
	}
	later := t0.Add(2 * time.Minute)
	now.Store(&later)
	out, err = r.Jobs.TimeOut(ctx)
	if err != nil || len(out) != 1 || out[0].JobID != "j1" || out[0].State != wire.JobTimedOut {
		t.Fatalf("after the deadline: %+v %v, want j1 timed out (j2 had succeeded)", out, err)
	}
	if n := cs.updates.Load() - before; n != 1 {
		t.Fatalf("%d write transactions, want 1", n)
	}
	jobs, err := r.Jobs.List(ctx, "d1")
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		if want := map[string]wire.JobState{"j1": wire.JobTimedOut, "j2": wire.JobSucceeded}[j.JobID]; j.State != want {
			t.Errorf("%s is %s, want %s", j.JobID, j.State, want)
		}
	}
}
