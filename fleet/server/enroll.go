package server

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/wire"
)

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
	if s.natsMode() && wire.HasFeature(r.Header.Get(wire.FeaturesHeader), wire.FeatureSubscribeQoS) {
		// A NATS MQTT listener turns every QoS 1 subscription into a
		// JetStream consumer whose cost grows with the fleet: the device
		// subscribes at QoS 0 and recovers what it misses while offline by
		// jobs/get at every connect and telemetry resends (docs/mqtt.md).
		// Only agents that understand the field get it (strict decoders).
		qos := 0
		resp.SubscribeQoS = &qos
	}
	if root, err := os.ReadFile(filepath.Join(s.cfg.RepoDir, "metadata", "root.json")); err == nil && json.Valid(root) {
		resp.TUFRoot = root
	}
	s.log.Info("device enrolled", "device", e.Device.ID, "labels", e.Device.Labels, "renewed", e.Renewed, "certificate", e.CertPEM != nil)
	return resp, nil
}
