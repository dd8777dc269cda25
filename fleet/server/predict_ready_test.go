package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgefleet/edgefleet/agent/enroll"
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
		name      string
		readyWait time.Duration
	}{
		{"refused at once", -1},
		{"waits for the subscription", 10 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			connected := make(chan string, 16)
			e := startServer(t, server.Config{PredictTimeout: 10 * time.Minute, PredictReadyWait: tc.readyWait,
				OnBrokerEvent: func(ev broker.ClientEvent) {
					if ev.Connected && ev.Principal.DeviceID != "" {
						connected <- ev.Principal.DeviceID
					}
				}})
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
