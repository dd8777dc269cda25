package server

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/edgefleet/edgefleet/fleet/broker"
	"github.com/edgefleet/edgefleet/fleet/broker/mosquitto"
	"github.com/edgefleet/edgefleet/fleet/pki"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// PKIDir is the directory inside the data dir holding the generated fleet
// CA (ca.pem, ca-key.pem) and the command-signing key (command-key.pem).
const PKIDir = "pki"

// CommandKeyFile is the Ed25519 command-signing key inside PKIDir.
const CommandKeyFile = "command-key.pem"

// setupTLS loads or creates the fleet CA and the command key, issues the
// server certificate, and gives the registry its CA.
func (s *Server) setupTLS() error {
	dir := filepath.Join(s.cfg.DataDir, PKIDir)
	var err error
	if s.cfg.BrokerURL != "" && !s.cfg.InsecurePlaintext {
		if !s.cfg.BrokerPasswordAuth {
			return fmt.Errorf("an external broker (--broker) authenticates devices by password: add --broker-password-auth")
		}
		if !strings.HasPrefix(s.cfg.BrokerURL, "mqtts://") && !strings.HasPrefix(s.cfg.BrokerURL, "ssl://") && !strings.HasPrefix(s.cfg.BrokerURL, "tls://") {
			return fmt.Errorf("broker %s is plaintext: use mqtts:// (with --mosquitto-dir the broker's TLS files are written for you) or --insecure-plaintext", s.cfg.BrokerURL)
		}
	}
	if s.cfg.CACertFile != "" || s.cfg.CAKeyFile != "" {
		if s.cfg.CACertFile == "" || s.cfg.CAKeyFile == "" {
			return fmt.Errorf("an operator CA needs both --ca-cert and --ca-key")
		}
		if s.ca, err = pki.LoadCA(s.cfg.CACertFile, s.cfg.CAKeyFile); err != nil {
			return err
		}
	}
	if err := s.sharePKI(dir); err != nil { // cluster_pki.go: one CA and command key for all replicas
		return err
	}
	if s.cfg.CACertFile == "" {
		var created bool
		if s.ca, created, err = pki.LoadOrCreateCA(dir, "edgefleet fleet CA"); err != nil {
			return err
		}
		if created {
			s.log.Info("generated fleet CA", "dir", dir, "fingerprint", s.ca.Fingerprint())
		}
	}
	if s.cmdKey, err = pki.LoadOrCreateSigningKey(filepath.Join(dir, CommandKeyFile)); err != nil {
		return err
	}
	hosts := append([]string{}, s.cfg.TLSHosts...)
	if len(hosts) == 0 {
		hosts = []string{"localhost", "127.0.0.1", "::1"}
		for _, a := range []string{s.cfg.HTTPAddr, s.cfg.EmbeddedAddr} {
			if h, _, err := net.SplitHostPort(a); err == nil && h != "" && h != "0.0.0.0" && h != "::" {
				hosts = append(hosts, h)
			}
		}
		// The names devices are told to use.
		for _, raw := range []string{s.cfg.PublicURL, s.cfg.PublicBrokerURL} {
			if u, err := url.Parse(raw); err == nil && u.Hostname() != "" {
				hosts = append(hosts, u.Hostname())
			}
		}
	}
	if s.srvCert, err = s.ca.IssueServer(hosts); err != nil {
		return err
	}
	s.reg.Devices.SetCA(s.ca)
	s.reg.Devices.SetPasswordAuth(s.cfg.BrokerPasswordAuth || s.cfg.InsecurePlaintext)
	if s.cfg.InsecurePlaintext {
		s.log.Warn("INSECURE: --insecure-plaintext: HTTP API, console, update repository and MQTT are unencrypted and devices log in with passwords; use only on a trusted test network")
	}
	return nil
}

func (s *Server) caFile() string {
	if s.cfg.CACertFile != "" {
		return s.cfg.CACertFile
	}
	return filepath.Join(s.cfg.DataDir, PKIDir, pki.CACertFile)
}

// CAFingerprint returns the fleet CA's "sha256:..." fingerprint.
func (s *Server) CAFingerprint() string { return s.ca.Fingerprint() }

// CAPEM returns the fleet CA certificate in PEM form.
func (s *Server) CAPEM() []byte { return s.ca.CertPEM }

// httpTLS serves the server certificate and asks for (but does not
// require) a client certificate: a device renewing its enrollment proves
// itself with its current one.
func (s *Server) httpTLS() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{s.srvCert},
		ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: s.ca.Pool()}
}

// brokerTLS is the embedded broker's TLS: devices must present a client
// certificate unless password auth is on (the server's own client logs in
// with its per-start password). nil with --insecure-plaintext.
func (s *Server) brokerTLS() *tls.Config {
	if s.cfg.InsecurePlaintext {
		return nil
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{s.srvCert},
		ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: s.ca.Pool()}
}

// signJob binds a job to the device with the command key (wire.Command).
func (s *Server) signJob(deviceID string, j wire.Job) (wire.Job, error) {
	nonce := make([]byte, 12)
	if _, err := rand.Read(nonce); err != nil {
		return j, fmt.Errorf("sign job %s: %w", j.JobID, err)
	}
	sc, err := wire.SignCommand(s.cmdKey, wire.CommandFor(deviceID, j, time.Now(), wire.CommandTTL, hex.EncodeToString(nonce)))
	if err != nil {
		return j, err
	}
	j.Signed = sc
	return j, nil
}

// Broker returns the embedded broker (nil with an external broker).
func (s *Server) Broker() *broker.Embedded { return s.emb }

// localDialURL rewrites a wildcard listen host (0.0.0.0, ::) in a broker
// URL to loopback, so the server's own client can dial the embedded broker
// and verify its certificate (which names 127.0.0.1).
func localDialURL(u string) string {
	for _, any := range []string{"://0.0.0.0:", "://[::]:", "://:"} {
		if strings.Contains(u, any) {
			return strings.Replace(u, any, "://127.0.0.1:", 1)
		}
	}
	return u
}

// mosquittoWriter configures the writer of an external Mosquitto's files
// (nil without Config.MosquittoDir). Its TLS listener gets the fleet CA
// and a broker certificate and key (the server certificate's); none with
// --insecure-plaintext.
func (s *Server) mosquittoWriter() (*mosquitto.Writer, error) {
	if s.cfg.MosquittoDir == "" {
		return nil, nil
	}
	listen := "127.0.0.1:1883"
	if _, rest, ok := strings.Cut(s.cfg.BrokerURL, "://"); ok {
		listen = rest
	}
	w := &mosquitto.Writer{Dir: s.cfg.MosquittoDir, Listen: listen,
		Server: mosquitto.Account{Username: s.cfg.BrokerUser, Hash: s.serverHash}, Accounts: s.brokerAuth.Accounts}
	if s.cfg.InsecurePlaintext || s.ca == nil {
		return w, nil
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(s.srvCert.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("mosquitto TLS key: %w", err)
	}
	w.TLSFiles = &mosquitto.TLSFiles{CA: s.ca.CertPEM,
		Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srvCert.Certificate[0]}),
		Key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})}
	return w, nil
}
