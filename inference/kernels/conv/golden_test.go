package conv_test

import (
	"bytes"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/kernels/conv"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
	"github.com/edgefleet/edgefleet/internal/kerneltest/singleop"
	"github.com/edgefleet/edgefleet/quant"
)

// The golden tests run tiny single-op models through TensorFlow Lite
// (builtin kernels, XNNPACK off; stored under testdata/golden, regenerate
// with -args -update-goldens) and through our kernels, for every dtype
// and the options that change the arithmetic.

// convCase is one CONV_2D or DEPTHWISE_CONV_2D model.
type convCase struct {
	name       string
	depthwise  bool
	dt         tensor.DType
	in         []int // NHWC
	kh, kw     int
	outC       int
	padding    schema.Padding
	sh, sw     int
	dh, dw     int
	act        quant.Activation
	perChannel bool
	noBias     bool
	tie        bool
	hybrid     bool // float input and output, int8 filter
}

func outSizeT(p schema.Padding, in, f, s, d int) int {
	if p == schema.PaddingSame {
		return (in + s - 1) / s
	}
	return (in + s - ((f-1)*d + 1)) / s
}

// quantData is random data and quantization for one quantized operand set.
type quantData struct {
	inQ, wQ, bQ, outQ *tensor.Quantization
	inData, wData     []byte
	bias              []byte
	biasType          tensor.DType
	wType             tensor.DType
}

// makeQuant draws operands for dtype dt with k-long dot products and
// channels output channels quantized along filter dimension dim.
//
// With tie set, values are tiny and the requantization multiplier is about
// 0.4, so that the final right shift is one or two bits and the single
// and double rounding schemes disagree on many elements.
func makeQuant(r *rand.Rand, dt tensor.DType, inN, wN, channels, k, dim int, perChannel, tie bool) quantData {
	d := makeQuant1(r, dt, inN, wN, channels, k, dim, perChannel)
	if !tie {
		return d
	}
	switch dt {
	case tensor.Int8:
		d.inData = kerneltest.RandInt8(r, inN, 5-6, 5+6)
		d.wData = kerneltest.RandInt8(r, wN, -6, 6)
		d.bias = kerneltest.RandInt32(r, channels, -20, 20)
		d.outQ = kerneltest.Q(0.05*0.01*2.5, -3)
	case tensor.Uint8:
		d.inData = randU8(r, inN, 120-6, 120+6)
		d.wData = randU8(r, wN, 131-6, 131+6)
		d.bias = kerneltest.RandInt32(r, channels, -20, 20)
		d.outQ = kerneltest.Q(0.05*0.01*2.5, 125)
	}
	return d
}

func makeQuant1(r *rand.Rand, dt tensor.DType, inN, wN, channels, k, dim int, perChannel bool) quantData {
	var d quantData
	switch dt {
	case tensor.Float32:
		d.inData, d.wData, d.bias = kerneltest.RandF32(r, inN, -2, 2), kerneltest.RandF32(r, wN, -1, 1), kerneltest.RandF32(r, channels, -1, 1)
		d.biasType, d.wType = tensor.Float32, tensor.Float32
	case tensor.Int8, tensor.Int16:
		inS, spread := float32(0.05), 74.0
		d.inQ = kerneltest.Q(inS, 5)
		d.inData = kerneltest.RandInt8(r, inN, -128, 127)
		d.biasType = tensor.Int32
		d.bias = kerneltest.RandInt32(r, channels, -3000, 3000)
		if dt == tensor.Int16 {
			inS, spread = 0.001, 17000
			d.inQ = kerneltest.Q(inS, 0)
			d.inData = kerneltest.RandInt16(r, inN, -30000, 30000)
			d.biasType = tensor.Int64
			d.bias = randI64(r, channels, -200000, 200000)
		}
		d.wType = tensor.Int8
		d.wData = kerneltest.RandInt8(r, wN, -127, 127)
		if perChannel {
			sc := channelScales(r, channels, 0.01)
			d.wQ = qc(dim, sc...)
			d.bQ = qc(0, scaleQ(sc, inS)...)
		} else {
			d.wQ = kerneltest.Q(0.01, 0)
			d.bQ = kerneltest.Q(inS*0.01, 0)
		}
		outS := float32(float64(inS) * 0.01 * math.Sqrt(float64(k)) * spread * 74 / 40)
		zp := int64(-7)
		if dt == tensor.Int16 {
			outS = float32(float64(inS) * 0.01 * math.Sqrt(float64(k)) * spread * 74 / 8000)
			zp = 0
		}
		d.outQ = kerneltest.Q(outS, zp)
	case tensor.Uint8:
		inS, wS := float32(0.05), float32(0.01)
		d.inQ, d.wQ = kerneltest.Q(inS, 120), kerneltest.Q(wS, 131)
		d.inData, d.wData = randU8(r, inN, 0, 255), randU8(r, wN, 0, 255)
		d.wType, d.biasType = tensor.Uint8, tensor.Int32
		d.bias = kerneltest.RandInt32(r, channels, -3000, 3000)
		d.bQ = kerneltest.Q(inS*wS, 0)
		d.outQ = kerneltest.Q(float32(float64(inS)*float64(wS)*math.Sqrt(float64(k))*74*74/40), 128)
	}
	return d
}

func (c convCase) model(t *testing.T, r *rand.Rand) (*single, []byte) {
	n, h, w, ic := c.in[0], c.in[1], c.in[2], c.in[3]
	oh := outSizeT(c.padding, h, c.kh, c.sh, c.dh)
	ow := outSizeT(c.padding, w, c.kw, c.sw, c.dw)
	var wShape []int
	dim, k := 0, c.kh*c.kw*ic
	if c.depthwise {
		wShape, dim, k = []int{1, c.kh, c.kw, c.outC}, 3, c.kh*c.kw
	} else {
		wShape = []int{c.outC, c.kh, c.kw, ic}
	}
	d := makeQuant(r, c.dt, n*h*w*ic, tensor.NumElements(wShape), c.outC, k, dim, c.perChannel, c.tie)
	if c.hybrid {
		d.wType, d.wData = tensor.Int8, kerneltest.RandInt8(r, tensor.NumElements(wShape), -127, 127)
		d.wQ = kerneltest.Q(0.02, 0)
		if c.perChannel {
			d.wQ = qc(dim, channelScales(r, c.outC, 0.02)...)
		}
	}
	s := newSingle()
	in := s.input(c.dt, c.in, d.inQ, d.inData)
	wt := s.constant(d.wType, wShape, d.wQ, d.wData)
	bias := -1
	if !c.noBias {
		bias = s.constant(d.biasType, []int{c.outC}, d.bQ, d.bias)
	}
	s.output(c.dt, []int{n, oh, ow, c.outC}, d.outQ)
	if c.depthwise {
		opts := &schema.DepthwiseConv2DOptions{Padding: c.padding, StrideW: c.sw, StrideH: c.sh, DepthMultiplier: c.outC / ic, Activation: c.act, DilationW: c.dw, DilationH: c.dh}
		return s, s.op(t, schema.OpDepthwiseConv2D, 1, opts, in, wt, bias)
	}
	opts := &schema.Conv2DOptions{Padding: c.padding, StrideW: c.sw, StrideH: c.sh, Activation: c.act, DilationW: c.dw, DilationH: c.dh}
	return s, s.op(t, schema.OpConv2D, 1, opts, in, wt, bias)
}

var convCases = []convCase{
	{name: "conv_f32_same_s2_relu6", dt: tensor.Float32, in: []int{1, 7, 6, 3}, kh: 3, kw: 3, outC: 5, padding: schema.PaddingSame, sh: 2, sw: 2, dh: 1, dw: 1, act: quant.ActRelu6},
	{name: "conv_f32_valid_dil2", dt: tensor.Float32, in: []int{2, 7, 7, 2}, kh: 2, kw: 3, outC: 6, padding: schema.PaddingValid, sh: 1, sw: 2, dh: 2, dw: 2},
	{name: "conv_f32_1x1", dt: tensor.Float32, in: []int{1, 4, 5, 7}, kh: 1, kw: 1, outC: 9, padding: schema.PaddingSame, sh: 1, sw: 1, dh: 1, dw: 1, act: quant.ActRelu},
	{name: "conv_i8_pc_same_relu", dt: tensor.Int8, in: []int{1, 7, 6, 3}, kh: 3, kw: 3, outC: 5, padding: schema.PaddingSame, sh: 1, sw: 1, dh: 1, dw: 1, act: quant.ActRelu, perChannel: true},
	{name: "conv_i8_pc_s2_dil", dt: tensor.Int8, in: []int{2, 9, 8, 4}, kh: 3, kw: 2, outC: 7, padding: schema.PaddingSame, sh: 2, sw: 1, dh: 2, dw: 2, perChannel: true},
	{name: "conv_i8_pt_valid", dt: tensor.Int8, in: []int{1, 6, 6, 5}, kh: 3, kw: 3, outC: 6, padding: schema.PaddingValid, sh: 2, sw: 2, dh: 1, dw: 1, act: quant.ActRelu6},
	{name: "conv_i8_pc_1x1", dt: tensor.Int8, in: []int{1, 5, 5, 16}, kh: 1, kw: 1, outC: 10, padding: schema.PaddingSame, sh: 1, sw: 1, dh: 1, dw: 1, perChannel: true},
	{name: "conv_u8_same_relu6", dt: tensor.Uint8, in: []int{1, 7, 6, 3}, kh: 3, kw: 3, outC: 5, padding: schema.PaddingSame, sh: 2, sw: 1, dh: 1, dw: 1, act: quant.ActRelu6},
	{name: "conv_u8_1x1_valid", dt: tensor.Uint8, in: []int{2, 4, 4, 12}, kh: 1, kw: 1, outC: 6, padding: schema.PaddingValid, sh: 1, sw: 1, dh: 1, dw: 1},
	{name: "conv_i16_pc", dt: tensor.Int16, in: []int{1, 6, 5, 3}, kh: 3, kw: 3, outC: 4, padding: schema.PaddingSame, sh: 1, sw: 2, dh: 1, dw: 1, act: quant.ActRelu, perChannel: true},
	{name: "conv_i8_pc_tie", dt: tensor.Int8, in: []int{1, 6, 6, 3}, kh: 3, kw: 3, outC: 8, padding: schema.PaddingSame, sh: 1, sw: 1, dh: 1, dw: 1, perChannel: true, tie: true},
	{name: "conv_i8_pt_tie", dt: tensor.Int8, in: []int{1, 6, 6, 3}, kh: 3, kw: 3, outC: 8, padding: schema.PaddingSame, sh: 1, sw: 1, dh: 1, dw: 1, tie: true},
	{name: "conv_u8_tie", dt: tensor.Uint8, in: []int{1, 6, 6, 3}, kh: 3, kw: 3, outC: 8, padding: schema.PaddingSame, sh: 1, sw: 1, dh: 1, dw: 1, tie: true},
	{name: "dw_i8_tie", depthwise: true, dt: tensor.Int8, in: []int{1, 6, 6, 8}, kh: 3, kw: 3, outC: 8, padding: schema.PaddingSame, sh: 1, sw: 1, dh: 1, dw: 1, perChannel: true, tie: true},
	{name: "dw_u8_tie", depthwise: true, dt: tensor.Uint8, in: []int{1, 6, 6, 8}, kh: 3, kw: 3, outC: 8, padding: schema.PaddingSame, sh: 1, sw: 1, dh: 1, dw: 1, tie: true},
	{name: "dw_f32_mult2_s2", depthwise: true, dt: tensor.Float32, in: []int{1, 7, 6, 3}, kh: 3, kw: 3, outC: 6, padding: schema.PaddingSame, sh: 2, sw: 2, dh: 1, dw: 1, act: quant.ActRelu6},
	{name: "dw_f32_valid_dil", depthwise: true, dt: tensor.Float32, in: []int{2, 8, 8, 4}, kh: 3, kw: 2, outC: 4, padding: schema.PaddingValid, sh: 1, sw: 1, dh: 2, dw: 3},
	{name: "dw_i8_pc_same_relu6", depthwise: true, dt: tensor.Int8, in: []int{1, 7, 6, 8}, kh: 3, kw: 3, outC: 8, padding: schema.PaddingSame, sh: 1, sw: 1, dh: 1, dw: 1, act: quant.ActRelu6, perChannel: true},
	{name: "dw_i8_pc_mult3_s2_dil", depthwise: true, dt: tensor.Int8, in: []int{2, 9, 8, 2}, kh: 3, kw: 3, outC: 6, padding: schema.PaddingSame, sh: 2, sw: 2, dh: 2, dw: 1, perChannel: true},
	{name: "dw_i8_pt_valid_nobias", depthwise: true, dt: tensor.Int8, in: []int{1, 6, 6, 5}, kh: 3, kw: 3, outC: 5, padding: schema.PaddingValid, sh: 1, sw: 2, dh: 1, dw: 1, act: quant.ActRelu},
	{name: "dw_u8_same", depthwise: true, dt: tensor.Uint8, in: []int{1, 7, 6, 4}, kh: 3, kw: 3, outC: 8, padding: schema.PaddingSame, sh: 2, sw: 1, dh: 1, dw: 1, act: quant.ActRelu6},
	{name: "dw_i16_pc", depthwise: true, dt: tensor.Int16, in: []int{1, 6, 5, 3}, kh: 3, kw: 3, outC: 3, padding: schema.PaddingSame, sh: 1, sw: 1, dh: 1, dw: 1, perChannel: true},
	{name: "conv_hybrid_pc_same", dt: tensor.Float32, hybrid: true, in: []int{2, 6, 5, 3}, kh: 3, kw: 3, outC: 4, padding: schema.PaddingSame, sh: 1, sw: 1, dh: 1, dw: 1, perChannel: true, act: quant.ActRelu},
	{name: "conv_hybrid_pt_same", dt: tensor.Float32, hybrid: true, in: []int{2, 6, 5, 3}, kh: 3, kw: 3, outC: 4, padding: schema.PaddingSame, sh: 2, sw: 1, dh: 1, dw: 1},
	{name: "conv_hybrid_pc_1x1", dt: tensor.Float32, hybrid: true, in: []int{1, 4, 4, 6}, kh: 1, kw: 1, outC: 5, padding: schema.PaddingValid, sh: 1, sw: 1, dh: 1, dw: 1, perChannel: true},
	{name: "dw_hybrid_pc_same", depthwise: true, dt: tensor.Float32, hybrid: true, in: []int{2, 6, 5, 3}, kh: 3, kw: 3, outC: 6, padding: schema.PaddingSame, sh: 1, sw: 2, dh: 1, dw: 1, perChannel: true, act: quant.ActRelu6},
}

// seedOf derives a case's random data from its name, so cases can be
// added or reordered without changing the others' stored goldens.
func seedOf(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

func TestConvGolden(t *testing.T) {
	for _, c := range convCases {
		t.Run(c.name, func(t *testing.T) {
			s, m := c.model(t, rng(seedOf(c.name)))
			s.checkGolden(t, c.name, m)
		})
	}
}

// TestConvGoldenWithoutByteGemm runs the convolution goldens on the
// 16-bit SIMD GEMM, the path of CPUs without the byte GEMM (AVX-512 VNNI).
func TestConvGoldenWithoutByteGemm(t *testing.T) {
	defer conv.DisableByteGemm()()
	for _, c := range convCases {
		t.Run(c.name, func(t *testing.T) {
			s, m := c.model(t, rng(seedOf(c.name)))
			s.checkGolden(t, c.name, m)
		})
	}
}

// TestConvGoldenWithoutFusedRequant runs the convolution goldens with the
// byte GEMM's requantization separate from the microkernel (the path of
// CPUs with the byte GEMM but without the fused AVX-512 kernel, and of
// single-row tiles), so both stay covered on machines that fuse.
func TestConvGoldenWithoutFusedRequant(t *testing.T) {
	defer conv.DisableFusedRequant()()
	for _, c := range convCases {
		t.Run(c.name, func(t *testing.T) {
			s, m := c.model(t, rng(seedOf(c.name)))
			s.checkGolden(t, c.name, m)
		})
	}
}

// fcCase is one FULLY_CONNECTED model.
type fcCase struct {
	name       string
	dt, wt     tensor.DType // input and weights types
	in         []int
	units      int
	keepDims   bool
	asym       bool
	act        quant.Activation
	perChannel bool
	noBias     bool
	tie        bool
}

var fcCases = []fcCase{
	{name: "fc_f32_keepdims_relu", dt: tensor.Float32, in: []int{2, 3, 10}, units: 7, keepDims: true, act: quant.ActRelu},
	{name: "fc_f32_flatten_nobias", dt: tensor.Float32, in: []int{3, 2, 6}, units: 5, noBias: true},
	{name: "fc_i8", dt: tensor.Int8, in: []int{3, 20}, units: 9, act: quant.ActRelu6},
	{name: "fc_i8_nobias_keepdims", dt: tensor.Int8, in: []int{2, 2, 16}, units: 5, keepDims: true, noBias: true},
	{name: "fc_u8", dt: tensor.Uint8, in: []int{2, 24}, units: 6, act: quant.ActRelu},
	{name: "fc_i16", dt: tensor.Int16, in: []int{2, 12}, units: 5},
	{name: "fc_i8_tie", dt: tensor.Int8, in: []int{4, 10}, units: 16, tie: true},
	{name: "fc_u8_tie", dt: tensor.Uint8, in: []int{4, 10}, units: 16, tie: true},
	{name: "fc_hybrid", dt: tensor.Float32, wt: tensor.Int8, in: []int{3, 20}, units: 6, act: quant.ActRelu},
	{name: "fc_hybrid_asym", dt: tensor.Float32, wt: tensor.Int8, in: []int{3, 20}, units: 6, asym: true},
	{name: "fc_i8_pc", dt: tensor.Int8, in: []int{2, 12}, units: 6, perChannel: true},
}

func (c fcCase) model(t *testing.T, r *rand.Rand) (*single, []byte) {
	depth := c.in[len(c.in)-1]
	rows := tensor.NumElements(c.in) / depth
	d := makeQuant(r, c.dt, rows*depth, c.units*depth, c.units, depth, 0, c.perChannel, c.tie)
	if c.wt == tensor.Int8 && c.dt == tensor.Float32 {
		d.wType, d.wQ, d.wData = tensor.Int8, kerneltest.Q(0.02, 0), kerneltest.RandInt8(r, c.units*depth, -127, 127)
		if c.perChannel {
			d.wQ = qc(0, channelScales(r, c.units, 0.02)...)
		}
	}
	s := newSingle()
	in := s.input(c.dt, c.in, d.inQ, d.inData)
	wt := s.constant(d.wType, []int{c.units, depth}, d.wQ, d.wData)
	bias := -1
	if !c.noBias {
		bias = s.constant(d.biasType, []int{c.units}, d.bQ, d.bias)
	}
	outShape := []int{rows, c.units}
	if c.keepDims {
		outShape = append(append([]int{}, c.in[:len(c.in)-1]...), c.units)
	}
	s.output(c.dt, outShape, d.outQ)
	opts := &schema.FullyConnectedOptions{Activation: c.act, KeepNumDims: c.keepDims, AsymmetricQuantizeInputs: c.asym}
	return s, s.op(t, schema.OpFullyConnected, 1, opts, in, wt, bias)
}

func TestFullyConnectedGolden(t *testing.T) {
	for _, c := range fcCases {
		t.Run(c.name, func(t *testing.T) {
			s, m := c.model(t, rng(seedOf(c.name)))
			s.checkGolden(t, c.name, m)
		})
	}
}

// tconvCase is one TRANSPOSE_CONV model.
type tconvCase struct {
	name       string
	dt         tensor.DType
	in         []int
	kh, kw     int
	outC       int
	outHW      [2]int
	padding    schema.Padding
	sh, sw     int
	perChannel bool
	bias       bool
}

var tconvCases = []tconvCase{
	{name: "tconv_f32_same_s2", dt: tensor.Float32, in: []int{1, 3, 4, 3}, kh: 3, kw: 3, outC: 2, outHW: [2]int{6, 8}, padding: schema.PaddingSame, sh: 2, sw: 2},
	{name: "tconv_f32_valid", dt: tensor.Float32, in: []int{2, 3, 3, 2}, kh: 2, kw: 3, outC: 3, outHW: [2]int{4, 5}, padding: schema.PaddingValid, sh: 1, sw: 1},
	{name: "tconv_i8_pc_same_s2", dt: tensor.Int8, in: []int{1, 3, 4, 3}, kh: 3, kw: 3, outC: 4, outHW: [2]int{6, 8}, padding: schema.PaddingSame, sh: 2, sw: 2, perChannel: true},
	{name: "tconv_i8_pt_valid", dt: tensor.Int8, in: []int{1, 3, 3, 2}, kh: 3, kw: 2, outC: 3, outHW: [2]int{7, 6}, padding: schema.PaddingValid, sh: 2, sw: 2},
	{name: "tconv_u8_same", dt: tensor.Uint8, in: []int{1, 3, 3, 2}, kh: 3, kw: 3, outC: 3, outHW: [2]int{6, 6}, padding: schema.PaddingSame, sh: 2, sw: 2},
	{name: "tconv_i16_pc", dt: tensor.Int16, in: []int{1, 3, 3, 2}, kh: 2, kw: 2, outC: 3, outHW: [2]int{6, 6}, padding: schema.PaddingSame, sh: 2, sw: 2, perChannel: true},
}

func (c tconvCase) model(t *testing.T, r *rand.Rand, withBias bool) (*single, []byte) {
	n, h, w, ic := c.in[0], c.in[1], c.in[2], c.in[3]
	wShape := []int{c.outC, c.kh, c.kw, ic}
	taps := float64(c.kh*c.kw*ic) / float64(c.sh*c.sw)
	d := makeQuant(r, c.dt, n*h*w*ic, tensor.NumElements(wShape), c.outC, max(1, int(taps)), 0, c.perChannel, false)
	s := newSingle()
	shape := s.constant(tensor.Int32, []int{4}, nil, kerneltest.I32(int32(n), int32(c.outHW[0]), int32(c.outHW[1]), int32(c.outC)))
	wt := s.constant(d.wType, wShape, d.wQ, d.wData)
	in := s.input(c.dt, c.in, d.inQ, d.inData)
	bias := -1
	if withBias {
		bias = s.constant(d.biasType, []int{c.outC}, d.bQ, d.bias)
	}
	s.output(c.dt, []int{n, c.outHW[0], c.outHW[1], c.outC}, d.outQ)
	opts := &schema.TransposeConvOptions{Padding: c.padding, StrideW: c.sw, StrideH: c.sh}
	inputs := []int{shape, wt, in}
	if withBias {
		inputs = append(inputs, bias)
	}
	return s, s.op(t, schema.OpTransposeConv, 1, opts, inputs...)
}

func TestTransposeConvGolden(t *testing.T) {
	for _, c := range tconvCases {
		for _, withBias := range []bool{false, true} {
			name := c.name
			if withBias {
				name += "_bias"
			}
			t.Run(name, func(t *testing.T) {
				s, m := c.model(t, rng(seedOf(name)), withBias)
				s.checkGolden(t, name, m)
			})
		}
	}
}

// bmmCase is one BATCH_MATMUL model.
type bmmCase struct {
	name       string
	dt         tensor.DType
	lhs, rhs   []int
	adjX, adjY bool
	tie        bool
	hybrid     bool // float lhs, int8 rhs
	asym       bool
}

var bmmCases = []bmmCase{
	{name: "bmm_f32_broadcast", dt: tensor.Float32, lhs: []int{2, 1, 3, 4}, rhs: []int{3, 4, 5}},
	{name: "bmm_f32_adj", dt: tensor.Float32, lhs: []int{2, 4, 3}, rhs: []int{2, 5, 4}, adjX: true, adjY: true},
	{name: "bmm_i8", dt: tensor.Int8, lhs: []int{2, 3, 16}, rhs: []int{2, 16, 5}},
	{name: "bmm_i8_tie", dt: tensor.Int8, lhs: []int{2, 4, 10}, rhs: []int{2, 10, 16}, tie: true},
	{name: "bmm_i8_adj_broadcast", dt: tensor.Int8, lhs: []int{3, 12, 4}, rhs: []int{1, 6, 12}, adjX: true, adjY: true},
	{name: "bmm_hybrid", dt: tensor.Float32, hybrid: true, lhs: []int{2, 3, 8}, rhs: []int{2, 8, 5}},
	{name: "bmm_hybrid_asym_adj", dt: tensor.Float32, hybrid: true, asym: true, lhs: []int{2, 8, 3}, rhs: []int{1, 5, 8}, adjX: true, adjY: true},
	{name: "bmm_i16", dt: tensor.Int16, lhs: []int{2, 3, 8}, rhs: []int{2, 8, 5}},
}

func (c bmmCase) model(t *testing.T, r *rand.Rand) (*single, []byte) {
	m, k := c.lhs[len(c.lhs)-2], c.lhs[len(c.lhs)-1]
	if c.adjX {
		m, k = k, m
	}
	n := c.rhs[len(c.rhs)-1]
	if c.adjY {
		n = c.rhs[len(c.rhs)-2]
	}
	rank := max(len(c.lhs), len(c.rhs))
	outShape := make([]int, rank)
	for i := 0; i < rank-2; i++ {
		a, b := 1, 1
		if j := i - (rank - len(c.lhs)); j >= 0 {
			a = c.lhs[j]
		}
		if j := i - (rank - len(c.rhs)); j >= 0 {
			b = c.rhs[j]
		}
		outShape[i] = max(a, b)
	}
	outShape[rank-2], outShape[rank-1] = m, n
	s := newSingle()
	var lq, rq, oq *tensor.Quantization
	var ld, rd []byte
	if c.dt == tensor.Float32 {
		ld, rd = kerneltest.RandF32(r, tensor.NumElements(c.lhs), -2, 2), kerneltest.RandF32(r, tensor.NumElements(c.rhs), -1, 1)
	} else if c.dt == tensor.Int16 {
		lq, rq = kerneltest.Q(0.001, 0), kerneltest.Q(0.0005, 0)
		oq = kerneltest.Q(float32(0.001*0.0005*math.Sqrt(float64(k))*17000*17000/8000), 0)
		ld, rd = kerneltest.RandInt16(r, tensor.NumElements(c.lhs), -30000, 30000), kerneltest.RandInt16(r, tensor.NumElements(c.rhs), -30000, 30000)
	} else {
		lq, rq = kerneltest.Q(0.05, 3), kerneltest.Q(0.02, -4)
		oq = kerneltest.Q(scaleFor(0.05, 0.02, k), -2)
		ld, rd = kerneltest.RandInt8(r, tensor.NumElements(c.lhs), -128, 127), kerneltest.RandInt8(r, tensor.NumElements(c.rhs), -128, 127)
		if c.tie {
			ld, rd = kerneltest.RandInt8(r, tensor.NumElements(c.lhs), 3-6, 3+6), kerneltest.RandInt8(r, tensor.NumElements(c.rhs), -4-6, -4+6)
			oq = kerneltest.Q(0.05*0.02*2.5, -2)
		}
	}
	l := s.input(c.dt, c.lhs, lq, ld)
	var rr int
	if c.hybrid {
		rr = s.constant(tensor.Int8, c.rhs, kerneltest.Q(0.02, 0), kerneltest.RandInt8(r, tensor.NumElements(c.rhs), -127, 127))
	} else {
		rr = s.input(c.dt, c.rhs, rq, rd)
	}
	s.output(c.dt, outShape, oq)
	return s, s.op(t, schema.OpBatchMatMul, 1, &schema.BatchMatMulOptions{AdjX: c.adjX, AdjY: c.adjY, AsymmetricQuantizeInputs: c.asym}, l, rr)
}

func TestBatchMatMulGolden(t *testing.T) {
	for _, c := range bmmCases {
		t.Run(c.name, func(t *testing.T) {
			s, m := c.model(t, rng(seedOf(c.name)))
			s.checkGolden(t, c.name, m)
		})
	}
}

// TestReferenceRoundingSwitch checks that the tie cases discriminate: with
// the interpreter's reference (double) rounding the int8 CONV_2D,
// FULLY_CONNECTED and BATCH_MATMUL results differ from TensorFlow Lite's
// builtin kernels (single rounding), while DEPTHWISE_CONV_2D and uint8
// kernels round twice in both modes.
func TestReferenceRoundingSwitch(t *testing.T) {
	check := func(name string, s *single, m []byte, wantEqual bool) {
		want := kerneltest.Golden(t, name, m, s.inData)
		got := singleop.Run(t, m, s.inData, inference.WithReferenceRounding())
		if eq := bytes.Equal(got[0], want[0]); eq != wantEqual {
			t.Errorf("%s: reference rounding equal to TFLite = %v, want %v", name, eq, wantEqual)
		}
	}
	for _, c := range convCases {
		if c.tie {
			s, m := c.model(t, rng(seedOf(c.name)))
			check(c.name, s, m, c.dt != tensor.Int8 || c.depthwise)
		}
	}
	for _, c := range fcCases {
		if c.tie {
			s, m := c.model(t, rng(seedOf(c.name)))
			check(c.name, s, m, c.dt != tensor.Int8)
		}
	}
	for _, c := range bmmCases {
		if c.tie {
			s, m := c.model(t, rng(seedOf(c.name)))
			check(c.name, s, m, false)
		}
	}
}
