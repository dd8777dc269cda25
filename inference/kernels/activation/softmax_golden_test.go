package activation_test

import (
	"testing"

	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
	"github.com/edgefleet/edgefleet/internal/kerneltest/singleop"
)

// TestSoftmaxGolden checks SOFTMAX against TensorFlow Lite's builtin
// kernels on every supported type combination.
func TestSoftmaxGolden(t *testing.T) {
	cases := []struct {
		name    string
		beta    float32
		in, out singleop.Spec
	}{
		{"softmax_int8", 1, singleop.Spec{Type: tensor.Int8, Shape: []int{4, 64}, Scale: 0.06336502, ZP: -53},
			singleop.Spec{Type: tensor.Int8, Shape: []int{4, 64}, Scale: 1.0 / 256, ZP: -128}},
		{"softmax_int8_beta", 0.37, singleop.Spec{Type: tensor.Int8, Shape: []int{2, 3, 40}, Scale: 0.2, ZP: 5},
			singleop.Spec{Type: tensor.Int8, Shape: []int{2, 3, 40}, Scale: 1.0 / 256, ZP: -128}},
		{"softmax_int8_small", 1, singleop.Spec{Type: tensor.Int8, Shape: []int{3, 2}, Scale: 0.012518751, ZP: -1},
			singleop.Spec{Type: tensor.Int8, Shape: []int{3, 2}, Scale: 1.0 / 256, ZP: -128}},
		{"softmax_uint8", 1, singleop.Spec{Type: tensor.Uint8, Shape: []int{3, 100}, Scale: 0.13083284, ZP: 96},
			singleop.Spec{Type: tensor.Uint8, Shape: []int{3, 100}, Scale: 1.0 / 256, ZP: 0}},
		{"softmax_uint8_odd_out", 2, singleop.Spec{Type: tensor.Uint8, Shape: []int{2, 50}, Scale: 0.05, ZP: 128},
			singleop.Spec{Type: tensor.Uint8, Shape: []int{2, 50}, Scale: 1.0 / 200, ZP: 10}},
		{"softmax_int8_int16", 1, singleop.Spec{Type: tensor.Int8, Shape: []int{5, 2}, Scale: 0.06996273, ZP: 2},
			singleop.Spec{Type: tensor.Int16, Shape: []int{5, 2}, Scale: 1.5259022e-05, ZP: -32768}},
		{"softmax_int8_int16_wide", 1, singleop.Spec{Type: tensor.Int8, Shape: []int{2, 30}, Scale: 0.1, ZP: -10},
			singleop.Spec{Type: tensor.Int16, Shape: []int{2, 30}, Scale: 1.0 / 65536, ZP: -32768}},
		{"softmax_uint8_int16", 1, singleop.Spec{Type: tensor.Uint8, Shape: []int{2, 30}, Scale: 0.1, ZP: 120},
			singleop.Spec{Type: tensor.Int16, Shape: []int{2, 30}, Scale: 1.0 / 32768, ZP: 0}},
		{"softmax_int16", 1, singleop.Spec{Type: tensor.Int16, Shape: []int{3, 40}, Scale: 1.0 / 4096, ZP: 0, Lo: -32768, Hi: 32767},
			singleop.Spec{Type: tensor.Int16, Shape: []int{3, 40}, Scale: 1.0 / 32768, ZP: 0}},
		{"softmax_int16_narrow", 0.8, singleop.Spec{Type: tensor.Int16, Shape: []int{4, 10}, Scale: 0.0003, ZP: 0, Lo: -3000, Hi: 3000},
			singleop.Spec{Type: tensor.Int16, Shape: []int{4, 10}, Scale: 1.0 / 32768, ZP: 0}},
		{"softmax_int8_rank4_bigbeta", 3.5, singleop.Spec{Type: tensor.Int8, Shape: []int{1, 2, 2, 16}, Scale: 0.5, ZP: 0},
			singleop.Spec{Type: tensor.Int8, Shape: []int{1, 2, 2, 16}, Scale: 1.0 / 256, ZP: -128}},
		{"softmax_uint8_int16_zp", 1, singleop.Spec{Type: tensor.Uint8, Shape: []int{2, 30}, Scale: 0.1, ZP: 120},
			singleop.Spec{Type: tensor.Int16, Shape: []int{2, 30}, Scale: 1.0 / 65536, ZP: -32768}},
		{"softmax_float", 1, singleop.Spec{Type: tensor.Float32, Shape: []int{2, 10}, Lo: -5, Hi: 5},
			singleop.Spec{Type: tensor.Float32, Shape: []int{2, 10}}},
		{"softmax_float_beta", 0.3, singleop.Spec{Type: tensor.Float32, Shape: []int{7}, Lo: -20, Hi: 20},
			singleop.Spec{Type: tensor.Float32, Shape: []int{7}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := kerneltest.CaseRNG(c.name)
			n := tensor.NumElements(c.in.Shape)
			switch c.in.Type {
			case tensor.Float32:
				c.in.In = kerneltest.RandF32(r, n, float64(c.in.Lo), float64(c.in.Hi))
			case tensor.Int16:
				c.in.In = kerneltest.RandInt16(r, n, c.in.Lo, c.in.Hi)
			default:
				c.in.In = kerneltest.RandBytes(r, n)
			}
			model, inputs := singleop.Build(t, schema.OpSoftmax, 1, &schema.SoftmaxOptions{Beta: c.beta}, []singleop.Spec{c.in}, []singleop.Spec{c.out})
			singleop.CheckGolden(t, c.name, model, inputs, c.out.Type)
		})
	}
}
