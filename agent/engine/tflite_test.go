//go:build tflite && cgo

package engine_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/agent/engine"
	"github.com/edgefleet/edgefleet/agent/engine/delegate"
	"github.com/edgefleet/edgefleet/agent/engine/enginetest"
	"github.com/edgefleet/edgefleet/agent/engine/tflitec"
	"github.com/edgefleet/edgefleet/hardware"
	"github.com/edgefleet/edgefleet/inference/tensor"
)

// tfliteLib returns the libtensorflowlite_c to test against
// (EDGE_TFLITE_LIB, else the dynamic loader's libtensorflowlite_c.so) or
// skips the test with one line saying why.
func tfliteLib(t *testing.T) string {
	t.Helper()
	lib := os.Getenv("EDGE_TFLITE_LIB")
	l, err := tflitec.Open(lib)
	if err != nil {
		t.Skipf("libtensorflowlite_c not available, TensorFlow Lite tests skipped (set EDGE_TFLITE_LIB=/path/libtensorflowlite_c.so): %v", err)
	}
	t.Logf("TensorFlow Lite %s from %s", l.Version, l.Path)
	return lib
}

// buildTestPlugin compiles the delegate package's test plugin (a real
// external-delegate library whose Prepare claims no node).
func buildTestPlugin(t *testing.T, src string) string {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skipf("gcc not available to build the test plugin: %v", err)
	}
	out := filepath.Join(t.TempDir(), "libtest_delegate.so")
	if b, err := exec.Command("gcc", "-shared", "-fPIC", "-o", out, filepath.Join("delegate/testdata", src)).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, b)
	}
	return out
}

func TestTFLiteBackendConformance(t *testing.T) {
	lib := tfliteLib(t)
	enginetest.RunBackendSuite(t, &engine.TFLite{Library: lib}, "../../testdata/models")
}

func TestTFLiteXNNPACKConformance(t *testing.T) {
	lib := tfliteLib(t)
	enginetest.RunBackendSuite(t, &engine.TFLite{Library: lib, Delegate: delegate.Spec{Name: "xnnpack", Kind: delegate.KindXNNPACK}}, "../../testdata/models")
}

func TestTFLiteWithExternalDelegatePlugin(t *testing.T) {
	lib := tfliteLib(t)
	plugin := buildTestPlugin(t, "test_plugin.c")
	spec, err := delegate.Resolve(plugin, []delegate.Option{{Key: "device", Value: "usb"}}, hardware.Info{})
	if err != nil {
		t.Fatal(err)
	}
	enginetest.RunBackendSuite(t, &engine.TFLite{Library: lib, Delegate: spec}, "../../testdata/models")
	// A plugin whose create fails makes Load fail with its message.
	bad := spec
	bad.Options = []delegate.Option{{Key: "fail", Value: "device busy"}}
	iris, _ := os.ReadFile("../../testdata/models/iris.tflite")
	if _, err := (&engine.TFLite{Library: lib, Delegate: bad}).Load(context.Background(), iris); !errors.Is(err, engine.ErrBackendUnavailable) || !strings.Contains(err.Error(), "device busy") {
		t.Errorf("failing plugin: %v", err)
	}
}

// TestTFLiteConformanceSet runs the real models of testdata/conformance and
// compares with TensorFlow Lite's recorded outputs (integers exactly,
// floats within 1e-5 of the largest magnitude).
func TestTFLiteConformanceSet(t *testing.T) {
	lib := tfliteLib(t)
	for _, d := range []delegate.Spec{{Name: "none", Kind: delegate.KindNone}, {Name: "xnnpack", Kind: delegate.KindXNNPACK}} {
		t.Run(d.Name, func(t *testing.T) { runConformanceSet(t, &engine.TFLite{Library: lib, Delegate: d}) })
	}
}

func runConformanceSet(t *testing.T, b engine.Backend) {
	metas, _ := filepath.Glob("../../testdata/conformance/*/meta.json")
	if len(metas) == 0 {
		t.Fatal("no conformance models")
	}
	for _, p := range metas {
		var meta struct {
			Cases []struct {
				Name     string   `json:"name"`
				Inputs   []string `json:"inputs"`
				Expected []string `json:"expected"`
			} `json:"cases"`
		}
		raw, _ := os.ReadFile(p)
		if err := json.Unmarshal(raw, &meta); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		dir := filepath.Dir(p)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, "model.tflite"))
			if err != nil {
				t.Fatal(err)
			}
			m, err := b.Load(context.Background(), data)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			s, err := m.NewSession(context.Background(), 1)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for _, c := range meta.Cases {
				var in [][]byte
				for _, f := range c.Inputs {
					b, err := os.ReadFile(filepath.Join(dir, f))
					if err != nil {
						t.Fatal(err)
					}
					in = append(in, b)
				}
				out, err := s.Run(context.Background(), 0, in)
				if err != nil {
					t.Fatalf("%s: %v", c.Name, err)
				}
				for i, f := range c.Expected {
					want, err := os.ReadFile(filepath.Join(dir, f))
					if err != nil {
						t.Fatal(err)
					}
					if msg := compare(out[i], want); msg != "" {
						t.Errorf("%s output %d: %s", c.Name, i, msg)
					}
				}
			}
		})
	}
}

func compare(got engine.Tensor, want []byte) string {
	if len(got.Data) != len(want) {
		return "size differs"
	}
	if got.Info.Type != tensor.Float32 {
		if string(got.Data) != string(want) {
			return "bytes differ"
		}
		return ""
	}
	g, w := float32s(got.Data), float32s(want)
	var maxAbs float64
	for _, v := range w {
		maxAbs = math.Max(maxAbs, math.Abs(float64(v)))
	}
	for i := range g {
		if math.Abs(float64(g[i]-w[i])) > 1e-5*math.Max(1, maxAbs) {
			return "float values differ"
		}
	}
	return ""
}

func float32s(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// The tests below need no TensorFlow Lite library: they prove the errors
// and the fallback on this machine.

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestTFLiteMissingOrBadLibraryIsAnError(t *testing.T) {
	iris, err := os.ReadFile("../../testdata/models/iris.tflite")
	if err != nil {
		t.Fatal(err)
	}
	notTFLite := buildTestPlugin(t, "not_a_plugin.c")
	for _, c := range []struct {
		lib  string
		want error
	}{
		{filepath.Join(t.TempDir(), "libtensorflowlite_c.so"), tflitec.ErrLibraryNotFound},
		{notTFLite, tflitec.ErrBadLibrary},
	} {
		_, err := (&engine.TFLite{Library: c.lib}).Load(context.Background(), iris)
		if !errors.Is(err, engine.ErrBackendUnavailable) || !errors.Is(err, c.want) {
			t.Errorf("library %s: %v; want %v", filepath.Base(c.lib), err, c.want)
		}
	}
}

func TestSelectFallsBackToNative(t *testing.T) {
	iris, _ := os.ReadFile("../../testdata/models/iris.tflite")
	bare := hardware.DetectRoot(t.TempDir())
	missing := filepath.Join(t.TempDir(), "libtensorflowlite_c.so")
	ctx := context.Background()
	// Without --fallback native the missing library fails the model...
	b, err := engine.Select(engine.Selection{Backend: "tflite", TFLiteLibrary: missing, Hardware: &bare, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Load(ctx, iris); !errors.Is(err, engine.ErrBackendUnavailable) {
		t.Errorf("no fallback: %v, want ErrBackendUnavailable", err)
	}
	// ...with it the pure-Go runtime serves it.
	b, err = engine.Select(engine.Selection{Backend: "tflite", TFLiteLibrary: missing, Fallback: "native", Hardware: &bare, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	m, err := b.Load(ctx, iris)
	if err != nil {
		t.Fatalf("fallback: %v", err)
	}
	m.Close()
	// A plugin without the symbols falls back the same way (and fails
	// clearly without --fallback).
	notPlugin := buildTestPlugin(t, "not_a_plugin.c")
	for _, fb := range []string{"", "native"} {
		b, err := engine.Select(engine.Selection{Backend: "auto", Delegate: notPlugin, TFLiteLibrary: missing, Fallback: fb, Hardware: &bare, Log: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		m, err := b.Load(ctx, iris)
		if fb == "" && err == nil {
			t.Error("broken plugin without fallback loaded")
		}
		if fb == "native" {
			if err != nil {
				t.Errorf("broken plugin with fallback: %v", err)
			} else {
				m.Close()
			}
		}
	}
	// A missing plugin path is refused when the flags are read.
	if _, err := engine.Select(engine.Selection{Backend: "auto", Delegate: "/no/such/plugin.so", Hardware: &bare, Log: quiet()}); !errors.Is(err, delegate.ErrPluginNotFound) {
		t.Errorf("missing plugin: %v", err)
	}
}
