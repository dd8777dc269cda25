// Package rollout is the staged-rollout controller: a pure state machine
// (Rollout.Tick) that, given a snapshot of the fleet (devices, job states,
// telemetry health), decides which devices get which job and whether a stage
// advances, pauses or rolls back; and a Manager that persists rollouts in the
// store, builds the snapshots, carries out the decisions and resumes every
// rollout after a restart. Time comes only from a Clock, so every strategy,
// gate and failure is tested deterministically.
package rollout

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/edgefleet/edgefleet/fleet/telemetry"
	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// Clock supplies the current time (the project's one clock interface).
type Clock = clock.Clock

// SystemClock is the wall clock.
type SystemClock = clock.Real

// Strategy is how the new version reaches devices.
type Strategy string

// The strategies.
const (
	// Canary installs on growing percentages of the selected devices
	// (Stages), chosen by a sticky hash of device id and rollout id.
	Canary Strategy = "canary"
	// BlueGreen installs on every selected device at once (one 100% stage);
	// the old version stays installed so rollback is an instant switch.
	BlueGreen Strategy = "blue-green"
	// Shadow runs the new version in shadow next to the active one on the
	// stage's devices; gates compare its agreement and latency; on success
	// the new version is activated everywhere.
	Shadow Strategy = "shadow"
	// AB sends SplitPercent of each stage device's traffic to the new
	// version; on success the new version is activated everywhere.
	AB Strategy = "ab"
)

// FailureAction is what a failed gate does.
type FailureAction string

// The failure actions.
const (
	RollbackOnFailure FailureAction = "rollback"
	PauseOnFailure    FailureAction = "pause"
)

// Gates are the health thresholds a stage must meet. A zero threshold
// disables that gate, except MaxCrashes, MaxRollbacks and
// MaxInstallFailures where zero means "none allowed" (use -1 to disable).
type Gates struct {
	// MaxErrorRate is the highest error rate (errors/requests) of the new version.
	MaxErrorRate float64 `json:"max_error_rate"`
	// MaxErrorRateDelta is the most the error rate may exceed the baseline's.
	MaxErrorRateDelta float64 `json:"max_error_rate_delta"`
	// MaxP95Ratio is the highest p95 latency of the new version divided by
	// the baseline's (e.g. 1.5).
	MaxP95Ratio float64 `json:"max_p95_ratio"`
	// MaxCrashes and MaxRollbacks bound crashes and device-side rollbacks.
	MaxCrashes   int `json:"max_crashes"`
	MaxRollbacks int `json:"max_rollbacks"`
	// MinShadowAgreement is the lowest top-1 agreement of a shadow.
	MinShadowAgreement float64 `json:"min_shadow_agreement"`
	// MaxInstallFailures bounds failed, rejected and rolled-back install jobs.
	MaxInstallFailures int `json:"max_install_failures"`
	// MinP95DeltaMs is the p95 noise floor: the latency gate fails only
	// when the new p95 exceeds the baseline's by more than this many
	// milliseconds AND the ratio exceeds MaxP95Ratio (sub-millisecond
	// models on a busy device are dominated by scheduling noise).
	MinP95DeltaMs float64 `json:"min_p95_delta_ms"`
	// MinRequests is how many requests of the new version a stage needs
	// before its gates can pass, and before the error-rate and latency
	// gates are judged (crash, rollback and install gates act at once).
	MinRequests uint64 `json:"min_requests"`
	// MaxDrift is the highest drift (largest PSI of the class, confidence
	// and feature histograms, docs/monitoring.md) of the new version over
	// the stage against its reference: reference stats given at push, else
	// the other versions' telemetry (gate "drift"; 0 disables it).
	MaxDrift float64 `json:"max_drift,omitempty"`
}

// DefaultGates are sensible production thresholds.
func DefaultGates() Gates {
	return Gates{MaxErrorRate: 0.05, MaxErrorRateDelta: 0.02, MaxP95Ratio: 1.5, MaxCrashes: 0, MaxRollbacks: 0,
		MinShadowAgreement: 0.95, MaxInstallFailures: 0, MinP95DeltaMs: 1, MinRequests: 50}
}

// UnmarshalJSON decodes gates over DefaultGates: a field the JSON omits
// keeps its default (so an API client may set one knob only).
func (g *Gates) UnmarshalJSON(b []byte) error {
	type plain Gates
	d := plain(DefaultGates())
	if err := json.Unmarshal(b, &d); err != nil {
		return err
	}
	*g = Gates(d)
	return nil
}

// Validate checks the gate values.
func (g Gates) Validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"max_error_rate", g.MaxErrorRate}, {"max_error_rate_delta", g.MaxErrorRateDelta}, {"max_p95_ratio", g.MaxP95Ratio},
		{"min_shadow_agreement", g.MinShadowAgreement}, {"min_p95_delta_ms", g.MinP95DeltaMs}, {"max_drift", g.MaxDrift}} {
		if f.v < 0 || math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return fmt.Errorf("gate %s = %v: want a finite value >= 0 (0 disables it)", f.name, f.v)
		}
	}
	if g.MaxErrorRate > 1 || g.MinShadowAgreement > 1 {
		return fmt.Errorf("gates max_error_rate %v and min_shadow_agreement %v: rates are 0..1", g.MaxErrorRate, g.MinShadowAgreement)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"max_crashes", g.MaxCrashes}, {"max_rollbacks", g.MaxRollbacks}, {"max_install_failures", g.MaxInstallFailures}} {
		if f.v < -1 {
			return fmt.Errorf("gate %s = %d: want -1 (disabled) or a count >= 0", f.name, f.v)
		}
	}
	return nil
}

// Kind is what a rollout rolls out.
type Kind string

// The rollout kinds.
const (
	// KindModel rolls out a model version (Spec.ModelID@Spec.Version).
	KindModel Kind = "model"
	// KindAgent rolls out an edge-agent version (Spec.Version): each device
	// gets a wire.JobAgent and runs the binary released for its platform.
	// Canary and blue-green only. A device counts as updated once its own
	// status reports the version while it is online; the gates judge every
	// model the stage's devices serve (error rate, p95 against the same
	// devices before the stage, crashes, device-side rollbacks) and the
	// agent jobs themselves (install failures: a binary that fails its
	// health check is rolled back on the device and fails its job).
	KindAgent Kind = "agent"
)

// DefaultAgentGates are DefaultGates without a traffic requirement: an
// agent update is judged on devices that may serve little or nothing, so
// a stage needs no minimum of requests (the error-rate and latency gates
// are judged on whatever traffic there is).
func DefaultAgentGates() Gates {
	g := DefaultGates()
	g.MinRequests = 0
	return g
}

// Spec is what an operator asks for.
type Spec struct {
	ID string `json:"id"`
	// Kind is KindModel (default, "" in older records) or KindAgent.
	Kind     Kind        `json:"kind,omitempty"`
	ModelID  string      `json:"model_id"`
	Version  string      `json:"version"`
	Target   wire.Target `json:"target"`
	RepoURL  string      `json:"repo_url,omitempty"`
	Strategy Strategy    `json:"strategy"`
	// Stages are cumulative percentages of the selected devices, ending at 100.
	Stages []int `json:"stages"`
	// SplitPercent is the candidate's traffic share for AB.
	SplitPercent int    `json:"split_percent,omitempty"`
	Selector     string `json:"selector,omitempty"`
	// Soak is how long a stage's gates must hold before it advances.
	Soak time.Duration `json:"soak"`
	// DeviceDeadline is how long a stage waits for a device's job (offline
	// devices included) before counting it timed out and moving on; it also
	// bounds how long a stage waits for MinRequests.
	DeviceDeadline time.Duration `json:"device_deadline"`
	// BaselineWindow is how far before a stage's start baseline telemetry is taken.
	BaselineWindow time.Duration `json:"baseline_window"`
	OnFailure      FailureAction `json:"on_failure"`
	// ManualPromote makes a healthy stage wait for Promote instead of advancing.
	ManualPromote bool  `json:"manual_promote,omitempty"`
	Gates         Gates `json:"gates"`
}

// Normalize fills defaults and validates the spec.
func (s *Spec) Normalize() error {
	if err := wire.ValidateID("rollout id", s.ID); err != nil {
		return err
	}
	if len(s.ID) > 24 {
		return fmt.Errorf("rollout id %q: at most 24 characters (job ids embed it)", s.ID)
	}
	switch s.Kind {
	case "", KindModel:
		s.Kind = KindModel
		if err := wire.ValidateID("model id", s.ModelID); err != nil {
			return err
		}
	case KindAgent:
		if s.ModelID != "" {
			return fmt.Errorf("an agent rollout names no model (model id %q)", s.ModelID)
		}
		if s.Strategy == Shadow || s.Strategy == AB {
			return fmt.Errorf("strategy %q: an agent rollout is canary or blue-green", s.Strategy)
		}
	default:
		return fmt.Errorf("kind %q: want model or agent", s.Kind)
	}
	if err := wire.ValidateID("version", s.Version); err != nil {
		return err
	}
	switch s.Strategy {
	case "":
		s.Strategy = Canary
	case Canary, BlueGreen, Shadow, AB:
	default:
		return fmt.Errorf("strategy %q: want canary, blue-green, shadow or ab", s.Strategy)
	}
	if s.Strategy == BlueGreen {
		s.Stages = []int{100}
	}
	if len(s.Stages) == 0 {
		if s.Strategy == Canary {
			s.Stages = []int{1, 10, 50, 100}
		} else {
			s.Stages = []int{100}
		}
	}
	prev := 0
	for i, p := range s.Stages {
		if p <= prev || p > 100 {
			return fmt.Errorf("stages[%d] = %d: want increasing percentages in 1..100", i, p)
		}
		prev = p
	}
	if prev != 100 {
		return fmt.Errorf("stages %v: the last stage must be 100", s.Stages)
	}
	if s.Strategy == AB {
		if s.SplitPercent == 0 {
			s.SplitPercent = 50
		}
		if s.SplitPercent < 1 || s.SplitPercent > 99 {
			return fmt.Errorf("split %d%%: want 1..99", s.SplitPercent)
		}
	}
	if s.Soak < 0 || s.DeviceDeadline < 0 {
		return fmt.Errorf("soak and device deadline must not be negative")
	}
	if s.DeviceDeadline == 0 {
		s.DeviceDeadline = 10 * time.Minute
	}
	if s.BaselineWindow == 0 {
		s.BaselineWindow = 15 * time.Minute
	}
	if s.BaselineWindow < 0 {
		return fmt.Errorf("baseline window must not be negative")
	}
	if err := s.Gates.Validate(); err != nil {
		return err
	}
	switch s.OnFailure {
	case "":
		s.OnFailure = RollbackOnFailure
	case RollbackOnFailure, PauseOnFailure:
	default:
		return fmt.Errorf("on-failure %q: want rollback or pause", s.OnFailure)
	}
	return nil
}

// Agent reports whether the spec rolls out an edge-agent version.
func (s Spec) Agent() bool { return s.Kind == KindAgent }

// Subject names what is rolled out: "iris@2" or "edge-agent 2".
func (s Spec) Subject() string {
	if s.Agent() {
		return "edge-agent " + s.Version
	}
	return s.ModelID + "@" + s.Version
}

// Phase is a rollout's lifecycle state.
type Phase string

// The phases. Succeeded, RolledBack and Failed are final.
const (
	Running      Phase = "running"
	Paused       Phase = "paused"
	AwaitPromote Phase = "awaiting_promotion"
	// Promoting activates the new version everywhere after a successful
	// shadow or A/B evaluation.
	Promoting   Phase = "promoting"
	RollingBack Phase = "rolling_back"
	Succeeded   Phase = "succeeded"
	RolledBack  Phase = "rolled_back"
)

// Final reports whether nothing more happens in p.
func (p Phase) Final() bool { return p == Succeeded || p == RolledBack }

// DeviceState is one device's part in a rollout.
type DeviceState struct {
	Stage    int           `json:"stage"`
	Baseline string        `json:"baseline,omitempty"`
	JobID    string        `json:"job_id,omitempty"`
	JobState wire.JobState `json:"job_state,omitempty"`
	Reason   string        `json:"reason,omitempty"`
	// Promote* track the final activation job (shadow and A/B).
	PromoteJobID string        `json:"promote_job_id,omitempty"`
	PromoteState wire.JobState `json:"promote_state,omitempty"`
	// Rollback* track the rollback job.
	RollbackJobID string        `json:"rollback_job_id,omitempty"`
	RollbackState wire.JobState `json:"rollback_state,omitempty"`
	// ConfirmBy is when the device's latest job times out: a job the
	// device reports succeeded counts only once the device's own status
	// reports serving the version, and fails if it has not by then.
	ConfirmBy time.Time `json:"confirm_by,omitzero"`
}

// GateResult is the latest value of one gate.
type GateResult struct {
	Name      string  `json:"name"`
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	// Evaluated is false when there was not enough data (e.g. no baseline).
	Evaluated bool `json:"evaluated"`
	OK        bool `json:"ok"`
}

// Event is a line of a rollout's history.
type Event struct {
	Time    time.Time `json:"time"`
	Stage   int       `json:"stage"`
	Type    string    `json:"type"`
	Message string    `json:"message"`
}

// Rollout is a rollout's full persisted state.
type Rollout struct {
	Spec         Spec                    `json:"spec"`
	Phase        Phase                   `json:"phase"`
	Reason       string                  `json:"reason,omitempty"`
	Stage        int                     `json:"stage"`
	Created      time.Time               `json:"created"`
	StageStarted time.Time               `json:"stage_started"`
	SoakStarted  time.Time               `json:"soak_started,omitzero"`
	Finished     time.Time               `json:"finished,omitzero"`
	Devices      map[string]*DeviceState `json:"devices"`
	Gates        []GateResult            `json:"gates,omitempty"`
	New          telemetry.Health        `json:"new_health"`
	Baseline     telemetry.Health        `json:"baseline_health"`
	// BaselineSource says which telemetry the baseline came from (see
	// baseline).
	BaselineSource string  `json:"baseline_source,omitempty"`
	NextJob        int     `json:"next_job"`
	Events         []Event `json:"events,omitempty"`
}

// New starts a rollout from a normalized spec.
func New(spec Spec, now time.Time) (*Rollout, error) {
	if err := spec.Normalize(); err != nil {
		return nil, fmt.Errorf("rollout spec: %w", err)
	}
	r := &Rollout{Spec: spec, Phase: Running, Created: now, StageStarted: now, Devices: map[string]*DeviceState{}}
	r.event(now, "created", fmt.Sprintf("%s of %s, stages %v", spec.Strategy, spec.Subject(), spec.Stages))
	return r, nil
}

// Device is a selected device as the controller sees it.
type Device struct {
	ID     string
	Online bool
	// Active is the device's active version of the rollout's model, or the
	// agent version its status reports (agent rollouts).
	Active string
}

// JobStatus is a job's state as stored by the server.
type JobStatus struct {
	State  wire.JobState
	Reason string
}

// View is the snapshot of the fleet one Tick decides on.
type View struct {
	// Devices are the devices matching the selector.
	Devices []Device
	// Jobs maps job id to its current status.
	Jobs map[string]JobStatus
	// Health aggregates telemetry.
	Health func(telemetry.Query) telemetry.Health
	// Drift compares a version's distributions with its reference (nil:
	// the drift gate is not evaluated).
	Drift func(telemetry.DriftQuery) telemetry.DriftReport
}

// Action is a job the manager must create and deliver.
type Action struct {
	DeviceID string
	Job      wire.Job
}

func (r *Rollout) event(now time.Time, typ, msg string) {
	r.Events = append(r.Events, Event{Time: now, Stage: r.Stage, Type: typ, Message: msg})
	if len(r.Events) > 200 {
		r.Events = r.Events[len(r.Events)-200:]
	}
}

// rank is the sticky position of a device in this rollout's order.
func (r *Rollout) rank(id string) uint64 {
	h := sha256.Sum256([]byte(r.Spec.ID + "/" + id))
	return binary.BigEndian.Uint64(h[:8])
}

// StageTarget returns how many of n devices stage i covers (at least one
// when n > 0).
func StageTarget(pct, n int) int {
	t := int(math.Ceil(float64(pct) * float64(n) / 100))
	if t < 1 && n > 0 {
		t = 1
	}
	if t > n {
		t = n
	}
	return t
}

func (r *Rollout) newJob(now time.Time, kind wire.JobKind, version string) wire.Job {
	r.NextJob++
	j := wire.Job{JobID: fmt.Sprintf("%s-%04d", r.Spec.ID, r.NextJob), Kind: kind, RolloutID: r.Spec.ID,
		ModelID: r.Spec.ModelID, Version: version, RepoURL: r.Spec.RepoURL, State: wire.JobQueued,
		Created: now, Deadline: now.Add(r.Spec.DeviceDeadline)}
	if kind != wire.JobRollback && kind.ForModel() {
		t := r.Spec.Target
		j.Target = &t
	}
	if kind == wire.JobAB {
		j.SplitPercent = r.Spec.SplitPercent
	}
	return j
}

func (r *Rollout) stageKind() wire.JobKind {
	if r.Spec.Agent() {
		return wire.JobAgent
	}
	switch r.Spec.Strategy {
	case Shadow:
		return wire.JobShadow
	case AB:
		return wire.JobAB
	}
	return wire.JobInstall
}

// sync copies job states from the view. The fleet believes only what a
// device reports it serves: an install (or promotion, or rollback to a
// version) the device says succeeded stays in progress until the device's
// status reports that version active, and fails if it still does not when
// the job's deadline passes (e.g. an agent that skipped the install).
func (r *Rollout) sync(now time.Time, v View) {
	active := make(map[string]string, len(v.Devices))
	online := make(map[string]bool, len(v.Devices))
	for _, d := range v.Devices {
		active[d.ID] = d.Active
		online[d.ID] = d.Online
	}
	confirm := func(id string, d *DeviceState, st wire.JobState, reason, want string) (wire.JobState, string) {
		if st != wire.JobSucceeded || want == "" {
			return st, reason
		}
		got, known := active[id]
		// An agent update counts once the restarted agent is back online
		// and its own status reports the version.
		back := !r.Spec.Agent() || online[id]
		if !known || got == want && back {
			return st, reason // no longer selected: nothing to check against
		}
		by := d.ConfirmBy
		if by.IsZero() {
			by = r.StageStarted.Add(r.Spec.DeviceDeadline)
		}
		if r.Spec.Agent() {
			if now.Before(by) {
				if !back {
					return wire.JobInProgress, fmt.Sprintf("device reported success; waiting for it to come back online running edge-agent %s", want)
				}
				return wire.JobInProgress, fmt.Sprintf("device reported success; waiting for its status to report edge-agent %s (reports %q)", want, got)
			}
			if !back {
				return wire.JobFailed, fmt.Sprintf("device reported success but did not come back online running edge-agent %s", want)
			}
			return wire.JobFailed, fmt.Sprintf("device reported success but runs edge-agent %q, not %s", got, want)
		}
		if now.Before(by) {
			return wire.JobInProgress, fmt.Sprintf("device reported success; waiting for its status to show %s active (shows %q)", want, got)
		}
		return wire.JobFailed, fmt.Sprintf("device reported success but serves %q, not %s", got, want)
	}
	for id, d := range r.Devices {
		if s, ok := v.Jobs[d.JobID]; ok && d.JobID != "" {
			want := ""
			if r.stageKind() == wire.JobInstall || r.stageKind() == wire.JobAgent {
				want = r.Spec.Version
			}
			d.JobState, d.Reason = confirm(id, d, s.State, s.Reason, want)
		}
		if s, ok := v.Jobs[d.PromoteJobID]; ok && d.PromoteJobID != "" {
			st, why := confirm(id, d, s.State, s.Reason, r.Spec.Version)
			d.PromoteState = st
			if st != s.State {
				d.Reason = why
			}
		}
		if s, ok := v.Jobs[d.RollbackJobID]; ok && d.RollbackJobID != "" {
			st, why := confirm(id, d, s.State, s.Reason, d.Baseline)
			d.RollbackState = st
			if st != s.State {
				d.Reason = why
			}
		}
	}
}

// Tick advances the state machine to now and returns the jobs to create.
func (r *Rollout) Tick(now time.Time, v View) []Action {
	r.sync(now, v)
	switch r.Phase {
	case Running:
		return r.tickRunning(now, v)
	case Promoting:
		return r.tickPromoting(now, v)
	case RollingBack:
		return r.tickRollingBack(now)
	case AwaitPromote, Paused:
		r.evaluate(now, v) // keep gate values fresh for operators
	}
	return nil
}

func (r *Rollout) ids(stageMax int) map[string]bool {
	m := map[string]bool{}
	for id, d := range r.Devices {
		if d.Stage <= stageMax && d.JobID != "" {
			m[id] = true
		}
	}
	return m
}

func (r *Rollout) tickRunning(now time.Time, v View) []Action {
	var acts []Action
	// 1. Assign devices up to the stage's share, in sticky hash order.
	devs := append([]Device(nil), v.Devices...)
	sort.Slice(devs, func(i, j int) bool { return r.rank(devs[i].ID) < r.rank(devs[j].ID) })
	target := StageTarget(r.Spec.Stages[r.Stage], len(devs))
	assigned := 0
	for _, d := range devs {
		if _, ok := r.Devices[d.ID]; ok {
			assigned++
		}
	}
	for _, d := range devs {
		if assigned >= target {
			break
		}
		if _, ok := r.Devices[d.ID]; ok {
			continue
		}
		ds := &DeviceState{Stage: r.Stage, Baseline: d.Active}
		if d.Active == r.Spec.Version && (r.stageKind() == wire.JobInstall || r.stageKind() == wire.JobAgent) {
			ds.JobState = wire.JobSucceeded
			ds.Reason = "already active"
		} else {
			j := r.newJob(now, r.stageKind(), r.Spec.Version)
			ds.JobID, ds.JobState, ds.ConfirmBy = j.JobID, wire.JobQueued, j.Deadline
			acts = append(acts, Action{DeviceID: d.ID, Job: j})
		}
		r.Devices[d.ID] = ds
		assigned++
	}
	if len(acts) > 0 {
		r.event(now, "assigned", fmt.Sprintf("stage %d (%d%%): %d new device(s), %d of %d assigned", r.Stage+1, r.Spec.Stages[r.Stage], len(acts), assigned, len(devs)))
	}

	// 2. Install failures fail the gate at once; timed-out jobs do not block.
	failures, pending, installed := 0, 0, 0
	for _, d := range r.Devices {
		switch d.JobState {
		case wire.JobFailed, wire.JobRejected, wire.JobRolledBack:
			failures++
		case wire.JobQueued, wire.JobInProgress:
			pending++
		case wire.JobSucceeded:
			installed++
		}
	}
	if g := r.Spec.Gates.MaxInstallFailures; g >= 0 && failures > g {
		r.setGate(GateResult{Name: "install_failures", Value: float64(failures), Threshold: float64(g), Evaluated: true})
		return append(acts, r.fail(now, fmt.Sprintf("install failures %d > %d", failures, g))...)
	}
	if len(devs) == 0 {
		r.Reason = "no device matches the selector"
		return acts
	}
	if pending > 0 {
		return acts
	}
	if installed == 0 {
		r.Phase, r.Reason = Paused, "no device reached the new version (all timed out)"
		r.event(now, "paused", r.Reason)
		return acts
	}
	if r.SoakStarted.IsZero() {
		r.SoakStarted = now
		r.event(now, "soak", fmt.Sprintf("stage %d: all %d device(s) resolved, soaking %s", r.Stage+1, installed, r.Spec.Soak))
	}

	// 3. Gates.
	ok, enough, why := r.evaluate(now, v)
	if !ok {
		return append(acts, r.fail(now, why)...)
	}
	if now.Sub(r.SoakStarted) < r.Spec.Soak {
		return acts
	}
	if !enough {
		if now.Sub(r.SoakStarted) >= r.Spec.Soak+r.Spec.DeviceDeadline {
			r.Phase, r.Reason = Paused, fmt.Sprintf("not enough telemetry: %d of %d requests", r.New.Requests, r.Spec.Gates.MinRequests)
			r.event(now, "paused", r.Reason)
		}
		return acts
	}
	if r.Spec.ManualPromote {
		r.Phase, r.Reason = AwaitPromote, fmt.Sprintf("stage %d healthy, waiting for promote", r.Stage+1)
		r.event(now, "awaiting_promotion", r.Reason)
		return acts
	}
	return append(acts, r.advance(now, "gates passed", v)...)
}

func (r *Rollout) setGate(g GateResult) {
	g.OK = !g.Evaluated || g.OK
	for i := range r.Gates {
		if r.Gates[i].Name == g.Name {
			r.Gates[i] = g
			return
		}
	}
	r.Gates = append(r.Gates, g)
}

// evaluate computes gate values over the current stage window. ok=false
// means a gate failed; enough reports whether MinRequests was reached.
func (r *Rollout) evaluate(now time.Time, v View) (ok, enough bool, why string) {
	if v.Health == nil {
		return true, false, ""
	}
	g := r.Spec.Gates
	devs := r.ids(r.Stage)
	newRoles := []wire.Role{wire.RolePrimary}
	switch r.Spec.Strategy {
	case Shadow:
		newRoles = []wire.Role{wire.RoleShadow}
	case AB:
		newRoles = []wire.Role{wire.RoleCandidate}
	}
	newQ := telemetry.Query{ModelID: r.Spec.ModelID, Version: r.Spec.Version, Roles: newRoles, Devices: devs,
		Since: r.StageStarted, Until: now.Add(time.Nanosecond)}
	if r.Spec.Agent() {
		// An agent version is judged by every model its devices serve.
		newQ.ModelID, newQ.Version = "", ""
	}
	nh := v.Health(newQ)
	// Crashes and device-side rollbacks count in any role.
	allQ := newQ
	allQ.Roles = nil
	all := v.Health(allQ)
	nh.Crashes, nh.Rollbacks = all.Crashes, all.Rollbacks
	bh, src := r.baseline(now, v, devs)
	r.New, r.Baseline, r.BaselineSource = nh, bh, src

	ok = true
	check := func(res GateResult, failMsg string) {
		r.setGate(res)
		if res.Evaluated && !res.OK && ok {
			ok, why = false, failMsg
		}
	}
	hasData := nh.Requests > 0 && nh.Requests >= g.MinRequests
	if g.MaxErrorRate > 0 {
		check(GateResult{Name: "error_rate", Value: nh.ErrorRate, Threshold: g.MaxErrorRate, Evaluated: hasData, OK: nh.ErrorRate <= g.MaxErrorRate},
			fmt.Sprintf("error rate %.3f > %.3f", nh.ErrorRate, g.MaxErrorRate))
	}
	if g.MaxErrorRateDelta > 0 {
		d := nh.ErrorRate - bh.ErrorRate
		check(GateResult{Name: "error_rate_delta", Value: d, Threshold: g.MaxErrorRateDelta, Evaluated: hasData && bh.Requests > 0, OK: d <= g.MaxErrorRateDelta},
			fmt.Sprintf("error rate %.3f exceeds baseline %.3f by more than %.3f", nh.ErrorRate, bh.ErrorRate, g.MaxErrorRateDelta))
	}
	if g.MaxP95Ratio > 0 {
		ratio := 0.0
		if bh.P95 > 0 {
			ratio = nh.P95 / bh.P95
		}
		check(GateResult{Name: "p95_latency_ratio", Value: ratio, Threshold: g.MaxP95Ratio, Evaluated: hasData && bh.P95 > 0,
			OK: ratio <= g.MaxP95Ratio || nh.P95-bh.P95 <= g.MinP95DeltaMs},
			fmt.Sprintf("p95 latency %.2fms is %.2f× the baseline %.2fms (max %.2f×) and %.2fms more (noise floor %.2fms); baseline: %s",
				nh.P95, ratio, bh.P95, g.MaxP95Ratio, nh.P95-bh.P95, g.MinP95DeltaMs, src))
	}
	if g.MaxCrashes >= 0 {
		check(GateResult{Name: "crashes", Value: float64(nh.Crashes), Threshold: float64(g.MaxCrashes), Evaluated: true, OK: nh.Crashes <= uint64(g.MaxCrashes)},
			fmt.Sprintf("%d crash(es) > %d", nh.Crashes, g.MaxCrashes))
	}
	if g.MaxRollbacks >= 0 {
		check(GateResult{Name: "rollbacks", Value: float64(nh.Rollbacks), Threshold: float64(g.MaxRollbacks), Evaluated: true, OK: nh.Rollbacks <= uint64(g.MaxRollbacks)},
			fmt.Sprintf("%d device rollback(s) > %d", nh.Rollbacks, g.MaxRollbacks))
	}
	if r.Spec.Strategy == Shadow && g.MinShadowAgreement > 0 {
		check(GateResult{Name: "shadow_agreement", Value: nh.ShadowAgreement, Threshold: g.MinShadowAgreement, Evaluated: nh.ShadowCompared > 0, OK: nh.ShadowAgreement >= g.MinShadowAgreement},
			fmt.Sprintf("shadow agreement %.3f < %.3f", nh.ShadowAgreement, g.MinShadowAgreement))
	}
	if g.MaxDrift > 0 && v.Drift != nil && !r.Spec.Agent() { // drift is per model version; an agent rollout has none
		d := v.Drift(telemetry.DriftQuery{ModelID: r.Spec.ModelID, Version: r.Spec.Version, Roles: newRoles,
			Since: r.StageStarted, Until: now.Add(time.Nanosecond), BaselineHint: r.replacedVersion()})
		check(GateResult{Name: "drift", Value: d.Drift, Threshold: g.MaxDrift, Evaluated: hasData && d.Evaluated, OK: d.Drift <= g.MaxDrift},
			fmt.Sprintf("drift (PSI) %.3f > %.3f against the %s reference %v", d.Drift, g.MaxDrift, d.Reference.Source, d.Reference.Versions))
	}
	enough = nh.Requests >= g.MinRequests && (r.Spec.Strategy != Shadow || nh.ShadowCompared > 0 || g.MinShadowAgreement == 0)
	r.setGate(GateResult{Name: "min_requests", Value: float64(nh.Requests), Threshold: float64(g.MinRequests), Evaluated: true, OK: enough})
	return ok, enough, why
}

// baseline returns the health the new version is compared with and where
// it came from, comparing like with like as far as the data allows:
//
//   - shadow and A/B: the primary on the same devices, same window;
//   - canary and blue-green, in order of preference: the same devices
//     before the stage started (other versions, over the baseline
//     window); the selected devices outside the rollout over the same
//     window as the new version; the whole selection before the stage
//     (the first two need MinRequests requests, at least one).
func (r *Rollout) baseline(now time.Time, v View, devs map[string]bool) (telemetry.Health, string) {
	until := now.Add(time.Nanosecond)
	q := telemetry.Query{ModelID: r.Spec.ModelID, Version: r.Spec.Version, ExcludeVersion: true, Roles: []wire.Role{wire.RolePrimary}}
	if r.Spec.Agent() {
		// Every model on the devices, under the previous agent version:
		// the same devices before the stage, first.
		q.ModelID, q.Version, q.ExcludeVersion = "", "", false
	}
	if r.Spec.Strategy == Shadow || r.Spec.Strategy == AB {
		q.Devices, q.Since, q.Until = devs, r.StageStarted, until
		return v.Health(q), "primary on the same devices, same window"
	}
	need := max(r.Spec.Gates.MinRequests, 1)
	q.Devices, q.Since, q.Until = devs, r.StageStarted.Add(-r.Spec.BaselineWindow), r.StageStarted
	if h := v.Health(q); h.Requests >= need {
		return h, fmt.Sprintf("the same %d device(s) before the stage", len(devs))
	}
	others := map[string]bool{}
	for _, d := range v.Devices {
		if _, in := r.Devices[d.ID]; !in {
			others[d.ID] = true
		}
	}
	if len(others) > 0 {
		q.Devices, q.Since, q.Until = others, r.StageStarted, until
		if h := v.Health(q); h.Requests >= need {
			return h, fmt.Sprintf("%d device(s) outside the rollout, same window", len(others))
		}
	}
	q.Devices, q.Since, q.Until = nil, r.StageStarted.Add(-r.Spec.BaselineWindow), until
	return v.Health(q), "the selected fleet before and during the stage"
}

func (r *Rollout) advance(now time.Time, why string, v View) []Action {
	r.event(now, "stage_passed", fmt.Sprintf("stage %d (%d%%) passed: %s", r.Stage+1, r.Spec.Stages[r.Stage], why))
	r.Phase, r.Reason = Running, ""
	if r.Stage+1 < len(r.Spec.Stages) {
		r.Stage++
		r.StageStarted, r.SoakStarted = now, time.Time{}
		return r.tickRunning(now, v)
	}
	if r.Spec.Strategy == Shadow || r.Spec.Strategy == AB {
		r.Phase = Promoting
		r.event(now, "promoting", "evaluation passed, activating the new version on every device")
		return r.tickPromoting(now, v)
	}
	r.finish(now, Succeeded, "all stages passed")
	return nil
}

func (r *Rollout) tickPromoting(now time.Time, v View) []Action {
	var acts []Action
	for _, d := range v.Devices {
		ds, ok := r.Devices[d.ID]
		if !ok {
			ds = &DeviceState{Stage: r.Stage, Baseline: d.Active, JobState: wire.JobSucceeded, Reason: "not in evaluation"}
			r.Devices[d.ID] = ds
		}
		if ds.PromoteJobID == "" {
			j := r.newJob(now, wire.JobInstall, r.Spec.Version)
			ds.PromoteJobID, ds.PromoteState, ds.ConfirmBy = j.JobID, wire.JobQueued, j.Deadline
			acts = append(acts, Action{DeviceID: d.ID, Job: j})
		}
	}
	failed := 0
	for _, ds := range r.Devices {
		if ds.PromoteJobID == "" {
			continue
		}
		if !ds.PromoteState.Terminal() {
			return acts
		}
		if ds.PromoteState != wire.JobSucceeded && ds.PromoteState != wire.JobTimedOut {
			failed++
		}
	}
	if g := r.Spec.Gates.MaxInstallFailures; g >= 0 && failed > g {
		return append(acts, r.fail(now, fmt.Sprintf("%d activation(s) failed", failed))...)
	}
	r.finish(now, Succeeded, "new version active")
	return acts
}

// fail applies the configured failure action.
func (r *Rollout) fail(now time.Time, why string) []Action {
	if r.Spec.OnFailure == PauseOnFailure {
		r.Phase, r.Reason = Paused, "gate failed: "+why
		r.event(now, "paused", r.Reason)
		return nil
	}
	return r.startRollback(now, "gate failed: "+why)
}

func (r *Rollout) startRollback(now time.Time, why string) []Action {
	r.Phase, r.Reason = RollingBack, why
	r.event(now, "rolling_back", why)
	var acts []Action
	ids := make([]string, 0, len(r.Devices))
	for id := range r.Devices {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		ds := r.Devices[id]
		if ds.RollbackJobID != "" || ds.JobID == "" {
			continue
		}
		switch ds.JobState {
		case wire.JobRejected, wire.JobTimedOut:
			continue // never changed the device
		}
		if ds.Baseline == "" && (r.stageKind() == wire.JobInstall || r.Spec.Agent()) && ds.PromoteJobID == "" {
			ds.RollbackState, ds.Reason = wire.JobFailed, "no previous version to roll back to"
			continue
		}
		version := ds.Baseline
		if version == "" {
			version = r.Spec.Version // shadow/AB without a baseline: stop the candidate only
		}
		kind := wire.JobRollback
		if r.Spec.Agent() {
			if ds.JobState == wire.JobRolledBack {
				continue // the device put its previous binary back itself
			}
			kind = wire.JobAgent // run the previous agent version again
		}
		j := r.newJob(now, kind, version)
		ds.RollbackJobID, ds.RollbackState, ds.ConfirmBy = j.JobID, wire.JobQueued, j.Deadline
		acts = append(acts, Action{DeviceID: id, Job: j})
	}
	if len(acts) == 0 {
		r.finish(now, RolledBack, why)
	}
	return acts
}

func (r *Rollout) tickRollingBack(now time.Time) []Action {
	for _, ds := range r.Devices {
		if ds.RollbackJobID != "" && !ds.RollbackState.Terminal() {
			return nil
		}
	}
	r.finish(now, RolledBack, r.Reason)
	return nil
}

func (r *Rollout) finish(now time.Time, p Phase, why string) {
	r.Phase, r.Reason, r.Finished = p, why, now
	r.event(now, string(p), why)
}

// Command is a manual operator action.
type Command string

// The commands.
const (
	Promote Command = "promote"
	Pause   Command = "pause"
	Resume  Command = "resume"
	Abort   Command = "abort"
)

// Apply runs an operator command. Promote advances past the current stage
// without waiting for soak or gates; Pause stops assigning and advancing;
// Resume restarts the current stage's window; Abort rolls back every device.
func (r *Rollout) Apply(now time.Time, c Command, v View) ([]Action, error) {
	if r.Phase.Final() {
		return nil, fmt.Errorf("rollout %s is %s: %s not possible", r.Spec.ID, r.Phase, c)
	}
	switch c {
	case Promote:
		if r.Phase != Running && r.Phase != Paused && r.Phase != AwaitPromote {
			return nil, fmt.Errorf("rollout %s is %s: promote needs running, paused or awaiting_promotion", r.Spec.ID, r.Phase)
		}
		r.event(now, "promote", "promoted by operator")
		r.sync(now, v)
		return r.advance(now, "promoted by operator", v), nil
	case Pause:
		if r.Phase != Running && r.Phase != AwaitPromote {
			return nil, fmt.Errorf("rollout %s is %s: pause needs running", r.Spec.ID, r.Phase)
		}
		r.Phase, r.Reason = Paused, "paused by operator"
		r.event(now, "paused", r.Reason)
		return nil, nil
	case Resume:
		if r.Phase != Paused {
			return nil, fmt.Errorf("rollout %s is %s: resume needs paused", r.Spec.ID, r.Phase)
		}
		r.Phase, r.Reason = Running, ""
		r.StageStarted, r.SoakStarted = now, time.Time{}
		r.event(now, "resumed", "resumed by operator")
		return r.Tick(now, v), nil
	case Abort:
		if r.Phase == RollingBack {
			return nil, fmt.Errorf("rollout %s is already rolling back", r.Spec.ID)
		}
		r.sync(now, v)
		return r.startRollback(now, "aborted by operator"), nil
	}
	return nil, fmt.Errorf("unknown command %q: want promote, pause, resume or abort", c)
}
