package elementwise

import (
	"math"
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
	"github.com/edgefleet/edgefleet/quant"
)

var (
	mk = kerneltest.New
	q  = kerneltest.Q
)

// out returns an output tensor template.
func out(dt tensor.DType, qp *tensor.Quantization) *tensor.Tensor {
	return mk(dt, nil, nil, qp)
}

func act(a quant.Activation) *schema.ActivationOptions {
	return &schema.ActivationOptions{Activation: a, PotScaleInt16: true}
}

type opCase struct {
	name  string
	op    schema.BuiltinOperator
	opts  any
	in    []*tensor.Tensor
	out   *tensor.Tensor
	shape []int
	want  []float64
	tol   float64
}

func runCases(t *testing.T, cases []opCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := kerneltest.Run(t, c.op, c.opts, c.in, c.out); err != nil {
				t.Fatal(err)
			}
			kerneltest.Expect(t, c.out, c.shape, c.want, c.tol)
		})
	}
}

const (
	f32 = tensor.Float32
	i8  = tensor.Int8
	u8  = tensor.Uint8
	i16 = tensor.Int16
	i32 = tensor.Int32
	i64 = tensor.Int64
	bl  = tensor.Bool
)

func TestArithmetic(t *testing.T) {
	maxF := float64(math.MaxFloat32)
	runCases(t, []opCase{
		{"add f32 broadcast relu6", schema.OpAdd, act(quant.ActRelu6),
			[]*tensor.Tensor{mk(f32, []int{2, 2}, []float64{1, -2, 3, 5}, nil), mk(f32, []int{2}, []float64{0.5, 2}, nil)},
			out(f32, nil), []int{2, 2}, []float64{1.5, 0, 3.5, 6}, 1e-6},
		{"add f32 no options", schema.OpAdd, nil,
			[]*tensor.Tensor{mk(f32, []int{2}, []float64{1, -2}, nil), mk(f32, []int{2}, []float64{0.5, -2}, nil)},
			out(f32, nil), []int{2}, []float64{1.5, -4}, 1e-6},
		{"add i32 scalar relu", schema.OpAdd, act(quant.ActRelu),
			[]*tensor.Tensor{mk(i32, []int{3}, []float64{-5, 0, 5}, nil), mk(i32, []int{}, []float64{2}, nil)},
			out(i32, nil), []int{3}, []float64{0, 2, 7}, 0},
		{"add i64", schema.OpAdd, act(quant.ActNone),
			[]*tensor.Tensor{mk(i64, []int{2}, []float64{1 << 40, -3}, nil), mk(i64, []int{2}, []float64{1, 4}, nil)},
			out(i64, nil), []int{2}, []float64{1<<40 + 1, 1}, 0},
		{"add u8", schema.OpAdd, act(quant.ActNone),
			[]*tensor.Tensor{mk(u8, []int{4}, []float64{130, 120, 128, 140}, q(0.5, 128)), mk(u8, []int{4}, []float64{132, 128, 100, 140}, q(0.5, 128))},
			out(u8, q(1, 128)), []int{4}, []float64{131, 124, 114, 140}, 0},
		{"add u8 broadcast saturates", schema.OpAdd, act(quant.ActNone),
			[]*tensor.Tensor{mk(u8, []int{2, 2}, []float64{255, 0, 130, 128}, q(0.5, 128)), mk(u8, []int{1}, []float64{255}, q(0.5, 128))},
			out(u8, q(0.5, 128)), []int{2, 2}, []float64{255, 127, 255, 255}, 0},
		{"add i16 general", schema.OpAdd, &schema.ActivationOptions{PotScaleInt16: false},
			[]*tensor.Tensor{mk(i16, []int{2}, []float64{100, -300}, q(0.5, 0)), mk(i16, []int{2}, []float64{50, 20}, q(1, 0))},
			out(i16, q(0.25, 0)), []int{2}, []float64{400, -520}, 0},
		{"add i16 pot", schema.OpAdd, act(quant.ActNone),
			[]*tensor.Tensor{mk(i16, []int{3}, []float64{100, -32768, 32767}, q(1.0/1024, 0)), mk(i16, []int{3}, []float64{6, -4, 32767}, q(1.0/4096, 0))},
			out(i16, q(1.0/1024, 0)), []int{3}, []float64{102, -32768, 32767}, 0},
		{"sub i8 relu", schema.OpSub, act(quant.ActRelu),
			[]*tensor.Tensor{mk(i8, []int{3}, []float64{8, -8, 0}, q(0.25, 0)), mk(i8, []int{3}, []float64{-6, -10, -14}, q(0.5, -10))},
			out(i8, q(0.25, 5)), []int{3}, []float64{5, 5, 13}, 0},
		{"sub f32", schema.OpSub, nil,
			[]*tensor.Tensor{mk(f32, []int{}, []float64{1}, nil), mk(f32, []int{3}, []float64{1, 2, -3}, nil)},
			out(f32, nil), []int{3}, []float64{0, -1, 4}, 1e-6},
		{"sub i16 pot shifts first input", schema.OpSub, act(quant.ActNone),
			[]*tensor.Tensor{mk(i16, []int{2}, []float64{8, -6}, q(1.0/4096, 0)), mk(i16, []int{2}, []float64{1, 1}, q(1.0/1024, 0))},
			out(i16, q(1.0/1024, 0)), []int{2}, []float64{1, -3}, 0},
		{"mul i8", schema.OpMul, act(quant.ActNone),
			[]*tensor.Tensor{mk(i8, []int{2}, []float64{4, -6}, q(0.5, 0)), mk(i8, []int{2}, []float64{8, 3}, q(0.25, 0))},
			out(i8, q(0.125, -1)), []int{2}, []float64{31, -19}, 0},
		{"mul f32 relu_n1_to_1", schema.OpMul, act(quant.ActReluN1To1),
			[]*tensor.Tensor{mk(f32, []int{3}, []float64{0.5, 3, -4}, nil), mk(f32, []int{1}, []float64{2}, nil)},
			out(f32, nil), []int{3}, []float64{1, 1, -1}, 1e-6},
		{"mul i32", schema.OpMul, nil,
			[]*tensor.Tensor{mk(i32, []int{2}, []float64{-3, 4}, nil), mk(i32, []int{2}, []float64{5, 6}, nil)},
			out(i32, nil), []int{2}, []float64{-15, 24}, 0},
		{"mul i16 -> i8", schema.OpMul, act(quant.ActNone),
			[]*tensor.Tensor{mk(i16, []int{2}, []float64{16384, -32768}, q(1.0/32768, 0)), mk(i16, []int{2}, []float64{16384, -32768}, q(1.0/32768, 0))},
			out(i8, q(1.0/128, 3)), []int{2}, []float64{35, 127}, 0},
		{"div f32 by zero clamps", schema.OpDiv, nil,
			[]*tensor.Tensor{mk(f32, []int{2}, []float64{1, -3}, nil), mk(f32, []int{2}, []float64{4, 0}, nil)},
			out(f32, nil), []int{2}, []float64{0.25, -maxF}, 1e-6},
		{"div i32 truncates", schema.OpDiv, nil,
			[]*tensor.Tensor{mk(i32, []int{2}, []float64{7, -7}, nil), mk(i32, []int{1}, []float64{2}, nil)},
			out(i32, nil), []int{2}, []float64{3, -3}, 0},
		{"div u8", schema.OpDiv, nil,
			[]*tensor.Tensor{mk(u8, []int{2}, []float64{8, 9}, q(1, 0)), mk(u8, []int{2}, []float64{2, 3}, q(1, 0))},
			out(u8, q(1, 0)), []int{2}, []float64{4, 3}, 0},
		{"squared difference f32", schema.OpSquaredDifference, nil,
			[]*tensor.Tensor{mk(f32, []int{2}, []float64{1, 2}, nil), mk(f32, []int{2}, []float64{3, -1}, nil)},
			out(f32, nil), []int{2}, []float64{4, 9}, 1e-6},
		{"squared difference i32", schema.OpSquaredDifference, nil,
			[]*tensor.Tensor{mk(i32, []int{2}, []float64{5, -2}, nil), mk(i32, []int{1}, []float64{2}, nil)},
			out(i32, nil), []int{2}, []float64{9, 16}, 0},
		{"squared difference i8", schema.OpSquaredDifference, nil,
			[]*tensor.Tensor{mk(i8, []int{2}, []float64{3, -2}, q(1, 0)), mk(i8, []int{2}, []float64{1, 2}, q(1, 0))},
			out(i8, q(1, 0)), []int{2}, []float64{4, 16}, 0},
		{"maximum i8 broadcast", schema.OpMaximum, nil,
			[]*tensor.Tensor{mk(i8, []int{3}, []float64{1, -5, 3}, q(1, 0)), mk(i8, []int{}, []float64{0}, q(1, 0))},
			out(i8, q(1, 0)), []int{3}, []float64{1, 0, 3}, 0},
		{"minimum f32", schema.OpMinimum, nil,
			[]*tensor.Tensor{mk(f32, []int{3}, []float64{1, -5, 3}, nil), mk(f32, []int{3}, []float64{0, 0, 4}, nil)},
			out(f32, nil), []int{3}, []float64{0, -5, 3}, 0},
		{"minimum i64", schema.OpMinimum, nil,
			[]*tensor.Tensor{mk(i64, []int{2}, []float64{-1 << 40, 5}, nil), mk(i64, []int{2}, []float64{0, 0}, nil)},
			out(i64, nil), []int{2}, []float64{-1 << 40, 0}, 0},
		{"floor div f32", schema.OpFloorDiv, nil,
			[]*tensor.Tensor{mk(f32, []int{3}, []float64{7, -7, 7.5}, nil), mk(f32, []int{3}, []float64{2, 2, -2}, nil)},
			out(f32, nil), []int{3}, []float64{3, -4, -4}, 0},
		{"floor div i32", schema.OpFloorDiv, nil,
			[]*tensor.Tensor{mk(i32, []int{4}, []float64{7, -7, 7, -7}, nil), mk(i32, []int{4}, []float64{2, 2, -2, -2}, nil)},
			out(i32, nil), []int{4}, []float64{3, -4, -4, 3}, 0},
		{"pow f32", schema.OpPow, nil,
			[]*tensor.Tensor{mk(f32, []int{2}, []float64{2, 9}, nil), mk(f32, []int{2}, []float64{3, 0.5}, nil)},
			out(f32, nil), []int{2}, []float64{8, 3}, 1e-6},
		{"pow i32", schema.OpPow, nil,
			[]*tensor.Tensor{mk(i32, []int{2}, []float64{2, -3}, nil), mk(i32, []int{2}, []float64{10, 3}, nil)},
			out(i32, nil), []int{2}, []float64{1024, -27}, 0},
	})
}

func TestBroadcastHighRank(t *testing.T) {
	// [2,1,2,1,2,1] + [1,2,1,2,1,2]: every element is a[i] + b[j] for the
	// interleaved indices.
	a := make([]float64, 8)
	b := make([]float64, 8)
	for i := range a {
		a[i] = float64(i * 100)
		b[i] = float64(i)
	}
	o := out(f32, nil)
	if err := kerneltest.Run(t, schema.OpAdd, nil, []*tensor.Tensor{
		mk(f32, []int{2, 1, 2, 1, 2, 1}, a, nil), mk(f32, []int{1, 2, 1, 2, 1, 2}, b, nil)}, o); err != nil {
		t.Fatal(err)
	}
	var want []float64
	for i0 := 0; i0 < 2; i0++ {
		for i1 := 0; i1 < 2; i1++ {
			for i2 := 0; i2 < 2; i2++ {
				for i3 := 0; i3 < 2; i3++ {
					for i4 := 0; i4 < 2; i4++ {
						for i5 := 0; i5 < 2; i5++ {
							want = append(want, a[i0*4+i2*2+i4]+b[i1*4+i3*2+i5])
						}
					}
				}
			}
		}
	}
	kerneltest.Expect(t, o, []int{2, 2, 2, 2, 2, 2}, want, 0)
}

func TestPrelu(t *testing.T) {
	runCases(t, []opCase{
		{"f32 per channel alpha", schema.OpPrelu, nil,
			[]*tensor.Tensor{mk(f32, []int{2, 2}, []float64{-1, 2, -3, 4}, nil), mk(f32, []int{2}, []float64{0.5, 0.25}, nil)},
			out(f32, nil), []int{2, 2}, []float64{-0.5, 2, -1.5, 4}, 1e-6},
		{"i8", schema.OpPrelu, nil,
			[]*tensor.Tensor{mk(i8, []int{2}, []float64{-4, 6}, q(0.5, 0)), mk(i8, []int{1}, []float64{2}, q(0.25, 0))},
			out(i8, q(0.25, 0)), []int{2}, []float64{-4, 12}, 0},
		{"u8 zero points", schema.OpPrelu, nil,
			[]*tensor.Tensor{mk(u8, []int{2}, []float64{124, 132}, q(0.5, 128)), mk(u8, []int{1}, []float64{130}, q(0.25, 128))},
			out(u8, q(0.25, 100)), []int{2}, []float64{96, 108}, 0},
	})
}

func TestUnary(t *testing.T) {
	e := math.E
	runCases(t, []opCase{
		{"floor", schema.OpFloor, nil, []*tensor.Tensor{mk(f32, []int{2}, []float64{-1.5, 2.5}, nil)}, out(f32, nil), []int{2}, []float64{-2, 2}, 0},
		{"abs f32", schema.OpAbs, nil, []*tensor.Tensor{mk(f32, []int{2}, []float64{-1.5, 2}, nil)}, out(f32, nil), []int{2}, []float64{1.5, 2}, 0},
		{"abs i8 same scale", schema.OpAbs, nil, []*tensor.Tensor{mk(i8, []int{2}, []float64{-7, 0}, q(0.5, -3))}, out(i8, q(0.5, -3)), []int{2}, []float64{1, 0}, 0},
		{"abs i8 rescale", schema.OpAbs, nil, []*tensor.Tensor{mk(i8, []int{2}, []float64{-7, 0}, q(0.5, -3))}, out(i8, q(0.25, 0)), []int{2}, []float64{8, 6}, 0},
		{"abs i16", schema.OpAbs, nil, []*tensor.Tensor{mk(i16, []int{2}, []float64{-32768, 5}, q(0.5, 0))}, out(i16, q(0.5, 0)), []int{2}, []float64{32767, 5}, 0},
		{"abs i32", schema.OpAbs, nil, []*tensor.Tensor{mk(i32, []int{2}, []float64{-7, 3}, nil)}, out(i32, nil), []int{2}, []float64{7, 3}, 0},
		{"neg f32", schema.OpNeg, nil, []*tensor.Tensor{mk(f32, []int{2}, []float64{1, -2}, nil)}, out(f32, nil), []int{2}, []float64{-1, 2}, 0},
		{"neg i32", schema.OpNeg, nil, []*tensor.Tensor{mk(i32, []int{2}, []float64{5, -6}, nil)}, out(i32, nil), []int{2}, []float64{-5, 6}, 0},
		{"neg i64", schema.OpNeg, nil, []*tensor.Tensor{mk(i64, []int{1}, []float64{1 << 40}, nil)}, out(i64, nil), []int{1}, []float64{-1 << 40}, 0},
		{"sqrt", schema.OpSqrt, nil, []*tensor.Tensor{mk(f32, []int{2}, []float64{4, 2.25}, nil)}, out(f32, nil), []int{2}, []float64{2, 1.5}, 1e-6},
		{"rsqrt f32", schema.OpRsqrt, nil, []*tensor.Tensor{mk(f32, []int{2}, []float64{4, 0.25}, nil)}, out(f32, nil), []int{2}, []float64{0.5, 2}, 1e-6},
		{"rsqrt i8", schema.OpRsqrt, nil, []*tensor.Tensor{mk(i8, []int{3}, []float64{4, 16, 0}, q(0.25, 0))}, out(i8, q(1.0/64, -128)), []int{3}, []float64{-64, -96, 127}, 0},
		{"exp f32", schema.OpExp, nil, []*tensor.Tensor{mk(f32, []int{2}, []float64{0, 1}, nil)}, out(f32, nil), []int{2}, []float64{1, e}, 1e-6},
		{"exp i8", schema.OpExp, nil, []*tensor.Tensor{mk(i8, []int{2}, []float64{0, 10}, q(0.1, 0))}, out(i8, q(0.1, -128)), []int{2}, []float64{-118, -101}, 0},
		{"log", schema.OpLog, nil, []*tensor.Tensor{mk(f32, []int{2}, []float64{1, e}, nil)}, out(f32, nil), []int{2}, []float64{0, 1}, 1e-6},
	})
}

func TestCompare(t *testing.T) {
	a := func() *tensor.Tensor { return mk(f32, []int{3}, []float64{1, 2, 3}, nil) }
	b := func() *tensor.Tensor { return mk(f32, []int{}, []float64{2}, nil) }
	runCases(t, []opCase{
		{"less", schema.OpLess, nil, []*tensor.Tensor{a(), b()}, out(bl, nil), []int{3}, []float64{1, 0, 0}, 0},
		{"less equal", schema.OpLessEqual, nil, []*tensor.Tensor{a(), b()}, out(bl, nil), []int{3}, []float64{1, 1, 0}, 0},
		{"greater", schema.OpGreater, nil, []*tensor.Tensor{a(), b()}, out(bl, nil), []int{3}, []float64{0, 0, 1}, 0},
		{"greater equal", schema.OpGreaterEqual, nil, []*tensor.Tensor{a(), b()}, out(bl, nil), []int{3}, []float64{0, 1, 1}, 0},
		{"equal", schema.OpEqual, nil, []*tensor.Tensor{a(), b()}, out(bl, nil), []int{3}, []float64{0, 1, 0}, 0},
		{"not equal", schema.OpNotEqual, nil, []*tensor.Tensor{a(), b()}, out(bl, nil), []int{3}, []float64{1, 0, 1}, 0},
		{"equal i32", schema.OpEqual, nil, []*tensor.Tensor{mk(i32, []int{2}, []float64{4, 5}, nil), mk(i32, []int{2}, []float64{4, 4}, nil)}, out(bl, nil), []int{2}, []float64{1, 0}, 0},
		{"less i64", schema.OpLess, nil, []*tensor.Tensor{mk(i64, []int{2}, []float64{-1 << 40, 5}, nil), mk(i64, []int{1}, []float64{0}, nil)}, out(bl, nil), []int{2}, []float64{1, 0}, 0},
		{"equal bool", schema.OpEqual, nil, []*tensor.Tensor{mk(bl, []int{2}, []float64{1, 0}, nil), mk(bl, []int{2}, []float64{1, 1}, nil)}, out(bl, nil), []int{2}, []float64{1, 0}, 0},
		{"equal u8 rescaled", schema.OpEqual, nil, []*tensor.Tensor{mk(u8, []int{2}, []float64{2, 3}, q(0.5, 0)), mk(u8, []int{1}, []float64{4}, q(0.25, 0))}, out(bl, nil), []int{2}, []float64{1, 0}, 0},
		{"greater i8 rescaled", schema.OpGreater, nil, []*tensor.Tensor{mk(i8, []int{2}, []float64{-1, 1}, q(0.5, -2)), mk(i8, []int{1}, []float64{2}, q(0.25, 0))}, out(bl, nil), []int{2}, []float64{0, 1}, 0},
		{"less i16", schema.OpLess, nil, []*tensor.Tensor{mk(i16, []int{2}, []float64{-300, 300}, nil), mk(i16, []int{1}, []float64{0}, nil)}, out(bl, nil), []int{2}, []float64{1, 0}, 0},
	})
}

func TestSelect(t *testing.T) {
	runCases(t, []opCase{
		{"v2 broadcast", schema.OpSelectV2, nil, []*tensor.Tensor{mk(bl, []int{2}, []float64{1, 0}, nil),
			mk(f32, []int{2, 2}, []float64{1, 2, 3, 4}, nil), mk(f32, []int{}, []float64{9}, nil)}, out(f32, nil), []int{2, 2}, []float64{1, 9, 3, 9}, 0},
		{"v2 same shape i8", schema.OpSelectV2, nil, []*tensor.Tensor{mk(bl, []int{3}, []float64{1, 0, 1}, nil),
			mk(i8, []int{3}, []float64{1, 2, 3}, q(1, 0)), mk(i8, []int{3}, []float64{-1, -2, -3}, q(1, 0))}, out(i8, q(1, 0)), []int{3}, []float64{1, -2, 3}, 0},
		{"v1 rank one", schema.OpSelect, nil, []*tensor.Tensor{mk(bl, []int{2}, []float64{0, 1}, nil),
			mk(i32, []int{2, 2}, []float64{1, 2, 3, 4}, nil), mk(i32, []int{2, 2}, []float64{5, 6, 7, 8}, nil)}, out(i32, nil), []int{2, 2}, []float64{5, 6, 3, 4}, 0},
		{"v1 scalar", schema.OpSelect, nil, []*tensor.Tensor{mk(bl, []int{}, []float64{1}, nil),
			mk(i64, []int{2}, []float64{1, 2}, nil), mk(i64, []int{2}, []float64{5, 6}, nil)}, out(i64, nil), []int{2}, []float64{1, 2}, 0},
		{"v1 same shape i16", schema.OpSelect, nil, []*tensor.Tensor{mk(bl, []int{2}, []float64{0, 1}, nil),
			mk(i16, []int{2}, []float64{1, 2}, nil), mk(i16, []int{2}, []float64{5, 6}, nil)}, out(i16, nil), []int{2}, []float64{5, 2}, 0},
	})
}

func TestCast(t *testing.T) {
	cast := func(from, to tensor.DType) *schema.CastOptions { return &schema.CastOptions{In: from, Out: to} }
	runCases(t, []opCase{
		{"f32 to i32 truncates", schema.OpCast, cast(f32, i32), []*tensor.Tensor{mk(f32, []int{2}, []float64{1.7, -1.7}, nil)}, out(i32, nil), []int{2}, []float64{1, -1}, 0},
		{"i32 to bool", schema.OpCast, cast(i32, bl), []*tensor.Tensor{mk(i32, []int{2}, []float64{0, 3}, nil)}, out(bl, nil), []int{2}, []float64{0, 1}, 0},
		{"bool to f32", schema.OpCast, cast(bl, f32), []*tensor.Tensor{mk(bl, []int{2}, []float64{1, 0}, nil)}, out(f32, nil), []int{2}, []float64{1, 0}, 0},
		{"i32 to u8 wraps", schema.OpCast, cast(i32, u8), []*tensor.Tensor{mk(i32, []int{2}, []float64{300, -1}, nil)}, out(u8, nil), []int{2}, []float64{44, 255}, 0},
		{"f32 to u8", schema.OpCast, cast(f32, u8), []*tensor.Tensor{mk(f32, []int{3}, []float64{250.9, -1.5, 70000}, nil)}, out(u8, nil), []int{3}, []float64{250, 0, 112}, 0},
		{"i64 to f32", schema.OpCast, nil, []*tensor.Tensor{mk(i64, []int{1}, []float64{1 << 40}, nil)}, out(f32, nil), []int{1}, []float64{1 << 40}, 0},
		{"f32 to i64 out of range", schema.OpCast, nil, []*tensor.Tensor{mk(f32, []int{2}, []float64{-2.5, 1e30}, nil)}, out(i64, nil), []int{2}, []float64{-2, math.MinInt64}, 0},
		{"i8 to i16", schema.OpCast, nil, []*tensor.Tensor{mk(i8, []int{2}, []float64{-128, 127}, nil)}, out(i16, nil), []int{2}, []float64{-128, 127}, 0},
	})
}

func TestQuantize(t *testing.T) {
	pc := &tensor.Quantization{Scale: []float32{0.5, 0.25}, ZeroPoint: []int64{0, 1}, Dim: 1}
	runCases(t, []opCase{
		{"f32 to u8 rounds half away", schema.OpQuantize, nil, []*tensor.Tensor{mk(f32, []int{4}, []float64{1, -0.25, 0.25, 200}, nil)},
			out(u8, q(0.5, 10)), []int{4}, []float64{12, 9, 11, 255}, 0},
		{"f32 to i8 per channel", schema.OpQuantize, nil, []*tensor.Tensor{mk(f32, []int{2, 2}, []float64{1, 1, -1, -1}, nil)},
			out(i8, pc), []int{2, 2}, []float64{2, 5, -2, -3}, 0},
		{"f32 to i16", schema.OpQuantize, nil, []*tensor.Tensor{mk(f32, []int{2}, []float64{1.5, -100}, nil)},
			out(i16, q(0.001, 0)), []int{2}, []float64{1500, -32768}, 0},
		{"u8 to i8 same scale", schema.OpQuantize, nil, []*tensor.Tensor{mk(u8, []int{3}, []float64{0, 128, 255}, q(0.1, 128))},
			out(i8, q(0.1, 0)), []int{3}, []float64{-128, 0, 127}, 0},
		{"i8 to u8 rescale", schema.OpQuantize, nil, []*tensor.Tensor{mk(i8, []int{3}, []float64{-10, 0, 10}, q(0.5, 0))},
			out(u8, q(0.25, 100)), []int{3}, []float64{80, 100, 120}, 0},
		{"i16 to i8", schema.OpQuantize, nil, []*tensor.Tensor{mk(i16, []int{2}, []float64{1000, -1000}, q(0.001, 0))},
			out(i8, q(0.1, 0)), []int{2}, []float64{10, -10}, 0},
		{"i16 to i32", schema.OpQuantize, nil, []*tensor.Tensor{mk(i16, []int{1}, []float64{1000}, q(0.5, 0))},
			out(i32, q(0.25, 0)), []int{1}, []float64{2000}, 0},
		{"dequantize u8", schema.OpDequantize, nil, []*tensor.Tensor{mk(u8, []int{3}, []float64{10, 12, 0}, q(0.5, 10))},
			out(f32, nil), []int{3}, []float64{0, 1, -5}, 1e-6},
		{"dequantize i8", schema.OpDequantize, nil, []*tensor.Tensor{mk(i8, []int{2}, []float64{-128, 127}, q(0.5, -1))},
			out(f32, nil), []int{2}, []float64{-63.5, 64}, 1e-6},
		{"dequantize i16", schema.OpDequantize, nil, []*tensor.Tensor{mk(i16, []int{1}, []float64{-32768}, q(1.0/32768, 0))},
			out(f32, nil), []int{1}, []float64{-1}, 1e-6},
		{"dequantize i8 per channel", schema.OpDequantize, nil, []*tensor.Tensor{mk(i8, []int{2, 2}, []float64{2, 5, -2, -3}, pc)},
			out(f32, nil), []int{2, 2}, []float64{1, 1, -1, -1}, 1e-6},
	})
}

func TestDequantizeFloat16(t *testing.T) {
	h := &tensor.Tensor{Name: "h", Type: tensor.Float16, Shape: []int{5}, KnownAtPrepare: true, Alloc: tensor.ConstantAlloc}
	bits := []uint16{0x3c00, 0xc000, 0x0001, 0x7c00, 0x3555}
	h.Data = make([]byte, 10)
	for i, v := range bits {
		h.Data[2*i], h.Data[2*i+1] = byte(v), byte(v>>8)
	}
	o := out(f32, nil)
	if err := kerneltest.Run(t, schema.OpDequantize, nil, []*tensor.Tensor{h}, o); err != nil {
		t.Fatal(err)
	}
	kerneltest.Expect(t, o, []int{5}, []float64{1, -2, math.Ldexp(1, -24), math.Inf(1), 0.333251953125}, 0)
}

func TestRuntimeInputs(t *testing.T) {
	// Inputs computed at run time take the same path as constants.
	a := kerneltest.Runtime(mk(f32, []int{2}, []float64{1, 2}, nil))
	b := kerneltest.Runtime(mk(f32, []int{2}, []float64{3, 4}, nil))
	o := out(f32, nil)
	if err := kerneltest.Run(t, schema.OpMul, nil, []*tensor.Tensor{a, b}, o); err != nil {
		t.Fatal(err)
	}
	kerneltest.Expect(t, o, []int{2}, []float64{3, 8}, 0)
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name string
		op   schema.BuiltinOperator
		opts any
		in   []*tensor.Tensor
		out  *tensor.Tensor
		want string
	}{
		{"type mismatch", schema.OpAdd, nil, []*tensor.Tensor{mk(f32, []int{1}, []float64{1}, nil), mk(i32, []int{1}, []float64{1}, nil)}, out(f32, nil), "must match"},
		{"not broadcastable", schema.OpAdd, nil, []*tensor.Tensor{mk(f32, []int{2, 3}, make([]float64, 6), nil), mk(f32, []int{4}, make([]float64, 4), nil)}, out(f32, nil), "cannot be broadcast"},
		{"rank 7 broadcast", schema.OpMul, nil, []*tensor.Tensor{mk(f32, []int{2, 1, 2, 1, 2, 1, 2}, make([]float64, 16), nil), mk(f32, []int{1, 2, 1, 2, 1, 2, 1}, make([]float64, 8), nil)}, out(f32, nil), "at most 6"},
		{"unquantized int8", schema.OpAdd, nil, []*tensor.Tensor{mk(i8, []int{1}, []float64{1}, nil), mk(i8, []int{1}, []float64{1}, nil)}, out(i8, nil), "no quantization"},
		{"tanh activation", schema.OpAdd, act(quant.ActTanh), []*tensor.Tensor{mk(f32, []int{1}, []float64{1}, nil), mk(f32, []int{1}, []float64{1}, nil)}, out(f32, nil), "activation"},
		{"bool add", schema.OpAdd, nil, []*tensor.Tensor{mk(bl, []int{1}, []float64{1}, nil), mk(bl, []int{1}, []float64{1}, nil)}, out(bl, nil), "expected one of"},
		{"int div by zero", schema.OpDiv, nil, []*tensor.Tensor{mk(i32, []int{2}, []float64{1, 2}, nil), mk(i32, []int{2}, []float64{1, 0}, nil)}, out(i32, nil), "division by zero"},
		{"u8 div by zero", schema.OpDiv, nil, []*tensor.Tensor{mk(u8, []int{1}, []float64{1}, q(1, 0)), mk(u8, []int{1}, []float64{3}, q(1, 3))}, out(u8, q(1, 0)), "division by zero"},
		{"floor div by zero", schema.OpFloorDiv, nil, []*tensor.Tensor{mk(i32, []int{1}, []float64{1}, nil), mk(i32, []int{1}, []float64{0}, nil)}, out(i32, nil), "division by zero"},
		{"pow negative exponent", schema.OpPow, nil, []*tensor.Tensor{mk(i32, []int{1}, []float64{2}, nil), mk(i32, []int{1}, []float64{-1}, nil)}, out(i32, nil), "negative exponent"},
		{"pow quantized", schema.OpPow, nil, []*tensor.Tensor{mk(i8, []int{1}, []float64{2}, q(1, 0)), mk(i8, []int{1}, []float64{1}, q(1, 0))}, out(i8, q(1, 0)), "expected one of"},
		{"pot int16 shifts both", schema.OpAdd, act(quant.ActNone), []*tensor.Tensor{mk(i16, []int{1}, []float64{1}, q(1.0/4096, 0)), mk(i16, []int{1}, []float64{1}, q(1.0/4096, 0))}, out(i16, q(1.0/1024, 0)), "power-of-two"},
		{"rsqrt negative", schema.OpRsqrt, nil, []*tensor.Tensor{mk(i8, []int{1}, []float64{-1}, q(1, 0))}, out(i8, q(1, 0)), "non-negative"},
		{"neg int8", schema.OpNeg, nil, []*tensor.Tensor{mk(i8, []int{1}, []float64{1}, q(1, 0))}, out(i8, q(1, 0)), "expected one of"},
		{"int16 abs zero point", schema.OpAbs, nil, []*tensor.Tensor{mk(i16, []int{1}, []float64{1}, q(1, 3))}, out(i16, q(1, 0)), "zero points 0"},
		{"select condition type", schema.OpSelectV2, nil, []*tensor.Tensor{mk(f32, []int{1}, []float64{1}, nil), mk(f32, []int{1}, []float64{1}, nil), mk(f32, []int{1}, []float64{1}, nil)}, out(f32, nil), "condition"},
		{"select v1 shape", schema.OpSelect, nil, []*tensor.Tensor{mk(bl, []int{3}, make([]float64, 3), nil), mk(f32, []int{2, 3}, make([]float64, 6), nil), mk(f32, []int{2, 3}, make([]float64, 6), nil)}, out(f32, nil), "first dimension"},
		{"compare output type", schema.OpLess, nil, []*tensor.Tensor{mk(f32, []int{1}, []float64{1}, nil), mk(f32, []int{1}, []float64{1}, nil)}, out(f32, nil), "output has type"},
		{"quantize to float", schema.OpQuantize, nil, []*tensor.Tensor{mk(f32, []int{1}, []float64{1}, nil)}, out(f32, nil), "output has type"},
		{"quantize zero scale", schema.OpQuantize, nil, []*tensor.Tensor{mk(f32, []int{1}, []float64{1}, nil)}, out(i8, q(0, 0)), "positive finite scale"},
		{"quantize per-channel mismatch", schema.OpQuantize, nil, []*tensor.Tensor{mk(f32, []int{2, 3}, make([]float64, 6), nil)},
			out(i8, &tensor.Quantization{Scale: []float32{1, 1}, ZeroPoint: []int64{0, 0}, Dim: 1}), "channels"},
		{"dequantize int32", schema.OpDequantize, nil, []*tensor.Tensor{mk(i32, []int{1}, []float64{1}, q(1, 0))}, out(f32, nil), "expected one of"},
		{"zero point out of range", schema.OpMul, nil, []*tensor.Tensor{mk(u8, []int{1}, []float64{1}, q(1, 300)), mk(u8, []int{1}, []float64{1}, q(1, 0))}, out(u8, q(1, 0)), "zero point"},
		{"prelu alpha type", schema.OpPrelu, nil, []*tensor.Tensor{mk(f32, []int{1}, []float64{1}, nil), mk(i8, []int{1}, []float64{1}, q(1, 0))}, out(f32, nil), "must match"},
		{"cast string", schema.OpCast, nil, []*tensor.Tensor{mk(f32, []int{1}, []float64{1}, nil)}, &tensor.Tensor{Type: tensor.String}, "expected one of"},
		{"arity", schema.OpAdd, nil, []*tensor.Tensor{mk(f32, []int{1}, []float64{1}, nil)}, out(f32, nil), "inputs"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := kerneltest.Run(t, c.op, c.opts, c.in, c.out)
			if err == nil {
				t.Fatalf("no error, want one containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestShortConstant(t *testing.T) {
	a := mk(f32, []int{4}, []float64{1, 2, 3, 4}, nil)
	a.Data = a.Data[:8]
	err := kerneltest.Run(t, schema.OpAdd, nil, []*tensor.Tensor{a, mk(f32, []int{4}, make([]float64, 4), nil)}, out(f32, nil))
	if err == nil || !strings.Contains(err.Error(), "holds 8 bytes") {
		t.Fatalf("error %v, want a short-buffer error", err)
	}
}

// f64Tensor builds a float64 constant (kerneltest.New has no float64).
func f64Tensor(v ...float64) *tensor.Tensor {
	t := &tensor.Tensor{Name: "f64", Type: tensor.Float64, Shape: []int{len(v)}, KnownAtPrepare: true, Alloc: tensor.ConstantAlloc}
	t.Data = make([]byte, 8*len(v))
	copy(t.Float64s(), v)
	return t
}

// TestCastWideTypes covers dtypes that kerneltest cannot read back.
func TestCastWideTypes(t *testing.T) {
	o16 := &tensor.Tensor{Type: tensor.Uint16}
	if err := kerneltest.Run(t, schema.OpCast, nil, []*tensor.Tensor{f64Tensor(70000.5, -3, 65535.9)}, o16); err != nil {
		t.Fatal(err)
	}
	if got := tensor.View[uint16](o16.Data); got[0] != 4464 || got[1] != 0 || got[2] != 65535 {
		t.Fatalf("float64 -> uint16 = %v, want [4464 0 65535]", got)
	}
	o32 := &tensor.Tensor{Type: tensor.Uint32}
	if err := kerneltest.Run(t, schema.OpCast, nil, []*tensor.Tensor{mk(i32, []int{2}, []float64{-1, 5}, nil)}, o32); err != nil {
		t.Fatal(err)
	}
	if got := tensor.View[uint32](o32.Data); got[0] != 4294967295 || got[1] != 5 {
		t.Fatalf("int32 -> uint32 = %v, want [4294967295 5]", got)
	}
	o64 := &tensor.Tensor{Type: tensor.Float64}
	if err := kerneltest.Run(t, schema.OpCast, nil, []*tensor.Tensor{o32}, o64); err != nil {
		t.Fatal(err)
	}
	if got := o64.Float64s(); got[0] != 4294967295 || got[1] != 5 {
		t.Fatalf("uint32 -> float64 = %v, want [4294967295 5]", got)
	}
}
