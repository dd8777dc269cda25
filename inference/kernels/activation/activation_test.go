package activation_test

import (
	"math"
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
	"github.com/edgefleet/edgefleet/quant"
)

var (
	kNew = kerneltest.New
	kQ   = kerneltest.Q
)

// unaryTest is a hand-computed case of a one-input activation.
type unaryTest struct {
	name   string
	op     schema.BuiltinOperator
	opts   any
	dt     tensor.DType
	inQ    *tensor.Quantization
	outQ   *tensor.Quantization
	in     []float64 // raw values (quantized for integer types)
	want   []float64
	tol    float64
	shape  []int // default [len(in)]
	outDT  tensor.DType
	errSub string // expected Prepare error
}

func runUnaryTests(t *testing.T, cases []unaryTest) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			shape := c.shape
			if shape == nil {
				shape = []int{len(c.in)}
			}
			outDT := c.outDT
			if outDT == 0 {
				outDT = c.dt
			}
			in := kNew(c.dt, shape, c.in, c.inQ)
			out := kNew(outDT, nil, nil, c.outQ)
			err := kerneltest.Run(t, c.op, c.opts, []*tensor.Tensor{in}, out)
			if c.errSub != "" {
				if err == nil || !strings.Contains(err.Error(), c.errSub) {
					t.Fatalf("error %v, want one containing %q", err, c.errSub)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			kerneltest.Expect(t, out, shape, c.want, c.tol)
		})
	}
}

func TestSoftmax(t *testing.T) {
	e1, e2 := math.Exp(-1), math.Exp(-2)
	s := 1 + e1 + e2
	beta1 := &schema.SoftmaxOptions{Beta: 1}
	runUnaryTests(t, []unaryTest{
		{name: "float", op: schema.OpSoftmax, opts: beta1, dt: tensor.Float32, in: []float64{1, 2, 3}, want: []float64{e2 / s, e1 / s, 1 / s}, tol: 1e-6},
		{name: "float_rows_beta", op: schema.OpSoftmax, opts: &schema.SoftmaxOptions{Beta: 0.5}, dt: tensor.Float32, shape: []int{2, 2},
			in: []float64{0, 2, 5, 5}, want: []float64{1 / (1 + math.E), math.E / (1 + math.E), 0.5, 0.5}, tol: 1e-6},
		{name: "float_nil_options_beta0", op: schema.OpSoftmax, dt: tensor.Float32, in: []float64{1, 7, -3, 2}, want: []float64{0.25, 0.25, 0.25, 0.25}, tol: 1e-6},
		// Equal inputs: 0.5 each = 128/256, i.e. 0 with zero point -128.
		{name: "int8_equal", op: schema.OpSoftmax, opts: beta1, dt: tensor.Int8, inQ: kQ(1, 0), outQ: kQ(1.0/256, -128), in: []float64{5, 5}, want: []float64{0, 0}},
		// exp(-255) vanishes: the larger input takes everything (255.99 saturates to 127).
		{name: "int8_saturate", op: schema.OpSoftmax, opts: beta1, dt: tensor.Int8, inQ: kQ(1, 0), outQ: kQ(1.0/256, -128), in: []float64{-128, 127}, want: []float64{-128, 127}},
		// ln(3) apart: probabilities 1/4 and 3/4 → 64 and 192 steps.
		{name: "int8_quarter", op: schema.OpSoftmax, opts: beta1, dt: tensor.Int8, inQ: kQ(float32(math.Log(3)), 0), outQ: kQ(1.0/256, -128), in: []float64{0, 1}, want: []float64{-64, 64}},
		{name: "uint8_equal", op: schema.OpSoftmax, opts: beta1, dt: tensor.Uint8, inQ: kQ(0.1, 128), outQ: kQ(1.0/256, 0), in: []float64{3, 3, 3, 3}, want: []float64{64, 64, 64, 64}},
		{name: "int8_to_int16", op: schema.OpSoftmax, opts: beta1, dt: tensor.Int8, outDT: tensor.Int16, inQ: kQ(float32(math.Log(3)), 0), outQ: kQ(1.0/65536, -32768), in: []float64{0, 1}, want: []float64{-16384, 16384}},
		{name: "uint8_to_int16", op: schema.OpSoftmax, opts: beta1, dt: tensor.Uint8, outDT: tensor.Int16, inQ: kQ(0.5, 0), outQ: kQ(1.0/32768, 0), in: []float64{9, 9}, want: []float64{16384, 16384}},
		// int16: exp and 1/(1+x) come from interpolated tables (±2 steps).
		{name: "int16_equal", op: schema.OpSoftmax, opts: beta1, dt: tensor.Int16, inQ: kQ(1.0/4096, 0), outQ: kQ(1.0/32768, 0), in: []float64{100, 100}, want: []float64{16384, 16384}, tol: 2},
		{name: "int16_quarter", op: schema.OpSoftmax, opts: beta1, dt: tensor.Int16, inQ: kQ(float32(math.Log(3)/4096), 0), outQ: kQ(1.0/32768, 0), in: []float64{0, 4096}, want: []float64{8192, 24576}, tol: 4},
		{name: "err_int8_out_zp", op: schema.OpSoftmax, opts: beta1, dt: tensor.Int8, inQ: kQ(1, 0), outQ: kQ(1.0/256, 0), in: []float64{1}, errSub: "zero point"},
		{name: "err_int16_out_scale", op: schema.OpSoftmax, opts: beta1, dt: tensor.Int16, inQ: kQ(1, 0), outQ: kQ(1.0/256, 0), in: []float64{1}, errSub: "scale"},
		{name: "err_int32", op: schema.OpSoftmax, opts: beta1, dt: tensor.Int32, in: []float64{1}, errSub: "not supported"},
		{name: "err_scalar", op: schema.OpSoftmax, opts: beta1, dt: tensor.Float32, shape: []int{}, in: []float64{1}, errSub: "at least 1 dimension"},
		{name: "err_no_scale", op: schema.OpSoftmax, opts: beta1, dt: tensor.Int8, outQ: kQ(1.0/256, -128), in: []float64{1}, errSub: "scale"},
	})
}

// TestSoftmaxReference checks the fixed-point (TFLite reference / Micro)
// path selected by quant.RoundingDouble.
func TestSoftmaxReference(t *testing.T) {
	for _, c := range []struct {
		dt, outDT tensor.DType
		outQ      *tensor.Quantization
		in        []float64
		want      []float64
	}{
		{tensor.Int8, tensor.Int8, kQ(1.0/256, -128), []float64{5, 5}, []float64{0, 0}},
		{tensor.Int8, tensor.Int8, kQ(1.0/256, -128), []float64{0, 1}, []float64{-64, 64}},
		{tensor.Uint8, tensor.Uint8, kQ(1.0/256, 0), []float64{7, 7, 7, 7}, []float64{64, 64, 64, 64}},
		{tensor.Int8, tensor.Int16, kQ(1.0/65536, -32768), []float64{0, 1}, []float64{-16384, 16384}},
		{tensor.Int8, tensor.Int8, kQ(1.0/256, -128), []float64{-128, 127}, []float64{-128, 127}},
	} {
		in := kNew(c.dt, []int{len(c.in)}, c.in, kQ(float32(math.Log(3)), 0))
		out := kNew(c.outDT, nil, nil, c.outQ)
		if err := kerneltest.RunRounding(t, quant.RoundingDouble, schema.OpSoftmax, &schema.SoftmaxOptions{Beta: 1}, []*tensor.Tensor{in}, out); err != nil {
			t.Fatal(err)
		}
		kerneltest.Expect(t, out, []int{len(c.in)}, c.want, 1)
	}
}

func TestLogSoftmax(t *testing.T) {
	ln2 := math.Log(2)
	runUnaryTests(t, []unaryTest{
		{name: "float", op: schema.OpLogSoftmax, dt: tensor.Float32, shape: []int{2, 2}, in: []float64{0, 0, 1, 1 + math.Log(3)},
			want: []float64{-ln2, -ln2, -math.Log(4), math.Log(0.75)}, tol: 1e-6},
		// -ln 2 / (1/16) = -11.09 → 127 - 11.
		{name: "int8", op: schema.OpLogSoftmax, dt: tensor.Int8, inQ: kQ(1, 0), outQ: kQ(16.0/256, 127), in: []float64{4, 4}, want: []float64{116, 116}},
		{name: "int8_far", op: schema.OpLogSoftmax, dt: tensor.Int8, inQ: kQ(1, 0), outQ: kQ(16.0/256, 127), in: []float64{-100, 100}, want: []float64{-128, 127}},
		{name: "uint8", op: schema.OpLogSoftmax, dt: tensor.Uint8, inQ: kQ(1, 0), outQ: kQ(16.0/256, 255), in: []float64{4, 4}, want: []float64{244, 244}},
		{name: "err_out_scale", op: schema.OpLogSoftmax, dt: tensor.Int8, inQ: kQ(1, 0), outQ: kQ(1.0/256, 127), in: []float64{4}, errSub: "16/256"},
	})
}

func TestLogisticTanh(t *testing.T) {
	sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	runUnaryTests(t, []unaryTest{
		{name: "logistic_float", op: schema.OpLogistic, dt: tensor.Float32, in: []float64{0, 1, -2, 30}, want: []float64{0.5, sig(1), sig(-2), 1}, tol: 1e-6},
		{name: "tanh_float", op: schema.OpTanh, dt: tensor.Float32, in: []float64{0, 0.5, -3}, want: []float64{0, math.Tanh(0.5), math.Tanh(-3)}, tol: 1e-6},
		// scale 1/16: 0 → 0.5 (0 with zp -128); 7.94 → 0.99964*256 rounds to 256 → 127; -8 → 0.09 → -128; 1 → 187.15.
		{name: "logistic_int8", op: schema.OpLogistic, dt: tensor.Int8, inQ: kQ(1.0/16, 0), outQ: kQ(1.0/256, -128), in: []float64{0, 127, -128, 16}, want: []float64{0, 127, -128, 59}},
		{name: "logistic_uint8", op: schema.OpLogistic, dt: tensor.Uint8, inQ: kQ(1.0/16, 128), outQ: kQ(1.0/256, 0), in: []float64{128, 255, 0, 144}, want: []float64{128, 255, 0, 187}},
		// scale 1/32: tanh(1) * 128 = 97.48.
		{name: "tanh_int8", op: schema.OpTanh, dt: tensor.Int8, inQ: kQ(1.0/32, 0), outQ: kQ(1.0/128, 0), in: []float64{0, 32, -32, 127}, want: []float64{0, 97, -97, 127}},
		{name: "tanh_uint8", op: schema.OpTanh, dt: tensor.Uint8, inQ: kQ(1.0/32, 128), outQ: kQ(1.0/128, 128), in: []float64{128, 160, 96}, want: []float64{128, 225, 31}},
		// int16 fixed point (Q3.12 in, Q0.15 out): sigmoid(1) = 0.73106 → 23955.
		{name: "logistic_int16_pot", op: schema.OpLogistic, dt: tensor.Int16, inQ: kQ(1.0/4096, 0), outQ: kQ(1.0/32768, 0), in: []float64{0, 4096, -4096, 32767}, want: []float64{16384, 23955, 8813, 32757}, tol: 3},
		{name: "logistic_int16_lut", op: schema.OpLogistic, dt: tensor.Int16, inQ: kQ(0.001, 0), outQ: kQ(1.0/32768, 0), in: []float64{0, 1000, -1000}, want: []float64{16384, 23955, 8813}, tol: 3},
		{name: "tanh_int16_pot", op: schema.OpTanh, dt: tensor.Int16, inQ: kQ(1.0/4096, 0), outQ: kQ(1.0/32768, 0), in: []float64{0, 4096, -2048}, want: []float64{0, 24956, -15148}, tol: 12},
		{name: "tanh_int16_pot_shift", op: schema.OpTanh, dt: tensor.Int16, inQ: kQ(1.0/8192, 0), outQ: kQ(1.0/32768, 0), in: []float64{0, 8192, -4096}, want: []float64{0, 24956, -15148}, tol: 12},
		{name: "tanh_int16_lut", op: schema.OpTanh, dt: tensor.Int16, inQ: kQ(0.001, 0), outQ: kQ(1.0/32768, 0), in: []float64{0, 1000, -500}, want: []float64{0, 24956, -15148}, tol: 6},
		{name: "err_logistic_int8_scale", op: schema.OpLogistic, dt: tensor.Int8, inQ: kQ(1, 0), outQ: kQ(1.0/128, -128), in: []float64{1}, errSub: "1/256"},
		{name: "err_int16_zp", op: schema.OpTanh, dt: tensor.Int16, inQ: kQ(1.0/4096, 3), outQ: kQ(1.0/32768, 0), in: []float64{1}, errSub: "zero points"},
		{name: "err_int16_out_scale", op: schema.OpTanh, dt: tensor.Int16, inQ: kQ(1.0/4096, 0), outQ: kQ(1.0/1000, 0), in: []float64{1}, errSub: "2^-15"},
		{name: "err_type_mismatch", op: schema.OpTanh, dt: tensor.Float32, outDT: tensor.Int8, outQ: kQ(1, 0), in: []float64{1}, errSub: "differs"},
	})
}

func TestReluFamily(t *testing.T) {
	leaky := func(a float32) *schema.LeakyReluOptions { return &schema.LeakyReluOptions{Alpha: a} }
	runUnaryTests(t, []unaryTest{
		{name: "relu_float", op: schema.OpRelu, dt: tensor.Float32, in: []float64{-2, 0, 3.5}, want: []float64{0, 0, 3.5}},
		{name: "relu6_float", op: schema.OpRelu6, dt: tensor.Float32, in: []float64{-2, 4, 7}, want: []float64{0, 4, 6}},
		{name: "relu1_float", op: schema.OpReluN1To1, dt: tensor.Float32, in: []float64{-2, 0.5, 7}, want: []float64{-1, 0.5, 1}},
		{name: "relu_int8", op: schema.OpRelu, dt: tensor.Int8, inQ: kQ(0.5, 0), outQ: kQ(0.5, 0), in: []float64{-4, -1, 0, 3, 127}, want: []float64{0, 0, 0, 3, 127}},
		{name: "relu_int8_rescale", op: schema.OpRelu, dt: tensor.Int8, inQ: kQ(0.5, 0), outQ: kQ(0.25, -10), in: []float64{-3, 2, 60}, want: []float64{-10, -6, 110}},
		{name: "relu_uint8", op: schema.OpRelu, dt: tensor.Uint8, inQ: kQ(0.5, 128), outQ: kQ(0.5, 128), in: []float64{100, 128, 130}, want: []float64{128, 128, 130}},
		{name: "relu6_int8", op: schema.OpRelu6, dt: tensor.Int8, inQ: kQ(0.5, 0), outQ: kQ(0.5, 0), in: []float64{-4, 0, 5, 12, 20}, want: []float64{0, 0, 5, 12, 12}},
		{name: "relu6_uint8", op: schema.OpRelu6, dt: tensor.Uint8, inQ: kQ(0.1, 10), outQ: kQ(0.1, 10), in: []float64{0, 50, 90}, want: []float64{10, 50, 70}},
		{name: "relu1_int8", op: schema.OpReluN1To1, dt: tensor.Int8, inQ: kQ(0.5, 0), outQ: kQ(0.5, 0), in: []float64{-5, -2, 0, 2, 5}, want: []float64{-2, -2, 0, 2, 2}},
		{name: "relu1_uint8", op: schema.OpReluN1To1, dt: tensor.Uint8, inQ: kQ(0.25, 100), outQ: kQ(0.25, 100), in: []float64{0, 99, 110}, want: []float64{96, 99, 104}},
		{name: "relu_int16", op: schema.OpRelu, dt: tensor.Int16, inQ: kQ(0.01, 0), outQ: kQ(0.02, 0), in: []float64{-300, 301, 30000}, want: []float64{0, 151, 15000}},
		{name: "relu6_int16", op: schema.OpRelu6, dt: tensor.Int16, inQ: kQ(0.001, 0), outQ: kQ(0.001, 0), in: []float64{-3, 5000, 7000}, want: []float64{0, 5000, 6000}},
		{name: "leaky_float", op: schema.OpLeakyRelu, opts: leaky(0.2), dt: tensor.Float32, in: []float64{-5, 0, 3}, want: []float64{-1, 0, 3}, tol: 1e-6},
		// -3 * 0.5: SaturatingRoundingDoublingHighMul rounds the tie -1.5 up to -1.
		{name: "leaky_int8", op: schema.OpLeakyRelu, opts: leaky(0.5), dt: tensor.Int8, inQ: kQ(0.1, 0), outQ: kQ(0.1, 0), in: []float64{-10, 10, -3}, want: []float64{-5, 10, -1}},
		{name: "leaky_uint8", op: schema.OpLeakyRelu, opts: leaky(0.5), dt: tensor.Uint8, inQ: kQ(0.1, 128), outQ: kQ(0.2, 128), in: []float64{118, 138, 0}, want: []float64{125, 133, 96}},
		{name: "leaky_int16_negative_alpha", op: schema.OpLeakyRelu, opts: leaky(-2), dt: tensor.Int16, inQ: kQ(0.01, 0), outQ: kQ(0.01, 0), in: []float64{-100, 100, -20000}, want: []float64{200, 100, 32767}},
		{name: "err_int32", op: schema.OpRelu, dt: tensor.Int32, in: []float64{1}, errSub: "not supported"},
	})
}

func TestHardSwish(t *testing.T) {
	runUnaryTests(t, []unaryTest{
		{name: "float", op: schema.OpHardSwish, dt: tensor.Float32, in: []float64{-4, -1, 0, 1, 4}, want: []float64{0, -1.0 / 3, 0, 2.0 / 3, 4}, tol: 1e-6},
		// scale 0.1: -4 → 0, 1 → 0.667 (6.67 steps), 4 → 4, -1.5 → -0.375.
		{name: "int8", op: schema.OpHardSwish, dt: tensor.Int8, inQ: kQ(0.1, 0), outQ: kQ(0.1, 0), in: []float64{-40, 10, 40, -15, 0}, want: []float64{0, 7, 40, -4, 0}, tol: 1},
		{name: "uint8", op: schema.OpHardSwish, dt: tensor.Uint8, inQ: kQ(0.1, 100), outQ: kQ(0.05, 20), in: []float64{60, 110, 140, 100}, want: []float64{20, 33, 100, 20}, tol: 1},
		{name: "err_int16", op: schema.OpHardSwish, dt: tensor.Int16, inQ: kQ(0.1, 0), outQ: kQ(0.1, 0), in: []float64{1}, errSub: "not supported"},
		{name: "err_tiny_output_scale", op: schema.OpHardSwish, dt: tensor.Int8, inQ: kQ(1, 0), outQ: kQ(0.001, 0), in: []float64{1}, errSub: "too small"},
	})
}

func TestL2Norm(t *testing.T) {
	runUnaryTests(t, []unaryTest{
		{name: "float", op: schema.OpL2Normalization, dt: tensor.Float32, shape: []int{2, 2}, in: []float64{3, 4, 0, 0}, want: []float64{0.6, 0.8, 0, 0}, tol: 1e-6},
		// 0.6*128 = 76.8, 0.8*128 = 102.4.
		{name: "int8", op: schema.OpL2Normalization, dt: tensor.Int8, shape: []int{2, 2}, inQ: kQ(1, 0), outQ: kQ(1.0/128, 0), in: []float64{3, -4, 0, 0}, want: []float64{77, -102, 0, 0}},
		{name: "uint8", op: schema.OpL2Normalization, dt: tensor.Uint8, shape: []int{1, 2}, inQ: kQ(1, 128), outQ: kQ(1.0/128, 128), in: []float64{131, 132}, want: []float64{205, 230}},
		{name: "err_out_quant", op: schema.OpL2Normalization, dt: tensor.Int8, inQ: kQ(1, 0), outQ: kQ(1.0/256, 0), in: []float64{1}, errSub: "1/128"},
		{name: "err_activation", op: schema.OpL2Normalization, opts: &schema.ActivationOptions{Activation: quant.ActRelu}, dt: tensor.Float32, in: []float64{1}, errSub: "activation"},
		{name: "err_rank5", op: schema.OpL2Normalization, dt: tensor.Float32, shape: []int{1, 1, 1, 1, 1}, in: []float64{1}, errSub: "dimensions"},
	})
}

// TestEvalAllocs asserts that Eval allocates nothing for each activation.
func TestEvalAllocs(t *testing.T) {
	cases := []struct {
		op   schema.BuiltinOperator
		opts any
		in   *tensor.Tensor
		out  *tensor.Tensor
	}{
		{schema.OpSoftmax, &schema.SoftmaxOptions{Beta: 1}, kNew(tensor.Int8, []int{2, 8}, make([]float64, 16), kQ(0.1, 0)), kNew(tensor.Int8, nil, nil, kQ(1.0/256, -128))},
		{schema.OpSoftmax, &schema.SoftmaxOptions{Beta: 1}, kNew(tensor.Int16, []int{2, 8}, make([]float64, 16), kQ(0.001, 0)), kNew(tensor.Int16, nil, nil, kQ(1.0/32768, 0))},
		{schema.OpSoftmax, &schema.SoftmaxOptions{Beta: 1}, kNew(tensor.Float32, []int{2, 8}, make([]float64, 16), nil), kNew(tensor.Float32, nil, nil, nil)},
		{schema.OpLogistic, nil, kNew(tensor.Int16, []int{16}, make([]float64, 16), kQ(1.0/4096, 0)), kNew(tensor.Int16, nil, nil, kQ(1.0/32768, 0))},
		{schema.OpTanh, nil, kNew(tensor.Uint8, []int{16}, make([]float64, 16), kQ(0.1, 0)), kNew(tensor.Uint8, nil, nil, kQ(1.0/128, 128))},
		{schema.OpLeakyRelu, &schema.LeakyReluOptions{Alpha: 0.1}, kNew(tensor.Int8, []int{16}, make([]float64, 16), kQ(0.1, 0)), kNew(tensor.Int8, nil, nil, kQ(0.1, 0))},
		{schema.OpHardSwish, nil, kNew(tensor.Int8, []int{16}, make([]float64, 16), kQ(0.1, 0)), kNew(tensor.Int8, nil, nil, kQ(0.1, 0))},
		{schema.OpL2Normalization, nil, kNew(tensor.Uint8, []int{2, 8}, make([]float64, 16), kQ(0.1, 0)), kNew(tensor.Uint8, nil, nil, kQ(1.0/128, 128))},
		{schema.OpLogSoftmax, nil, kNew(tensor.Int8, []int{2, 8}, make([]float64, 16), kQ(0.1, 0)), kNew(tensor.Int8, nil, nil, kQ(16.0/256, 127))},
		{schema.OpRelu6, nil, kNew(tensor.Int8, []int{16}, make([]float64, 16), kQ(0.1, 0)), kNew(tensor.Int8, nil, nil, kQ(0.1, 0))},
	}
	for _, c := range cases {
		k, _ := kernels.Lookup(schema.OperatorCode{Builtin: c.op, Version: 1})
		n := &kernels.Node{Op: c.op, Options: c.opts, Inputs: []*tensor.Tensor{c.in}, Outputs: []*tensor.Tensor{c.out}}
		ctx := kernels.NewContext(quant.RoundingTFLite, 1)
		ctx.Preparing = true
		if err := k.Prepare(ctx, n); err != nil {
			t.Fatalf("%s: %v", c.op, err)
		}
		ctx.Preparing = false
		c.out.Data = kernels.AlignedBytes(c.out.ByteSize())
		if a := testing.AllocsPerRun(20, func() { _ = k.Eval(ctx, n) }); a != 0 {
			t.Errorf("%s: Eval allocates %v times", c.op, a)
		}
	}
}

// BenchmarkSoftmaxInt8 is a 1001-class classifier head.
func BenchmarkSoftmaxInt8(b *testing.B) {
	benchUnary(b, schema.OpSoftmax, &schema.SoftmaxOptions{Beta: 1}, tensor.Int8, []int{1, 1001}, kQ(0.0634, -53), kQ(1.0/256, -128))
}

// BenchmarkSoftmaxFloat is a 1001-class classifier head in float32.
func BenchmarkSoftmaxFloat(b *testing.B) {
	benchUnary(b, schema.OpSoftmax, &schema.SoftmaxOptions{Beta: 1}, tensor.Float32, []int{1, 1001}, nil, nil)
}

// BenchmarkLogisticInt16 runs the fixed-point int16 sigmoid over 4096 values.
func BenchmarkLogisticInt16(b *testing.B) {
	benchUnary(b, schema.OpLogistic, nil, tensor.Int16, []int{4096}, kQ(1.0/4096, 0), kQ(1.0/32768, 0))
}

// BenchmarkHardSwishInt8 is a MobileNet v3 sized activation (28x28x96).
func BenchmarkHardSwishInt8(b *testing.B) {
	benchUnary(b, schema.OpHardSwish, nil, tensor.Int8, []int{1, 28, 28, 96}, kQ(0.05, 3), kQ(0.04, -20))
}

func benchUnary(b *testing.B, op schema.BuiltinOperator, opts any, dt tensor.DType, shape []int, inQ, outQ *tensor.Quantization) {
	r := kerneltest.RNG(9)
	vals := make([]float64, tensor.NumElements(shape))
	for i := range vals {
		vals[i] = float64(r.IntN(200) - 100)
	}
	in := kNew(dt, shape, vals, inQ)
	out := kNew(dt, nil, nil, outQ)
	k, _ := kernels.Lookup(schema.OperatorCode{Builtin: op, Version: 1})
	n := &kernels.Node{Op: op, Options: opts, Inputs: []*tensor.Tensor{in}, Outputs: []*tensor.Tensor{out}}
	ctx := kernels.NewContext(quant.RoundingTFLite, 1)
	ctx.Preparing = true
	if err := k.Prepare(ctx, n); err != nil {
		b.Fatal(err)
	}
	ctx.Preparing = false
	out.Data = kernels.AlignedBytes(out.ByteSize())
	b.ReportAllocs()
	for b.Loop() {
		_ = k.Eval(ctx, n)
	}
}

// FuzzActivation prepares and evaluates the activation kernels with
// arbitrary shapes and quantization parameters: whatever Prepare accepts,
// Eval must not panic.
func FuzzActivation(f *testing.F) {
	f.Add(uint8(0), uint8(1), uint8(2), uint8(3), float32(0.1), int8(3), float32(1.0/256), int8(-128), float32(1))
	f.Add(uint8(5), uint8(3), uint8(0), uint8(9), float32(1e-9), int8(0), float32(1e9), int8(0), float32(-2))
	f.Fuzz(func(t *testing.T, opSel, dtSel, d0, d1 uint8, inS float32, inZP int8, outS float32, outZP int8, param float32) {
		ops := []schema.BuiltinOperator{schema.OpSoftmax, schema.OpLogSoftmax, schema.OpLogistic, schema.OpTanh, schema.OpRelu,
			schema.OpRelu6, schema.OpReluN1To1, schema.OpLeakyRelu, schema.OpHardSwish, schema.OpL2Normalization}
		op := ops[int(opSel)%len(ops)]
		dts := []tensor.DType{tensor.Float32, tensor.Int8, tensor.Uint8, tensor.Int16}
		dt := dts[int(dtSel)%len(dts)]
		shape := []int{int(d0 % 4), int(d1%9) + 1}
		r := kerneltest.RNG(uint64(d0)<<8 | uint64(d1))
		vals := make([]float64, tensor.NumElements(shape))
		for i := range vals {
			vals[i] = float64(r.IntN(256) - 128)
			if dt == tensor.Uint8 {
				vals[i] += 128
			}
		}
		var inQ, outQ *tensor.Quantization
		if dt != tensor.Float32 {
			inQ, outQ = kQ(inS, int64(inZP)), kQ(outS, int64(outZP))
			if dt == tensor.Uint8 {
				inQ.ZeroPoint[0] += 128
				outQ.ZeroPoint[0] += 128
			}
		}
		var opts any
		switch op {
		case schema.OpSoftmax:
			opts = &schema.SoftmaxOptions{Beta: param}
		case schema.OpLeakyRelu:
			opts = &schema.LeakyReluOptions{Alpha: param}
		}
		in := kNew(dt, shape, vals, inQ)
		out := kNew(dt, nil, nil, outQ)
		_ = kerneltest.Run(t, op, opts, []*tensor.Tensor{in}, out)
		in = kNew(dt, shape, vals, inQ)
		out = kNew(dt, nil, nil, outQ)
		_ = kerneltest.RunRounding(t, quant.RoundingDouble, op, opts, []*tensor.Tensor{in}, out)
	})
}
