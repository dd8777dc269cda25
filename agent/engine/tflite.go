//go:build tflite && cgo

// The TensorFlow Lite backend: TensorFlow Lite's C API loaded at run time
// (package tflitec) with delegates created per session — the XNNPACK
// delegate built into the library, or an external-delegate plugin such as
// libedgetpu.so.1 loaded and checked by package delegate. Compiled only with
// -tags tflite and cgo; the default agent binary is pure Go and never
// links it.

package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"unsafe"

	"github.com/edgefleet/edgefleet/agent/engine/delegate"
	"github.com/edgefleet/edgefleet/agent/engine/tflitec"
	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/tensor"
)

func init() {
	tfliteBuilt = true
	openTFLite = func(path string) (string, error) {
		l, err := tflitec.Open(path)
		if err != nil {
			return "", err
		}
		return l.Path + " (TensorFlow Lite " + l.Version + ")", nil
	}
	newTFLite = func(library string, spec delegate.Spec, log *slog.Logger) Backend {
		return &TFLite{Library: library, Delegate: spec, Log: log}
	}
	Register(&TFLite{})
}

// TFLite is the TensorFlow Lite backend.
type TFLite struct {
	// Library is libtensorflowlite_c's path or soname ("" =
	// tflitec.LibraryName, found by the dynamic loader).
	Library string
	// Delegate is the delegate every session gets. The zero Spec means
	// none, except that Edge TPU-compiled models then get the Edge TPU
	// plugin (they cannot run without it).
	Delegate delegate.Spec
	// Log receives the warning when a delegate cannot take a model and
	// the model runs on TensorFlow Lite's builtin kernels instead (nil:
	// slog.Default()).
	Log *slog.Logger
}

// Name returns "tflite".
func (*TFLite) Name() string { return "tflite" }

// String describes the backend and its delegate.
func (b *TFLite) String() string {
	if b.Delegate.Kind == "" || b.Delegate.Kind == delegate.KindNone {
		return "tflite"
	}
	return "tflite+" + b.Delegate.String()
}

// Load implements Backend. It loads the library and the delegate plugin
// (checking its symbols), validates the model with edgefleet's own
// bounds-checked reader before TensorFlow Lite sees it, and creates one
// interpreter (with the delegate) to describe the tensors and prove the
// model runs.
func (b *TFLite) Load(ctx context.Context, data []byte) (Model, error) {
	edgeTPU, err := IsEdgeTPUModel(data)
	if err != nil {
		return nil, fmt.Errorf("tflite backend: %w", err)
	}
	path := b.Library
	if path == "" {
		path = hardwareInfo().TFLiteLibrary // "" lets the dynamic loader search
	}
	lib, err := tflitec.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tflite backend: %w: %w", ErrBackendUnavailable, err)
	}
	spec := b.Delegate
	if spec.Kind == "" {
		spec = delegate.Spec{Name: "none", Kind: delegate.KindNone}
	}
	if edgeTPU && spec.Kind == delegate.KindNone {
		spec, _ = delegate.Resolve("edgetpu", nil, hardwareInfo())
	}
	if edgeTPU && spec.Kind != delegate.KindPlugin {
		return nil, fmt.Errorf("tflite backend: %w: the model is compiled for the Edge TPU (%s) and needs --delegate edgetpu, not %s", ErrUnsupportedModel, inference.EdgeTPUCustomOp, spec)
	}
	tm := &tfliteModel{lib: lib, spec: spec}
	if spec.Kind == delegate.KindPlugin {
		if tm.plugin, err = delegate.Open(spec.Library); err != nil {
			return nil, fmt.Errorf("tflite backend: delegate %s: %w: %w", spec, ErrBackendUnavailable, err)
		}
	}
	if tm.m, err = lib.NewModel(data); err != nil {
		return nil, fmt.Errorf("tflite backend: %w: %w", inference.ErrInvalidModel, err)
	}
	s, err := tm.NewSession(ctx, 1)
	if errors.Is(err, tflitec.ErrDelegateRejected) && !edgeTPU {
		// The delegate could not take the graph (an operator or a
		// quantization it does not support): TensorFlow Lite's builtin
		// kernels run the whole model instead, for every session.
		log := b.Log
		if log == nil {
			log = slog.Default()
		}
		log.Warn("delegate cannot take this model; it runs on TensorFlow Lite's builtin kernels", "delegate", spec.String(), "err", err)
		tm.rejected = err
		s, err = tm.NewSession(ctx, 1)
	}
	if err != nil {
		tm.m.Delete()
		return nil, err
	}
	ip := s.(*tfliteSession).ip
	for i := 0; i < ip.InputCount(); i++ {
		tm.inputs = append(tm.inputs, ip.Input(i).Info())
	}
	for i := 0; i < ip.OutputCount(); i++ {
		tm.outputs = append(tm.outputs, ip.Output(i).Info())
	}
	s.Close()
	if !edgeTPU {
		if im, err := inference.Load(data); err == nil {
			tm.meta = im.Metadata()
		}
	}
	return tm, nil
}

type tfliteModel struct {
	lib     *tflitec.Lib
	spec    delegate.Spec
	plugin  *delegate.Plugin
	m       *tflitec.Model
	inputs  []tensor.Info
	outputs []tensor.Info
	meta    *inference.Metadata
	// rejected is why the delegate could not be applied to this model
	// (sessions then run without it), or nil.
	rejected error
}

// Delegate implements Describer: the delegate the model's sessions use
// (its spec), or "none (xnnpack rejected the model)" when it could not be
// applied.
func (t *tfliteModel) Delegate() string {
	if t.rejected != nil {
		return "none (" + t.spec.String() + " rejected the model)"
	}
	return t.spec.String()
}

func (t *tfliteModel) Inputs() []tensor.Info         { return t.inputs }
func (t *tfliteModel) Outputs() []tensor.Info        { return t.outputs }
func (t *tfliteModel) Metadata() *inference.Metadata { return t.meta }
func (t *tfliteModel) Close() error                  { t.m.Delete(); return nil }

// NewSession creates a delegate instance (when the model has one) and an
// interpreter that uses it; both are released by the session's Close.
func (t *tfliteModel) NewSession(ctx context.Context, threads int) (Session, error) {
	threads = max(1, threads)
	var (
		del  io.Closer
		ptrs []unsafe.Pointer
	)
	kind := t.spec.Kind
	if t.rejected != nil {
		kind = delegate.KindNone
	}
	switch kind {
	case delegate.KindXNNPACK:
		var flags uint32
		for _, o := range t.spec.Options {
			if o.Key == delegate.XNNPACKQuantized && o.Value == "true" {
				flags = tflitec.XNNPACKQS8 | tflitec.XNNPACKQU8
			}
		}
		x, err := t.lib.NewXNNPACKFlags(threads, flags)
		if err != nil {
			return nil, fmt.Errorf("tflite backend: %w: %w", ErrBackendUnavailable, err)
		}
		del, ptrs = x, []unsafe.Pointer{x.Ptr()}
	case delegate.KindPlugin:
		d, err := t.plugin.Create(t.spec.Options)
		if err != nil {
			return nil, fmt.Errorf("tflite backend: delegate %s: %w: %w", t.spec, ErrBackendUnavailable, err)
		}
		del, ptrs = d, []unsafe.Pointer{d.Ptr()}
	}
	ip, err := t.m.NewInterpreter(threads, ptrs)
	if err == nil {
		err = ip.AllocateTensors()
		if err != nil {
			ip.Delete()
		}
	}
	if err != nil {
		if del != nil {
			del.Close()
		}
		return nil, fmt.Errorf("tflite backend (%s): %w: %w", t.spec, ErrUnsupportedModel, err)
	}
	s := &tfliteSession{ip: ip, delegate: del}
	for i := 0; i < ip.InputCount(); i++ {
		s.base = append(s.base, ip.Input(i).Info().Shape)
	}
	runtime.SetFinalizer(s, func(s *tfliteSession) { s.Close() })
	return s, nil
}

type tfliteSession struct {
	ip       *tflitec.Interpreter
	delegate io.Closer
	base     [][]int
	batch    int
	closed   bool
}

func (s *tfliteSession) Run(ctx context.Context, batch int, inputs [][]byte) ([]Tensor, error) {
	if s.closed {
		return nil, errors.New("tflite backend: session is closed")
	}
	if len(inputs) != len(s.base) {
		return nil, fmt.Errorf("%w: %d inputs given, the model has %d", ErrBadInput, len(inputs), len(s.base))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if batch > 0 && batch != s.batch {
		for i, shape := range s.base {
			if len(shape) == 0 {
				return nil, fmt.Errorf("%w: input %d is a scalar and has no batch dimension", ErrBadInput, i)
			}
			if err := s.ip.ResizeInput(i, append([]int{batch}, shape[1:]...)); err != nil {
				s.batch = -1
				return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
			}
		}
		if err := s.ip.AllocateTensors(); err != nil {
			s.batch = -1
			return nil, fmt.Errorf("%w: batch %d: %w", ErrBadInput, batch, err)
		}
		s.batch = batch
	}
	for i, in := range inputs {
		t := s.ip.Input(i)
		if n := t.ByteSize(); len(in) != n {
			return nil, fmt.Errorf("%w: input %d (%q): expected %d bytes, given %d", ErrBadInput, i, t.Info().Name, n, len(in))
		}
		if err := t.CopyFrom(in); err != nil {
			return nil, fmt.Errorf("tflite backend: set input %d: %w", i, err)
		}
	}
	if err := s.ip.Invoke(); err != nil {
		return nil, fmt.Errorf("tflite backend: %w", err)
	}
	out := make([]Tensor, s.ip.OutputCount())
	for i := range out {
		t := s.ip.Output(i)
		data := make([]byte, t.ByteSize())
		if err := t.CopyTo(data); err != nil {
			return nil, fmt.Errorf("tflite backend: read output %d: %w", i, err)
		}
		out[i] = Tensor{Info: t.Info(), Data: data}
	}
	return out, nil
}

// Close deletes the interpreter, then its delegate.
func (s *tfliteSession) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	runtime.SetFinalizer(s, nil)
	s.ip.Delete()
	if s.delegate != nil {
		s.delegate.Close()
	}
	return nil
}
