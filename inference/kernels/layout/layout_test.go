package layout_test

import (
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
	"github.com/edgefleet/edgefleet/quant"
)

var (
	k   = kerneltest.New
	rt  = kerneltest.Runtime
	f   = tensor.Float32
	I32 = tensor.Int32
)

func iota(n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = float64(i)
	}
	return v
}

func outT(d tensor.DType) *tensor.Tensor { return k(d, nil, nil, nil) }

type unitCase struct {
	name   string
	op     schema.BuiltinOperator
	opts   any
	inputs []*tensor.Tensor
	shape  []int
	want   []float64
	errSub string // non-empty: Run must fail with an error containing it
}

func runCases(t *testing.T, cases []unitCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := outT(c.inputs[0].Type)
			if c.op == schema.OpFill {
				o = outT(c.inputs[1].Type)
			}
			if c.op == schema.OpShape {
				o = outT(I32)
			}
			o.Quant = c.inputs[0].Quant // as converters write for data-movement ops
			err := kerneltest.Run(t, c.op, c.opts, c.inputs, o)
			if c.errSub != "" {
				if err == nil || !strings.Contains(err.Error(), c.errSub) {
					t.Fatalf("error %v, want one containing %q", err, c.errSub)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			kerneltest.Expect(t, o, c.shape, c.want, 0)
		})
	}
}

func TestReshapeFamily(t *testing.T) {
	runCases(t, []unitCase{
		{name: "reshape infer", op: schema.OpReshape, inputs: []*tensor.Tensor{k(f, []int{2, 3}, iota(6), nil), k(I32, []int{2}, []float64{-1, 2}, nil)}, shape: []int{3, 2}, want: iota(6)},
		{name: "reshape runtime shape", op: schema.OpReshape, inputs: []*tensor.Tensor{k(f, []int{2, 3}, iota(6), nil), rt(k(I32, []int{3}, []float64{3, 1, 2}, nil))}, shape: []int{3, 1, 2}, want: iota(6)},
		{name: "reshape int64 shape", op: schema.OpReshape, inputs: []*tensor.Tensor{k(tensor.Int8, []int{4}, []float64{1, -2, 3, -4}, nil), k(tensor.Int64, []int{2}, []float64{2, 2}, nil)}, shape: []int{2, 2}, want: []float64{1, -2, 3, -4}},
		{name: "reshape options", op: schema.OpReshape, opts: &schema.ReshapeOptions{NewShape: []int{1, -1}}, inputs: []*tensor.Tensor{k(tensor.Bool, []int{3}, []float64{1, 0, 1}, nil)}, shape: []int{1, 3}, want: []float64{1, 0, 1}},
		{name: "reshape legacy scalar", op: schema.OpReshape, opts: &schema.ReshapeOptions{NewShape: []int{0}}, inputs: []*tensor.Tensor{k(tensor.Int64, []int{1, 1}, []float64{42}, nil)}, shape: []int{}, want: []float64{42}},
		{name: "reshape empty shape tensor", op: schema.OpReshape, inputs: []*tensor.Tensor{k(f, []int{1}, []float64{5}, nil), k(I32, []int{0}, []float64{}, nil)}, shape: []int{}, want: []float64{5}},
		{name: "reshape zero elements", op: schema.OpReshape, inputs: []*tensor.Tensor{k(f, []int{0, 3}, []float64{}, nil), k(I32, []int{2}, []float64{-1, 3}, nil)}, shape: []int{0, 3}, want: []float64{}},
		{name: "reshape two -1", op: schema.OpReshape, inputs: []*tensor.Tensor{k(f, []int{2, 3}, iota(6), nil), k(I32, []int{2}, []float64{-1, -1}, nil)}, errSub: "more than one -1"},
		{name: "reshape count mismatch", op: schema.OpReshape, inputs: []*tensor.Tensor{k(f, []int{2, 3}, iota(6), nil), k(I32, []int{2}, []float64{4, 2}, nil)}, errSub: "has 8 elements, the input has 6"},
		{name: "squeeze all", op: schema.OpSqueeze, inputs: []*tensor.Tensor{k(tensor.Uint8, []int{1, 2, 1, 1}, []float64{7, 9}, nil)}, shape: []int{2}, want: []float64{7, 9}},
		{name: "squeeze non-unit", op: schema.OpSqueeze, opts: &schema.SqueezeOptions{SqueezeDims: []int{1}}, inputs: []*tensor.Tensor{k(f, []int{1, 2}, []float64{1, 2}, nil)}, errSub: "expected 1"},
		{name: "squeeze bad axis", op: schema.OpSqueeze, opts: &schema.SqueezeOptions{SqueezeDims: []int{2}}, inputs: []*tensor.Tensor{k(f, []int{1, 2}, []float64{1, 2}, nil)}, errSub: "out of range"},
		{name: "expand_dims front", op: schema.OpExpandDims, inputs: []*tensor.Tensor{k(tensor.Int16, []int{2}, []float64{-3, 4}, nil), k(tensor.Int64, []int{}, []float64{0}, nil)}, shape: []int{1, 2}, want: []float64{-3, 4}},
		{name: "expand_dims runtime axis", op: schema.OpExpandDims, inputs: []*tensor.Tensor{k(f, []int{2}, []float64{1, 2}, nil), rt(k(I32, []int{1}, []float64{-1}, nil))}, shape: []int{2, 1}, want: []float64{1, 2}},
		{name: "expand_dims bad axis", op: schema.OpExpandDims, inputs: []*tensor.Tensor{k(f, []int{2}, []float64{1, 2}, nil), k(I32, []int{1}, []float64{3}, nil)}, errSub: "out of range"},
		{name: "shape", op: schema.OpShape, inputs: []*tensor.Tensor{rt(k(f, []int{2, 0, 7}, []float64{}, nil))}, shape: []int{3}, want: []float64{2, 0, 7}},
		{name: "fill int8", op: schema.OpFill, inputs: []*tensor.Tensor{k(I32, []int{2}, []float64{2, 3}, nil), k(tensor.Int8, []int{}, []float64{-5}, nil)}, shape: []int{2, 3}, want: []float64{-5, -5, -5, -5, -5, -5}},
		{name: "fill runtime dims int64", op: schema.OpFill, inputs: []*tensor.Tensor{rt(k(tensor.Int64, []int{1}, []float64{3}, nil)), k(tensor.Bool, []int{}, []float64{1}, nil)}, shape: []int{3}, want: []float64{1, 1, 1}},
		{name: "fill negative", op: schema.OpFill, inputs: []*tensor.Tensor{k(I32, []int{1}, []float64{-1}, nil), k(f, []int{}, []float64{1}, nil)}, errSub: "negative"},
	})
}

func TestShapeIsPersistent(t *testing.T) {
	in := rt(k(f, []int{4, 5}, iota(20), nil))
	o := outT(tensor.Int64)
	if err := kerneltest.Run(t, schema.OpShape, &schema.ShapeOptions{OutType: tensor.Int64}, []*tensor.Tensor{in}, o); err != nil {
		t.Fatal(err)
	}
	if o.Alloc != tensor.PersistentAlloc || !o.KnownAtPrepare {
		t.Fatalf("SHAPE output alloc %v known %v, want persistent and known at prepare", o.Alloc, o.KnownAtPrepare)
	}
	kerneltest.Expect(t, o, []int{2}, []float64{4, 5}, 0)
}

// TestShapeChainFolds checks that an op whose inputs are all known at
// prepare (here STRIDED_SLICE of a SHAPE result) is evaluated then, so a
// downstream RESHAPE stays static.
func TestShapeChainFolds(t *testing.T) {
	shapeOut := outT(I32)
	if err := kerneltest.Run(t, schema.OpShape, &schema.ShapeOptions{OutType: I32}, []*tensor.Tensor{rt(k(f, []int{3, 4, 5}, iota(60), nil))}, shapeOut); err != nil {
		t.Fatal(err)
	}
	sl := outT(I32)
	err := kerneltest.Run(t, schema.OpStridedSlice, &schema.StridedSliceOptions{},
		[]*tensor.Tensor{shapeOut, k(I32, []int{1}, []float64{1}, nil), k(I32, []int{1}, []float64{3}, nil), k(I32, []int{1}, []float64{1}, nil)}, sl)
	if err != nil {
		t.Fatal(err)
	}
	if !sl.KnownAtPrepare {
		t.Fatal("STRIDED_SLICE of a known SHAPE was not folded at prepare")
	}
	kerneltest.Expect(t, sl, []int{2}, []float64{4, 5}, 0)
}

func TestTransposeAndSpace(t *testing.T) {
	// [2,3] -> [3,2]
	runCases(t, []unitCase{
		{name: "transpose 2d", op: schema.OpTranspose, inputs: []*tensor.Tensor{k(f, []int{2, 3}, iota(6), nil), k(I32, []int{2}, []float64{1, 0}, nil)}, shape: []int{3, 2}, want: []float64{0, 3, 1, 4, 2, 5}},
		{name: "transpose 6d int16", op: schema.OpTranspose, inputs: []*tensor.Tensor{k(tensor.Int16, []int{1, 2, 1, 2, 1, 2}, iota(8), nil), k(I32, []int{6}, []float64{5, 4, 3, 2, 1, 0}, nil)},
			shape: []int{2, 1, 2, 1, 2, 1}, want: []float64{0, 4, 2, 6, 1, 5, 3, 7}},
		{name: "transpose runtime perm bool", op: schema.OpTranspose, inputs: []*tensor.Tensor{k(tensor.Bool, []int{2, 2}, []float64{1, 0, 0, 0}, nil), rt(k(I32, []int{2}, []float64{1, 0}, nil))}, shape: []int{2, 2}, want: []float64{1, 0, 0, 0}},
		{name: "transpose not a permutation", op: schema.OpTranspose, inputs: []*tensor.Tensor{k(f, []int{2, 3}, iota(6), nil), k(I32, []int{2}, []float64{1, 1}, nil)}, errSub: "not a permutation"},
		{name: "transpose rank 7", op: schema.OpTranspose, inputs: []*tensor.Tensor{k(f, []int{1, 1, 1, 1, 1, 1, 1}, iota(1), nil), k(I32, []int{7}, iota(7), nil)}, errSub: "at most 6"},
		// SPACE_TO_DEPTH [1,2,2,1] block 2 -> [1,1,1,4]
		{name: "space_to_depth", op: schema.OpSpaceToDepth, opts: &schema.BlockOptions{BlockSize: 2}, inputs: []*tensor.Tensor{k(tensor.Int64, []int{1, 2, 2, 2}, iota(8), nil)}, shape: []int{1, 1, 1, 8}, want: iota(8)},
		{name: "space_to_depth 4x4", op: schema.OpSpaceToDepth, opts: &schema.BlockOptions{BlockSize: 2}, inputs: []*tensor.Tensor{k(tensor.Int8, []int{1, 4, 4, 1}, iota(16), nil)},
			shape: []int{1, 2, 2, 4}, want: []float64{0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15}},
		{name: "depth_to_space 4x4", op: schema.OpDepthToSpace, opts: &schema.BlockOptions{BlockSize: 2}, inputs: []*tensor.Tensor{k(tensor.Int8, []int{1, 2, 2, 4}, []float64{0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15}, nil)},
			shape: []int{1, 4, 4, 1}, want: iota(16)},
		{name: "space_to_depth indivisible", op: schema.OpSpaceToDepth, opts: &schema.BlockOptions{BlockSize: 2}, inputs: []*tensor.Tensor{k(f, []int{1, 3, 2, 1}, iota(6), nil)}, errSub: "multiples of the block size"},
		{name: "depth_to_space zero block", op: schema.OpDepthToSpace, opts: &schema.BlockOptions{BlockSize: 0}, inputs: []*tensor.Tensor{k(f, []int{1, 1, 1, 4}, iota(4), nil)}, errSub: "block size 0"},
	})
}

func TestPad(t *testing.T) {
	q := kerneltest.Q(0.5, -3)
	runCases(t, []unitCase{
		{name: "pad int8 zero point", op: schema.OpPad, inputs: []*tensor.Tensor{k(tensor.Int8, []int{2}, []float64{1, 2}, q), k(I32, []int{1, 2}, []float64{1, 2}, nil)}, shape: []int{5}, want: []float64{-3, 1, 2, -3, -3}},
		{name: "pad int64 paddings", op: schema.OpPad, inputs: []*tensor.Tensor{k(f, []int{1, 2}, []float64{1, 2}, nil), k(tensor.Int64, []int{2, 2}, []float64{1, 0, 0, 1}, nil)}, shape: []int{2, 3}, want: []float64{0, 0, 0, 1, 2, 0}},
		{name: "pad runtime paddings", op: schema.OpPad, inputs: []*tensor.Tensor{k(tensor.Int32, []int{2}, []float64{5, 6}, nil), rt(k(I32, []int{1, 2}, []float64{0, 1}, nil))}, shape: []int{3}, want: []float64{5, 6, 0}},
		{name: "padv2 int16 value", op: schema.OpPadV2, inputs: []*tensor.Tensor{k(tensor.Int16, []int{1, 1}, []float64{9}, nil), k(I32, []int{2, 2}, []float64{1, 0, 0, 1}, nil), k(tensor.Int16, []int{}, []float64{-300}, nil)}, shape: []int{2, 2}, want: []float64{-300, -300, 9, -300}},
		{name: "pad scalar", op: schema.OpPad, inputs: []*tensor.Tensor{k(f, []int{}, []float64{3}, nil), k(I32, []int{0, 2}, []float64{}, nil)}, shape: []int{}, want: []float64{3}},
		{name: "pad negative", op: schema.OpPad, inputs: []*tensor.Tensor{k(f, []int{2}, []float64{1, 2}, nil), k(I32, []int{1, 2}, []float64{-1, 0}, nil)}, errSub: "negative"},
		{name: "pad bad paddings shape", op: schema.OpPad, inputs: []*tensor.Tensor{k(f, []int{2}, []float64{1, 2}, nil), k(I32, []int{2}, []float64{1, 0}, nil)}, errSub: "expected [1,2]"},
	})
}

func TestConcatPackSplit(t *testing.T) {
	// Rescaling: input scale 0.5 zp 0 into output scale 1 zp 10:
	// q' = round(q*0.5) + 10 (half away from zero).
	qin := kerneltest.Q(0.5, 0)
	qout := kerneltest.Q(1, 10)
	a := k(tensor.Uint8, []int{3}, []float64{1, 3, 255}, qin)
	b := k(tensor.Uint8, []int{1}, []float64{77}, qout)
	o := outT(tensor.Uint8)
	o.Quant = qout
	if err := kerneltest.Run(t, schema.OpConcatenation, &schema.ConcatenationOptions{Axis: 0}, []*tensor.Tensor{a, b}, o); err != nil {
		t.Fatal(err)
	}
	kerneltest.Expect(t, o, []int{4}, []float64{11, 12, 138, 77}, 0)

	// Fused activation (an extension: TensorFlow Lite rejects it).
	of := outT(f)
	if err := kerneltest.Run(t, schema.OpConcatenation, &schema.ConcatenationOptions{Axis: -1, Activation: quant.ActRelu6},
		[]*tensor.Tensor{k(f, []int{1, 2}, []float64{-1, 7}, nil), k(f, []int{1, 1}, []float64{3}, nil)}, of); err != nil {
		t.Fatal(err)
	}
	kerneltest.Expect(t, of, []int{1, 3}, []float64{0, 6, 3}, 0)

	runCases(t, []unitCase{
		{name: "concat axis 1", op: schema.OpConcatenation, opts: &schema.ConcatenationOptions{Axis: 1}, inputs: []*tensor.Tensor{k(tensor.Int64, []int{2, 1}, []float64{1, 2}, nil), k(tensor.Int64, []int{2, 2}, []float64{3, 4, 5, 6}, nil)},
			shape: []int{2, 3}, want: []float64{1, 3, 4, 2, 5, 6}},
		{name: "concat mismatch", op: schema.OpConcatenation, opts: &schema.ConcatenationOptions{Axis: 1}, inputs: []*tensor.Tensor{k(f, []int{2, 1}, []float64{1, 2}, nil), k(f, []int{3, 1}, []float64{3, 4, 5}, nil)}, errSub: "incompatible"},
		{name: "concat bad axis", op: schema.OpConcatenation, opts: &schema.ConcatenationOptions{Axis: 2}, inputs: []*tensor.Tensor{k(f, []int{2, 1}, []float64{1, 2}, nil)}, errSub: "out of range"},
		{name: "pack axis -1", op: schema.OpPack, opts: &schema.PackOptions{ValuesCount: 2, Axis: -1}, inputs: []*tensor.Tensor{k(tensor.Bool, []int{2}, []float64{1, 0}, nil), k(tensor.Bool, []int{2}, []float64{0, 1}, nil)},
			shape: []int{2, 2}, want: []float64{1, 0, 0, 1}},
		{name: "pack scalars", op: schema.OpPack, opts: &schema.PackOptions{ValuesCount: 3}, inputs: []*tensor.Tensor{k(I32, []int{}, []float64{4}, nil), rt(k(I32, []int{}, []float64{5}, nil)), k(I32, []int{}, []float64{6}, nil)},
			shape: []int{3}, want: []float64{4, 5, 6}},
		{name: "pack shape mismatch", op: schema.OpPack, opts: &schema.PackOptions{ValuesCount: 2}, inputs: []*tensor.Tensor{k(f, []int{2}, []float64{1, 2}, nil), k(f, []int{1}, []float64{3}, nil)}, errSub: "expected [2]"},
	})

	// SPLIT with a run-time axis (dynamic outputs).
	in := k(tensor.Int8, []int{2, 4}, iota(8), nil)
	o1, o2 := outT(tensor.Int8), outT(tensor.Int8)
	if err := kerneltest.Run(t, schema.OpSplit, &schema.SplitOptions{NumSplits: 2}, []*tensor.Tensor{rt(k(I32, []int{}, []float64{1}, nil)), in}, o1, o2); err != nil {
		t.Fatal(err)
	}
	kerneltest.Expect(t, o1, []int{2, 2}, []float64{0, 1, 4, 5}, 0)
	kerneltest.Expect(t, o2, []int{2, 2}, []float64{2, 3, 6, 7}, 0)
	if err := kerneltest.Run(t, schema.OpSplit, &schema.SplitOptions{NumSplits: 3}, []*tensor.Tensor{k(I32, []int{}, []float64{1}, nil), in}, outT(tensor.Int8), outT(tensor.Int8), outT(tensor.Int8)); err == nil {
		t.Fatal("SPLIT of 4 into 3 succeeded")
	}
	// SPLIT_V with -1 and a zero-sized piece.
	v1, v2, v3 := outT(f), outT(f), outT(f)
	if err := kerneltest.Run(t, schema.OpSplitV, &schema.SplitOptions{NumSplits: 3},
		[]*tensor.Tensor{k(f, []int{5}, iota(5), nil), k(tensor.Int64, []int{3}, []float64{0, -1, 2}, nil), k(I32, []int{}, []float64{-1}, nil)}, v1, v2, v3); err != nil {
		t.Fatal(err)
	}
	kerneltest.Expect(t, v1, []int{0}, []float64{}, 0)
	kerneltest.Expect(t, v2, []int{3}, []float64{0, 1, 2}, 0)
	kerneltest.Expect(t, v3, []int{2}, []float64{3, 4}, 0)
	if err := kerneltest.Run(t, schema.OpSplitV, nil,
		[]*tensor.Tensor{k(f, []int{5}, iota(5), nil), k(I32, []int{2}, []float64{1, 1}, nil), k(I32, []int{}, []float64{0}, nil)}, outT(f), outT(f)); err == nil {
		t.Fatal("SPLIT_V with sizes not adding up succeeded")
	}
	// UNPACK along axis 0.
	u1, u2 := outT(tensor.Uint8), outT(tensor.Uint8)
	if err := kerneltest.Run(t, schema.OpUnpack, &schema.UnpackOptions{Num: 2}, []*tensor.Tensor{k(tensor.Uint8, []int{2, 3}, iota(6), nil)}, u1, u2); err != nil {
		t.Fatal(err)
	}
	kerneltest.Expect(t, u1, []int{3}, []float64{0, 1, 2}, 0)
	kerneltest.Expect(t, u2, []int{3}, []float64{3, 4, 5}, 0)
}

func TestSlices(t *testing.T) {
	in := func() *tensor.Tensor { return k(f, []int{3, 4}, iota(12), nil) }
	v := func(x ...float64) *tensor.Tensor { return k(I32, []int{len(x)}, x, nil) }
	ss := func(o schema.StridedSliceOptions) *schema.StridedSliceOptions { return &o }
	runCases(t, []unitCase{
		{name: "slice", op: schema.OpSlice, inputs: []*tensor.Tensor{in(), v(1, 1), v(-1, 2)}, shape: []int{2, 2}, want: []float64{5, 6, 9, 10}},
		{name: "slice runtime", op: schema.OpSlice, inputs: []*tensor.Tensor{in(), rt(v(0, 3)), v(3, 1)}, shape: []int{3, 1}, want: []float64{3, 7, 11}},
		{name: "slice out of range", op: schema.OpSlice, inputs: []*tensor.Tensor{in(), v(2, 0), v(2, 1)}, errSub: "exceeds"},
		{name: "slice bad size", op: schema.OpSlice, inputs: []*tensor.Tensor{in(), v(0, 0), v(-2, 1)}, errSub: "negative size"},
		{name: "strided reverse", op: schema.OpStridedSlice, opts: ss(schema.StridedSliceOptions{BeginMask: 3, EndMask: 3}), inputs: []*tensor.Tensor{in(), v(0, 0), v(0, 0), v(-1, -2)},
			shape: []int{3, 2}, want: []float64{11, 9, 7, 5, 3, 1}},
		{name: "strided shrink", op: schema.OpStridedSlice, opts: ss(schema.StridedSliceOptions{ShrinkAxisMask: 1}), inputs: []*tensor.Tensor{in(), v(-1, 1), v(0, 3), v(1, 1)},
			shape: []int{2}, want: []float64{9, 10}},
		{name: "strided offset", op: schema.OpStridedSlice, opts: ss(schema.StridedSliceOptions{Offset: true}), inputs: []*tensor.Tensor{in(), v(1, 1), v(2, 2), v(1, 1)},
			shape: []int{2, 2}, want: []float64{5, 6, 9, 10}},
		{name: "strided new axis and ellipsis", op: schema.OpStridedSlice, opts: ss(schema.StridedSliceOptions{EllipsisMask: 2, NewAxisMask: 1}), inputs: []*tensor.Tensor{in(), v(0, 0, 1), v(1, 0, 2), v(1, 1, 1)},
			shape: []int{1, 3, 1}, want: []float64{1, 5, 9}},
		{name: "strided empty", op: schema.OpStridedSlice, opts: ss(schema.StridedSliceOptions{}), inputs: []*tensor.Tensor{in(), v(2, 0), v(1, 4), v(1, 1)}, shape: []int{0, 4}, want: []float64{}},
		{name: "strided runtime", op: schema.OpStridedSlice, opts: ss(schema.StridedSliceOptions{}), inputs: []*tensor.Tensor{in(), rt(v(0, 1)), v(3, 4), v(2, 2)}, shape: []int{2, 2}, want: []float64{1, 3, 9, 11}},
		{name: "strided zero stride", op: schema.OpStridedSlice, opts: ss(schema.StridedSliceOptions{}), inputs: []*tensor.Tensor{in(), v(0, 0), v(1, 1), v(1, 0)}, errSub: "zero stride"},
		{name: "strided shrink out of range", op: schema.OpStridedSlice, opts: ss(schema.StridedSliceOptions{ShrinkAxisMask: 1}), inputs: []*tensor.Tensor{in(), v(3, 0), v(4, 1), v(1, 1)}, errSub: "out of range"},
	})
}

func TestGatherTile(t *testing.T) {
	params := func() *tensor.Tensor { return k(f, []int{3, 2}, iota(6), nil) }
	runCases(t, []unitCase{
		{name: "gather", op: schema.OpGather, opts: &schema.GatherOptions{}, inputs: []*tensor.Tensor{params(), k(I32, []int{2}, []float64{2, 0}, nil)}, shape: []int{2, 2}, want: []float64{4, 5, 0, 1}},
		{name: "gather runtime int16 indices", op: schema.OpGather, opts: &schema.GatherOptions{Axis: 1}, inputs: []*tensor.Tensor{params(), rt(k(tensor.Int16, []int{1}, []float64{1}, nil))}, shape: []int{3, 1}, want: []float64{1, 3, 5}},
		{name: "gather out of range", op: schema.OpGather, inputs: []*tensor.Tensor{params(), rt(k(I32, []int{1}, []float64{3}, nil))}, errSub: "out of range"},
		{name: "gather negative index", op: schema.OpGather, inputs: []*tensor.Tensor{params(), k(tensor.Int64, []int{1}, []float64{-1}, nil)}, errSub: "out of range"},
		{name: "gather bad batch dims", op: schema.OpGather, opts: &schema.GatherOptions{Axis: 0, BatchDims: 1}, inputs: []*tensor.Tensor{params(), k(I32, []int{3}, []float64{0, 0, 0}, nil)}, errSub: "batch_dims"},
		{name: "gather_nd", op: schema.OpGatherND, inputs: []*tensor.Tensor{params(), k(I32, []int{2, 1}, []float64{2, 1}, nil)}, shape: []int{2, 2}, want: []float64{4, 5, 2, 3}},
		{name: "gather_nd out of range", op: schema.OpGatherND, inputs: []*tensor.Tensor{params(), rt(k(I32, []int{1, 2}, []float64{3, 0}, nil))}, errSub: "outside params"},
		{name: "gather_nd too deep", op: schema.OpGatherND, inputs: []*tensor.Tensor{params(), k(I32, []int{1, 3}, []float64{0, 0, 0}, nil)}, errSub: "exceeds params rank"},
		{name: "tile", op: schema.OpTile, inputs: []*tensor.Tensor{k(tensor.Int16, []int{2}, []float64{1, 2}, nil), k(I32, []int{1}, []float64{3}, nil)}, shape: []int{6}, want: []float64{1, 2, 1, 2, 1, 2}},
		{name: "tile 2d runtime", op: schema.OpTile, inputs: []*tensor.Tensor{k(tensor.Bool, []int{1, 2}, []float64{1, 0}, nil), rt(k(tensor.Int64, []int{2}, []float64{2, 1}, nil))}, shape: []int{2, 2}, want: []float64{1, 0, 1, 0}},
		{name: "tile zero", op: schema.OpTile, inputs: []*tensor.Tensor{k(f, []int{2}, []float64{1, 2}, nil), k(I32, []int{1}, []float64{0}, nil)}, shape: []int{0}, want: []float64{}},
		{name: "tile negative", op: schema.OpTile, inputs: []*tensor.Tensor{k(f, []int{2}, []float64{1, 2}, nil), k(I32, []int{1}, []float64{-1}, nil)}, errSub: "negative"},
	})
}
