package engine

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/edgefleet/edgefleet/agent/engine/delegate"
	"github.com/edgefleet/edgefleet/hardware"
	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/modelbuilder"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
)

// edgeTPUModel is a one-node model whose node is edgetpu-custom-op, as
// edgetpu_compiler writes them.
func edgeTPUModel(t *testing.T) []byte {
	t.Helper()
	b := modelbuilder.New()
	x := b.AddTensor(modelbuilder.Tensor{Name: "x", Type: tensor.Uint8, Shape: []int{1, 4}})
	y := b.AddTensor(modelbuilder.Tensor{Name: "y", Type: tensor.Uint8, Shape: []int{1, 4}})
	b.AddOp(modelbuilder.Op{Builtin: schema.OpCustom, Custom: inference.EdgeTPUCustomOp, Inputs: []int{x}, Outputs: []int{y}})
	b.SetIO([]int{x}, []int{y})
	data, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestIsEdgeTPUModel(t *testing.T) {
	iris, err := os.ReadFile("../../testdata/models/iris.tflite")
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		data []byte
		want bool
		err  bool
	}{
		"edgetpu": {edgeTPUModel(t), true, false},
		"iris":    {iris, false, false},
		"garbage": {[]byte("not a model at all"), false, true},
	} {
		got, err := IsEdgeTPUModel(c.data)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("%s: IsEdgeTPUModel = %v, %v", name, got, err)
		}
		if err != nil && !errors.Is(err, inference.ErrInvalidModel) {
			t.Errorf("%s: error %v does not wrap ErrInvalidModel", name, err)
		}
	}
}

// withTFLiteBuilt pretends, for one test, that the TensorFlow Lite backend
// is (or is not) compiled in.
func withTFLiteBuilt(t *testing.T, built bool) {
	old := tfliteBuilt
	tfliteBuilt = built
	t.Cleanup(func() { tfliteBuilt = old })
}

func TestPlanPerModel(t *testing.T) {
	coral := hardware.DetectRoot("../../hardware/testdata/rpi") // Coral USB, libtensorflowlite_c, libedgetpu, GPU plugin
	bare := hardware.DetectRoot(t.TempDir())
	plugin := &delegate.Spec{Name: "/opt/my_delegate.so", Kind: delegate.KindPlugin, Library: "/opt/my_delegate.so"}
	gpu, _ := delegate.Resolve("gpu", nil, coral)
	xnn, _ := delegate.Resolve("xnnpack", nil, coral)
	cases := []struct {
		name     string
		built    bool
		info     hardware.Info
		override *delegate.Spec
		fixed    bool
		edgeTPU  bool
		engine   string
		delegate delegate.Kind
		lib      string
		err      error
	}{
		{"edgetpu model on coral", true, coral, nil, false, true, "tflite", delegate.KindPlugin, "/usr/lib/aarch64-linux-gnu/libedgetpu.so.1", nil},
		{"cpu model on coral", true, coral, nil, false, false, "native", "", "", nil},
		{"xnnpack override", true, coral, &xnn, false, false, "tflite", delegate.KindXNNPACK, "", nil},
		{"cpu model, no library", true, bare, nil, false, false, "native", "", "", nil},
		{"edgetpu model, no edge tpu", true, bare, nil, false, true, "", "", "", ErrUnsupportedModel},
		{"native-only build", false, coral, nil, false, false, "native", "", "", nil},
		{"native-only build, edgetpu model", false, coral, nil, false, true, "", "", "", ErrUnsupportedModel},
		{"override for cpu model", true, coral, plugin, false, false, "tflite", delegate.KindPlugin, "/opt/my_delegate.so", nil},
		{"gpu override keeps edgetpu for edgetpu model", true, coral, &gpu, false, true, "tflite", delegate.KindPlugin, "/usr/lib/aarch64-linux-gnu/libedgetpu.so.1", nil},
		{"plugin path for edgetpu model", true, bare, plugin, false, true, "tflite", delegate.KindPlugin, "/opt/my_delegate.so", nil},
		{"--backend tflite", true, coral, nil, true, false, "tflite", delegate.KindNone, "", nil},
		{"--backend tflite without library", true, bare, nil, true, false, "", "", "", ErrBackendUnavailable},
	}
	for _, c := range cases {
		withTFLiteBuilt(t, c.built)
		a := &Auto{info: c.info, override: c.override, fixed: c.fixed, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		p, err := a.Plan(c.edgeTPU)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("%s: Plan = %+v, %v; want %v", c.name, p, err, c.err)
			}
			continue
		}
		if err != nil || p.Engine != c.engine || p.Delegate.Kind != c.delegate || p.Delegate.Library != c.lib || p.Reason == "" {
			t.Errorf("%s: Plan = %+v, %v; want %s %s %q", c.name, p, err, c.engine, c.delegate, c.lib)
		}
	}
}

func TestSelectNativeBuild(t *testing.T) {
	withTFLiteBuilt(t, false)
	bare := hardware.DetectRoot(t.TempDir())
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := Select(Selection{Hardware: &bare, Log: quiet})
	if err != nil || b.Name() != "native" {
		t.Fatalf("default selection = %v, %v; want native", b, err)
	}
	if _, err := Select(Selection{Backend: "tflite", Hardware: &bare, Log: quiet}); err == nil {
		t.Error("--backend tflite in a native-only build: no error")
	}
	b, err = Select(Selection{Backend: "tflite", Fallback: "native", Hardware: &bare, Log: quiet})
	if err != nil || b.Name() != "native" {
		t.Errorf("--backend tflite --fallback native = %v, %v; want native", b, err)
	}
	if _, err := Select(Selection{Backend: "native", Delegate: "edgetpu", Hardware: &bare, Log: quiet}); err == nil {
		t.Error("--backend native --delegate edgetpu: no error")
	}
	if _, err := Select(Selection{Fallback: "gpu", Hardware: &bare, Log: quiet}); err == nil {
		t.Error("--fallback gpu: no error")
	}
	if _, err := Select(Selection{DelegateOptions: []string{"novalue"}, Hardware: &bare, Log: quiet}); !errors.Is(err, delegate.ErrBadOption) {
		t.Errorf("bad option: %v", err)
	}
	// auto in a native-only build runs CPU models on the pure-Go runtime
	// and refuses Edge TPU models with a clear error.
	a, err := Select(Selection{Backend: "auto", Hardware: &bare, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	iris, _ := os.ReadFile("../../testdata/models/iris.tflite")
	m, err := a.Load(context.Background(), iris)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	if _, err := a.Load(context.Background(), edgeTPUModel(t)); !errors.Is(err, ErrUnsupportedModel) {
		t.Errorf("edge tpu model: %v, want ErrUnsupportedModel", err)
	}
}

func TestCapabilities(t *testing.T) {
	coral := hardware.DetectRoot("../../hardware/testdata/rpi")
	withTFLiteBuilt(t, true)
	v, b := Capabilities(coral)
	if len(v) != 2 || v[0] != "edgetpu" || len(b) != 5 || b[3] != "tflite+edgetpu" || b[4] != "tflite+gpu" {
		t.Errorf("tflite build on coral: %v %v", v, b)
	}
	withTFLiteBuilt(t, false)
	v, b = Capabilities(coral)
	if len(v) != 1 || v[0] != "cpu" || len(b) != 1 || b[0] != "native" {
		t.Errorf("native build on coral: %v %v", v, b)
	}
}

func TestDeviceCapabilitiesFollowSelection(t *testing.T) {
	coral := hardware.DetectRoot("../../hardware/testdata/rpi")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	withTFLiteBuilt(t, false)
	t.Cleanup(func() { hwMu.Lock(); hw, nativeOnly = nil, false; hwMu.Unlock() })
	if _, err := Select(Selection{Backend: "native", Hardware: &coral, Log: quiet}); err != nil {
		t.Fatal(err)
	}
	if v, b := DeviceCapabilities(); len(v) != 1 || v[0] != "cpu" || len(b) != 1 {
		t.Errorf("native selection reports %v %v", v, b)
	}
	if _, err := Select(Selection{Backend: "auto", Hardware: &coral, Log: quiet}); err != nil {
		t.Fatal(err)
	}
	if _, b := DeviceCapabilities(); len(b) != 1 || b[0] != "native" {
		t.Errorf("auto in a native-only build reports %v", b)
	}
}
