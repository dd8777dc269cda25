package server

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/fleet/rollout"
	"github.com/edgefleet/edgefleet/fleet/store/postgres/pgtest"
	"github.com/edgefleet/edgefleet/fleet/telemetry"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// TestGatesSeeOtherReplicasTelemetry: two replicas on a real PostgreSQL;
// the rollout's stage devices report a 50 % error rate, all of it
// ingested by the replica that does NOT lead the rollouts. The leader's
// error-rate gate trips and the rollout rolls back. The control: before
// the leader's tick its own memory held none of those records (each
// replica holds only what it ingested), and the healthy first batch,
// also through the non-leader, let the stage soak without tripping.
func TestGatesSeeOtherReplicasTelemetry(t *testing.T) {
	dsn := pgtest.Start(t)
	ctx := context.Background()
	a, err := Start(ctx, replicaConfig(t, t.TempDir(), dsn))
	if err != nil {
		t.Fatal(err)
	}
	closeA := sync.OnceValue(a.Close)
	defer closeA()
	b, err := Start(ctx, replicaConfig(t, t.TempDir(), dsn))
	if err != nil {
		t.Fatal(err)
	}
	closeB := sync.OnceValue(b.Close)
	defer closeB()
	for _, s := range []*Server{a, b} {
		if err := s.tickRollouts(ctx); err != nil {
			t.Fatal(err)
		}
	}
	leader, other := a, b
	if b.leader != nil {
		if ok, _ := b.leader.Leading(ctx); ok {
			leader, other = b, a
		}
	}
	leader.mgr.SetMinTickGap(0) // every tick below runs
	reg := leader.Registry()
	reg.Devices.SetPasswordAuth(true)
	tok, _, err := reg.Tokens.Create(ctx, nil, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	for i := range n {
		id := fmt.Sprintf("d%d", i)
		if _, err := reg.Devices.Enroll(ctx, &wire.EnrollRequest{V: 1, Token: tok, DeviceID: id, Models: []wire.ModelStatus{{ID: "m", Active: "1", Installed: []string{"1"}}}}, registry.Proof{}); err != nil {
			t.Fatal(err)
		}
		reg.Devices.Update(ctx, id, func(d *registry.Device) error { d.Presence = wire.Online; return nil })
	}
	target := wire.Target{Name: "models/m/2/model.tflite", Length: 1, SHA256: "00"}
	if err := reg.Models.Put(ctx, registry.Model{ID: "m", Version: "2", Target: target}); err != nil {
		t.Fatal(err)
	}
	gates := rollout.DefaultGates()
	gates.MinRequests, gates.MaxErrorRateDelta, gates.MaxP95Ratio = 10, 0, 0
	if _, err := leader.Rollouts().Create(ctx, rollout.Spec{ID: "r1", ModelID: "m", Version: "2", Target: target, Stages: []int{100},
		Soak: time.Hour, Gates: gates}); err != nil {
		t.Fatal(err)
	}
	// Every device installs the version.
	for i := range n {
		id := fmt.Sprintf("d%d", i)
		jobs, err := reg.Jobs.List(ctx, id)
		if err != nil || len(jobs) != 1 {
			t.Fatalf("jobs of %s: %v, %v", id, jobs, err)
		}
		reg.Jobs.Update(ctx, id, jobs[0].JobID, wire.JobInProgress, "")
		reg.Jobs.Update(ctx, id, jobs[0].JobID, wire.JobSucceeded, "")
		reg.Devices.Update(ctx, id, func(d *registry.Device) error {
			d.Models = []wire.ModelStatus{{ID: "m", Active: "2", Installed: []string{"1", "2"}}}
			return nil
		})
	}
	ingest := func(seq uint64, errs uint64) {
		t.Helper()
		for i := range n {
			b := &wire.TelemetryBatch{V: wire.Version, DeviceID: fmt.Sprintf("d%d", i), Epoch: "e1", Records: []wire.TelemetryRecord{{
				Seq: seq, Time: time.Now(), ModelID: "m", Version: "2", Requests: 100, Errors: errs, LatencyP50Ms: 1, LatencyP95Ms: 2, LatencyP99Ms: 3}}}
			if _, _, err := other.Telemetry().Ingest(ctx, b, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	tick := func() {
		t.Helper()
		telSyncOf.Delete(leader) // no wait for the sync interval
		if err := leader.tickRollouts(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ingest(1, 0) // healthy
	tick()
	if r, _ := leader.Rollouts().Get("r1"); r.Phase != rollout.Running || r.SoakStarted.IsZero() {
		t.Fatalf("after healthy telemetry: %s (%s), soak started %v; want running, soaking", r.Phase, r.Reason, r.SoakStarted)
	}
	ingest(2, 50) // 50 % errors, through the other replica only
	own := leader.Telemetry().Health(telemetry.Query{ModelID: "m", Version: "2", Devices: map[string]bool{"d0": true, "d1": true, "d2": true, "d3": true}})
	if own.Errors != 0 {
		t.Fatalf("control: the leader holds %d errors it did not ingest before merging", own.Errors)
	}
	tick()
	r, _ := leader.Rollouts().Get("r1")
	if r.Phase != rollout.RollingBack && r.Phase != rollout.RolledBack {
		t.Fatalf("after 50 %% errors ingested by the non-leader: %s (%s), gates %+v; want rolling back", r.Phase, r.Reason, r.Gates)
	}
	t.Logf("leader's gate tripped: %s", r.Reason)
	// Merged once: the leader's view of the errors is exact.
	h := leader.Telemetry().Health(telemetry.Query{ModelID: "m", Version: "2", Devices: map[string]bool{"d0": true, "d1": true, "d2": true, "d3": true}})
	if h.Requests != 2*n*100 || h.Errors != n*50 {
		t.Fatalf("leader's merged view: %d requests, %d errors; want %d, %d (each record once)", h.Requests, h.Errors, 2*n*100, n*50)
	}
}

// TestSharedSyncInterval: the leader merges the other replicas'
// telemetry at most every 2 s, and waits ten times as long as the last
// merge took when that is longer (a merge decodes every record of the
// last minute), up to 30 s.
func TestSharedSyncInterval(t *testing.T) {
	at := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		took, want time.Duration
	}{
		{0, 2 * time.Second},
		{50 * time.Millisecond, 2 * time.Second},
		{200 * time.Millisecond, 2 * time.Second},
		{700 * time.Millisecond, 7 * time.Second},
		{2 * time.Second, 20 * time.Second},
		{time.Minute, 30 * time.Second},
	} {
		if got := nextSharedSync(telSync{at: at, took: tc.took}).Sub(at); got != tc.want {
			t.Errorf("after a merge of %s: next in %s, want %s", tc.took, got, tc.want)
		}
	}
}
