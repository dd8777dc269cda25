package wire

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Command is the signed part of a job: everything a device acts on, bound
// to one device, one job and a validity window. The fleet server signs the
// exact JSON bytes (SignedCommand.Payload) with its Ed25519 command key;
// the device verifies them with the public key it received over the pinned
// TLS channel at enrollment and then runs the job described here, never
// the unsigned copy next to it.
type Command struct {
	V        int     `json:"v"`
	DeviceID string  `json:"device_id"`
	JobID    string  `json:"job_id"`
	Kind     JobKind `json:"kind"`
	ModelID  string  `json:"model_id"`
	Version  string  `json:"version"`
	Target   *Target `json:"target,omitempty"`
	// SplitPercent is the candidate's share for JobAB.
	SplitPercent int `json:"split_percent,omitempty"`
	// Deadline is the job's own deadline, if any.
	Deadline time.Time `json:"deadline,omitzero"`
	// IssuedAt and Expires bound when a device accepts the signature.
	IssuedAt time.Time `json:"issued_at"`
	Expires  time.Time `json:"expires"`
	// Nonce makes every signature unique.
	Nonce string `json:"nonce"`
}

// SignedCommand carries a Command's JSON bytes and their signature.
type SignedCommand struct {
	// Payload is the JSON encoding of a Command, exactly as signed.
	Payload []byte `json:"payload"`
	// Sig is the Ed25519 signature of Payload.
	Sig []byte `json:"sig"`
}

// MaxCommandBytes bounds a signed command payload.
const MaxCommandBytes = 16 << 10

// CommandTTL is how long a command signature is valid by default.
const CommandTTL = time.Hour

// maxClockSkew is how far in the future a command may have been issued.
const maxClockSkew = 5 * time.Minute

// ErrCommand is wrapped by every VerifyCommand failure.
var ErrCommand = errors.New("command refused")

// Job returns the job the command describes, in state queued.
func (c *Command) Job() Job {
	return Job{JobID: c.JobID, Kind: c.Kind, ModelID: c.ModelID, Version: c.Version, Target: c.Target,
		SplitPercent: c.SplitPercent, State: JobQueued, Created: c.IssuedAt, Deadline: c.Deadline}
}

// CommandFor builds the command for job j on deviceID, valid from now for ttl.
func CommandFor(deviceID string, j Job, now time.Time, ttl time.Duration, nonce string) Command {
	return Command{V: Version, DeviceID: deviceID, JobID: j.JobID, Kind: j.Kind, ModelID: j.ModelID, Version: j.Version,
		Target: j.Target, SplitPercent: j.SplitPercent, Deadline: j.Deadline, IssuedAt: now.UTC(), Expires: now.Add(ttl).UTC(), Nonce: nonce}
}

// SignCommand signs c with key.
func SignCommand(key ed25519.PrivateKey, c Command) (*SignedCommand, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("sign command: %w", err)
	}
	return &SignedCommand{Payload: b, Sig: ed25519.Sign(key, b)}, nil
}

// VerifyCommand checks sc's signature with pub and that it names deviceID,
// is a well-formed job and is valid at now; it returns the signed command.
func VerifyCommand(pub ed25519.PublicKey, sc *SignedCommand, deviceID string, now time.Time) (*Command, error) {
	if sc == nil || len(sc.Payload) == 0 {
		return nil, fmt.Errorf("%w: unsigned", ErrCommand)
	}
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: no command key enrolled (%d-byte key)", ErrCommand, len(pub))
	}
	if len(sc.Payload) > MaxCommandBytes {
		return nil, fmt.Errorf("%w: payload is %d bytes, want at most %d", ErrCommand, len(sc.Payload), MaxCommandBytes)
	}
	if len(sc.Sig) != ed25519.SignatureSize || !ed25519.Verify(pub, sc.Payload, sc.Sig) {
		return nil, fmt.Errorf("%w: bad signature", ErrCommand)
	}
	var c Command
	d := json.NewDecoder(bytes.NewReader(sc.Payload))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrCommand, describeJSON(err))
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the payload", ErrCommand)
	}
	if c.V != Version {
		return nil, fmt.Errorf("%w: \"v\" is %d, want %d", ErrCommand, c.V, Version)
	}
	if c.DeviceID != deviceID {
		return nil, fmt.Errorf("%w: signed for device %q, this is %q", ErrCommand, c.DeviceID, deviceID)
	}
	if now.Before(c.IssuedAt.Add(-maxClockSkew)) {
		return nil, fmt.Errorf("%w: issued at %s, in the future", ErrCommand, c.IssuedAt.Format(time.RFC3339))
	}
	if !now.Before(c.Expires) {
		return nil, fmt.Errorf("%w: expired at %s", ErrCommand, c.Expires.Format(time.RFC3339))
	}
	j := c.Job()
	if err := j.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCommand, err)
	}
	return &c, nil
}
