package enroll

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/pki"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// fakeFleet is an HTTPS enrollment endpoint with a real CA (fleet/pki)
// that signs the device's CSR like fleet-server does; each decoded
// request is sent on seen, if given (buffered by the caller).
func fakeFleet(t *testing.T, ca *pki.CA, cmdKey string, seen ...chan<- wire.EnrollRequest) *httptest.Server {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		req, err := wire.DecodeEnrollRequest(b)
		if err != nil || r.URL.Path != "/api/v1/enroll" {
			http.Error(w, "bad request", 400)
			return
		}
		for _, c := range seen {
			c <- *req
		}
		if req.Token != "good-token" {
			http.Error(w, `{"error":{"code":"bad_token","message":"token invalid"}}`, 403)
			return
		}
		csr, err := pki.ParseCSR([]byte(req.CSR), req.DeviceID)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		_, certPEM, _ := ca.SignDevice(csr, req.DeviceID)
		out, _ := wire.Encode(wire.EnrollResponse{V: 1, DeviceID: req.DeviceID, Username: req.DeviceID, BrokerURL: "mqtts://127.0.0.1:8883",
			RepoURL: "https://x/repo", TUFRoot: []byte(`{"signed":{}}`), Certificate: string(certPEM), CA: string(ca.CertPEM), CommandKey: cmdKey})
		w.Write(out)
	}))
	c, err := ca.IssueServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{c}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestEnrollPersistsCredentials(t *testing.T) {
	ca, _ := pki.NewCA("fleet", time.Now())
	pub, _, _ := ed25519.GenerateKey(nil)
	srv := fakeFleet(t, ca, base64.StdEncoding.EncodeToString(pub))
	dir := t.TempDir()
	if _, err := LoadEnrollment(dir); !errors.Is(err, ErrNotEnrolled) {
		t.Fatalf("fresh dir: %v, want ErrNotEnrolled", err)
	}
	pin := EnrollOptions{CAFingerprint: ca.Fingerprint()}
	_, err := Enroll(context.Background(), srv.URL, dir, wire.EnrollRequest{Token: "wrong", DeviceID: "d1"}, pin)
	if err == nil || !strings.Contains(err.Error(), "HTTP 403") {
		t.Fatalf("bad token: %v", err)
	}
	if _, err := Enroll(context.Background(), srv.URL, dir, wire.EnrollRequest{Token: "good-token", DeviceID: "bad id"}, pin); err == nil {
		t.Fatal("invalid device id sent")
	}
	e, err := Enroll(context.Background(), srv.URL, dir, wire.EnrollRequest{Token: "good-token", DeviceID: "d1"}, pin)
	if err != nil {
		t.Fatal(err)
	}
	got, err := LoadEnrollment(dir)
	if err != nil || got.DeviceID != "d1" || string(got.TUFRoot) != `{"signed":{}}` || got.ServerURL != srv.URL ||
		got.CAFingerprint != ca.Fingerprint() || !bytes.Equal(got.CommandKey, pub) || got.Insecure {
		t.Fatalf("loaded %+v, %v (enrolled %+v)", got, err, e)
	}
	for _, f := range []string{EnrollmentFile, KeyFile} {
		st, _ := os.Stat(filepath.Join(dir, Dir, f))
		if st.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	tc, err := TLSConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tc.GetClientCertificate(nil)
	if err != nil || len(cert.Certificate) == 0 {
		t.Fatalf("device certificate not loadable: %v", err)
	}
	// The same pin through the CA file works too.
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, ca.CertPEM, 0o644)
	if _, err := Enroll(context.Background(), srv.URL, t.TempDir(), wire.EnrollRequest{Token: "good-token", DeviceID: "d2"}, EnrollOptions{CAFile: caFile}); err != nil {
		t.Fatalf("enroll with --ca-file: %v", err)
	}
}

// TestEnrollRefusesUnpinnedServers: an impostor server with its own CA,
// a plaintext server and a missing pin are all refused before the token
// or CSR leave the device; the control (right pin) is in
// TestEnrollPersistsCredentials.
func TestEnrollRefusesUnpinnedServers(t *testing.T) {
	fleetCA, _ := pki.NewCA("fleet", time.Now())
	evilCA, _ := pki.NewCA("impostor", time.Now())
	impostor := fakeFleet(t, evilCA, "")
	dir := t.TempDir()
	req := wire.EnrollRequest{Token: "good-token", DeviceID: "d1"}
	if _, err := Enroll(context.Background(), impostor.URL, dir, req, EnrollOptions{CAFingerprint: fleetCA.Fingerprint()}); !errors.Is(err, ErrPin) {
		t.Fatalf("impostor with its own CA: %v, want ErrPin", err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, fleetCA.CertPEM, 0o644)
	if _, err := Enroll(context.Background(), impostor.URL, dir, req, EnrollOptions{CAFile: caFile}); err == nil {
		t.Fatal("impostor accepted with --ca-file of the real fleet")
	}
	if _, err := Enroll(context.Background(), impostor.URL, dir, req, EnrollOptions{}); err == nil || !strings.Contains(err.Error(), "no trust anchor") {
		t.Fatalf("no pin: %v", err)
	}
	if _, err := Enroll(context.Background(), "http://127.0.0.1:1", dir, req, EnrollOptions{CAFingerprint: fleetCA.Fingerprint()}); err == nil || !strings.Contains(err.Error(), "plaintext") {
		t.Fatalf("http:// without --insecure-plaintext: %v", err)
	}
	if _, err := LoadEnrollment(dir); !errors.Is(err, ErrNotEnrolled) {
		t.Fatalf("a refused enrollment left credentials: %v", err)
	}
}

// TestEnrollSendsCapabilities: the enrollment request edge-agent enroll
// sends (fleetlink.DeviceHardware) reaches the fleet with the model variants and
// backends, through the strict wire decoder.
func TestEnrollSendsCapabilities(t *testing.T) {
	ca, _ := pki.NewCA("fleet", time.Now())
	seen := make(chan wire.EnrollRequest, 1)
	srv := fakeFleet(t, ca, "", seen)
	hw := wire.Hardware{Arch: "arm64", OS: "linux", CPUs: 4, ModelVariants: []string{"edgetpu", "int8"}, Backends: []string{"native", "tflite"}}
	if _, err := Enroll(context.Background(), srv.URL, t.TempDir(), wire.EnrollRequest{Token: "good-token", DeviceID: "d1", Hardware: hw},
		EnrollOptions{CAFingerprint: ca.Fingerprint()}); err != nil {
		t.Fatal(err)
	}
	got := <-seen
	if len(got.Hardware.ModelVariants) == 0 || !reflect.DeepEqual(got.Hardware.ModelVariants, hw.ModelVariants) ||
		!reflect.DeepEqual(got.Hardware.Backends, hw.Backends) {
		t.Errorf("fleet received hardware %+v, device sent %+v", got.Hardware, hw)
	}
}
