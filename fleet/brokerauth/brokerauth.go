// Package brokerauth decides who may use the fleet's MQTT broker: the fleet
// server's own account and the enrolled devices, by password or by their
// current client certificate, checked against the registry's device records
// at every connect. It is the one place where the registry meets the broker,
// so neither imports the other.
package brokerauth

import (
	"context"
	"crypto/x509"

	"github.com/edgefleet/edgefleet/fleet/broker"
	"github.com/edgefleet/edgefleet/fleet/broker/mosquitto"
	"github.com/edgefleet/edgefleet/fleet/pki"
	"github.com/edgefleet/edgefleet/fleet/registry"
)

// Auth is a broker.Authenticator and broker.CertAuthenticator over the
// device records plus the server account. A device certificate is accepted
// only if its serial is the one the registry issued last (every other
// certificate for the id, and every certificate of a deleted or reset
// device, is revoked).
type Auth struct {
	devices    *registry.Devices
	ca         *pki.CA
	serverHash string
}

// New returns the authenticator over devices. ca, if non-nil, must have
// issued a device certificate; serverHash is the "$7$" hash of the server
// account's (registry.ServerUser) password ("" accepts no password).
func New(devices *registry.Devices, ca *pki.CA, serverHash string) *Auth {
	return &Auth{devices: devices, ca: ca, serverHash: serverHash}
}

var (
	_ broker.Authenticator     = (*Auth)(nil)
	_ broker.CertAuthenticator = (*Auth)(nil)
)

// Authenticate checks a username and password (broker.Authenticator).
func (a *Auth) Authenticate(user, pw string) (broker.Principal, bool) {
	if user == registry.ServerUser {
		return broker.Principal{Server: true}, mosquitto.VerifyPassword(a.serverHash, pw)
	}
	d, err := a.devices.Get(context.Background(), user)
	if err != nil || d.PasswordHash == "" || !mosquitto.VerifyPassword(d.PasswordHash, pw) {
		return broker.Principal{}, false
	}
	return broker.Principal{DeviceID: d.ID}, true
}

// AuthenticateCert checks a client certificate (broker.CertAuthenticator).
func (a *Auth) AuthenticateCert(cert *x509.Certificate) (broker.Principal, bool) {
	id := cert.Subject.CommonName
	if a.ca != nil {
		if _, err := a.ca.VerifyDevice(cert); err != nil {
			return broker.Principal{}, false
		}
	}
	d, err := a.devices.Get(context.Background(), id)
	if err != nil || d.CertSerial == "" || d.CertSerial != pki.SerialString(cert) {
		return broker.Principal{}, false
	}
	return broker.Principal{DeviceID: d.ID}, true
}

// Accounts returns every device that has an MQTT password as a Mosquitto
// account (for mosquitto.Generate).
func (a *Auth) Accounts(ctx context.Context) ([]mosquitto.Account, error) {
	ds, err := a.devices.List(ctx, registry.Selector{})
	if err != nil {
		return nil, err
	}
	out := make([]mosquitto.Account, 0, len(ds))
	for _, d := range ds {
		if d.PasswordHash != "" {
			out = append(out, mosquitto.Account{Username: d.ID, Hash: d.PasswordHash})
		}
	}
	return out, nil
}
