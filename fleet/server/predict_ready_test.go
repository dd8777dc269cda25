package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgefleet/edgefleet/agent/enroll"
	"github.com/edgefleet/edgefleet/agent/fleetlink"
	"github.com/edgefleet/edgefleet/fleet/broker"
	"github.com/edgefleet/edgefleet/fleet/server"
	"github.com/edgefleet/edgefleet/internal/waitfor"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// rawDevice is a device as the broker sees it between its CONNECT and
// its SUBSCRIBE: a paho client with the device's certificate and a
// persistent session that subscribes only when the test says so (an
// agent does it right after CONNACK; here the window stays open).
type rawDevice struct {
	t  *testing.T
	id string
	c  paho.Client
}

// connectRaw connects device id (enrolled in dir) to the embedded broker
// without subscribing to anything and returns once the server has taken
// in the connection (its connect event on connected).
func connectRaw(t *testing.T, e *env, connected <-chan string, id, dir string) *rawDevice {
	t.Helper()
	tc, err := enroll.TLSConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.NewClientOptions().AddBroker("ssl://" + strings.TrimPrefix(e.srv.BrokerURL(), "mqtts://")).
		SetClientID(id).SetTLSConfig(tc).SetCleanSession(false).SetAutoReconnect(false).SetConnectTimeout(10 * time.Second))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(10) })
	for got := range connected {
		if got == id {
			break
		}
	}
	return &rawDevice{t: t, id: id, c: c}
}

// subscribe subscribes the device to its predict requests and answers
// each with the prediction of a doubler ({"predictions":[[2x]]}).
func (d *rawDevice) subscribe() {
	d.t.Helper()
	tok := d.c.Subscribe(wire.PredictRequestTopic(d.id), 1, func(c paho.Client, m paho.Message) {
		req, err := wire.DecodePredictRequest(m.Payload())
		if err != nil {
			return
		}
		var in struct{ Instances [][]float64 }
		json.Unmarshal(req.Body, &in)
		body, _ := json.Marshal(map[string]any{"predictions": [][]float64{{2 * in.Instances[0][0]}}})
		resp, _ := wire.Encode(wire.PredictResponse{V: wire.Version, ID: req.ID, Model: req.Model, Status: http.StatusOK, Body: body})
		c.Publish(wire.PredictResponseTopic(d.id), 1, false, resp)
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		d.t.Fatalf("subscribe %s: %v", d.id, tok.Error())
	}
}

// TestRemotePredictBeforeSubscribe: a device connected to the embedded
// broker but not yet subscribed to its predict requests (the window
// between an agent's CONNECT and its SUBSCRIBE, held open here) would
// lose a request published to it — on its first connect the broker has
// no subscription to deliver to, after a reconnect the new client has no
// handler before its SUBSCRIBE — and the caller would wait out the
// server's predict timeout (10 minutes here; the HTTP client gives up
// after 10 s). Instead the server either waits for the subscription and
// returns the real prediction, or refuses at once with 409
// device_not_ready and sends nothing. Control: the subscribed device
// answers.
func TestRemotePredictBeforeSubscribe(t *testing.T) {
	for _, tc := range []struct {
		name                      string
		readyWait, predictTimeout time.Duration
	}{
		{"refused at once", -1, 10 * time.Minute},
		{"waits for the subscription", 10 * time.Minute, 10 * time.Minute},
		// The wait counts against the predict timeout: refused when that
		// ends first, not 504 and not after the ready wait.
		{"bounded by the predict timeout", 10 * time.Minute, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			connected, onEvent := deviceConnects()
			e := startServer(t, server.Config{PredictTimeout: tc.predictTimeout, PredictReadyWait: tc.readyWait, OnBrokerEvent: onEvent})
			e.enroll(1)
			call := func() (int, string) {
				resp, err := e.api("POST", "/api/v1/devices/dev-0/predict/m", `{"instances":[[1.5]]}`)
				if err != nil {
					return 0, fmt.Sprintf("no answer: %v", err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			wantRefused := func(what string, code int, body string) {
				t.Helper()
				if code != http.StatusConflict || !strings.Contains(body, `"device_not_ready"`) ||
					!strings.Contains(body, "device dev-0 is connected") || !strings.Contains(body, "has not subscribed to prediction requests yet") {
					t.Fatalf("%s: HTTP %d %s, want 409 device_not_ready at once", what, code, body)
				}
			}
			wantAnswer := func(what string, code int, body string) {
				t.Helper()
				var c bytes.Buffer
				if code != http.StatusOK || json.Compact(&c, []byte(body)) != nil || !strings.Contains(c.String(), `"predictions":[[3]]`) {
					t.Fatalf("%s: HTTP %d %s, want the device's prediction [[3]]", what, code, body)
				}
			}
			dev := connectRaw(t, e, connected, "dev-0", e.devs[0].dir)
			if tc.predictTimeout < time.Second {
				code, body := call()
				wantRefused("predict timeout shorter than the ready wait", code, body)
				return
			}
			if tc.readyWait < 0 {
				code, body := call()
				wantRefused("first connect, not subscribed", code, body)
				dev.subscribe()
				code, body = call()
				wantAnswer("control: subscribed", code, body)
				// A new connection (the agent restarted) keeps its session's
				// subscription, but until it subscribes itself nothing
				// routes the request on the device.
				dev.c.Disconnect(10)
				waitfor.Until(t, "dev-0 offline", func() bool {
					code, _ := call()
					return code == http.StatusConflict
				})
				connectRaw(t, e, connected, "dev-0", e.devs[0].dir)
				code, body = call()
				wantRefused("reconnected, not subscribed", code, body)
				if m := metric(t, e, "edgefleet_remote_predict_not_ready_total"); m != "2" {
					t.Fatalf("edgefleet_remote_predict_not_ready_total %s, want 2", m)
				}
				return
			}
			type result struct {
				code int
				body string
			}
			done := make(chan result, 1)
			go func() {
				code, body := call()
				done <- result{code, body}
			}()
			waitfor.Until(t, "the request waits for the subscription", func() bool {
				return metric(t, e, "edgefleet_remote_predict_waiting_subscribe") == "1"
			})
			dev.subscribe()
			r := <-done
			wantAnswer("subscribed while the request waited", r.code, r.body)
			code, body := call()
			wantAnswer("control: subscribed", code, body)
		})
	}
}

// metric returns the value of an unlabelled metric from the server's
// /metrics ("" when absent).
func metric(t *testing.T, e *env, name string) string {
	t.Helper()
	tok, err := os.ReadFile(e.srv.AdminTokenFile())
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("GET", e.srv.URL()+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	c := e.client()
	defer c.CloseIdleConnections() // polled: no connection left behind per call
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// TestRemotePredictNATSRestartedAgent checks what docs/mqtt.md says of
// a NATS cluster: an agent that restarted before the broker noticed its
// old connection die takes over its session, NATS removes the old
// connection's Last Will (the fleet still counts the device online) and
// restores the session's QoS 0 subscriptions at CONNECT, so a request
// sent while the new process's SUBSCRIBE is on its way (held by a proxy
// in front of the NATS node) reaches the agent, which answers it: the
// SUBSCRIBE registered its handlers when it was sent. (A request that
// arrives before the agent even sends its SUBSCRIBE is the agent's
// TestBeforeSubscribeWindow.) Control: once subscribed it answers too.
func TestRemotePredictNATSRestartedAgent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv := startNATSReplica(t, ctx, 10*time.Minute)
	dir := t.TempDir()
	enr, err := enroll.Enroll(ctx, srv.URL(), dir, wire.EnrollRequest{Token: testToken, DeviceID: "dev-0", Hardware: wire.Hardware{Arch: "amd64"}},
		enroll.EnrollOptions{InsecurePlaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	if enr.SubscribeQoS == nil || *enr.SubscribeQoS != 0 {
		t.Fatalf("NATS enrollment subscribe QoS %v, want 0", enr.SubscribeQoS)
	}
	tok, err := os.ReadFile(srv.AdminTokenFile())
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	call := func() (int, string) {
		req, err := http.NewRequest("POST", srv.URL()+"/api/v1/devices/dev-0/predict/m", strings.NewReader(`{"instances":[[1.5]]}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		req.Header.Set("Content-Type", "application/json")
		return answer(client.Do(req))
	}

	// The agent's previous process: its session subscribed, online, Last
	// Will set — and gone without a word (it never answers).
	addr, err := fleetlink.BrokerAddress(enr.BrokerURL)
	if err != nil {
		t.Fatal(err)
	}
	off, _ := wire.Encode(wire.Status{V: wire.Version, DeviceID: "dev-0", State: wire.Offline})
	old := paho.NewClient(paho.NewClientOptions().AddBroker(addr).SetClientID("dev-0").SetUsername(enr.Username).SetPassword(enr.Password).
		SetCleanSession(false).SetAutoReconnect(false).SetBinaryWill(wire.StatusTopic("dev-0"), off, 1, true).SetConnectTimeout(10 * time.Second))
	if tok := old.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect the old process: %v", tok.Error())
	}
	t.Cleanup(func() { old.Disconnect(10) })
	if tok := old.Subscribe(wire.PredictRequestTopic("dev-0"), 0, func(paho.Client, paho.Message) {}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe the old process: %v", tok.Error())
	}
	on, _ := wire.Encode(wire.Status{V: wire.Version, DeviceID: "dev-0", State: wire.Online, Time: time.Now().UTC()})
	if tok := old.Publish(wire.StatusTopic("dev-0"), 1, true, on); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("old process status: %v", tok.Error())
	}
	waitfor.Until(t, "server sees dev-0 online", func() bool {
		d, err := srv.Registry().Devices.Get(ctx, "dev-0")
		return err == nil && d.Presence == wire.Online
	})

	// The new process, through a proxy that holds its SUBSCRIBE.
	hold := startSubscribeHold(t, strings.TrimPrefix(enr.BrokerURL, "mqtt://"))
	viaProxy := *enr
	viaProxy.BrokerURL = hold.URL()
	dev := newDoubler(t)
	l, err := fleetlink.New(fleetlink.Config{Enrollment: viaProxy, DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		MaxReconnectInterval: time.Second, Predict: dev.predict})
	if err != nil {
		t.Fatal(err)
	}
	lctx, lcancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { l.Run(lctx); close(done) }()
	t.Cleanup(func() { lcancel(); <-done })
	<-hold.held
	if d, err := srv.Registry().Devices.Get(ctx, "dev-0"); err != nil || d.Presence != wire.Online {
		t.Fatalf("presence after the takeover %v (%v), want still online (NATS drops the old Will)", d.Presence, err)
	}
	if code, body := call(); code != http.StatusOK || !strings.Contains(body, `"predictions":[[3]]`) {
		t.Fatalf("request delivered before the new process subscribed: HTTP %d %s, want the prediction [[3]]", code, body)
	}
	hold.release()
	waitfor.Until(t, "new process subscribed", l.Online)
	if code, body := call(); code != http.StatusOK || !strings.Contains(body, `"predictions":[[3]]`) {
		t.Fatalf("control, subscribed: HTTP %d %s", code, body)
	}
}

// TestRemotePredictAgentFirstConnect: the real agent link on its first
// connect to the embedded broker, its SUBSCRIBE held by a proxy: the
// server sees it connected, but a request published now would find no
// subscription and be lost (504 after the predict timeout, 10 minutes
// here; the HTTP client gives up after 10 s). It is refused at once, 409
// device_not_ready (--predict-ready-wait negative), nothing sent; once
// the SUBSCRIBE is through the same call gets the prediction.
func TestRemotePredictAgentFirstConnect(t *testing.T) {
	connected, onEvent := deviceConnects()
	e := startServer(t, server.Config{InsecurePlaintext: true, PredictTimeout: 10 * time.Minute, PredictReadyWait: -1, OnBrokerEvent: onEvent})
	e.enroll(1)
	enr, err := enroll.LoadEnrollment(e.devs[0].dir)
	if err != nil {
		t.Fatal(err)
	}
	hold := startSubscribeHold(t, strings.TrimPrefix(enr.BrokerURL, "mqtt://"))
	viaProxy := *enr
	viaProxy.BrokerURL = hold.URL()
	dev := newDoubler(t)
	l, err := fleetlink.New(fleetlink.Config{Enrollment: viaProxy, DataDir: e.devs[0].dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		MaxReconnectInterval: time.Second, Predict: dev.predict})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	<-hold.held
	for id := range connected { // the server has taken in the connection
		if id == "dev-0" {
			break
		}
	}
	call := func() (int, string) {
		return answer(e.api("POST", "/api/v1/devices/dev-0/predict/m", `{"instances":[[1.5]]}`))
	}
	if code, body := call(); code != http.StatusConflict || !strings.Contains(body, `"device_not_ready"`) {
		t.Fatalf("agent connected, SUBSCRIBE not through: HTTP %d %s, want 409 device_not_ready at once", code, body)
	}
	hold.release()
	waitfor.Until(t, "agent subscribed", l.Online)
	if code, body := call(); code != http.StatusOK || !strings.Contains(body, `"predictions":[[3]]`) {
		t.Fatalf("control, subscribed: HTTP %d %s", code, body)
	}
}

// answer reads a predict call's response: its status and its body
// compacted when it is JSON ("no answer: …" with status 0 when the call
// failed).
func answer(resp *http.Response, err error) (int, string) {
	if err != nil {
		return 0, fmt.Sprintf("no answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var c bytes.Buffer
	if json.Compact(&c, b) != nil {
		return resp.StatusCode, string(b)
	}
	return resp.StatusCode, c.String()
}

// deviceConnects returns a channel that receives the device ID of every
// device connection the broker reports, and the server.Config
// OnBrokerEvent hook that feeds it (it never holds the broker back: a
// full channel drops the event).
func deviceConnects() (<-chan string, func(broker.ClientEvent)) {
	connected := make(chan string, 16)
	return connected, func(ev broker.ClientEvent) {
		if ev.Connected && ev.Principal.DeviceID != "" {
			select {
			case connected <- ev.Principal.DeviceID:
			default:
			}
		}
	}
}
