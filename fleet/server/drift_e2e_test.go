package server_test

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/rollout"
	"github.com/edgefleet/edgefleet/fleet/server"
	"github.com/edgefleet/edgefleet/fleet/telemetry"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// monitoringFor is what fake devices report for a version: 40 confident
// predictions, or (version "drifted") predictions whose confidence
// collapsed to 0.3–0.45.
func monitoringFor(version string) *wire.Monitoring {
	m := &wire.Monitoring{Predictions: 40, Classes: []wire.ClassCount{{Class: 0, Count: 30}, {Class: 1, Count: 10}},
		Confidence: make([]uint64, wire.ConfidenceBuckets)}
	peak := 18
	if version == "drifted" {
		peak = 7
	}
	m.Confidence[peak-1], m.Confidence[peak], m.Confidence[peak+1] = 10, 20, 10
	var s wire.Sketch
	for i := 0; i < 40; i++ {
		s.Add(0.5 + float64(i%4)*0.1)
	}
	m.Features = []wire.FeatureSummary{{Index: 0, Count: 40, Mean: 0.65, Std: 0.11, Min: 0.5, Max: 0.8, Sketch: s}}
	m.Resources = &wire.Resources{ProcessRSSBytes: 30 << 20, ProcessCPUSeconds: 0.1, DeviceMemTotalBytes: 1 << 30, DeviceMemAvailableBytes: 1 << 29, DeviceCPUPercent: 5, Load1: 0.2}
	return m
}

// TestDriftGateEndToEnd: through real MQTT, devices whose new version
// reports a collapsed confidence distribution fail the drift gate and are
// rolled back; an unshifted version passes the same gate (control). The
// drift API shows both and validates reference stats.
func TestDriftGateEndToEnd(t *testing.T) {
	e := startServer(t, server.Config{})
	e.enroll(3)
	e.startLinks()
	e.waitFor("all devices online", 20*time.Second, func() bool { return e.online() == len(e.devs) })
	// Version 1's distribution (the reference) reaches the fleet first.
	e.waitFor("reference telemetry", 20*time.Second, func() bool {
		return e.srv.Telemetry().Dist(telemetry.Query{ModelID: "m", Version: "1"}).Predictions >= 200
	})
	spec := func(version string) rollout.Spec {
		g := gates()
		g.MaxDrift = 0.25
		return rollout.Spec{ID: "drift-" + version, ModelID: "m", Version: version, Target: wire.Target{Name: "models/m/" + version + "/model.tflite", Length: 1},
			Strategy: rollout.Canary, Stages: []int{34, 100}, Soak: 500 * time.Millisecond, DeviceDeadline: 10 * time.Second,
			BaselineWindow: time.Minute, Gates: g}
	}
	gate := func(r *rollout.Rollout) rollout.GateResult {
		for _, g := range r.Gates {
			if g.Name == "drift" {
				return g
			}
		}
		t.Fatalf("no drift gate in %+v", r.Gates)
		return rollout.GateResult{}
	}

	e.release("calm")
	r := e.runRollout(spec("calm"), rollout.Succeeded)
	if g := gate(r); !g.Evaluated || !g.OK || g.Value > 0.25 {
		t.Fatalf("unshifted version: drift gate %+v", g)
	}

	e.release("drifted")
	r = e.runRollout(spec("drifted"), rollout.RolledBack)
	if g := gate(r); !g.Evaluated || g.OK || g.Value <= 0.25 || !strings.Contains(r.Reason, "drift (PSI)") {
		t.Fatalf("shifted version: drift gate %+v, reason %q", g, r.Reason)
	}
	e.waitFor("devices back on calm", 10*time.Second, func() bool { return e.actives()["calm"] == len(e.devs) })

	// The API reports the drift with both distributions.
	var rep telemetry.DriftReport
	getJSON(t, e, "/api/v1/models/m/drifted/drift?since=1h", &rep)
	if !rep.Evaluated || rep.Drift <= 0.25 || rep.KSConfidence == nil || *rep.KSConfidence < 0.9 || rep.Reference.Source != "version" ||
		rep.Current.Confidence == nil || rep.ReferenceDist.Predictions == 0 || rep.Current.Resources == nil {
		t.Fatalf("drift report %+v", rep)
	}
	var ser telemetry.DriftSeries
	getJSON(t, e, "/api/v1/models/m/drifted/drift/series?since=1h&step=1m", &ser)
	if len(ser.Points) == 0 || ser.Points[0].Drift <= 0.25 {
		t.Fatalf("drift series %+v", ser)
	}
	// Reference stats: bad ones are refused with a clear error; good ones
	// become the reference.
	for _, bad := range []struct{ body, want string }{
		{`{"confidence":[1,2]}`, "buckets"},
		{`{"predictions":1,"bogus":true}`, "bogus"},
		{`{}`, "no predictions"},
	} {
		resp, err := e.api("PUT", "/api/v1/models/m/drifted/reference", bad.body)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), bad.want) {
			t.Fatalf("PUT reference %s: %d %s", bad.body, resp.StatusCode, b)
		}
	}
	ref, _ := json.Marshal(monitoringFor("drifted"))
	resp, err := e.api("PUT", "/api/v1/models/m/drifted/reference", string(ref))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT reference: %v %v", err, resp)
	}
	resp.Body.Close()
	getJSON(t, e, "/api/v1/models/m/drifted/drift?since=1h", &rep)
	if rep.Reference.Source != "reference_stats" || rep.Drift > 1e-9 {
		t.Fatalf("against its own reference stats: %+v %+v", rep.Reference, rep.Result)
	}
	if resp, err := e.api("PUT", "/api/v1/models/m/nosuch/reference", string(ref)); err != nil || resp.StatusCode != 404 {
		t.Fatalf("reference for an unknown version: %v %v", err, resp)
	}
	resp, err = e.api("GET", "/metrics", "")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `edgefleet_model_drift_psi{histogram="confidence",model="m",version="calm"}`) {
		t.Fatalf("no drift gauge in /metrics")
	}
}

func getJSON(t *testing.T, e *env, path string, v any) {
	t.Helper()
	resp, err := e.api("GET", path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, b)
	}
}
