package wire

import (
	"errors"
	"fmt"
)

// JobState is the state of a device job.
//
//	queued ──► in_progress ──► succeeded | failed | rolled_back | timed_out
//	   │
//	   └─────► rejected | timed_out
//
// Every state except queued and in_progress is terminal.
type JobState string

// The job states.
const (
	JobQueued     JobState = "queued"
	JobInProgress JobState = "in_progress"
	JobSucceeded  JobState = "succeeded"
	JobFailed     JobState = "failed"
	JobRejected   JobState = "rejected"
	JobRolledBack JobState = "rolled_back"
	JobTimedOut   JobState = "timed_out"
)

var jobTransitions = map[JobState][]JobState{
	JobQueued:     {JobInProgress, JobRejected, JobTimedOut, JobFailed},
	JobInProgress: {JobInProgress, JobSucceeded, JobFailed, JobRolledBack, JobTimedOut},
}

// Valid reports whether s is one of the defined states.
func (s JobState) Valid() bool {
	switch s {
	case JobQueued, JobInProgress, JobSucceeded, JobFailed, JobRejected, JobRolledBack, JobTimedOut:
		return true
	}
	return false
}

// Terminal reports whether no transition leaves s.
func (s JobState) Terminal() bool { return s.Valid() && len(jobTransitions[s]) == 0 }

// ErrBadTransition is wrapped by Transition when a move is not allowed.
var ErrBadTransition = errors.New("job state transition not allowed")

// Transition checks that a job may move from s to next. in_progress →
// in_progress is allowed (progress updates).
func (s JobState) Transition(next JobState) error {
	if !s.Valid() {
		return fmt.Errorf("job state %q is unknown: %w", s, ErrBadTransition)
	}
	if !next.Valid() {
		return fmt.Errorf("job state %q → %q: target unknown: %w", s, next, ErrBadTransition)
	}
	for _, t := range jobTransitions[s] {
		if t == next {
			return nil
		}
	}
	if s.Terminal() {
		return fmt.Errorf("job state %q is terminal, cannot move to %q: %w", s, next, ErrBadTransition)
	}
	return fmt.Errorf("job state %q → %q: want one of %v: %w", s, next, jobTransitions[s], ErrBadTransition)
}

// JobKind says what a job asks the device to do.
type JobKind string

// The job kinds.
const (
	// JobInstall downloads, verifies, golden-checks and activates a model version.
	JobInstall JobKind = "install"
	// JobShadow installs a version and runs it in shadow next to the active one.
	JobShadow JobKind = "shadow"
	// JobAB installs a version and sends SplitPercent of traffic to it.
	JobAB JobKind = "ab"
	// JobRollback activates Version (an already installed, earlier version)
	// and stops any shadow or A/B candidate of the model.
	JobRollback JobKind = "rollback"
	// JobAgent makes the device run edge-agent Version: it downloads the
	// binary released (TUF-signed) for its own platform, installs it over
	// the running one, health-checks it and restarts the agent as that
	// version; a binary that fails the check is replaced by the previous one
	// and the job ends rolled_back with the reason. The job carries no model
	// and no target (each device picks its platform's signed binary). Agent
	// rollouts also roll back with JobAgent (to the previous version).
	JobAgent JobKind = "agent"
)

// String returns the kind's name.
func (k JobKind) String() string { return string(k) }

// Valid reports whether k is a defined kind.
func (k JobKind) Valid() bool {
	switch k {
	case JobInstall, JobShadow, JobAB, JobRollback, JobAgent:
		return true
	}
	return false
}

// ForModel reports whether jobs of kind k act on a model (every kind but
// JobAgent): they name one in ModelID.
func (k JobKind) ForModel() bool { return k != JobAgent }

// validateKindFields checks the fields whose presence depends on the kind:
// a model job names its model (and, except rollback, its target); an agent
// job names neither.
func (j *Job) validateKindFields() error {
	if !j.Kind.ForModel() {
		if j.ModelID != "" || j.Target != nil {
			return fmt.Errorf("job %s: an agent job names no model and no target (model_id %q)", j.JobID, j.ModelID)
		}
		return nil
	}
	if err := ValidateID("model_id", j.ModelID); err != nil {
		return fmt.Errorf("job %s: %w", j.JobID, err)
	}
	if j.Kind != JobRollback && j.Target == nil {
		return fmt.Errorf("job %s: %s job needs a target", j.JobID, j.Kind)
	}
	return nil
}

// JobError is returned by a device's job handler to end a job in a specific
// state (rejected, failed, rolled_back) with a reason.
type JobError struct {
	State  JobState
	Reason string
}

func (e *JobError) Error() string { return fmt.Sprintf("job %s: %s", e.State, e.Reason) }
