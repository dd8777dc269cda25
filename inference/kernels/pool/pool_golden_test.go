package pool_test

import (
	"testing"

	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
	"github.com/edgefleet/edgefleet/internal/kerneltest/singleop"
	"github.com/edgefleet/edgefleet/quant"
)

// TestPoolGolden checks AVERAGE_POOL_2D and MAX_POOL_2D against TensorFlow
// Lite's builtin kernels: every dtype, SAME and VALID padding, strides,
// window sizes, fused activations, and differing output quantization.
func TestPoolGolden(t *testing.T) {
	type qp struct {
		scale float32
		zp    int64
	}
	cases := []struct {
		name    string
		op      schema.BuiltinOperator
		opts    schema.Pool2DOptions
		dt      tensor.DType
		inShape []int
		inQ     qp
		outQ    qp
	}{
		{"avg_int8_same", schema.OpAveragePool2D, schema.Pool2DOptions{Padding: schema.PaddingSame, StrideH: 2, StrideW: 2, FilterHeight: 3, FilterWidth: 3},
			tensor.Int8, []int{1, 5, 6, 3}, qp{0.0186, -128}, qp{0.0186, -128}},
		{"avg_int8_valid_relu6", schema.OpAveragePool2D, schema.Pool2DOptions{Padding: schema.PaddingValid, StrideH: 1, StrideW: 2, FilterHeight: 2, FilterWidth: 3, Activation: quant.ActRelu6},
			tensor.Int8, []int{2, 4, 7, 2}, qp{0.05, 3}, qp{0.05, 3}},
		{"avg_uint8_valid", schema.OpAveragePool2D, schema.Pool2DOptions{Padding: schema.PaddingValid, StrideH: 2, StrideW: 2, FilterHeight: 4, FilterWidth: 4},
			tensor.Uint8, []int{1, 4, 4, 5}, qp{0.0235, 0}, qp{0.0235, 0}},
		{"avg_uint8_same_relu", schema.OpAveragePool2D, schema.Pool2DOptions{Padding: schema.PaddingSame, StrideH: 3, StrideW: 1, FilterHeight: 3, FilterWidth: 2, Activation: quant.ActRelu},
			tensor.Uint8, []int{1, 7, 5, 3}, qp{0.1, 128}, qp{0.1, 128}},
		{"avg_int8_outq", schema.OpAveragePool2D, schema.Pool2DOptions{Padding: schema.PaddingSame, StrideH: 1, StrideW: 1, FilterHeight: 2, FilterWidth: 2, Activation: quant.ActReluN1To1},
			tensor.Int8, []int{1, 3, 3, 2}, qp{0.02, 0}, qp{0.01, -5}},
		{"avg_int16", schema.OpAveragePool2D, schema.Pool2DOptions{Padding: schema.PaddingSame, StrideH: 2, StrideW: 2, FilterHeight: 3, FilterWidth: 2},
			tensor.Int16, []int{1, 5, 5, 2}, qp{0.001, 0}, qp{0.001, 0}},
		{"avg_float", schema.OpAveragePool2D, schema.Pool2DOptions{Padding: schema.PaddingSame, StrideH: 2, StrideW: 1, FilterHeight: 3, FilterWidth: 3, Activation: quant.ActRelu},
			tensor.Float32, []int{1, 5, 4, 3}, qp{}, qp{}},
		{"max_int8_same", schema.OpMaxPool2D, schema.Pool2DOptions{Padding: schema.PaddingSame, StrideH: 2, StrideW: 2, FilterHeight: 2, FilterWidth: 2},
			tensor.Int8, []int{1, 5, 5, 4}, qp{0.1, -3}, qp{0.1, -3}},
		{"max_uint8_valid_relu6", schema.OpMaxPool2D, schema.Pool2DOptions{Padding: schema.PaddingValid, StrideH: 1, StrideW: 1, FilterHeight: 3, FilterWidth: 2, Activation: quant.ActRelu6},
			tensor.Uint8, []int{2, 4, 4, 3}, qp{0.05, 100}, qp{0.05, 100}},
		{"max_int16", schema.OpMaxPool2D, schema.Pool2DOptions{Padding: schema.PaddingSame, StrideH: 2, StrideW: 3, FilterHeight: 3, FilterWidth: 3, Activation: quant.ActRelu},
			tensor.Int16, []int{1, 6, 7, 2}, qp{0.0005, 0}, qp{0.0005, 0}},
		{"avg_int8_window_exceeds_input", schema.OpAveragePool2D, schema.Pool2DOptions{Padding: schema.PaddingSame, StrideH: 1, StrideW: 2, FilterHeight: 5, FilterWidth: 5, Activation: quant.ActRelu},
			tensor.Int8, []int{2, 3, 3, 3}, qp{0.1, -7}, qp{0.1, -7}},
		{"avg_uint8_global", schema.OpAveragePool2D, schema.Pool2DOptions{Padding: schema.PaddingValid, StrideH: 1, StrideW: 1, FilterHeight: 7, FilterWidth: 7},
			tensor.Uint8, []int{1, 7, 7, 16}, qp{0.0235, 0}, qp{0.0235, 0}},
		{"max_int8_outq", schema.OpMaxPool2D, schema.Pool2DOptions{Padding: schema.PaddingSame, StrideH: 1, StrideW: 1, FilterHeight: 2, FilterWidth: 2, Activation: quant.ActRelu6},
			tensor.Int8, []int{1, 3, 3, 2}, qp{0.05, 0}, qp{0.02, 10}},
		{"max_float", schema.OpMaxPool2D, schema.Pool2DOptions{Padding: schema.PaddingValid, StrideH: 2, StrideW: 2, FilterHeight: 2, FilterWidth: 2, Activation: quant.ActReluN1To1},
			tensor.Float32, []int{1, 4, 6, 2}, qp{}, qp{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := kerneltest.CaseRNG(c.name)
			n := tensor.NumElements(c.inShape)
			in := singleop.Spec{Type: c.dt, Shape: c.inShape, Scale: c.inQ.scale, ZP: c.inQ.zp}
			switch c.dt {
			case tensor.Float32:
				in.In = kerneltest.RandF32(r, n, -3, 3)
			case tensor.Int16:
				in.In = kerneltest.RandInt16(r, n, -30000, 30000)
			default:
				in.In = kerneltest.RandBytes(r, n)
			}
			model, inputs := singleop.Build(t, c.op, 2, &c.opts, []singleop.Spec{in}, []singleop.Spec{{Type: c.dt, Scale: c.outQ.scale, ZP: c.outQ.zp}})
			singleop.CheckGolden(t, c.name, model, inputs, c.dt)
		})
	}
}
