package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgefleet/edgefleet/fleet/apitype"
	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/fleet/rollout"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// TestGateStatusWaitsInsteadOfFailing: min_requests below its threshold and
// gates without data read "waiting", a real failure reads FAIL.
func TestGateStatusWaitsInsteadOfFailing(t *testing.T) {
	for _, tc := range []struct {
		g    rollout.GateResult
		want string
	}{
		{rollout.GateResult{Name: "min_requests", Value: 12, Threshold: 50, Evaluated: true, OK: false}, "waiting: 12/50 requests"},
		{rollout.GateResult{Name: "min_requests", Value: 60, Threshold: 50, Evaluated: true, OK: true}, "pass"},
		{rollout.GateResult{Name: "p95_latency_ratio", Evaluated: false, OK: true}, "waiting for data"},
		{rollout.GateResult{Name: "error_rate", Value: 0.2, Threshold: 0.05, Evaluated: true, OK: false}, "FAIL"},
	} {
		if got := gateStatus(tc.g); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.g, got, tc.want)
		}
	}
}

// TestWatchLineSaysWhyItWaits: a device whose job is not done is named with
// its presence (offline since ...), then missing requests, then the soak.
func TestWatchLineSaysWhyItWaits(t *testing.T) {
	now := time.Date(2026, 12, 4, 5, 0, 0, 0, time.Local)
	r := &rollout.Rollout{
		Spec:  rollout.Spec{ID: "r1", Stages: []int{50, 100}, Soak: 20 * time.Second},
		Phase: rollout.Running,
		Devices: map[string]*rollout.DeviceState{
			"dev-1": {JobState: wire.JobSucceeded},
			"dev-3": {JobState: wire.JobQueued, ConfirmBy: now.Add(9 * time.Minute)},
		},
		Gates: []rollout.GateResult{{Name: "min_requests", Value: 12, Threshold: 50, Evaluated: true}},
	}
	devs := map[string]apitype.DeviceView{
		"dev-1": {Device: registry.Device{ID: "dev-1", Presence: wire.Online}},
		"dev-2": {Device: registry.Device{ID: "dev-2", Presence: wire.Online}},
		"dev-3": {Device: registry.Device{ID: "dev-3", Presence: wire.Offline, LastSeen: now.Add(-3 * time.Minute)}},
	}
	line := watchLine(r, devs, now)
	for _, want := range []string{"running stage 1/2 (50%)", "devices 1/3", "waiting for dev-3 (offline since 04:57:00, times out in 9m0s)"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
	if strings.Contains(line, "FAIL") {
		t.Errorf("line %q shows a failure while waiting", line)
	}

	r.Devices["dev-3"].JobState = wire.JobTimedOut
	if line := watchLine(r, devs, now); !strings.Contains(line, "waiting: 12/50 requests of the new version") {
		t.Errorf("all jobs done, requests missing: %q", line)
	}

	r.Gates[0] = rollout.GateResult{Name: "min_requests", Value: 50, Threshold: 50, Evaluated: true, OK: true}
	r.SoakStarted = now.Add(-5 * time.Second)
	if line := watchLine(r, devs, now); !strings.Contains(line, "soaking: 15s left") {
		t.Errorf("soaking: %q", line)
	}
}

// TestFinalState: a succeeded rollout ends --watch with nil, a rolled-back
// one with an error carrying the reason.
func TestFinalState(t *testing.T) {
	r := &rollout.Rollout{Spec: rollout.Spec{ID: "r1", ModelID: "iris", Version: "2"}, Phase: rollout.Succeeded}
	if err := finalState(r); err != nil {
		t.Errorf("succeeded: %v", err)
	}
	r.Phase, r.Reason = rollout.RolledBack, "gate error_rate failed"
	if err := finalState(r); err == nil || !strings.Contains(err.Error(), "rolled_back") || !strings.Contains(err.Error(), "error_rate") {
		t.Errorf("rolled back: %v", err)
	}
}

// rolloutServer answers GET /api/v1/rollouts/r1 with phases[i] on the i-th
// poll (the last one repeated) and /api/v1/devices with one online device;
// polled receives each poll number.
func rolloutServer(t *testing.T, phases []rollout.Phase, polled chan<- int) *httptest.Server {
	n := 0
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/devices":
			json.NewEncoder(w).Encode([]apitype.DeviceView{{Device: registry.Device{ID: "dev-1", Presence: wire.Online}}})
		case "/api/v1/rollouts/r1":
			mu.Lock()
			p := phases[min(n, len(phases)-1)]
			n++
			i := n
			mu.Unlock()
			ro := rollout.Rollout{Spec: rollout.Spec{ID: "r1", ModelID: "iris", Version: "2", Stages: []int{100}}, Phase: p,
				Devices: map[string]*rollout.DeviceState{"dev-1": {JobState: wire.JobSucceeded}}}
			if p == rollout.RolledBack {
				ro.Reason = "gate error_rate failed: 0.2 > 0.05"
			}
			json.NewEncoder(w).Encode(ro)
			if polled != nil {
				select {
				case polled <- i:
				default:
				}
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestWatchEndsWithFinalState: --watch returns an error naming the reason
// when the rollout is rolled back, nil when it succeeds, and nil (not
// "context canceled") when the operator stops watching.
func TestWatchEndsWithFinalState(t *testing.T) {
	for _, tc := range []struct {
		phases  []rollout.Phase
		wantErr string
	}{
		{[]rollout.Phase{rollout.Running, rollout.RolledBack}, "rolled_back: gate error_rate failed"},
		{[]rollout.Phase{rollout.Running, rollout.Succeeded}, ""},
	} {
		srv := rolloutServer(t, tc.phases, nil)
		cmd := &cobra.Command{}
		cmd.SetContext(context.Background())
		err := watchRollout(cmd, &globals{server: srv.URL}, "r1")
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%v: %v, want %q", tc.phases, err, tc.wantErr)
		}
	}

	polled := make(chan int, 1)
	srv := rolloutServer(t, []rollout.Phase{rollout.Running}, polled)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := &cobra.Command{}
	cmd.SetContext(ctx)
	done := make(chan error, 1)
	go func() { done <- watchRollout(cmd, &globals{server: srv.URL}, "r1") }()
	<-polled
	cancel()
	if err := <-done; err != nil {
		t.Errorf("interrupted watch: %v, want nil (the rollout goes on)", err)
	}
}
