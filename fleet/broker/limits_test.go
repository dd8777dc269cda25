package broker_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgefleet/edgefleet/fleet/broker"
	"github.com/edgefleet/edgefleet/fleet/broker/brokertest"
	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/internal/waitfor"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// startLimited starts an embedded broker (password auth) with cfg's limits
// and accounts fleet-server/server-pw plus dev-<n>/pw-<n>.
func startLimited(t *testing.T, cfg broker.EmbeddedConfig, devices ...string) (*broker.Embedded, *brokertest.Accounts) {
	acc := brokertest.NewAccounts(t, "fleet-server", "server-pw")
	for _, d := range devices {
		acc.Add(t, d, "pw-"+d)
	}
	cfg.Addr, cfg.Auth, cfg.PasswordAuth = "127.0.0.1:0", acc, true
	e, err := broker.StartEmbedded(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, acc
}

func mqttString(b *bytes.Buffer, s string) {
	binary.Write(b, binary.BigEndian, uint16(len(s)))
	b.WriteString(s)
}

func varint(n int) []byte {
	var out []byte
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		out = append(out, d)
		if n == 0 {
			return out
		}
	}
}

// rawConnect opens a TCP connection and logs in with MQTT 3.1.1.
func rawConnect(t *testing.T, addr, id, pw string) net.Conn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var vh bytes.Buffer
	mqttString(&vh, "MQTT")
	vh.Write([]byte{4, 0x80 | 0x40 | 0x02, 0, 60})
	mqttString(&vh, id)
	mqttString(&vh, id)
	mqttString(&vh, pw)
	pk := append([]byte{0x10}, varint(vh.Len())...)
	pk = append(pk, vh.Bytes()...)
	if _, err := c.Write(pk); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 4)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("connect %s: connack %x %v", id, ack, err)
	}
	c.SetReadDeadline(time.Time{})
	return c
}

// rss returns the process's resident set size (VmRSS), or 0 if unknown.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestOversizedPacketRefusedWithoutMemoryGrowth is the attack of issue 8:
// four concurrent 200 MB publishes from device credentials. The broker
// refuses each on its fixed header (remaining length over the maximum)
// and closes the connection before reading the body, so the process RSS
// stays flat. Control: a 200 KiB publish (under the 256 KiB default) is
// delivered.
func TestOversizedPacketRefusedWithoutMemoryGrowth(t *testing.T) {
	devs := []string{"d1", "d2", "d3", "d4", "d5"}
	e, _ := startLimited(t, broker.EmbeddedConfig{}, devs...)
	srv, err := connect(t, e.URL(), connOpts{id: "fleet-server", user: "fleet-server", pass: "server-pw"})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	if tok := srv.Subscribe(wire.TelemetryFilter, 1, rec.handle); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}

	before := rss()
	if before == 0 {
		t.Skip("no VmRSS in /proc/self/status")
	}
	var peak atomic.Int64
	peak.Store(before)
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if r := rss(); r > peak.Load() {
				peak.Store(r)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	const size = 200 << 20
	var wg sync.WaitGroup
	sent := make([]int64, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := rawConnect(t, e.Addr(), devs[i], "pw-"+devs[i])
			defer c.Close()
			var h bytes.Buffer
			topic := wire.TelemetryTopic(devs[i])
			h.WriteByte(0x30)
			h.Write(varint(size))
			mqttString(&h, topic)
			w := bufio.NewWriterSize(c, 64<<10)
			w.Write(h.Bytes())
			chunk := make([]byte, 64<<10)
			for sent[i] < size {
				c.SetWriteDeadline(time.Now().Add(10 * time.Second))
				n, err := w.Write(chunk)
				sent[i] += int64(n)
				if err != nil {
					return // the broker closed the connection
				}
			}
			w.Flush()
		}(i)
	}
	wg.Wait()
	close(stop)
	<-sampled
	growth := peak.Load() - before
	t.Logf("4 concurrent 200 MB publishes: bytes accepted by the socket before the close %v; RSS before %d MiB, peak %d MiB (growth %d MiB)",
		sent, before>>20, peak.Load()>>20, growth>>20)
	for i, n := range sent {
		if n >= size {
			t.Errorf("publisher %d: the broker read all %d bytes instead of closing", i, n)
		}
	}
	if growth > 64<<20 {
		t.Fatalf("RSS grew by %d MiB during oversized publishes", growth>>20)
	}

	// Control: a large but allowed publish goes through.
	d5, err := connect(t, e.URL(), connOpts{id: "d5", user: "d5", pass: "pw-d5"})
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 200<<10)
	if tok := d5.Publish(wire.TelemetryTopic("d5"), 1, false, big); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("200 KiB publish: %v", tok.Error())
	}
	if m := rec.wait(t, wire.TelemetryTopic("d5")); len(m) != len(big) {
		t.Fatalf("control publish arrived with %d bytes", len(m))
	}
}

// TestDeviceRateLimit: a device publishing faster than its rate loses the
// excess (counted); tokens refill with the clock; another device keeps
// its own budget.
func TestDeviceRateLimit(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	clk := clock.Func(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	e, _ := startLimited(t, broker.EmbeddedConfig{DeviceRate: 1, DeviceBurst: 5, Clock: clk}, "a", "b")
	srv, err := connect(t, e.URL(), connOpts{id: "fleet-server", user: "fleet-server", pass: "server-pw"})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	srv.Subscribe(wire.TelemetryFilter, 1, rec.handle).WaitTimeout(5 * time.Second)
	a, err := connect(t, e.URL(), connOpts{id: "a", user: "a", pass: "pw-a"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		a.Publish(wire.TelemetryTopic("a"), 0, false, []byte(fmt.Sprint(i))).WaitTimeout(5 * time.Second)
	}
	waitfor.Until(t, "15 publishes dropped", func() bool { return e.Stats.RateLimited.Load() == 15 })
	waitfor.Until(t, "5 publishes delivered", func() bool { return rec.count(wire.TelemetryTopic("a")) == 5 })
	// Three seconds later three more tokens are there.
	mu.Lock()
	now = now.Add(3 * time.Second)
	mu.Unlock()
	for i := 0; i < 5; i++ {
		a.Publish(wire.TelemetryTopic("a"), 0, false, []byte("later")).WaitTimeout(5 * time.Second)
	}
	waitfor.Until(t, "refilled budget used", func() bool { return e.Stats.RateLimited.Load() == 17 && rec.count(wire.TelemetryTopic("a")) == 8 })
	// Control: device b has its own budget.
	b, err := connect(t, e.URL(), connOpts{id: "b", user: "b", pass: "pw-b"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		b.Publish(wire.TelemetryTopic("b"), 1, false, []byte("b")).WaitTimeout(5 * time.Second)
	}
	waitfor.Until(t, "device b's messages", func() bool { return rec.count(wire.TelemetryTopic("b")) == 5 })
	if n := e.Stats.RateLimited.Load(); n != 17 {
		t.Fatalf("rate limited %d, want 17", n)
	}
	// Predict responses have their own, 10× larger bucket (burst 50 here):
	// device a, out of general budget, can still answer predictions.
	srv.Subscribe(wire.PredictResponseFilter, 1, rec.handle).WaitTimeout(5 * time.Second)
	for i := 0; i < 60; i++ {
		a.Publish(wire.PredictResponseTopic("a"), 0, false, []byte("r")).WaitTimeout(5 * time.Second)
	}
	waitfor.Until(t, "predict responses", func() bool {
		return rec.count(wire.PredictResponseTopic("a")) == 50 && e.Stats.RateLimited.Load() == 27
	})
}

// TestStatusPayloadBounded: an oversized status is dropped; a normal one
// is delivered.
func TestStatusPayloadBounded(t *testing.T) {
	e, _ := startLimited(t, broker.EmbeddedConfig{MaxStatusBytes: 1024}, "a")
	srv, _ := connect(t, e.URL(), connOpts{id: "fleet-server", user: "fleet-server", pass: "server-pw"})
	rec := newRecorder()
	srv.Subscribe(wire.StatusFilter, 1, rec.handle).WaitTimeout(5 * time.Second)
	a, err := connect(t, e.URL(), connOpts{id: "a", user: "a", pass: "pw-a"})
	if err != nil {
		t.Fatal(err)
	}
	a.Publish(wire.StatusTopic("a"), 0, false, bytes.Repeat([]byte("s"), 2048)).WaitTimeout(5 * time.Second)
	a.Publish(wire.StatusTopic("a"), 1, false, []byte("small")).WaitTimeout(5 * time.Second)
	if m := rec.wait(t, wire.StatusTopic("a")); m != "small" {
		t.Fatalf("status = %d bytes", len(m))
	}
	if n := rec.count(wire.StatusTopic("a")); n != 1 || e.Stats.OversizeStatus.Load() != 1 {
		t.Fatalf("delivered %d statuses, dropped %d oversize", n, e.Stats.OversizeStatus.Load())
	}
}

// TestQoS1DeliveredToOfflineSession: a job published at QoS 1 while the
// device is offline reaches it when it reconnects to its persistent
// session (the ACL hook used to forget the client at disconnect and drop
// it). Connect/disconnect events are reported.
func TestQoS1DeliveredToOfflineSession(t *testing.T) {
	var mu sync.Mutex
	var events []string
	e, _ := startLimited(t, broker.EmbeddedConfig{OnEvent: func(ev broker.ClientEvent) {
		if ev.Principal.Server {
			return
		}
		mu.Lock()
		events = append(events, fmt.Sprintf("%s connected=%v", ev.Principal.DeviceID, ev.Connected))
		mu.Unlock()
	}}, "a")
	srv, _ := connect(t, e.URL(), connOpts{id: "fleet-server", user: "fleet-server", pass: "server-pw"})
	got := make(chan string, 10)
	handler := func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) }
	opts := func() *paho.ClientOptions {
		return paho.NewClientOptions().AddBroker(pahoURL(e.URL())).SetClientID("a").SetUsername("a").SetPassword("pw-a").
			SetCleanSession(false).SetAutoReconnect(false).SetDefaultPublishHandler(handler)
	}
	a := paho.NewClient(opts())
	if tok := a.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if tok := a.Subscribe(wire.JobsNotifyTopic("a"), 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	a.Disconnect(100)
	waitfor.Until(t, "device a offline", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(events) > 0 && events[len(events)-1] == "a connected=false"
	})
	if tok := srv.Publish(wire.JobsNotifyTopic("a"), 1, false, []byte("queued-job")); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	a = paho.NewClient(opts())
	if tok := a.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer a.Disconnect(100)
	select {
	case m := <-got:
		if m != "queued-job" {
			t.Fatalf("got %q", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("QoS 1 message for the offline session was not delivered on reconnect")
	}
	waitfor.Until(t, "connect event of the reconnect", func() bool { mu.Lock(); defer mu.Unlock(); return len(events) >= 3 })
	mu.Lock()
	defer mu.Unlock()
	if events[0] != "a connected=true" || events[1] != "a connected=false" || events[2] != "a connected=true" {
		t.Fatalf("events %v", events)
	}
}

// TestNoRetainedCopiesWhileServerSubscribed: while the server's
// in-process transport is subscribed, device statuses and Last Wills
// reach it live and the broker keeps no retained copy (10,000 of them cost
// ≈ 15 MB and mochi copied them all once a second). Control: a status
// published before the transport subscribed is retained and delivered at
// subscription, so a device that connected first is not missed.
func TestNoRetainedCopiesWhileServerSubscribed(t *testing.T) {
	e, _ := startLimited(t, broker.EmbeddedConfig{}, "dev-1")
	c, err := net.Dial("tcp", e.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var vh bytes.Buffer // CONNECT like the agent: persistent session, retained QoS 1 Last Will
	mqttString(&vh, "MQTT")
	vh.Write([]byte{4, 0x80 | 0x40 | 0x20 | 0x08 | 0x04, 0, 60})
	mqttString(&vh, "dev-1")
	mqttString(&vh, wire.StatusTopic("dev-1"))
	mqttString(&vh, "will")
	mqttString(&vh, "dev-1")
	mqttString(&vh, "pw-dev-1")
	if err := writePacket(c, 0x10, vh.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := expect(bufio.NewReaderSize(c, 16), 0x20, 2); err != nil {
		t.Fatal(err)
	}
	publishRetained := func(payload string, id byte) {
		var p bytes.Buffer
		mqttString(&p, wire.StatusTopic("dev-1"))
		p.Write([]byte{0, id})
		p.WriteString(payload)
		if err := writePacket(c, 0x33, p.Bytes()); err != nil { // PUBLISH, QoS 1, retain
			t.Fatal(err)
		}
		if err := expect(bufio.NewReaderSize(c, 16), 0x40, 2); err != nil {
			t.Fatal(err)
		}
	}
	type inbox struct {
		mu  sync.Mutex
		got []string
	}
	subscribe := func() (*inbox, broker.Transport) {
		in := &inbox{}
		tr, err := e.InProcess(wire.ServerFilters(), func(topic string, payload []byte) {
			in.mu.Lock()
			in.got = append(in.got, string(payload))
			in.mu.Unlock()
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		return in, tr
	}
	// snapshot lists the distinct payloads delivered, in order (a publish
	// racing with a subscription may arrive both live and retained).
	snapshot := func(in *inbox) string {
		in.mu.Lock()
		defer in.mu.Unlock()
		var distinct []string
		for _, p := range in.got {
			if !slices.Contains(distinct, p) {
				distinct = append(distinct, p)
			}
		}
		return strings.Join(distinct, ",")
	}

	publishRetained("early", 1)
	server, _ := subscribe() // retained messages are handed over inside Subscribe
	if got := snapshot(server); got != "early" {
		t.Fatalf("server transport got %q at subscription, want the retained early status", got)
	}
	publishRetained("late", 2)
	waitfor.Until(t, "late status delivered", func() bool { return snapshot(server) == "early,late" })
	c.Close() // abrupt: the Last Will (retained, says the device's CONNECT) is published
	waitfor.Until(t, "Last Will delivered", func() bool { return snapshot(server) == "early,late,will" })

	later, _ := subscribe()
	if got := snapshot(later); got != "early" {
		t.Fatalf("a later subscription got %q, want only the status retained before the server subscribed", got)
	}
}
