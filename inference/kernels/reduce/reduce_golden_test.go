package reduce_test

import (
	"encoding/binary"
	"testing"

	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
	"github.com/edgefleet/edgefleet/internal/kerneltest/singleop"
)

func axisBytes(axes ...int32) []byte {
	b := make([]byte, 4*len(axes))
	for i, a := range axes {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(a))
	}
	return b
}

func axis64Bytes(axes ...int64) []byte {
	b := make([]byte, 8*len(axes))
	for i, a := range axes {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(a))
	}
	return b
}

func i32bytes(v []int32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
	}
	return b
}

// TestReduceGolden checks MEAN, SUM and REDUCE_MAX against TensorFlow
// Lite's builtin kernels: every dtype, keep_dims, negative and duplicate
// axes, the optimized 4-D height/width mean and requantization.
func TestReduceGolden(t *testing.T) {
	type qp struct {
		scale float32
		zp    int64
	}
	cases := []struct {
		name    string
		op      schema.BuiltinOperator
		keep    bool
		axes    []int32
		dt      tensor.DType
		inShape []int
		inQ     qp
		outQ    qp
	}{
		{"mean_int8_hw_keep", schema.OpMean, true, []int32{1, 2}, tensor.Int8, []int{1, 7, 7, 16}, qp{0.023529412, -128}, qp{0.019077832, -128}},
		{"mean_int8_hw_keep_rev", schema.OpMean, true, []int32{2, 1}, tensor.Int8, []int{2, 3, 5, 4}, qp{0.05, 3}, qp{0.03, -7}},
		{"mean_int8_hw_nokeep", schema.OpMean, false, []int32{1, 2}, tensor.Int8, []int{1, 7, 7, 16}, qp{0.023529412, -128}, qp{0.019077832, -128}},
		{"mean_int8_axis1", schema.OpMean, false, []int32{1}, tensor.Int8, []int{2, 3, 4}, qp{0.1, 4}, qp{0.07, -2}},
		{"mean_int8_same", schema.OpMean, true, []int32{-1}, tensor.Int8, []int{3, 7}, qp{0.1, 4}, qp{0.1, 4}},
		{"mean_int8_all", schema.OpMean, false, []int32{0, 1, 2}, tensor.Int8, []int{2, 5, 3}, qp{0.1, -20}, qp{0.05, 9}},
		{"mean_uint8_hw_keep", schema.OpMean, true, []int32{1, 2}, tensor.Uint8, []int{1, 4, 4, 8}, qp{0.0235, 0}, qp{0.03, 10}},
		{"mean_uint8_axis0", schema.OpMean, false, []int32{0}, tensor.Uint8, []int{5, 6}, qp{0.0235, 128}, qp{0.02, 120}},
		{"mean_int16", schema.OpMean, false, []int32{1}, tensor.Int16, []int{3, 9}, qp{0.001, 0}, qp{0.0007, 0}},
		{"mean_float_dup_neg", schema.OpMean, false, []int32{0, -1, 2, 0}, tensor.Float32, []int{2, 3, 4, 5}, qp{}, qp{}},
		{"mean_float_hw_keep", schema.OpMean, true, []int32{1, 2}, tensor.Float32, []int{1, 3, 3, 4}, qp{}, qp{}},
		{"mean_int32", schema.OpMean, true, []int32{1}, tensor.Int32, []int{3, 4}, qp{}, qp{}},
		{"sum_int8_diff", schema.OpSum, false, []int32{1}, tensor.Int8, []int{3, 5}, qp{0.1, 2}, qp{0.4, -3}},
		{"sum_int8_same", schema.OpSum, true, []int32{1}, tensor.Int8, []int{3, 5}, qp{0.1, 2}, qp{0.1, 2}},
		{"sum_uint8_diff", schema.OpSum, false, []int32{0, 1}, tensor.Uint8, []int{4, 3}, qp{0.01, 100}, qp{0.05, 20}},
		{"sum_int16", schema.OpSum, false, []int32{-1}, tensor.Int16, []int{2, 6}, qp{0.001, 0}, qp{0.001, 0}},
		{"sum_int8_wrap", schema.OpSum, false, []int32{0}, tensor.Int8, []int{20, 3}, qp{0.1, 0}, qp{0.2, -100}},
		{"sum_float", schema.OpSum, true, []int32{0, 2}, tensor.Float32, []int{2, 3, 4}, qp{}, qp{}},
		{"sum_int32", schema.OpSum, false, []int32{1}, tensor.Int32, []int{3, 4}, qp{}, qp{}},
		{"max_int8", schema.OpReduceMax, false, []int32{1}, tensor.Int8, []int{3, 5}, qp{0.1, 2}, qp{0.1, 2}},
		{"max_uint8", schema.OpReduceMax, true, []int32{0, -1}, tensor.Uint8, []int{4, 3, 2}, qp{0.1, 2}, qp{0.1, 2}},
		{"max_int16", schema.OpReduceMax, false, []int32{0}, tensor.Int16, []int{3, 5}, qp{0.01, 0}, qp{0.01, 0}},
		{"max_float", schema.OpReduceMax, false, []int32{1, 2}, tensor.Float32, []int{2, 3, 4}, qp{}, qp{}},
		{"mean_uint8_hw_nokeep", schema.OpMean, false, []int32{1, 2}, tensor.Uint8, []int{2, 3, 3, 4}, qp{0.0235, 3}, qp{0.03, 10}},
		{"mean_int8_4d_axes12_3", schema.OpMean, true, []int32{1, 2, 3}, tensor.Int8, []int{2, 2, 3, 2}, qp{0.05, 1}, qp{0.04, -3}},
		{"sum_uint8_hw_keep", schema.OpSum, true, []int32{1, 2}, tensor.Uint8, []int{1, 3, 3, 2}, qp{0.01, 10}, qp{0.1, 5}},
		{"max_int32", schema.OpReduceMax, true, []int32{1}, tensor.Int32, []int{2, 3}, qp{}, qp{}},
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
			case tensor.Int32:
				v := make([]int32, n)
				for i := range v {
					v[i] = int32(r.IntN(2001) - 1000)
				}
				in.In = i32bytes(v)
			default:
				in.In = kerneltest.RandBytes(r, n)
			}
			axis := singleop.Spec{Type: tensor.Int32, Shape: []int{len(c.axes)}, Data: axisBytes(c.axes...)}
			model, inputs := singleop.Build(t, c.op, 1, &schema.ReducerOptions{KeepDims: c.keep}, []singleop.Spec{in, axis}, []singleop.Spec{{Type: c.dt, Scale: c.outQ.scale, ZP: c.outQ.zp}})
			singleop.CheckGolden(t, c.name, model, inputs, c.dt)
		})
	}
}

// TestArgMinMaxGolden checks ARG_MAX and ARG_MIN (ties resolve to the
// smallest index) against TensorFlow Lite.
func TestArgMinMaxGolden(t *testing.T) {
	cases := []struct {
		name    string
		op      schema.BuiltinOperator
		axis    int64
		axis64  bool
		dt      tensor.DType
		outType tensor.DType
		shape   []int
	}{
		{"argmax_float", schema.OpArgMax, 1, false, tensor.Float32, tensor.Int32, []int{3, 5, 2}},
		{"argmin_float_i32", schema.OpArgMin, -1, false, tensor.Float32, tensor.Int32, []int{3, 5, 2}},
		{"argmax_int8_ties", schema.OpArgMax, 0, false, tensor.Int8, tensor.Int32, []int{6, 4}},
		{"argmin_uint8_ties", schema.OpArgMin, 1, true, tensor.Uint8, tensor.Int32, []int{4, 6}},
		{"argmax_int32", schema.OpArgMax, -2, false, tensor.Int32, tensor.Int32, []int{2, 5, 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := kerneltest.CaseRNG(c.name)
			n := tensor.NumElements(c.shape)
			in := singleop.Spec{Type: c.dt, Shape: c.shape}
			switch c.dt {
			case tensor.Float32:
				in.In = kerneltest.RandF32(r, n, -3, 3)
			case tensor.Int32:
				v := make([]int32, n)
				for i := range v {
					v[i] = int32(r.IntN(5))
				}
				in.In = i32bytes(v)
			default:
				// few distinct values: many ties.
				b := make([]byte, n)
				for i := range b {
					b[i] = byte(r.IntN(3))
				}
				in.In = b
			}
			if c.dt == tensor.Int8 || c.dt == tensor.Uint8 {
				in.Scale, in.ZP = 0.1, 0
			}
			axis := singleop.Spec{Type: tensor.Int32, Shape: []int{1}, Data: axisBytes(int32(c.axis))}
			if c.axis64 {
				axis = singleop.Spec{Type: tensor.Int64, Shape: []int{1}, Data: axis64Bytes(c.axis)}
			}
			model, inputs := singleop.Build(t, c.op, 1, &schema.ArgOptions{OutputType: c.outType}, []singleop.Spec{in, axis}, []singleop.Spec{{Type: c.outType}})
			singleop.CheckGolden(t, c.name, model, inputs, c.outType)
		})
	}
}
