package resize_test

import (
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
	"github.com/edgefleet/edgefleet/quant"
)

func TestHandComputed(t *testing.T) {
	type tc struct {
		name        string
		op          schema.BuiltinOperator
		typ         tensor.DType
		align, half bool
		runtime     bool
		want        []float64
	}
	// Input [[0, 1], [2, 3]] resized to 3x3.
	cases := []tc{
		{"bilinear", schema.OpResizeBilinear, tensor.Float32, false, false, false, []float64{0, 2. / 3, 1, 4. / 3, 2, 7. / 3, 2, 8. / 3, 3}},
		{"bilinear align", schema.OpResizeBilinear, tensor.Float32, true, false, false, []float64{0, .5, 1, 1, 1.5, 2, 2, 2.5, 3}},
		{"bilinear half", schema.OpResizeBilinear, tensor.Float32, false, true, true, []float64{0, .5, 1, 1, 1.5, 2, 2, 2.5, 3}},
		{"nearest uint8", schema.OpResizeNearestNeighbor, tensor.Uint8, false, false, false, []float64{0, 0, 1, 0, 0, 1, 2, 2, 3}},
		{"nearest int8 align", schema.OpResizeNearestNeighbor, tensor.Int8, true, false, true, []float64{0, 1, 1, 2, 3, 3, 2, 3, 3}},
		{"nearest int16 half", schema.OpResizeNearestNeighbor, tensor.Int16, false, true, false, []float64{0, 1, 1, 2, 3, 3, 2, 3, 3}},
		{"nearest float", schema.OpResizeNearestNeighbor, tensor.Float32, false, false, true, []float64{0, 0, 1, 0, 0, 1, 2, 2, 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			size := kerneltest.New(tensor.Int32, []int{2}, []float64{3, 3}, nil)
			if c.runtime {
				kerneltest.Runtime(size)
			}
			in := kerneltest.New(c.typ, []int{1, 2, 2, 1}, []float64{0, 1, 2, 3}, nil)
			out := kerneltest.New(c.typ, nil, nil, nil)
			if err := kerneltest.Run(t, c.op, &schema.ResizeOptions{AlignCorners: c.align, HalfPixelCenters: c.half}, []*tensor.Tensor{in, size}, out); err != nil {
				t.Fatal(err)
			}
			kerneltest.Expect(t, out, []int{1, 3, 3, 1}, c.want, 1e-6)
		})
	}
}

// TestInteger checks the int8 Q10 path on a value where rounding matters:
// a 1x2 -> 1x4 upsample of [0, 10]: source x = 0, 0.5, 1, 1 (scale 0.5,
// Q10 512) -> 0, 5, 10, 10; and [-1, 0] -> -1, -0.5 -> -1 (half away from
// zero), 0, 0.
func TestInteger(t *testing.T) {
	for _, c := range []struct {
		in, want []float64
	}{{[]float64{0, 10}, []float64{0, 5, 10, 10}}, {[]float64{-1, 0}, []float64{-1, -1, 0, 0}}} {
		in := kerneltest.New(tensor.Int8, []int{1, 1, 2, 1}, c.in, nil)
		out := kerneltest.New(tensor.Int8, nil, nil, nil)
		size := kerneltest.New(tensor.Int32, []int{2}, []float64{1, 4}, nil)
		if err := kerneltest.Run(t, schema.OpResizeBilinear, &schema.ResizeOptions{}, []*tensor.Tensor{in, size}, out); err != nil {
			t.Fatal(err)
		}
		kerneltest.Expect(t, out, []int{1, 1, 4, 1}, c.want, 0)
	}
}

func TestErrors(t *testing.T) {
	in4 := func(d tensor.DType) *tensor.Tensor {
		return kerneltest.New(d, []int{1, 2, 2, 1}, []float64{0, 1, 2, 3}, nil)
	}
	size := func(h, w float64) *tensor.Tensor { return kerneltest.New(tensor.Int32, []int{2}, []float64{h, w}, nil) }
	for _, c := range []struct {
		name   string
		op     schema.BuiltinOperator
		opts   *schema.ResizeOptions
		inputs []*tensor.Tensor
		errSub string
	}{
		{"both modes", schema.OpResizeBilinear, &schema.ResizeOptions{AlignCorners: true, HalfPixelCenters: true}, []*tensor.Tensor{in4(tensor.Float32), size(3, 3)}, "cannot both"},
		{"zero size", schema.OpResizeBilinear, &schema.ResizeOptions{}, []*tensor.Tensor{in4(tensor.Float32), size(0, 3)}, "positive"},
		{"negative runtime size", schema.OpResizeNearestNeighbor, &schema.ResizeOptions{}, []*tensor.Tensor{in4(tensor.Uint8), kerneltest.Runtime(size(2, -3))}, "positive"},
		{"rank 3", schema.OpResizeBilinear, &schema.ResizeOptions{}, []*tensor.Tensor{kerneltest.New(tensor.Float32, []int{2, 2, 1}, []float64{0, 1, 2, 3}, nil), size(3, 3)}, "4-D"},
		{"int32 input", schema.OpResizeBilinear, &schema.ResizeOptions{}, []*tensor.Tensor{in4(tensor.Int32), size(3, 3)}, "expected float32"},
		{"int64 size", schema.OpResizeNearestNeighbor, &schema.ResizeOptions{}, []*tensor.Tensor{in4(tensor.Float32), kerneltest.New(tensor.Int64, []int{2}, []float64{3, 3}, nil)}, "int32 [2]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := kerneltest.New(c.inputs[0].Type, nil, nil, nil)
			err := kerneltest.Run(t, c.op, c.opts, c.inputs, out)
			if err == nil || !strings.Contains(err.Error(), c.errSub) {
				t.Fatalf("error %v, want one containing %q", err, c.errSub)
			}
		})
	}
}

// prepared builds a resize node ready for Eval (input 1xHxWxC, output
// size oh x ow).
func prepared(tb testing.TB, op schema.BuiltinOperator, typ tensor.DType, h, w, c, oh, ow int, opts *schema.ResizeOptions) (kernels.Kernel, *kernels.Context, *kernels.Node) {
	tb.Helper()
	kern, ok := kernels.Lookup(schema.OperatorCode{Builtin: op, Version: 1})
	if !ok {
		tb.Fatal("no kernel")
	}
	in := kerneltest.New(typ, []int{1, h, w, c}, make([]float64, h*w*c), kerneltest.Q(0.1, 0))
	size := kerneltest.New(tensor.Int32, []int{2}, []float64{float64(oh), float64(ow)}, nil)
	out := kerneltest.New(typ, nil, nil, kerneltest.Q(0.1, 0))
	n := &kernels.Node{Op: op, Version: 1, Options: opts, Inputs: []*tensor.Tensor{in, size}, Outputs: []*tensor.Tensor{out}}
	ctx := kernels.NewContext(quant.RoundingTFLite, 1)
	ctx.Preparing = true
	if err := kern.Prepare(ctx, n); err != nil {
		tb.Fatal(err)
	}
	ctx.Preparing = false
	out.Data = kernels.AlignedBytes(out.ByteSize())
	return kern, ctx, n
}

func TestEvalDoesNotAllocate(t *testing.T) {
	for _, op := range []schema.BuiltinOperator{schema.OpResizeBilinear, schema.OpResizeNearestNeighbor} {
		for _, typ := range []tensor.DType{tensor.Float32, tensor.Uint8, tensor.Int8, tensor.Int16} {
			kern, ctx, n := prepared(t, op, typ, 4, 4, 8, 32, 32, &schema.ResizeOptions{HalfPixelCenters: true})
			if a := testing.AllocsPerRun(10, func() {
				if err := kern.Eval(ctx, n); err != nil {
					t.Fatal(err)
				}
			}); a != 0 {
				t.Errorf("%s %s: %v allocations per Eval", op, typ, a)
			}
		}
	}
}

func BenchmarkResize(b *testing.B) {
	for _, bc := range []struct {
		name string
		op   schema.BuiltinOperator
		typ  tensor.DType
		opts *schema.ResizeOptions
	}{
		{"bilinear_float32", schema.OpResizeBilinear, tensor.Float32, &schema.ResizeOptions{}},
		{"bilinear_uint8", schema.OpResizeBilinear, tensor.Uint8, &schema.ResizeOptions{}},
		{"bilinear_uint8_888", schema.OpResizeBilinear, tensor.Uint8, &schema.ResizeOptions{HalfPixelCenters: true}},
		{"bilinear_int8", schema.OpResizeBilinear, tensor.Int8, &schema.ResizeOptions{HalfPixelCenters: true}},
		{"nearest_uint8", schema.OpResizeNearestNeighbor, tensor.Uint8, &schema.ResizeOptions{}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			// 33x33x64 -> 264x264x64 (DeepLab-style upsampling head).
			kern, ctx, n := prepared(b, bc.op, bc.typ, 33, 33, 64, 264, 264, bc.opts)
			b.SetBytes(int64(n.Outputs[0].ByteSize()))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := kern.Eval(ctx, n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
