// Package enroll is a device's enrollment with its fleet: over HTTPS pinned
// to the fleet CA, the device generates its key and CSR, sends them with an
// enrollment token (or its current certificate, to renew), and receives its
// client certificate, MQTT credentials, broker URL, command key and TUF root.
// It keeps them in DATA/fleet (Dir) and gives the link and updates what they
// need from there: LoadEnrollment and TLSConfig.
//
// It imports nothing of the fleet side but the shared wire package.
package enroll

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/edgefleet/edgefleet/internal/atomicfile"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// Dir is the fleet state directory (enrollment, credentials, the link's journal) inside the agent's data dir.
const Dir = "fleet"

// Files inside Dir.
const (
	// EnrollmentFile holds the enrollment (mode 0600).
	EnrollmentFile = "enrollment.json"
	// CAFile is the pinned fleet CA certificate.
	CAFile = "ca.pem"
	// CertFile is the device's client certificate.
	CertFile = "device.pem"
	// KeyFile is the device's private key (mode 0600); it never leaves the device.
	KeyFile = "device-key.pem"
)

// ErrNotEnrolled is returned by LoadEnrollment when the device never enrolled.
var ErrNotEnrolled = errors.New("device not enrolled (run edge-agent enroll --server https://... --token T --ca-fingerprint sha256:...)")

// ErrPin is wrapped when the server's certificate does not match the pinned CA.
var ErrPin = errors.New("fleet server not trusted")

// Enrollment is what a device keeps after enrolling. The certificate, key
// and CA live next to it in CertFile, KeyFile and CAFile.
type Enrollment struct {
	DeviceID  string `json:"device_id"`
	Username  string `json:"username"`
	Password  string `json:"password,omitempty"`
	BrokerURL string `json:"broker_url"`
	ServerURL string `json:"server_url"`
	RepoURL   string `json:"repo_url,omitempty"`
	// TUFRoot is the trusted root.json of the update repository, exactly as
	// served over the pinned channel (base64 in the file), to seed
	// ota.UpdaterConfig.TrustedRoot.
	TUFRoot []byte `json:"tuf_root,omitempty"`
	// CAFingerprint is the pinned fleet CA ("sha256:...").
	CAFingerprint string `json:"ca_fingerprint,omitempty"`
	// CommandKey is the fleet's Ed25519 command-signing public key.
	CommandKey []byte `json:"command_key,omitempty"`
	// Insecure is set when the device enrolled over plaintext
	// (--insecure-plaintext): nothing was pinned.
	Insecure bool      `json:"insecure,omitempty"`
	Enrolled time.Time `json:"enrolled"`
	// SubscribeQoS is the QoS at which the fleet link subscribes to the
	// server → device topics, as the fleet said at enrollment
	// (wire.EnrollResponse.SubscribeQoS); nil means 1.
	SubscribeQoS *int `json:"subscribe_qos,omitempty"`
}

// EnrollOptions says how the agent trusts the fleet server at enrollment.
type EnrollOptions struct {
	// CAFingerprint pins the fleet CA by the SHA-256 of its certificate
	// ("sha256:<hex>", as fleet-server prints it at start).
	CAFingerprint string
	// CAFile pins the fleet CA by its PEM certificate.
	CAFile string
	// InsecurePlaintext allows an http:// server and plain MQTT: nothing is
	// authenticated and the TUF root is trusted on first use. Tests only.
	InsecurePlaintext bool
	// Timeout bounds the request (default 30s).
	Timeout time.Duration
}

// Enroll generates the device's key and CSR, posts them with req (token,
// device id, labels...) to serverURL/api/v1/enroll over TLS pinned to the
// fleet CA, verifies the issued certificate, and stores CA, certificate,
// key and enrollment in dataDir/fleet. A device that is already enrolled
// presents its current certificate, which renews it without a token; with
// no pin given, the CA pinned at the first enrollment is used.
func Enroll(ctx context.Context, serverURL, dataDir string, req wire.EnrollRequest, opt EnrollOptions) (*Enrollment, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil, fmt.Errorf("enroll: server URL %q: %w", serverURL, err)
	}
	if opt.CAFile == "" && opt.CAFingerprint == "" {
		// Renewal: the CA pinned at the first enrollment.
		if p := filepath.Join(dataDir, Dir, CAFile); fileExists(p) {
			opt.CAFile = p
		}
	}
	var pin *pinner
	switch {
	case u.Scheme == "https":
		if pin, err = newPinner(opt); err != nil {
			return nil, fmt.Errorf("enroll: %w", err)
		}
	case u.Scheme == "http" && opt.InsecurePlaintext:
	case u.Scheme == "http":
		return nil, fmt.Errorf("enroll: %s is plaintext: use https:// with --ca-fingerprint or --ca-file (or --insecure-plaintext on a trusted test network)", serverURL)
	default:
		return nil, fmt.Errorf("enroll: server URL %q: want https://", serverURL)
	}
	if err := wire.ValidateID("device_id", req.DeviceID); err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("enroll: generate key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: req.DeviceID}, DNSNames: []string{req.DeviceID}}, key)
	if err != nil {
		return nil, fmt.Errorf("enroll: create CSR: %w", err)
	}
	req.CSR = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}))
	req.V = wire.Version
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	body, err := wire.Encode(req)
	if err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	timeout := opt.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	client := &http.Client{Timeout: timeout}
	if pin != nil {
		tc := pin.config()
		// Renewal: present the current certificate if there is one.
		if cur, err := loadKeyPair(dataDir); err == nil {
			tc.Certificates = []tls.Certificate{cur}
		}
		client.Transport = &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment}
	}
	endpoint := strings.TrimRight(serverURL, "/") + "/api/v1/enroll"
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set(wire.FeaturesHeader, wire.FeatureSubscribeQoS)
	resp, err := client.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("enroll at %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, wire.MaxPayload+1))
	if err != nil {
		return nil, fmt.Errorf("enroll at %s: read response: %w", endpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("enroll at %s: HTTP %d: %s", endpoint, resp.StatusCode, strings.TrimSpace(string(rb)))
	}
	raw, err := wire.DecodeEnrollResponse(rb)
	if err != nil {
		return nil, fmt.Errorf("enroll at %s: %w", endpoint, err)
	}
	if raw.DeviceID != req.DeviceID {
		return nil, fmt.Errorf("enroll at %s: answer for device %q, asked for %q", endpoint, raw.DeviceID, req.DeviceID)
	}
	e := &Enrollment{DeviceID: raw.DeviceID, Username: raw.Username, Password: raw.Password, BrokerURL: raw.BrokerURL,
		ServerURL: serverURL, RepoURL: raw.RepoURL, TUFRoot: []byte(raw.TUFRoot), Insecure: pin == nil, Enrolled: time.Now().UTC(),
		SubscribeQoS: raw.SubscribeQoS}
	if raw.CommandKey != "" {
		k, err := base64.StdEncoding.DecodeString(raw.CommandKey)
		if err != nil || len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("enroll at %s: command_key is not a base64 Ed25519 public key", endpoint)
		}
		e.CommandKey = k
	}
	// The CA to keep: the pinned one; over plaintext, whatever was sent.
	var ca *x509.Certificate
	if pin != nil {
		ca = pin.ca()
		if raw.CA != "" {
			got, err := parseCertPEM([]byte(raw.CA))
			if err != nil || !got.Equal(ca) {
				return nil, fmt.Errorf("enroll at %s: %w: the answer names another CA than the pinned one", endpoint, ErrPin)
			}
		}
	} else if raw.CA != "" {
		if ca, err = parseCertPEM([]byte(raw.CA)); err != nil {
			return nil, fmt.Errorf("enroll at %s: ca: %w", endpoint, err)
		}
	}
	var certPEM []byte
	if raw.Certificate != "" {
		if ca == nil {
			return nil, fmt.Errorf("enroll at %s: a certificate without a CA", endpoint)
		}
		cert, err := parseCertPEM([]byte(raw.Certificate))
		if err != nil {
			return nil, fmt.Errorf("enroll at %s: certificate: %w", endpoint, err)
		}
		if err := checkDeviceCert(cert, ca, key, req.DeviceID); err != nil {
			return nil, fmt.Errorf("enroll at %s: %w", endpoint, err)
		}
		certPEM = []byte(raw.Certificate)
	} else if raw.Password == "" {
		return nil, fmt.Errorf("enroll at %s: the answer has neither certificate nor password", endpoint)
	}
	if ca != nil {
		e.CAFingerprint = fingerprint(ca)
	}
	if err := saveCredentials(dataDir, ca, certPEM, key); err != nil {
		return nil, err
	}
	if err := SaveEnrollment(dataDir, e); err != nil {
		return nil, err
	}
	return e, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func checkDeviceCert(cert, ca *x509.Certificate, key *ecdsa.PrivateKey, id string) error {
	if cert.Subject.CommonName != id {
		return fmt.Errorf("issued certificate names %q, want %q", cert.Subject.CommonName, id)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return fmt.Errorf("issued certificate is not for this device's key")
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return fmt.Errorf("issued certificate: %w", err)
	}
	return nil
}

func saveCredentials(dataDir string, ca *x509.Certificate, certPEM []byte, key *ecdsa.PrivateKey) error {
	dir := filepath.Join(dataDir, Dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	if ca != nil {
		if err := atomicfile.Write(filepath.Join(dir, CAFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), 0o600); err != nil {
			return err
		}
	}
	if certPEM == nil {
		return nil
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("save key: %w", err)
	}
	// Key first: a crash between the two leaves the old certificate with
	// a key that does not match, which the next enroll replaces.
	if err := atomicfile.Write(filepath.Join(dir, KeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, CertFile), certPEM, 0o600)
}

func loadKeyPair(dataDir string) (tls.Certificate, error) {
	dir := filepath.Join(dataDir, Dir)
	c, err := tls.LoadX509KeyPair(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("device certificate: %w", err)
	}
	return c, nil
}

func parseCertPEM(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return x509.ParseCertificate(blk.Bytes)
}

func fingerprint(c *x509.Certificate) string {
	h := sha256.Sum256(c.Raw)
	return "sha256:" + hex.EncodeToString(h[:])
}

// pinner verifies the server's certificate against the pinned CA, given
// as a file or as a fingerprint of a CA certificate the server sends in
// its chain.
type pinner struct {
	fp    string
	file  *x509.Certificate
	found *x509.Certificate
}

func newPinner(opt EnrollOptions) (*pinner, error) {
	p := &pinner{}
	switch {
	case opt.CAFile != "":
		b, err := os.ReadFile(opt.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		if p.file, err = parseCertPEM(b); err != nil {
			return nil, fmt.Errorf("CA file %s: %w", opt.CAFile, err)
		}
		if opt.CAFingerprint != "" && !strings.EqualFold(fingerprint(p.file), opt.CAFingerprint) {
			return nil, fmt.Errorf("CA file %s has fingerprint %s, not %s", opt.CAFile, fingerprint(p.file), opt.CAFingerprint)
		}
	case opt.CAFingerprint != "":
		fp := strings.ToLower(strings.TrimSpace(opt.CAFingerprint))
		hexPart, ok := strings.CutPrefix(fp, "sha256:")
		if b, err := hex.DecodeString(hexPart); !ok || err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("CA fingerprint %q: want sha256:<64 hex digits>", opt.CAFingerprint)
		}
		p.fp = fp
	default:
		return nil, errors.New("no trust anchor: give --ca-fingerprint sha256:... (printed by fleet-server at start) or --ca-file ca.pem")
	}
	return p, nil
}

func (p *pinner) ca() *x509.Certificate {
	if p.file != nil {
		return p.file
	}
	return p.found
}

// config returns a TLS config that accepts only a server certificate
// issued by the pinned CA for the URL's host.
func (p *pinner) config() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by VerifyConnection below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("%w: no server certificate", ErrPin)
			}
			ca := p.file
			if ca == nil {
				for _, c := range cs.PeerCertificates {
					if c.IsCA && fingerprint(c) == p.fp {
						ca = c
					}
				}
				if ca == nil {
					return fmt.Errorf("%w: no certificate in the server's chain has fingerprint %s", ErrPin, p.fp)
				}
			}
			pool := x509.NewCertPool()
			pool.AddCert(ca)
			if _, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool, DNSName: cs.ServerName}); err != nil {
				return fmt.Errorf("%w: %v", ErrPin, err)
			}
			p.found = ca
			return nil
		},
	}
}

// TLSConfig returns the TLS configuration of an enrolled device: only the
// pinned fleet CA is trusted, and the device's certificate (read from
// disk at every handshake, so a renewal is picked up) is presented.
func TLSConfig(dataDir string) (*tls.Config, error) {
	dir := filepath.Join(dataDir, Dir)
	b, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, fmt.Errorf("fleet CA: %w", err)
	}
	ca, err := parseCertPEM(b)
	if err != nil {
		return nil, fmt.Errorf("fleet CA %s: %w", filepath.Join(dir, CAFile), err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c, err := loadKeyPair(dataDir)
			if err != nil {
				return &tls.Certificate{}, nil // no certificate: the server decides
			}
			return &c, nil
		}}, nil
}

// SaveEnrollment writes e atomically to dataDir/fleet/enrollment.json.
func SaveEnrollment(dataDir string, e *Enrollment) error {
	dir := filepath.Join(dataDir, Dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save enrollment: %w", err)
	}
	b, _ := json.MarshalIndent(e, "", "  ")
	return atomicfile.Write(filepath.Join(dir, EnrollmentFile), b, 0o600)
}

// LoadEnrollment reads dataDir/fleet/enrollment.json (ErrNotEnrolled if absent).
func LoadEnrollment(dataDir string) (*Enrollment, error) {
	p := filepath.Join(dataDir, Dir, EnrollmentFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotEnrolled
	}
	if err != nil {
		return nil, fmt.Errorf("load enrollment: %w", err)
	}
	var e Enrollment
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("load enrollment %s: %w", p, err)
	}
	if err := wire.ValidateID("device_id", e.DeviceID); err != nil || e.BrokerURL == "" {
		return nil, fmt.Errorf("load enrollment %s: incomplete (device_id %q, broker_url %q)", p, e.DeviceID, e.BrokerURL)
	}
	return &e, nil
}
