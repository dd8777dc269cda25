// Package pki is the fleet's own certificate authority: an ECDSA P-256 CA
// kept in the fleet server's data dir (or supplied by the operator), the
// server certificates of the HTTPS API and the MQTT broker, and the device
// client certificates issued at enrollment from a certificate signing
// request whose key never leaves the device.
//
// Devices pin the CA by the SHA-256 fingerprint of its DER certificate
// (Fingerprint); the CA's certificate is what an agent trusts for every
// later connection.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/edgefleet/edgefleet/internal/clock"
)

// Files in a CA directory.
const (
	CACertFile = "ca.pem"
	CAKeyFile  = "ca-key.pem"
)

// Validity periods.
const (
	// CAValidity is how long a generated CA is valid.
	CAValidity = 10 * 365 * 24 * time.Hour
	// ServerValidity is how long a server certificate is valid; it is
	// re-issued at every start of fleet-server.
	ServerValidity = 90 * 24 * time.Hour
	// DeviceValidity is how long a device certificate is valid; devices
	// renew by enrolling again with their current certificate.
	DeviceValidity = 365 * 24 * time.Hour
)

// MaxCSR bounds a PEM or DER certificate signing request, in bytes.
const MaxCSR = 8 << 10

// ErrCSR is wrapped by every CSR validation failure.
var ErrCSR = errors.New("certificate signing request rejected")

// CA is a certificate authority that can issue certificates.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// CertPEM is Cert in PEM form, as devices store it.
	CertPEM []byte
	// clk supplies the time (the system clock if nil).
	clk clock.Clock
}

// SetClock replaces the CA's clock (tests).
func (ca *CA) SetClock(c clock.Clock) { ca.clk = c }

func (ca *CA) now() time.Time { return clock.Or(ca.clk).Now() }

// LoadOrCreateCA loads dir/ca.pem and dir/ca-key.pem, generating a new
// ECDSA P-256 CA named after commonName when neither exists. created
// reports whether a CA was generated.
func LoadOrCreateCA(dir, commonName string) (ca *CA, created bool, err error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	_, errC := os.Stat(certPath)
	_, errK := os.Stat(keyPath)
	switch {
	case errC == nil && errK == nil:
		ca, err := LoadCA(certPath, keyPath)
		return ca, false, err
	case errors.Is(errC, os.ErrNotExist) && errors.Is(errK, os.ErrNotExist):
	default:
		return nil, false, fmt.Errorf("fleet CA in %s: need both %s and %s (cert: %v, key: %v)", dir, CACertFile, CAKeyFile, errC, errK)
	}
	ca, err = NewCA(commonName, time.Now())
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("fleet CA: %w", err)
	}
	keyPEM, err := encodeKey(ca.Key)
	if err != nil {
		return nil, false, err
	}
	if err := writeFile(keyPath, keyPEM, 0o600); err != nil {
		return nil, false, err
	}
	if err := writeFile(certPath, ca.CertPEM, 0o644); err != nil {
		return nil, false, err
	}
	return ca, true, nil
}

// NewCA generates a self-signed ECDSA P-256 CA valid from now for CAValidity.
func NewCA(commonName string, now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := NewSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"edgefleet"}},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// LoadCA reads an operator-provided CA certificate and key (PEM; the key as
// PKCS#8, EC or PKCS#1).
func LoadCA(certFile, keyFile string) (*CA, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("load CA certificate: %w", err)
	}
	cert, err := ParseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("load CA certificate %s: %w", certFile, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("load CA certificate %s: not a CA (basic constraints CA:false)", certFile)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("load CA key: %w", err)
	}
	key, err := ParseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load CA key %s: %w", keyFile, err)
	}
	if !publicEqual(key.Public(), cert.PublicKey) {
		return nil, fmt.Errorf("load CA: key %s does not match certificate %s", keyFile, certFile)
	}
	return &CA{Cert: cert, Key: key, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})}, nil
}

func publicEqual(a, b crypto.PublicKey) bool {
	type eq interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(eq)
	return ok && e.Equal(b)
}

// Fingerprint returns "sha256:<hex>" of the certificate's DER encoding.
func Fingerprint(cert *x509.Certificate) string {
	h := sha256.Sum256(cert.Raw)
	return "sha256:" + hex.EncodeToString(h[:])
}

// Fingerprint returns the CA certificate's fingerprint.
func (ca *CA) Fingerprint() string { return Fingerprint(ca.Cert) }

// Pool returns a pool holding only the CA certificate.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// NewSerial returns a random 128-bit certificate serial number.
func NewSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("certificate serial: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil
}

// SerialString formats a certificate serial number as the registry keeps it.
func SerialString(c *x509.Certificate) string { return c.SerialNumber.Text(16) }

// IssueServer issues a TLS server certificate for hosts (DNS names or IP
// addresses) with a fresh P-256 key; the chain includes the CA so clients
// that pin the CA's fingerprint find it in the handshake.
func (ca *CA) IssueServer(hosts []string) (tls.Certificate, error) {
	if len(hosts) == 0 {
		hosts = []string{"localhost", "127.0.0.1", "::1"}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate server key: %w", err)
	}
	serial, err := NewSerial()
	if err != nil {
		return tls.Certificate{}, err
	}
	now := ca.now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: hosts[0], Organization: []string{"edgefleet"}},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     minTime(now.Add(ServerValidity), ca.Cert.NotAfter),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issue server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("parse server certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.Cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// ParseCSR decodes a PEM (or raw DER) certificate signing request, checks
// its self-signature and key type (ECDSA P-256/P-384 or Ed25519), and
// requires its subject common name to be deviceID and its SANs, if any, to
// name only deviceID.
func ParseCSR(b []byte, deviceID string) (*x509.CertificateRequest, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrCSR)
	}
	if len(b) > MaxCSR {
		return nil, fmt.Errorf("%w: %d bytes, want at most %d", ErrCSR, len(b), MaxCSR)
	}
	der := b
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "CERTIFICATE REQUEST" {
			return nil, fmt.Errorf("%w: PEM block %q, want \"CERTIFICATE REQUEST\"", ErrCSR, blk.Type)
		}
		der = blk.Bytes
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrCSR, err)
	}
	switch k := csr.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return nil, fmt.Errorf("%w: ECDSA curve %s, want P-256 or P-384", ErrCSR, k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("%w: key type %T, want ECDSA P-256 or Ed25519", ErrCSR, csr.PublicKey)
	}
	if csr.Subject.CommonName != deviceID {
		return nil, fmt.Errorf("%w: common name %q, want the device id %q", ErrCSR, csr.Subject.CommonName, deviceID)
	}
	for _, n := range csr.DNSNames {
		if n != deviceID {
			return nil, fmt.Errorf("%w: DNS SAN %q, want only the device id %q", ErrCSR, n, deviceID)
		}
	}
	if len(csr.IPAddresses)+len(csr.URIs)+len(csr.EmailAddresses) > 0 {
		return nil, fmt.Errorf("%w: IP, URI or email SANs are not allowed", ErrCSR)
	}
	return csr, nil
}

// SignDevice issues a client certificate for deviceID over the CSR's key
// (after ParseCSR's checks): CN and DNS SAN deviceID, client auth only.
func (ca *CA) SignDevice(csr *x509.CertificateRequest, deviceID string) (*x509.Certificate, []byte, error) {
	serial, err := NewSerial()
	if err != nil {
		return nil, nil, err
	}
	now := ca.now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: deviceID, Organization: []string{"edgefleet device"}},
		DNSNames:     []string{deviceID},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     minTime(now.Add(DeviceValidity), ca.Cert.NotAfter),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("issue device certificate for %s: %w", deviceID, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse device certificate: %w", err)
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// VerifyDevice checks that cert chains to the CA for client auth and
// returns the device id it names (its common name).
func (ca *CA) VerifyDevice(cert *x509.Certificate) (string, error) {
	_, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), CurrentTime: ca.now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return "", fmt.Errorf("device certificate: %w", err)
	}
	return cert.Subject.CommonName, nil
}

// NewDeviceKey generates a device key (ECDSA P-256) and a CSR for deviceID.
// It is what an agent runs at enrollment; the key stays on the device.
func NewDeviceKey(deviceID string) (key *ecdsa.PrivateKey, keyPEM, csrPEM []byte, err error) {
	key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("generate device key: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: deviceID}, DNSNames: []string{deviceID}}, key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("create CSR: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return key, keyPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// ParseCertPEM decodes the first CERTIFICATE block of b.
func ParseCertPEM(b []byte) (*x509.Certificate, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no PEM CERTIFICATE block")
		}
		if blk.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse certificate: %w", err)
			}
			return c, nil
		}
	}
}

// ParseKeyPEM decodes a PEM private key (PKCS#8, SEC 1 EC or PKCS#1).
func ParseKeyPEM(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	var k any
	var err error
	switch blk.Type {
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q, want a private key", blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key type %T cannot sign", k)
	}
	return s, nil
}

func encodeKey(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// LoadOrCreateSigningKey loads the Ed25519 command-signing key at path
// (PKCS#8 PEM), generating it (mode 0600) when absent.
func LoadOrCreateSigningKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := ParseKeyPEM(b)
		if err != nil {
			return nil, fmt.Errorf("command key %s: %w", path, err)
		}
		ek, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("command key %s: type %T, want Ed25519", path, k)
		}
		return ek, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("command key: %w", err)
	}
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate command key: %w", err)
	}
	p, err := encodeKey(k)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("command key: %w", err)
	}
	if err := writeFile(path, p, 0o600); err != nil {
		return nil, err
	}
	return k, nil
}

func writeFile(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
