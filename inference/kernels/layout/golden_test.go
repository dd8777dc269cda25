package layout_test

import (
	"testing"

	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
)

// gt keeps the case tables below readable.
type gt = kerneltest.GoldenTensor

type goldenCase struct {
	name string
	op   schema.BuiltinOperator
	opts any
	ins  []gt
	outs []gt
}

func c32(shape []int, v ...int32) gt {
	return gt{Type: tensor.Int32, Shape: shape, Data: kerneltest.I32(v...), Const: true}
}

func c64(shape []int, v ...int64) gt {
	return gt{Type: tensor.Int64, Shape: shape, Data: kerneltest.I64(v...), Const: true}
}

func fin(shape []int, seed uint32) gt {
	return gt{Type: tensor.Float32, Shape: shape, Data: kerneltest.F32(kerneltest.SeqF(tensor.NumElements(shape), seed)...)}
}

func qin(typ tensor.DType, shape []int, seed uint32, q *tensor.Quantization) gt {
	return gt{Type: typ, Shape: shape, Data: kerneltest.Seq(tensor.NumElements(shape)*typ.Size(), seed), Quant: q}
}

func out(typ tensor.DType, shape []int, q *tensor.Quantization) gt {
	return gt{Type: typ, Shape: shape, Quant: q}
}

// TestGolden compares the layout ops with the real TensorFlow Lite.
func TestGolden(t *testing.T) {
	q1 := kerneltest.Q(0.1, 5)
	q2 := kerneltest.Q(0.037, -20)
	q3 := kerneltest.Q(0.25, 128)
	qu := kerneltest.Q(0.05, 100)
	cases := []goldenCase{
		{"reshape_tensor", schema.OpReshape, &schema.ReshapeOptions{}, []gt{fin([]int{2, 3, 4}, 1), c32([]int{3}, 4, -1, 2)}, []gt{out(tensor.Float32, []int{4, 3, 2}, nil)}},
		{"reshape_options", schema.OpReshape, &schema.ReshapeOptions{NewShape: []int{6, 4}}, []gt{qin(tensor.Int8, []int{2, 3, 4}, 2, q1)}, []gt{out(tensor.Int8, []int{6, 4}, q1)}},
		{"squeeze", schema.OpSqueeze, &schema.SqueezeOptions{SqueezeDims: []int{-1, 0}}, []gt{qin(tensor.Uint8, []int{1, 3, 1, 2, 1}, 3, qu)}, []gt{out(tensor.Uint8, []int{3, 1, 2}, qu)}},
		{"expand_dims", schema.OpExpandDims, nil, []gt{qin(tensor.Int16, []int{2, 3}, 4, nil), c32([]int{1}, -1)}, []gt{out(tensor.Int16, []int{2, 3, 1}, nil)}},
		{"transpose_3d_int8", schema.OpTranspose, nil, []gt{qin(tensor.Int8, []int{2, 3, 4}, 5, q1), c32([]int{3}, 2, 0, 1)}, []gt{out(tensor.Int8, []int{4, 2, 3}, q1)}},
		{"transpose_5d_float", schema.OpTranspose, nil, []gt{fin([]int{2, 1, 3, 2, 4}, 6), c32([]int{5}, 4, 2, 0, 3, 1)}, []gt{out(tensor.Float32, []int{4, 3, 2, 2, 1}, nil)}},
		{"transpose_4d_int64", schema.OpTranspose, nil, []gt{qin(tensor.Int64, []int{2, 3, 2, 2}, 7, nil), c32([]int{4}, 0, 3, 1, 2)}, []gt{out(tensor.Int64, []int{2, 2, 3, 2}, nil)}},
		{"pad_int8_zp", schema.OpPad, nil, []gt{qin(tensor.Int8, []int{1, 2, 3, 2}, 8, q2), c32([]int{4, 2}, 0, 0, 1, 2, 2, 0, 0, 1)}, []gt{out(tensor.Int8, []int{1, 5, 5, 3}, q2)}},
		{"pad_uint8_zp", schema.OpPad, nil, []gt{qin(tensor.Uint8, []int{2, 3}, 9, q3), c32([]int{2, 2}, 1, 1, 0, 3)}, []gt{out(tensor.Uint8, []int{4, 6}, q3)}},
		{"pad_float", schema.OpPad, nil, []gt{fin([]int{2, 2, 2}, 10), c32([]int{3, 2}, 1, 0, 0, 1, 2, 1)}, []gt{out(tensor.Float32, []int{3, 3, 5}, nil)}},
		{"padv2_uint8", schema.OpPadV2, nil, []gt{qin(tensor.Uint8, []int{1, 2, 2, 1}, 11, q3), c32([]int{4, 2}, 0, 1, 1, 1, 2, 0, 0, 0),
			{Type: tensor.Uint8, Shape: []int{}, Data: []byte{200}, Quant: q3, Const: true}}, []gt{out(tensor.Uint8, []int{2, 4, 4, 1}, q3)}},
		{"padv2_float", schema.OpPadV2, nil, []gt{fin([]int{3, 2}, 12), c32([]int{2, 2}, 1, 2, 0, 1),
			{Type: tensor.Float32, Shape: []int{}, Data: kerneltest.F32(-7.5), Const: true}}, []gt{out(tensor.Float32, []int{6, 3}, nil)}},
		{"concat_uint8_rescale", schema.OpConcatenation, &schema.ConcatenationOptions{Axis: -1},
			[]gt{qin(tensor.Uint8, []int{2, 3, 2}, 13, kerneltest.Q(0.05, 100)), qin(tensor.Uint8, []int{2, 3, 3}, 14, kerneltest.Q(0.13, 7)), qin(tensor.Uint8, []int{2, 3, 1}, 15, kerneltest.Q(0.1, 128))},
			[]gt{out(tensor.Uint8, []int{2, 3, 6}, kerneltest.Q(0.1, 128))}},
		{"concat_int8_axis1", schema.OpConcatenation, &schema.ConcatenationOptions{Axis: 1},
			[]gt{qin(tensor.Int8, []int{2, 1, 3}, 16, q1), qin(tensor.Int8, []int{2, 2, 3}, 17, q1)}, []gt{out(tensor.Int8, []int{2, 3, 3}, q1)}},
		{"concat_int32", schema.OpConcatenation, &schema.ConcatenationOptions{Axis: 0},
			[]gt{qin(tensor.Int32, []int{2}, 20, nil), c32([]int{3}, 7, 8, 9)}, []gt{out(tensor.Int32, []int{5}, nil)}},
		{"split", schema.OpSplit, &schema.SplitOptions{NumSplits: 3}, []gt{c32([]int{}, -2), qin(tensor.Int8, []int{2, 6, 2}, 21, q1)},
			[]gt{out(tensor.Int8, []int{2, 2, 2}, q1), out(tensor.Int8, []int{2, 2, 2}, q1), out(tensor.Int8, []int{2, 2, 2}, q1)}},
		{"split_v", schema.OpSplitV, &schema.SplitOptions{NumSplits: 3}, []gt{fin([]int{3, 7}, 22), c32([]int{3}, 2, -1, 1), c32([]int{}, 1)},
			[]gt{out(tensor.Float32, []int{3, 2}, nil), out(tensor.Float32, []int{3, 4}, nil), out(tensor.Float32, []int{3, 1}, nil)}},
		{"pack", schema.OpPack, &schema.PackOptions{ValuesCount: 3, Axis: 1}, []gt{qin(tensor.Uint8, []int{2, 3}, 23, qu), qin(tensor.Uint8, []int{2, 3}, 24, qu), qin(tensor.Uint8, []int{2, 3}, 25, qu)},
			[]gt{out(tensor.Uint8, []int{2, 3, 3}, qu)}},
		{"unpack", schema.OpUnpack, &schema.UnpackOptions{Num: 2, Axis: -1}, []gt{fin([]int{3, 2}, 26)},
			[]gt{out(tensor.Float32, []int{3}, nil), out(tensor.Float32, []int{3}, nil)}},
		{"slice", schema.OpSlice, nil, []gt{qin(tensor.Int8, []int{3, 4, 5}, 27, q1), c32([]int{3}, 1, 0, 2), c32([]int{3}, 2, -1, 2)}, []gt{out(tensor.Int8, []int{2, 4, 2}, q1)}},
		{"slice_int64", schema.OpSlice, nil, []gt{fin([]int{4, 3}, 28), c64([]int{2}, 2, 1), c64([]int{2}, -1, 1)}, []gt{out(tensor.Float32, []int{2, 1}, nil)}},
		{"strided_basic", schema.OpStridedSlice, &schema.StridedSliceOptions{}, []gt{fin([]int{4, 5}, 29), c32([]int{2}, 1, -1), c32([]int{2}, 4, 0), c32([]int{2}, 2, -2)}, []gt{out(tensor.Float32, []int{2, 2}, nil)}},
		{"strided_masks", schema.OpStridedSlice, &schema.StridedSliceOptions{BeginMask: 1, EndMask: 4, ShrinkAxisMask: 2},
			[]gt{qin(tensor.Int8, []int{3, 4, 5}, 30, q1), c32([]int{3}, 2, -1, 1), c32([]int{3}, 0, 0, 3), c32([]int{3}, 1, 1, 2)}, []gt{out(tensor.Int8, []int{3, 2}, q1)}},
		{"strided_negative", schema.OpStridedSlice, &schema.StridedSliceOptions{BeginMask: 2, EndMask: 2},
			[]gt{qin(tensor.Int32, []int{5, 6}, 31, nil), c32([]int{2}, -1, 0), c32([]int{2}, -6, 0), c32([]int{2}, -2, -1)}, []gt{out(tensor.Int32, []int{3, 6}, nil)}},
		{"strided_ellipsis", schema.OpStridedSlice, &schema.StridedSliceOptions{EllipsisMask: 1},
			[]gt{fin([]int{2, 3, 4}, 32), c32([]int{2}, 0, 1), c32([]int{2}, 0, 3), c32([]int{2}, 1, 1)}, []gt{out(tensor.Float32, []int{2, 3, 2}, nil)}},
		{"strided_new_axis", schema.OpStridedSlice, &schema.StridedSliceOptions{NewAxisMask: 2, ShrinkAxisMask: 1},
			[]gt{qin(tensor.Uint8, []int{3, 4}, 33, qu), c32([]int{3}, 1, 0, 1), c32([]int{3}, 2, 1, 4), c32([]int{3}, 1, 1, 1)}, []gt{out(tensor.Uint8, []int{1, 3}, qu)}},
		{"strided_shrink_all", schema.OpStridedSlice, &schema.StridedSliceOptions{ShrinkAxisMask: 3},
			[]gt{qin(tensor.Int32, []int{3, 4}, 34, nil), c32([]int{2}, -1, 2), c32([]int{2}, 0, 0), c32([]int{2}, 1, 1)}, []gt{out(tensor.Int32, []int{}, nil)}},
		{"strided_4d_clamp", schema.OpStridedSlice, &schema.StridedSliceOptions{EndMask: 8},
			[]gt{qin(tensor.Int16, []int{2, 3, 4, 3}, 35, nil), c32([]int{4}, -5, 1, 0, 1), c32([]int{4}, 9, 3, 100, 0), c32([]int{4}, 1, 1, 3, 1)}, []gt{out(tensor.Int16, []int{2, 2, 2, 2}, nil)}},
		{"gather_axis1", schema.OpGather, &schema.GatherOptions{Axis: 1}, []gt{fin([]int{2, 4, 3}, 36), c32([]int{2, 2}, 3, 0, 1, 3)}, []gt{out(tensor.Float32, []int{2, 2, 2, 3}, nil)}},
		{"gather_int64_negaxis", schema.OpGather, &schema.GatherOptions{Axis: -1}, []gt{qin(tensor.Int8, []int{3, 5}, 37, q1), c64([]int{3}, 4, 4, 0)}, []gt{out(tensor.Int8, []int{3, 3}, q1)}},
		{"gather_batch_dims", schema.OpGather, &schema.GatherOptions{Axis: 1, BatchDims: 1}, []gt{qin(tensor.Uint8, []int{2, 4, 2}, 38, qu), c32([]int{2, 3}, 0, 3, 1, 2, 2, 0)}, []gt{out(tensor.Uint8, []int{2, 3, 2}, qu)}},
		{"gather_scalar_index", schema.OpGather, &schema.GatherOptions{Axis: 0}, []gt{qin(tensor.Int32, []int{4, 2}, 39, nil), c32([]int{}, 2)}, []gt{out(tensor.Int32, []int{2}, nil)}},
		{"gather_nd", schema.OpGatherND, nil, []gt{qin(tensor.Int8, []int{3, 4, 2}, 40, q1), c32([]int{3, 2}, 0, 1, 2, 3, 1, 0)}, []gt{out(tensor.Int8, []int{3, 2}, q1)}},
		{"gather_nd_full", schema.OpGatherND, nil, []gt{fin([]int{2, 3}, 41), c64([]int{2, 1, 2}, 1, 2, 0, 0)}, []gt{out(tensor.Float32, []int{2, 1}, nil)}},
		{"tile", schema.OpTile, nil, []gt{qin(tensor.Int8, []int{2, 3}, 42, q1), c32([]int{2}, 2, 3)}, []gt{out(tensor.Int8, []int{4, 9}, q1)}},
		{"tile_3d_float", schema.OpTile, nil, []gt{fin([]int{1, 2, 2}, 43), c64([]int{3}, 2, 1, 2)}, []gt{out(tensor.Float32, []int{2, 2, 4}, nil)}},
		{"space_to_depth", schema.OpSpaceToDepth, &schema.BlockOptions{BlockSize: 2}, []gt{qin(tensor.Uint8, []int{1, 4, 6, 3}, 44, qu)}, []gt{out(tensor.Uint8, []int{1, 2, 3, 12}, qu)}},
		{"depth_to_space", schema.OpDepthToSpace, &schema.BlockOptions{BlockSize: 2}, []gt{fin([]int{2, 2, 3, 8}, 45)}, []gt{out(tensor.Float32, []int{2, 4, 6, 2}, nil)}},
		{"depth_to_space_int8", schema.OpDepthToSpace, &schema.BlockOptions{BlockSize: 3}, []gt{qin(tensor.Int8, []int{1, 2, 1, 9}, 46, q1)}, []gt{out(tensor.Int8, []int{1, 6, 3, 1}, q1)}},
		{"fill", schema.OpFill, nil, []gt{c32([]int{2}, 2, 3), {Type: tensor.Float32, Shape: []int{}, Data: kerneltest.F32(1.25)}}, []gt{out(tensor.Float32, []int{2, 3}, nil)}},
		{"shape", schema.OpShape, &schema.ShapeOptions{OutType: tensor.Int32}, []gt{fin([]int{2, 3, 5}, 47)}, []gt{out(tensor.Int32, []int{3}, nil)}},
		{"pad_5d", schema.OpPad, nil, []gt{fin([]int{1, 2, 1, 2, 2}, 51), c32([]int{5, 2}, 0, 1, 1, 0, 0, 0, 2, 1, 1, 1)}, []gt{out(tensor.Float32, []int{2, 3, 1, 5, 4}, nil)}},
		{"padv2_int8", schema.OpPadV2, nil, []gt{qin(tensor.Int8, []int{2, 2}, 52, q2), c32([]int{2, 2}, 1, 0, 0, 2),
			{Type: tensor.Int8, Shape: []int{1}, Data: kerneltest.I8(-100), Quant: q2, Const: true}}, []gt{out(tensor.Int8, []int{3, 4}, q2)}},
		{"slice_5d", schema.OpSlice, nil, []gt{qin(tensor.Int16, []int{2, 3, 2, 2, 3}, 53, nil), c32([]int{5}, 1, 1, 0, 1, 0), c32([]int{5}, 1, 2, -1, 1, 2)}, []gt{out(tensor.Int16, []int{1, 2, 2, 1, 2}, nil)}},
		{"strided_5d", schema.OpStridedSlice, &schema.StridedSliceOptions{BeginMask: 4, ShrinkAxisMask: 1},
			[]gt{fin([]int{2, 3, 4, 2, 3}, 54), c32([]int{5}, 1, 0, 3, 0, -1), c32([]int{5}, 2, 3, 0, 2, -4), c32([]int{5}, 1, 2, 2, 1, -1)}, []gt{out(tensor.Float32, []int{2, 2, 2, 3}, nil)}},
		{"gather_nd_int64_idx", schema.OpGatherND, nil, []gt{qin(tensor.Int8, []int{2, 3, 4}, 55, q1), c64([]int{2, 2, 2}, 1, 2, 0, 0, 1, 0, 0, 2)}, []gt{out(tensor.Int8, []int{2, 2, 4}, q1)}},
		{"tile_int64", schema.OpTile, nil, []gt{qin(tensor.Int64, []int{2, 1}, 56, nil), c32([]int{2}, 2, 3)}, []gt{out(tensor.Int64, []int{4, 3}, nil)}},
		{"fill_int64_dims", schema.OpFill, nil, []gt{c64([]int{3}, 2, 1, 2), {Type: tensor.Int32, Shape: []int{}, Data: kerneltest.I32(-77)}}, []gt{out(tensor.Int32, []int{2, 1, 2}, nil)}},
		{"split_v_int8", schema.OpSplitV, &schema.SplitOptions{NumSplits: 2}, []gt{qin(tensor.Int8, []int{2, 5, 2}, 57, q1), c32([]int{2}, -1, 4), c32([]int{1}, -2)},
			[]gt{out(tensor.Int8, []int{2, 1, 2}, q1), out(tensor.Int8, []int{2, 4, 2}, q1)}},
		{"unpack_int8_axis1", schema.OpUnpack, &schema.UnpackOptions{Num: 3, Axis: 1}, []gt{qin(tensor.Int8, []int{2, 3, 2}, 58, q1)},
			[]gt{out(tensor.Int8, []int{2, 2}, q1), out(tensor.Int8, []int{2, 2}, q1), out(tensor.Int8, []int{2, 2}, q1)}},
		{"space_to_depth_int8", schema.OpSpaceToDepth, &schema.BlockOptions{BlockSize: 3}, []gt{qin(tensor.Int8, []int{2, 3, 6, 2}, 59, q1)}, []gt{out(tensor.Int8, []int{2, 1, 2, 18}, q1)}},
		{"depth_to_space_int32", schema.OpDepthToSpace, &schema.BlockOptions{BlockSize: 2}, []gt{qin(tensor.Int32, []int{1, 2, 2, 4}, 60, nil)}, []gt{out(tensor.Int32, []int{1, 4, 4, 1}, nil)}},
		{"expand_dims_int64_axis", schema.OpExpandDims, nil, []gt{fin([]int{2, 3}, 61), c64([]int{}, -3)}, []gt{out(tensor.Float32, []int{1, 2, 3}, nil)}},
		{"squeeze_all", schema.OpSqueeze, &schema.SqueezeOptions{}, []gt{fin([]int{1, 3, 1}, 62)}, []gt{out(tensor.Float32, []int{3}, nil)}},
		{"reshape_tensor_wins", schema.OpReshape, &schema.ReshapeOptions{NewShape: []int{12}}, []gt{qin(tensor.Uint8, []int{3, 4}, 63, qu), c32([]int{3}, 2, 2, 3)}, []gt{out(tensor.Uint8, []int{2, 2, 3}, qu)}},
		{"pack_int64_axis0", schema.OpPack, &schema.PackOptions{ValuesCount: 2, Axis: 0}, []gt{qin(tensor.Int64, []int{3}, 64, nil), c64([]int{3}, 1, 2, 3)}, []gt{out(tensor.Int64, []int{2, 3}, nil)}},
		{"gather_int16_params", schema.OpGather, &schema.GatherOptions{Axis: 0}, []gt{qin(tensor.Int16, []int{4, 3}, 65, nil), c32([]int{3}, 3, 1, 3)}, []gt{out(tensor.Int16, []int{3, 3}, nil)}},
		{"concat_int16", schema.OpConcatenation, &schema.ConcatenationOptions{Axis: -2},
			[]gt{qin(tensor.Int16, []int{2, 1, 2}, 66, kerneltest.Q(0.01, 0)), qin(tensor.Int16, []int{2, 2, 2}, 67, kerneltest.Q(0.01, 0))}, []gt{out(tensor.Int16, []int{2, 3, 2}, kerneltest.Q(0.01, 0))}},
		{"concat_uint8_axis0_rescale", schema.OpConcatenation, &schema.ConcatenationOptions{Axis: 0},
			[]gt{qin(tensor.Uint8, []int{4, 2}, 68, kerneltest.Q(0.3, 250)), qin(tensor.Uint8, []int{1, 2}, 69, kerneltest.Q(0.007, 0))}, []gt{out(tensor.Uint8, []int{5, 2}, kerneltest.Q(0.02, 30))}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kerneltest.GoldenOp(t, c.name, c.op, c.opts, c.ins, c.outs)
		})
	}
}
