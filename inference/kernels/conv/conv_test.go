package conv_test

import (
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
	"github.com/edgefleet/edgefleet/quant"
)

// Hand-computed cases; the golden tests cover the same paths against the
// real TensorFlow Lite on random data.

var (
	f32 = tensor.Float32
	i8  = tensor.Int8
	u8  = tensor.Uint8
	i32 = tensor.Int32
)

func convOpts(p schema.Padding, stride int, act quant.Activation) *schema.Conv2DOptions {
	return &schema.Conv2DOptions{Padding: p, StrideW: stride, StrideH: stride, Activation: act, DilationW: 1, DilationH: 1}
}

func TestConv2DFloatHand(t *testing.T) {
	in := func() *tensor.Tensor {
		return kerneltest.New(f32, []int{1, 3, 3, 1}, []float64{1, 2, 3, 4, 5, 6, 7, 8, 9}, nil)
	}
	filter := kerneltest.New(f32, []int{1, 2, 2, 1}, []float64{1, 2, 3, 4}, nil)
	cases := []struct {
		name  string
		opts  *schema.Conv2DOptions
		bias  []float64
		shape []int
		want  []float64
	}{
		// 1*1+2*2+4*3+5*4 = 37, then shifted windows.
		{"valid", convOpts(schema.PaddingValid, 1, quant.ActNone), []float64{1}, []int{1, 2, 2, 1}, []float64{38, 48, 68, 78}},
		// SAME, stride 2: the padding (1) goes after, so the last row and
		// column see zeros: [37, 3+18=21, 7+16=23, 9]; bias -22 and relu.
		{"same stride 2 relu", convOpts(schema.PaddingSame, 2, quant.ActRelu), []float64{-22}, []int{1, 2, 2, 1}, []float64{15, 0, 1, 0}},
		{"relu6", convOpts(schema.PaddingValid, 1, quant.ActRelu6), []float64{-40}, []int{1, 2, 2, 1}, []float64{0, 6, 6, 6}},
		{"relu_n1_to_1", convOpts(schema.PaddingValid, 1, quant.ActReluN1To1), []float64{-37.5}, []int{1, 2, 2, 1}, []float64{-0.5, 1, 1, 1}},
		// Dilation 2 on a 2x2 filter covers the corners: 1+6+21+36.
		{"dilation", &schema.Conv2DOptions{Padding: schema.PaddingValid, StrideW: 1, StrideH: 1, DilationW: 2, DilationH: 2}, []float64{0}, []int{1, 1, 1, 1}, []float64{64}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := kerneltest.New(f32, nil, nil, nil)
			bias := kerneltest.New(f32, []int{1}, c.bias, nil)
			if err := kerneltest.Run(t, schema.OpConv2D, c.opts, []*tensor.Tensor{in(), filter, bias}, out); err != nil {
				t.Fatal(err)
			}
			kerneltest.Expect(t, out, c.shape, c.want, 1e-6)
		})
	}
	t.Run("no bias, nil options", func(t *testing.T) {
		out := kerneltest.New(f32, nil, nil, nil)
		if err := kerneltest.Run(t, schema.OpConv2D, nil, []*tensor.Tensor{in(), filter, nil}, out); err != nil {
			t.Fatal(err)
		}
		// SAME stride 1: padding after, so row 3 and column 3 see zeros.
		kerneltest.Expect(t, out, []int{1, 3, 3, 1}, []float64{37, 47, 3*1 + 6*3, 67, 77, 6*1 + 9*3, 7 + 16, 8 + 18, 9}, 1e-6)
	})
	t.Run("groups", func(t *testing.T) {
		// Two groups of two channels: [1,2]·[1,1] and [3,4]·[1,-1].
		gin := kerneltest.New(f32, []int{1, 1, 1, 4}, []float64{1, 2, 3, 4}, nil)
		gf := kerneltest.New(f32, []int{2, 1, 1, 2}, []float64{1, 1, 1, -1}, nil)
		out := kerneltest.New(f32, nil, nil, nil)
		if err := kerneltest.Run(t, schema.OpConv2D, convOpts(schema.PaddingValid, 1, 0), []*tensor.Tensor{gin, gf, nil}, out); err != nil {
			t.Fatal(err)
		}
		kerneltest.Expect(t, out, []int{1, 1, 1, 2}, []float64{3, -1}, 1e-6)
	})
}

func TestConv2DInt8Hand(t *testing.T) {
	// Input scale 0.5 zp -1; filter per channel scales [1, 0.5]; output
	// scale 1 zp 2. Effective multipliers 0.5 and 0.25.
	// Pixel 0 (q=-5, x-zp=-4): ch0 2*-4+1 = -7 -> -3.5; ch1 4*-4+2 = -14 -> -3.5.
	// Pixel 1 (q=5, x-zp=6): ch0 13 -> 6.5; ch1 26 -> 6.5.
	// Multiplier 0.5 rounds in SaturatingRoundingDoublingHighMul, which
	// rounds ties up in both modes: -3.5 -> -3. Multiplier 0.25 rounds the
	// exact -7 in RoundingDivideByPOT, away from zero (-4), while single
	// rounding rounds the tie up (-3).
	mk := func(runtimeFilter bool) []*tensor.Tensor {
		in := kerneltest.New(i8, []int{1, 1, 2, 1}, []float64{-5, 5}, kerneltest.Q(0.5, -1))
		f := kerneltest.New(i8, []int{2, 1, 1, 1}, []float64{2, 4}, &tensor.Quantization{Scale: []float32{1, 0.5}, ZeroPoint: []int64{0, 0}})
		if runtimeFilter {
			kerneltest.Runtime(f)
		}
		b := kerneltest.New(i32, []int{2}, []float64{1, 2}, nil)
		return []*tensor.Tensor{in, f, b}
	}
	for _, c := range []struct {
		name     string
		rounding quant.Rounding
		runtime  bool
		want     []float64
	}{
		{"single", quant.RoundingTFLite, false, []float64{-1, -1, 9, 9}},
		{"double", quant.RoundingDouble, false, []float64{-1, -2, 9, 9}},
		{"runtime filter", quant.RoundingTFLite, true, []float64{-1, -1, 9, 9}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := kerneltest.New(i8, nil, nil, kerneltest.Q(1, 2))
			if err := kerneltest.RunRounding(t, c.rounding, schema.OpConv2D, convOpts(schema.PaddingValid, 1, 0), mk(c.runtime), out); err != nil {
				t.Fatal(err)
			}
			kerneltest.Expect(t, out, []int{1, 1, 2, 2}, c.want, 0)
		})
	}
	t.Run("padding uses the input zero point", func(t *testing.T) {
		// 1x1 input q=1 (real (1+3)*1 = 4), 3x3 filter of ones, SAME:
		// only the centre tap sees the image -> 4.
		in := kerneltest.New(i8, []int{1, 1, 1, 1}, []float64{1}, kerneltest.Q(1, -3))
		f := kerneltest.New(i8, []int{1, 3, 3, 1}, []float64{1, 1, 1, 1, 1, 1, 1, 1, 1}, kerneltest.Q(1, 0))
		out := kerneltest.New(i8, nil, nil, kerneltest.Q(1, 0))
		if err := kerneltest.Run(t, schema.OpConv2D, convOpts(schema.PaddingSame, 1, 0), []*tensor.Tensor{in, f, nil}, out); err != nil {
			t.Fatal(err)
		}
		kerneltest.Expect(t, out, []int{1, 1, 1, 1}, []float64{4}, 0)
	})
}

func TestConv2DUint8Hand(t *testing.T) {
	// Input zp 128 scale 1, filter zp 100 scale 0.5, output scale 1 zp 10,
	// bias 3 (real 1.5). Pixel 0: (130-128)*(104-100)+3 = 11 -> 5.5 -> 6;
	// pixel 1: -8+3 = -5 -> -2.5 -> -2 (the high multiply rounds ties up).
	// Plus 10.
	in := kerneltest.New(u8, []int{1, 1, 2, 1}, []float64{130, 126}, kerneltest.Q(1, 128))
	f := kerneltest.New(u8, []int{1, 1, 1, 1}, []float64{104}, kerneltest.Q(0.5, 100))
	b := kerneltest.New(i32, []int{1}, []float64{3}, kerneltest.Q(0.5, 0))
	out := kerneltest.New(u8, nil, nil, kerneltest.Q(1, 10))
	if err := kerneltest.Run(t, schema.OpConv2D, convOpts(schema.PaddingValid, 1, 0), []*tensor.Tensor{in, f, b}, out); err != nil {
		t.Fatal(err)
	}
	kerneltest.Expect(t, out, []int{1, 1, 2, 1}, []float64{16, 8}, 0)
}

func TestConv2DInt16Hand(t *testing.T) {
	// Input scale 1, filter scale 0.5, output scale 1: 1000*3*0.5 + bias
	// 7*0.5 = 1503.5 -> 1504; -1000*3 + 7 = -2993 * 0.5 = -1496.5 -> -1496
	// (the 16x8 multiplier rounds ties up).
	in := kerneltest.New(tensor.Int16, []int{1, 1, 2, 1}, []float64{1000, -1000}, kerneltest.Q(1, 0))
	f := kerneltest.New(i8, []int{1, 1, 1, 1}, []float64{3}, kerneltest.Q(0.5, 0))
	b := kerneltest.New(tensor.Int64, []int{1}, []float64{7}, nil)
	out := kerneltest.New(tensor.Int16, nil, nil, kerneltest.Q(1, 0))
	if err := kerneltest.Run(t, schema.OpConv2D, convOpts(schema.PaddingValid, 1, 0), []*tensor.Tensor{in, f, b}, out); err != nil {
		t.Fatal(err)
	}
	kerneltest.Expect(t, out, []int{1, 1, 2, 1}, []float64{1504, -1496}, 0)
}

func TestDepthwiseHand(t *testing.T) {
	t.Run("float multiplier 2", func(t *testing.T) {
		in := kerneltest.New(f32, []int{1, 2, 2, 2}, []float64{1, 2, 3, 4, 5, 6, 7, 8}, nil)
		// Output channel oc = ic*2+m; every tap has weights [1, 2, 0.5, -1].
		f := kerneltest.New(f32, []int{1, 2, 2, 4}, []float64{1, 2, 0.5, -1, 1, 2, 0.5, -1, 1, 2, 0.5, -1, 1, 2, 0.5, -1}, nil)
		b := kerneltest.New(f32, []int{4}, []float64{0, 1, 0, 0}, nil)
		out := kerneltest.New(f32, nil, nil, nil)
		opts := &schema.DepthwiseConv2DOptions{Padding: schema.PaddingValid, StrideW: 1, StrideH: 1, DepthMultiplier: 2, DilationW: 1, DilationH: 1}
		if err := kerneltest.Run(t, schema.OpDepthwiseConv2D, opts, []*tensor.Tensor{in, f, b}, out); err != nil {
			t.Fatal(err)
		}
		// Channel 0 sums to 16, channel 1 to 20.
		kerneltest.Expect(t, out, []int{1, 1, 1, 4}, []float64{16, 33, 10, -20}, 1e-6)
	})
	t.Run("float same stride 2 relu6", func(t *testing.T) {
		in := kerneltest.New(f32, []int{1, 3, 3, 1}, []float64{1, 2, 3, 4, 5, 6, 7, 8, 9}, nil)
		f := kerneltest.New(f32, []int{1, 2, 2, 1}, []float64{1, 2, 3, 4}, nil)
		out := kerneltest.New(f32, nil, nil, nil)
		opts := &schema.DepthwiseConv2DOptions{Padding: schema.PaddingSame, StrideW: 2, StrideH: 2, Activation: quant.ActRelu6, DilationW: 1, DilationH: 1}
		if err := kerneltest.Run(t, schema.OpDepthwiseConv2D, opts, []*tensor.Tensor{in, f, nil}, out); err != nil {
			t.Fatal(err)
		}
		kerneltest.Expect(t, out, []int{1, 2, 2, 1}, []float64{6, 6, 6, 6}, 1e-6)
	})
	// int8 and uint8 depthwise always round twice, whatever the
	// interpreter's rounding mode: 9 * 0.25 = 2.25 rounds to 4.5 -> 5 in
	// the high multiply, then 2.5 -> 3 (single rounding would give 2);
	// -9 gives -4.5 -> -4, then -2.
	for _, r := range []quant.Rounding{quant.RoundingTFLite, quant.RoundingDouble} {
		t.Run("int8 ties "+r.String(), func(t *testing.T) {
			in := kerneltest.New(i8, []int{1, 1, 2, 1}, []float64{3, -3}, kerneltest.Q(1, 0))
			f := kerneltest.New(i8, []int{1, 1, 1, 1}, []float64{3}, kerneltest.Q(0.25, 0))
			out := kerneltest.New(i8, nil, nil, kerneltest.Q(1, 0))
			if err := kerneltest.RunRounding(t, r, schema.OpDepthwiseConv2D, &schema.DepthwiseConv2DOptions{Padding: schema.PaddingValid, StrideW: 1, StrideH: 1, DilationW: 1, DilationH: 1}, []*tensor.Tensor{in, f, nil}, out); err != nil {
				t.Fatal(err)
			}
			kerneltest.Expect(t, out, []int{1, 1, 2, 1}, []float64{3, -2}, 0)
		})
	}
	t.Run("uint8 offsets", func(t *testing.T) {
		// (130-128)*(104-100) = 8 * 0.5 = 4, +zp 10; with SAME padding on a
		// 1x1 image the other taps are skipped.
		in := kerneltest.New(u8, []int{1, 1, 1, 1}, []float64{130}, kerneltest.Q(1, 128))
		f := kerneltest.New(u8, []int{1, 3, 3, 1}, []float64{0, 0, 0, 0, 104, 0, 0, 0, 0}, kerneltest.Q(0.5, 100))
		out := kerneltest.New(u8, nil, nil, kerneltest.Q(1, 10))
		if err := kerneltest.Run(t, schema.OpDepthwiseConv2D, &schema.DepthwiseConv2DOptions{Padding: schema.PaddingSame, StrideW: 1, StrideH: 1, DilationW: 1, DilationH: 1}, []*tensor.Tensor{in, f, nil}, out); err != nil {
			t.Fatal(err)
		}
		kerneltest.Expect(t, out, []int{1, 1, 1, 1}, []float64{14}, 0)
	})
}

func TestFullyConnectedHand(t *testing.T) {
	w := func() *tensor.Tensor { return kerneltest.New(f32, []int{2, 3}, []float64{1, 2, 3, 4, 5, 6}, nil) }
	in := func() *tensor.Tensor { return kerneltest.New(f32, []int{2, 3}, []float64{1, 1, 1, 2, 0, -1}, nil) }
	t.Run("float relu", func(t *testing.T) {
		out := kerneltest.New(f32, nil, nil, nil)
		b := kerneltest.New(f32, []int{2}, []float64{0.5, -1}, nil)
		if err := kerneltest.Run(t, schema.OpFullyConnected, &schema.FullyConnectedOptions{Activation: quant.ActRelu}, []*tensor.Tensor{in(), w(), b}, out); err != nil {
			t.Fatal(err)
		}
		kerneltest.Expect(t, out, []int{2, 2}, []float64{6.5, 14, 0, 1}, 1e-6)
	})
	t.Run("float keep_num_dims no bias", func(t *testing.T) {
		x := kerneltest.New(f32, []int{1, 2, 3}, []float64{1, 1, 1, 2, 0, -1}, nil)
		out := kerneltest.New(f32, nil, nil, nil)
		if err := kerneltest.Run(t, schema.OpFullyConnected, &schema.FullyConnectedOptions{KeepNumDims: true}, []*tensor.Tensor{x, w(), nil}, out); err != nil {
			t.Fatal(err)
		}
		kerneltest.Expect(t, out, []int{1, 2, 2}, []float64{6, 15, -1, 2}, 1e-6)
	})
	t.Run("float flattens leading dims", func(t *testing.T) {
		x := kerneltest.New(f32, []int{3, 2}, []float64{1, 1, 1, 2, 0, -1}, nil)
		out := kerneltest.New(f32, nil, nil, nil)
		if err := kerneltest.Run(t, schema.OpFullyConnected, nil, []*tensor.Tensor{x, w(), nil}, out); err != nil {
			t.Fatal(err)
		}
		kerneltest.Expect(t, out, []int{2, 2}, []float64{6, 15, -1, 2}, 1e-6)
	})
	// int8: input scale 1 zp 1, weights scale 0.25, output scale 1 zp 0.
	// Row [4, 2] - 1 = [3, 1]; weights [1, 2] -> 5 * 0.25 = 1.25: single
	// rounding gives 1, double rounds 2.5 -> 3 then 1.5 -> 2; [-1, -2] ->
	// -1.25 gives -1 both ways.
	for _, c := range []struct {
		r    quant.Rounding
		want []float64
	}{{quant.RoundingTFLite, []float64{1, -1}}, {quant.RoundingDouble, []float64{2, -1}}} {
		t.Run("int8 "+c.r.String(), func(t *testing.T) {
			x := kerneltest.New(i8, []int{1, 2}, []float64{4, 2}, kerneltest.Q(1, 1))
			wt := kerneltest.New(i8, []int{2, 2}, []float64{1, 2, -1, -2}, kerneltest.Q(0.25, 0))
			out := kerneltest.New(i8, nil, nil, kerneltest.Q(1, 0))
			if err := kerneltest.RunRounding(t, c.r, schema.OpFullyConnected, nil, []*tensor.Tensor{x, wt, nil}, out); err != nil {
				t.Fatal(err)
			}
			kerneltest.Expect(t, out, []int{1, 2}, c.want, 0)
		})
	}
	t.Run("uint8", func(t *testing.T) {
		// (130-128)*(104-100) + (120-128)*(101-100) = 0; + bias 5 -> 2.5 -> 3, + 7.
		x := kerneltest.New(u8, []int{1, 2}, []float64{130, 120}, kerneltest.Q(1, 128))
		wt := kerneltest.New(u8, []int{1, 2}, []float64{104, 101}, kerneltest.Q(0.5, 100))
		b := kerneltest.New(i32, []int{1}, []float64{5}, kerneltest.Q(0.5, 0))
		out := kerneltest.New(u8, nil, nil, kerneltest.Q(1, 7))
		if err := kerneltest.Run(t, schema.OpFullyConnected, nil, []*tensor.Tensor{x, wt, b}, out); err != nil {
			t.Fatal(err)
		}
		kerneltest.Expect(t, out, []int{1, 1}, []float64{10}, 0)
	})
	t.Run("int16", func(t *testing.T) {
		x := kerneltest.New(tensor.Int16, []int{1, 2}, []float64{300, -100}, kerneltest.Q(1, 0))
		wt := kerneltest.New(i8, []int{1, 2}, []float64{2, 1}, kerneltest.Q(0.25, 0))
		b := kerneltest.New(tensor.Int64, []int{1}, []float64{-2}, nil)
		out := kerneltest.New(tensor.Int16, nil, nil, kerneltest.Q(1, 0))
		if err := kerneltest.Run(t, schema.OpFullyConnected, nil, []*tensor.Tensor{x, wt, b}, out); err != nil {
			t.Fatal(err)
		}
		// (600-100-2)*0.25 = 124.5 -> 125.
		kerneltest.Expect(t, out, []int{1, 1}, []float64{125}, 0)
	})
	t.Run("hybrid", func(t *testing.T) {
		// Row max |x| = 1: scale 1/127, q = [127, -64, 32]; dot with
		// [1, 2, 4] = 127 -> 127 * (1/127 * 0.1) = 0.1, + bias 1.
		x := kerneltest.New(f32, []int{1, 3}, []float64{1, -0.5, 0.25}, nil)
		wt := kerneltest.New(i8, []int{1, 3}, []float64{1, 2, 4}, kerneltest.Q(0.1, 0))
		b := kerneltest.New(f32, []int{1}, []float64{1}, nil)
		out := kerneltest.New(f32, nil, nil, nil)
		if err := kerneltest.Run(t, schema.OpFullyConnected, nil, []*tensor.Tensor{x, wt, b}, out); err != nil {
			t.Fatal(err)
		}
		kerneltest.Expect(t, out, []int{1, 1}, []float64{1.1}, 1e-6)
	})
}

func TestTransposeConvHand(t *testing.T) {
	in := func() *tensor.Tensor { return kerneltest.New(f32, []int{1, 2, 2, 1}, []float64{1, 2, 3, 4}, nil) }
	ones := kerneltest.New(f32, []int{1, 2, 2, 1}, []float64{1, 1, 1, 1}, nil)
	t.Run("stride 2 valid", func(t *testing.T) {
		shape := kerneltest.New(i32, []int{4}, []float64{1, 4, 4, 1}, nil)
		out := kerneltest.New(f32, nil, nil, nil)
		if err := kerneltest.Run(t, schema.OpTransposeConv, &schema.TransposeConvOptions{Padding: schema.PaddingValid, StrideW: 2, StrideH: 2}, []*tensor.Tensor{shape, ones, in()}, out); err != nil {
			t.Fatal(err)
		}
		kerneltest.Expect(t, out, []int{1, 4, 4, 1}, []float64{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}, 1e-6)
	})
	t.Run("stride 1 valid, run-time output shape, bias", func(t *testing.T) {
		shape := kerneltest.Runtime(kerneltest.New(i32, []int{4}, []float64{1, 3, 3, 1}, nil))
		b := kerneltest.New(f32, []int{1}, []float64{0.5}, nil)
		out := kerneltest.New(f32, nil, nil, nil)
		if err := kerneltest.Run(t, schema.OpTransposeConv, &schema.TransposeConvOptions{Padding: schema.PaddingValid, StrideW: 1, StrideH: 1}, []*tensor.Tensor{shape, ones, in(), b}, out); err != nil {
			t.Fatal(err)
		}
		kerneltest.Expect(t, out, []int{1, 3, 3, 1}, []float64{1.5, 3.5, 2.5, 4.5, 10.5, 6.5, 3.5, 7.5, 4.5}, 1e-6)
	})
	t.Run("int8 same", func(t *testing.T) {
		// SAME, stride 1, 2x2 filter of ones over a 2x2 output: padding 0
		// before; out(y,x) sums inputs at (y-ky, x-kx). Input zp 1.
		x := kerneltest.New(i8, []int{1, 2, 2, 1}, []float64{2, 3, 4, 5}, kerneltest.Q(1, 1))
		f := kerneltest.New(i8, []int{1, 2, 2, 1}, []float64{1, 1, 1, 1}, kerneltest.Q(0.5, 0))
		shape := kerneltest.New(i32, []int{4}, []float64{1, 2, 2, 1}, nil)
		out := kerneltest.New(i8, nil, nil, kerneltest.Q(1, 0))
		if err := kerneltest.Run(t, schema.OpTransposeConv, &schema.TransposeConvOptions{Padding: schema.PaddingSame, StrideW: 1, StrideH: 1}, []*tensor.Tensor{shape, f, x}, out); err != nil {
			t.Fatal(err)
		}
		// Inputs minus zp: [1 2; 3 4]. Sums: 1, 3, 4, 10; * 0.5 rounds
		// half away from zero: 1, 2, 2, 5.
		kerneltest.Expect(t, out, []int{1, 2, 2, 1}, []float64{1, 2, 2, 5}, 0)
	})
}

func TestBatchMatMulHand(t *testing.T) {
	lhs := func() *tensor.Tensor { return kerneltest.New(f32, []int{1, 2, 2}, []float64{1, 2, 3, 4}, nil) }
	rhs := func() *tensor.Tensor { return kerneltest.New(f32, []int{2, 2}, []float64{5, 6, 7, 8}, nil) }
	for _, c := range []struct {
		name       string
		adjX, adjY bool
		want       []float64
	}{
		{"plain", false, false, []float64{19, 22, 43, 50}},
		{"adj_y", false, true, []float64{17, 23, 39, 53}},
		{"adj_x", true, false, []float64{26, 30, 38, 44}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := kerneltest.New(f32, nil, nil, nil)
			if err := kerneltest.Run(t, schema.OpBatchMatMul, &schema.BatchMatMulOptions{AdjX: c.adjX, AdjY: c.adjY}, []*tensor.Tensor{lhs(), rhs()}, out); err != nil {
				t.Fatal(err)
			}
			kerneltest.Expect(t, out, []int{1, 2, 2}, c.want, 1e-6)
		})
	}
	t.Run("broadcast batch", func(t *testing.T) {
		l := kerneltest.New(f32, []int{2, 1, 1, 2}, []float64{1, 0, 0, 1}, nil)
		r := kerneltest.New(f32, []int{3, 2, 1}, []float64{1, 2, 3, 4, 5, 6}, nil)
		out := kerneltest.New(f32, nil, nil, nil)
		if err := kerneltest.Run(t, schema.OpBatchMatMul, nil, []*tensor.Tensor{l, r}, out); err != nil {
			t.Fatal(err)
		}
		kerneltest.Expect(t, out, []int{2, 3, 1, 1}, []float64{1, 3, 5, 2, 4, 6}, 1e-6)
	})
	t.Run("int8", func(t *testing.T) {
		l := kerneltest.New(i8, []int{1, 2}, []float64{3, 5}, kerneltest.Q(1, 1))
		r := kerneltest.New(i8, []int{2, 1}, []float64{2, -1}, kerneltest.Q(0.5, 0))
		out := kerneltest.New(i8, nil, nil, kerneltest.Q(1, 0))
		if err := kerneltest.Run(t, schema.OpBatchMatMul, nil, []*tensor.Tensor{l, r}, out); err != nil {
			t.Fatal(err)
		}
		// (2*2 + 4*-1) * 0.5 = 0.
		kerneltest.Expect(t, out, []int{1, 1}, []float64{0}, 0)
	})
}

func TestPrepareErrors(t *testing.T) {
	f4 := func(shape ...int) *tensor.Tensor {
		return kerneltest.New(f32, shape, make([]float64, tensor.NumElements(shape)), nil)
	}
	out := func() *tensor.Tensor { return kerneltest.New(f32, nil, nil, nil) }
	cases := []struct {
		name string
		op   schema.BuiltinOperator
		opts any
		in   []*tensor.Tensor
		want string
	}{
		{"conv rank", schema.OpConv2D, nil, []*tensor.Tensor{f4(3, 3, 1), f4(1, 1, 1, 1)}, "rank 3"},
		{"conv stride", schema.OpConv2D, &schema.Conv2DOptions{StrideW: 0, StrideH: 1, DilationW: 1, DilationH: 1}, []*tensor.Tensor{f4(1, 3, 3, 1), f4(1, 1, 1, 1)}, "strides"},
		{"conv padding", schema.OpConv2D, &schema.Conv2DOptions{Padding: 7, StrideW: 1, StrideH: 1, DilationW: 1, DilationH: 1}, []*tensor.Tensor{f4(1, 3, 3, 1), f4(1, 1, 1, 1)}, "padding 7"},
		{"conv channels", schema.OpConv2D, nil, []*tensor.Tensor{f4(1, 3, 3, 3), f4(1, 1, 1, 2)}, "not a multiple"},
		{"conv bias", schema.OpConv2D, nil, []*tensor.Tensor{f4(1, 3, 3, 1), f4(2, 1, 1, 1), f4(3)}, "bias has 3"},
		{"conv valid too big", schema.OpConv2D, convOpts(schema.PaddingValid, 1, 0), []*tensor.Tensor{f4(1, 2, 2, 1), f4(1, 5, 5, 1)}, "larger than"},
		{"conv activation", schema.OpConv2D, convOpts(schema.PaddingValid, 1, quant.ActTanh), []*tensor.Tensor{f4(1, 2, 2, 1), f4(1, 1, 1, 1)}, "activation"},
		{"conv uint8 filter on float", schema.OpConv2D, nil, []*tensor.Tensor{f4(1, 2, 2, 1), kerneltest.New(u8, []int{1, 1, 1, 1}, []float64{1}, kerneltest.Q(1, 0))}, "filter has type uint8"},
		{"dw multiplier", schema.OpDepthwiseConv2D, &schema.DepthwiseConv2DOptions{StrideW: 1, StrideH: 1, DepthMultiplier: 3, DilationW: 1, DilationH: 1}, []*tensor.Tensor{f4(1, 3, 3, 2), f4(1, 1, 1, 4)}, "depth_multiplier 3"},
		{"dw filter shape", schema.OpDepthwiseConv2D, nil, []*tensor.Tensor{f4(1, 3, 3, 2), f4(2, 1, 1, 2)}, "expected [1, height"},
		{"fc depth", schema.OpFullyConnected, nil, []*tensor.Tensor{f4(1, 5), f4(2, 3)}, "not a multiple"},
		{"fc keep dims", schema.OpFullyConnected, &schema.FullyConnectedOptions{KeepNumDims: true}, []*tensor.Tensor{f4(2, 3), f4(2, 2)}, "keep_num_dims"},
		{"fc shuffled", schema.OpFullyConnected, &schema.FullyConnectedOptions{WeightsFormat: 1}, []*tensor.Tensor{f4(1, 4), f4(2, 4)}, "shuffled"},
		{"bmm contraction", schema.OpBatchMatMul, nil, []*tensor.Tensor{f4(2, 3), f4(2, 3)}, "contraction"},
		{"bmm broadcast", schema.OpBatchMatMul, nil, []*tensor.Tensor{f4(2, 2, 3), f4(3, 3, 2)}, "broadcast"},
		{"tconv shape", schema.OpTransposeConv, nil, []*tensor.Tensor{kerneltest.New(i32, []int{3}, []float64{1, 2, 2}, nil), f4(1, 1, 1, 1), f4(1, 2, 2, 1)}, "output_shape"},
		{"tconv batch", schema.OpTransposeConv, nil, []*tensor.Tensor{kerneltest.New(i32, []int{4}, []float64{2, 2, 2, 1}, nil), f4(1, 1, 1, 1), f4(1, 2, 2, 1)}, "does not fit"},
		{"int8 missing scale", schema.OpConv2D, nil, []*tensor.Tensor{kerneltest.New(i8, []int{1, 1, 1, 1}, []float64{1}, nil), kerneltest.New(i8, []int{1, 1, 1, 1}, []float64{1}, nil)}, "scale missing"},
		// Zero points an 8-bit input cannot hold: padding taps would not
		// add zero (no converter writes them; refused, not miscomputed).
		{"uint8 zero point 300", schema.OpConv2D, nil, []*tensor.Tensor{kerneltest.New(u8, []int{1, 3, 3, 1}, make([]float64, 9), &tensor.Quantization{Scale: []float32{1}, ZeroPoint: []int64{300}}), kerneltest.New(u8, []int{1, 3, 3, 1}, make([]float64, 9), kerneltest.Q(1, 128))}, "input zero point 300 is outside uint8's range"},
		{"int8 zero point -129", schema.OpDepthwiseConv2D, nil, []*tensor.Tensor{kerneltest.New(i8, []int{1, 3, 3, 1}, make([]float64, 9), &tensor.Quantization{Scale: []float32{1}, ZeroPoint: []int64{-129}}), kerneltest.New(i8, []int{1, 3, 3, 1}, make([]float64, 9), kerneltest.Q(1, 0))}, "input zero point -129 is outside int8's range"},
	}
	// The control: the same convolutions with the zero points at the
	// ends of the ranges prepare and run.
	for _, c := range []struct {
		op   schema.BuiltinOperator
		dt   tensor.DType
		zp   int64
		wzp  float64
		wdim int
	}{{schema.OpConv2D, u8, 255, 128, 0}, {schema.OpDepthwiseConv2D, i8, -128, 0, 3}} {
		in := kerneltest.New(c.dt, []int{1, 3, 3, 1}, make([]float64, 9), &tensor.Quantization{Scale: []float32{1}, ZeroPoint: []int64{c.zp}})
		f := kerneltest.New(c.dt, []int{1, 3, 3, 1}, make([]float64, 9), kerneltest.Q(1, int64(c.wzp)))
		if err := kerneltest.Run(t, c.op, nil, []*tensor.Tensor{in, f}, kerneltest.New(c.dt, nil, nil, kerneltest.Q(1, 0))); err != nil {
			t.Errorf("%v zero point %d: %v", c.op, c.zp, err)
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := out()
			switch c.name { // the quantized cases' outputs
			case "int8 missing scale":
				o = kerneltest.New(i8, nil, nil, nil)
			case "uint8 zero point 300":
				o = kerneltest.New(u8, nil, nil, kerneltest.Q(1, 0))
			case "int8 zero point -129":
				o = kerneltest.New(i8, nil, nil, kerneltest.Q(1, 0))
			}
			err := kerneltest.Run(t, c.op, c.opts, c.in, o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}
