package fleetlink

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgefleet/edgefleet/agent/enroll"
	"github.com/edgefleet/edgefleet/fleet/broker/brokertest"
	"github.com/edgefleet/edgefleet/fleet/broker/natscluster/natstest"
	"github.com/edgefleet/edgefleet/internal/waitfor"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// TestBeforeSubscribeWindow holds a restarted agent's SUBSCRIBE (the
// beforeSubscribe seam) on a real broker whose persistent session kept
// the device's subscriptions from its previous run. In that window:
//   - a predict request the broker delivers through the session's
//     subscription is answered (paho drops a message no handler takes,
//     and this process registers its handlers with its SUBSCRIBE: without
//     the default handler the request was lost and its caller waited out
//     its timeout);
//   - the periodic status is held, not published: "online" tells the fleet
//     the device takes predictions, and the link says it only once
//     subscribed.
//
// Control: after the SUBSCRIBE the link publishes "online" and answers.
func TestBeforeSubscribeWindow(t *testing.T) {
	for _, b := range []struct {
		name  string
		start func(t testing.TB, acc *brokertest.Accounts) string
		qos   *int // the enrollment's subscribe QoS
	}{
		{"embedded", func(t testing.TB, acc *brokertest.Accounts) string { return brokertest.StartEmbedded(t, acc) }, nil},
		{"mosquitto", brokertest.StartMosquitto, nil},
		// NATS keeps a QoS 0 subscription in the session and restores it
		// at CONNECT (a takeover by a restarted agent also removes the
		// old connection's Last Will: the fleet still sees it online).
		{"nats", func(t testing.TB, acc *brokertest.Accounts) string {
			return natstest.Start(t, 1, acc).Nodes[0].MQTTURL()
		}, qosPtr(0)},
	} {
		t.Run(b.name, func(t *testing.T) {
			acc := brokertest.NewAccounts(t, "fleet-server", "server-pw")
			acc.Add(t, "dev-w", "pw-w")
			url := b.start(t, acc)
			srv := mqttClient(t, url, "fleet-server", "server-pw")
			got := newResponses()
			if tok := srv.Subscribe(wire.PredictResponseFilter, 1, got.handle); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("subscribe responses: %v", tok.Error())
			}
			var smu sync.Mutex
			var states []wire.Presence
			if tok := srv.Subscribe(wire.StatusTopic("dev-w"), 1, func(_ paho.Client, m paho.Message) {
				if s, err := wire.DecodeStatus(m.Payload()); err == nil {
					smu.Lock()
					states = append(states, s.State)
					smu.Unlock()
				}
			}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("subscribe status: %v", tok.Error())
			}
			lastState := func() (wire.Presence, int) {
				smu.Lock()
				defer smu.Unlock()
				if len(states) == 0 {
					return "", 0
				}
				return states[len(states)-1], len(states)
			}

			dir := t.TempDir()
			if err := enroll.SaveEnrollment(dir, &enroll.Enrollment{DeviceID: "dev-w", Username: "dev-w", Password: "pw-w", BrokerURL: url, Insecure: true, Enrolled: time.Now(), SubscribeQoS: b.qos}); err != nil {
				t.Fatal(err)
			}
			predict := func(_ context.Context, model string, body []byte) ([]byte, error) {
				return []byte(`{"predictions":[[2]],"model_version":"1"}`), nil
			}
			newLink := func() *Link {
				enr, err := enroll.LoadEnrollment(dir)
				if err != nil {
					t.Fatal(err)
				}
				l, err := New(Config{Enrollment: *enr, DataDir: dir, Logger: quietLog(), Predict: predict,
					StatusInterval: time.Millisecond, MaxReconnectInterval: time.Second})
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
			run := func(l *Link) (stop func()) {
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { l.Run(ctx); close(done) }()
				var once sync.Once
				stop = func() { once.Do(func() { cancel(); <-done }) }
				t.Cleanup(stop)
				return stop
			}

			// First run: the session gets the subscriptions; an orderly stop.
			first := newLink()
			stopFirst := run(first)
			waitfor.Until(t, "first run subscribed", first.Online)
			stopFirst()
			waitfor.Until(t, "orderly offline status", func() bool { s, _ := lastState(); return s == wire.Offline })
			_, seenBefore := lastState()

			// Second run, its SUBSCRIBE held.
			l := newLink()
			connected, release := make(chan struct{}), make(chan struct{})
			var hold sync.Once
			l.beforeSubscribe = func() {
				hold.Do(func() {
					close(connected)
					<-release
				})
			}
			run(l)
			<-connected
			// NATS restores the session's subscriptions just after sending
			// CONNACK: a request may beat them (and be lost at the broker),
			// so requests are sent until the link has taken one.
			sent := 0
			waitfor.Until(t, "a request taken before the SUBSCRIBE", func() bool {
				if l.early.Load() > 0 {
					return true
				}
				if sent < 200 { // each waits for its PUBACK
					publishRequest(t, srv, "dev-w", request(t, fmt.Sprint("in-window-", sent), "m", `{"instances":[[1]]}`))
					sent++
				}
				return false
			})
			waitfor.Until(t, "periodic statuses held while not subscribed", func() bool { return l.statusHeld.Load() >= 3 })
			// No "online" status while the SUBSCRIBE is held. (An
			// "offline" may still arrive from the first run: a broker can
			// publish its Last Will while it tears the closed connection
			// down, after the orderly "offline" was seen.)
			smu.Lock()
			after := append([]wire.Presence(nil), states[seenBefore:]...)
			smu.Unlock()
			for _, s := range after {
				if s != wire.Offline {
					t.Fatalf("status %q published before the SUBSCRIBE (statuses since the first run: %q)", s, after)
				}
			}
			close(release)
			var answered *wire.PredictResponse
			waitfor.Until(t, "the request taken before the SUBSCRIBE answered", func() bool {
				got.mu.Lock()
				defer got.mu.Unlock()
				for id, r := range got.byID {
					if strings.HasPrefix(id, "in-window-") {
						answered = r
						return true
					}
				}
				return false
			})
			if answered.Status != 200 || answered.Error != nil {
				t.Fatalf("request delivered before the SUBSCRIBE: %+v, want 200", answered)
			}
			waitfor.Until(t, "online once subscribed", func() bool { s, n := lastState(); return n > seenBefore && s == wire.Online })
			publishRequest(t, srv, "dev-w", request(t, "after", "m", `{"instances":[[1]]}`))
			if r := got.wait(t, "after"); r.Status != 200 {
				t.Fatalf("control, subscribed: %+v", r)
			}
		})
	}
}
