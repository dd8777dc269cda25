package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/edgefleet/edgefleet/agent/engine/delegate"
	"github.com/edgefleet/edgefleet/hardware"
	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/schema"
)

var (
	regMu    sync.Mutex
	backends = map[string]Backend{"native": Native{}}
)

// Register makes a backend selectable by name (the tflite backend registers
// itself when built with -tags tflite).
func Register(b Backend) {
	regMu.Lock()
	defer regMu.Unlock()
	backends[b.Name()] = b
}

// Lookup returns the backend registered under name.
func Lookup(name string) (Backend, error) {
	regMu.Lock()
	defer regMu.Unlock()
	if b, ok := backends[name]; ok {
		return b, nil
	}
	var names []string
	for n := range backends {
		names = append(names, n)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("backend %q is not built in (available: %s; the tflite backend needs -tags tflite and cgo)", name, strings.Join(names, ", "))
}

// ErrBackendUnavailable is wrapped by Load errors caused by the machine
// rather than the model: libtensorflowlite_c or a delegate plugin missing or
// broken, a delegate that cannot be created. Selection falls back to the
// pure-Go runtime on it when told to.
var ErrBackendUnavailable = errors.New("backend unavailable")

// Hooks set by tflite.go when the TensorFlow Lite backend is compiled in.
var (
	tfliteBuilt bool
	// openTFLite loads libtensorflowlite_c and describes it.
	openTFLite func(path string) (string, error)
	// newTFLite returns a TensorFlow Lite backend with a delegate.
	newTFLite func(library string, spec delegate.Spec, log *slog.Logger) Backend
)

// TFLiteBuilt reports whether this binary has the TensorFlow Lite backend
// (built with -tags tflite and cgo).
func TFLiteBuilt() bool { return tfliteBuilt }

var (
	hwMu sync.Mutex
	hw   *hardware.Info
	// nativeOnly: Select chose the pure-Go runtime for every model.
	nativeOnly bool
)

// hardwareInfo is the board as detected once (or as set by Select).
func hardwareInfo() hardware.Info {
	hwMu.Lock()
	defer hwMu.Unlock()
	if hw == nil {
		i := hardware.Detect()
		hw = &i
	}
	return *hw
}

// IsEdgeTPUModel reports whether the model holds edgetpu-custom-op nodes
// (it was compiled by edgetpu_compiler and needs an Edge TPU). The file is
// validated by edgefleet's bounds-checked reader; a malformed file is an
// error wrapping inference.ErrInvalidModel.
func IsEdgeTPUModel(data []byte) (bool, error) {
	m, err := schema.Parse(data)
	if err != nil {
		return false, err
	}
	for _, c := range m.OperatorCodes {
		if c.Builtin == schema.OpCustom && c.Custom == inference.EdgeTPUCustomOp {
			return true, nil
		}
	}
	return false, nil
}

// Selection is how the agent chooses a backend per model (edge-agent run's
// --backend, --delegate, --delegate-option, --fallback, --tflite-lib).
type Selection struct {
	// Backend is "native", "tflite", "auto", or "" (auto when the
	// TensorFlow Lite backend is built in, native otherwise).
	Backend string
	// Delegate is "", "none", "xnnpack", "edgetpu", "gpu" or a plugin path;
	// with "auto" it overrides the automatic choice for models that are not
	// compiled for the Edge TPU.
	Delegate string
	// DelegateOptions are key=value strings passed to the plugin.
	DelegateOptions []string
	// Fallback is "" or "none" (a TensorFlow Lite failure fails the model)
	// or "native" (models that the pure-Go runtime can run fall back to it
	// when TensorFlow Lite, the plugin or the delegate is unavailable).
	Fallback string
	// TFLiteLibrary is libtensorflowlite_c's path ("" = detected, else the
	// soname through the dynamic loader).
	TFLiteLibrary string
	// Hardware is the board (zero: detected).
	Hardware *hardware.Info
	// Log receives the per-model decisions (nil: slog.Default()).
	Log *slog.Logger
}

// Select returns the backend described by sel. With the native-only build
// and no flags it is Native; "auto" returns a backend that picks, for each
// model it loads, TensorFlow Lite with the Edge TPU plugin (Edge
// TPU-compiled models), the --delegate given (other models), or the
// pure-Go runtime, following hardware.Pick.
func Select(sel Selection) (Backend, error) {
	opts, err := delegate.ParseOptions(sel.DelegateOptions)
	if err != nil {
		return nil, err
	}
	switch sel.Fallback {
	case "", "none", "native":
	default:
		return nil, fmt.Errorf("--fallback %q: want none or native", sel.Fallback)
	}
	info := hardwareInfo()
	if sel.Hardware != nil {
		info = *sel.Hardware
	}
	name := sel.Backend
	if name == "" {
		name = "native"
		if tfliteBuilt || (sel.Delegate != "" && sel.Delegate != "none") {
			name = "auto"
		}
	}
	log := sel.Log
	if log == nil {
		log = slog.Default()
	}
	defer func() {
		// What the device reports (DeviceCapabilities) follows the choice.
		hwMu.Lock()
		hw, nativeOnly = &info, name == "native"
		hwMu.Unlock()
	}()
	switch name {
	case "native":
		if sel.Delegate != "" && sel.Delegate != "none" {
			return nil, fmt.Errorf("--delegate %s needs the tflite backend (--backend tflite or auto), not native", sel.Delegate)
		}
		return Native{}, nil
	case "tflite", "auto":
	default:
		return Lookup(name)
	}
	if !tfliteBuilt {
		if name == "auto" && (sel.Delegate == "" || sel.Delegate == "none") {
			return &Auto{info: info, fallback: sel.Fallback, log: log}, nil
		}
		if sel.Fallback == "native" {
			log.Warn("this edge-agent has no TensorFlow Lite backend (build with make build-tflite); using the pure-Go runtime", "backend", name, "delegate", sel.Delegate)
			return Native{}, nil
		}
		return nil, fmt.Errorf("backend %s with --delegate %q: %w: this edge-agent has no TensorFlow Lite backend (build it with make build-tflite, or pass --fallback native)", name, sel.Delegate, ErrBackendUnavailable)
	}
	lib := sel.TFLiteLibrary
	if lib == "" {
		lib = info.TFLiteLibrary
	}
	if desc, err := openTFLite(lib); err != nil {
		info.TFLiteLibrary = ""
		log.Warn("TensorFlow Lite is not usable", "err", err)
	} else {
		info.TFLiteLibrary = lib
		if lib == "" {
			info.TFLiteLibrary = "libtensorflowlite_c.so"
		}
		log.Info("TensorFlow Lite loaded", "library", desc)
	}
	var spec *delegate.Spec
	if sel.Delegate != "" {
		s, err := delegate.Resolve(sel.Delegate, opts, info)
		if err != nil {
			return nil, err
		}
		spec = &s
	} else if len(opts) > 0 {
		return nil, fmt.Errorf("%w: --delegate-option given without --delegate", delegate.ErrBadOption)
	}
	a := &Auto{info: info, fallback: sel.Fallback, log: log, library: lib, override: spec, fixed: name == "tflite"}
	return a, nil
}

// Auto is the backend Select returns for "auto" and "tflite": it picks the
// engine and delegate for each model it loads.
type Auto struct {
	info     hardware.Info
	fallback string
	log      *slog.Logger
	library  string
	// override is the --delegate, if any; fixed means --backend tflite
	// (every model through TensorFlow Lite).
	override *delegate.Spec
	fixed    bool
}

// Name returns "auto" (or "tflite" for --backend tflite).
func (a *Auto) Name() string {
	if a.fixed {
		return "tflite"
	}
	return "auto"
}

// Plan is the decision for one model.
type Plan struct {
	// Engine is "native" or "tflite"; Delegate the TensorFlow Lite
	// delegate (zero for native).
	Engine   string
	Delegate delegate.Spec
	Reason   string
}

// Plan decides how a model is run without loading it: Edge TPU-compiled
// models need TensorFlow Lite with the Edge TPU plugin; others follow the
// --delegate override (e.g. xnnpack), else hardware.Pick (the pure-Go
// runtime, which the releases' golden checks are made with).
func (a *Auto) Plan(edgeTPU bool) (Plan, error) {
	if edgeTPU {
		if a.override != nil && a.override.Kind == delegate.KindPlugin && a.override.Name != "gpu" {
			return Plan{Engine: "tflite", Delegate: *a.override, Reason: "Edge TPU model, --delegate " + a.override.Name}, nil
		}
		c, ok := hardware.Pick(a.info, true, tfliteBuilt, "")
		if !ok {
			return Plan{}, fmt.Errorf("%w: %s", ErrUnsupportedModel, c.Reason)
		}
		s, err := delegate.Resolve("edgetpu", a.edgeTPUOptions(), a.info)
		return Plan{Engine: "tflite", Delegate: s, Reason: c.Reason}, err
	}
	if a.override != nil {
		return Plan{Engine: "tflite", Delegate: *a.override, Reason: "--delegate " + a.override.Name}, nil
	}
	if a.fixed {
		if a.info.TFLiteLibrary == "" && a.fallback != "native" {
			return Plan{}, fmt.Errorf("%w: --backend tflite, but libtensorflowlite_c could not be loaded", ErrBackendUnavailable)
		}
		return Plan{Engine: "tflite", Delegate: delegate.Spec{Name: "none", Kind: delegate.KindNone}, Reason: "--backend tflite"}, nil
	}
	c, _ := hardware.Pick(a.info, false, tfliteBuilt, "")
	switch c.Backend {
	case hardware.BackendXNNPACK:
		return Plan{Engine: "tflite", Delegate: delegate.Spec{Name: "xnnpack", Kind: delegate.KindXNNPACK}, Reason: c.Reason}, nil
	default:
		return Plan{Engine: "native", Reason: c.Reason}, nil
	}
}

// edgeTPUOptions are the --delegate-option values when --delegate edgetpu
// was given explicitly.
func (a *Auto) edgeTPUOptions() []delegate.Option {
	if a.override != nil && a.override.Name == hardware.VariantEdgeTPU {
		return a.override.Options
	}
	return nil
}

// Load implements Backend: it plans, loads, and falls back to the pure-Go
// runtime when the plan's TensorFlow Lite path is unavailable and
// --fallback native allows it.
func (a *Auto) Load(ctx context.Context, data []byte) (Model, error) {
	edgeTPU, err := IsEdgeTPUModel(data)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	p, err := a.Plan(edgeTPU)
	if err == nil && p.Engine == "tflite" && newTFLite == nil {
		err = fmt.Errorf("%w: this edge-agent has no TensorFlow Lite backend", ErrBackendUnavailable)
	}
	if err == nil && p.Engine == "tflite" {
		var m Model
		m, err = newTFLite(a.library, p.Delegate, a.log).Load(ctx, data)
		if err == nil {
			del := p.Delegate.String()
			if d, ok := m.(interface{ Delegate() string }); ok {
				del = d.Delegate()
			}
			a.log.Info("model backend", "engine", "tflite", "delegate", del, "reason", p.Reason)
			return m, nil
		}
	}
	if err != nil {
		if edgeTPU || a.fallback != "native" || errors.Is(err, inference.ErrInvalidModel) {
			return nil, err
		}
		a.log.Warn("TensorFlow Lite path unavailable; falling back to the pure-Go runtime (--fallback native)", "err", err)
		p.Reason = "fallback: " + err.Error()
	}
	m, err := Native{}.Load(ctx, data)
	if err == nil {
		a.log.Info("model backend", "engine", "native", "reason", p.Reason)
	}
	return m, err
}

// Capabilities are what the device reports to the fleet: the model
// variants it runs (best first, see hardware.SelectVariant) and the
// backends it can use ("native", "tflite", "tflite+xnnpack",
// "tflite+edgetpu", "tflite+gpu").
func Capabilities(info hardware.Info) (variants, backendNames []string) {
	variants = info.Variants(tfliteBuilt)
	backendNames = []string{"native"}
	if tfliteBuilt && info.TFLiteLibrary != "" {
		backendNames = append(backendNames, "tflite", "tflite+xnnpack")
		if info.Has("edgetpu") && info.EdgeTPULibrary != "" {
			backendNames = append(backendNames, "tflite+edgetpu")
		}
		if info.Has("gpu") && info.GPUDelegateLibrary != "" {
			backendNames = append(backendNames, "tflite+gpu")
		}
	}
	return variants, backendNames
}

// DeviceCapabilities is Capabilities of this board as the agent sees it
// (after Select, which records where libtensorflowlite_c was loaded from).
func DeviceCapabilities() (variants, backendNames []string) {
	info := hardwareInfo()
	hwMu.Lock()
	native := nativeOnly
	hwMu.Unlock()
	if native {
		return []string{hardware.VariantCPU}, []string{"native"}
	}
	return Capabilities(info)
}
