package main

import (
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/agent/engine"
)

func TestAccelFlagsRegister(t *testing.T) {
	t.Setenv("EDGE_DELEGATE", "")
	t.Setenv("EDGE_DELEGATE_OPTIONS", "")
	t.Setenv("EDGE_FALLBACK", "")
	t.Setenv("EDGE_TFLITE_LIB", "")
	if engine.TFLiteBuilt() {
		t.Skip("flag wiring for the native build; the tflite build is tested in agent/engine")
	}
	name, err := (&accelFlags{}).register("")
	if err != nil || name != "native" {
		t.Fatalf("no flags: %q, %v; want native", name, err)
	}
	if _, err := (&accelFlags{delegate: "edgetpu"}).register(""); err == nil || !strings.Contains(err.Error(), "make build-tflite") {
		t.Errorf("--delegate edgetpu in a native build: %v", err)
	}
	// The environment fills what flags leave empty.
	t.Setenv("EDGE_DELEGATE", "edgetpu")
	t.Setenv("EDGE_FALLBACK", "native")
	a := &accelFlags{}
	if name, err := a.register("tflite"); err != nil || name != "native" || a.delegate != "edgetpu" {
		t.Errorf("EDGE_DELEGATE + EDGE_FALLBACK=native: %q, %v (delegate %q); want native", name, err, a.delegate)
	}
	t.Setenv("EDGE_DELEGATE_OPTIONS", "novalue")
	if _, err := (&accelFlags{}).register("auto"); err == nil {
		t.Error("bad EDGE_DELEGATE_OPTIONS accepted")
	}
}
