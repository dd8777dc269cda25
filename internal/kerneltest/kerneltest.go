// Package kerneltest runs kernels outside an interpreter for unit tests:
// it builds tensors, prepares and evaluates one node the way the interpreter
// does, and compares results.
package kerneltest

import (
	"math"
	"testing"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/quant"
)

// Q returns per-tensor quantization parameters.
func Q(scale float32, zeroPoint int64) *tensor.Quantization {
	return &tensor.Quantization{Scale: []float32{scale}, ZeroPoint: []int64{zeroPoint}}
}

// New builds a tensor of dtype and shape holding values (converted to the
// dtype without quantizing; pass nil values for an output).
func New(dtype tensor.DType, shape []int, values []float64, q *tensor.Quantization) *tensor.Tensor {
	t := &tensor.Tensor{Name: "t", Type: dtype, Shape: append([]int{}, shape...), Quant: q}
	if values == nil {
		return t
	}
	t.Data = kernels.AlignedBytes(t.ByteSize())
	t.KnownAtPrepare = true
	t.Alloc = tensor.ConstantAlloc
	switch dtype {
	case tensor.Float32:
		for i, v := range values {
			t.Float32s()[i] = float32(v)
		}
	case tensor.Int8:
		for i, v := range values {
			t.Int8s()[i] = int8(v)
		}
	case tensor.Uint8:
		for i, v := range values {
			t.Uint8s()[i] = uint8(v)
		}
	case tensor.Int16:
		for i, v := range values {
			t.Int16s()[i] = int16(v)
		}
	case tensor.Int32:
		for i, v := range values {
			t.Int32s()[i] = int32(v)
		}
	case tensor.Int64:
		for i, v := range values {
			t.Int64s()[i] = int64(v)
		}
	case tensor.Bool:
		for i, v := range values {
			t.Bools()[i] = v != 0
		}
	default:
		panic("kerneltest.New: unsupported dtype " + dtype.String())
	}
	return t
}

// Run prepares and evaluates op on inputs, allocating outputs the way the
// interpreter would. Constant inputs built by mk are KnownAtPrepare; call
// asRuntime to make an input a run-time value.
func Run(t *testing.T, op schema.BuiltinOperator, opts any, inputs []*tensor.Tensor, outputs ...*tensor.Tensor) error {
	t.Helper()
	return RunRounding(t, quant.RoundingTFLite, op, opts, inputs, outputs...)
}

// RunRounding is Run with an explicit rounding mode.
func RunRounding(t *testing.T, r quant.Rounding, op schema.BuiltinOperator, opts any, inputs []*tensor.Tensor, outputs ...*tensor.Tensor) error {
	t.Helper()
	k, ok := kernels.Lookup(schema.OperatorCode{Builtin: op, Version: 1})
	if !ok {
		t.Fatalf("no kernel registered for %s", op)
	}
	return RunKernel(k, r, &kernels.Node{Op: op, Version: 1, Options: opts, Inputs: inputs, Outputs: outputs})
}

// RunKernel prepares and evaluates one node with kernel k.
func RunKernel(k kernels.Kernel, r quant.Rounding, n *kernels.Node) error {
	ctx := kernels.NewContext(r, 1)
	ctx.Preparing = true
	if err := k.Prepare(ctx, n); err != nil {
		return err
	}
	ctx.Preparing = false
	for _, o := range n.Outputs {
		if o.Alloc == tensor.DynamicAlloc {
			continue
		}
		if o.Alloc == tensor.PersistentAlloc {
			continue
		}
		o.Data = kernels.AlignedBytes(o.ByteSize())
	}
	for _, o := range n.Outputs {
		if o.Alloc == tensor.DynamicAlloc {
			// Dynamic outputs: re-run Prepare with values known, as the
			// interpreter does during Invoke.
			ctx.Preparing, ctx.InEval = true, true
			if err := k.Prepare(ctx, n); err != nil {
				return err
			}
			ctx.Preparing = false
			for _, o := range n.Outputs {
				if o.Alloc == tensor.DynamicAlloc {
					o.Data = kernels.AlignedBytes(o.ByteSize())
				}
			}
			break
		}
	}
	return k.Eval(ctx, n)
}

// Runtime marks t as computed at run time (not known at prepare).
func Runtime(t *tensor.Tensor) *tensor.Tensor {
	t.KnownAtPrepare = false
	t.Alloc = tensor.ArenaAlloc
	return t
}

// Values returns t's elements as float64 (raw, not dequantized).
func Values(t *tensor.Tensor) []float64 {
	n := t.NumElements()
	out := make([]float64, n)
	for i := 0; i < n; i++ {
		switch t.Type {
		case tensor.Float32:
			out[i] = float64(t.Float32s()[i])
		case tensor.Int8:
			out[i] = float64(t.Int8s()[i])
		case tensor.Uint8:
			out[i] = float64(t.Uint8s()[i])
		case tensor.Int16:
			out[i] = float64(t.Int16s()[i])
		case tensor.Int32:
			out[i] = float64(t.Int32s()[i])
		case tensor.Int64:
			out[i] = float64(t.Int64s()[i])
		case tensor.Bool:
			if t.Bools()[i] {
				out[i] = 1
			}
		}
	}
	return out
}

// Expect fails unless t holds want (within tol) and has shape.
func Expect(t *testing.T, got *tensor.Tensor, shape []int, want []float64, tol float64) {
	t.Helper()
	if !tensor.SameShape(got.Shape, shape) {
		t.Fatalf("shape %v, want %v", got.Shape, shape)
	}
	g := Values(got)
	if len(g) != len(want) {
		t.Fatalf("%d values, want %d", len(g), len(want))
	}
	for i := range want {
		if math.Abs(g[i]-want[i]) > tol || math.IsNaN(g[i]) != math.IsNaN(want[i]) {
			t.Fatalf("value %d = %v, want %v (all: %v, want %v)", i, g[i], want[i], g, want)
		}
	}
}
