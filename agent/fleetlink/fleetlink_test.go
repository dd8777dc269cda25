package fleetlink

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/agent/enroll"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// TestLinkRefusesPlaintextBroker: a device enrolled over TLS never falls
// back to plain MQTT.
func TestLinkRefusesPlaintextBroker(t *testing.T) {
	l, err := New(Config{Enrollment: enroll.Enrollment{DeviceID: "d", BrokerURL: "mqtt://127.0.0.1:1"}, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "plaintext") {
		t.Fatalf("plaintext broker: %v", err)
	}
}

func TestBrokerAddress(t *testing.T) {
	for in, want := range map[string]string{"mqtt://h:1883": "tcp://h:1883", "mqtts://h:8883": "ssl://h:8883", "tcp://h:1": "tcp://h:1"} {
		if got, err := BrokerAddress(in); err != nil || got != want {
			t.Errorf("BrokerAddress(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"http://h:1", "mqtt://h", "::"} {
		if _, err := BrokerAddress(bad); err == nil {
			t.Errorf("BrokerAddress(%q) accepted", bad)
		}
	}
}

func TestNewValidatesAndLoadsJournal(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("empty config accepted")
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, enroll.Dir), 0o700)
	os.WriteFile(filepath.Join(dir, enroll.Dir, journalFile), []byte(`{"j1":{"v":1,"device_id":"d","job_id":"j1","state":"succeeded"}}`), 0o600)
	l, err := New(Config{Enrollment: enroll.Enrollment{DeviceID: "d", BrokerURL: "mqtt://127.0.0.1:1"}, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := l.journal["j1"]; !ok || u.State != wire.JobSucceeded {
		t.Fatalf("journal not loaded: %+v", l.journal)
	}
}
