package rollout_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/fleet/rollout"
	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/fleet/store/boltstore"
	"github.com/edgefleet/edgefleet/fleet/telemetry"
	"github.com/edgefleet/edgefleet/internal/wire"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

// fixture is what every manager test starts from: a registry and a
// telemetry store over s, with a fake clock at a fixed time; device
// credentials are not checked (they are not what these tests are about).
func fixture(tb testing.TB, s store.Store) (*registry.Registry, *telemetry.Store, *fakeClock) {
	tb.Helper()
	clock := &fakeClock{t: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}
	reg := registry.New(s, clock)
	reg.Devices.SetPasswordAuth(true)
	tel, err := telemetry.Open(context.Background(), s, 24*time.Hour, clock, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return reg, tel, clock
}

// newManager is rollout.NewManager over the fixture, failing the test on
// error.
func newManager(tb testing.TB, s store.Store, reg *registry.Registry, tel *telemetry.Store, n rollout.Notifier, clock *fakeClock) *rollout.Manager {
	tb.Helper()
	m, err := rollout.NewManager(context.Background(), s, reg, tel, n, clock, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// notifier counts notifications; the Manager notifies devices concurrently.
type notifier struct {
	mu sync.Mutex
	n  map[string]int
	// block, if set, holds every NotifyJobs until closed.
	block chan struct{}
}

func (n *notifier) NotifyJobs(_ context.Context, id string) error {
	if n.block != nil {
		<-n.block
	}
	n.mu.Lock()
	n.n[id]++
	n.mu.Unlock()
	return nil
}

// TestManagerLockNotHeldAcrossIO: while a rollout's dispatch is stuck in
// publishing (NotifyJobs blocked), StageTag (telemetry ingest), Get and List
// still answer; the control shows the dispatch was indeed in progress and
// completes once publishing resumes.
func TestManagerLockNotHeldAcrossIO(t *testing.T) {
	ctx := context.Background()
	s := store.NewMem()
	reg, tel, clock := fixture(t, s)
	n := &notifier{n: map[string]int{}, block: make(chan struct{})}
	m := newManager(t, s, reg, tel, n, clock)
	tok, _, _ := reg.Tokens.Create(ctx, nil, 0, 0)
	for i := 0; i < 20; i++ {
		if _, err := reg.Devices.Enroll(ctx, &wire.EnrollRequest{V: 1, Token: tok, DeviceID: fmt.Sprintf("d%d", i), Models: []wire.ModelStatus{{ID: "m", Active: "1"}}}, registry.Proof{}); err != nil {
			t.Fatal(err)
		}
		reg.Devices.Update(ctx, fmt.Sprintf("d%d", i), func(d *registry.Device) error { d.Presence = wire.Online; return nil })
	}
	if err := reg.Models.Put(ctx, registry.Model{ID: "m", Version: "2", Target: wire.Target{Name: "models/m/2/model.tflite", Length: 1, SHA256: "00"}}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := m.Create(ctx, rollout.Spec{ID: "r1", ModelID: "m", Version: "2", Target: wire.Target{Name: "models/m/2/model.tflite", Length: 1, SHA256: "00"}, Stages: []int{100}})
		done <- err
	}()
	// Wait until the rollout is visible: its first stage is being dispatched.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, ok := m.Get("r1"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("rollout never became visible")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("Create returned (%v) while publishing was blocked: the control failed", err)
	default:
	}
	_ = m.StageTag("d1", wire.TelemetryRecord{ModelID: "m", Version: "2"})
	if got := len(m.List()); got != 1 {
		t.Fatalf("List = %d rollouts during dispatch, want 1", got)
	}
	close(n.block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.n) != 20 {
		t.Fatalf("%d devices notified, want 20", len(n.n))
	}
}

// TestManagerPersistsAndResumes runs a canary through the Manager on a bbolt
// store, "restarts" (closes and reopens store, registry, telemetry and
// manager) in the middle of stage 1, and checks the rollout continues from
// where it was and finishes.
func TestManagerPersistsAndResumes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fleet.db")
	clock := &fakeClock{t: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}
	open := func() (*boltstore.Store, *registry.Registry, *telemetry.Store, *rollout.Manager, *notifier) {
		s, err := boltstore.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		reg := registry.New(s, clock)
		reg.Devices.SetPasswordAuth(true) // device credentials are not what this test is about
		tel, err := telemetry.Open(ctx, s, 24*time.Hour, clock, nil)
		if err != nil {
			t.Fatal(err)
		}
		n := &notifier{n: map[string]int{}}
		m := newManager(t, s, reg, tel, n, clock)
		return s, reg, tel, m, n
	}
	s, reg, tel, m, n := open()
	tok, _, _ := reg.Tokens.Create(ctx, nil, 0, 0)
	for i := 0; i < 4; i++ {
		id := fmt.Sprintf("d%d", i)
		if _, err := reg.Devices.Enroll(ctx, &wire.EnrollRequest{V: 1, Token: tok, DeviceID: id, Models: []wire.ModelStatus{{ID: "m", Active: "1"}}}, registry.Proof{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := reg.Models.Put(ctx, registry.Model{ID: "m", Version: "2", Target: wire.Target{Name: "models/m/2/model.tflite", Length: 1}}); err != nil {
		t.Fatal(err)
	}
	spec := rollout.Spec{ID: "r1", ModelID: "m", Version: "2", Strategy: rollout.Canary, Stages: []int{25, 100}, Soak: 2 * time.Minute,
		Gates: rollout.Gates{MaxErrorRate: 0.1, MinRequests: 10, MaxCrashes: -1, MaxRollbacks: -1, MaxInstallFailures: 0}}
	if _, err := m.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(ctx, rollout.Spec{ID: "r2", ModelID: "m", Version: "2"}); err == nil {
		t.Fatal("second active rollout of the same model accepted")
	}
	jobs, _ := reg.Jobs.List(ctx, "")
	if len(jobs) != 1 || n.n[jobs[0].DeviceID] != 1 {
		t.Fatalf("want 1 job delivered, got %+v (notified %v)", jobs, n.n)
	}
	dev := jobs[0].DeviceID
	// The device runs the job and reports telemetry.
	reg.Jobs.Update(ctx, dev, jobs[0].JobID, wire.JobInProgress, "")
	reg.Jobs.Update(ctx, dev, jobs[0].JobID, wire.JobSucceeded, "")
	reg.Devices.Update(ctx, dev, func(d *registry.Device) error { d.Models[0].Active = "2"; return nil })
	tel.Ingest(ctx, &wire.TelemetryBatch{V: 1, DeviceID: dev, Records: []wire.TelemetryRecord{{Seq: 1, Time: clock.Now(), ModelID: "m", Version: "2", Requests: 20, LatencyP95Ms: 5}}}, nil)
	if err := m.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	r, _ := m.Get("r1")
	if r.SoakStarted.IsZero() || r.Stage != 0 {
		t.Fatalf("stage %d soak %v", r.Stage, r.SoakStarted)
	}

	// Restart.
	s.Close()
	s, reg, tel, m, n = open()
	defer s.Close()
	r, ok := m.Get("r1")
	if !ok || r.Stage != 0 || r.SoakStarted.IsZero() || r.Devices[dev].JobState != wire.JobSucceeded {
		t.Fatalf("after restart: %+v", r)
	}
	if h := tel.Health(telemetry.Query{ModelID: "m", Version: "2"}); h.Requests != 20 {
		t.Fatalf("telemetry after restart: %+v", h)
	}
	clock.Add(3 * time.Minute)
	tel.Ingest(ctx, &wire.TelemetryBatch{V: 1, DeviceID: dev, Records: []wire.TelemetryRecord{{Seq: 2, Time: clock.Now(), ModelID: "m", Version: "2", Requests: 20, LatencyP95Ms: 5}}}, nil)
	if err := m.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	r, _ = m.Get("r1")
	if r.Stage != 1 {
		t.Fatalf("after soak stage = %d (%s) gates %+v", r.Stage, r.Reason, r.Gates)
	}
	jobs, _ = reg.Jobs.List(ctx, "")
	if len(jobs) != 4 {
		t.Fatalf("stage 2 jobs = %d, want 4", len(jobs))
	}
	// Offline devices' jobs time out at the deadline (10 min default) and the
	// stage still finishes.
	for _, j := range jobs {
		if j.DeviceID != dev && j.DeviceID != "d3" {
			reg.Jobs.Update(ctx, j.DeviceID, j.JobID, wire.JobInProgress, "")
			reg.Jobs.Update(ctx, j.DeviceID, j.JobID, wire.JobSucceeded, "")
			// and its status reports the new version (the fleet believes that, not the job update)
			reg.Devices.Update(ctx, j.DeviceID, func(d *registry.Device) error { d.Models[0].Active = "2"; return nil })
		}
	}
	clock.Add(11 * time.Minute)
	tel.Ingest(ctx, &wire.TelemetryBatch{V: 1, DeviceID: dev, Records: []wire.TelemetryRecord{{Seq: 3, Time: clock.Now(), ModelID: "m", Version: "2", Requests: 20, LatencyP95Ms: 5}}}, nil)
	for i := 0; i < 3; i++ {
		if err := m.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		clock.Add(2 * time.Minute)
		tel.Ingest(ctx, &wire.TelemetryBatch{V: 1, DeviceID: dev, Records: []wire.TelemetryRecord{{Seq: uint64(4 + i), Time: clock.Now(), ModelID: "m", Version: "2", Requests: 20, LatencyP95Ms: 5}}}, nil)
	}
	r, _ = m.Get("r1")
	if r.Phase != rollout.Succeeded {
		t.Fatalf("phase %s (%s)", r.Phase, r.Reason)
	}
	if r.Devices["d3"] == nil || r.Devices["d3"].JobState != wire.JobTimedOut {
		t.Fatalf("d3 = %+v, want timed_out", r.Devices["d3"])
	}
}
