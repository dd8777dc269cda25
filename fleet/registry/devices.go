package registry

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/edgefleet/edgefleet/fleet/broker/mosquitto"
	"github.com/edgefleet/edgefleet/fleet/pki"
	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// Devices are the enrolled devices: enrollment (which consumes a token),
// credentials and their revocation, and the records the server updates
// from the devices' messages.
type Devices struct {
	base
	ca           *pki.CA
	passwordAuth bool
	onRevoke     []func(deviceID string)
	listed       atomic.Int64 // devices in the last full List (its capacity hint)
	briefs       rowCache[DeviceBrief]
}

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

// ServerUser is the MQTT username of the fleet server's own client.
const ServerUser = "fleet-server"

// SetCA makes Enroll issue device certificates from ca (devices then must
// send a CSR).
func (r *Devices) SetCA(ca *pki.CA) { r.ca = ca }

// SetPasswordAuth makes Enroll also issue MQTT passwords (for brokers that
// cannot use client certificates), and lets Authenticate accept them.
func (r *Devices) SetPasswordAuth(on bool) { r.passwordAuth = on }

// OnRevoke registers fn to run after a device's credentials are revoked
// (delete, reset, re-enrollment); the server disconnects its live session.
func (r *Devices) OnRevoke(fn func(deviceID string)) { r.onRevoke = append(r.onRevoke, fn) }

func (r *Devices) revoked(id string) {
	for _, fn := range r.onRevoke {
		fn(id)
	}
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
func (r *Devices) Enroll(ctx context.Context, req *wire.EnrollRequest, proof Proof) (Enrollment, error) {
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

// Reset revokes a device's credentials (its live session is cut)
// and allows the next enrollment of its id with just a valid token.
func (r *Devices) Reset(ctx context.Context, id string) (Device, error) {
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

// Get returns one device.
func (r *Devices) Get(ctx context.Context, id string) (Device, error) {
	var d Device
	err := r.s.View(ctx, func(tx store.Tx) error { return getJSON(tx, bucketDevices, id, &d) })
	if err != nil {
		return Device{}, fmt.Errorf("device %s: %w", id, err)
	}
	return d, nil
}

// List lists devices matching the selector (all when empty), by id.
// Records are decoded straight into the result (one slice, sized from
// the previous full listing): the rollout controller lists every device
// twice a second during a rollout.
func (r *Devices) List(ctx context.Context, sel Selector) ([]Device, error) {
	var out []Device
	all := len(sel.terms) == 0
	err := r.s.View(ctx, func(tx store.Tx) error {
		if all {
			out = make([]Device, 0, r.listed.Load())
		}
		return tx.List(bucketDevices, "", func(k string, b []byte) error {
			out = append(out, Device{})
			d := &out[len(out)-1]
			if err := json.Unmarshal(b, d); err != nil {
				return fmt.Errorf("decode %s/%s: %w", bucketDevices, k, err)
			}
			if !sel.Matches(d.Labels) {
				out = out[:len(out)-1]
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	if all {
		r.listed.Store(int64(len(out)))
	}
	return out, nil
}

// DeviceCounts is how many devices are enrolled and how many of them are
// online.
type DeviceCounts struct {
	Enrolled, Online int
}

// presenceView is the part of a device record that Counts and EachPresence
// decode: the rest of the record (hardware, models, labels, credentials)
// is skipped, not allocated.
type presenceView struct {
	Presence wire.Presence `json:"presence"`
	LastSeen time.Time     `json:"last_seen,omitzero"`
}

// Counts counts the enrolled and the online devices, decoding only each
// record's presence (a full List of 10,000 devices allocates about 50 MB).
func (r *Devices) Counts(ctx context.Context) (DeviceCounts, error) {
	var c DeviceCounts
	err := r.EachPresence(ctx, func(_ string, p wire.Presence, _ time.Time) {
		c.Enrolled++
		if p == wire.Online {
			c.Online++
		}
	})
	return c, err
}

// EachPresence calls fn with every device's id, presence and last-seen
// time, by id, decoding only those fields of each record. fn runs inside
// the store's read transaction: keep it short, and do not call the
// registry from it.
func (r *Devices) EachPresence(ctx context.Context, fn func(id string, p wire.Presence, lastSeen time.Time)) error {
	err := r.s.View(ctx, func(tx store.Tx) error {
		var v presenceView // one for all records (decoding into it allocates nothing more)
		return tx.List(bucketDevices, "", func(k string, b []byte) error {
			v = presenceView{}
			if err := json.Unmarshal(b, &v); err != nil {
				return fmt.Errorf("decode %s/%s: %w", bucketDevices, k, err)
			}
			fn(k, v.Presence, v.LastSeen)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("device presence: %w", err)
	}
	return nil
}

// Update applies fn to a device atomically.
func (r *Devices) Update(ctx context.Context, id string, fn func(*Device) error) error {
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

// Delete removes a device and its jobs; its credentials stop working
// and its live session is cut.
func (r *Devices) Delete(ctx context.Context, id string) error {
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

// VerifyCurrentCert returns the proof for a client certificate that chains
// to the fleet CA and is the device's current one (for renewal).
func (r *Devices) VerifyCurrentCert(ctx context.Context, cert *x509.Certificate) (Proof, bool) {
	if r.ca == nil || cert == nil {
		return Proof{}, false
	}
	id, err := r.ca.VerifyDevice(cert)
	if err != nil {
		return Proof{}, false
	}
	return Proof{DeviceID: id, CertSerial: pki.SerialString(cert)}, true
}
