package registry_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/brokerauth"
	"github.com/edgefleet/edgefleet/fleet/pki"
	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/fleet/store/boltstore"
	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/internal/wire"
)

func stores(t *testing.T) map[string]store.Store {
	b, err := boltstore.Open(filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return map[string]store.Store{"mem": store.NewMem(), "bolt": b}
}

func TestEnrollAndAuth(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			r := registry.New(s, clock.Func(func() time.Time { return now }))
			r.Devices.SetPasswordAuth(true)
			tok, _, err := r.Tokens.Create(ctx, map[string]string{"site": "lab"}, 3, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			req := &wire.EnrollRequest{V: 1, Token: tok, DeviceID: "d1", Hardware: wire.Hardware{Arch: "arm64"},
				Labels: map[string]string{"ring": "canary", "site": "attacker-chosen"}}
			e, err := r.Devices.Enroll(ctx, req, registry.Proof{})
			if err != nil {
				t.Fatal(err)
			}
			// The token's labels win over the request's.
			if e.Device.Labels["site"] != "lab" || e.Device.Labels["ring"] != "canary" {
				t.Fatalf("labels = %v", e.Device.Labels)
			}
			auth := brokerauth.New(r.Devices, nil, "")
			if p, ok := auth.Authenticate("d1", e.Password); !ok || p.DeviceID != "d1" {
				t.Fatalf("issued password rejected")
			}
			if _, ok := auth.Authenticate("d1", "nope"); ok {
				t.Fatal("wrong password accepted")
			}
			if _, ok := auth.Authenticate(registry.ServerUser, ""); ok {
				t.Fatal("server with empty hash accepted")
			}
			// Re-enrolling an enrolled id with just a token is a takeover: refused.
			if _, err := r.Devices.Enroll(ctx, req, registry.Proof{}); !errors.Is(err, registry.ErrDeviceExists) {
				t.Fatalf("re-enrollment without credential: %v, want ErrDeviceExists", err)
			}
			if _, ok := auth.Authenticate("d1", e.Password); !ok {
				t.Fatal("refused takeover changed the password")
			}
			// After an operator reset the old password is revoked and the id
			// can be enrolled again.
			var revoked []string
			r.Devices.OnRevoke(func(id string) { revoked = append(revoked, id) })
			if _, err := r.Devices.Reset(ctx, "d1"); err != nil {
				t.Fatal(err)
			}
			if _, ok := auth.Authenticate("d1", e.Password); ok {
				t.Fatal("password valid after reset")
			}
			e2, err := r.Devices.Enroll(ctx, req, registry.Proof{})
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := auth.Authenticate("d1", e2.Password); !ok {
				t.Fatal("new password rejected")
			}
			if len(revoked) != 2 { // reset, then the re-enrollment
				t.Fatalf("revocations %v", revoked)
			}
			if _, err := r.Devices.Enroll(ctx, &wire.EnrollRequest{V: 1, Token: tok, DeviceID: registry.ServerUser}, registry.Proof{}); err == nil {
				t.Fatal("device id of the fleet server accepted")
			}
			// Token used up (max 3 uses: d1, d1 after reset, d3).
			if _, err := r.Devices.Enroll(ctx, &wire.EnrollRequest{V: 1, Token: tok, DeviceID: "d3"}, registry.Proof{}); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Devices.Enroll(ctx, &wire.EnrollRequest{V: 1, Token: tok, DeviceID: "d2"}, registry.Proof{}); !errors.Is(err, registry.ErrBadToken) {
				t.Fatalf("fourth use: %v, want ErrBadToken", err)
			}
			if _, err := r.Devices.Enroll(ctx, &wire.EnrollRequest{V: 1, Token: "bogus", DeviceID: "d2"}, registry.Proof{}); !errors.Is(err, registry.ErrBadToken) {
				t.Fatalf("unknown token: %v", err)
			}
			tok2, _, _ := r.Tokens.Create(ctx, nil, 0, time.Minute)
			now = now.Add(2 * time.Minute)
			if _, err := r.Devices.Enroll(ctx, &wire.EnrollRequest{V: 1, Token: tok2, DeviceID: "d2"}, registry.Proof{}); !errors.Is(err, registry.ErrBadToken) {
				t.Fatalf("expired token: %v", err)
			}
			if _, err := r.Tokens.Add(ctx, "short-secret", nil, 0, 0); err == nil {
				t.Fatal("short operator token accepted")
			}
		})
	}
}

// TestCertificateEnrollment: CSR enrollment, a takeover attempt by
// re-enrollment (refused), renewal with the current certificate (old one
// revoked), a CSR naming another device (refused) and revocation by reset
// and delete.
func TestCertificateEnrollment(t *testing.T) {
	ctx := context.Background()
	r := registry.New(store.NewMem(), nil)
	ca, err := pki.NewCA("test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r.Devices.SetCA(ca)
	tok, _, _ := r.Tokens.Create(ctx, nil, 0, 0)
	_, _, csr, _ := pki.NewDeviceKey("d1")
	e, err := r.Devices.Enroll(ctx, &wire.EnrollRequest{V: 1, Token: tok, DeviceID: "d1", CSR: string(csr)}, registry.Proof{})
	if err != nil {
		t.Fatal(err)
	}
	if e.Password != "" {
		t.Fatal("password issued with password auth off")
	}
	cert1, err := pki.ParseCertPEM(e.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	auth := brokerauth.New(r.Devices, ca, "")
	if p, ok := auth.AuthenticateCert(cert1); !ok || p.DeviceID != "d1" {
		t.Fatal("issued certificate rejected")
	}
	// Attack: another party with a valid token re-enrolls d1 with its own key.
	_, _, evilCSR, _ := pki.NewDeviceKey("d1")
	if _, err := r.Devices.Enroll(ctx, &wire.EnrollRequest{V: 1, Token: tok, DeviceID: "d1", CSR: string(evilCSR)}, registry.Proof{}); !errors.Is(err, registry.ErrDeviceExists) {
		t.Fatalf("takeover: %v, want ErrDeviceExists", err)
	}
	// Attack: a proof for another device does not help either.
	if _, err := r.Devices.Enroll(ctx, &wire.EnrollRequest{V: 1, Token: tok, DeviceID: "d1", CSR: string(evilCSR)}, registry.Proof{DeviceID: "d2", CertSerial: pki.SerialString(cert1)}); !errors.Is(err, registry.ErrDeviceExists) {
		t.Fatalf("takeover with another device's proof: %v", err)
	}
	// Attack: CSR naming another device.
	_, _, otherCSR, _ := pki.NewDeviceKey("victim")
	if _, err := r.Devices.Enroll(ctx, &wire.EnrollRequest{V: 1, Token: tok, DeviceID: "d2", CSR: string(otherCSR)}, registry.Proof{}); !errors.Is(err, registry.ErrBadCSR) {
		t.Fatalf("CSR for another id: %v, want ErrBadCSR", err)
	}
	// Renewal with the current certificate: no token needed, old cert revoked.
	proof, ok := r.Devices.VerifyCurrentCert(ctx, cert1)
	if !ok {
		t.Fatal("current certificate not verified")
	}
	_, _, csr2, _ := pki.NewDeviceKey("d1")
	e2, err := r.Devices.Enroll(ctx, &wire.EnrollRequest{V: 1, DeviceID: "d1", CSR: string(csr2)}, proof)
	if err != nil || !e2.Renewed {
		t.Fatalf("renewal: %v renewed=%v", err, e2.Renewed)
	}
	cert2, _ := pki.ParseCertPEM(e2.CertPEM)
	if _, ok := auth.AuthenticateCert(cert1); ok {
		t.Fatal("old certificate valid after renewal")
	}
	if _, ok := auth.AuthenticateCert(cert2); !ok {
		t.Fatal("renewed certificate rejected")
	}
	// Reset revokes; the control: re-enrollment after reset works.
	r.Devices.Reset(ctx, "d1")
	if _, ok := auth.AuthenticateCert(cert2); ok {
		t.Fatal("certificate valid after reset")
	}
	e3, err := r.Devices.Enroll(ctx, &wire.EnrollRequest{V: 1, Token: tok, DeviceID: "d1", CSR: string(evilCSR)}, registry.Proof{})
	if err != nil {
		t.Fatalf("enrollment after reset: %v", err)
	}
	cert3, _ := pki.ParseCertPEM(e3.CertPEM)
	if _, ok := auth.AuthenticateCert(cert3); !ok {
		t.Fatal("certificate after reset rejected")
	}
	// A certificate from another CA with the right serial is still refused.
	other, _ := pki.NewCA("other", time.Now())
	c, _ := pki.ParseCSR(evilCSR, "d1")
	forged, _, _ := other.SignDevice(c, "d1")
	forged.SerialNumber = cert3.SerialNumber
	if _, ok := auth.AuthenticateCert(forged); ok {
		t.Fatal("certificate of another CA accepted")
	}
	if err := r.Devices.Delete(ctx, "d1"); err != nil {
		t.Fatal(err)
	}
	if _, ok := auth.AuthenticateCert(cert3); ok {
		t.Fatal("certificate valid after delete")
	}
	// The token is checked before the CSR is even parsed: a bad token with
	// a bad CSR is a token error.
	if _, err := r.Devices.Enroll(ctx, &wire.EnrollRequest{V: 1, Token: "guess", DeviceID: "d5", CSR: "garbage"}, registry.Proof{}); !errors.Is(err, registry.ErrBadToken) {
		t.Fatalf("bad token + bad CSR: %v, want ErrBadToken", err)
	}
	// No CSR with password auth off: refused.
	if _, err := r.Devices.Enroll(ctx, &wire.EnrollRequest{V: 1, Token: tok, DeviceID: "d4"}, registry.Proof{}); !errors.Is(err, registry.ErrBadCSR) {
		t.Fatalf("no CSR: %v", err)
	}
}

func TestSelector(t *testing.T) {
	tests := []struct {
		sel    string
		labels map[string]string
		want   bool
	}{
		{"", nil, true},
		{"site=lab", map[string]string{"site": "lab"}, true},
		{"site=lab", map[string]string{"site": "fab"}, false},
		{"site!=lab", map[string]string{}, true},
		{"site!=lab,ring", map[string]string{"site": "x", "ring": "1"}, true},
		{"!ring", map[string]string{"ring": "1"}, false},
		{"site==lab", map[string]string{"site": "lab"}, true},
	}
	for _, tt := range tests {
		s, err := registry.ParseSelector(tt.sel)
		if err != nil {
			t.Fatalf("%q: %v", tt.sel, err)
		}
		if got := s.Matches(tt.labels); got != tt.want {
			t.Errorf("%q.Matches(%v) = %v", tt.sel, tt.labels, got)
		}
		if s2, _ := registry.ParseSelector(s.String()); s2.String() != s.String() {
			t.Errorf("round trip %q → %q", s.String(), s2.String())
		}
	}
	if _, err := registry.ParseSelector("a b=c"); err == nil {
		t.Error("bad key accepted")
	}
}

func TestJobsAndModels(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			r := registry.New(s, nil)
			m := registry.Model{ID: "m", Version: "1", Target: wire.Target{Name: "models/m/1/model.tflite", Length: 3}}
			if err := r.Models.Put(ctx, m); err != nil {
				t.Fatal(err)
			}
			if err := r.Models.Put(ctx, m); err == nil {
				t.Fatal("duplicate version accepted")
			}
			if ms, _ := r.Models.List(ctx, "m"); len(ms) != 1 {
				t.Fatalf("models = %v", ms)
			}
			j1, err := r.Jobs.Add(ctx, "d1", wire.Job{Kind: wire.JobInstall, ModelID: "m", Version: "1", Target: &m.Target})
			if err != nil {
				t.Fatal(err)
			}
			j2, _ := r.Jobs.Add(ctx, "d1", wire.Job{Kind: wire.JobRollback, ModelID: "m", Version: "0"})
			if j1.JobID >= j2.JobID {
				t.Fatalf("job ids not increasing: %s %s", j1.JobID, j2.JobID)
			}
			// A final update that overtakes in_progress is applied (the job
			// went through in_progress on the device); the late progress
			// update is then ignored; a queued job cannot go back to queued.
			j3, _ := r.Jobs.Add(ctx, "d1", wire.Job{Kind: wire.JobRollback, ModelID: "m", Version: "0"})
			if rec, _, err := r.Jobs.Update(ctx, "d1", j3.JobID, wire.JobSucceeded, ""); err != nil || rec.State != wire.JobSucceeded {
				t.Fatalf("queued→succeeded (overtaken): %v", err)
			}
			if rec, ch, err := r.Jobs.Update(ctx, "d1", j3.JobID, wire.JobInProgress, ""); err != nil || ch || rec.State != wire.JobSucceeded {
				t.Fatalf("late in_progress: changed=%v err=%v", ch, err)
			}
			if _, _, err := r.Jobs.Update(ctx, "d1", j3.JobID, wire.JobFailed, ""); !errors.Is(err, wire.ErrBadTransition) {
				t.Fatalf("succeeded→failed: %v", err)
			}
			r.Jobs.Update(ctx, "d1", j1.JobID, wire.JobInProgress, "")
			if _, ch, err := r.Jobs.Update(ctx, "d1", j1.JobID, wire.JobSucceeded, ""); err != nil || !ch {
				t.Fatal(err)
			}
			if _, ch, err := r.Jobs.Update(ctx, "d1", j1.JobID, wire.JobSucceeded, ""); err != nil || ch {
				t.Fatalf("duplicate terminal update: changed=%v err=%v", ch, err)
			}
			p, _ := r.Jobs.Pending(ctx, "d1")
			_ = j3
			if len(p) != 1 || p[0].JobID != j2.JobID {
				t.Fatalf("pending = %+v", p)
			}
		})
	}
}
