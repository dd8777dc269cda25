//go:build tflite && cgo

package engine_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
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

// buildTestPlugin compiles a plugin from delegate/testdata with the
// system C compiler ($CC, else cc): a real shared library.
func buildTestPlugin(t *testing.T, src string) string {
	t.Helper()
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	if _, err := exec.LookPath(cc); err != nil {
		t.Skipf("no C compiler (%s) to build the test plugin: %v", cc, err)
	}
	out := filepath.Join(t.TempDir(), "lib"+strings.TrimSuffix(src, ".c")+".so")
	if b, err := exec.Command(cc, "-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o", out, filepath.Join("delegate/testdata", src), "-ldl").CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cc, err, b)
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
