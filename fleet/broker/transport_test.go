package broker_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	neturl "net/url"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgefleet/edgefleet/fleet/broker"
	"github.com/edgefleet/edgefleet/fleet/broker/brokertest"
	"github.com/edgefleet/edgefleet/fleet/ingest"
	"github.com/edgefleet/edgefleet/internal/waitfor"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// transportSide starts a real broker with accounts for the server and the
// given devices and returns the broker URL (for the devices) and a
// constructor of the server's transport on it.
type transportSide struct {
	name string
	// inProcess: deliver runs in the publishing device's connection, so a
	// blocked deliver withholds that device's PUBACKs.
	inProcess bool
	start     func(t *testing.T, devices ...string) (url string, open func(deliver broker.Deliver) broker.Transport)
	// pending, when set, reports the messages the broker started last
	// holds for a session (broker.Embedded.Pending).
	pending func(clientID string) int
}

func dialSide(t *testing.T, url string) func(broker.Deliver) broker.Transport {
	return func(deliver broker.Deliver) broker.Transport {
		tr, err := broker.DialClient(broker.ClientConfig{URL: url, ClientID: "fleet-server", Username: "fleet-server", Password: "server-pw",
			Filters: wire.ServerFilters(), Deliver: deliver, WaitConnected: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		return tr
	}
}

func transportSides() []transportSide {
	accounts := func(t *testing.T, devices []string) *brokertest.Accounts {
		acc := brokertest.NewAccounts(t, "fleet-server", "server-pw")
		for _, d := range devices {
			acc.Add(t, d, "pw-"+d)
		}
		return acc
	}
	var last *broker.Embedded
	embedded := func(t *testing.T, devices []string) *broker.Embedded {
		e, err := broker.StartEmbedded(broker.EmbeddedConfig{Addr: "127.0.0.1:0", Auth: accounts(t, devices), PasswordAuth: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		last = e
		return e
	}
	pending := func(id string) int { return last.Pending(id) }
	return []transportSide{
		{name: "in-process", inProcess: true, start: func(t *testing.T, devices ...string) (string, func(broker.Deliver) broker.Transport) {
			e := embedded(t, devices)
			return e.URL(), func(deliver broker.Deliver) broker.Transport {
				tr, err := e.InProcess(wire.ServerFilters(), deliver)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { tr.Close() })
				return tr
			}
		}, pending: pending},
		{name: "mqtt-client/embedded", start: func(t *testing.T, devices ...string) (string, func(broker.Deliver) broker.Transport) {
			e := embedded(t, devices)
			return e.URL(), dialSide(t, e.URL())
		}, pending: pending},
		{name: "mqtt-client/mosquitto", start: func(t *testing.T, devices ...string) (string, func(broker.Deliver) broker.Transport) {
			url := brokertest.StartMosquitto(t, accounts(t, devices))
			return url, dialSide(t, url)
		}},
	}
}

// inbox collects delivered messages by topic.
type inbox struct {
	mu   sync.Mutex
	msgs map[string][]string
	ch   chan struct{}
}

func newInbox() *inbox { return &inbox{msgs: map[string][]string{}, ch: make(chan struct{}, 1)} }

func (b *inbox) deliver(topic string, payload []byte) {
	b.mu.Lock()
	b.msgs[topic] = append(b.msgs[topic], string(payload))
	b.mu.Unlock()
	select {
	case b.ch <- struct{}{}:
	default:
	}
}

func (b *inbox) wait(t *testing.T, topic, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		b.mu.Lock()
		for _, m := range b.msgs[topic] {
			if m == want {
				b.mu.Unlock()
				return
			}
		}
		b.mu.Unlock()
		select {
		case <-b.ch:
		case <-timeout:
			b.mu.Lock()
			defer b.mu.Unlock()
			t.Fatalf("%q never delivered on %s (got %q)", want, topic, b.msgs[topic])
		}
	}
}

func deviceOpts(url, id string, handler paho.MessageHandler) *paho.ClientOptions {
	off, _ := wire.Encode(wire.Status{V: wire.Version, DeviceID: id, State: wire.Offline})
	return paho.NewClientOptions().AddBroker(pahoURL(url)).SetClientID(id).SetUsername(id).SetPassword("pw-"+id).
		SetCleanSession(false).SetAutoReconnect(false).SetConnectTimeout(5*time.Second).
		SetBinaryWill(wire.StatusTopic(id), off, 1, true).SetDefaultPublishHandler(handler)
}

func mustConnect(t *testing.T, opts *paho.ClientOptions) paho.Client {
	t.Helper()
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", opts.ClientID, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

func mustPublish(t *testing.T, c paho.Client, topic string, retain bool, payload string) {
	t.Helper()
	if tok := c.Publish(topic, 1, retain, []byte(payload)); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// TestTransportConformance runs the same scenario through every
// Transport: the in-process one of the embedded broker and the MQTT client
// one against the embedded broker and a real Mosquitto.
func TestTransportConformance(t *testing.T) {
	for _, side := range transportSides() {
		t.Run(side.name, func(t *testing.T) {
			url, open := side.start(t, "dev-a", "dev-b")
			box := newInbox()
			tr := open(box.deliver)

			got := make(chan string, 16)
			var rawA net.Conn
			optsA := deviceOpts(url, "dev-a", func(_ paho.Client, m paho.Message) { got <- m.Topic() + " " + string(m.Payload()) })
			optsA.SetCustomOpenConnectionFn(func(u *neturl.URL, _ paho.ClientOptions) (net.Conn, error) {
				c, err := net.Dial("tcp", u.Host)
				rawA = c
				return c, err
			})
			a := mustConnect(t, optsA)
			for _, f := range wire.DeviceSubscribeTopics("dev-a") {
				if tok := a.Subscribe(f, 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
					t.Fatalf("device subscribe %s: %v", f, tok.Error())
				}
			}

			// Device → server: every kind the server subscribes to.
			mustPublish(t, a, wire.StatusTopic("dev-a"), true, "online")
			mustPublish(t, a, wire.TelemetryTopic("dev-a"), false, "batch-1")
			mustPublish(t, a, wire.JobUpdateTopic("dev-a", "job-1"), false, "succeeded")
			mustPublish(t, a, wire.JobsGetTopic("dev-a"), false, "get")
			box.wait(t, wire.StatusTopic("dev-a"), "online")
			box.wait(t, wire.TelemetryTopic("dev-a"), "batch-1")
			box.wait(t, wire.JobUpdateTopic("dev-a", "job-1"), "succeeded")
			box.wait(t, wire.JobsGetTopic("dev-a"), "get")

			// Server → device: a waited-for publish and a fire-and-forget ack.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := tr.Publish(ctx, wire.JobsNotifyTopic("dev-a"), []byte("jobs")); err != nil {
				t.Fatal(err)
			}
			if err := tr.Send(wire.TelemetryAckTopic("dev-a"), []byte("ack-1")); err != nil {
				t.Fatal(err)
			}
			want := map[string]bool{wire.JobsNotifyTopic("dev-a") + " jobs": true, wire.TelemetryAckTopic("dev-a") + " ack-1": true}
			for len(want) > 0 {
				select {
				case m := <-got:
					if !want[m] {
						t.Fatalf("device got unexpected %q", m)
					}
					delete(want, m)
				case <-time.After(10 * time.Second):
					t.Fatalf("device never got %v", want)
				}
			}

			// Abrupt loss: the Last Will reaches the server.
			rawA.Close()
			box.wait(t, wire.StatusTopic("dev-a"), string(mustEncode(t, wire.Status{V: wire.Version, DeviceID: "dev-a", State: wire.Offline})))

			// QoS 1 to an offline persistent session arrives at reconnect.
			held := 0
			if side.pending != nil {
				held = side.pending("dev-a")
			}
			if err := tr.Publish(ctx, wire.JobsNotifyTopic("dev-a"), []byte("queued")); err != nil {
				t.Fatal(err)
			}
			if side.pending != nil {
				// The embedded broker (mochi) acknowledges a publish
				// before it routes it, and a session taken over while
				// a message is being routed to it loses that message:
				// reconnect once the session holds it. (Devices fetch
				// their jobs at every connect, so a lost notification
				// only delays a job until then.)
				waitfor.Until(t, "the queued message held for the offline session", func() bool { return side.pending("dev-a") > held })
			}
			mustConnect(t, deviceOpts(url, "dev-a", func(_ paho.Client, m paho.Message) { got <- m.Topic() + " " + string(m.Payload()) }))
			// (The abrupt close may have cut the PUBACKs of the earlier
			// messages: QoS 1 redelivers them first.)
			for redelivered := true; redelivered; {
				select {
				case m := <-got:
					if m == wire.JobsNotifyTopic("dev-a")+" queued" {
						redelivered = false
					} else if m != wire.JobsNotifyTopic("dev-a")+" jobs" && m != wire.TelemetryAckTopic("dev-a")+" ack-1" {
						t.Fatalf("after reconnect device got %q", m)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("QoS 1 message for the offline session not delivered at reconnect")
				}
			}

			// Messages of another device go to that device only.
			b := mustConnect(t, deviceOpts(url, "dev-b", func(_ paho.Client, m paho.Message) { got <- "b " + m.Topic() }))
			if tok := b.Subscribe(wire.JobsNotifyTopic("dev-b"), 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				t.Fatal(tok.Error())
			}
			if err := tr.Publish(ctx, wire.JobsNotifyTopic("dev-b"), []byte("for-b")); err != nil {
				t.Fatal(err)
			}
			for atB := false; !atB; {
				select {
				case m := <-got:
					switch m {
					case "b " + wire.JobsNotifyTopic("dev-b"):
						atB = true
					case wire.JobsNotifyTopic("dev-a") + " jobs", wire.TelemetryAckTopic("dev-a") + " ack-1", wire.JobsNotifyTopic("dev-a") + " queued":
						// a late QoS 1 redelivery to dev-a
					default:
						t.Fatalf("got %q, want dev-b's job notify at dev-b", m)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("dev-b got nothing")
				}
			}

			// After Close the transport refuses to publish.
			if err := tr.Close(); err != nil {
				t.Fatal(err)
			}
			if err := tr.Publish(ctx, wire.JobsNotifyTopic("dev-a"), []byte("late")); !errors.Is(err, broker.ErrTransportClosed) {
				t.Fatalf("publish after close: %v, want ErrTransportClosed", err)
			}
			if err := tr.Send(wire.TelemetryAckTopic("dev-a"), []byte("late")); !errors.Is(err, broker.ErrTransportClosed) {
				t.Fatalf("send after close: %v, want ErrTransportClosed", err)
			}
		})
	}
}

func mustEncode(t *testing.T, v any) []byte {
	b, err := wire.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTransportSlowIngestBackpressure feeds every transport into a real
// ingest pipeline (tiny queue, one worker) whose handler is held: nothing
// is lost, every message is handled exactly once once the handler is
// released, and in-process the device's own publishes are held back (its
// PUBACKs withheld) instead of queueing without bound.
func TestTransportSlowIngestBackpressure(t *testing.T) {
	const n = 100 // within the embedded broker's per-device burst (200)
	for _, side := range transportSides() {
		t.Run(side.name, func(t *testing.T) {
			url, open := side.start(t, "dev-a")
			gate := make(chan struct{})
			started := make(chan struct{})
			var startOnce sync.Once
			var mu sync.Mutex
			handled := map[string]int{}
			all := make(chan struct{})
			p := ingest.New(ingest.Config{Queue: 4, Workers: 1}, func(_ context.Context, m ingest.Message) error {
				startOnce.Do(func() { close(started) })
				<-gate
				mu.Lock()
				handled[string(m.Payload)]++
				if len(handled) == n {
					close(all)
				}
				mu.Unlock()
				return nil
			})
			t.Cleanup(func() {
				select {
				case <-gate:
				default:
					close(gate)
				}
				p.Close()
			})
			open(func(topic string, payload []byte) {
				if err := p.Submit(context.Background(), ingest.Message{Topic: topic, Payload: payload}); err != nil {
					t.Errorf("submit: %v", err)
				}
			})
			a := mustConnect(t, deviceOpts(url, "dev-a", nil))
			toks := make([]paho.Token, n)
			for i := range toks {
				toks[i] = a.Publish(wire.TelemetryTopic("dev-a"), 1, false, []byte(fmt.Sprintf("m-%03d", i)))
			}
			<-started // the handler holds the first message
			if side.inProcess {
				// Queue 4 + 1 in the handler + 1 blocked in Submit: the
				// device's last publish cannot have been accepted.
				if toks[n-1].WaitTimeout(300 * time.Millisecond) {
					t.Fatal("in-process: the broker acknowledged every publish while ingest was blocked (no backpressure)")
				}
			}
			close(gate)
			for i, tok := range toks {
				if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
					t.Fatalf("publish %d: %v", i, tok.Error())
				}
			}
			select {
			case <-all:
			case <-time.After(30 * time.Second):
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("handled %d of %d distinct messages", len(handled), n)
			}
			mu.Lock()
			defer mu.Unlock()
			for m, c := range handled {
				if c != 1 {
					t.Errorf("%s handled %d times", m, c)
				}
			}
		})
	}
}

// TestInlineClientIDReserved: a device may not connect with the id of the
// embedded broker's inline client (it would take over the server's
// in-process session).
func TestInlineClientIDReserved(t *testing.T) {
	e, _ := startLimited(t, broker.EmbeddedConfig{}, "inline", "dev-ok")
	opts := paho.NewClientOptions().AddBroker(pahoURL(e.URL())).SetClientID("inline").SetUsername("inline").SetPassword("pw-inline").
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(opts)
	if tok := c.Connect(); tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
		c.Disconnect(10)
		t.Fatal(`client id "inline" accepted`)
	}
	rejected := e.Stats.AuthRejected.Load()
	if rejected == 0 {
		t.Fatal("no auth rejection counted")
	}
	// Control: a normal device with the same kind of credentials connects.
	mustConnect(t, deviceOpts(e.URL(), "dev-ok", nil))
	if got := e.Stats.AuthRejected.Load(); got != rejected {
		t.Fatalf("the control connection was rejected (%d rejections, was %d)", got, rejected)
	}
}
