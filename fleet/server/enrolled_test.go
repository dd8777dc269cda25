package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// TestTelemetryOfRevokedDeviceRefused: the enrolled-device cache that
// spares steady telemetry a registry read forgets a device as soon as it is
// deleted; its next batch is refused, while a device that stays enrolled
// is still accepted (control).
func TestTelemetryOfRevokedDeviceRefused(t *testing.T) {
	ctx := context.Background()
	cfg := replicaConfig(t, t.TempDir(), "")
	cfg.Tokens = []string{"enroll-secret-0123456789abcdef-0123456789"}
	cfg.BrokerPasswordAuth = true
	s, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, id := range []string{"gone", "kept"} {
		if _, err := s.reg.Devices.Enroll(ctx, &wire.EnrollRequest{V: wire.Version, Token: cfg.Tokens[0], DeviceID: id}, registry.Proof{}); err != nil {
			t.Fatal(err)
		}
	}
	send := func(id string, seq uint64) error {
		b, err := wire.Encode(wire.TelemetryBatch{V: wire.Version, DeviceID: id, Epoch: "e1",
			Records: []wire.TelemetryRecord{{Seq: seq, Time: time.Now().UTC(), ModelID: "m", Version: "1", Requests: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		topic := wire.TelemetryTopic(id)
		tp, err := wire.ParseTopic(topic)
		if err != nil {
			t.Fatal(err)
		}
		return s.h.handleTelemetry(ctx, tp, b, s.cfg.Clock.Now())
	}
	for _, id := range []string{"gone", "kept"} {
		if err := send(id, 1); err != nil {
			t.Fatalf("%s: first batch: %v", id, err)
		}
	}
	if err := s.reg.Devices.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := send("gone", 2); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("batch of a deleted device: %v, want ErrNotFound", err)
	}
	if err := send("kept", 2); err != nil {
		t.Fatalf("control: %v", err)
	}
}
