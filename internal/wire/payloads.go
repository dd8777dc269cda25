package wire

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Presence is a device's connection state as seen on its status topic.
type Presence string

// The presence values.
const (
	Online  Presence = "online"
	Offline Presence = "offline"
)

// Hardware describes a device's board as reported at enrollment and in status.
type Hardware struct {
	Arch         string   `json:"arch"`
	OS           string   `json:"os,omitempty"`
	CPUs         int      `json:"cpus,omitempty"`
	MemoryBytes  uint64   `json:"memory_bytes,omitempty"`
	CPUFeatures  []string `json:"cpu_features,omitempty"`
	Accelerators []string `json:"accelerators,omitempty"`
	// ModelVariants are the model release variants the device runs, best
	// first ("edgetpu", "cpu"; see hardware.SelectVariant and
	// docs/acceleration.md).
	ModelVariants []string `json:"model_variants,omitempty"`
	// Backends are the inference backends the agent can use ("native",
	// "tflite", "tflite+xnnpack", "tflite+edgetpu", "tflite+gpu").
	Backends []string `json:"backends,omitempty"`
}

// Bounds on Hardware's lists (they come from devices).
const (
	MaxHardwareList  = 64
	MaxHardwareEntry = 128
)

// Validate bounds the lists a device reports.
func (h *Hardware) Validate() error {
	for _, l := range []struct {
		name string
		v    []string
	}{{"cpu_features", h.CPUFeatures}, {"accelerators", h.Accelerators}, {"model_variants", h.ModelVariants}, {"backends", h.Backends}} {
		if len(l.v) > MaxHardwareList {
			return fmt.Errorf("hardware.%s has %d entries, want at most %d", l.name, len(l.v), MaxHardwareList)
		}
		for i, e := range l.v {
			if len(e) > MaxHardwareEntry {
				return fmt.Errorf("hardware.%s[%d] is %d bytes, want at most %d", l.name, i, len(e), MaxHardwareEntry)
			}
		}
	}
	return nil
}

// ModelStatus is what a device holds of one model.
type ModelStatus struct {
	ID        string   `json:"id"`
	Active    string   `json:"active,omitempty"`
	Previous  string   `json:"previous,omitempty"`
	Installed []string `json:"installed,omitempty"`
	// Shadow is the version running in shadow, if any.
	Shadow string `json:"shadow,omitempty"`
	// Candidate is the A/B candidate version and CandidatePercent its share.
	Candidate        string `json:"candidate,omitempty"`
	CandidatePercent int    `json:"candidate_percent,omitempty"`
}

// Status is published retained on the status topic; the Last Will is a
// Status with State offline.
type Status struct {
	V            int               `json:"v"`
	DeviceID     string            `json:"device_id"`
	State        Presence          `json:"state"`
	Time         time.Time         `json:"time,omitzero"`
	AgentVersion string            `json:"agent_version,omitempty"`
	Hardware     *Hardware         `json:"hardware,omitempty"`
	Models       []ModelStatus     `json:"models,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
}

// Validate checks a decoded Status.
func (s *Status) Validate() error {
	if err := ValidateID("device_id", s.DeviceID); err != nil {
		return err
	}
	if s.State != Online && s.State != Offline {
		return fmt.Errorf("state %q: want %q or %q", s.State, Online, Offline)
	}
	if s.Hardware != nil {
		if err := s.Hardware.Validate(); err != nil {
			return err
		}
	}
	for i, m := range s.Models {
		if err := ValidateID(fmt.Sprintf("models[%d].id", i), m.ID); err != nil {
			return err
		}
		if m.CandidatePercent < 0 || m.CandidatePercent > 100 {
			return fmt.Errorf("models[%d].candidate_percent %d: want 0..100", i, m.CandidatePercent)
		}
	}
	return nil
}

// Role says which path produced a telemetry record.
type Role string

// The telemetry roles.
const (
	RolePrimary   Role = "primary"   // the active version serving requests
	RoleShadow    Role = "shadow"    // a shadow version run off the request path
	RoleCandidate Role = "candidate" // the A/B candidate serving its share
)

// TelemetryRecord is one periodic health record of one model version on one
// device. Seq is assigned by the device, strictly increasing, and is the unit
// of acknowledgement.
type TelemetryRecord struct {
	Seq          uint64    `json:"seq"`
	Time         time.Time `json:"time"`
	ModelID      string    `json:"model_id"`
	Version      string    `json:"version"`
	Role         Role      `json:"role,omitempty"`
	Requests     uint64    `json:"requests"`
	Errors       uint64    `json:"errors"`
	LatencyP50Ms float64   `json:"latency_p50_ms"`
	LatencyP95Ms float64   `json:"latency_p95_ms"`
	LatencyP99Ms float64   `json:"latency_p99_ms"`
	// Crashes counts process or interpreter crashes attributed to the version.
	Crashes uint64 `json:"crashes,omitempty"`
	// Rollbacks counts automatic device-side rollbacks away from the version.
	Rollbacks uint64 `json:"rollbacks,omitempty"`
	// InstallFailures counts failed installs of the version.
	InstallFailures uint64 `json:"install_failures,omitempty"`
	// ShadowCompared and ShadowAgreed count shadow comparisons (top-1 match).
	ShadowCompared uint64 `json:"shadow_compared,omitempty"`
	ShadowAgreed   uint64 `json:"shadow_agreed,omitempty"`
	// Monitoring holds the interval's prediction-class, confidence and
	// input feature distributions and the device's CPU and memory (see
	// docs/monitoring.md); nil from agents that predate it.
	Monitoring *Monitoring `json:"monitoring,omitempty"`
}

// TelemetryBatch carries buffered records; Dropped counts records the device
// had to discard from its bounded buffer since the previous batch.
type TelemetryBatch struct {
	V        int               `json:"v"`
	DeviceID string            `json:"device_id"`
	Records  []TelemetryRecord `json:"records"`
	Dropped  uint64            `json:"dropped,omitempty"`
	// Epoch identifies the device's sequence-number space: a random id
	// chosen when the device's telemetry buffer is created (so a re-flashed
	// device, which restarts at seq 1, starts a new epoch), an id of at
	// most 64 characters. The server keeps one high-water mark per epoch.
	// Empty for agents that predate it.
	Epoch string `json:"epoch,omitempty"`
}

// MaxBatchRecords bounds the records in one batch.
const MaxBatchRecords = 500

// Validate checks a decoded TelemetryBatch.
func (b *TelemetryBatch) Validate() error {
	if err := ValidateID("device_id", b.DeviceID); err != nil {
		return err
	}
	if b.Epoch != "" {
		if err := ValidateID("epoch", b.Epoch); err != nil {
			return err
		}
	}
	if len(b.Records) > MaxBatchRecords {
		return fmt.Errorf("records: %d, want at most %d", len(b.Records), MaxBatchRecords)
	}
	var last uint64
	for i, r := range b.Records {
		if r.Seq == 0 || r.Seq <= last {
			return fmt.Errorf("records[%d].seq %d: want > 0 and greater than the previous %d", i, r.Seq, last)
		}
		last = r.Seq
		if err := ValidateID(fmt.Sprintf("records[%d].model_id", i), r.ModelID); err != nil {
			return err
		}
		if err := ValidateID(fmt.Sprintf("records[%d].version", i), r.Version); err != nil {
			return err
		}
		switch r.Role {
		case "", RolePrimary, RoleShadow, RoleCandidate:
		default:
			return fmt.Errorf("records[%d].role %q: want primary, shadow or candidate", i, r.Role)
		}
		if r.Errors > r.Requests {
			return fmt.Errorf("records[%d]: errors %d > requests %d", i, r.Errors, r.Requests)
		}
		if r.ShadowAgreed > r.ShadowCompared {
			return fmt.Errorf("records[%d]: shadow_agreed %d > shadow_compared %d", i, r.ShadowAgreed, r.ShadowCompared)
		}
		for _, l := range []float64{r.LatencyP50Ms, r.LatencyP95Ms, r.LatencyP99Ms} {
			if l < 0 || l != l || l > 1e9 {
				return fmt.Errorf("records[%d]: latency %v ms out of range 0..1e9", i, l)
			}
		}
		if r.Monitoring != nil {
			if err := r.Monitoring.Validate(); err != nil {
				return fmt.Errorf("records[%d]: %w", i, err)
			}
		}
	}
	return nil
}

// TelemetryAck acknowledges every record with sequence number <= Seq.
type TelemetryAck struct {
	V        int    `json:"v"`
	DeviceID string `json:"device_id"`
	Seq      uint64 `json:"seq"`
	// Epoch echoes the batch's epoch (see TelemetryBatch.Epoch).
	Epoch string `json:"epoch,omitempty"`
}

// Validate checks a decoded TelemetryAck.
func (a *TelemetryAck) Validate() error { return ValidateID("device_id", a.DeviceID) }

// Target names a signed artifact in the update repository.
type Target struct {
	// Name is the TUF target path, e.g. "models/resnet/1.2.0/model.tflite".
	Name   string `json:"name"`
	Length int64  `json:"length"`
	SHA256 string `json:"sha256"`
}

// Job is one unit of work for one device.
type Job struct {
	JobID     string  `json:"job_id"`
	Kind      JobKind `json:"kind"`
	RolloutID string  `json:"rollout_id,omitempty"`
	ModelID   string  `json:"model_id"`
	Version   string  `json:"version"`
	Target    *Target `json:"target,omitempty"`
	RepoURL   string  `json:"repo_url,omitempty"`
	// SplitPercent is the candidate's share for JobAB.
	SplitPercent int       `json:"split_percent,omitempty"`
	State        JobState  `json:"state"`
	Created      time.Time `json:"created"`
	// Deadline is when an unfinished job times out.
	Deadline time.Time `json:"deadline,omitzero"`
	// Signed is the server's signature over the job for this device (see
	// Command); agents run only the signed copy.
	Signed *SignedCommand `json:"signed,omitempty"`
}

// Validate checks a Job.
func (j *Job) Validate() error {
	if err := ValidateID("job_id", j.JobID); err != nil {
		return err
	}
	if !j.Kind.Valid() {
		return fmt.Errorf("job %s: kind %q: want install, shadow, ab, rollback or agent", j.JobID, j.Kind)
	}
	if err := j.validateKindFields(); err != nil { // jobs.go
		return err
	}
	if err := ValidateID("version", j.Version); err != nil {
		return fmt.Errorf("job %s: %w", j.JobID, err)
	}
	if !j.State.Valid() {
		return fmt.Errorf("job %s: state %q unknown", j.JobID, j.State)
	}
	if j.SplitPercent < 0 || j.SplitPercent > 100 {
		return fmt.Errorf("job %s: split_percent %d: want 0..100", j.JobID, j.SplitPercent)
	}
	if j.Target != nil && (j.Target.Name == "" || j.Target.Length < 0) {
		return fmt.Errorf("job %s: target needs a name and a non-negative length", j.JobID)
	}
	return nil
}

// JobNotify lists every pending (queued or in_progress) job of a device, in
// the order they should run. An empty list means nothing to do.
type JobNotify struct {
	V        int    `json:"v"`
	DeviceID string `json:"device_id"`
	Jobs     []Job  `json:"jobs"`
	// Link, when present, is a signed LinkSettings (SignLinkSettings): the
	// server sends it only in answer to a JobsGet that lists
	// FeatureLinkSettings (decoders are strict; older agents would refuse
	// the field), and the device acts on it only when it verifies with the
	// command key (VerifyLinkSettings).
	Link *SignedCommand `json:"link,omitempty"`
}

// Validate checks a decoded JobNotify.
func (n *JobNotify) Validate() error {
	if err := ValidateID("device_id", n.DeviceID); err != nil {
		return err
	}
	for i := range n.Jobs {
		if err := n.Jobs[i].Validate(); err != nil {
			return fmt.Errorf("jobs[%d]: %w", i, err)
		}
	}
	if n.Link != nil && (len(n.Link.Payload) == 0 || len(n.Link.Payload) > MaxLinkSettingsBytes) {
		return fmt.Errorf("link: payload is %d bytes, want 1..%d", len(n.Link.Payload), MaxLinkSettingsBytes)
	}
	return nil
}

// JobsGet asks the server to publish the device's JobNotify again.
type JobsGet struct {
	V        int    `json:"v"`
	DeviceID string `json:"device_id"`
	// Features lists the optional JobNotify fields the agent understands
	// (FeatureLinkSettings); at most MaxFeatureNames names of at most
	// MaxFeatureNameLen bytes. Unknown names are ignored.
	Features []string `json:"features,omitempty"`
}

// Validate checks a decoded JobsGet.
func (g *JobsGet) Validate() error {
	if err := ValidateID("device_id", g.DeviceID); err != nil {
		return err
	}
	return validateFeatures(g.Features)
}

// Has reports whether g lists feature.
func (g *JobsGet) Has(feature string) bool {
	for _, f := range g.Features {
		if f == feature {
			return true
		}
	}
	return false
}

// JobUpdate reports a job's new state from the device.
type JobUpdate struct {
	V        int       `json:"v"`
	DeviceID string    `json:"device_id"`
	JobID    string    `json:"job_id"`
	State    JobState  `json:"state"`
	Reason   string    `json:"reason,omitempty"`
	Progress int       `json:"progress,omitempty"`
	Time     time.Time `json:"time,omitzero"`
	// Serving is, in a final update, what the device serves of the job's
	// model after the job (active version, shadow, A/B candidate), read
	// from its model store: the fleet checks it instead of trusting the
	// state alone.
	Serving *ModelStatus `json:"serving,omitempty"`
}

// Validate checks a decoded JobUpdate.
func (u *JobUpdate) Validate() error {
	if err := ValidateID("device_id", u.DeviceID); err != nil {
		return err
	}
	if err := ValidateID("job_id", u.JobID); err != nil {
		return err
	}
	if !u.State.Valid() || u.State == JobQueued {
		return fmt.Errorf("state %q: want in_progress or a terminal state", u.State)
	}
	if u.Progress < 0 || u.Progress > 100 {
		return fmt.Errorf("progress %d: want 0..100", u.Progress)
	}
	if len(u.Reason) > 1024 {
		return fmt.Errorf("reason is %d bytes, want at most 1024", len(u.Reason))
	}
	if m := u.Serving; m != nil {
		if err := ValidateID("serving.id", m.ID); err != nil {
			return err
		}
		if m.CandidatePercent < 0 || m.CandidatePercent > 100 {
			return fmt.Errorf("serving.candidate_percent %d: want 0..100", m.CandidatePercent)
		}
		if len(m.Installed) > 64 {
			return fmt.Errorf("serving.installed lists %d versions, want at most 64", len(m.Installed))
		}
	}
	return nil
}

// EnrollRequest is POSTed by a device to /api/v1/enroll.
type EnrollRequest struct {
	V            int               `json:"v"`
	Token        string            `json:"token"`
	DeviceID     string            `json:"device_id"`
	AgentVersion string            `json:"agent_version,omitempty"`
	Hardware     Hardware          `json:"hardware"`
	Labels       map[string]string `json:"labels,omitempty"`
	Models       []ModelStatus     `json:"models,omitempty"`
	// CSR is the device's PEM certificate signing request (common name =
	// DeviceID); its private key never leaves the device.
	CSR string `json:"csr,omitempty"`
}

// MaxCSRBytes bounds EnrollRequest.CSR.
const MaxCSRBytes = 8 << 10

// Validate checks a decoded EnrollRequest. The token may be empty only
// when the device renews with its current client certificate.
func (r *EnrollRequest) Validate() error {
	if len(r.Token) > 256 {
		return fmt.Errorf("token is %d bytes, want at most 256", len(r.Token))
	}
	if err := ValidateID("device_id", r.DeviceID); err != nil {
		return err
	}
	if len(r.CSR) > MaxCSRBytes {
		return fmt.Errorf("csr is %d bytes, want at most %d", len(r.CSR), MaxCSRBytes)
	}
	if err := r.Hardware.Validate(); err != nil {
		return err
	}
	if len(r.Labels) > 64 {
		return fmt.Errorf("%d labels, want at most 64", len(r.Labels))
	}
	for k, v := range r.Labels {
		if err := ValidateID("label key", k); err != nil {
			return err
		}
		if len(v) > 128 {
			return fmt.Errorf("label %s: value is %d bytes, want at most 128", k, len(v))
		}
	}
	return nil
}

// EnrollResponse returns the device's credentials and where to connect.
type EnrollResponse struct {
	V         int    `json:"v"`
	DeviceID  string `json:"device_id"`
	Username  string `json:"username"`
	Password  string `json:"password,omitempty"`
	BrokerURL string `json:"broker_url"`
	// Certificate is the device's PEM client certificate issued from its CSR.
	Certificate string `json:"certificate,omitempty"`
	// CA is the fleet CA certificate (PEM) the device pins from now on.
	CA string `json:"ca,omitempty"`
	// CommandKey is the fleet's Ed25519 command-signing public key
	// (base64); the device acts only on commands it signed.
	CommandKey string `json:"command_key,omitempty"`
	// RepoURL is the base URL of the signed update repository.
	RepoURL string `json:"repo_url,omitempty"`
	// TUFRoot is the repository's trusted root.json, pinned at enrollment.
	TUFRoot json.RawMessage `json:"tuf_root,omitempty"`
	// SubscribeQoS, when present, is the QoS (0 or 1) at which the device
	// subscribes to its server → device topics (telemetry/ack,
	// jobs/notify, predict/request); absent means 1. A NATS cluster's MQTT
	// listener makes every QoS 1 subscription a JetStream consumer, whose
	// cost grows with the number of devices, so a fleet on NATS asks for
	// 0 (docs/mqtt.md, "Subscriptions"). The server sends it only to
	// agents that list FeatureSubscribeQoS in FeaturesHeader.
	SubscribeQoS *int `json:"subscribe_qos,omitempty"`
}

// FeaturesHeader is the HTTP request header of POST /api/v1/enroll in
// which an agent lists the optional EnrollResponse fields it understands
// (comma-separated names). Decoders are strict (an unknown field is an
// error), so the server adds an optional field only when the agent named
// it: older agents keep enrolling, newer agents work with older servers.
const FeaturesHeader = "Edgefleet-Features"

// FeatureSubscribeQoS names EnrollResponse.SubscribeQoS in FeaturesHeader.
const FeatureSubscribeQoS = "subscribe_qos"

// HasFeature reports whether a FeaturesHeader value lists feature.
func HasFeature(header, feature string) bool {
	for _, f := range strings.Split(header, ",") {
		if strings.TrimSpace(f) == feature {
			return true
		}
	}
	return false
}

// Validate checks a decoded EnrollResponse.
func (r *EnrollResponse) Validate() error {
	if err := ValidateID("device_id", r.DeviceID); err != nil {
		return err
	}
	if r.Username == "" || r.BrokerURL == "" {
		return fmt.Errorf("username and broker_url are required")
	}
	if r.Password == "" && r.Certificate == "" {
		return fmt.Errorf("a certificate or a password is required")
	}
	if r.SubscribeQoS != nil && *r.SubscribeQoS != 0 && *r.SubscribeQoS != 1 {
		return fmt.Errorf("subscribe_qos is %d, want 0 or 1", *r.SubscribeQoS)
	}
	return nil
}
