package brokerauth_test

import (
	"context"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/broker/mosquitto"
	"github.com/edgefleet/edgefleet/fleet/brokerauth"
	"github.com/edgefleet/edgefleet/fleet/pki"
	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// TestAuth: the server account by its hash, a device by its issued
// password and its current certificate; wrong passwords, a certificate from
// another CA naming the device and unknown users are refused, and the
// Mosquitto accounts are the devices that have a password.
func TestAuth(t *testing.T) {
	ctx := context.Background()
	reg := registry.New(store.NewMem(), nil)
	ca, err := pki.NewCA("fleet", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	reg.Devices.SetCA(ca)
	reg.Devices.SetPasswordAuth(true)
	tok, _, err := reg.Tokens.Create(ctx, nil, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _, csr, err := pki.NewDeviceKey("d1")
	if err != nil {
		t.Fatal(err)
	}
	e, err := reg.Devices.Enroll(ctx, &wire.EnrollRequest{V: 1, Token: tok, DeviceID: "d1", CSR: string(csr)}, registry.Proof{})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.ParseCertPEM(e.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := mosquitto.HashPassword("server-secret")
	if err != nil {
		t.Fatal(err)
	}
	a := brokerauth.New(reg.Devices, ca, hash)

	passwords := []struct {
		user, pw   string
		ok, server bool
	}{
		{registry.ServerUser, "server-secret", true, true},
		{registry.ServerUser, "wrong", false, false},
		{"d1", e.Password, true, false},
		{"d1", "wrong", false, false},
		{"nobody", e.Password, false, false},
	}
	for _, tt := range passwords {
		p, ok := a.Authenticate(tt.user, tt.pw)
		if ok != tt.ok || (ok && (p.Server != tt.server || (!tt.server && p.DeviceID != tt.user))) {
			t.Errorf("Authenticate(%s, %q) = %+v, %v; want ok=%v server=%v", tt.user, tt.pw, p, ok, tt.ok, tt.server)
		}
	}

	if p, ok := a.AuthenticateCert(cert); !ok || p.DeviceID != "d1" {
		t.Fatalf("current certificate refused: %+v %v", p, ok)
	}
	other, err := pki.NewCA("other", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, _, otherCSR, _ := pki.NewDeviceKey("d1")
	parsed, err := pki.ParseCSR(otherCSR, "d1")
	if err != nil {
		t.Fatal(err)
	}
	forged, _, err := other.SignDevice(parsed, "d1")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a.AuthenticateCert(forged); ok {
		t.Fatal("certificate of another CA accepted")
	}

	accts, err := a.Accounts(ctx)
	if err != nil || len(accts) != 1 || accts[0].Username != "d1" || !mosquitto.VerifyPassword(accts[0].Hash, e.Password) {
		t.Fatalf("Accounts = %+v, %v", accts, err)
	}
}
