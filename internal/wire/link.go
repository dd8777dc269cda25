package wire

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// FeatureLinkSettings names JobNotify.Link in JobsGet.Features: an agent
// that lists it understands link settings in the JobNotify that answers.
const FeatureLinkSettings = "link_settings"

// Bounds on JobsGet.Features (they come from devices).
const (
	MaxFeatureNames   = 16
	MaxFeatureNameLen = 32
)

// LinkSettings is the signed part of JobNotify.Link: how the device's
// fleet link should behave, bound to one device and a validity window like
// a job's Command (same key, same checks). A device enrolled before its
// fleet moved to a NATS cluster learns this way, at its next connect, that
// it should subscribe at QoS 0 — without enrolling again.
type LinkSettings struct {
	V        int    `json:"v"`
	DeviceID string `json:"device_id"`
	// SubscribeQoS is the QoS (0 or 1) of the device's subscriptions to its
	// server → device topics, as EnrollResponse.SubscribeQoS (always set).
	SubscribeQoS int `json:"subscribe_qos"`
	// IssuedAt and Expires bound when a device accepts the signature.
	IssuedAt time.Time `json:"issued_at"`
	Expires  time.Time `json:"expires"`
	// Nonce makes every signature unique.
	Nonce string `json:"nonce"`
}

// MaxLinkSettingsBytes bounds a signed LinkSettings payload.
const MaxLinkSettingsBytes = 1 << 10

// SignLinkSettings signs ls with key. The envelope is a SignedCommand
// whose payload is the JSON of ls: strict decoding keeps the two apart (a
// job's Command has fields a LinkSettings has not, and the reverse), so
// neither signature can be replayed as the other.
func SignLinkSettings(key ed25519.PrivateKey, ls LinkSettings) (*SignedCommand, error) {
	b, err := json.Marshal(ls)
	if err != nil {
		return nil, fmt.Errorf("sign link settings: %w", err)
	}
	return &SignedCommand{Payload: b, Sig: ed25519.Sign(key, b)}, nil
}

// VerifyLinkSettings checks sc's signature with pub, strictly decodes the
// payload and checks that it names deviceID, is valid at now and carries a
// QoS of 0 or 1; it returns the signed settings. Errors wrap ErrCommand.
func VerifyLinkSettings(pub ed25519.PublicKey, sc *SignedCommand, deviceID string, now time.Time) (*LinkSettings, error) {
	if sc == nil || len(sc.Payload) == 0 {
		return nil, fmt.Errorf("%w: link settings unsigned", ErrCommand)
	}
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: no command key enrolled (%d-byte key)", ErrCommand, len(pub))
	}
	if len(sc.Payload) > MaxLinkSettingsBytes {
		return nil, fmt.Errorf("%w: link settings payload is %d bytes, want at most %d", ErrCommand, len(sc.Payload), MaxLinkSettingsBytes)
	}
	if len(sc.Sig) != ed25519.SignatureSize || !ed25519.Verify(pub, sc.Payload, sc.Sig) {
		return nil, fmt.Errorf("%w: link settings: bad signature", ErrCommand)
	}
	var ls LinkSettings
	d := json.NewDecoder(bytes.NewReader(sc.Payload))
	d.DisallowUnknownFields()
	if err := d.Decode(&ls); err != nil {
		return nil, fmt.Errorf("%w: link settings payload: %v", ErrCommand, describeJSON(err))
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the link settings", ErrCommand)
	}
	if ls.V != Version {
		return nil, fmt.Errorf("%w: link settings \"v\" is %d, want %d", ErrCommand, ls.V, Version)
	}
	if ls.DeviceID != deviceID {
		return nil, fmt.Errorf("%w: link settings signed for device %q, this is %q", ErrCommand, ls.DeviceID, deviceID)
	}
	if ls.SubscribeQoS != 0 && ls.SubscribeQoS != 1 {
		return nil, fmt.Errorf("%w: link settings subscribe_qos is %d, want 0 or 1", ErrCommand, ls.SubscribeQoS)
	}
	if now.Before(ls.IssuedAt.Add(-maxClockSkew)) {
		return nil, fmt.Errorf("%w: link settings issued at %s, in the future", ErrCommand, ls.IssuedAt.Format(time.RFC3339))
	}
	if !now.Before(ls.Expires) {
		return nil, fmt.Errorf("%w: link settings expired at %s", ErrCommand, ls.Expires.Format(time.RFC3339))
	}
	return &ls, nil
}

// validateFeatures bounds a device's feature list.
func validateFeatures(fs []string) error {
	if len(fs) > MaxFeatureNames {
		return fmt.Errorf("features has %d entries, want at most %d", len(fs), MaxFeatureNames)
	}
	for i, f := range fs {
		if f == "" || len(f) > MaxFeatureNameLen {
			return fmt.Errorf("features[%d] is %d bytes, want 1..%d", i, len(f), MaxFeatureNameLen)
		}
	}
	return nil
}
