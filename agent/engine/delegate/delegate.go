// Package delegate finds and loads TensorFlow Lite delegates at run time.
//
// Accelerators are reached through TensorFlow Lite's external-delegate
// plugin interface: a shared library exporting
//
//	TfLiteDelegate* tflite_plugin_create_delegate(char** keys, char** values, size_t n, void (*report_error)(const char*));
//	void tflite_plugin_destroy_delegate(TfLiteDelegate* delegate);
//
// which is how libedgetpu.so.1 (Edge TPU) and Arm NN's delegate (Mali and
// other OpenCL GPUs) are shipped. Resolve (pure Go, every build) turns a
// --delegate name into a Spec; Open and Plugin.Create (build tag tflite,
// cgo) dlopen the library, check that it exports both symbols and that the
// delegate it returns is usable, before anything is handed to TensorFlow
// Lite: a missing or broken plugin is an error at load, never a crash.
package delegate

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/edgefleet/edgefleet/hardware"
)

// Kind says how a delegate is created.
type Kind string

// The delegate kinds.
const (
	// KindNone runs on TensorFlow Lite's CPU kernels (which apply XNNPACK
	// to float models by default in builds that have it).
	KindNone Kind = "none"
	// KindXNNPACK applies TensorFlow Lite's built-in XNNPACK delegate
	// (TfLiteXNNPackDelegateCreate, exported by libtensorflowlite_c).
	KindXNNPACK Kind = "xnnpack"
	// KindPlugin loads an external-delegate plugin library.
	KindPlugin Kind = "plugin"
)

// XNNPACKQuantized is the xnnpack delegate's one option: "true" lets
// XNNPACK run 8-bit quantized operators (TFLITE_XNNPACK_DELEGATE_FLAG_QS8
// and _QU8), which TensorFlow Lite before 2.10 leaves to its builtin
// kernels unless asked; later versions enable them by default.
const XNNPACKQuantized = "quantized"

// Limits on --delegate-option values: they end up as C strings.
const (
	MaxOptions     = 64
	MaxOptionBytes = 4096
)

// Errors callers branch on.
var (
	// ErrPluginNotFound: the plugin library does not exist or cannot be
	// loaded.
	ErrPluginNotFound = errors.New("delegate plugin not found")
	// ErrBadPlugin: the library loaded but is not a usable external
	// delegate (missing symbols, NULL or empty delegate).
	ErrBadPlugin = errors.New("bad delegate plugin")
	// ErrBadOption: a --delegate-option is malformed.
	ErrBadOption = errors.New("bad delegate option")
	// ErrUnknownDelegate: the --delegate name is neither a known delegate
	// nor a library path.
	ErrUnknownDelegate = errors.New("unknown delegate")
)

// Option is one key=value passed to a plugin's create function.
type Option struct {
	Key, Value string
}

// String returns key=value.
func (o Option) String() string { return o.Key + "=" + o.Value }

// ParseOptions parses --delegate-option values of the form key=value
// (key non-empty; no NUL bytes; at most MaxOptions of at most
// MaxOptionBytes each). A key given twice keeps its last value.
func ParseOptions(args []string) ([]Option, error) {
	if len(args) > MaxOptions {
		return nil, fmt.Errorf("%w: %d options given, at most %d allowed", ErrBadOption, len(args), MaxOptions)
	}
	var out []Option
	for i, a := range args {
		k, v, ok := strings.Cut(a, "=")
		switch {
		case !ok || strings.TrimSpace(k) == "":
			return nil, fmt.Errorf("%w: option %d %q: want key=value", ErrBadOption, i+1, a)
		case len(a) > MaxOptionBytes:
			return nil, fmt.Errorf("%w: option %d is %d bytes, at most %d allowed", ErrBadOption, i+1, len(a), MaxOptionBytes)
		case strings.ContainsRune(a, 0):
			return nil, fmt.Errorf("%w: option %d %q contains a NUL byte", ErrBadOption, i+1, k)
		}
		out = setOption(out, strings.TrimSpace(k), v)
	}
	return out, nil
}

func setOption(opts []Option, k, v string) []Option {
	for i := range opts {
		if opts[i].Key == k {
			opts[i].Value = v
			return opts
		}
	}
	return append(opts, Option{k, v})
}

func hasOption(opts []Option, k string) bool {
	for _, o := range opts {
		if o.Key == k {
			return true
		}
	}
	return false
}

// Spec is a resolved delegate: what to create and with which options.
type Spec struct {
	// Name is what the user asked for ("edgetpu", "gpu", "xnnpack",
	// "none" or a path).
	Name string
	Kind Kind
	// Library is the plugin's path or soname (KindPlugin only); a bare
	// soname is searched by the dynamic loader (LD_LIBRARY_PATH, ld.so.cache).
	Library string
	// Options are passed to the plugin's create function.
	Options []Option
}

// String describes the spec for logs and errors.
func (s Spec) String() string {
	if s.Kind != KindPlugin {
		return string(s.Kind)
	}
	if s.Name == s.Library {
		return "plugin " + s.Library
	}
	return s.Name + " (" + s.Library + ")"
}

// Resolve turns a --delegate value into a Spec using the detected board:
//
//	"" or "none"  TensorFlow Lite's CPU kernels
//	"xnnpack"     the XNNPACK delegate built into libtensorflowlite_c
//	"edgetpu"     libedgetpu.so.1 (found by hardware detection, else by soname)
//	"gpu"         the first of hardware.GPUDelegatePlugins (Arm NN, with
//	              backends=GpuAcc,CpuAcc unless the options say otherwise)
//	a path        any external-delegate plugin library (must exist)
//
// opts are passed through to plugins; XNNPACK and none take none.
func Resolve(name string, opts []Option, info hardware.Info) (Spec, error) {
	switch name {
	case "", string(KindNone):
		if len(opts) > 0 {
			return Spec{}, fmt.Errorf("%w: --delegate-option given without a delegate plugin", ErrBadOption)
		}
		return Spec{Name: string(KindNone), Kind: KindNone}, nil
	case string(KindXNNPACK):
		for _, o := range opts {
			if o.Key != XNNPACKQuantized || (o.Value != "true" && o.Value != "false") {
				return Spec{}, fmt.Errorf("%w: the xnnpack delegate takes only --delegate-option %s=true|false (its threads follow the serving threads), not %q", ErrBadOption, XNNPACKQuantized, o.String())
			}
		}
		return Spec{Name: name, Kind: KindXNNPACK, Options: opts}, nil
	case hardware.VariantEdgeTPU:
		lib := info.EdgeTPULibrary
		if lib == "" {
			lib = hardware.EdgeTPULibraryName
		}
		return Spec{Name: name, Kind: KindPlugin, Library: lib, Options: opts}, nil
	case "gpu":
		lib := info.GPUDelegateLibrary
		if lib == "" {
			lib = hardware.GPUDelegatePlugins[0]
		}
		if !hasOption(opts, "backends") {
			opts = append(append([]Option(nil), opts...), Option{"backends", "GpuAcc,CpuAcc"})
		}
		return Spec{Name: name, Kind: KindPlugin, Library: lib, Options: opts}, nil
	}
	if strings.ContainsRune(name, '/') || strings.HasSuffix(name, ".so") || strings.Contains(name, ".so.") {
		st, err := os.Stat(name)
		if err != nil {
			return Spec{}, fmt.Errorf("%w: %s: %v", ErrPluginNotFound, name, err)
		}
		if st.IsDir() {
			return Spec{}, fmt.Errorf("%w: %s is a directory, want a shared library", ErrPluginNotFound, name)
		}
		return Spec{Name: name, Kind: KindPlugin, Library: name, Options: opts}, nil
	}
	return Spec{}, fmt.Errorf("%w %q: want edgetpu, gpu, xnnpack, none or the path of an external-delegate plugin (.so)", ErrUnknownDelegate, name)
}
