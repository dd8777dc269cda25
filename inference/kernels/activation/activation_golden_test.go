package activation_test

import (
	"testing"

	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
	"github.com/edgefleet/edgefleet/internal/kerneltest/singleop"
)

// sweep16 returns int16 inputs covering the whole range in steps.
func sweep16(step int) []byte {
	var v []int16
	for x := -32768; x <= 32767; x += step {
		v = append(v, int16(x))
	}
	v = append(v, 32767, 0, 1, -1)
	return kerneltest.I16(v...)
}

type unaryCase struct {
	name    string
	op      schema.BuiltinOperator
	opts    any
	dt      tensor.DType
	inScale float32
	inZP    int64
	outS    float32
	outZP   int64
	input   []byte // nil: every 8-bit value / an int16 sweep / random floats
}

func runUnaryGolden(t *testing.T, cases []unaryCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := kerneltest.CaseRNG(c.name)
			data := c.input
			if data == nil {
				switch c.dt {
				case tensor.Float32:
					data = kerneltest.RandF32(r, 64, -8, 8)
				case tensor.Int16:
					data = sweep16(97)
				default:
					data = kerneltest.AllBytes()
				}
			}
			n := len(data) / c.dt.Size()
			in := singleop.Spec{Type: c.dt, Shape: []int{n}, Scale: c.inScale, ZP: c.inZP, In: data}
			if c.op == schema.OpL2Normalization || c.op == schema.OpLogSoftmax {
				in.Shape = []int{n / 8, 8}
			}
			out := singleop.Spec{Type: c.dt, Shape: in.Shape, Scale: c.outS, ZP: c.outZP}
			model, inputs := singleop.Build(t, c.op, 1, c.opts, []singleop.Spec{in}, []singleop.Spec{out})
			singleop.CheckGolden(t, c.name, model, inputs, c.dt)
		})
	}
}

// TestLogisticTanhGolden covers LOGISTIC and TANH: float32, the 8-bit
// lookup tables, and both int16 paths (power-of-two scales in gemmlowp
// fixed point, other scales through the interpolated table).
func TestLogisticTanhGolden(t *testing.T) {
	runUnaryGolden(t, []unaryCase{
		{name: "logistic_float", op: schema.OpLogistic, dt: tensor.Float32},
		{name: "tanh_float", op: schema.OpTanh, dt: tensor.Float32},
		{name: "logistic_int8", op: schema.OpLogistic, dt: tensor.Int8, inScale: 0.0625, inZP: 3, outS: 1.0 / 256, outZP: -128},
		{name: "logistic_uint8", op: schema.OpLogistic, dt: tensor.Uint8, inScale: 0.05, inZP: 128, outS: 1.0 / 256, outZP: 0},
		{name: "tanh_int8", op: schema.OpTanh, dt: tensor.Int8, inScale: 0.03, inZP: -5, outS: 1.0 / 128, outZP: 0},
		{name: "tanh_uint8", op: schema.OpTanh, dt: tensor.Uint8, inScale: 0.04, inZP: 120, outS: 1.0 / 128, outZP: 128},
		{name: "logistic_int16_pot", op: schema.OpLogistic, dt: tensor.Int16, inScale: 1.0 / 4096, outS: 1.0 / 32768},
		{name: "logistic_int16", op: schema.OpLogistic, dt: tensor.Int16, inScale: 0.0003, outS: 1.0 / 32768},
		{name: "logistic_int16_pot2", op: schema.OpLogistic, dt: tensor.Int16, inScale: 1.0 / 1024, outS: 1.0 / 32768},
		{name: "tanh_int16_pot", op: schema.OpTanh, dt: tensor.Int16, inScale: 1.0 / 4096, outS: 1.0 / 32768},
		{name: "tanh_int16_pot_shift", op: schema.OpTanh, dt: tensor.Int16, inScale: 1.0 / 8192, outS: 1.0 / 32768},
		{name: "tanh_int16", op: schema.OpTanh, dt: tensor.Int16, inScale: 0.0005, outS: 1.0 / 32768},
		{name: "logistic_int8_zp0", op: schema.OpLogistic, dt: tensor.Int8, inScale: 0.1, inZP: 0, outS: 1.0 / 256, outZP: 0},
		{name: "tanh_int16_big_scale", op: schema.OpTanh, dt: tensor.Int16, inScale: 0.01, outS: 1.0 / 32768},
		{name: "logistic_int16_tiny_scale", op: schema.OpLogistic, dt: tensor.Int16, inScale: 0.00001, outS: 1.0 / 32768},
	})
}

// TestReluGolden covers RELU, RELU6, RELU_N1_TO_1 and LEAKY_RELU with
// requantization between different input and output parameters.
func TestReluGolden(t *testing.T) {
	runUnaryGolden(t, []unaryCase{
		{name: "relu_float", op: schema.OpRelu, dt: tensor.Float32},
		{name: "relu6_float", op: schema.OpRelu6, dt: tensor.Float32},
		{name: "relu1_float", op: schema.OpReluN1To1, dt: tensor.Float32},
		{name: "relu_int8", op: schema.OpRelu, dt: tensor.Int8, inScale: 0.05, inZP: -10, outS: 0.03, outZP: -128},
		{name: "relu_uint8", op: schema.OpRelu, dt: tensor.Uint8, inScale: 0.05, inZP: 128, outS: 0.07, outZP: 3},
		{name: "relu6_int8", op: schema.OpRelu6, dt: tensor.Int8, inScale: 0.1, inZP: 0, outS: 0.03, outZP: -100},
		{name: "relu6_uint8", op: schema.OpRelu6, dt: tensor.Uint8, inScale: 0.1, inZP: 100, outS: 0.1, outZP: 100},
		{name: "relu1_int8", op: schema.OpReluN1To1, dt: tensor.Int8, inScale: 0.02, inZP: 0, outS: 0.01, outZP: 0},
		{name: "relu1_uint8", op: schema.OpReluN1To1, dt: tensor.Uint8, inScale: 0.02, inZP: 128, outS: 0.009, outZP: 120},
		{name: "relu_int16", op: schema.OpRelu, dt: tensor.Int16, inScale: 0.001, outS: 0.0007},
		{name: "relu6_int16", op: schema.OpRelu6, dt: tensor.Int16, inScale: 0.0005, outS: 0.0003},
		{name: "leaky_int16_big_alpha", op: schema.OpLeakyRelu, opts: &schema.LeakyReluOptions{Alpha: 3}, dt: tensor.Int16, inScale: 0.001, outS: 0.002},
		{name: "leaky_float", op: schema.OpLeakyRelu, opts: &schema.LeakyReluOptions{Alpha: 0.2}, dt: tensor.Float32},
		{name: "leaky_int8", op: schema.OpLeakyRelu, opts: &schema.LeakyReluOptions{Alpha: 0.1}, dt: tensor.Int8, inScale: 0.05, inZP: 7, outS: 0.04, outZP: -20},
		{name: "leaky_uint8_big_alpha", op: schema.OpLeakyRelu, opts: &schema.LeakyReluOptions{Alpha: 1.7}, dt: tensor.Uint8, inScale: 0.05, inZP: 128, outS: 0.1, outZP: 128},
		{name: "leaky_int8_neg_alpha", op: schema.OpLeakyRelu, opts: &schema.LeakyReluOptions{Alpha: -0.3}, dt: tensor.Int8, inScale: 0.05, inZP: 0, outS: 0.05, outZP: 0},
		{name: "leaky_int16", op: schema.OpLeakyRelu, opts: &schema.LeakyReluOptions{Alpha: 0.25}, dt: tensor.Int16, inScale: 0.001, outS: 0.0009},
	})
}

// TestHardSwishGolden covers HARD_SWISH's fixed-point arithmetic.
func TestHardSwishGolden(t *testing.T) {
	runUnaryGolden(t, []unaryCase{
		{name: "hardswish_float", op: schema.OpHardSwish, dt: tensor.Float32},
		{name: "hardswish_int8", op: schema.OpHardSwish, dt: tensor.Int8, inScale: 0.05, inZP: 0, outS: 0.04, outZP: -30},
		{name: "hardswish_int8_wide", op: schema.OpHardSwish, dt: tensor.Int8, inScale: 0.3, inZP: -20, outS: 0.4, outZP: -100},
		{name: "hardswish_uint8", op: schema.OpHardSwish, dt: tensor.Uint8, inScale: 0.06, inZP: 100, outS: 0.05, outZP: 30},
		{name: "hardswish_uint8_small", op: schema.OpHardSwish, dt: tensor.Uint8, inScale: 0.01, inZP: 128, outS: 0.02, outZP: 10},
	})
}

// TestL2NormLogSoftmaxGolden covers L2_NORMALIZATION and LOG_SOFTMAX.
func TestL2NormLogSoftmaxGolden(t *testing.T) {
	runUnaryGolden(t, []unaryCase{
		{name: "l2norm_float", op: schema.OpL2Normalization, dt: tensor.Float32},
		{name: "l2norm_int8", op: schema.OpL2Normalization, dt: tensor.Int8, inScale: 0.05, inZP: 3, outS: 1.0 / 128, outZP: 0},
		{name: "l2norm_uint8", op: schema.OpL2Normalization, dt: tensor.Uint8, inScale: 0.05, inZP: 128, outS: 1.0 / 128, outZP: 128},
		{name: "logsoftmax_float", op: schema.OpLogSoftmax, dt: tensor.Float32},
		{name: "logsoftmax_int8", op: schema.OpLogSoftmax, dt: tensor.Int8, inScale: 0.1, inZP: -3, outS: 16.0 / 256, outZP: 127},
		{name: "logsoftmax_uint8", op: schema.OpLogSoftmax, dt: tensor.Uint8, inScale: 0.1, inZP: 120, outS: 16.0 / 256, outZP: 255},
	})
}
