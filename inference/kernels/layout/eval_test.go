package layout_test

import (
	"testing"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
	"github.com/edgefleet/edgefleet/quant"
)

// node prepares op on inputs with nOut outputs of type outType, as the
// interpreter does at plan time, and gives the outputs memory.
func node(tb testing.TB, op schema.BuiltinOperator, opts any, inputs []*tensor.Tensor, nOut int, outType tensor.DType) (kernels.Kernel, *kernels.Context, *kernels.Node) {
	tb.Helper()
	kern, ok := kernels.Lookup(schema.OperatorCode{Builtin: op, Version: 1})
	if !ok {
		tb.Fatalf("no kernel for %s", op)
	}
	var outs []*tensor.Tensor
	for i := 0; i < nOut; i++ {
		outs = append(outs, &tensor.Tensor{Name: "out", Type: outType, Quant: inputs[0].Quant})
	}
	n := &kernels.Node{Op: op, Version: 1, Options: opts, Inputs: inputs, Outputs: outs}
	ctx := kernels.NewContext(quant.RoundingTFLite, 1)
	ctx.Preparing = true
	if err := kern.Prepare(ctx, n); err != nil {
		tb.Fatal(err)
	}
	ctx.Preparing = false
	for _, o := range outs {
		if o.Alloc == tensor.ArenaAlloc {
			o.Data = kernels.AlignedBytes(o.ByteSize())
		}
	}
	return kern, ctx, n
}

func filled(typ tensor.DType, shape ...int) *tensor.Tensor {
	n := tensor.NumElements(shape)
	v := make([]float64, n)
	for i := range v {
		v[i] = float64(i % 100)
	}
	return kerneltest.Runtime(kerneltest.New(typ, shape, v, kerneltest.Q(0.1, 3)))
}

func ints(v ...float64) *tensor.Tensor { return kerneltest.New(tensor.Int32, []int{len(v)}, v, nil) }

type evalCase struct {
	name   string
	op     schema.BuiltinOperator
	opts   any
	inputs func() []*tensor.Tensor
	outs   int
}

func evalCases() []evalCase {
	f, u8 := tensor.Float32, tensor.Uint8
	return []evalCase{
		{"reshape", schema.OpReshape, nil, func() []*tensor.Tensor { return []*tensor.Tensor{filled(f, 64, 64, 32), ints(-1, 32)} }, 1},
		{"transpose_nhwc_nchw", schema.OpTranspose, nil, func() []*tensor.Tensor { return []*tensor.Tensor{filled(f, 1, 64, 64, 32), ints(0, 3, 1, 2)} }, 1},
		{"transpose_uint8", schema.OpTranspose, nil, func() []*tensor.Tensor { return []*tensor.Tensor{filled(u8, 1, 64, 64, 32), ints(0, 2, 1, 3)} }, 1},
		{"pad", schema.OpPad, nil, func() []*tensor.Tensor {
			return []*tensor.Tensor{filled(u8, 1, 64, 64, 32), kerneltest.New(tensor.Int32, []int{4, 2}, []float64{0, 0, 1, 1, 1, 1, 0, 0}, nil)}
		}, 1},
		{"concat", schema.OpConcatenation, &schema.ConcatenationOptions{Axis: 3}, func() []*tensor.Tensor { return []*tensor.Tensor{filled(f, 1, 64, 64, 16), filled(f, 1, 64, 64, 16)} }, 1},
		{"concat_rescale", schema.OpConcatenation, &schema.ConcatenationOptions{Axis: 3}, func() []*tensor.Tensor {
			b := filled(u8, 1, 64, 64, 16)
			b.Quant = kerneltest.Q(0.2, 7)
			return []*tensor.Tensor{filled(u8, 1, 64, 64, 16), b}
		}, 1},
		{"split", schema.OpSplit, &schema.SplitOptions{NumSplits: 2}, func() []*tensor.Tensor {
			return []*tensor.Tensor{kerneltest.New(tensor.Int32, []int{}, []float64{3}, nil), filled(f, 1, 64, 64, 32)}
		}, 2},
		{"strided_slice", schema.OpStridedSlice, &schema.StridedSliceOptions{}, func() []*tensor.Tensor {
			return []*tensor.Tensor{filled(f, 1, 64, 64, 32), ints(0, 1, 1, 0), ints(1, 64, 64, 32), ints(1, 2, 2, 1)}
		}, 1},
		{"gather", schema.OpGather, &schema.GatherOptions{Axis: 0}, func() []*tensor.Tensor {
			idx := make([]float64, 256)
			for i := range idx {
				idx[i] = float64(i * 7 % 1000)
			}
			return []*tensor.Tensor{filled(f, 1000, 64), kerneltest.Runtime(kerneltest.New(tensor.Int32, []int{256}, idx, nil))}
		}, 1},
		{"tile", schema.OpTile, nil, func() []*tensor.Tensor { return []*tensor.Tensor{filled(f, 1, 1, 64, 32), ints(1, 64, 1, 1)} }, 1},
		{"depth_to_space", schema.OpDepthToSpace, &schema.BlockOptions{BlockSize: 2}, func() []*tensor.Tensor { return []*tensor.Tensor{filled(u8, 1, 32, 32, 64)} }, 1},
	}
}

func TestEvalDoesNotAllocate(t *testing.T) {
	for _, c := range evalCases() {
		t.Run(c.name, func(t *testing.T) {
			in := c.inputs()
			kern, ctx, n := node(t, c.op, c.opts, in, c.outs, dataType(c.op, in))
			if a := testing.AllocsPerRun(5, func() {
				if err := kern.Eval(ctx, n); err != nil {
					t.Fatal(err)
				}
			}); a != 0 {
				t.Errorf("%v allocations per Eval", a)
			}
		})
	}
}

func BenchmarkEval(b *testing.B) {
	for _, c := range evalCases() {
		b.Run(c.name, func(b *testing.B) {
			in := c.inputs()
			kern, ctx, n := node(b, c.op, c.opts, in, c.outs, dataType(c.op, in))
			b.SetBytes(int64(n.Outputs[0].ByteSize() * len(n.Outputs)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := kern.Eval(ctx, n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// dataType is the type of the op's data input (SPLIT's is input 1).
func dataType(op schema.BuiltinOperator, in []*tensor.Tensor) tensor.DType {
	if op == schema.OpSplit {
		return in[1].Type
	}
	return in[0].Type
}
