// Package engine is the agent's seam to an inference backend: the pure-Go
// runtime (package inference, the default, CGO-free) or TensorFlow Lite's C
// API loaded at run time (package tflitec; build tag "tflite", cgo) with
// XNNPACK or external-delegate plugins (Edge TPU, GPU; package delegate).
// Both pass enginetest.RunBackendSuite.
package engine

import (
	"context"
	"errors"

	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/tensor"
)

// Backend loads models.
type Backend interface {
	// Name identifies the backend ("native", "tflite").
	Name() string
	// Load validates and prepares a model from its file bytes.
	Load(ctx context.Context, data []byte) (Model, error)
}

// Model is a loaded model; it is safe for concurrent use and hands out
// Sessions, each of which is used by one goroutine at a time.
type Model interface {
	// Inputs and Outputs describe the primary subgraph's tensors.
	Inputs() []tensor.Info
	Outputs() []tensor.Info
	// Metadata is the model's TFLite metadata, or nil.
	Metadata() *inference.Metadata
	// NewSession prepares an interpreter that may use threads goroutines.
	NewSession(ctx context.Context, threads int) (Session, error)
	// Close releases the model (sessions must be closed first).
	Close() error
}

// Session runs a model. It is not safe for concurrent use.
type Session interface {
	// Run sets the leading (batch) dimension of every input to batch when
	// batch > 0 (batch == 0 keeps the model's shapes), copies inputs[i] into
	// input i, invokes, and returns copies of the outputs.
	Run(ctx context.Context, batch int, inputs [][]byte) ([]Tensor, error)
	// Close releases the session.
	Close() error
}

// MemoryReporter is implemented by sessions that know how many bytes their
// interpreter holds (tensor arena); the serving pool uses it for its memory
// budget and estimates sessions that do not implement it.
type MemoryReporter interface {
	MemoryBytes() int64
}

// Tensor is an output tensor: its description (with the shape it had for
// this run) and a copy of its bytes.
type Tensor struct {
	Info tensor.Info
	Data []byte
}

// ErrBadInput is wrapped by Run errors caused by the caller's input (wrong
// size, shape or batch), as opposed to a failure of the backend.
var ErrBadInput = errors.New("bad input")

// ErrUnsupportedModel is wrapped by Load errors for models the backend
// cannot run (unknown op, Edge TPU model without a delegate).
var ErrUnsupportedModel = errors.New("unsupported model")
