package zoo

import (
	"testing"

	"github.com/edgefleet/edgefleet/inference/modelbuilder"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
)

// The findings tests reduce each divergence a zoo model showed to the
// single operator that causes it (see FINDINGS.md), with goldens from
// TensorFlow Lite like the zoo's.

// uint8ConvFinding builds one uint8 CONV_2D, DEPTHWISE_CONV_2D or
// TRANSPOSE_CONV node with the scales of mobilenetv2_uint8's node 3:
// input 0.03137255 (zp 128), filter 0.009552203 (zp 128), bias 0.000299677,
// output 0.023529412 (zp 0), RELU6 where the op has it. The accumulator is
// 11659: the effective scale formed in double gives multiplier 1750459803
// (output 148), TensorFlow Lite's float32 input·filter product gives
// 1750459876 (output 149).
func uint8ConvFinding(code schema.BuiltinOperator) *Model {
	b := modelbuilder.New()
	inQ, wQ := pq(0.03137255, 128), pq(0.009552203, 128)
	bQ, outQ := pq(0.000299677, 0), pq(0.023529412, 0)
	var in, w, bias, out int
	var inputs []byte
	le32 := func(v int32) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }
	switch code {
	case schema.OpConv2D:
		// The exact pixel, filter row and bias of the zoo model.
		in = b.AddTensor(modelbuilder.Tensor{Name: "in", Type: tensor.Uint8, Shape: []int{1, 1, 1, 8}, Quant: inQ})
		w = b.AddTensor(modelbuilder.Tensor{Name: "w", Type: tensor.Uint8, Shape: []int{1, 1, 1, 8}, Quant: wQ, Data: []byte{9, 216, 177, 252, 143, 64, 11, 166}})
		bias = b.AddTensor(modelbuilder.Tensor{Name: "b", Type: tensor.Int32, Shape: []int{1}, Quant: bQ, Data: le32(1868)})
		inputs = []byte{64, 114, 128, 160, 112, 115, 145, 150}
	default:
		// (129-128)·(129-128) + 11658 = 11659.
		in = b.AddTensor(modelbuilder.Tensor{Name: "in", Type: tensor.Uint8, Shape: []int{1, 1, 1, 1}, Quant: inQ})
		w = b.AddTensor(modelbuilder.Tensor{Name: "w", Type: tensor.Uint8, Shape: []int{1, 1, 1, 1}, Quant: wQ, Data: []byte{129}})
		bias = b.AddTensor(modelbuilder.Tensor{Name: "b", Type: tensor.Int32, Shape: []int{1}, Quant: bQ, Data: le32(11658)})
		inputs = []byte{129}
	}
	out = b.AddTensor(modelbuilder.Tensor{Name: "out", Type: tensor.Uint8, Shape: []int{1, 1, 1, 1}, Quant: outQ})
	switch code {
	case schema.OpConv2D:
		b.AddOp(modelbuilder.Op{Builtin: code, Version: 1, Inputs: []int{in, w, bias}, Outputs: []int{out},
			Options: &schema.Conv2DOptions{Padding: schema.PaddingSame, StrideW: 1, StrideH: 1, Activation: relu6, DilationW: 1, DilationH: 1}})
	case schema.OpDepthwiseConv2D:
		b.AddOp(modelbuilder.Op{Builtin: code, Version: 1, Inputs: []int{in, w, bias}, Outputs: []int{out},
			Options: &schema.DepthwiseConv2DOptions{Padding: schema.PaddingSame, StrideW: 1, StrideH: 1, DepthMultiplier: 1, Activation: relu6, DilationW: 1, DilationH: 1}})
	case schema.OpTransposeConv:
		shape := b.AddTensor(modelbuilder.Tensor{Name: "shape", Type: tensor.Int32, Shape: []int{4}, Data: append(append(append(le32(1), le32(1)...), le32(1)...), le32(1)...)})
		b.AddOp(modelbuilder.Op{Builtin: code, Version: 3, Inputs: []int{shape, w, in, bias}, Outputs: []int{out},
			Options: &schema.TransposeConvOptions{Padding: schema.PaddingSame, StrideW: 1, StrideH: 1}})
	}
	b.SetIO([]int{in}, []int{out})
	m, err := b.Bytes()
	if err != nil {
		panic(err)
	}
	return &Model{Name: "finding_" + code.String() + "_uint8_scale_product", Bytes: m, Inputs: [][]byte{inputs}}
}

// TestFindings runs the single-op reductions of FINDINGS.md.
func TestFindings(t *testing.T) {
	for _, code := range []schema.BuiltinOperator{schema.OpConv2D, schema.OpDepthwiseConv2D, schema.OpTransposeConv} {
		m := uint8ConvFinding(code)
		t.Run(m.Name, func(t *testing.T) {
			want := golden(t, m)
			got := run(t, m.Bytes, m.Inputs)
			for i := range got {
				if err := diff(got[i], want[i]); err != nil {
					t.Errorf("output %d: %v", i, err)
				}
			}
		})
	}
}
