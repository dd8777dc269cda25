package rollout

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// TestMaxDriftGateValidation: max_drift is off by default, decodes from
// JSON over the defaults, and refuses negative and non-finite values.
func TestMaxDriftGateValidation(t *testing.T) {
	if DefaultGates().MaxDrift != 0 {
		t.Fatal("the drift gate is on by default")
	}
	var g Gates
	if err := json.Unmarshal([]byte(`{"max_drift":0.25}`), &g); err != nil || g.MaxDrift != 0.25 || g.MinRequests != DefaultGates().MinRequests {
		t.Fatalf("decode: %v %+v", err, g)
	}
	if err := g.Validate(); err != nil {
		t.Fatalf("control: %v", err)
	}
	for _, v := range []float64{-0.1, math.NaN(), math.Inf(1)} {
		g.MaxDrift = v
		if err := g.Validate(); err == nil || !strings.Contains(err.Error(), "max_drift") {
			t.Errorf("max_drift %v: %v", v, err)
		}
	}
}

func TestReplacedVersion(t *testing.T) {
	r := &Rollout{Spec: Spec{Version: "3"}, Devices: map[string]*DeviceState{
		"a": {Baseline: "2"}, "b": {Baseline: "1"}, "c": {Baseline: "2"}, "d": {Baseline: "3"}, "e": {}, "f": {Baseline: "1"},
	}}
	for i := 0; i < 20; i++ { // map order must not matter
		if got := r.replacedVersion(); got != "1" {
			t.Fatalf("tie of 1 and 2: got %q, want 1", got)
		}
	}
	r.Devices["g"] = &DeviceState{Baseline: "2"}
	if got := r.replacedVersion(); got != "2" {
		t.Fatalf("got %q, want 2", got)
	}
	if got := (&Rollout{Spec: Spec{Version: "3"}}).replacedVersion(); got != "" {
		t.Fatalf("no devices: %q", got)
	}
}
