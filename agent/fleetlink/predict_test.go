package fleetlink

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgefleet/edgefleet/agent/daemon"
	"github.com/edgefleet/edgefleet/agent/enroll"
	"github.com/edgefleet/edgefleet/agent/predict"
	"github.com/edgefleet/edgefleet/fleet/broker/brokertest"
	"github.com/edgefleet/edgefleet/internal/wire"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// mqttClient connects a plain paho client to the test broker.
func mqttClient(t *testing.T, brokerURL, user, pass string) paho.Client {
	t.Helper()
	addr, err := BrokerAddress(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.NewClientOptions().AddBroker(addr).SetClientID(user).SetUsername(user).SetPassword(pass).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", user, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// responses collects PredictResponses by id.
type responses struct {
	mu   sync.Mutex
	byID map[string]*wire.PredictResponse
	bad  []string
	ch   chan struct{}
}

func newResponses() *responses {
	return &responses{byID: map[string]*wire.PredictResponse{}, ch: make(chan struct{}, 1000)}
}

func (r *responses) handle(_ paho.Client, m paho.Message) {
	resp, err := wire.DecodePredictResponse(m.Payload())
	r.mu.Lock()
	if err != nil {
		r.bad = append(r.bad, fmt.Sprintf("%v: %s", err, m.Payload()))
	} else {
		r.byID[resp.ID] = resp
	}
	r.mu.Unlock()
	r.ch <- struct{}{}
}

func (r *responses) wait(t *testing.T, id string) *wire.PredictResponse {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		got, bad := r.byID[id], r.bad
		r.mu.Unlock()
		if len(bad) > 0 {
			t.Fatalf("undecodable predict responses: %v", bad)
		}
		if got != nil {
			return got
		}
		select {
		case <-r.ch:
		case <-timeout:
			t.Fatalf("no predict response for id %q", id)
		}
	}
}

func publishRequest(t *testing.T, c paho.Client, device string, payload []byte) {
	t.Helper()
	if tok := c.Publish(wire.PredictRequestTopic(device), 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish predict request: %v", tok.Error())
	}
}

func request(t *testing.T, id, model, body string) []byte {
	b, err := wire.Encode(wire.PredictRequest{V: wire.Version, ID: id, Model: model, Body: json.RawMessage(body)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitOnline waits for the device's retained online status, published by
// the link after it has subscribed.
func waitOnline(t *testing.T, srv paho.Client, device string) {
	t.Helper()
	online := make(chan struct{}, 1)
	tok := srv.Subscribe(wire.StatusTopic(device), 1, func(_ paho.Client, m paho.Message) {
		if s, err := wire.DecodeStatus(m.Payload()); err == nil && s.State == wire.Online {
			select {
			case online <- struct{}{}:
			default:
			}
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe status: %v", tok.Error())
	}
	select {
	case <-online:
	case <-time.After(20 * time.Second):
		t.Fatalf("device %s never came online", device)
	}
}

// TestPredictTopicPair runs the real daemon with a real model and the real
// fleet link (Daemon) against the embedded broker: the server client asks
// for predictions over MQTT and gets exactly what the REST API answers.
func TestPredictTopicPair(t *testing.T) {
	acc := brokertest.NewAccounts(t, "fleet-server", "server-pw")
	acc.Add(t, "dev-a", "pw-a")
	acc.Add(t, "dev-b", "pw-b")
	url := brokertest.StartEmbedded(t, acc)

	cfg := daemon.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.Fleet.Enabled = true
	if err := daemon.ModelsAdd(context.Background(), daemon.AddOptions{DataDir: cfg.DataDir,
		File: filepath.Join("../../testdata/models", "hello_world_int8.tflite"), ID: "sine", Version: "1"}); err != nil {
		t.Fatal(err)
	}
	if err := enroll.SaveEnrollment(cfg.DataDir, &enroll.Enrollment{DeviceID: "dev-a", Username: "dev-a", Password: "pw-a", BrokerURL: url, Insecure: true, Enrolled: time.Now()}); err != nil {
		t.Fatal(err)
	}
	srv := mqttClient(t, url, "fleet-server", "server-pw")
	got := newResponses()
	if tok := srv.Subscribe(wire.PredictResponseFilter, 1, got.handle); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe responses: %v", tok.Error())
	}

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, cfg, daemon.Options{FleetLink: Daemon, Log: quietLog(), Ready: func(a string) { ready <- a }})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon.Run: %v", err)
		}
	}()
	var httpAddr string
	select {
	case httpAddr = <-ready:
	case err := <-done:
		t.Fatalf("daemon exited: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("daemon not ready")
	}
	waitOnline(t, srv, "dev-a")

	// A valid request: the same prediction the REST API gives.
	body := `{"instances":[[1.0]]}`
	publishRequest(t, srv, "dev-a", request(t, "r-ok", "sine", body))
	r := got.wait(t, "r-ok")
	if r.Status != 200 || r.Error != nil || r.Model != "sine" {
		t.Fatalf("r-ok: %+v", r)
	}
	var mq predict.Response
	if err := json.Unmarshal(r.Body, &mq); err != nil {
		t.Fatalf("r-ok body %s: %v", r.Body, err)
	}
	hresp, err := http.Post("http://"+httpAddr+"/api/v1/models/sine/predict", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var rest predict.Response
	json.NewDecoder(hresp.Body).Decode(&rest)
	hresp.Body.Close()
	mqP, _ := json.Marshal(mq.Predictions)
	restP, _ := json.Marshal(rest.Predictions)
	if mq.ModelVersion != "1" || string(mqP) != string(restP) {
		t.Fatalf("MQTT prediction %s (version %s) != REST %s", mqP, mq.ModelVersion, restP)
	}
	var vals [][]float64
	if err := json.Unmarshal(mqP, &vals); err != nil || len(vals) != 1 || len(vals[0]) != 1 || math.Abs(vals[0][0]-math.Sin(1)) > 0.1 {
		t.Fatalf("sine(1) prediction %s, want ≈ %.3f (%v)", mqP, math.Sin(1), err)
	}

	// A version pin, a wrong shape, an unknown model and malformed requests.
	publishRequest(t, srv, "dev-a", request(t, "r-pin", "sine@1", body))
	publishRequest(t, srv, "dev-a", request(t, "r-shape", "sine", `{"instances":[[1.0,2.0]]}`))
	publishRequest(t, srv, "dev-a", request(t, "r-nomodel", "nope", body))
	publishRequest(t, srv, "dev-a", request(t, "r-instances", "sine", `{"instances":"x"}`))
	publishRequest(t, srv, "dev-a", []byte(`{"v":1,"id":"r-strict","model":"sine","body":{"instances":[[1]]},"extra":true}`))
	publishRequest(t, srv, "dev-a", []byte(`{"v":1,"id":"r-nobody","model":"sine"}`))
	publishRequest(t, srv, "dev-a", []byte(`not json at all`))
	publishRequest(t, srv, "dev-a", []byte(`{"v":1,"id":"bad id/+","model":"sine","body":{}}`))
	if r := got.wait(t, "r-pin"); r.Status != 200 || r.Model != "sine@1" {
		t.Fatalf("r-pin: %+v", r)
	}
	for id, want := range map[string]struct {
		status int
		code   string
	}{
		"r-shape": {422, "invalid_input"}, "r-nomodel": {404, "model_not_found"}, "r-instances": {400, ""},
		"r-strict": {400, "bad_request"}, "r-nobody": {400, "bad_request"},
	} {
		r := got.wait(t, id)
		if r.Status != want.status || r.Error == nil || r.Body != nil || (want.code != "" && r.Error.Code != want.code) {
			t.Errorf("%s: got %+v error %+v, want status %d code %q", id, r, r.Error, want.status, want.code)
		}
	}
	if r := got.wait(t, "r-strict"); !strings.Contains(r.Error.Message, `unknown field "extra"`) {
		t.Errorf("r-strict message %q", r.Error.Message)
	}

	// Concurrent requests are all answered, each with its own id.
	for i := range 12 {
		publishRequest(t, srv, "dev-a", request(t, fmt.Sprintf("c-%d", i), "sine", fmt.Sprintf(`{"instances":[[%d.5]]}`, i%3)))
	}
	for i := range 12 {
		if r := got.wait(t, fmt.Sprintf("c-%d", i)); r.Status != 200 {
			t.Fatalf("c-%d: %+v", i, r)
		}
	}
	// Nothing undecodable and nothing for the unreadable payloads.
	got.mu.Lock()
	n := len(got.byID)
	got.mu.Unlock()
	if want := 2 + 5 + 12; n != want {
		t.Errorf("%d distinct responses, want %d", n, want)
	}

	// Another device can neither subscribe to dev-a's responses nor
	// receive them.
	b := mqttClient(t, url, "dev-b", "pw-b")
	stolen := make(chan string, 10)
	tok := b.Subscribe(wire.PredictResponseTopic("dev-a"), 1, func(_ paho.Client, m paho.Message) { stolen <- string(m.Payload()) })
	tok.WaitTimeout(5 * time.Second)
	if code := tok.(*paho.SubscribeToken).Result()[wire.PredictResponseTopic("dev-a")]; code != 0x80 && tok.Error() == nil {
		t.Fatalf("dev-b subscribed to dev-a's responses: suback %#x", code)
	}
	publishRequest(t, srv, "dev-a", request(t, "r-after", "sine", body))
	got.wait(t, "r-after")
	time.Sleep(100 * time.Millisecond)
	select {
	case m := <-stolen:
		t.Fatalf("dev-b received dev-a's response %s", m)
	default:
	}
	// Nor can it ask dev-a for predictions.
	if tok := b.Publish(wire.PredictRequestTopic("dev-a"), 0, false, request(t, "r-forged", "sine", body)); tok.WaitTimeout(5 * time.Second) {
		time.Sleep(200 * time.Millisecond)
		got.mu.Lock()
		_, forged := got.byID["r-forged"]
		got.mu.Unlock()
		if forged {
			t.Fatal("dev-b's forged request was answered")
		}
	}
}

// TestPredictConcurrencyBound checks the semaphore: no more than
// PredictConcurrency predictions run at once, and every request is
// answered; a panicking Predict gives a 500, never a crash.
func TestPredictConcurrencyBound(t *testing.T) {
	acc := brokertest.NewAccounts(t, "fleet-server", "server-pw")
	acc.Add(t, "dev-a", "pw-a")
	url := brokertest.StartEmbedded(t, acc)
	var inFlight, maxSeen atomic.Int32
	predict := func(ctx context.Context, model string, body []byte) ([]byte, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxSeen.Load()
			if n <= m || maxSeen.CompareAndSwap(m, n) {
				break
			}
		}
		if strings.Contains(string(body), "panic") {
			panic("boom")
		}
		time.Sleep(50 * time.Millisecond)
		return []byte(`{"predictions":[[1]],"model_version":"1"}`), nil
	}
	l, err := New(Config{Enrollment: enroll.Enrollment{DeviceID: "dev-a", Username: "dev-a", Password: "pw-a", BrokerURL: url, Insecure: true},
		DataDir: t.TempDir(), Logger: quietLog(), Predict: predict, PredictConcurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	srv := mqttClient(t, url, "fleet-server", "server-pw")
	got := newResponses()
	if tok := srv.Subscribe(wire.PredictResponseFilter, 1, got.handle); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitOnline(t, srv, "dev-a")
	for i := range 10 {
		publishRequest(t, srv, "dev-a", request(t, fmt.Sprintf("q-%d", i), "m", `{"instances":[[1]]}`))
	}
	publishRequest(t, srv, "dev-a", request(t, "q-panic", "m", `{"instances":[["panic"]]}`))
	for i := range 10 {
		if r := got.wait(t, fmt.Sprintf("q-%d", i)); r.Status != 200 {
			t.Fatalf("q-%d: %+v", i, r)
		}
	}
	if r := got.wait(t, "q-panic"); r.Status != 500 || r.Error == nil || r.Error.Code != "internal" {
		t.Fatalf("q-panic: %+v", r)
	}
	if m := maxSeen.Load(); m > 2 || m < 1 {
		t.Fatalf("max concurrent predictions %d, want 1..2", m)
	}
}
