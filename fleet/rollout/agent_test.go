package rollout

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/telemetry"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// agentFleet is a deterministic fake fleet for agent rollouts: each device
// runs an agent version (Device.Active) and serves model m; an agent job
// ends in the state its outcome says, and a device that succeeds restarts
// (offline for one tick) and then reports the new version.
type agentFleet struct {
	t       *testing.T
	now     time.Time
	devices []Device
	jobs    map[string]JobStatus
	sent    map[string]wire.Job
	owner   map[string]string
	recs    []telemetry.Record
	seq     uint64
	// outcome decides a job's final state (nil: succeeded).
	outcome func(dev string, j wire.Job) wire.JobState
	// restarting devices come back online with a version after two ticks.
	restarting map[string]*restart
	// silent devices report success but never come back.
	silent map[string]bool
	// drift, if set, is the view's drift report.
	drift func(telemetry.DriftQuery) telemetry.DriftReport
	r     *Rollout
}

func newAgentFleet(t *testing.T, n int, spec Spec) *agentFleet {
	f := &agentFleet{t: t, now: t0, jobs: map[string]JobStatus{}, sent: map[string]wire.Job{}, owner: map[string]string{},
		restarting: map[string]*restart{}, silent: map[string]bool{}}
	for i := 0; i < n; i++ {
		f.devices = append(f.devices, Device{ID: fmt.Sprintf("dev-%02d", i), Online: true, Active: "1"})
	}
	spec.ID, spec.Kind, spec.Version = "a1", KindAgent, "2"
	r, err := New(spec, f.now)
	if err != nil {
		t.Fatal(err)
	}
	f.r = r
	return f
}

func (f *agentFleet) dev(id string) *Device {
	for i := range f.devices {
		if f.devices[i].ID == id {
			return &f.devices[i]
		}
	}
	f.t.Fatalf("no device %s", id)
	return nil
}

func (f *agentFleet) view() View {
	return View{Devices: f.devices, Jobs: f.jobs, Drift: f.drift, Health: func(q telemetry.Query) telemetry.Health {
		var sel []telemetry.Record
		for _, r := range f.recs {
			if matches(q, r) {
				sel = append(sel, r)
			}
		}
		return telemetry.Aggregate(sel)
	}}
}

// tick brings restarted devices back, runs the controller, lets devices run
// the new jobs, and makes every online device report one telemetry record
// of model m (rec, or base for devices still on agent 1).
func (f *agentFleet) tick(rec, base wire.TelemetryRecord) []Action {
	for id, rs := range f.restarting {
		if rs.ticks--; rs.ticks > 0 {
			continue
		}
		d := f.dev(id)
		d.Online, d.Active = true, rs.version
		delete(f.restarting, id)
	}
	acts := f.r.Tick(f.now, f.view())
	for _, a := range acts {
		if a.Job.Kind != wire.JobAgent || a.Job.ModelID != "" || a.Job.Target != nil {
			f.t.Fatalf("agent rollout sent %+v, want an agent job without model or target", a.Job)
		}
		if err := a.Job.Validate(); err != nil {
			f.t.Fatalf("agent rollout sent an invalid job: %v", err)
		}
		f.sent[a.Job.JobID], f.owner[a.Job.JobID] = a.Job, a.DeviceID
		st := wire.JobSucceeded
		if f.outcome != nil {
			if s := f.outcome(a.DeviceID, a.Job); s != "" {
				st = s
			}
		}
		f.jobs[a.Job.JobID] = JobStatus{State: st, Reason: "device says " + string(st)}
		d := f.dev(a.DeviceID)
		if st == wire.JobSucceeded && d.Active != a.Job.Version {
			d.Online = false // re-exec
			if !f.silent[a.DeviceID] {
				f.restarting[a.DeviceID] = &restart{version: a.Job.Version, ticks: 2}
			}
		}
	}
	for _, d := range f.devices {
		if !d.Online {
			continue
		}
		h := base
		if d.Active == "2" {
			h = rec
		}
		f.seq++
		h.Seq, h.Time, h.ModelID, h.Version, h.Role = f.seq, f.now, "m", "7", wire.RolePrimary
		f.recs = append(f.recs, telemetry.Record{TelemetryRecord: h, DeviceID: d.ID})
	}
	f.now = f.now.Add(time.Minute)
	return acts
}

type restart struct {
	version string
	ticks   int
}

// baseline adds a record of every device, one minute before the rollout.
func (f *agentFleet) baseline(h wire.TelemetryRecord) {
	for _, d := range f.devices {
		f.seq++
		h.Seq, h.Time, h.ModelID, h.Version, h.Role = f.seq, t0.Add(-time.Minute), "m", "7", wire.RolePrimary
		f.recs = append(f.recs, telemetry.Record{TelemetryRecord: h, DeviceID: d.ID})
	}
}

func (f *agentFleet) run(rec, base wire.TelemetryRecord, limit int) {
	for i := 0; i < limit && !f.r.Phase.Final(); i++ {
		f.tick(rec, base)
	}
}

func TestAgentRolloutSpec(t *testing.T) {
	for _, c := range []struct {
		name string
		spec Spec
		want string
	}{
		{"agent canary", Spec{ID: "a", Kind: KindAgent, Version: "2"}, ""},
		{"agent blue-green", Spec{ID: "a", Kind: KindAgent, Version: "2", Strategy: BlueGreen}, ""},
		{"agent with a model", Spec{ID: "a", Kind: KindAgent, ModelID: "m", Version: "2"}, "names no model"},
		{"agent shadow", Spec{ID: "a", Kind: KindAgent, Version: "2", Strategy: Shadow}, "canary or blue-green"},
		{"agent ab", Spec{ID: "a", Kind: KindAgent, Version: "2", Strategy: AB}, "canary or blue-green"},
		{"unknown kind", Spec{ID: "a", Kind: "firmware", Version: "2"}, "want model or agent"},
		{"model without id", Spec{ID: "a", Version: "2"}, "model id"},
		{"control: model", Spec{ID: "a", ModelID: "m", Version: "2"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := c.spec
			s.Gates = DefaultAgentGates()
			err := s.Normalize()
			if c.want == "" {
				if err != nil {
					t.Fatalf("Normalize: %v", err)
				}
				if s.Kind == "" {
					t.Fatal("kind not defaulted")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Normalize: %v, want an error containing %q", err, c.want)
			}
		})
	}
	if DefaultAgentGates().MinRequests != 0 || DefaultGates().MinRequests == 0 {
		t.Fatal("agent gates need no traffic; model gates do")
	}
}

// TestAgentRolloutSucceedsOnlyWhenDevicesReportTheVersion: a device whose
// job succeeded counts only once it is back online reporting the version;
// the rollout then goes through every stage.
func TestAgentRolloutSucceedsOnlyWhenDevicesReportTheVersion(t *testing.T) {
	f := newAgentFleet(t, 4, Spec{Stages: []int{50, 100}, Soak: 2 * time.Minute, Gates: DefaultAgentGates()})
	ok := wire.TelemetryRecord{Requests: 100, LatencyP95Ms: 10}
	acts := f.tick(ok, ok)
	if len(acts) != 2 {
		t.Fatalf("stage 1 sent %d jobs, want 2 (50%% of 4)", len(acts))
	}
	// The devices reported success and are restarting: still in progress.
	for id, d := range f.r.Devices {
		if d.JobState != wire.JobQueued {
			t.Fatalf("%s: %s before the controller saw it", id, d.JobState)
		}
	}
	f.tick(ok, ok)
	for id, d := range f.r.Devices {
		if d.JobState != wire.JobInProgress || !strings.Contains(d.Reason, "come back online") {
			t.Fatalf("%s offline after a reported success: %s %q, want in_progress waiting for it to come back", id, d.JobState, d.Reason)
		}
	}
	f.run(ok, ok, 30)
	if f.r.Phase != Succeeded {
		t.Fatalf("phase %s (%s), want succeeded; events %+v", f.r.Phase, f.r.Reason, f.r.Events)
	}
	for _, d := range f.devices {
		if d.Active != "2" {
			t.Errorf("%s runs %s", d.ID, d.Active)
		}
	}
}

// TestAgentRolloutDeviceNeverBack: a device that says it succeeded but never
// comes back online running the version fails its job at the deadline, and
// the install-failure gate rolls the rollout back: devices that did update
// get an agent job back to their previous version.
func TestAgentRolloutDeviceNeverBack(t *testing.T) {
	f := newAgentFleet(t, 2, Spec{Stages: []int{100}, DeviceDeadline: 5 * time.Minute, Gates: DefaultAgentGates()})
	f.silent["dev-00"] = true
	ok := wire.TelemetryRecord{Requests: 100, LatencyP95Ms: 10}
	var rollbacks []Action
	for i := 0; i < 20 && !f.r.Phase.Final(); i++ {
		for _, a := range f.tick(ok, ok) {
			if a.Job.Version == "1" {
				rollbacks = append(rollbacks, a)
			}
		}
	}
	if f.r.Phase != RolledBack {
		t.Fatalf("phase %s (%s), want rolled_back", f.r.Phase, f.r.Reason)
	}
	d := f.r.Devices["dev-00"]
	if d.JobState != wire.JobFailed || !strings.Contains(d.Reason, "did not come back online") {
		t.Fatalf("dev-00: %s %q", d.JobState, d.Reason)
	}
	var to []string
	for _, a := range rollbacks {
		to = append(to, a.DeviceID)
	}
	if strings.Join(to, ",") != "dev-00,dev-01" {
		t.Fatalf("rollback jobs to agent 1 went to %v, want both devices (dev-00 may run 2 when it returns)", to)
	}
	if f.dev("dev-01").Active != "1" {
		t.Fatalf("dev-01 runs %s after the rollback, want 1", f.dev("dev-01").Active)
	}
}

// TestAgentRolloutDeviceRolledBackItself: a binary that fails its health
// check is rolled back on the device (job rolled_back): the rollout rolls
// back at once and sends that device nothing more.
func TestAgentRolloutDeviceRolledBackItself(t *testing.T) {
	f := newAgentFleet(t, 1, Spec{Stages: []int{100}, Gates: DefaultAgentGates()})
	f.outcome = func(dev string, j wire.Job) wire.JobState {
		if j.Version == "2" {
			return wire.JobRolledBack
		}
		return ""
	}
	ok := wire.TelemetryRecord{Requests: 100, LatencyP95Ms: 10}
	n := 0
	for i := 0; i < 5 && !f.r.Phase.Final(); i++ {
		n += len(f.tick(ok, ok))
	}
	if f.r.Phase != RolledBack || !strings.Contains(f.r.Reason, "install failures 1 > 0") {
		t.Fatalf("phase %s (%s), want rolled_back on install failures", f.r.Phase, f.r.Reason)
	}
	if n != 1 {
		t.Fatalf("%d jobs sent, want only the update (the device restored its binary itself)", n)
	}
	if d := f.r.Devices["dev-00"]; d.RollbackJobID != "" || d.Reason == "" {
		t.Fatalf("dev-00: %+v", d)
	}
}

// TestAgentRolloutGatesJudgeModels: the new agent makes the device's model
// slower: the p95 gate (against the same device before the stage) fails.
func TestAgentRolloutGatesJudgeModels(t *testing.T) {
	base := wire.TelemetryRecord{Requests: 100, LatencyP95Ms: 10}
	f := newAgentFleet(t, 1, Spec{Stages: []int{100}, Soak: 3 * time.Minute, Gates: DefaultAgentGates()})
	f.baseline(base)
	f.run(wire.TelemetryRecord{Requests: 100, LatencyP95Ms: 40}, base, 20)
	if f.r.Phase != RolledBack || !strings.Contains(f.r.Reason, "p95") {
		t.Fatalf("phase %s (%s), want rolled back on p95; gates %+v", f.r.Phase, f.r.Reason, f.r.Gates)
	}
	if !strings.Contains(f.r.BaselineSource, "same 1 device(s) before the stage") {
		t.Fatalf("baseline from %q, want the same device before the stage", f.r.BaselineSource)
	}
	// Control: the same rollout with healthy latency succeeds.
	g := newAgentFleet(t, 1, Spec{Stages: []int{100}, Soak: 3 * time.Minute, Gates: DefaultAgentGates()})
	g.baseline(base)
	g.run(base, base, 20)
	if g.r.Phase != Succeeded {
		t.Fatalf("control: phase %s (%s)", g.r.Phase, g.r.Reason)
	}
}

// TestAgentRolloutIgnoresDrift: drift compares model versions; an agent
// rollout with --max-drift set is not judged (nor failed) by it.
func TestAgentRolloutIgnoresDrift(t *testing.T) {
	g := DefaultAgentGates()
	g.MaxDrift = 0.1
	f := newAgentFleet(t, 1, Spec{Stages: []int{100}, Gates: g})
	asked := 0
	f.drift = func(telemetry.DriftQuery) telemetry.DriftReport {
		asked++
		var d telemetry.DriftReport
		d.Drift, d.Evaluated = 9, true
		return d
	}
	ok := wire.TelemetryRecord{Requests: 100, LatencyP95Ms: 10}
	f.run(ok, ok, 20)
	if f.r.Phase != Succeeded || asked != 0 {
		t.Fatalf("phase %s (%s), drift asked %d times", f.r.Phase, f.r.Reason, asked)
	}
}
