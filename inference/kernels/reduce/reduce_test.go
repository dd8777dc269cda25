package reduce_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
	"github.com/edgefleet/edgefleet/quant"
)

type reduceCase struct {
	name     string
	op       schema.BuiltinOperator
	keep     bool
	axes     []float64
	axisType tensor.DType // default int32
	runtime  bool         // axis only known at run time
	dt       tensor.DType
	inQ      *tensor.Quantization
	outQ     *tensor.Quantization
	shape    []int
	in       []float64
	outShape []int
	want     []float64
	tol      float64
	errSub   string
}

func runReduce(t *testing.T, cases []reduceCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			at := c.axisType
			if at == 0 {
				at = tensor.Int32
			}
			in := kerneltest.New(c.dt, c.shape, c.in, c.inQ)
			axis := kerneltest.New(at, []int{len(c.axes)}, c.axes, nil)
			if c.runtime {
				kerneltest.Runtime(axis)
			}
			out := kerneltest.New(c.dt, nil, nil, c.outQ)
			err := kerneltest.Run(t, c.op, &schema.ReducerOptions{KeepDims: c.keep}, []*tensor.Tensor{in, axis}, out)
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

// TestReduce checks hand-computed MEAN, SUM and REDUCE_MAX results.
func TestReduce(t *testing.T) {
	q := kerneltest.Q
	m22 := []float64{1, 2, 3, 4}
	runReduce(t, []reduceCase{
		{name: "mean_float_axis0", op: schema.OpMean, axes: []float64{0}, dt: tensor.Float32, shape: []int{2, 2}, in: m22, outShape: []int{2}, want: []float64{2, 3}},
		{name: "mean_float_keep", op: schema.OpMean, keep: true, axes: []float64{1}, dt: tensor.Float32, shape: []int{2, 2}, in: m22, outShape: []int{2, 1}, want: []float64{1.5, 3.5}},
		// Negative and duplicate axes reduce everything to a scalar.
		{name: "mean_float_dup_neg", op: schema.OpMean, axes: []float64{0, 1, -1, 0}, dt: tensor.Float32, shape: []int{2, 2}, in: m22, outShape: []int{}, want: []float64{2.5}},
		{name: "mean_float_int64_axis", op: schema.OpMean, axes: []float64{-2}, axisType: tensor.Int64, dt: tensor.Float32, shape: []int{2, 2}, in: m22, outShape: []int{2}, want: []float64{2, 3}},
		{name: "mean_float_runtime_axis", op: schema.OpMean, axes: []float64{1}, runtime: true, dt: tensor.Float32, shape: []int{2, 2}, in: m22, outShape: []int{2}, want: []float64{1.5, 3.5}},
		{name: "mean_float_empty_axes", op: schema.OpMean, axes: []float64{}, dt: tensor.Float32, shape: []int{2, 2}, in: m22, outShape: []int{2, 2}, want: m22},
		{name: "mean_int32_trunc", op: schema.OpMean, axes: []float64{1}, dt: tensor.Int32, shape: []int{2, 2}, in: []float64{1, 2, -1, -2}, outShape: []int{2}, want: []float64{1, -1}},
		// Unchanged quantization: truncated mean of the raw values.
		{name: "mean_int8_same", op: schema.OpMean, axes: []float64{1}, dt: tensor.Int8, inQ: q(1, 0), outQ: q(1, 0), shape: []int{2, 2}, in: []float64{1, 2, -3, -4}, outShape: []int{2}, want: []float64{1, -3}},
		// Output scale 0.5: the mean doubles, rounded half away from zero.
		{name: "mean_int8_rescale", op: schema.OpMean, axes: []float64{1}, dt: tensor.Int8, inQ: q(1, 0), outQ: q(0.5, 0), shape: []int{2, 4}, in: []float64{1, 2, 2, 2, -1, -1, -1, -2}, outShape: []int{2}, want: []float64{4, -3}},
		{name: "mean_uint8_zp", op: schema.OpMean, axes: []float64{0}, dt: tensor.Uint8, inQ: q(1, 100), outQ: q(2, 10), shape: []int{2, 1}, in: []float64{110, 120}, outShape: []int{1}, want: []float64{18}},
		{name: "mean_int16", op: schema.OpMean, axes: []float64{0}, dt: tensor.Int16, inQ: q(0.001, 0), outQ: q(0.002, 0), shape: []int{3}, in: []float64{1000, 2000, 6000}, outShape: []int{}, want: []float64{1500}},
		// 4-D height/width mean with keep_dims: sum 10 of 4 values = 2.5 → 3.
		{name: "mean_int8_hw", op: schema.OpMean, keep: true, axes: []float64{1, 2}, dt: tensor.Int8, inQ: q(1, 0), outQ: q(1, 0), shape: []int{1, 2, 2, 1}, in: m22, outShape: []int{1, 1, 1, 1}, want: []float64{3}},
		{name: "mean_uint8_hw_zp", op: schema.OpMean, keep: true, axes: []float64{2, 1}, dt: tensor.Uint8, inQ: q(0.5, 128), outQ: q(0.25, 0), shape: []int{1, 2, 1, 2}, in: []float64{130, 140, 132, 150}, outShape: []int{1, 1, 1, 2}, want: []float64{6, 34}},
		{name: "sum_float", op: schema.OpSum, axes: []float64{0, 1}, dt: tensor.Float32, shape: []int{2, 2}, in: m22, outShape: []int{}, want: []float64{10}},
		{name: "sum_int32_keep", op: schema.OpSum, keep: true, axes: []float64{0}, dt: tensor.Int32, shape: []int{2, 2}, in: m22, outShape: []int{1, 2}, want: []float64{4, 6}},
		// Unchanged quantization: raw int8 sum wrapping like TensorFlow Lite (200 → -56).
		{name: "sum_int8_same_wraps", op: schema.OpSum, axes: []float64{0}, dt: tensor.Int8, inQ: q(1, 0), outQ: q(1, 0), shape: []int{2}, in: []float64{100, 100}, outShape: []int{}, want: []float64{-56}},
		{name: "sum_int8_rescale", op: schema.OpSum, axes: []float64{0}, dt: tensor.Int8, inQ: q(1, 0), outQ: q(2, 0), shape: []int{3}, in: []float64{3, 4, 5}, outShape: []int{}, want: []float64{6}},
		{name: "sum_uint8_zp", op: schema.OpSum, axes: []float64{0}, dt: tensor.Uint8, inQ: q(1, 10), outQ: q(1, 20), shape: []int{2}, in: []float64{15, 17}, outShape: []int{}, want: []float64{32}},
		{name: "sum_int16_same", op: schema.OpSum, axes: []float64{-1}, dt: tensor.Int16, inQ: q(1, 0), outQ: q(1, 0), shape: []int{1, 3}, in: []float64{1000, -3000, 7}, outShape: []int{1}, want: []float64{-1993}},
		{name: "max_float", op: schema.OpReduceMax, axes: []float64{1}, dt: tensor.Float32, shape: []int{2, 3}, in: []float64{-1, -5, -0.5, 3, 9, 2}, outShape: []int{2}, want: []float64{-0.5, 9}},
		{name: "max_int8", op: schema.OpReduceMax, keep: true, axes: []float64{0}, dt: tensor.Int8, inQ: q(1, 0), outQ: q(1, 0), shape: []int{2, 2}, in: []float64{-128, 5, -100, -7}, outShape: []int{1, 2}, want: []float64{-100, 5}},
		{name: "max_uint8", op: schema.OpReduceMax, axes: []float64{0, 1}, dt: tensor.Uint8, inQ: q(1, 0), outQ: q(1, 0), shape: []int{2, 2}, in: []float64{0, 200, 3, 9}, outShape: []int{}, want: []float64{200}},
		{name: "max_int16", op: schema.OpReduceMax, axes: []float64{0}, dt: tensor.Int16, inQ: q(1, 0), outQ: q(1, 0), shape: []int{2}, in: []float64{-32768, -32767}, outShape: []int{}, want: []float64{-32767}},
		{name: "max_int32", op: schema.OpReduceMax, axes: []float64{1}, dt: tensor.Int32, shape: []int{1, 3}, in: []float64{-7, -9, -8}, outShape: []int{1}, want: []float64{-7}},
		{name: "max_int64", op: schema.OpReduceMax, axes: []float64{0}, dt: tensor.Int64, shape: []int{2}, in: []float64{-7, 12}, outShape: []int{}, want: []float64{12}},
		{name: "max_float_empty_input", op: schema.OpReduceMax, axes: []float64{0}, dt: tensor.Float32, shape: []int{0, 2}, in: []float64{}, outShape: []int{2}, want: []float64{-math.MaxFloat32, -math.MaxFloat32}},
		{name: "err_axis_range", op: schema.OpMean, axes: []float64{2}, dt: tensor.Float32, shape: []int{2, 2}, in: m22, errSub: "out of range"},
		{name: "err_axis_type", op: schema.OpMean, axes: []float64{0}, axisType: tensor.Uint8, dt: tensor.Float32, shape: []int{2, 2}, in: m22, errSub: "axis tensor type"},
		{name: "err_bool", op: schema.OpSum, axes: []float64{0}, dt: tensor.Bool, shape: []int{2}, in: []float64{1, 0}, errSub: "not supported"},
		{name: "err_int16_zp", op: schema.OpMean, axes: []float64{0}, dt: tensor.Int16, inQ: q(1, 3), outQ: q(1, 3), shape: []int{2}, in: []float64{1, 2}, errSub: "zero points"},
		{name: "err_int16_sum_scale", op: schema.OpSum, axes: []float64{0}, dt: tensor.Int16, inQ: q(1, 0), outQ: q(2, 0), shape: []int{2}, in: []float64{1, 2}, errSub: "equal input and output scales"},
		{name: "err_max_requant", op: schema.OpReduceMax, axes: []float64{0}, dt: tensor.Int8, inQ: q(1, 0), outQ: q(1, 3), shape: []int{2}, in: []float64{1, 2}, errSub: "equal input and output quantization"},
		{name: "err_no_quant", op: schema.OpMean, axes: []float64{0}, dt: tensor.Int8, shape: []int{2}, in: []float64{1, 2}, errSub: "quantized"},
	})
}

// TestArgMinMax checks ARG_MAX and ARG_MIN: ties resolve to the smallest
// index; int32 and int64 outputs; axis from an int32 or int64 tensor.
func TestArgMinMax(t *testing.T) {
	cases := []struct {
		name     string
		op       schema.BuiltinOperator
		dt       tensor.DType
		outDT    tensor.DType
		axis     float64
		axisType tensor.DType
		runtime  bool
		shape    []int
		in       []float64
		outShape []int
		want     []float64
		errSub   string
	}{
		{"max_float_axis1", schema.OpArgMax, tensor.Float32, tensor.Int32, 1, tensor.Int32, false, []int{2, 3}, []float64{1, 3, 3, 2, 2, 0}, []int{2}, []float64{1, 0}, ""},
		{"min_float_axis0_i64", schema.OpArgMin, tensor.Float32, tensor.Int64, 0, tensor.Int32, false, []int{2, 3}, []float64{1, 3, 3, 2, 2, 0}, []int{3}, []float64{0, 1, 1}, ""},
		{"max_int8_neg_axis", schema.OpArgMax, tensor.Int8, tensor.Int64, -1, tensor.Int64, false, []int{1, 4}, []float64{-128, 127, 127, 0}, []int{1}, []float64{1}, ""},
		{"min_uint8", schema.OpArgMin, tensor.Uint8, tensor.Int32, 0, tensor.Int32, false, []int{4}, []float64{9, 0, 4, 0}, []int{}, []float64{1}, ""},
		{"max_int32_middle_axis", schema.OpArgMax, tensor.Int32, tensor.Int32, 1, tensor.Int32, false, []int{1, 3, 2}, []float64{5, -1, 7, -3, 7, 9}, []int{1, 2}, []float64{1, 2}, ""},
		{"min_int16_runtime_axis", schema.OpArgMin, tensor.Int16, tensor.Int32, 1, tensor.Int32, true, []int{2, 2}, []float64{3, -3, -4, 4}, []int{2}, []float64{1, 0}, ""},
		{"max_bool", schema.OpArgMax, tensor.Bool, tensor.Int32, 0, tensor.Int32, false, []int{3}, []float64{0, 1, 1}, []int{}, []float64{1}, ""},
		{"max_int64", schema.OpArgMax, tensor.Int64, tensor.Int32, 0, tensor.Int32, false, []int{3}, []float64{-9, -2, -5}, []int{}, []float64{1}, ""},
		{"err_axis_range", schema.OpArgMax, tensor.Float32, tensor.Int32, 2, tensor.Int32, false, []int{2, 2}, []float64{0, 0, 0, 0}, nil, nil, "out of range"},
		{"err_out_type", schema.OpArgMax, tensor.Float32, tensor.Float32, 0, tensor.Int32, false, []int{2}, []float64{0, 0}, nil, nil, "output type"},
		{"err_axis_float", schema.OpArgMin, tensor.Float32, tensor.Int32, 0, tensor.Float32, false, []int{2}, []float64{0, 0}, nil, nil, "axis tensor type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var q *tensor.Quantization
			if c.dt == tensor.Int8 || c.dt == tensor.Uint8 || c.dt == tensor.Int16 {
				q = kerneltest.Q(0.5, 0)
			}
			in := kerneltest.New(c.dt, c.shape, c.in, q)
			axis := kerneltest.New(c.axisType, []int{1}, []float64{c.axis}, nil)
			if c.runtime {
				kerneltest.Runtime(axis)
			}
			out := kerneltest.New(c.outDT, nil, nil, nil)
			err := kerneltest.Run(t, c.op, &schema.ArgOptions{OutputType: c.outDT}, []*tensor.Tensor{in, axis}, out)
			if c.errSub != "" {
				if err == nil || !strings.Contains(err.Error(), c.errSub) {
					t.Fatalf("error %v, want one containing %q", err, c.errSub)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			kerneltest.Expect(t, out, c.outShape, c.want, 0)
		})
	}
}

func prepareNode(tb testing.TB, op schema.BuiltinOperator, opts any, ins []*tensor.Tensor, out *tensor.Tensor) (kernels.Kernel, *kernels.Context, *kernels.Node) {
	return prepareThreads(tb, 1, op, opts, ins, out)
}

// prepareThreads prepares a node on a context with threads goroutines
// that splits every node (SplitThreshold 0).
func prepareThreads(tb testing.TB, threads int, op schema.BuiltinOperator, opts any, ins []*tensor.Tensor, out *tensor.Tensor) (kernels.Kernel, *kernels.Context, *kernels.Node) {
	tb.Helper()
	k, _ := kernels.Lookup(schema.OperatorCode{Builtin: op, Version: 1})
	n := &kernels.Node{Op: op, Options: opts, Inputs: ins, Outputs: []*tensor.Tensor{out}}
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

// TestReduceThreadsMatchSingle: quantized MEAN and SUM over height and
// width, split into chunks of channels on 3 threads, give the bytes of one
// thread, in each requantization mode (4-D mean, truncating mean, float
// mean, float sum).
func TestReduceThreadsMatchSingle(t *testing.T) {
	shape := []int{1, 7, 5, 70}
	vals := make([]float64, tensor.NumElements(shape))
	for i := range vals {
		vals[i] = float64(i*37%256 - 128)
	}
	cases := []struct {
		name     string
		op       schema.BuiltinOperator
		dt       tensor.DType
		keep     bool
		inQ, out *tensor.Quantization
	}{
		{"mean 4-D", schema.OpMean, tensor.Int8, true, kerneltest.Q(0.1, 3), kerneltest.Q(0.05, -2)},
		{"mean same quantization", schema.OpMean, tensor.Int8, false, kerneltest.Q(0.1, 3), kerneltest.Q(0.1, 3)},
		{"mean float rescale", schema.OpMean, tensor.Int8, false, kerneltest.Q(0.1, 3), kerneltest.Q(0.07, 1)},
		{"sum float rescale", schema.OpSum, tensor.Int8, false, kerneltest.Q(0.1, 3), kerneltest.Q(2, 1)},
		{"mean int16", schema.OpMean, tensor.Int16, true, kerneltest.Q(0.1, 0), kerneltest.Q(0.05, 0)},
	}
	for _, c := range cases {
		var outs [2][]byte
		for i, threads := range []int{1, 3} {
			in := kerneltest.New(c.dt, shape, vals, c.inQ)
			axis := kerneltest.New(tensor.Int32, []int{2}, []float64{1, 2}, nil)
			k, ctx, n := prepareThreads(t, threads, c.op, &schema.ReducerOptions{KeepDims: c.keep}, []*tensor.Tensor{in, axis}, kerneltest.New(c.dt, nil, nil, c.out))
			if err := k.Eval(ctx, n); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			ctx.Close()
			outs[i] = n.Outputs[0].Data
		}
		if string(outs[0]) != string(outs[1]) {
			t.Errorf("%s: 3 threads differ from 1", c.name)
		}
	}
}

func TestReduceEvalAllocs(t *testing.T) {
	q := kerneltest.Q(0.1, 0)
	for _, op := range []schema.BuiltinOperator{schema.OpMean, schema.OpSum, schema.OpReduceMax} {
		for _, dt := range []tensor.DType{tensor.Float32, tensor.Int8, tensor.Int32} {
			in := kerneltest.New(dt, []int{2, 3, 4}, make([]float64, 24), q)
			axis := kerneltest.New(tensor.Int32, []int{2}, []float64{0, 2}, nil)
			outQ := kerneltest.Q(0.2, 1)
			if op == schema.OpReduceMax {
				outQ = q
			}
			k, ctx, n := prepareNode(t, op, &schema.ReducerOptions{}, []*tensor.Tensor{in, axis}, kerneltest.New(dt, nil, nil, outQ))
			if a := testing.AllocsPerRun(10, func() { _ = k.Eval(ctx, n) }); a != 0 {
				t.Errorf("%s %s: Eval allocates %v times", op, dt, a)
			}
		}
	}
	in := kerneltest.New(tensor.Float32, []int{3, 4}, make([]float64, 12), nil)
	axis := kerneltest.New(tensor.Int32, []int{1}, []float64{1}, nil)
	k, ctx, n := prepareNode(t, schema.OpArgMax, nil, []*tensor.Tensor{in, axis}, kerneltest.New(tensor.Int32, nil, nil, nil))
	if a := testing.AllocsPerRun(10, func() { _ = k.Eval(ctx, n) }); a != 0 {
		t.Errorf("ARG_MAX: Eval allocates %v times", a)
	}
}

// BenchmarkMeanInt8HW is MobileNet v2's global average (MEAN over H, W).
func BenchmarkMeanInt8HW(b *testing.B) {
	in := kerneltest.New(tensor.Int8, []int{1, 7, 7, 1280}, make([]float64, 7*7*1280), kerneltest.Q(0.0235, -128))
	axis := kerneltest.New(tensor.Int32, []int{2}, []float64{1, 2}, nil)
	k, ctx, n := prepareNode(b, schema.OpMean, &schema.ReducerOptions{KeepDims: true}, []*tensor.Tensor{in, axis}, kerneltest.New(tensor.Int8, nil, nil, kerneltest.Q(0.019, -128)))
	b.ReportAllocs()
	for b.Loop() {
		_ = k.Eval(ctx, n)
	}
}

// BenchmarkSumFloatAxis1 reduces the middle axis of a [16, 256, 64] tensor.
func BenchmarkSumFloatAxis1(b *testing.B) {
	in := kerneltest.New(tensor.Float32, []int{16, 256, 64}, make([]float64, 16*256*64), nil)
	axis := kerneltest.New(tensor.Int32, []int{1}, []float64{1}, nil)
	k, ctx, n := prepareNode(b, schema.OpSum, &schema.ReducerOptions{}, []*tensor.Tensor{in, axis}, kerneltest.New(tensor.Float32, nil, nil, nil))
	b.ReportAllocs()
	for b.Loop() {
		_ = k.Eval(ctx, n)
	}
}

// FuzzReduce prepares and evaluates reductions with arbitrary shapes and
// axes: whatever Prepare accepts, Eval must not panic.
func FuzzReduce(f *testing.F) {
	f.Add(uint8(0), uint8(0), uint8(2), uint8(3), uint8(4), int8(1), int8(-1), int8(7), true)
	f.Add(uint8(1), uint8(2), uint8(0), uint8(3), uint8(1), int8(0), int8(0), int8(0), false)
	f.Fuzz(func(t *testing.T, opSel, dtSel, d0, d1, d2 uint8, a0, a1, a2 int8, keep bool) {
		ops := []schema.BuiltinOperator{schema.OpMean, schema.OpSum, schema.OpReduceMax, schema.OpArgMax, schema.OpArgMin}
		op := ops[int(opSel)%len(ops)]
		dts := []tensor.DType{tensor.Float32, tensor.Int8, tensor.Uint8, tensor.Int16, tensor.Int32, tensor.Int64}
		dt := dts[int(dtSel)%len(dts)]
		shape := []int{int(d0 % 5), int(d1 % 5), int(d2 % 5)}
		q := kerneltest.Q(0.1, 0)
		in := kerneltest.New(dt, shape, make([]float64, tensor.NumElements(shape)), q)
		axes := []float64{float64(a0 % 5), float64(a1 % 5), float64(a2 % 5)}
		var opts any = &schema.ReducerOptions{KeepDims: keep}
		outDT := dt
		if op == schema.OpArgMax || op == schema.OpArgMin {
			axes = axes[:1]
			opts = &schema.ArgOptions{OutputType: tensor.Int32}
			outDT = tensor.Int32
		}
		axis := kerneltest.New(tensor.Int32, []int{len(axes)}, axes, nil)
		out := kerneltest.New(outDT, nil, nil, kerneltest.Q(0.3, 2))
		_ = kerneltest.Run(t, op, opts, []*tensor.Tensor{in, axis}, out)
	})
}

// TestMeanWordsMatchPerChannel: quantized MEAN over height and width sums
// whole 8-channel words at once (kernels.AddRowWords); on 400 rows (past
// the 257 a 16-bit lane holds between flushes) of extreme and random
// int8 and uint8 values, each channel's output equals the same channel
// reduced alone (one channel: the per-value path).
func TestMeanWordsMatchPerChannel(t *testing.T) {
	const h, w, c = 20, 20, 24
	r := rand.New(rand.NewPCG(4, 4))
	for _, dt := range []tensor.DType{tensor.Int8, tensor.Uint8} {
		lo, hi := -128, 127
		if dt == tensor.Uint8 {
			lo, hi = 0, 255
		}
		for _, fill := range []string{"max", "min", "random"} {
			vals := make([]float64, h*w*c)
			for i := range vals {
				switch fill {
				case "max":
					vals[i] = float64(hi)
				case "min":
					vals[i] = float64(lo)
				default:
					vals[i] = float64(lo + r.IntN(256))
				}
			}
			for _, q := range [][2]*tensor.Quantization{{kerneltest.Q(0.1, 3), kerneltest.Q(0.1, 3)}, {kerneltest.Q(0.1, 3), kerneltest.Q(0.05, -2)}} {
				mean := func(shape []int, vals []float64) []byte {
					in := kerneltest.New(dt, shape, vals, q[0])
					axis := kerneltest.New(tensor.Int32, []int{2}, []float64{1, 2}, nil)
					k, ctx, n := prepareThreads(t, 1, schema.OpMean, &schema.ReducerOptions{KeepDims: true}, []*tensor.Tensor{in, axis}, kerneltest.New(dt, nil, nil, q[1]))
					defer ctx.Close()
					if err := k.Eval(ctx, n); err != nil {
						t.Fatal(err)
					}
					return n.Outputs[0].Data
				}
				all := mean([]int{1, h, w, c}, vals)
				for ch := range c {
					one := make([]float64, h*w)
					for p := range one {
						one[p] = vals[p*c+ch]
					}
					if got := mean([]int{1, h, w, 1}, one); got[0] != all[ch] {
						t.Fatalf("%s %s scales %v: channel %d = %d with %d channels, %d alone", dt, fill, q[1].Scale, ch, all[ch], c, got[0])
					}
				}
			}
		}
	}
}
