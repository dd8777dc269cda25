package pool_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
	"github.com/edgefleet/edgefleet/quant"
)

func popts(p schema.Padding, sh, sw, fh, fw int, act quant.Activation) *schema.Pool2DOptions {
	return &schema.Pool2DOptions{Padding: p, StrideH: sh, StrideW: sw, FilterHeight: fh, FilterWidth: fw, Activation: act}
}

// TestPool checks hand-computed AVERAGE_POOL_2D and MAX_POOL_2D results for
// every dtype, both paddings, strides, windows and fused activations.
func TestPool(t *testing.T) {
	const same, valid = schema.PaddingSame, schema.PaddingValid
	q := kerneltest.Q
	// 3x3 single-channel image 1..9.
	img := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9}
	cases := []struct {
		name     string
		op       schema.BuiltinOperator
		opts     *schema.Pool2DOptions
		dt       tensor.DType
		inQ      *tensor.Quantization
		outQ     *tensor.Quantization
		shape    []int
		in       []float64
		outShape []int
		want     []float64
		tol      float64
		errSub   string
	}{
		// VALID 2x2 stride 1: means of each 2x2 block.
		{name: "avg_float_valid", op: schema.OpAveragePool2D, opts: popts(valid, 1, 1, 2, 2, quant.ActNone), dt: tensor.Float32,
			shape: []int{1, 3, 3, 1}, in: img, outShape: []int{1, 2, 2, 1}, want: []float64{3, 4, 6, 7}, tol: 1e-6},
		// SAME 2x2 stride 2 on 3x3: output 2x2, the edge windows are cut
		// (padding is not counted): [3 4.5; 7.5 9].
		{name: "avg_float_same_stride", op: schema.OpAveragePool2D, opts: popts(same, 2, 2, 2, 2, quant.ActNone), dt: tensor.Float32,
			shape: []int{1, 3, 3, 1}, in: img, outShape: []int{1, 2, 2, 1}, want: []float64{3, 4.5, 7.5, 9}, tol: 1e-6},
		// SAME 3x3 stride 1: centre window 1..9 mean 5, corners average 4 values.
		{name: "avg_float_same_relu6", op: schema.OpAveragePool2D, opts: popts(same, 1, 1, 3, 3, quant.ActRelu6), dt: tensor.Float32,
			shape: []int{1, 3, 3, 1}, in: []float64{1, 2, 3, 4, 5, 6, 7, 8, 90}, outShape: []int{1, 3, 3, 1},
			want: []float64{3, 3.5, 4, 4.5, 6, 6, 6, 6, 6}, tol: 1e-6},
		// Integer means round half away from zero: (1+2)/2 = 1.5 → 2, (-1-2)/2 → -2.
		{name: "avg_int8_rounding", op: schema.OpAveragePool2D, opts: popts(valid, 1, 2, 1, 2, quant.ActNone), dt: tensor.Int8, inQ: q(0.5, 0), outQ: q(0.5, 0),
			shape: []int{1, 1, 6, 1}, in: []float64{1, 2, -1, -2, 4, 4}, outShape: []int{1, 1, 3, 1}, want: []float64{2, -2, 4}},
		{name: "avg_int8_relu_zp", op: schema.OpAveragePool2D, opts: popts(valid, 1, 1, 1, 2, quant.ActRelu), dt: tensor.Int8, inQ: q(0.5, -10), outQ: q(0.5, -10),
			shape: []int{1, 1, 3, 1}, in: []float64{-20, -30, 0}, outShape: []int{1, 1, 2, 1}, want: []float64{-10, -10}},
		{name: "avg_uint8_channels", op: schema.OpAveragePool2D, opts: popts(valid, 1, 1, 2, 1, quant.ActNone), dt: tensor.Uint8, inQ: q(1, 0), outQ: q(1, 0),
			shape: []int{1, 2, 1, 2}, in: []float64{1, 10, 2, 255}, outShape: []int{1, 1, 1, 2}, want: []float64{2, 133}},
		{name: "avg_uint8_relu1", op: schema.OpAveragePool2D, opts: popts(valid, 1, 1, 1, 1, quant.ActReluN1To1), dt: tensor.Uint8, inQ: q(0.25, 100), outQ: q(0.25, 100),
			shape: []int{1, 1, 3, 1}, in: []float64{0, 101, 200}, outShape: []int{1, 1, 3, 1}, want: []float64{96, 101, 104}},
		{name: "avg_int16", op: schema.OpAveragePool2D, opts: popts(same, 2, 2, 2, 2, quant.ActNone), dt: tensor.Int16, inQ: q(0.001, 0), outQ: q(0.001, 0),
			shape: []int{1, 2, 2, 1}, in: []float64{-1000, -2001, 0, 0}, outShape: []int{1, 1, 1, 1}, want: []float64{-750}},
		{name: "max_float_same", op: schema.OpMaxPool2D, opts: popts(same, 2, 2, 2, 2, quant.ActNone), dt: tensor.Float32,
			shape: []int{1, 3, 3, 1}, in: img, outShape: []int{1, 2, 2, 1}, want: []float64{5, 6, 8, 9}},
		{name: "max_float_relu1_batch", op: schema.OpMaxPool2D, opts: popts(valid, 1, 1, 1, 2, quant.ActReluN1To1), dt: tensor.Float32,
			shape: []int{2, 1, 2, 1}, in: []float64{-3, -2, 0.5, 0.25}, outShape: []int{2, 1, 1, 1}, want: []float64{-1, 0.5}},
		{name: "max_int8_relu6", op: schema.OpMaxPool2D, opts: popts(valid, 1, 1, 2, 2, quant.ActRelu6), dt: tensor.Int8, inQ: q(0.1, 0), outQ: q(0.1, 0),
			shape: []int{1, 2, 2, 2}, in: []float64{-5, 100, -7, 3, -9, 20, -6, 50}, outShape: []int{1, 1, 1, 2}, want: []float64{0, 60}},
		{name: "max_uint8", op: schema.OpMaxPool2D, opts: popts(same, 1, 1, 3, 3, quant.ActNone), dt: tensor.Uint8, inQ: q(1, 0), outQ: q(1, 0),
			shape: []int{1, 2, 2, 1}, in: []float64{7, 3, 9, 1}, outShape: []int{1, 2, 2, 1}, want: []float64{9, 9, 9, 9}},
		{name: "max_int16", op: schema.OpMaxPool2D, opts: popts(valid, 2, 2, 2, 2, quant.ActNone), dt: tensor.Int16, inQ: q(1, 0), outQ: q(1, 0),
			shape: []int{1, 2, 4, 1}, in: []float64{-30000, -29999, 5, 6, -31000, -30001, 7, -8}, outShape: []int{1, 1, 2, 1}, want: []float64{-29999, 7}},
		{name: "err_stride0", op: schema.OpAveragePool2D, opts: popts(same, 0, 1, 2, 2, quant.ActNone), dt: tensor.Float32, shape: []int{1, 2, 2, 1}, in: make([]float64, 4), errSub: "strides"},
		{name: "err_nil_options", op: schema.OpMaxPool2D, dt: tensor.Float32, shape: []int{1, 2, 2, 1}, in: make([]float64, 4), errSub: "strides"},
		{name: "err_filter0", op: schema.OpMaxPool2D, opts: popts(same, 1, 1, 0, 2, quant.ActNone), dt: tensor.Float32, shape: []int{1, 2, 2, 1}, in: make([]float64, 4), errSub: "filter"},
		{name: "err_rank3", op: schema.OpMaxPool2D, opts: popts(same, 1, 1, 1, 1, quant.ActNone), dt: tensor.Float32, shape: []int{2, 2, 1}, in: make([]float64, 4), errSub: "4-D"},
		{name: "err_padding", op: schema.OpMaxPool2D, opts: popts(7, 1, 1, 1, 1, quant.ActNone), dt: tensor.Float32, shape: []int{1, 2, 2, 1}, in: make([]float64, 4), errSub: "padding"},
		{name: "err_activation", op: schema.OpMaxPool2D, opts: popts(same, 1, 1, 1, 1, quant.ActTanh), dt: tensor.Float32, shape: []int{1, 2, 2, 1}, in: make([]float64, 4), errSub: "activation"},
		{name: "err_int32", op: schema.OpAveragePool2D, opts: popts(same, 1, 1, 1, 1, quant.ActNone), dt: tensor.Int32, shape: []int{1, 2, 2, 1}, in: make([]float64, 4), errSub: "not supported"},
		{name: "err_valid_too_big", op: schema.OpAveragePool2D, opts: popts(valid, 1, 1, 5, 1, quant.ActNone), dt: tensor.Float32, shape: []int{1, 2, 2, 1}, in: make([]float64, 4), errSub: "does not fit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := kerneltest.New(c.dt, c.shape, c.in, c.inQ)
			out := kerneltest.New(c.dt, nil, nil, c.outQ)
			var opts any
			if c.opts != nil {
				opts = c.opts
			}
			err := kerneltest.Run(t, c.op, opts, []*tensor.Tensor{in}, out)
			if c.errSub != "" {
				if err == nil || !strings.Contains(err.Error(), c.errSub) {
					t.Fatalf("error %v, want one containing %q", err, c.errSub)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			kerneltest.Expect(t, out, c.outShape, c.want, c.tol)
		})
	}
}

func preparePool(tb testing.TB, op schema.BuiltinOperator, dt tensor.DType, shape []int, opts *schema.Pool2DOptions) (kernels.Kernel, *kernels.Context, *kernels.Node) {
	return preparePoolThreads(tb, 1, op, dt, shape, opts)
}

// preparePoolThreads prepares a pooling node on a context with threads
// goroutines that splits every node (SplitThreshold 0).
func preparePoolThreads(tb testing.TB, threads int, op schema.BuiltinOperator, dt tensor.DType, shape []int, opts *schema.Pool2DOptions) (kernels.Kernel, *kernels.Context, *kernels.Node) {
	tb.Helper()
	var q *tensor.Quantization
	if dt != tensor.Float32 {
		q = kerneltest.Q(0.02, 0)
	}
	in := kerneltest.New(dt, shape, make([]float64, tensor.NumElements(shape)), q)
	out := kerneltest.New(dt, nil, nil, q)
	k, _ := kernels.Lookup(schema.OperatorCode{Builtin: op, Version: 1})
	n := &kernels.Node{Op: op, Options: opts, Inputs: []*tensor.Tensor{in}, Outputs: []*tensor.Tensor{out}}
	ctx := kernels.NewContext(quant.RoundingTFLite, threads)
	ctx.SplitThreshold = 0
	ctx.Preparing = true
	if err := k.Prepare(ctx, n); err != nil {
		tb.Fatal(err)
	}
	ctx.Preparing = false
	out.Data = kernels.AlignedBytes(out.ByteSize())
	return k, ctx, n
}

// TestPoolThreadsMatchSingle: pooling split along channels on 3 threads
// gives the bytes of one thread, for every dtype, the global average pool
// of a network's end and a strided SAME window with cut edges.
func TestPoolThreadsMatchSingle(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	geoms := []struct {
		shape []int
		opts  *schema.Pool2DOptions
	}{
		{[]int{1, 7, 7, 100}, popts(schema.PaddingValid, 1, 1, 7, 7, quant.ActNone)},
		{[]int{2, 9, 9, 70}, popts(schema.PaddingSame, 2, 2, 3, 3, quant.ActRelu6)},
	}
	for _, op := range []schema.BuiltinOperator{schema.OpAveragePool2D, schema.OpMaxPool2D} {
		for _, dt := range []tensor.DType{tensor.Float32, tensor.Int8, tensor.Uint8, tensor.Int16} {
			for _, g := range geoms {
				seed := r.Uint64()
				var outs [2][]byte
				for i, threads := range []int{1, 3} {
					k, ctx, n := preparePoolThreads(t, threads, op, dt, g.shape, g.opts)
					in := n.Inputs[0].Data
					rr := rand.New(rand.NewPCG(seed, 8)) // the same data on both
					for j := range in {
						in[j] = byte(rr.IntN(256))
					}
					if dt == tensor.Float32 {
						f := tensor.View[float32](in)
						for j := range f {
							f[j] = rr.Float32()*4 - 2
						}
					}
					if err := k.Eval(ctx, n); err != nil {
						t.Fatal(err)
					}
					outs[i] = n.Outputs[0].Data
					ctx.Close()
				}
				if string(outs[0]) != string(outs[1]) {
					t.Errorf("%s %s %v: 3 threads differ from 1", op, dt, g.shape)
				}
			}
		}
	}
}

func TestPoolEvalAllocs(t *testing.T) {
	for _, op := range []schema.BuiltinOperator{schema.OpAveragePool2D, schema.OpMaxPool2D} {
		for _, dt := range []tensor.DType{tensor.Float32, tensor.Int8, tensor.Uint8, tensor.Int16} {
			k, ctx, n := preparePool(t, op, dt, []int{1, 5, 5, 3}, popts(schema.PaddingSame, 2, 2, 3, 3, quant.ActRelu))
			if a := testing.AllocsPerRun(10, func() { _ = k.Eval(ctx, n) }); a != 0 {
				t.Errorf("%s %s: Eval allocates %v times", op, dt, a)
			}
		}
	}
}

// BenchmarkAvgPoolInt8 pools MobileNet's final 7x7x1280 feature map.
func BenchmarkAvgPoolInt8(b *testing.B) {
	k, ctx, n := preparePool(b, schema.OpAveragePool2D, tensor.Int8, []int{1, 7, 7, 1280}, popts(schema.PaddingValid, 1, 1, 7, 7, quant.ActNone))
	b.ReportAllocs()
	for b.Loop() {
		_ = k.Eval(ctx, n)
	}
}

// BenchmarkMaxPoolUint8 is a typical early-layer 3x3/2 max pool.
func BenchmarkMaxPoolUint8(b *testing.B) {
	k, ctx, n := preparePool(b, schema.OpMaxPool2D, tensor.Uint8, []int{1, 56, 56, 64}, popts(schema.PaddingSame, 2, 2, 3, 3, quant.ActNone))
	b.ReportAllocs()
	for b.Loop() {
		_ = k.Eval(ctx, n)
	}
}

// FuzzPool prepares and evaluates pooling nodes with arbitrary geometry:
// whatever Prepare accepts, Eval must not panic.
func FuzzPool(f *testing.F) {
	f.Add(uint8(0), uint8(1), uint8(3), uint8(3), uint8(2), uint8(2), uint8(2), uint8(2), uint8(0), int8(0), uint8(1))
	f.Add(uint8(1), uint8(2), uint8(1), uint8(7), uint8(7), uint8(1), uint8(9), uint8(1), uint8(1), int8(3), uint8(2))
	f.Fuzz(func(t *testing.T, opSel, dtSel, h, w, fh, fw, sh, sw, pad uint8, act int8, c uint8) {
		op := schema.OpAveragePool2D
		if opSel%2 == 1 {
			op = schema.OpMaxPool2D
		}
		dts := []tensor.DType{tensor.Float32, tensor.Int8, tensor.Uint8, tensor.Int16}
		dt := dts[int(dtSel)%len(dts)]
		shape := []int{1, int(h % 12), int(w % 12), int(c%4) + 1}
		var q *tensor.Quantization
		if dt != tensor.Float32 {
			q = kerneltest.Q(0.05, 0)
		}
		in := kerneltest.New(dt, shape, make([]float64, tensor.NumElements(shape)), q)
		out := kerneltest.New(dt, nil, nil, q)
		opts := popts(schema.Padding(pad%3), int(sh%5), int(sw%5), int(fh%6), int(fw%6), quant.Activation(act%5))
		_ = kerneltest.Run(t, op, opts, []*tensor.Tensor{in}, out)
	})
}

// TestAveragePool8MatchesNaive: 8-bit average pooling (whose windows of up
// to 257 taps are summed eight channels at a time) equals a plain
// per-element sum with TFLite's rounding and clamp, for channel counts
// around the 8-channel words, windows cut by SAME padding, the largest
// window the 16-bit lanes hold (257 taps of 255) and a larger one, random
// and extreme values.
func TestAveragePool8MatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	type geom struct {
		shape []int
		opts  *schema.Pool2DOptions
	}
	geoms := []geom{
		{[]int{1, 7, 7, 1280}, popts(schema.PaddingValid, 1, 1, 7, 7, quant.ActNone)},
		{[]int{1, 1, 257, 9}, popts(schema.PaddingValid, 1, 1, 1, 257, quant.ActNone)},
		{[]int{1, 1, 258, 9}, popts(schema.PaddingValid, 1, 1, 1, 258, quant.ActNone)},
		{[]int{1, 17, 17, 16}, popts(schema.PaddingValid, 1, 1, 17, 17, quant.ActNone)},
		{[]int{2, 9, 9, 23}, popts(schema.PaddingSame, 2, 2, 3, 3, quant.ActRelu6)},
	}
	for range 40 {
		geoms = append(geoms, geom{
			[]int{1 + r.IntN(2), 1 + r.IntN(9), 1 + r.IntN(9), []int{1, 7, 8, 9, 15, 16, 17, 24, 40}[r.IntN(9)]},
			popts([]schema.Padding{schema.PaddingSame, schema.PaddingValid}[r.IntN(2)], 1+r.IntN(3), 1+r.IntN(3), 1+r.IntN(4), 1+r.IntN(4),
				[]quant.Activation{quant.ActNone, quant.ActRelu, quant.ActRelu6}[r.IntN(3)]),
		})
	}
	for _, dt := range []tensor.DType{tensor.Int8, tensor.Uint8} {
		for gi, g := range geoms {
			if g.opts.Padding == schema.PaddingValid && (g.opts.FilterHeight > g.shape[1] || g.opts.FilterWidth > g.shape[2]) {
				continue
			}
			for _, fill := range []string{"random", "max", "min"} {
				k, ctx, n := preparePoolThreads(t, 1, schema.OpAveragePool2D, dt, g.shape, g.opts)
				in := n.Inputs[0].Data
				for j := range in {
					switch fill {
					case "random":
						in[j] = byte(r.IntN(256))
					case "max":
						in[j] = map[tensor.DType]byte{tensor.Int8: 0x7f, tensor.Uint8: 0xff}[dt]
					default:
						in[j] = map[tensor.DType]byte{tensor.Int8: 0x80, tensor.Uint8: 0}[dt]
					}
				}
				if err := k.Eval(ctx, n); err != nil {
					t.Fatal(err)
				}
				want := naiveAvg8(dt, in, g.shape, g.opts, n.Outputs[0].Shape, n.Outputs[0])
				if got := n.Outputs[0].Data; string(got) != string(want) {
					for j := range got {
						if got[j] != want[j] {
							t.Fatalf("%s geometry %d %v %+v %s: output byte %d = %d, expected %d", dt, gi, g.shape, *g.opts, fill, j, got[j], want[j])
						}
					}
				}
				ctx.Close()
			}
		}
	}
}

// naiveAvg8 is TFLite's reference 8-bit average pool, element by element.
func naiveAvg8(dt tensor.DType, in []byte, shape []int, o *schema.Pool2DOptions, outShape []int, out *tensor.Tensor) []byte {
	val := func(b byte) int32 {
		if dt == tensor.Int8 {
			return int32(int8(b))
		}
		return int32(b)
	}
	lo, hi := int32(0), int32(255)
	if dt == tensor.Int8 {
		lo, hi = -128, 127
	}
	lo, hi = quant.ActivationRangeQuantized(o.Activation, float32(out.Scale()), out.ZeroPoint(), lo, hi)
	batch, inH, inW, depth := shape[0], shape[1], shape[2], shape[3]
	outH, outW := outShape[1], outShape[2]
	pad := func(stride, in, filter, out int) int { return max(0, (out-1)*stride+filter-in) / 2 }
	padH, padW := pad(o.StrideH, inH, o.FilterHeight, outH), pad(o.StrideW, inW, o.FilterWidth, outW)
	res := make([]byte, 0, batch*outH*outW*depth)
	for b := range batch {
		for oy := range outH {
			for ox := range outW {
				for c := range depth {
					var sum, count int32
					for fy := range o.FilterHeight {
						for fx := range o.FilterWidth {
							y, x := oy*o.StrideH-padH+fy, ox*o.StrideW-padW+fx
							if y >= 0 && y < inH && x >= 0 && x < inW {
								sum += val(in[((b*inH+y)*inW+x)*depth+c])
								count++
							}
						}
					}
					var a int32
					if sum > 0 {
						a = (sum + count/2) / count
					} else {
						a = (sum - count/2) / count
					}
					res = append(res, byte(min(max(a, lo), hi)))
				}
			}
		}
	}
	return res
}
