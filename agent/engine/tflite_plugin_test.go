//go:build tflite && cgo

package engine_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/agent/engine"
	"github.com/edgefleet/edgefleet/agent/engine/delegate"
	"github.com/edgefleet/edgefleet/agent/engine/enginetest"
	"github.com/edgefleet/edgefleet/hardware"
)

// TestTFLiteXNNPACKPlugin runs real inference through a real external
// delegate plugin (delegate/testdata/xnnpack_plugin.c, compiled here): it
// hands TensorFlow Lite the library's XNNPACK delegate, created with the
// --delegate-option values it is given.
func TestTFLiteXNNPACKPlugin(t *testing.T) {
	lib := tfliteLib(t)
	plugin := buildTestPlugin(t, "xnnpack_plugin.c")
	report := filepath.Join(t.TempDir(), "report")
	spec, err := delegate.Resolve(plugin, []delegate.Option{{Key: "num_threads", Value: "2"}, {Key: "report", Value: report}}, hardware.Info{})
	if err != nil {
		t.Fatal(err)
	}
	enginetest.RunBackendSuite(t, &engine.TFLite{Library: lib, Delegate: spec, Log: quiet()}, "../../testdata/models")
	// The options reached XNNPACK: two threads make it build a thread pool.
	got, err := os.ReadFile(report)
	if err != nil || string(got) != "num_threads=2 flags=0 threadpool=yes" {
		t.Errorf("plugin report = %q, %v; want num_threads=2 flags=0 threadpool=yes", got, err)
	}
	// The same XNNPACK through the plugin and built in: identical bytes on
	// a quantized model XNNPACK runs (quantized=true, int8).
	data, err := os.ReadFile("../../testdata/conformance/tf2_mobilenet_v2_1.0_224_ptq/model.tflite")
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.ReadFile("../../testdata/conformance/tf2_mobilenet_v2_1.0_224_ptq/case_0/input_0.bin")
	if err != nil {
		t.Fatal(err)
	}
	q := []delegate.Option{{Key: delegate.XNNPACKQuantized, Value: "true"}}
	viaPlugin := runOnce(t, &engine.TFLite{Library: lib, Delegate: delegate.Spec{Name: plugin, Kind: delegate.KindPlugin, Library: plugin, Options: q}, Log: quiet()}, data, in)
	builtIn := runOnce(t, &engine.TFLite{Library: lib, Delegate: delegate.Spec{Name: "xnnpack", Kind: delegate.KindXNNPACK, Options: q}, Log: quiet()}, data, in)
	if !bytes.Equal(viaPlugin, builtIn) {
		t.Error("XNNPACK through the plugin and built in give different outputs")
	}
}

func runOnce(t *testing.T, b engine.Backend, data, in []byte) []byte {
	t.Helper()
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
	out, err := s.Run(context.Background(), 0, [][]byte{in})
	if err != nil {
		t.Fatal(err)
	}
	return out[0].Data
}

// TestTFLiteBrokenPlugins: every kind of broken plugin is a clear error at
// load, never a crash, and with --fallback native the model is served by
// the pure-Go runtime. The control (a working plugin) loads on TensorFlow
// Lite.
func TestTFLiteBrokenPlugins(t *testing.T) {
	lib := tfliteLib(t)
	xnn := buildTestPlugin(t, "xnnpack_plugin.c")
	noSymbols := buildTestPlugin(t, "not_a_plugin.c")
	emptyDelegate := buildTestPlugin(t, "test_plugin.c")
	notELF := filepath.Join(t.TempDir(), "libnot_elf.so")
	if err := os.WriteFile(notELF, []byte("this is not a shared object\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	iris, err := os.ReadFile("../../testdata/models/iris.tflite")
	if err != nil {
		t.Fatal(err)
	}
	type brokenCase struct {
		name    string
		plugin  string
		opts    []string
		want    error // nil: the control, loads on TensorFlow Lite
		message string
	}
	cases := []brokenCase{
		{"control", xnn, []string{"num_threads=1"}, nil, ""},
		{"missing symbols", noSymbols, nil, delegate.ErrBadPlugin, "does not export [tflite_plugin_create_delegate tflite_plugin_destroy_delegate]"},
		{"returns NULL", xnn, []string{"fail=device busy"}, delegate.ErrBadPlugin, "returned no delegate: plugin reported: device busy"},
		{"bad option", xnn, []string{"num_threads=many"}, delegate.ErrBadPlugin, "num_threads=many: want a number"},
		{"empty delegate", emptyDelegate, []string{"null_prepare=1"}, delegate.ErrBadPlugin, "neither Prepare nor an opaque delegate builder"},
		{"not a shared object", notELF, nil, delegate.ErrPluginNotFound, "libnot_elf.so"},
	}
	// TensorFlow Lite's own external-delegate wrapper, shipped next to the
	// library by make tflite-lib, is not a plugin.
	if obj := filepath.Join(filepath.Dir(lib), "libexternal_delegate_obj.so"); lib != "" {
		if _, err := os.Stat(obj); err == nil {
			cases = append(cases, brokenCase{"TensorFlow Lite's external delegate wrapper", obj, nil, delegate.ErrBadPlugin, "does not export"})
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts, err := delegate.ParseOptions(c.opts)
			if err != nil {
				t.Fatal(err)
			}
			spec, err := delegate.Resolve(c.plugin, opts, hardware.Info{})
			if err != nil {
				t.Fatal(err)
			}
			m, err := (&engine.TFLite{Library: lib, Delegate: spec, Log: quiet()}).Load(context.Background(), iris)
			if c.want == nil {
				if err != nil {
					t.Fatalf("working plugin: %v", err)
				}
				m.Close()
			} else if !errors.Is(err, c.want) || !errors.Is(err, engine.ErrBackendUnavailable) || !strings.Contains(err.Error(), c.message) {
				t.Fatalf("Load = %v; want %v, ErrBackendUnavailable and %q", err, c.want, c.message)
			}
			// Through the agent's selection with --fallback native.
			var logs bytes.Buffer
			b, err := engine.Select(engine.Selection{Backend: "auto", Delegate: c.plugin, DelegateOptions: c.opts, TFLiteLibrary: lib, Fallback: "native",
				Hardware: &hardware.Info{}, Log: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			m, err = b.Load(context.Background(), iris)
			if err != nil {
				t.Fatalf("with --fallback native: %v", err)
			}
			defer m.Close()
			s, err := m.NewSession(context.Background(), 1)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.Run(context.Background(), 0, [][]byte{make([]byte, 16)}); err != nil {
				t.Fatal(err)
			}
			want := "engine=tflite"
			if c.want != nil {
				want = "engine=native reason=\"fallback: "
			}
			if !strings.Contains(logs.String(), want) {
				t.Errorf("log %q does not say %q", logs.String(), want)
			}
		})
	}
}

// TestTFLiteDelegateRejectionFallsBack: a delegate whose Prepare fails
// (it cannot take the graph) does not fail the model: TensorFlow Lite's
// builtin kernels run it, the model says so, and a warning is logged. The
// outputs equal the builtin kernels'.
func TestTFLiteDelegateRejectionFallsBack(t *testing.T) {
	lib := tfliteLib(t)
	plugin := buildTestPlugin(t, "test_plugin.c")
	data, err := os.ReadFile("../../testdata/conformance/mobilenet_v1_0.25_128_quant/model.tflite")
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.ReadFile("../../testdata/conformance/mobilenet_v1_0.25_128_quant/case_0/input_0.bin")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	b := &engine.TFLite{Library: lib, Delegate: delegate.Spec{Name: plugin, Kind: delegate.KindPlugin, Library: plugin, Options: []delegate.Option{{Key: "prepare_error", Value: "1"}}},
		Log: slog.New(slog.NewTextHandler(&logs, nil))}
	m, err := b.Load(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	d := m.(interface{ Delegate() string }).Delegate()
	m.Close()
	if !strings.Contains(d, "rejected the model") || !strings.Contains(logs.String(), "delegate cannot take this model") {
		t.Errorf("delegate %q, log %q: want the rejection reported", d, logs.String())
	}
	got := runOnce(t, b, data, in)
	want := runOnce(t, &engine.TFLite{Library: lib, Log: quiet()}, data, in)
	if !bytes.Equal(got, want) {
		t.Error("outputs after the delegate's rejection differ from the builtin kernels'")
	}
	// The control: the same plugin without prepare_error is applied.
	b.Delegate.Options = nil
	m, err = b.Load(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if d := m.(interface{ Delegate() string }).Delegate(); strings.Contains(d, "rejected") {
		t.Errorf("working plugin reported as %q", d)
	}
}

// TestTFLiteRefusedModelFallsBack: TensorFlow Lite refuses person_detect as
// stored (a 1-D bias tensor with quantized_dimension 3); the error says
// why in one line per kind of message, and --fallback native serves it on
// the pure-Go runtime with the conformance set's outputs.
func TestTFLiteRefusedModelFallsBack(t *testing.T) {
	lib := tfliteLib(t)
	dir := "../../testdata/conformance/person_detect"
	data, err := os.ReadFile(filepath.Join(dir, "model.tflite"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = (&engine.TFLite{Library: lib, Log: quiet()}).Load(context.Background(), data)
	if !errors.Is(err, engine.ErrUnsupportedModel) || strings.Count(err.Error(), "quantized_dimension") != 1 {
		t.Fatalf("Load = %v; want ErrUnsupportedModel naming quantized_dimension once", err)
	}
	b, err := engine.Select(engine.Selection{Backend: "tflite", TFLiteLibrary: lib, Fallback: "native", Hardware: &hardware.Info{}, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.ReadFile(filepath.Join(dir, "case_0/input_0.bin"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(dir, "case_0/expected_0.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if got := runOnce(t, b, data, in); !bytes.Equal(got, want) {
		t.Error("person_detect on the fallback differs from the expected output")
	}
}
