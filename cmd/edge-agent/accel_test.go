package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
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

func TestInferAndBenchWithBackend(t *testing.T) {
	t.Setenv("EDGE_DELEGATE", "")
	t.Setenv("EDGE_DELEGATE_OPTIONS", "")
	t.Setenv("EDGE_FALLBACK", "")
	t.Setenv("EDGE_TFLITE_LIB", "")
	dir := t.TempDir()
	in := filepath.Join(dir, "in.bin")
	if err := os.WriteFile(in, make([]byte, 16), 0o644); err != nil {
		t.Fatal(err)
	}
	model := "../../testdata/models/iris.tflite"
	var out bytes.Buffer
	bf := &backendFlags{backend: "native"}
	if err := inferBackend(context.Background(), bf, model, []string{in}, filepath.Join(dir, "out"), 1, &out); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "out", "output_0.bin")); err != nil || len(b) != 12 || !strings.Contains(out.String(), "engine=native") {
		t.Errorf("infer --backend native: %d bytes, %v; printed %q", len(b), err, out.String())
	}
	if err := inferBackend(context.Background(), bf, model, []string{model}, "", 1, &out); err == nil {
		t.Error("wrong-size input accepted")
	}
	out.Reset()
	if err := benchBackend(context.Background(), bf, model, 1, 1, 3, false, &out); err != nil || !strings.Contains(out.String(), "engine=native threads=1 repeat=3 p50=") {
		t.Errorf("bench --backend native: %v, %q", err, out.String())
	}
	if err := benchBackend(context.Background(), &backendFlags{backend: "nosuch"}, model, 1, 1, 3, false, &out); err == nil {
		t.Error("unknown backend accepted")
	}
}
