package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCAPersistsAndIssues(t *testing.T) {
	dir := t.TempDir()
	ca, created, err := LoadOrCreateCA(dir, "test fleet CA")
	if err != nil || !created {
		t.Fatalf("create: %v created=%v", err, created)
	}
	again, created, err := LoadOrCreateCA(dir, "ignored")
	if err != nil || created || again.Fingerprint() != ca.Fingerprint() {
		t.Fatalf("reload: %v created=%v %s vs %s", err, created, again.Fingerprint(), ca.Fingerprint())
	}
	if st, _ := os.Stat(filepath.Join(dir, CAKeyFile)); st.Mode().Perm() != 0o600 {
		t.Fatalf("CA key mode %v, want 0600", st.Mode().Perm())
	}
	// Half a CA is an error, not a silent regeneration.
	os.Remove(filepath.Join(dir, CAKeyFile))
	if _, _, err := LoadOrCreateCA(dir, "x"); err == nil {
		t.Fatal("CA cert without key accepted")
	}

	srv, err := ca.IssueServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "127.0.0.1"}); err != nil {
		t.Fatalf("server cert for 127.0.0.1: %v", err)
	}
	if _, err := srv.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "evil.example"}); err == nil {
		t.Fatal("server cert valid for a host not in its SANs")
	}

	_, _, csrPEM, err := NewDeviceKey("dev-1")
	if err != nil {
		t.Fatal(err)
	}
	csr, err := ParseCSR(csrPEM, "dev-1")
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := ca.SignDevice(csr, "dev-1")
	if err != nil {
		t.Fatal(err)
	}
	if id, err := ca.VerifyDevice(cert); err != nil || id != "dev-1" {
		t.Fatalf("verify device: %q %v", id, err)
	}
	// A certificate from another CA is not a device of this fleet.
	other, _ := NewCA("other", cert.NotBefore)
	forged, _, _ := other.SignDevice(csr, "dev-1")
	if _, err := ca.VerifyDevice(forged); err == nil {
		t.Fatal("certificate of another CA accepted")
	}
	// A server certificate is not a client certificate.
	if _, err := ca.VerifyDevice(srv.Leaf); err == nil {
		t.Fatal("server certificate accepted as device certificate")
	}
}

func TestLoadOperatorCA(t *testing.T) {
	dir := t.TempDir()
	ca, _, err := LoadOrCreateCA(dir, "op")
	if err != nil {
		t.Fatal(err)
	}
	got, err := LoadCA(filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile))
	if err != nil || got.Fingerprint() != ca.Fingerprint() {
		t.Fatalf("load: %v", err)
	}
	// Key of another CA: refused.
	dir2 := t.TempDir()
	LoadOrCreateCA(dir2, "other")
	if _, err := LoadCA(filepath.Join(dir, CACertFile), filepath.Join(dir2, CAKeyFile)); err == nil {
		t.Fatal("mismatched CA key accepted")
	}
}

// TestCSRWrongCommonName is the attack "a device asks for a certificate
// naming another device": refused; the control (its own id) succeeds.
func TestCSRWrongCommonName(t *testing.T) {
	_, _, csrPEM, err := NewDeviceKey("victim")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseCSR(csrPEM, "attacker"); !errors.Is(err, ErrCSR) {
		t.Fatalf("CSR for victim accepted for attacker: %v", err)
	}
	if _, err := ParseCSR(csrPEM, "victim"); err != nil {
		t.Fatalf("control: %v", err)
	}
	// A SAN naming another device is refused too.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "attacker"},
		DNSNames: []string{"attacker", "victim"}, IPAddresses: nil}, key)
	if _, err := ParseCSR(der, "attacker"); !errors.Is(err, ErrCSR) {
		t.Fatalf("CSR with a SAN for another device accepted: %v", err)
	}
	der, _ = x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "attacker"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}, key)
	if _, err := ParseCSR(der, "attacker"); !errors.Is(err, ErrCSR) {
		t.Fatalf("CSR with an IP SAN accepted: %v", err)
	}
	// A tampered CSR fails its signature check.
	blk, _ := pem.Decode(csrPEM)
	bad := append([]byte{}, blk.Bytes...)
	bad[len(bad)-5] ^= 0xff
	if _, err := ParseCSR(bad, "victim"); err == nil {
		t.Fatal("tampered CSR accepted")
	}
}

func TestServerCertServesChain(t *testing.T) {
	ca, _ := NewCA("c", mustNow())
	c, err := ca.IssueServer([]string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Certificate) != 2 {
		t.Fatalf("chain has %d certificates, want leaf + CA", len(c.Certificate))
	}
	_ = tls.Certificate(c)
}

func FuzzParseCSR(f *testing.F) {
	_, _, csrPEM, _ := NewDeviceKey("dev-1")
	f.Add(csrPEM, "dev-1")
	blk, _ := pem.Decode(csrPEM)
	f.Add(blk.Bytes, "dev-1")
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"), "x")
	f.Add([]byte{0x30, 0x82, 0xff, 0xff}, "x")
	f.Fuzz(func(t *testing.T, b []byte, id string) {
		csr, err := ParseCSR(b, id)
		if err == nil && csr.Subject.CommonName != id {
			t.Fatalf("accepted CSR for %q as %q", csr.Subject.CommonName, id)
		}
	})
}

func mustNow() time.Time { return time.Now() }
