//go:build tflite && cgo

package tflitec

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenErrors(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skipf("gcc not available: %v", err)
	}
	notTFLite := filepath.Join(t.TempDir(), "libtensorflowlite_c.so")
	if b, err := exec.Command("gcc", "-shared", "-fPIC", "-o", notTFLite, "../delegate/testdata/not_a_plugin.c").CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, b)
	}
	_, err := Open(notTFLite)
	if !errors.Is(err, ErrBadLibrary) || !strings.Contains(err.Error(), "TfLiteInterpreterCreate") {
		t.Errorf("library without the C API: %v", err)
	}
	_, err = Open(filepath.Join(t.TempDir(), "missing", LibraryName))
	if !errors.Is(err, ErrLibraryNotFound) {
		t.Errorf("missing library: %v", err)
	}
}

// TestRealLibrary runs where a libtensorflowlite_c is available.
func TestRealLibrary(t *testing.T) {
	l, err := Open(os.Getenv("EDGE_TFLITE_LIB"))
	if err != nil {
		t.Skipf("libtensorflowlite_c not available, TensorFlow Lite tests skipped (set EDGE_TFLITE_LIB=/path/libtensorflowlite_c.so): %v", err)
	}
	if l.Version == "" {
		t.Error("empty TfLiteVersion")
	}
	if _, err := l.NewModel([]byte("not a flatbuffer model")); err == nil {
		t.Error("garbage model accepted")
	}
	data, err := os.ReadFile("../../../testdata/models/iris.tflite")
	if err != nil {
		t.Fatal(err)
	}
	m, err := l.NewModel(data)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Delete()
	ip, err := m.NewInterpreter(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ip.Delete()
	if err := ip.AllocateTensors(); err != nil {
		t.Fatal(err)
	}
	in := ip.Input(0)
	if info := in.Info(); info.Name != "dense_input" || len(info.Shape) != 2 || info.Shape[1] != 4 || in.ByteSize() != 16 {
		t.Errorf("input = %+v (%d bytes)", info, in.ByteSize())
	}
	if err := in.CopyFrom(make([]byte, 15)); err == nil {
		t.Error("short input accepted")
	}
	if err := in.CopyFrom(make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	if err := ip.Invoke(); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, ip.Output(0).ByteSize())
	if err := ip.Output(0).CopyTo(out); err != nil || len(out) != 12 {
		t.Errorf("output: %d bytes, %v", len(out), err)
	}
	// The XNNPACK defaults are read per the version's return convention:
	// only known flag bits (a wrong convention reads stack garbage), and
	// the requested ones added.
	x, err := l.NewXNNPACK(1)
	if err != nil {
		t.Fatal(err)
	}
	if x.Flags >= 1<<8 {
		t.Errorf("XNNPACK default flags %#x: not flags, garbage", x.Flags)
	}
	x.Close()
	x, err = l.NewXNNPACKFlags(2, XNNPACKQS8|XNNPACKQU8)
	if err != nil {
		t.Fatal(err)
	}
	if x.Flags&3 != 3 || x.Flags >= 1<<8 {
		t.Errorf("XNNPACK flags %#x, want QS8|QU8 added to the defaults", x.Flags)
	}
	x.Close()
	if err := ip.ResizeInput(0, []int{3, 4}); err != nil {
		t.Fatal(err)
	}
	if err := ip.AllocateTensors(); err != nil || ip.Input(0).ByteSize() != 48 {
		t.Errorf("batch 3: %d bytes, %v", ip.Input(0).ByteSize(), err)
	}
}

func TestDedupe(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"one", "one"},
		{"a; b; a", "a (2 such messages); b"},
		{"quantized_dimension must be in range [0, 1). Was 3.; Tensor 33 has invalid quantization parameters.; quantized_dimension must be in range [0, 1). Was 3.; Tensor 36 has invalid quantization parameters.",
			"quantized_dimension must be in range [0, 1). Was 3. (2 such messages); Tensor 33 has invalid quantization parameters. (2 such messages)"},
	} {
		if got := dedupe(c.in); got != c.want {
			t.Errorf("dedupe(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
