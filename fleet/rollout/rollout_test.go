package rollout

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/telemetry"
	"github.com/edgefleet/edgefleet/internal/wire"
)

var t0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

// sim is a deterministic fake fleet: devices obey jobs at once (unless
// offline or told to fail) and report telemetry when asked.
type sim struct {
	t       *testing.T
	now     time.Time
	devices []Device
	jobs    map[string]JobStatus
	kinds   map[string]wire.Job
	owner   map[string]string
	recs    []telemetry.Record
	seq     uint64
	offline map[string]bool
	stale   map[string]bool                            // devices whose jobs "succeed" without changing what they serve
	failJob func(dev string, j wire.Job) wire.JobState // nil: succeed
	r       *Rollout
}

func newSim(t *testing.T, n int, active string, spec Spec) *sim {
	s := &sim{t: t, now: t0, jobs: map[string]JobStatus{}, kinds: map[string]wire.Job{}, owner: map[string]string{}, offline: map[string]bool{}, stale: map[string]bool{}}
	for i := 0; i < n; i++ {
		s.devices = append(s.devices, Device{ID: fmt.Sprintf("dev-%02d", i), Online: true, Active: active})
	}
	if spec.ID == "" {
		spec.ID = "r1"
	}
	spec.ModelID, spec.Version = "m", "2"
	spec.Target = wire.Target{Name: "models/m/2/model.tflite", Length: 1}
	r, err := New(spec, s.now)
	if err != nil {
		t.Fatal(err)
	}
	s.r = r
	return s
}

func (s *sim) view() View {
	return View{Devices: s.devices, Jobs: s.jobs, Health: func(q telemetry.Query) telemetry.Health {
		var sel []telemetry.Record
		for _, r := range s.recs {
			if matches(q, r) {
				sel = append(sel, r)
			}
		}
		return telemetry.Aggregate(sel)
	}}
}

// matches mirrors telemetry.Query semantics for the fake.
func matches(q telemetry.Query, r telemetry.Record) bool {
	if q.ModelID != "" && r.ModelID != q.ModelID {
		return false
	}
	if q.Version != "" && (r.Version == q.Version) == q.ExcludeVersion {
		return false
	}
	if len(q.Roles) > 0 {
		ok := false
		for _, x := range q.Roles {
			ok = ok || x == r.Role
		}
		if !ok {
			return false
		}
	}
	if q.Devices != nil && !q.Devices[r.DeviceID] {
		return false
	}
	return !r.Time.Before(q.Since) && (q.Until.IsZero() || r.Time.Before(q.Until))
}

func (s *sim) device(id string) *Device {
	for i := range s.devices {
		if s.devices[i].ID == id {
			return &s.devices[i]
		}
	}
	s.t.Fatalf("no device %s", id)
	return nil
}

// tick runs the controller and lets devices execute the returned jobs.
func (s *sim) tick() []Action {
	acts := s.r.Tick(s.now, s.view())
	s.run(acts)
	return acts
}

func (s *sim) run(acts []Action) {
	for _, a := range acts {
		s.jobs[a.Job.JobID] = JobStatus{State: wire.JobQueued}
		s.kinds[a.Job.JobID] = a.Job
		s.owner[a.Job.JobID] = a.DeviceID
	}
	for id, st := range s.jobs {
		if st.State != wire.JobQueued {
			continue
		}
		dev, j := s.owner[id], s.kinds[id]
		if s.offline[dev] {
			if !s.now.Before(j.Deadline) {
				s.jobs[id] = JobStatus{State: wire.JobTimedOut}
			}
			continue
		}
		state := wire.JobSucceeded
		if s.failJob != nil {
			if st := s.failJob(dev, j); st != "" {
				state = st
			}
		}
		s.jobs[id] = JobStatus{State: state}
		if s.stale[dev] {
			continue // reports success, keeps serving what it served (issue 12 item 1)
		}
		if state == wire.JobSucceeded && (j.Kind == wire.JobInstall || j.Kind == wire.JobRollback) {
			s.device(dev).Active = j.Version
		}
	}
}

// report makes every online device send one record per version it runs.
func (s *sim) report(newHealth, baseHealth wire.TelemetryRecord) {
	for _, d := range s.devices {
		if s.offline[d.ID] {
			continue
		}
		ds := s.r.Devices[d.ID]
		add := func(version string, role wire.Role, h wire.TelemetryRecord) {
			s.seq++
			h.Seq, h.Time, h.ModelID, h.Version, h.Role = s.seq, s.now, "m", version, role
			s.recs = append(s.recs, telemetry.Record{TelemetryRecord: h, DeviceID: d.ID})
		}
		if d.Active == "2" {
			add("2", wire.RolePrimary, newHealth)
			continue
		}
		add(d.Active, wire.RolePrimary, baseHealth)
		if ds != nil && ds.JobState == wire.JobSucceeded && ds.RollbackJobID == "" {
			switch s.r.Spec.Strategy {
			case Shadow:
				add("2", wire.RoleShadow, newHealth)
			case AB:
				add("2", wire.RoleCandidate, newHealth)
			}
		}
	}
}

func (s *sim) advance(d time.Duration) { s.now = s.now.Add(d) }

func good() wire.TelemetryRecord {
	return wire.TelemetryRecord{Requests: 100, Errors: 0, LatencyP50Ms: 4, LatencyP95Ms: 10, LatencyP99Ms: 12, ShadowCompared: 100, ShadowAgreed: 99}
}

func assigned(r *Rollout) []string {
	var out []string
	for id, d := range r.Devices {
		if d.JobID != "" || d.Reason == "already active" {
			out = append(out, id)
		}
	}
	return out
}

// runUntil ticks every minute, reporting newH/baseH, until the phase is
// final or limit passes.
func (s *sim) runUntil(newH, baseH wire.TelemetryRecord, limit time.Duration) {
	end := s.now.Add(limit)
	for !s.r.Phase.Final() && s.now.Before(end) {
		s.tick()
		s.report(newH, baseH)
		s.advance(time.Minute)
	}
}

func TestCanaryStagesStickyAndSoak(t *testing.T) {
	spec := Spec{Strategy: Canary, Stages: []int{10, 50, 100}, Soak: 5 * time.Minute, Gates: DefaultGates()}
	s := newSim(t, 20, "1", spec)
	s.tick()
	if n := len(assigned(s.r)); n != 2 {
		t.Fatalf("stage 1 assigned %d devices, want 2 (10%% of 20)", n)
	}
	first := map[string]bool{}
	for _, id := range assigned(s.r) {
		first[id] = true
	}
	// Same rollout id picks the same devices (sticky); another id differs.
	s2 := newSim(t, 20, "1", spec)
	s2.tick()
	for _, id := range assigned(s2.r) {
		if !first[id] {
			t.Fatalf("choice not deterministic: %s", id)
		}
	}
	spec3 := spec
	spec3.ID = "other"
	s3 := newSim(t, 20, "1", spec3)
	s3.tick()
	same := 0
	for _, id := range assigned(s3.r) {
		if first[id] {
			same++
		}
	}
	if same == 2 {
		t.Log("note: different rollout id chose the same 2 devices (possible, 1/190)")
	}

	// Soak: the stage does not advance before 5 minutes of healthy gates.
	for i := 0; i < 4; i++ {
		s.report(good(), good())
		s.advance(time.Minute)
		s.tick()
		if s.r.Stage != 0 {
			t.Fatalf("advanced after %d min, before the 5 min soak", i+1)
		}
	}
	s.report(good(), good())
	s.advance(2 * time.Minute)
	s.tick()
	if s.r.Stage != 1 {
		t.Fatalf("stage = %d after soak, want 1; reason %q gates %+v", s.r.Stage, s.r.Reason, s.r.Gates)
	}
	if n := len(assigned(s.r)); n != 10 {
		t.Fatalf("stage 2 assigned %d, want 10", n)
	}
	for id := range first {
		if s.r.Devices[id].Stage != 0 {
			t.Fatalf("stage-1 device %s re-assigned", id)
		}
	}
	s.runUntil(good(), good(), time.Hour)
	if s.r.Phase != Succeeded {
		t.Fatalf("phase = %s (%s), want succeeded", s.r.Phase, s.r.Reason)
	}
	for _, d := range s.devices {
		if d.Active != "2" {
			t.Fatalf("%s active %s after success", d.ID, d.Active)
		}
	}
}

func TestStageTarget(t *testing.T) {
	for _, tt := range []struct{ pct, n, want int }{{1, 5, 1}, {1, 200, 2}, {10, 20, 2}, {50, 5, 3}, {100, 7, 7}, {10, 0, 0}} {
		if got := StageTarget(tt.pct, tt.n); got != tt.want {
			t.Errorf("StageTarget(%d, %d) = %d, want %d", tt.pct, tt.n, got, tt.want)
		}
	}
}

// TestGateFailures proves each gate stops a canary and, with the default
// failure action, rolls every touched device back to its baseline; with
// on-failure=pause it pauses instead and changes nothing.
func TestGateFailures(t *testing.T) {
	bad := func(mod func(*wire.TelemetryRecord)) wire.TelemetryRecord { h := good(); mod(&h); return h }
	tests := []struct {
		name     string
		strategy Strategy
		newH     wire.TelemetryRecord
		failJob  func(string, wire.Job) wire.JobState
		wantWhy  string
	}{
		{"error rate", Canary, bad(func(h *wire.TelemetryRecord) { h.Errors = 10 }), nil, "error rate 0.100 > 0.050"},
		{"error rate delta", Canary, bad(func(h *wire.TelemetryRecord) { h.Errors = 4 }), nil, "exceeds baseline"},
		{"p95 ratio", Canary, bad(func(h *wire.TelemetryRecord) { h.LatencyP95Ms = 40 }), nil, "p95 latency 40.00ms is 4.00×"},
		{"crashes", Canary, bad(func(h *wire.TelemetryRecord) { h.Crashes = 1 }), nil, "1 crash(es) > 0"},
		{"device rollbacks", Canary, bad(func(h *wire.TelemetryRecord) { h.Rollbacks = 1 }), nil, "1 device rollback(s) > 0"},
		{"install failures", Canary, good(), func(string, wire.Job) wire.JobState { return wire.JobRolledBack }, "install failures 1 > 0"},
		{"install rejected", BlueGreen, good(), func(string, wire.Job) wire.JobState { return wire.JobRejected }, "install failures"},
		{"shadow agreement", Shadow, bad(func(h *wire.TelemetryRecord) { h.ShadowAgreed = 50 }), nil, "shadow agreement 0.500 < 0.950"},
		{"ab latency", AB, bad(func(h *wire.TelemetryRecord) { h.LatencyP95Ms = 30 }), nil, "p95 latency"},
		{"blue-green errors", BlueGreen, bad(func(h *wire.TelemetryRecord) { h.Errors = 50 }), nil, "error rate"},
	}
	for _, tt := range tests {
		for _, action := range []FailureAction{RollbackOnFailure, PauseOnFailure} {
			t.Run(tt.name+"/"+string(action), func(t *testing.T) {
				spec := Spec{Strategy: tt.strategy, Stages: []int{10, 100}, Soak: 10 * time.Minute, OnFailure: action, Gates: DefaultGates()}
				if tt.strategy != Canary {
					spec.Stages = nil
				}
				s := newSim(t, 10, "1", spec)
				s.failJob = func(dev string, j wire.Job) wire.JobState {
					if tt.failJob != nil && j.Kind != wire.JobRollback {
						return tt.failJob(dev, j)
					}
					return ""
				}
				s.runUntil(tt.newH, good(), 30*time.Minute)
				if action == PauseOnFailure {
					s.tick()
					if s.r.Phase != Paused || !strings.Contains(s.r.Reason, tt.wantWhy) {
						t.Fatalf("phase %s reason %q, want paused with %q", s.r.Phase, s.r.Reason, tt.wantWhy)
					}
					for _, d := range s.r.Devices {
						if d.RollbackJobID != "" {
							t.Fatal("pause created rollback jobs")
						}
					}
					return
				}
				if s.r.Phase != RolledBack || !strings.Contains(s.r.Reason, tt.wantWhy) {
					t.Fatalf("phase %s reason %q, want rolled_back with %q", s.r.Phase, s.r.Reason, tt.wantWhy)
				}
				for _, d := range s.devices {
					if d.Active != "1" {
						t.Fatalf("%s active %s after rollback, want 1", d.ID, d.Active)
					}
				}
				if tt.strategy == Canary && len(assigned(s.r)) != 1 {
					t.Fatalf("failure in stage 1 still assigned %d devices", len(assigned(s.r)))
				}
			})
		}
	}
}

func TestOfflineDeviceDoesNotBlock(t *testing.T) {
	spec := Spec{Strategy: BlueGreen, Soak: 2 * time.Minute, DeviceDeadline: 10 * time.Minute, Gates: DefaultGates()}
	s := newSim(t, 5, "1", spec)
	s.offline["dev-03"] = true
	s.tick()
	s.report(good(), good())
	s.advance(5 * time.Minute)
	s.tick()
	if s.r.SoakStarted != (time.Time{}) {
		t.Fatal("soak started while a device's job was still pending before its deadline")
	}
	s.runUntil(good(), good(), time.Hour)
	if s.r.Phase != Succeeded {
		t.Fatalf("phase %s (%s)", s.r.Phase, s.r.Reason)
	}
	if st := s.r.Devices["dev-03"].JobState; st != wire.JobTimedOut {
		t.Fatalf("offline device job = %s, want timed_out", st)
	}
}

func TestAllOfflinePauses(t *testing.T) {
	s := newSim(t, 2, "1", Spec{Strategy: BlueGreen, DeviceDeadline: time.Minute, Gates: DefaultGates()})
	s.offline["dev-00"], s.offline["dev-01"] = true, true
	s.runUntil(good(), good(), 10*time.Minute)
	if s.r.Phase != Paused || !strings.Contains(s.r.Reason, "no device reached") {
		t.Fatalf("phase %s reason %q", s.r.Phase, s.r.Reason)
	}
}

func TestInsufficientTelemetryPauses(t *testing.T) {
	s := newSim(t, 3, "1", Spec{Strategy: BlueGreen, Soak: 5 * time.Minute, DeviceDeadline: 5 * time.Minute, Gates: DefaultGates()})
	h := good()
	h.Requests = 1
	s.runUntil(h, good(), 30*time.Minute)
	s.tick()
	if s.r.Phase != Paused || !strings.Contains(s.r.Reason, "not enough telemetry") {
		t.Fatalf("phase %s reason %q", s.r.Phase, s.r.Reason)
	}
}

func TestShadowPromotes(t *testing.T) {
	s := newSim(t, 4, "1", Spec{Strategy: Shadow, Soak: 3 * time.Minute, Gates: DefaultGates()})
	acts := s.tick()
	if len(acts) != 4 || acts[0].Job.Kind != wire.JobShadow {
		t.Fatalf("want 4 shadow jobs, got %+v", acts)
	}
	s.runUntil(good(), good(), time.Hour)
	if s.r.Phase != Succeeded {
		t.Fatalf("phase %s (%s)", s.r.Phase, s.r.Reason)
	}
	for _, d := range s.devices {
		if d.Active != "2" {
			t.Fatalf("%s not promoted", d.ID)
		}
	}
}

func TestABSplit(t *testing.T) {
	s := newSim(t, 4, "1", Spec{Strategy: AB, SplitPercent: 20, Soak: 3 * time.Minute, Gates: DefaultGates()})
	acts := s.tick()
	if len(acts) != 4 || acts[0].Job.Kind != wire.JobAB || acts[0].Job.SplitPercent != 20 {
		t.Fatalf("want 4 ab jobs with 20%%, got %+v", acts)
	}
	s.runUntil(good(), good(), time.Hour)
	if s.r.Phase != Succeeded {
		t.Fatalf("phase %s (%s)", s.r.Phase, s.r.Reason)
	}
}

func TestManualCommands(t *testing.T) {
	s := newSim(t, 10, "1", Spec{Strategy: Canary, Stages: []int{10, 100}, Soak: time.Minute, ManualPromote: true, Gates: DefaultGates()})
	s.runUntil(good(), good(), 5*time.Minute)
	if s.r.Phase != AwaitPromote || s.r.Stage != 0 {
		t.Fatalf("phase %s stage %d, want awaiting_promotion at stage 0", s.r.Phase, s.r.Stage)
	}
	if _, err := s.r.Apply(s.now, Resume, s.view()); err == nil {
		t.Fatal("resume while not paused accepted")
	}
	acts, err := s.r.Apply(s.now, Promote, s.view())
	if err != nil || s.r.Stage != 1 || len(acts) != 9 {
		t.Fatalf("promote: err %v stage %d acts %d", err, s.r.Stage, len(acts))
	}
	s.run(acts)
	if _, err := s.r.Apply(s.now, Pause, s.view()); err != nil || s.r.Phase != Paused {
		t.Fatalf("pause: %v %s", err, s.r.Phase)
	}
	s.tick()
	if s.r.Phase != Paused {
		t.Fatal("tick left paused")
	}
	if _, err := s.r.Apply(s.now, Resume, s.view()); err != nil || s.r.Phase != Running {
		t.Fatalf("resume: %v %s", err, s.r.Phase)
	}
	acts, err = s.r.Apply(s.now, Abort, s.view())
	if err != nil || s.r.Phase != RollingBack || len(acts) != 10 {
		t.Fatalf("abort: %v %s %d", err, s.r.Phase, len(acts))
	}
	s.run(acts)
	s.tick()
	if s.r.Phase != RolledBack || !strings.Contains(s.r.Reason, "aborted") {
		t.Fatalf("phase %s %q", s.r.Phase, s.r.Reason)
	}
	if _, err := s.r.Apply(s.now, Promote, s.view()); err == nil {
		t.Fatal("command on a finished rollout accepted")
	}
}

func TestSpecValidation(t *testing.T) {
	for _, tt := range []struct {
		spec Spec
		want string
	}{
		{Spec{ID: "r", ModelID: "m", Version: "1", Stages: []int{10, 5, 100}}, "increasing"},
		{Spec{ID: "r", ModelID: "m", Version: "1", Stages: []int{10, 50}}, "must be 100"},
		{Spec{ID: "r", ModelID: "m", Version: "1", Strategy: "yolo"}, "strategy"},
		{Spec{ID: "r", ModelID: "m", Version: "1", Strategy: AB, SplitPercent: 100}, "split"},
		{Spec{ID: "r", ModelID: "m", Version: "1", OnFailure: "explode"}, "on-failure"},
		{Spec{ID: "r/x", ModelID: "m", Version: "1"}, "rollout id"},
	} {
		if err := tt.spec.Normalize(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: error %v, want %q", tt.spec, err, tt.want)
		}
	}
}

// addRec appends one telemetry record of device dev.
func (s *sim) addRec(dev, version string, at time.Time, p95 float64) {
	s.seq++
	h := good()
	h.Seq, h.Time, h.ModelID, h.Version, h.Role, h.LatencyP95Ms = s.seq, at, "m", version, wire.RolePrimary, p95
	s.recs = append(s.recs, telemetry.Record{TelemetryRecord: h, DeviceID: dev})
}

// TestP95GateComparesLikeWithLike: an identical model on a busy canary
// device (p95 8.4 ms before and after) next to idle devices (2 ms) must
// pass: the baseline is the same device before the stage, not the fleet
// (3.2× with the fleet-wide baseline). A real regression on the same
// device (8.4 → 16.8 ms) is the control and fails.
func TestP95GateComparesLikeWithLike(t *testing.T) {
	for _, tc := range []struct {
		name     string
		newP95   float64
		wantPass bool
	}{{"identical model", 8.4, true}, {"2x slower", 16.8, false}} {
		t.Run(tc.name, func(t *testing.T) {
			spec := Spec{Strategy: Canary, Stages: []int{10, 100}, Soak: 5 * time.Minute, Gates: DefaultGates()}
			s := newSim(t, 10, "1", spec)
			busy := s.devices[0].ID
			for _, d := range s.devices {
				if s.r.rank(d.ID) < s.r.rank(busy) {
					busy = d.ID
				}
			}
			p95 := func(dev string) float64 {
				if dev == busy {
					return 8.4
				}
				return 2
			}
			for m := 10; m > 0; m-- { // history before the rollout
				for _, d := range s.devices {
					s.addRec(d.ID, "1", t0.Add(-time.Duration(m)*time.Minute), p95(d.ID))
				}
			}
			for i := 0; i < 12 && s.r.Stage == 0 && !s.r.Phase.Final(); i++ {
				s.tick()
				for _, d := range s.devices {
					if d.Active == "2" {
						s.addRec(d.ID, "2", s.now, tc.newP95)
					} else {
						s.addRec(d.ID, "1", s.now, p95(d.ID))
					}
				}
				s.advance(time.Minute)
			}
			passed := s.r.Stage == 1
			if passed != tc.wantPass {
				t.Fatalf("stage passed = %v, want %v; phase %s reason %q baseline %.2fms (%s) new %.2fms",
					passed, tc.wantPass, s.r.Phase, s.r.Reason, s.r.Baseline.P95, s.r.BaselineSource, s.r.New.P95)
			}
			if !strings.Contains(s.r.BaselineSource, "same 1 device(s) before") {
				t.Fatalf("baseline source %q, want the same device before the stage", s.r.BaselineSource)
			}
		})
	}
}

// TestP95NoiseFloor: a sub-millisecond model whose p95 goes 0.10 → 0.42 ms
// (4.2×, +0.32 ms) passes with the default 1 ms floor; +1.5 ms at 2× fails;
// with the floor set to 0 the 4.2× fails (control).
func TestP95NoiseFloor(t *testing.T) {
	for _, tc := range []struct {
		name          string
		base, new     float64
		floor         float64
		wantPass      bool
		wantInMessage string
	}{
		{"sub-ms jitter under the floor", 0.10, 0.42, 1, true, ""},
		{"exactly at the floor", 1.0, 2.0, 1, true, ""},
		{"over the floor and the ratio", 1.5, 3.0, 1, false, "noise floor 1.00ms"},
		{"floor disabled", 0.10, 0.42, 0, false, "4.20×"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := DefaultGates()
			g.MinP95DeltaMs = tc.floor
			spec := Spec{Strategy: BlueGreen, Soak: 3 * time.Minute, Gates: g}
			s := newSim(t, 4, "1", spec)
			for m := 10; m > 0; m-- {
				for _, d := range s.devices {
					s.addRec(d.ID, "1", t0.Add(-time.Duration(m)*time.Minute), tc.base)
				}
			}
			for i := 0; i < 10 && !s.r.Phase.Final() && s.r.Phase != Paused; i++ {
				s.tick()
				for _, d := range s.devices {
					s.addRec(d.ID, d.Active, s.now, map[bool]float64{true: tc.new, false: tc.base}[d.Active == "2"])
				}
				s.advance(time.Minute)
			}
			if pass := s.r.Phase == Succeeded; pass != tc.wantPass {
				t.Fatalf("succeeded = %v, want %v: phase %s reason %q", pass, tc.wantPass, s.r.Phase, s.r.Reason)
			}
			if !strings.Contains(s.r.Reason, tc.wantInMessage) {
				t.Fatalf("reason %q does not mention %q", s.r.Reason, tc.wantInMessage)
			}
		})
	}
}

// TestBaselineOutsideDevicesSameWindow: without history on the canary
// devices, the baseline is the devices outside the rollout over the same
// window.
func TestBaselineOutsideDevicesSameWindow(t *testing.T) {
	spec := Spec{Strategy: Canary, Stages: []int{10, 100}, Soak: 5 * time.Minute, Gates: DefaultGates()}
	s := newSim(t, 10, "1", spec)
	s.tick()
	s.report(good(), good())
	s.advance(time.Minute)
	s.tick()
	if !strings.Contains(s.r.BaselineSource, "9 device(s) outside the rollout, same window") {
		t.Fatalf("baseline source %q", s.r.BaselineSource)
	}
}

// TestGatesJSONDefaults: gates given as JSON keep the defaults of the
// fields they omit; bad values are refused by Normalize.
func TestGatesJSONDefaults(t *testing.T) {
	var g Gates
	if err := json.Unmarshal([]byte(`{"max_p95_ratio": 2, "max_crashes": -1}`), &g); err != nil {
		t.Fatal(err)
	}
	want := DefaultGates()
	want.MaxP95Ratio, want.MaxCrashes = 2, -1
	if g != want {
		t.Fatalf("gates %+v, want %+v", g, want)
	}
	if want.MinP95DeltaMs != 1 {
		t.Fatalf("default p95 noise floor %v, want 1 ms", want.MinP95DeltaMs)
	}
	for _, bad := range []Gates{{MaxP95Ratio: -1}, {MinP95DeltaMs: math.NaN()}, {MaxErrorRate: 2}, {MaxCrashes: -2}} {
		spec := Spec{ID: "r", ModelID: "m", Version: "2", Gates: bad}
		if err := spec.Normalize(); err == nil {
			t.Errorf("gates %+v accepted", bad)
		}
	}
}

// TestFleetBelievesOnlyWhatDevicesServe: a device whose install job
// reports success while its status keeps reporting the old version (the
// agent skipped the install) must not make the rollout succeed: the job
// stays unconfirmed until its deadline, then counts as an install failure.
// Blue-green installs and A/B promotion; devices that really switch are
// the control.
func TestFleetBelievesOnlyWhatDevicesServe(t *testing.T) {
	for _, strategy := range []Strategy{BlueGreen, AB} {
		for _, stale := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stale=%v", strategy, stale), func(t *testing.T) {
				spec := Spec{Strategy: strategy, Soak: 5 * time.Minute, DeviceDeadline: 10 * time.Minute, Gates: DefaultGates(), OnFailure: PauseOnFailure}
				s := newSim(t, 3, "1", spec)
				if stale {
					s.stale["dev-01"] = true
				}
				s.tick()
				s.report(good(), good())
				s.advance(time.Minute)
				s.tick()
				if stale && strategy == BlueGreen {
					d := s.r.Devices["dev-01"]
					if d.JobState != wire.JobInProgress || !strings.Contains(d.Reason, "waiting for its status") {
						t.Fatalf("stale device right after its job: %s %q, want in_progress (unconfirmed)", d.JobState, d.Reason)
					}
				}
				s.runUntil(good(), good(), time.Hour)
				if !stale {
					if s.r.Phase != Succeeded {
						t.Fatalf("control: phase %s (%s), want succeeded", s.r.Phase, s.r.Reason)
					}
					return
				}
				if s.r.Phase == Succeeded {
					t.Fatalf("rollout succeeded although dev-01 still serves %q", s.device("dev-01").Active)
				}
				if s.r.Phase != Paused || !strings.Contains(s.r.Reason, "install failures 1 > 0") && !strings.Contains(s.r.Reason, "1 activation(s) failed") {
					t.Fatalf("phase %s (%s), want paused on an install failure", s.r.Phase, s.r.Reason)
				}
				d := s.r.Devices["dev-01"]
				if !strings.Contains(d.Reason, `serves "1", not 2`) {
					t.Fatalf("stale device reason %q", d.Reason)
				}
			})
		}
	}
}
