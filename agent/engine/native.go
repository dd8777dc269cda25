package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/tensor"
)

// Native is the pure-Go backend (package inference).
type Native struct{}

// Name returns "native".
func (Native) Name() string { return "native" }

// Load implements Backend.
func (Native) Load(ctx context.Context, data []byte) (Model, error) {
	m, err := inference.Load(data)
	if err != nil {
		var uo *inference.UnsupportedOpError
		var et *inference.EdgeTPUModelError
		if errors.As(err, &uo) || errors.As(err, &et) {
			return nil, fmt.Errorf("native backend: %w: %w", ErrUnsupportedModel, err)
		}
		return nil, fmt.Errorf("native backend: %w", err)
	}
	return nativeModel{m}, nil
}

type nativeModel struct{ m *inference.Model }

func (n nativeModel) Inputs() []tensor.Info         { return n.m.Inputs() }
func (n nativeModel) Outputs() []tensor.Info        { return n.m.Outputs() }
func (n nativeModel) Metadata() *inference.Metadata { return n.m.Metadata() }
func (n nativeModel) Close() error                  { return nil }

func (n nativeModel) NewSession(ctx context.Context, threads int) (Session, error) {
	ip, err := inference.NewInterpreter(n.m, inference.WithThreads(threads))
	if err != nil {
		return nil, fmt.Errorf("native backend: new interpreter: %w", err)
	}
	s := &nativeSession{ip: ip}
	for i := 0; i < ip.NumInputs(); i++ {
		s.base = append(s.base, append([]int(nil), ip.Input(i).Shape...))
	}
	return s, nil
}

type nativeSession struct {
	ip    *inference.Interpreter
	base  [][]int
	batch int
}

func (s *nativeSession) Run(ctx context.Context, batch int, inputs [][]byte) ([]Tensor, error) {
	ip := s.ip
	if len(inputs) != ip.NumInputs() {
		return nil, fmt.Errorf("%w: %d inputs given, the model has %d", ErrBadInput, len(inputs), ip.NumInputs())
	}
	if batch > 0 && batch != s.batch {
		for i, shape := range s.base {
			if len(shape) == 0 {
				return nil, fmt.Errorf("%w: input %d is a scalar and has no batch dimension", ErrBadInput, i)
			}
			sh := append([]int{batch}, shape[1:]...)
			if err := ip.ResizeInput(i, sh); err != nil {
				s.batch = -1
				return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
			}
		}
		if err := ip.AllocateTensors(); err != nil {
			s.batch = -1
			return nil, fmt.Errorf("%w: batch %d: %w", ErrBadInput, batch, err)
		}
		s.batch = batch
	}
	for i, in := range inputs {
		if err := ip.SetInput(i, in); err != nil {
			var ie *inference.InputError
			if errors.As(err, &ie) {
				return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
			}
			return nil, err
		}
	}
	if err := ip.InvokeContext(ctx); err != nil {
		return nil, fmt.Errorf("invoke: %w", err)
	}
	out := make([]Tensor, ip.NumOutputs())
	for i := range out {
		t := ip.Output(i)
		out[i] = Tensor{Info: t.Info(), Data: append([]byte(nil), t.Data[:t.ByteSize()]...)}
	}
	return out, nil
}

func (s *nativeSession) Close() error { return s.ip.Close() }

// MemoryBytes implements MemoryReporter: the interpreter's tensor arena.
func (s *nativeSession) MemoryBytes() int64 { return int64(s.ip.ArenaBytes()) }
