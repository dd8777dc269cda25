package hardware

import (
	"errors"
	"strings"
	"testing"
)

func TestDetectFakeRaspberryPiWithCoralUSB(t *testing.T) {
	info := DetectRoot("testdata/rpi")
	if info.CPUModel != "ARMv8 Processor rev 3 (v8l)" || info.Cores != 4 {
		t.Errorf("cpu = %q x%d", info.CPUModel, info.Cores)
	}
	if info.MemoryBytes != 3884492*1024 {
		t.Errorf("memory = %d", info.MemoryBytes)
	}
	if !info.Has("edgetpu") || !info.Has("gpu") {
		t.Fatalf("accelerators = %+v", info.Accelerator)
	}
	if info.Accelerator[0].Bus != "usb" {
		t.Errorf("edge tpu bus = %q", info.Accelerator[0].Bus)
	}
	if info.TFLiteLibrary == "" || info.EdgeTPULibrary == "" {
		t.Errorf("libraries = %q %q", info.TFLiteLibrary, info.EdgeTPULibrary)
	}
}

func TestDetectFakePCIeCoral(t *testing.T) {
	info := DetectRoot("testdata/pcie-coral")
	if len(info.Accelerator) != 1 || info.Accelerator[0].Bus != "pcie" || info.Accelerator[0].Device != "/dev/apex_0" {
		t.Fatalf("accelerators = %+v", info.Accelerator)
	}
	if info.TFLiteLibrary != "" {
		t.Errorf("tflite library = %q, want none", info.TFLiteLibrary)
	}
}

func TestDetectEmptyTree(t *testing.T) {
	info := DetectRoot(t.TempDir())
	if len(info.Accelerator) != 0 || info.Cores < 1 || info.CPUFeatures == nil {
		t.Fatalf("info = %+v", info)
	}
}

func TestPick(t *testing.T) {
	rpi := DetectRoot("testdata/rpi")
	bare := DetectRoot("testdata/pcie-coral")
	noPlugin := rpi
	noPlugin.GPUDelegateLibrary = ""
	cases := []struct {
		name            string
		info            Info
		edgeTPU, tflite bool
		prefer          string
		want            Backend
		ok              bool
	}{
		{"edgetpu model on coral", rpi, true, true, "", BackendEdgeTPU, true},
		{"edgetpu model without tflite build", rpi, true, false, "", BackendEdgeTPU, false},
		{"cpu model with tflite", rpi, false, true, "", BackendNative, true},
		{"prefer xnnpack", rpi, false, true, "tflite-xnnpack", BackendXNNPACK, true},
		{"prefer xnnpack without library", bare, false, true, "tflite-xnnpack", BackendXNNPACK, false},
		{"cpu model native build", rpi, false, false, "", BackendNative, true},
		{"no library", bare, false, true, "", BackendNative, true},
		{"edgetpu model without library", bare, true, true, "", BackendEdgeTPU, false},
		{"prefer native", rpi, false, true, "native", BackendNative, true},
		{"prefer gpu", rpi, false, true, "tflite-gpu", BackendGPU, true},
		{"prefer gpu none", bare, false, true, "tflite-gpu", BackendGPU, false},
		{"prefer gpu without plugin", noPlugin, false, true, "tflite-gpu", BackendGPU, false},
		{"native cannot run edgetpu", rpi, true, true, "native", BackendNative, false},
		{"unknown", rpi, false, true, "quantum", Backend("quantum"), false},
	}
	for _, c := range cases {
		got, ok := Pick(c.info, c.edgeTPU, c.tflite, c.prefer)
		if got.Backend != c.want || ok != c.ok || got.Reason == "" {
			t.Errorf("%s: Pick = %+v %v, want %s %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

func TestVariants(t *testing.T) {
	rpi := DetectRoot("testdata/rpi")
	pcie := DetectRoot("testdata/pcie-coral") // Edge TPU, no libraries
	cases := []struct {
		name   string
		info   Info
		tflite bool
		want   string
	}{
		{"coral with tflite build", rpi, true, "edgetpu,cpu"},
		{"coral, native-only build", rpi, false, "cpu"},
		{"edge tpu without libraries", pcie, true, "cpu"},
		{"empty board", DetectRoot(t.TempDir()), true, "cpu"},
	}
	for _, c := range cases {
		if got := strings.Join(c.info.Variants(c.tflite), ","); got != c.want {
			t.Errorf("%s: Variants = %s, want %s", c.name, got, c.want)
		}
	}
}

func TestSelectVariant(t *testing.T) {
	cases := []struct {
		name                string
		runnable, available []string
		want                string
		err                 bool
	}{
		{"coral takes edgetpu", []string{"edgetpu", "cpu"}, []string{"cpu", "edgetpu"}, "edgetpu", false},
		{"coral, cpu-only release", []string{"edgetpu", "cpu"}, []string{"cpu"}, "cpu", false},
		{"empty hardware is cpu", []string{"edgetpu", "cpu"}, []string{""}, "cpu", false},
		{"plain board skips edgetpu", []string{"cpu"}, []string{"edgetpu", "cpu"}, "cpu", false},
		{"plain board, edgetpu-only release", []string{"cpu"}, []string{"edgetpu"}, "", true},
		{"nothing offered", []string{"cpu"}, nil, "", true},
		{"device order wins", []string{"cpu", "edgetpu"}, []string{"edgetpu", "cpu"}, "cpu", false},
	}
	for _, c := range cases {
		got, err := SelectVariant(c.runnable, c.available)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("%s: SelectVariant = %q, %v; want %q (error %v)", c.name, got, err, c.want, c.err)
		}
		if err != nil && !errors.Is(err, ErrNoVariant) {
			t.Errorf("%s: error %v does not wrap ErrNoVariant", c.name, err)
		}
	}
}

func TestFindLibraryAndGPUPlugin(t *testing.T) {
	rpi := DetectRoot("testdata/rpi")
	if rpi.GPUDelegateLibrary != "/usr/lib/aarch64-linux-gnu/libarmnnDelegate.so" {
		t.Errorf("gpu delegate = %q", rpi.GPUDelegateLibrary)
	}
	if got := FindLibrary("testdata/rpi", "libnothing.so"); got != "" {
		t.Errorf("FindLibrary(missing) = %q", got)
	}
	if got := FindLibrary("testdata/rpi", EdgeTPULibraryName); got != "/usr/lib/aarch64-linux-gnu/libedgetpu.so.1" {
		t.Errorf("FindLibrary(libedgetpu) = %q", got)
	}
}
