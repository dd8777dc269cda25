package fleetlink

import (
	"context"
	"crypto/ed25519"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgefleet/edgefleet/agent/enroll"
	"github.com/edgefleet/edgefleet/fleet/broker/brokertest"
	"github.com/edgefleet/edgefleet/internal/waitfor"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// recordingDevice is a job handler and telemetry source that records what
// the link made it do.
type recordingDevice struct {
	mu    sync.Mutex
	jobs  []string
	recs  []wire.TelemetryRecord
	acked uint64
	ran   chan string
}

func (d *recordingDevice) HandleJob(ctx context.Context, j wire.Job, progress func(int)) error {
	d.mu.Lock()
	d.jobs = append(d.jobs, string(j.Kind)+":"+j.Version)
	d.mu.Unlock()
	d.ran <- j.JobID
	return nil
}

func (d *recordingDevice) Read(after uint64, limit int) ([]wire.TelemetryRecord, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []wire.TelemetryRecord
	for _, r := range d.recs {
		if r.Seq > after && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (d *recordingDevice) Ack(upTo uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.acked = upTo
	kept := d.recs[:0]
	for _, r := range d.recs {
		if r.Seq > upTo {
			kept = append(kept, r)
		}
	}
	d.recs = kept
	return nil
}

func (d *recordingDevice) Dropped() (uint64, error) { return 0, nil }
func (d *recordingDevice) Notify() <-chan struct{}  { return nil }

func (d *recordingDevice) ackedUpTo() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.acked
}

// TestRogueBrokerCannotSteer runs a real Link against a broker the
// attacker controls (here: the attacker holds the broker's privileged
// account, so it can publish anything on the device's topics). Unsigned,
// forged, expired, other-device and re-labelled commands are refused and
// never reach the job handler; an ack for seq 2^40 is ignored, so the
// device keeps its telemetry. Controls: a command signed with the fleet's
// key is obeyed, and a genuine ack releases exactly what was sent.
func TestRogueBrokerCannotSteer(t *testing.T) {
	acc := brokertest.NewAccounts(t, "fleet-server", "server-pw")
	acc.Add(t, "dev-a", "pw-a")
	url := brokertest.StartEmbedded(t, acc)
	pub, fleetKey, _ := ed25519.GenerateKey(nil)
	_, otherKey, _ := ed25519.GenerateKey(nil)

	dev := &recordingDevice{ran: make(chan string, 10)}
	for i := uint64(1); i <= 3; i++ {
		dev.recs = append(dev.recs, wire.TelemetryRecord{Seq: i, Time: time.Now().UTC(), ModelID: "m", Version: "1", Role: wire.RolePrimary, Requests: 1})
	}
	l, err := New(Config{Enrollment: enroll.Enrollment{DeviceID: "dev-a", Username: "dev-a", Password: "pw-a", BrokerURL: url, Insecure: true, CommandKey: pub},
		DataDir: t.TempDir(), Jobs: dev, Telemetry: dev, Logger: quietLog(), UploadInterval: 50 * time.Millisecond, AckTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rogue := mqttClient(t, url, "fleet-server", "server-pw")
	batches := make(chan uint64, 10)
	rogue.Subscribe(wire.TelemetryFilter, 1, func(_ paho.Client, m paho.Message) {
		if b, err := wire.DecodeTelemetryBatch(m.Payload()); err == nil && len(b.Records) > 0 {
			batches <- b.Records[len(b.Records)-1].Seq
		}
	}).WaitTimeout(5 * time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitfor.Until(t, "link online", l.Online)

	// Ack poisoning: answer the batch (seq 1..3) with an ack for 2^40.
	var last uint64
	select {
	case last = <-batches:
	case <-time.After(20 * time.Second):
		t.Fatal("no telemetry batch")
	}
	poison, _ := wire.Encode(wire.TelemetryAck{V: wire.Version, DeviceID: "dev-a", Seq: 1 << 40})
	rogue.Publish(wire.TelemetryAckTopic("dev-a"), 1, false, poison).WaitTimeout(5 * time.Second)
	waitfor.Until(t, "poisoned ack refused", func() bool { _, acks := l.Refused(); return acks == 1 })
	if got := dev.ackedUpTo(); got != 0 {
		t.Fatalf("device acked %d after a poisoned ack", got)
	}
	// Control: the genuine ack for what was sent.
	good, _ := wire.Encode(wire.TelemetryAck{V: wire.Version, DeviceID: "dev-a", Seq: last})
	rogue.Publish(wire.TelemetryAckTopic("dev-a"), 1, false, good).WaitTimeout(5 * time.Second)
	waitfor.Until(t, "genuine ack applied", func() bool { return dev.ackedUpTo() == 3 })

	now := time.Now()
	target := &wire.Target{Name: "models/m/2/model.tflite", Length: 10, SHA256: "00"}
	rollback := wire.Job{JobID: "j-evil", Kind: wire.JobRollback, ModelID: "m", Version: "0", State: wire.JobQueued, Created: now}
	install := wire.Job{JobID: "j-good", Kind: wire.JobInstall, ModelID: "m", Version: "2", Target: target, State: wire.JobQueued, Created: now}
	sign := func(key ed25519.PrivateKey, c wire.Command) *wire.SignedCommand {
		sc, err := wire.SignCommand(key, c)
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	forged := func(desc string, j wire.Job) {
		t.Helper()
		before, _ := l.Refused()
		b, _ := wire.Encode(wire.JobNotify{V: wire.Version, DeviceID: "dev-a", Jobs: []wire.Job{j}})
		rogue.Publish(wire.JobsNotifyTopic("dev-a"), 1, false, b).WaitTimeout(5 * time.Second)
		waitfor.Until(t, desc+" refused", func() bool { n, _ := l.Refused(); return n == before+1 })
	}
	forged("unsigned rollback", rollback)
	j := rollback
	j.Signed = sign(otherKey, wire.CommandFor("dev-a", rollback, now, time.Hour, "n1"))
	forged("rollback signed by another key", j)
	j.Signed = sign(fleetKey, wire.CommandFor("dev-a", rollback, now.Add(-2*time.Hour), time.Hour, "n2"))
	forged("expired rollback", j)
	j.Signed = sign(fleetKey, wire.CommandFor("dev-b", rollback, now, time.Hour, "n3"))
	forged("rollback signed for another device", j)
	// A genuine signature for one job attached to another (replay under a new id).
	j = rollback
	j.JobID = "j-evil-2"
	j.Signed = sign(fleetKey, wire.CommandFor("dev-a", rollback, now, time.Hour, "n4"))
	forged("signature of another job", j)
	// Unsigned fields changed next to a valid signature: the signed copy is
	// what runs (checked below: install of version 2, not version 9).
	j = install
	j.Signed = sign(fleetKey, wire.CommandFor("dev-a", install, now, time.Hour, "n5"))
	j.Version = "9"
	b, _ := wire.Encode(wire.JobNotify{V: wire.Version, DeviceID: "dev-a", Jobs: []wire.Job{j}})
	rogue.Publish(wire.JobsNotifyTopic("dev-a"), 1, false, b).WaitTimeout(5 * time.Second)
	select {
	case id := <-dev.ran:
		if id != "j-good" {
			t.Fatalf("ran %s", id)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the signed command was not obeyed")
	}
	dev.mu.Lock()
	defer dev.mu.Unlock()
	if len(dev.jobs) != 1 || dev.jobs[0] != "install:2" {
		t.Fatalf("jobs run: %v, want only the signed install:2", dev.jobs)
	}
}
