//go:build tflite && cgo

package engine_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/agent/engine"
	"github.com/edgefleet/edgefleet/hardware"
	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/modelbuilder"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
)

// TestSelectPerModelWithRealLibrary runs the agent's selection end to end
// with the real libtensorflowlite_c on a fake Coral board (fake sysfs: a
// Coral USB Accelerator) whose "libedgetpu" is a real external-delegate
// plugin (the XNNPACK plugin): each model gets the backend and delegate
// hardware.Pick chooses, and the device reports what it can run.
func TestSelectPerModelWithRealLibrary(t *testing.T) {
	lib := tfliteLib(t)
	plugin := buildTestPlugin(t, "xnnpack_plugin.c")
	coral := hardware.DetectRoot("../../hardware/testdata/rpi")
	if !coral.Has("edgetpu") {
		t.Fatal("the fake Raspberry Pi has no Edge TPU")
	}
	coral.EdgeTPULibrary = plugin
	iris, err := os.ReadFile("../../testdata/models/iris.tflite")
	if err != nil {
		t.Fatal(err)
	}
	edgeTPU := edgeTPUModel(t)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	b, err := engine.Select(engine.Selection{Backend: "auto", TFLiteLibrary: lib, Fallback: "native", Hardware: &coral, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	// The device reports the Edge TPU variant and the TensorFlow Lite
	// backends, since the library loaded.
	variants, backends := engine.DeviceCapabilities()
	if !slices.Equal(variants, []string{"edgetpu", "cpu"}) || !slices.Contains(backends, "tflite+xnnpack") || !slices.Contains(backends, "tflite+edgetpu") {
		t.Errorf("capabilities %v %v", variants, backends)
	}
	// A plain model: the pure-Go runtime (bit-exact with the release's
	// golden check), as hardware.Pick says.
	m, err := b.Load(context.Background(), iris)
	if err != nil {
		t.Fatal(err)
	}
	if engine.Describe(m) != "native" || !strings.Contains(logs.String(), `engine=native reason="pure-Go runtime`) {
		t.Errorf("iris ran on %s; log %q", engine.Describe(m), logs.String())
	}
	m.Close()
	// An Edge TPU-compiled model: TensorFlow Lite with the Edge TPU
	// plugin found on the board. The stand-in plugin cannot run
	// edgetpu-custom-op, so TensorFlow Lite fails it, clearly, and there
	// is no fallback (the pure-Go runtime cannot run it either).
	_, err = b.Load(context.Background(), edgeTPU)
	if !errors.Is(err, engine.ErrUnsupportedModel) || !strings.Contains(err.Error(), plugin) || !strings.Contains(err.Error(), "edgetpu-custom-op") {
		t.Errorf("Edge TPU model: %v; want TensorFlow Lite with %s refusing edgetpu-custom-op", err, plugin)
	}
	// --delegate xnnpack: plain models through TensorFlow Lite + XNNPACK.
	b, err = engine.Select(engine.Selection{Backend: "auto", Delegate: "xnnpack", TFLiteLibrary: lib, Hardware: &coral, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	m, err = b.Load(context.Background(), iris)
	if err != nil {
		t.Fatal(err)
	}
	if got := engine.Describe(m); got != "tflite+xnnpack" {
		t.Errorf("iris with --delegate xnnpack ran on %s", got)
	}
	m.Close()
}

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
