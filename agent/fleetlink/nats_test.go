package fleetlink

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/edgefleet/edgefleet/agent/enroll"
	"github.com/edgefleet/edgefleet/fleet/broker/brokertest"
	"github.com/edgefleet/edgefleet/fleet/broker/natscluster"
	"github.com/edgefleet/edgefleet/fleet/broker/natscluster/natstest"
	"github.com/edgefleet/edgefleet/internal/waitfor"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// natsFleet is a real NATS node (JetStream, MQTT listener) with a minimal
// fleet server on it, as the replicas do it: device messages from the
// shared JetStream consumer, telemetry acks as plain NATS messages, job
// notifications as QoS 1 MQTT publishes.
type natsFleet struct {
	t    *testing.T
	node *natscluster.Node
	acc  *brokertest.Accounts
	key  ed25519.PrivateKey
	pub  ed25519.PublicKey
	cons *natscluster.Consumer
	nc   *nats.Conn
	mq   paho.Client // the server's MQTT client (publishes to devices)

	mu        sync.Mutex
	pending   map[string][]wire.Job // device → pending jobs
	updates   map[string]wire.JobState
	jobsGets  int
	batches   int
	stored    map[uint64]int // seq → times stored (must stay 1)
	dropAcks  int            // acks still to drop
	ackedSent int
	// linkQoS, when set, is answered in signed link settings to a jobs/get
	// that lists wire.FeatureLinkSettings; oldServer refuses such a
	// jobs/get as a server from before the field does (strict decoding).
	linkQoS   *int
	oldServer bool
	featured  int // jobs/get with features received
}

func startNATSFleet(t *testing.T, maxConsumers int) *natsFleet {
	t.Helper()
	f := &natsFleet{t: t, acc: brokertest.NewAccounts(t, "fleet-server", "server-secret-pw"),
		pending: map[string][]wire.Job{}, updates: map[string]wire.JobState{}, stored: map[uint64]int{}}
	f.pub, f.key, _ = ed25519.GenerateKey(nil)
	cl := natstest.StartConfig(t, 1, f.acc, natscluster.NodeConfig{MaxConsumers: maxConsumers})
	f.node = cl.Nodes[0]
	// The MQTT listener creates its streams at its first MQTT connection
	// (a replica's MQTT client connects before it consumes).
	f.mq = mqttClient(t, f.node.MQTTURL(), "fleet-server", "server-secret-pw")
	c, err := natscluster.Consume(context.Background(), natscluster.ConsumerConfig{URLs: []string{f.node.ClientURL()},
		User: "fleet-server", Password: "server-secret-pw", Logger: quietLog(), Handle: f.handle})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	f.cons = c
	if f.nc, err = nats.Connect(f.node.ClientURL(), nats.UserInfo("fleet-server", "server-secret-pw")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.nc.Close)
	return f
}

// handle is the server's side: jobs/get answers with the pending jobs,
// terminal job updates clear them, telemetry is stored once per seq and
// acknowledged (unless an ack is to be dropped).
func (f *natsFleet) handle(_ context.Context, topic string, payload []byte) error {
	tp, err := wire.ParseTopic(topic)
	if err != nil {
		return nil
	}
	switch tp.Kind {
	case wire.KindJobsGet:
		g, err := wire.DecodeJobsGet(payload)
		if err != nil {
			return nil
		}
		f.mu.Lock()
		featured := g.Has(wire.FeatureLinkSettings)
		if featured {
			f.featured++
		}
		if featured && f.oldServer {
			f.mu.Unlock()
			return nil // "unknown field features": refused
		}
		f.jobsGets++
		var link *wire.SignedCommand
		if featured && f.linkQoS != nil {
			now := time.Now()
			link, err = wire.SignLinkSettings(f.key, wire.LinkSettings{V: wire.Version, DeviceID: tp.DeviceID, SubscribeQoS: *f.linkQoS,
				IssuedAt: now, Expires: now.Add(time.Hour), Nonce: fmt.Sprint("l", f.jobsGets)})
			if err != nil {
				f.t.Error(err)
			}
		}
		f.mu.Unlock()
		f.notifyWith(tp.DeviceID, link)
	case wire.KindJobUpdate:
		u, err := wire.DecodeJobUpdate(payload)
		if err != nil {
			return nil
		}
		f.mu.Lock()
		f.updates[u.JobID] = u.State
		if u.State.Terminal() {
			var kept []wire.Job
			for _, j := range f.pending[tp.DeviceID] {
				if j.JobID != u.JobID {
					kept = append(kept, j)
				}
			}
			f.pending[tp.DeviceID] = kept
		}
		f.mu.Unlock()
	case wire.KindTelemetry:
		b, err := wire.DecodeTelemetryBatch(payload)
		if err != nil || len(b.Records) == 0 {
			return nil
		}
		f.mu.Lock()
		f.batches++
		var high uint64
		for _, r := range b.Records {
			if f.stored[r.Seq] == 0 {
				f.stored[r.Seq] = 1
			}
			high = max(high, r.Seq)
		}
		drop := f.dropAcks > 0
		if drop {
			f.dropAcks--
		} else {
			f.ackedSent++
		}
		f.mu.Unlock()
		if !drop {
			a, _ := wire.Encode(wire.TelemetryAck{V: wire.Version, DeviceID: tp.DeviceID, Seq: high, Epoch: b.Epoch})
			return f.cons.PublishCore(wire.TelemetryAckTopic(tp.DeviceID), a)
		}
	}
	return nil
}

// notify publishes the device's pending jobs, signed, as a QoS 1 MQTT
// message like the replicas (a QoS 0 subscription gets it at QoS 0;
// nothing is kept for it while the device is offline).
func (f *natsFleet) notify(dev string) { f.notifyWith(dev, nil) }

// notifyWith is notify with link settings.
func (f *natsFleet) notifyWith(dev string, link *wire.SignedCommand) {
	f.mu.Lock()
	jobs := append([]wire.Job{}, f.pending[dev]...)
	f.mu.Unlock()
	n := wire.JobNotify{V: wire.Version, DeviceID: dev, Jobs: []wire.Job{}, Link: link}
	for _, j := range jobs {
		sc, err := wire.SignCommand(f.key, wire.CommandFor(dev, j, time.Now(), time.Hour, "n-"+j.JobID))
		if err != nil {
			f.t.Error(err)
			return
		}
		j.Signed = sc
		n.Jobs = append(n.Jobs, j)
	}
	b, _ := wire.Encode(n)
	if tok := f.mq.Publish(wire.JobsNotifyTopic(dev), 1, false, b); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		f.t.Errorf("publish notify to %s: %v", dev, tok.Error())
	}
}

func (f *natsFleet) counts() (jobsGets, batches, acksSent int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.jobsGets, f.batches, f.ackedSent
}

// consumers is the number of JetStream consumers on the MQTT listener's
// message stream (the replicas' one plus one per QoS 1 subscription).
func (f *natsFleet) consumers() int {
	js, err := jetstream.New(f.nc)
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, natscluster.MQTTStream)
	if err != nil {
		f.t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return info.State.Consumers
}

// link starts a device link to the node; it stops at the test's end or
// when the returned stop is called.
func (f *natsFleet) link(id string, qos *int, dir string, dev *recordingDevice) (*Link, func()) {
	f.t.Helper()
	f.acc.Add(f.t, id, "pw-"+id)
	l, err := New(Config{Enrollment: enroll.Enrollment{DeviceID: id, Username: id, Password: "pw-" + id, BrokerURL: f.node.MQTTURL(),
		Insecure: true, CommandKey: f.pub, SubscribeQoS: qos},
		DataDir: dir, Jobs: dev, Telemetry: dev, Logger: quietLog(), UploadInterval: 50 * time.Millisecond,
		AckTimeout: 500 * time.Millisecond, MaxReconnectInterval: 2 * time.Second})
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	f.t.Cleanup(stop)
	return l, stop
}

func qosPtr(q int) *int { return &q }

// TestNATSSubscribeQoS0: a device told to subscribe at QoS 0 costs the
// NATS node no JetStream consumer (control: at QoS 1 it costs three, one
// per server → device topic), and what QoS 0 loses is recovered: a job
// notified while the device was offline (not kept for a QoS 0
// subscription) reaches it through the jobs/get it publishes at reconnect,
// and a telemetry ack that never arrived makes it resend the records, which
// the server recognises, so every record is acknowledged and stored once.
func TestNATSSubscribeQoS0(t *testing.T) {
	f := startNATSFleet(t, 0)
	base := f.consumers() // the replicas' shared consumer

	dir := t.TempDir()
	dev := &recordingDevice{ran: make(chan string, 10)}
	l, stop := f.link("dev-q0", qosPtr(0), dir, dev)
	waitfor.Until(t, "QoS 0 link online (subscribed)", l.Online)
	waitfor.Until(t, "first jobs/get handled", func() bool { g, _, _ := f.counts(); return g >= 1 })
	if got := f.consumers(); got != base {
		t.Fatalf("QoS 0 device: %d consumers on %s, want %d (none of its own)", got, natscluster.MQTTStream, base)
	}
	ctrl := &recordingDevice{ran: make(chan string, 10)}
	lq1, _ := f.link("dev-q1", nil, t.TempDir(), ctrl)
	waitfor.Until(t, "QoS 1 link online", lq1.Online)
	if got, want := f.consumers(), base+len(wire.DeviceSubscribeTopics("dev-q1")); got != want {
		t.Fatalf("control: QoS 1 device: %d consumers, want %d", got, want)
	}

	// A job notified while the device is offline is lost at QoS 0 ...
	stop()
	job := wire.Job{JobID: "j-offline", Kind: wire.JobRollback, ModelID: "m", Version: "1", State: wire.JobQueued, Created: time.Now()}
	f.mu.Lock()
	f.pending["dev-q0"] = []wire.Job{job}
	gets, _, _ := f.counts0()
	f.mu.Unlock()
	f.notify("dev-q0")
	// ... and recovered by the jobs/get of the next connection.
	for i := uint64(1); i <= 3; i++ {
		dev.recs = append(dev.recs, wire.TelemetryRecord{Seq: i, Time: time.Now().UTC(), ModelID: "m", Version: "1", Role: wire.RolePrimary, Requests: 1})
	}
	f.mu.Lock()
	f.dropAcks = 1 // the first telemetry ack is lost
	f.mu.Unlock()
	l2, _ := f.link("dev-q0", qosPtr(0), dir, dev)
	waitfor.Until(t, "link back online", l2.Online)
	waitRan(t, dev, job.JobID, "the job notified while offline never ran after the reconnect")
	if g, _, _ := f.counts(); g <= gets {
		t.Fatalf("jobs/get count %d, want more than %d (the reconnect's)", g, gets)
	}
	waitfor.Until(t, "job's final update at the server", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.updates[job.JobID] == wire.JobSucceeded
	})

	// The lost ack: the device resends after its ack timeout and the
	// second ack releases the records.
	waitfor.Until(t, "telemetry acknowledged after a resend", func() bool { return dev.ackedUpTo() == 3 })
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.batches < 2 || f.ackedSent < 1 {
		t.Fatalf("%d batches, %d acks sent: want the batch resent after the dropped ack", f.batches, f.ackedSent)
	}
	if len(f.stored) != 3 {
		t.Fatalf("stored seqs %v, want 1..3 once each", f.stored)
	}
}

// counts0 is counts with f.mu held.
func (f *natsFleet) counts0() (int, int, int) { return f.jobsGets, f.batches, f.ackedSent }

// TestSubscribeRefused: a broker that refuses a subscription (a NATS node
// capping JetStream consumers at 2 refuses the third QoS 1 subscription
// with SUBACK 0x80) is noticed: the link reports which topic was refused,
// stays offline for uploads and jobs, and retries. Control: on the same
// node a device subscribing at QoS 0 (no consumers) is granted everything
// and goes online.
func TestSubscribeRefused(t *testing.T) {
	f := startNATSFleet(t, 3) // the replicas' consumer + 2
	dev := &recordingDevice{ran: make(chan string, 10)}
	l, _ := f.link("dev-capped", nil, t.TempDir(), dev)
	waitfor.Until(t, "refusal retried", func() bool { return l.SubscribeAttempts() >= 2 && l.SubscribeErr() != nil })
	var se *SubscribeError
	if err := l.SubscribeErr(); !errors.As(err, &se) {
		t.Fatalf("SubscribeErr = %v, want a *SubscribeError", err)
	}
	if len(se.Refused) != 1 {
		t.Fatalf("refused %v, want exactly one topic (two consumers fit under the cap)", se.Refused)
	}
	for topic, code := range se.Refused {
		if code != 0x80 {
			t.Errorf("%s: SUBACK %#x, want 0x80", topic, code)
		}
	}
	if l.Online() {
		t.Fatal("link online although a subscription was refused")
	}
	if g, _, _ := f.counts(); g != 0 {
		t.Fatalf("%d jobs/get published by a link without its subscriptions", g)
	}

	ctrl := &recordingDevice{ran: make(chan string, 10)}
	lc, _ := f.link("dev-q0", qosPtr(0), t.TempDir(), ctrl)
	waitfor.Until(t, "control link online", lc.Online)
	if err := lc.SubscribeErr(); err != nil {
		t.Fatalf("control: %v", err)
	}
}

// TestNATSLinkSettingsMoveEnrolledDevice: a device enrolled when its fleet
// was not on NATS (no subscribe_qos: QoS 1, three JetStream consumers)
// learns from the signed link settings answering its jobs/get that the
// fleet now wants QoS 0, subscribes again at QoS 0 on the same connection
// (its consumers are gone), keeps it in its enrollment file and subscribes
// at QoS 0 from the first connect after a restart. Without the change the
// device stays at QoS 1 until it enrolls again.
func TestNATSLinkSettingsMoveEnrolledDevice(t *testing.T) {
	f := startNATSFleet(t, 0)
	base := f.consumers()
	dir := t.TempDir()
	e := enroll.Enrollment{DeviceID: "dev-old", Username: "dev-old", BrokerURL: f.node.MQTTURL(), Insecure: true, CommandKey: f.pub}
	if err := enroll.SaveEnrollment(dir, &e); err != nil {
		t.Fatal(err)
	}
	// Before the move: the fleet says nothing, the device is at QoS 1.
	l0, stop0 := f.link("dev-old", nil, dir, &recordingDevice{ran: make(chan string, 10)})
	waitfor.Until(t, "link online at QoS 1", l0.Online)
	if got, want := f.consumers(), base+len(wire.DeviceSubscribeTopics("dev-old")); got != want {
		t.Fatalf("QoS 1 device: %d consumers, want %d", got, want)
	}
	stop0()

	// The fleet moved to NATS: the next connect learns QoS 0.
	f.mu.Lock()
	f.linkQoS = qosPtr(0)
	f.mu.Unlock()
	dev := &recordingDevice{ran: make(chan string, 10)}
	l, stop := f.link("dev-old", nil, dir, dev)
	waitfor.Until(t, "link online", l.Online)
	waitfor.Until(t, "resubscribed at QoS 0", func() bool { return l.Resubscribes() == 1 })
	if q := l.SubscribeQoS(); q != 0 {
		t.Fatalf("subscribe QoS %d after the fleet's link settings, want 0", q)
	}
	waitfor.Until(t, "the device's QoS 1 consumers removed", func() bool { return f.consumers() == base })
	saved, err := enroll.LoadEnrollment(dir)
	if err != nil {
		t.Fatal(err)
	}
	if saved.SubscribeQoS == nil || *saved.SubscribeQoS != 0 {
		t.Fatalf("enrollment file subscribe_qos %v, want 0", saved.SubscribeQoS)
	}
	if cmds, _ := l.Refused(); cmds != 0 {
		t.Fatalf("%d refused: the genuine link settings must verify", cmds)
	}

	// The QoS 0 subscriptions still deliver: a job reaches the device.
	job := wire.Job{JobID: "j-after", Kind: wire.JobRollback, ModelID: "m", Version: "1", State: wire.JobQueued, Created: time.Now()}
	f.mu.Lock()
	f.pending["dev-old"] = []wire.Job{job}
	f.mu.Unlock()
	f.notify("dev-old")
	waitRan(t, dev, job.JobID, "job not delivered on the QoS 0 subscriptions")

	// After a restart (settings from the enrollment file) it subscribes at
	// QoS 0 at once: no consumer, nothing to change.
	stop()
	f.mu.Lock()
	f.pending["dev-old"] = nil
	f.mu.Unlock()
	again, err := enroll.LoadEnrollment(dir)
	if err != nil {
		t.Fatal(err)
	}
	l2, _ := f.link("dev-old", again.SubscribeQoS, dir, &recordingDevice{ran: make(chan string, 10)})
	waitfor.Until(t, "link online again", l2.Online)
	waitfor.Until(t, "link settings answered again", func() bool { return f.featuredCount() >= 2 })
	if got := f.consumers(); got != base {
		t.Fatalf("after restart: %d consumers, want %d", got, base)
	}
	if l2.Resubscribes() != 0 {
		t.Fatalf("restarted link resubscribed %d times, want 0 (already at QoS 0)", l2.Resubscribes())
	}
}

func (f *natsFleet) featuredCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.featured
}

// TestLinkSettingsForgedRefused: only link settings signed by the fleet
// change a device's subscription QoS. A device-level client (another
// enrolled device) cannot even publish on the victim's jobs/notify (the
// node's permissions); a publisher that can (a rogue broker, stood in for
// by the server's account) gets settings signed by another key, for
// another device, expired or of another kind refused and counted, the QoS
// unchanged. Control: the fleet's genuine settings are applied.
func TestLinkSettingsForgedRefused(t *testing.T) {
	f := startNATSFleet(t, 0)
	dev := &recordingDevice{ran: make(chan string, 10)}
	l, _ := f.link("dev-a", nil, t.TempDir(), dev)
	waitfor.Until(t, "link online", l.Online)
	_, evilKey, _ := ed25519.GenerateKey(nil)
	now := time.Now()
	settings := func(key ed25519.PrivateKey, dev string, qos int, issued time.Time) *wire.SignedCommand {
		sc, err := wire.SignLinkSettings(key, wire.LinkSettings{V: wire.Version, DeviceID: dev, SubscribeQoS: qos,
			IssuedAt: issued, Expires: issued.Add(time.Hour), Nonce: fmt.Sprint("n", issued.UnixNano())})
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	notify := func(c paho.Client, link *wire.SignedCommand) paho.Token {
		b, _ := wire.Encode(wire.JobNotify{V: wire.Version, DeviceID: "dev-a", Jobs: []wire.Job{}, Link: link})
		tok := c.Publish(wire.JobsNotifyTopic("dev-a"), 1, false, b)
		tok.WaitTimeout(10 * time.Second)
		return tok
	}

	// A device-level client: its publish on dev-a's jobs/notify is not
	// delivered (checked below: nothing refused, QoS unchanged).
	f.acc.Add(t, "dev-evil", "pw-evil")
	evil := mqttClient(t, f.node.MQTTURL(), "dev-evil", "pw-evil")
	notify(evil, settings(evilKey, "dev-a", 0, now))

	job := wire.Job{JobID: "j1", Kind: wire.JobRollback, ModelID: "m", Version: "1", State: wire.JobQueued, Created: now}
	jobCmd, _ := wire.SignCommand(f.key, wire.CommandFor("dev-a", job, now, time.Hour, "nj"))
	for i, forged := range []struct {
		name string
		sc   *wire.SignedCommand
	}{
		{"signed by another key", settings(evilKey, "dev-a", 0, now)},
		{"signed for another device", settings(f.key, "dev-b", 0, now)},
		{"expired", settings(f.key, "dev-a", 0, now.Add(-2*time.Hour))},
		{"a job's signed command", jobCmd},
	} {
		notify(f.mq, forged.sc)
		waitfor.Until(t, forged.name+" refused", func() bool { n, _ := l.Refused(); return n == int64(i+1) })
		if q := l.SubscribeQoS(); q != 1 || l.Resubscribes() != 0 {
			t.Fatalf("%s: QoS %d after %d resubscribes, want 1 and none", forged.name, q, l.Resubscribes())
		}
	}

	// Control: the fleet's own settings.
	notify(f.mq, settings(f.key, "dev-a", 0, now))
	waitfor.Until(t, "genuine settings applied", func() bool { return l.Resubscribes() == 1 })
	if q := l.SubscribeQoS(); q != 0 {
		t.Fatalf("QoS %d after the genuine settings, want 0", q)
	}
	if n, _ := l.Refused(); n != 4 {
		t.Fatalf("%d refused, want the 4 forgeries (the device-level client's publish must not arrive)", n)
	}
}

// TestLinkSettingsOldServer: a fleet server from before JobsGet.Features
// refuses a jobs/get that lists them (strict decoding); the link then asks
// again without features, so the jobs pending for the device still arrive
// (control: the featured jobs/get was sent and refused).
func TestLinkSettingsOldServer(t *testing.T) {
	f := startNATSFleet(t, 0)
	f.oldServer = true
	job := wire.Job{JobID: "j-pending", Kind: wire.JobRollback, ModelID: "m", Version: "1", State: wire.JobQueued, Created: time.Now()}
	f.pending["dev-a"] = []wire.Job{job}
	dev := &recordingDevice{ran: make(chan string, 10)}
	l, _ := f.link("dev-a", nil, t.TempDir(), dev)
	waitfor.Until(t, "link online", l.Online)
	waitRan(t, dev, job.JobID, "pending job never arrived from a server that refuses jobs/get features")
	if f.featuredCount() == 0 {
		t.Fatal("no jobs/get with features was sent")
	}
	if q := l.SubscribeQoS(); q != 1 {
		t.Fatalf("QoS %d, want 1 (nothing said)", q)
	}
}

// waitRan waits (up to waitfor.Bound) for dev to run job want; failing
// says never (never: what should have made it run) or which job ran instead.
func waitRan(t *testing.T, dev *recordingDevice, want, never string) {
	t.Helper()
	select {
	case id := <-dev.ran:
		if id != want {
			t.Fatalf("ran job %s, want %s", id, want)
		}
	case <-time.After(waitfor.Bound):
		t.Fatal(never)
	}
}
