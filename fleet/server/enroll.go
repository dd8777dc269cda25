package server

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// subscribeQoS is the QoS at which devices should subscribe to their
// server → device topics: 0 on a NATS cluster, whose MQTT listener turns
// every QoS 1 subscription into a JetStream consumer whose cost grows with
// the fleet (the device recovers what it misses while offline by jobs/get
// at every connect and telemetry resends, docs/mqtt.md); else 1.
func (s *Server) subscribeQoS() int {
	if s.natsMode() {
		return 0
	}
	return 1
}

// signLink signs the device's link settings (wire.LinkSettings), sent in
// the JobNotify that answers a jobs/get listing wire.FeatureLinkSettings:
// a device enrolled before its fleet moved to NATS learns at its next
// connect to subscribe at QoS 0, and one enrolled on NATS returns to QoS 1
// when the fleet leaves it.
func (s *Server) signLink(deviceID string) (*wire.SignedCommand, error) {
	if s.cmdKey == nil {
		return nil, nil // nothing a device could verify
	}
	nonce := make([]byte, 12)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("sign link settings of %s: %w", deviceID, err)
	}
	now := time.Now()
	return wire.SignLinkSettings(s.cmdKey, wire.LinkSettings{V: wire.Version, DeviceID: deviceID, SubscribeQoS: s.subscribeQoS(),
		IssuedAt: now.UTC(), Expires: now.Add(wire.CommandTTL).UTC(), Nonce: hex.EncodeToString(nonce)})
}

// enroll handles POST /api/v1/enroll: the token is checked by the registry
// before the CSR is parsed or signed; a client certificate on the TLS
// connection that is the device's current one makes it a renewal.
func (s *Server) enroll(w http.ResponseWriter, r *http.Request) (any, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBody {
		return nil, errf(http.StatusRequestEntityTooLarge, "too_large", "body over %d bytes", maxBody)
	}
	req, err := wire.DecodeEnrollRequest(b)
	if err != nil {
		return nil, err
	}
	var proof registry.Proof
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.PeerCertificates) > 0 {
		proof, _ = s.reg.Devices.VerifyCurrentCert(r.Context(), r.TLS.PeerCertificates[0])
	}
	e, err := s.reg.Devices.Enroll(r.Context(), req, proof)
	switch {
	case errors.Is(err, registry.ErrDeviceExists):
		return nil, errf(http.StatusConflict, "device_exists", "%v", err)
	case errors.Is(err, registry.ErrBadCSR):
		return nil, errf(http.StatusBadRequest, "bad_csr", "%v", err)
	case err != nil:
		return nil, err
	}
	if err := s.writeMosquitto(r.Context()); err != nil {
		s.log.Error("rewrite mosquitto files", "err", err)
	}
	resp := wire.EnrollResponse{V: wire.Version, DeviceID: e.Device.ID, Username: e.Device.ID, Password: e.Password,
		BrokerURL: s.cfg.PublicBrokerURL, RepoURL: s.cfg.PublicURL + "/repo", Certificate: string(e.CertPEM)}
	if s.ca != nil {
		resp.CA = string(s.ca.CertPEM)
	}
	if s.cmdKey != nil {
		resp.CommandKey = base64.StdEncoding.EncodeToString(s.cmdKey.Public().(ed25519.PublicKey))
	}
	if qos := s.subscribeQoS(); qos == 0 && wire.HasFeature(r.Header.Get(wire.FeaturesHeader), wire.FeatureSubscribeQoS) {
		// Only agents that understand the field get it (strict decoders).
		resp.SubscribeQoS = &qos
	}
	if root, err := os.ReadFile(filepath.Join(s.cfg.RepoDir, "metadata", "root.json")); err == nil && json.Valid(root) {
		resp.TUFRoot = root
	}
	s.log.Info("device enrolled", "device", e.Device.ID, "labels", e.Device.Labels, "renewed", e.Renewed, "certificate", e.CertPEM != nil)
	return resp, nil
}
