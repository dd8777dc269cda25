// Package registry is the fleet's record of devices, enrollment tokens,
// device groups (label selectors), model releases and device jobs, kept in a
// store.Store as JSON values.
package registry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/edgefleet/edgefleet/fleet/broker/mosquitto"
	"github.com/edgefleet/edgefleet/fleet/pki"
	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/wire"
)

// Buckets used in the store.
const (
	bucketDevices = "devices"
	bucketTokens  = "tokens"
	bucketGroups  = "groups"
	bucketModels  = "models"
	bucketJobs    = "jobs"
	bucketMeta    = "meta"
)

// ErrNotFound is wrapped when a device, token, group, model or job is missing.
var ErrNotFound = store.ErrNotFound

// ErrBadToken is returned by Enroll for an unknown, expired or used-up token.
var ErrBadToken = errors.New("enrollment token invalid, expired or used up")

// ErrDeviceExists is returned by Enroll when the device id is enrolled and
// the request does not carry the device's current certificate: taking over
// an enrolled id needs an operator's reset first.
var ErrDeviceExists = errors.New("device is already enrolled: re-enrollment needs the device's current certificate or an operator reset (fleetctl devices reset ID)")

// ErrBadCSR is wrapped when the certificate signing request is missing or invalid.
var ErrBadCSR = errors.New("bad certificate signing request")

// MinTokenLen is the shortest operator-chosen token secret (32 characters:
// 128 bits when hex, more otherwise).
const MinTokenLen = 32

// Device is one enrolled device.
type Device struct {
	ID           string             `json:"id"`
	AgentVersion string             `json:"agent_version,omitempty"`
	Hardware     wire.Hardware      `json:"hardware"`
	Models       []wire.ModelStatus `json:"models,omitempty"`
	Labels       map[string]string  `json:"labels,omitempty"`
	Presence     wire.Presence      `json:"presence"`
	LastSeen     time.Time          `json:"last_seen,omitzero"`
	EnrolledAt   time.Time          `json:"enrolled_at"`
	PasswordHash string             `json:"password_hash"`
	// CertSerial is the serial (hex) of the device's only valid client
	// certificate; any other certificate naming the device is revoked.
	CertSerial   string    `json:"cert_serial,omitempty"`
	CertNotAfter time.Time `json:"cert_not_after,omitzero"`
	// Reset is set by an operator's reset: the next enrollment of this id
	// needs only a valid token.
	Reset bool `json:"reset,omitempty"`
	// TelemetrySeq is the highest telemetry sequence number stored.
	TelemetrySeq uint64 `json:"telemetry_seq"`
	// TelemetryDropped totals the records the device reported dropping.
	TelemetryDropped uint64 `json:"telemetry_dropped,omitempty"`
}

// ActiveVersion returns the active version of model on the device, or "".
func (d *Device) ActiveVersion(model string) string {
	for _, m := range d.Models {
		if m.ID == model {
			return m.Active
		}
	}
	return ""
}

// Token is an enrollment token. The secret itself is never stored, only its
// SHA-256.
type Token struct {
	ID        string            `json:"id"`
	Labels    map[string]string `json:"labels,omitempty"`
	ExpiresAt time.Time         `json:"expires_at,omitzero"`
	MaxUses   int               `json:"max_uses"`
	Uses      int               `json:"uses"`
	Created   time.Time         `json:"created"`
}

// Model is one released version of a model.
type Model struct {
	ID           string      `json:"id"`
	Version      string      `json:"version"`
	Target       wire.Target `json:"target"`
	Ops          []string    `json:"ops,omitempty"`
	Quantization string      `json:"quantization,omitempty"`
	Notes        string      `json:"notes,omitempty"`
	Created      time.Time   `json:"created"`
}

// JobRecord is a job with the server's bookkeeping.
type JobRecord struct {
	wire.Job
	DeviceID string    `json:"device_id"`
	Reason   string    `json:"reason,omitempty"`
	Updated  time.Time `json:"updated"`
}

// Registry is the typed view over a store.Store.
type Registry struct {
	s   store.Store
	now func() time.Time

	ca           *pki.CA
	passwordAuth bool
	onRevoke     []func(deviceID string)
}

// SetCA makes Enroll issue device certificates from ca (devices then must
// send a CSR).
func (r *Registry) SetCA(ca *pki.CA) { r.ca = ca }

// SetPasswordAuth makes Enroll also issue MQTT passwords (for brokers that
// cannot use client certificates), and lets Authenticate accept them.
func (r *Registry) SetPasswordAuth(on bool) { r.passwordAuth = on }

// OnRevoke registers fn to run after a device's credentials are revoked
// (delete, reset, re-enrollment); the server disconnects its live session.
func (r *Registry) OnRevoke(fn func(deviceID string)) { r.onRevoke = append(r.onRevoke, fn) }

func (r *Registry) revoked(id string) {
	for _, fn := range r.onRevoke {
		fn(id)
	}
}

// New returns a registry over s; now supplies timestamps (time.Now if nil).
func New(s store.Store, now func() time.Time) *Registry {
	if now == nil {
		now = time.Now
	}
	return &Registry{s: s, now: now}
}

// Store returns the underlying store (the rollout controller shares it).
func (r *Registry) Store() store.Store { return r.s }

func getJSON(tx store.Tx, bucket, key string, v any) error {
	b, err := tx.Get(bucket, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s/%s: %w", bucket, key, err)
	}
	return nil
}

func putJSON(tx store.Tx, bucket, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", bucket, key, err)
	}
	return tx.Put(bucket, key, b)
}

func listJSON[T any](tx store.Tx, bucket, prefix string) ([]T, error) {
	var out []T
	err := tx.List(bucket, prefix, func(k string, b []byte) error {
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			return fmt.Errorf("decode %s/%s: %w", bucket, k, err)
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

func tokenKey(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// CreateToken stores a new enrollment token and returns its secret (shown
// once). maxUses 0 means unlimited; ttl 0 means no expiry.
func (r *Registry) CreateToken(ctx context.Context, labels map[string]string, maxUses int, ttl time.Duration) (string, Token, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", Token{}, fmt.Errorf("create token: %w", err)
	}
	secret := "et_" + hex.EncodeToString(b)
	t, err := r.putToken(ctx, secret, labels, maxUses, ttl)
	return secret, t, err
}

// AddToken stores an operator-chosen token secret (e.g. from a flag).
func (r *Registry) AddToken(ctx context.Context, secret string, labels map[string]string, maxUses int, ttl time.Duration) (Token, error) {
	if len(secret) < MinTokenLen {
		return Token{}, fmt.Errorf("add token: secret is %d characters, want at least %d (e.g. openssl rand -hex 16)", len(secret), MinTokenLen)
	}
	return r.putToken(ctx, secret, labels, maxUses, ttl)
}

func (r *Registry) putToken(ctx context.Context, secret string, labels map[string]string, maxUses int, ttl time.Duration) (Token, error) {
	t := Token{ID: tokenKey(secret)[:12], Labels: labels, MaxUses: maxUses, Created: r.now()}
	if ttl > 0 {
		t.ExpiresAt = t.Created.Add(ttl)
	}
	if err := r.s.Update(ctx, func(tx store.Tx) error { return putJSON(tx, bucketTokens, tokenKey(secret), t) }); err != nil {
		return Token{}, fmt.Errorf("store token: %w", err)
	}
	return t, nil
}

// Enrollment is the result of Enroll: the device, its new client
// certificate (PEM, when the registry has a CA) and its new MQTT password
// (when password auth is on).
type Enrollment struct {
	Device   Device
	CertPEM  []byte
	Password string
	// Renewed is set when the device re-enrolled with its current certificate.
	Renewed bool
}

// Proof is what the enrollment request's TLS connection proved: the device
// id and serial of a client certificate that chained to the fleet CA
// (empty when none was presented).
type Proof struct {
	DeviceID   string
	CertSerial string
}

// Enroll registers the device described by req. The token is checked first
// (before any CSR parsing, signing or hashing) and one use is consumed;
// its labels win over the request's. An already enrolled id is refused
// with ErrDeviceExists unless the request proves the device's current
// certificate (renewal: no token needed, labels kept) or an operator reset
// it. The CSR's common name must be the device id.
func (r *Registry) Enroll(ctx context.Context, req *wire.EnrollRequest, proof Proof) (Enrollment, error) {
	if req.DeviceID == ServerUser {
		return Enrollment{}, fmt.Errorf("enroll %s: the id is reserved for the fleet server", req.DeviceID)
	}
	var out Enrollment
	revoke := false
	err := r.s.Update(ctx, func(tx store.Tx) error {
		var dev Device
		exists := true
		if err := getJSON(tx, bucketDevices, req.DeviceID, &dev); errors.Is(err, store.ErrNotFound) {
			exists = false
		} else if err != nil {
			return err
		}
		renewal := exists && proof.DeviceID == req.DeviceID && proof.CertSerial != "" && proof.CertSerial == dev.CertSerial
		now := r.now()
		var tok Token
		if !renewal || req.Token != "" {
			key := tokenKey(req.Token)
			if err := getJSON(tx, bucketTokens, key, &tok); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return ErrBadToken
				}
				return err
			}
			if (!tok.ExpiresAt.IsZero() && now.After(tok.ExpiresAt)) || (tok.MaxUses > 0 && tok.Uses >= tok.MaxUses) {
				return ErrBadToken
			}
			if exists && !renewal && !dev.Reset {
				return ErrDeviceExists
			}
			tok.Uses++
			if err := putJSON(tx, bucketTokens, key, tok); err != nil {
				return err
			}
		}
		if r.ca == nil && !r.passwordAuth {
			return errors.New("server issues neither certificates nor passwords")
		}
		if r.ca != nil {
			if req.CSR == "" {
				if !r.passwordAuth {
					return fmt.Errorf("%w: the request has no csr", ErrBadCSR)
				}
			} else {
				csr, err := pki.ParseCSR([]byte(req.CSR), req.DeviceID)
				if err != nil {
					return fmt.Errorf("%w: %v", ErrBadCSR, err)
				}
				cert, certPEM, err := r.ca.SignDevice(csr, req.DeviceID)
				if err != nil {
					return err
				}
				out.CertPEM = certPEM
				dev.CertSerial, dev.CertNotAfter = pki.SerialString(cert), cert.NotAfter
			}
		}
		if out.CertPEM == nil {
			dev.CertSerial, dev.CertNotAfter = "", time.Time{}
		}
		dev.PasswordHash = ""
		if r.passwordAuth {
			pw, err := mosquitto.NewPassword()
			if err != nil {
				return err
			}
			if dev.PasswordHash, err = mosquitto.HashPassword(pw); err != nil {
				return err
			}
			out.Password = pw
		}
		revoke = exists
		if !exists {
			dev = Device{ID: req.DeviceID, EnrolledAt: now, Presence: wire.Offline, CertSerial: dev.CertSerial,
				CertNotAfter: dev.CertNotAfter, PasswordHash: dev.PasswordHash}
		}
		dev.AgentVersion = req.AgentVersion
		dev.Hardware = req.Hardware
		dev.Models = req.Models
		if !renewal {
			dev.EnrolledAt = now
			dev.Labels = map[string]string{}
			for k, v := range req.Labels {
				dev.Labels[k] = v
			}
			for k, v := range tok.Labels { // the token's labels are authoritative
				dev.Labels[k] = v
			}
		}
		dev.Reset = false
		out.Renewed = renewal
		out.Device = dev
		return putJSON(tx, bucketDevices, dev.ID, dev)
	})
	if err != nil {
		return Enrollment{}, fmt.Errorf("enroll %s: %w", req.DeviceID, err)
	}
	if revoke {
		r.revoked(req.DeviceID) // the previous credential's session ends
	}
	return out, nil
}

// ResetDevice revokes a device's credentials (its live session is cut)
// and allows the next enrollment of its id with just a valid token.
func (r *Registry) ResetDevice(ctx context.Context, id string) (Device, error) {
	var d Device
	err := r.s.Update(ctx, func(tx store.Tx) error {
		if err := getJSON(tx, bucketDevices, id, &d); err != nil {
			return err
		}
		d.Reset, d.CertSerial, d.CertNotAfter, d.PasswordHash = true, "", time.Time{}, ""
		d.Presence = wire.Offline
		return putJSON(tx, bucketDevices, id, d)
	})
	if err != nil {
		return Device{}, fmt.Errorf("reset device %s: %w", id, err)
	}
	r.revoked(id)
	return d, nil
}

// Device returns one device.
func (r *Registry) Device(ctx context.Context, id string) (Device, error) {
	var d Device
	err := r.s.View(ctx, func(tx store.Tx) error { return getJSON(tx, bucketDevices, id, &d) })
	if err != nil {
		return Device{}, fmt.Errorf("device %s: %w", id, err)
	}
	return d, nil
}

// Devices lists devices matching the selector (all when empty), by id.
func (r *Registry) Devices(ctx context.Context, sel Selector) ([]Device, error) {
	var out []Device
	err := r.s.View(ctx, func(tx store.Tx) error {
		all, err := listJSON[Device](tx, bucketDevices, "")
		for _, d := range all {
			if sel.Matches(d.Labels) {
				out = append(out, d)
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	return out, nil
}

// UpdateDevice applies fn to a device atomically.
func (r *Registry) UpdateDevice(ctx context.Context, id string, fn func(*Device) error) error {
	err := r.s.Update(ctx, func(tx store.Tx) error {
		var d Device
		if err := getJSON(tx, bucketDevices, id, &d); err != nil {
			return err
		}
		if err := fn(&d); err != nil {
			return err
		}
		return putJSON(tx, bucketDevices, id, d)
	})
	if err != nil {
		return fmt.Errorf("update device %s: %w", id, err)
	}
	return nil
}

// DeleteDevice removes a device and its jobs; its credentials stop working
// and its live session is cut.
func (r *Registry) DeleteDevice(ctx context.Context, id string) error {
	err := r.s.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.Get(bucketDevices, id); err != nil {
			return fmt.Errorf("delete device %s: %w", id, err)
		}
		var keys []string
		_ = tx.List(bucketJobs, id+"/", func(k string, _ []byte) error { keys = append(keys, k); return nil })
		for _, k := range keys {
			if err := tx.Delete(bucketJobs, k); err != nil {
				return err
			}
		}
		return tx.Delete(bucketDevices, id)
	})
	if err == nil {
		r.revoked(id)
	}
	return err
}

// ServerUser is the MQTT username of the fleet server's own client.
const ServerUser = "fleet-server"

// VerifyCurrentCert returns the proof for a client certificate that chains
// to the fleet CA and is the device's current one (for renewal).
func (r *Registry) VerifyCurrentCert(ctx context.Context, cert *x509.Certificate) (Proof, bool) {
	if r.ca == nil || cert == nil {
		return Proof{}, false
	}
	id, err := r.ca.VerifyDevice(cert)
	if err != nil {
		return Proof{}, false
	}
	return Proof{DeviceID: id, CertSerial: pki.SerialString(cert)}, true
}

// PutGroup stores a named label selector.
func (r *Registry) PutGroup(ctx context.Context, name string, sel Selector) error {
	if err := wire.ValidateID("group name", name); err != nil {
		return err
	}
	return r.s.Update(ctx, func(tx store.Tx) error { return tx.Put(bucketGroups, name, []byte(sel.String())) })
}

// Groups returns every group's selector by name.
func (r *Registry) Groups(ctx context.Context) (map[string]Selector, error) {
	out := map[string]Selector{}
	err := r.s.View(ctx, func(tx store.Tx) error {
		return tx.List(bucketGroups, "", func(k string, v []byte) error {
			s, err := ParseSelector(string(v))
			out[k] = s
			return err
		})
	})
	return out, err
}

func modelKey(id, version string) string { return id + "/" + version }

// PutModel stores a released model version; an existing version is an error.
func (r *Registry) PutModel(ctx context.Context, m Model) error {
	if err := wire.ValidateID("model id", m.ID); err != nil {
		return err
	}
	if err := wire.ValidateID("model version", m.Version); err != nil {
		return err
	}
	if m.Created.IsZero() {
		m.Created = r.now()
	}
	return r.s.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.Get(bucketModels, modelKey(m.ID, m.Version)); err == nil {
			return fmt.Errorf("model %s version %s already exists", m.ID, m.Version)
		}
		return putJSON(tx, bucketModels, modelKey(m.ID, m.Version), m)
	})
}

// Model returns one model version.
func (r *Registry) Model(ctx context.Context, id, version string) (Model, error) {
	var m Model
	err := r.s.View(ctx, func(tx store.Tx) error { return getJSON(tx, bucketModels, modelKey(id, version), &m) })
	if err != nil {
		return Model{}, fmt.Errorf("model %s@%s: %w", id, version, err)
	}
	return m, nil
}

// Models lists model versions, all or of one id, ordered by id then creation.
func (r *Registry) Models(ctx context.Context, id string) ([]Model, error) {
	var out []Model
	prefix := ""
	if id != "" {
		prefix = id + "/"
	}
	err := r.s.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = listJSON[Model](tx, bucketModels, prefix)
		return err
	})
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].Created.Before(out[j].Created)
	})
	return out, err
}

// DeleteModel removes a model version from the registry.
func (r *Registry) DeleteModel(ctx context.Context, id, version string) error {
	return r.s.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.Get(bucketModels, modelKey(id, version)); err != nil {
			return fmt.Errorf("delete model %s@%s: %w", id, version, err)
		}
		return tx.Delete(bucketModels, modelKey(id, version))
	})
}

// AddJob stores a queued job for the device. A job without an id gets a
// new sortable one; a job whose id already exists is left as it is and
// returned (adding is idempotent, so a controller may retry).
func (r *Registry) AddJob(ctx context.Context, deviceID string, j wire.Job) (JobRecord, error) {
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

// UpdateJob moves a job to state with a reason, enforcing the job state
// machine. Repeating the current terminal state is a no-op (duplicate
// delivery), reported with changed=false.
func (r *Registry) UpdateJob(ctx context.Context, deviceID, jobID string, state wire.JobState, reason string) (rec JobRecord, changed bool, err error) {
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

// Jobs lists a device's jobs (all devices when deviceID is ""), oldest first.
func (r *Registry) Jobs(ctx context.Context, deviceID string) ([]JobRecord, error) {
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

// TimeOutJobs moves every unfinished job whose deadline has passed to
// timed_out and returns them.
func (r *Registry) TimeOutJobs(ctx context.Context) ([]JobRecord, error) {
	now := r.now()
	overdue := func(j *JobRecord) bool {
		return !j.State.Terminal() && !j.Deadline.IsZero() && !now.Before(j.Deadline)
	}
	// Find overdue jobs in a read transaction: this runs on every rollout
	// tick, and scanning every job inside a write transaction held the
	// store's single writer (telemetry, job updates) for the whole scan.
	var due []string
	err := r.s.View(ctx, func(tx store.Tx) error {
		all, err := listJSON[JobRecord](tx, bucketJobs, "")
		if err != nil {
			return err
		}
		for i := range all {
			if overdue(&all[i]) {
				due = append(due, all[i].DeviceID+"/"+all[i].JobID)
			}
		}
		return nil
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
			if !overdue(&j) {
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

// PendingJobs lists a device's queued and in-progress jobs, oldest first.
func (r *Registry) PendingJobs(ctx context.Context, deviceID string) ([]JobRecord, error) {
	all, err := r.Jobs(ctx, deviceID)
	var out []JobRecord
	for _, j := range all {
		if !j.State.Terminal() {
			out = append(out, j)
		}
	}
	return out, err
}

// Selector is a label selector: comma-separated terms "k=v", "k!=v", "k"
// (label present) and "!k" (label absent), all of which must hold.
type Selector struct{ terms []term }

type term struct {
	key, value string
	op         string // "=", "!=", "exists", "!exists"
}

// ParseSelector parses a selector; "" selects every device.
func ParseSelector(s string) (Selector, error) {
	var sel Selector
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		var t term
		switch {
		case strings.Contains(part, "!="):
			k, v, _ := strings.Cut(part, "!=")
			t = term{strings.TrimSpace(k), strings.TrimSpace(v), "!="}
		case strings.Contains(part, "="):
			k, v, _ := strings.Cut(part, "=")
			t = term{strings.TrimSpace(strings.TrimSuffix(k, "=")), strings.TrimSpace(strings.TrimPrefix(v, "=")), "="}
		case strings.HasPrefix(part, "!"):
			t = term{key: strings.TrimSpace(part[1:]), op: "!exists"}
		default:
			t = term{key: part, op: "exists"}
		}
		if err := wire.ValidateID("selector label key", t.key); err != nil {
			return Selector{}, fmt.Errorf("selector %q: term %q: %w", s, part, err)
		}
		sel.terms = append(sel.terms, t)
	}
	return sel, nil
}

// Matches reports whether labels satisfy every term.
func (s Selector) Matches(labels map[string]string) bool {
	for _, t := range s.terms {
		v, ok := labels[t.key]
		switch t.op {
		case "=":
			if !ok || v != t.value {
				return false
			}
		case "!=":
			if ok && v == t.value {
				return false
			}
		case "exists":
			if !ok {
				return false
			}
		case "!exists":
			if ok {
				return false
			}
		}
	}
	return true
}

// String renders the selector in the syntax ParseSelector reads.
func (s Selector) String() string {
	parts := make([]string, len(s.terms))
	for i, t := range s.terms {
		switch t.op {
		case "exists":
			parts[i] = t.key
		case "!exists":
			parts[i] = "!" + t.key
		default:
			parts[i] = t.key + t.op + t.value
		}
	}
	return strings.Join(parts, ",")
}
