package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/agent/enroll"
	"github.com/edgefleet/edgefleet/agent/fleetlink"
	"github.com/edgefleet/edgefleet/fleet/server"
	"github.com/edgefleet/edgefleet/internal/waitfor"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// doubler is a device's prediction hook: {"instances":[[x]]} →
// {"predictions":[[2x]]}; model "missing" is refused as the agent refuses
// an unknown model; model "stuck" never answers (it reports on started).
type doubler struct{ started, release chan struct{} }

func newDoubler(t *testing.T) *doubler {
	d := &doubler{started: make(chan struct{}, 1), release: make(chan struct{})}
	t.Cleanup(func() { close(d.release) })
	return d
}

func (d *doubler) predict(_ context.Context, model string, body []byte) ([]byte, error) {
	switch model {
	case "missing":
		return nil, notFound{}
	case "stuck":
		d.started <- struct{}{}
		<-d.release
		return nil, fmt.Errorf("released")
	}
	var req struct{ Instances [][]float64 }
	if err := json.Unmarshal(body, &req); err != nil || len(req.Instances) != 1 || len(req.Instances[0]) != 1 {
		return nil, fmt.Errorf("bad instances %s", body)
	}
	return json.Marshal(map[string]any{"predictions": [][]float64{{2 * req.Instances[0][0]}}, "model_version": "1"})
}

type notFound struct{}

func (notFound) Error() string        { return "model_not_found: model missing is not installed" }
func (notFound) HTTPStatus() int      { return http.StatusNotFound }
func (notFound) ErrorCode() string    { return "model_not_found" }
func (notFound) ErrorMessage() string { return "model missing is not installed" }

var _ fleetlink.RefusedError = notFound{}

// predictCall posts a prediction through the fleet API and returns the
// status and body (0 and the error when no answer came).
type predictCall func(device, model, body string) (int, string)

// checkRemotePredict is the shared scenario: an online device answers
// through the API (control); an unknown model is the device's 404; a
// device that never connected and one that went offline are answered 409
// device_offline at once — with PredictTimeout at 10 minutes and an HTTP
// client giving up after 10 s, a request that waited for the device
// could not pass; an unknown device is 404; a request the device has not
// answered when it goes offline is answered 503 device_offline.
func checkRemotePredict(t *testing.T, call predictCall, dev *doubler, stopOnline func()) {
	t.Helper()
	code, body := call("dev-0", "m", `{"instances":[[1.5]]}`)
	if code != http.StatusOK || !strings.Contains(body, `"predictions"`) || !strings.Contains(body, "3") {
		t.Fatalf("online device: HTTP %d %s, want 200 with predictions [[3]]", code, body)
	}
	if code, body := call("dev-0", "missing", `{"instances":[[1]]}`); code != http.StatusNotFound || !strings.Contains(body, "model_not_found") {
		t.Fatalf("unknown model: HTTP %d %s, want the device's 404 model_not_found", code, body)
	}
	if code, body := call("dev-1", "m", `{"instances":[[1]]}`); code != http.StatusConflict ||
		!strings.Contains(body, "device_offline") || !strings.Contains(body, "device dev-1 is offline (last seen never)") {
		t.Fatalf("never connected: HTTP %d %s, want 409 device_offline", code, body)
	}
	if code, body := call("dev-0", "m", `[1.5]`); code != http.StatusBadRequest || !strings.Contains(body, "want a JSON object") {
		t.Fatalf("body not an object: HTTP %d %s, want 400", code, body)
	}
	if code, body := call("dev-0", "bad%20model", `{"instances":[[1]]}`); code != http.StatusBadRequest || !strings.Contains(body, "bad_model") {
		t.Fatalf("bad model reference: HTTP %d %s, want 400 bad_model", code, body)
	}
	if code, body := call("dev-nope", "m", `{"instances":[[1]]}`); code != http.StatusNotFound {
		t.Fatalf("unknown device: HTTP %d %s, want 404", code, body)
	}
	type result struct {
		code int
		body string
	}
	inFlight := make(chan result, 1)
	go func() {
		code, body := call("dev-0", "stuck", `{"instances":[[1]]}`)
		inFlight <- result{code, body}
	}()
	<-dev.started // the device has the request and will not answer it
	stopOnline()
	if r := <-inFlight; r.code != http.StatusServiceUnavailable || !strings.Contains(r.body, "device_offline") || !strings.Contains(r.body, "went offline before answering") {
		t.Fatalf("request in flight when the device went offline: HTTP %d %s, want 503 device_offline", r.code, r.body)
	}
	var last string
	waitfor.Until(t, "dev-0 offline answered at once", func() bool {
		code, body := call("dev-0", "m", `{"instances":[[1]]}`)
		last = body
		return code == http.StatusConflict
	})
	if !strings.Contains(last, "device dev-0 is offline (last seen 20") || !strings.Contains(last, " ago)") {
		t.Fatalf("offline device: %s, want its last-seen time", last)
	}
}

// TestRemotePredictEmbedded: the fleet API's remote prediction through
// the embedded broker (which would queue a request to an offline device
// in its session and answer it whenever the device returns).
func TestRemotePredictEmbedded(t *testing.T) {
	e := startServer(t, server.Config{PredictTimeout: 10 * time.Minute})
	e.enroll(2)
	dev := newDoubler(t)
	l, stop := runLinkPredict(t, e.devs[0].dir, dev.predict)
	waitfor.Until(t, "dev-0 online", l.Online)
	waitAndCheckRemotePredict(t, e.api, dev, stop)
}

// waitAndCheckRemotePredict calls the remote predict endpoint through api
// (the server's API as admin) until the server sees dev-0 online, then
// runs checkRemotePredict.
func waitAndCheckRemotePredict(t *testing.T, api func(method, path, body string) (*http.Response, error), dev *doubler, stop func()) {
	t.Helper()
	call := func(device, model, body string) (int, string) {
		resp, err := api("POST", "/api/v1/devices/"+device+"/predict/"+model, body)
		if err != nil {
			return 0, fmt.Sprintf("predict %s: %v", device, err) // no answer
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitfor.Until(t, "server sees dev-0 online", func() bool {
		code, _ := call("dev-0", "m", `{"instances":[[1]]}`)
		return code == http.StatusOK
	})
	checkRemotePredict(t, call, dev, stop)
}

// TestRemotePredictNATS: the same through a fleet-server replica on a
// NATS cluster, where devices subscribe at QoS 0 and a request to an
// offline device would be dropped: the caller is told at once instead of
// waiting out the timeout.
func TestRemotePredictNATS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv := startNATSReplica(t, ctx, 10*time.Minute)
	var dirs []string
	for i := range 2 {
		dir := t.TempDir()
		if _, err := enroll.Enroll(ctx, srv.URL(), dir, wire.EnrollRequest{Token: testToken, DeviceID: fmt.Sprint("dev-", i), Hardware: wire.Hardware{Arch: "amd64"}},
			enroll.EnrollOptions{InsecurePlaintext: true}); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	dev := newDoubler(t)
	l, stop := runLinkPredict(t, dirs[0], dev.predict)
	waitfor.Until(t, "dev-0 online", l.Online)
	tok, err := os.ReadFile(srv.AdminTokenFile())
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	api := func(method, path, body string) (*http.Response, error) {
		req, err := http.NewRequest(method, srv.URL()+path, strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		req.Header.Set("Content-Type", "application/json")
		return client.Do(req)
	}
	waitAndCheckRemotePredict(t, api, dev, stop)
}
