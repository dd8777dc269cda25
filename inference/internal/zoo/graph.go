package zoo

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/edgefleet/edgefleet/inference/modelbuilder"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/quant"
)

// prng is a self-contained splitmix64 generator: the zoo's weights and
// inputs must not change when the standard library's generators do, or the
// stored goldens would no longer match the rebuilt models.
type prng struct{ s uint64 }

func (p *prng) next() uint64 {
	p.s += 0x9e3779b97f4a7c15
	z := p.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// uniform returns a float64 in [lo, hi).
func (p *prng) uniform(lo, hi float64) float64 {
	return lo + (hi-lo)*float64(p.next()>>11)/(1<<53)
}

// intn returns an int in [0, n).
func (p *prng) intn(n int) int { return int(p.next() % uint64(n)) }

// graph wraps a modelbuilder.Builder with converter-like tensor creation:
// every activation tensor carries an approximate real range, from which
// its quantization parameters derive in the graph's Mode, and weights are
// drawn as float values then quantized the way the TFLite converter does.
type graph struct {
	b      *modelbuilder.Builder
	r      *prng
	mode   Mode
	lo, hi map[int]float64
	// rms is each activation's estimated root mean square, which sets the
	// next layer's weight magnitude (as batch-norm folding keeps signals
	// from decaying or exploding through a trained network).
	rms map[int]float64
	n   int // names tensors uniquely
	// biasFrac sets bias magnitudes relative to a layer's output target.
	biasFrac float64
}

func newGraph(mode Mode, seed uint64) *graph {
	return &graph{b: modelbuilder.New(), r: &prng{s: seed}, mode: mode, lo: map[int]float64{}, hi: map[int]float64{}, rms: map[int]float64{}, biasFrac: 0.2}
}

func (g *graph) tensor(i int) modelbuilder.Tensor { return g.b.Main().Tensors[i] }

func (g *graph) shape(i int) []int { return append([]int(nil), g.b.Main().Tensors[i].Shape...) }

func (g *graph) scale(i int) float64 {
	q := g.tensor(i).Quant
	if q == nil || len(q.Scale) == 0 {
		return 1
	}
	return float64(q.Scale[0])
}

func (g *graph) name(base string) string {
	g.n++
	return fmt.Sprintf("%s_%d", base, g.n)
}

// actType is the dtype of activations in the graph's mode.
func (g *graph) actType() tensor.DType {
	switch g.mode {
	case Int8:
		return tensor.Int8
	case Uint8:
		return tensor.Uint8
	case Int16x8:
		return tensor.Int16
	}
	return tensor.Float32
}

// rangeQ returns quantization parameters covering [lo, hi] for dtype dt:
// asymmetric for int8/uint8 (with zero exactly representable), symmetric
// with zero point 0 for int16, as the converter chooses them.
func rangeQ(dt tensor.DType, lo, hi float64) *tensor.Quantization {
	lo, hi = math.Min(lo, 0), math.Max(hi, 0)
	if hi-lo < 1e-6 {
		hi = lo + 1e-6
	}
	switch dt {
	case tensor.Int8, tensor.Uint8:
		qmin := -128.0
		if dt == tensor.Uint8 {
			qmin = 0
		}
		s := (hi - lo) / 255
		zp := math.Round(qmin - lo/s)
		zp = math.Max(qmin, math.Min(qmin+255, zp))
		return &tensor.Quantization{Scale: []float32{float32(s)}, ZeroPoint: []int64{int64(zp)}}
	case tensor.Int16:
		s := math.Max(-lo, hi) / 32767
		return &tensor.Quantization{Scale: []float32{float32(s)}, ZeroPoint: []int64{0}}
	}
	return nil
}

// fixedQ returns a fixed scale and zero point (nil in float mode).
func (g *graph) fixedQ(scale float64, zp int64) *tensor.Quantization {
	if g.mode == Float32 {
		return nil
	}
	return &tensor.Quantization{Scale: []float32{float32(scale)}, ZeroPoint: []int64{zp}}
}

// input adds a model input activation with real range [lo, hi].
func (g *graph) input(name string, shape []int, lo, hi float64) int {
	return g.act(name, shape, lo, hi)
}

// act adds an activation tensor with real range [lo, hi].
func (g *graph) act(name string, shape []int, lo, hi float64) int {
	dt := g.actType()
	i := g.b.AddTensor(modelbuilder.Tensor{Name: name, Type: dt, Shape: shape, Quant: rangeQ(dt, lo, hi)})
	g.lo[i], g.hi[i] = math.Min(lo, 0), math.Max(hi, 0)
	return i
}

// actQ adds an activation tensor with explicit quantization.
func (g *graph) actQ(name string, dt tensor.DType, shape []int, q *tensor.Quantization, lo, hi float64) int {
	i := g.b.AddTensor(modelbuilder.Tensor{Name: name, Type: dt, Shape: shape, Quant: q})
	g.lo[i], g.hi[i] = lo, hi
	return i
}

// like adds an activation with the same dtype, quantization and range as
// src (outputs of RESHAPE, POOL, RESIZE, PAD, ... which keep the scale).
func (g *graph) like(name string, shape []int, src int) int {
	t := g.tensor(src)
	i := g.b.AddTensor(modelbuilder.Tensor{Name: name, Type: t.Type, Shape: shape, Quant: t.Quant})
	g.lo[i], g.hi[i] = g.lo[src], g.hi[src]
	if r, ok := g.rms[src]; ok {
		g.rms[i] = r
	}
	return i
}

// absMax is the largest magnitude in src's range.
func (g *graph) absMax(src int) float64 { return math.Max(-g.lo[src], g.hi[src]) }

// rmsOf is src's estimated root mean square (uniform over its range unless
// a layer recorded better).
func (g *graph) rmsOf(src int) float64 {
	if r, ok := g.rms[src]; ok {
		return r
	}
	return math.Max(g.absMax(src), 1e-3) / math.Sqrt(3)
}

// setLayerRMS records the rms of a layer output whose pre-activation
// magnitude target was out (standard deviation out/2.5).
func (g *graph) setLayerRMS(y int, act quant.Activation, out float64) {
	s := out / 2.5
	switch act {
	case quant.ActRelu, quant.ActRelu6:
		s /= math.Sqrt2
	}
	g.rms[y] = s
}

// op appends an operator with the version the converter would give it
// for the graph's mode.
func (g *graph) op(code schema.BuiltinOperator, opts any, ins []int, outs ...int) {
	g.b.AddOp(modelbuilder.Op{Builtin: code, Version: g.version(code), Inputs: ins, Outputs: outs, Options: opts})
}

// version returns the op version TensorFlow's converter writes for code
// in the graph's mode (lib/tools/versioning/op_version.cc, for the
// features the zoo uses).
func (g *graph) version(code schema.BuiltinOperator) int {
	switch g.mode {
	case Int8:
		switch code {
		case schema.OpConv2D, schema.OpDepthwiseConv2D:
			return 3
		case schema.OpFullyConnected:
			return 4
		case schema.OpUnidirectionalSequenceLstm, schema.OpSvdf:
			return 3
		case schema.OpReshape, schema.OpSqueeze, schema.OpPack, schema.OpUnpack, schema.OpHardSwish, schema.OpPrelu, schema.OpSelectV2, schema.OpShape, schema.OpExpandDims:
			return 1
		default:
			return 2
		}
	case Int16x8:
		switch code {
		case schema.OpConv2D:
			return 4
		case schema.OpDepthwiseConv2D:
			return 5
		case schema.OpFullyConnected:
			return 7
		case schema.OpSoftmax, schema.OpMean, schema.OpAdd, schema.OpLogistic:
			return 3
		case schema.OpReshape, schema.OpSqueeze:
			return 1
		default:
			return 3
		}
	}
	return 1
}

// constInt32 adds a constant int32 tensor (shapes, axes, paddings).
func (g *graph) constInt32(name string, shape []int, v ...int) int {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(int32(x)))
	}
	return g.b.AddTensor(modelbuilder.Tensor{Name: name, Type: tensor.Int32, Shape: shape, Data: b})
}

// constFloat adds a constant float32 tensor.
func (g *graph) constFloat(name string, shape []int, v ...float64) int {
	return g.b.AddTensor(modelbuilder.Tensor{Name: name, Type: tensor.Float32, Shape: shape, Data: f32Bytes(v)})
}

// constAct adds a constant activation-typed tensor holding the real
// values v (quantized to the graph's mode, symmetric range for int16).
func (g *graph) constAct(name string, shape []int, v []float64) int {
	lo, hi := 0.0, 0.0
	for _, x := range v {
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	dt := g.actType()
	q := rangeQ(dt, lo, hi)
	i := g.b.AddTensor(modelbuilder.Tensor{Name: name, Type: dt, Shape: shape, Quant: q, Data: quantizeAll(dt, q, v)})
	g.lo[i], g.hi[i] = lo, hi
	return i
}

// quantizeAll quantizes real values with per-tensor q into dt's bytes.
func quantizeAll(dt tensor.DType, q *tensor.Quantization, v []float64) []byte {
	if dt == tensor.Float32 {
		return f32Bytes(v)
	}
	s, zp := float64(q.Scale[0]), float64(q.ZeroPoint[0])
	out := make([]byte, len(v)*dt.Size())
	for i, x := range v {
		qv := math.Round(x/s) + zp
		putInt(dt, out, i, qv)
	}
	return out
}

// putInt stores v, saturated to dt's range, as element i of b.
func putInt(dt tensor.DType, b []byte, i int, v float64) {
	switch dt {
	case tensor.Int8:
		b[i] = byte(int8(math.Max(-128, math.Min(127, v))))
	case tensor.Uint8:
		b[i] = byte(math.Max(0, math.Min(255, v)))
	case tensor.Int16:
		binary.LittleEndian.PutUint16(b[2*i:], uint16(int16(math.Max(-32768, math.Min(32767, v)))))
	case tensor.Int32:
		binary.LittleEndian.PutUint32(b[4*i:], uint32(int32(math.Max(math.MinInt32, math.Min(math.MaxInt32, v)))))
	case tensor.Int64:
		binary.LittleEndian.PutUint64(b[8*i:], uint64(int64(v)))
	}
}

func f32Bytes(v []float64) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(x)))
	}
	return b
}

// weights adds a constant weight tensor of shape holding float values
// drawn uniformly with per-channel (dimension dim) magnitudes around wmax,
// quantized as the converter does in the graph's mode: int8 symmetric
// per-channel (per-tensor when perTensor), uint8 asymmetric per-tensor,
// float32 unchanged. It returns the tensor and each channel's scale.
func (g *graph) weights(name string, shape []int, dim int, wmax float64, perTensor bool) (int, []float64) {
	n := tensor.NumElements(shape)
	ch := shape[dim]
	inner := 1
	for _, d := range shape[dim+1:] {
		inner *= d
	}
	gain := make([]float64, ch)
	for c := range gain {
		gain[c] = wmax * g.r.uniform(0.5, 1.5)
	}
	w := make([]float64, n)
	for i := range w {
		c := (i / inner) % ch
		w[i] = g.r.uniform(-gain[c], gain[c])
	}
	scales := make([]float64, ch)
	switch g.mode {
	case Float32:
		for c := range scales {
			scales[c] = 1
		}
		return g.b.AddTensor(modelbuilder.Tensor{Name: name, Type: tensor.Float32, Shape: shape, Data: f32Bytes(w)}), scales
	case Uint8:
		lo, hi := 0.0, 0.0
		for _, x := range w {
			lo, hi = math.Min(lo, x), math.Max(hi, x)
		}
		q := rangeQ(tensor.Uint8, lo, hi)
		for c := range scales {
			scales[c] = float64(q.Scale[0])
		}
		return g.b.AddTensor(modelbuilder.Tensor{Name: name, Type: tensor.Uint8, Shape: shape, Data: quantizeAll(tensor.Uint8, q, w), Quant: q}), scales
	}
	// int8 symmetric, narrow range [-127, 127].
	maxAbs := make([]float64, ch)
	for i, x := range w {
		c := (i / inner) % ch
		if perTensor {
			c = 0
		}
		maxAbs[c] = math.Max(maxAbs[c], math.Abs(x))
	}
	q := &tensor.Quantization{Dim: dim}
	for c := range scales {
		src := c
		if perTensor {
			src = 0
		}
		scales[c] = maxAbs[src] / 127
	}
	if perTensor {
		q.Scale, q.ZeroPoint, q.Dim = []float32{float32(scales[0])}, []int64{0}, 0
	} else {
		for c := range scales {
			q.Scale = append(q.Scale, float32(scales[c]))
			q.ZeroPoint = append(q.ZeroPoint, 0)
		}
	}
	data := make([]byte, n)
	for i, x := range w {
		c := (i / inner) % ch
		putInt(tensor.Int8, data, i, math.Round(x/float64(q.Scale[min(c, len(q.Scale)-1)])))
	}
	return g.b.AddTensor(modelbuilder.Tensor{Name: name, Type: tensor.Int8, Shape: shape, Data: data, Quant: q}), scales
}

// bias adds a bias vector of n channels for input in and weight scales ws:
// float32, or int32 (int64 in int16x8 mode) with scale in_scale*w_scale[c].
func (g *graph) bias(name string, n, in int, ws []float64, bmax float64) int {
	v := make([]float64, n)
	for i := range v {
		v[i] = g.r.uniform(-bmax, bmax)
	}
	if g.mode == Float32 {
		return g.b.AddTensor(modelbuilder.Tensor{Name: name, Type: tensor.Float32, Shape: []int{n}, Data: f32Bytes(v)})
	}
	dt := tensor.Int32
	if g.mode == Int16x8 {
		dt = tensor.Int64
	}
	inS := g.scale(in)
	perChannel := false
	for _, s := range ws {
		perChannel = perChannel || s != ws[0]
	}
	q := &tensor.Quantization{}
	data := make([]byte, n*dt.Size())
	for c := 0; c < n; c++ {
		s := float32(inS * ws[c])
		if perChannel || c == 0 {
			q.Scale = append(q.Scale, s)
			q.ZeroPoint = append(q.ZeroPoint, 0)
		}
		putInt(dt, data, c, math.Round(v[c]/float64(s)))
	}
	return g.b.AddTensor(modelbuilder.Tensor{Name: name, Type: dt, Shape: []int{n}, Data: data, Quant: q})
}

// actRange applies a fused activation to a pre-activation range [-r, r].
func actRange(act quant.Activation, r float64) (float64, float64) {
	switch act {
	case quant.ActRelu:
		return 0, r
	case quant.ActRelu6:
		return 0, math.Min(r, 6)
	case quant.ActReluN1To1:
		return -1, 1
	}
	return -r, r
}

// wmaxFor picks the weight magnitude that makes a k-long dot product of
// the input's range come out near out (as batch-norm folding does).
func (g *graph) wmaxFor(in, k int, out float64) float64 {
	sIn := math.Max(g.rmsOf(in), 1e-4)
	return math.Sqrt(3) * (out / 2.5) / (math.Sqrt(float64(k)) * sIn)
}

func convOut(p schema.Padding, in, f, s, d int) int {
	if p == schema.PaddingSame {
		return (in + s - 1) / s
	}
	return (in - ((f-1)*d + 1) + s) / s
}

// conv adds CONV_2D with outC filters of kh×kw; out is the target
// pre-activation magnitude.
func (g *graph) conv(x, outC, kh, kw, stride, dil int, pad schema.Padding, act quant.Activation, out float64) int {
	s := g.shape(x)
	ic := s[3]
	w, ws := g.weights(g.name("conv/w"), []int{outC, kh, kw, ic}, 0, g.wmaxFor(x, kh*kw*ic, out), false)
	b := g.bias(g.name("conv/b"), outC, x, ws, g.biasFrac*out)
	lo, hi := actRange(act, out)
	y := g.act(g.name("conv"), []int{s[0], convOut(pad, s[1], kh, stride, dil), convOut(pad, s[2], kw, stride, dil), outC}, lo, hi)
	g.setLayerRMS(y, act, out)
	g.op(schema.OpConv2D, &schema.Conv2DOptions{Padding: pad, StrideW: stride, StrideH: stride, Activation: act, DilationW: dil, DilationH: dil}, []int{x, w, b}, y)
	return y
}

// dw adds DEPTHWISE_CONV_2D with depth multiplier mult.
func (g *graph) dw(x, k, stride, dil, mult int, pad schema.Padding, act quant.Activation, out float64) int {
	s := g.shape(x)
	oc := s[3] * mult
	w, ws := g.weights(g.name("dw/w"), []int{1, k, k, oc}, 3, g.wmaxFor(x, k*k, out), false)
	b := g.bias(g.name("dw/b"), oc, x, ws, g.biasFrac*out)
	lo, hi := actRange(act, out)
	y := g.act(g.name("dw"), []int{s[0], convOut(pad, s[1], k, stride, dil), convOut(pad, s[2], k, stride, dil), oc}, lo, hi)
	g.setLayerRMS(y, act, out)
	g.op(schema.OpDepthwiseConv2D, &schema.DepthwiseConv2DOptions{Padding: pad, StrideW: stride, StrideH: stride, DepthMultiplier: mult, Activation: act, DilationW: dil, DilationH: dil}, []int{x, w, b}, y)
	return y
}

// fc adds FULLY_CONNECTED with per-tensor weights (the converter's default).
func (g *graph) fc(x, units int, act quant.Activation, out float64, keepDims bool) int {
	s := g.shape(x)
	k := s[len(s)-1]
	w, ws := g.weights(g.name("fc/w"), []int{units, k}, 0, g.wmaxFor(x, k, out), true)
	b := g.bias(g.name("fc/b"), units, x, ws, g.biasFrac*out)
	lo, hi := actRange(act, out)
	os := []int{tensor.NumElements(s) / k, units}
	if keepDims {
		os = append(s[:len(s)-1:len(s)-1], units)
	}
	y := g.act(g.name("fc"), os, lo, hi)
	g.setLayerRMS(y, act, out)
	g.op(schema.OpFullyConnected, &schema.FullyConnectedOptions{Activation: act, KeepNumDims: keepDims}, []int{x, w, b}, y)
	return y
}

// transposeConv adds TRANSPOSE_CONV (with bias) upsampling by stride.
func (g *graph) transposeConv(x, outC, k, stride int, pad schema.Padding, out float64) int {
	s := g.shape(x)
	ic := s[3]
	oh, ow := s[1]*stride, s[2]*stride
	if pad == schema.PaddingValid {
		oh, ow = (s[1]-1)*stride+k, (s[2]-1)*stride+k
	}
	eff := max(1, k*k*ic/(stride*stride))
	w, ws := g.weights(g.name("tconv/w"), []int{outC, k, k, ic}, 0, g.wmaxFor(x, eff, out), false)
	b := g.bias(g.name("tconv/b"), outC, x, ws, g.biasFrac*out)
	shp := g.constInt32(g.name("tconv/shape"), []int{4}, s[0], oh, ow, outC)
	y := g.act(g.name("tconv"), []int{s[0], oh, ow, outC}, -out, out)
	g.setLayerRMS(y, none, out)
	g.op(schema.OpTransposeConv, &schema.TransposeConvOptions{Padding: pad, StrideW: stride, StrideH: stride}, []int{shp, w, x, b}, y)
	return y
}

// add adds ADD (or SUB) of a and b with a fused activation.
func (g *graph) add(code schema.BuiltinOperator, a, b int, act quant.Activation) int {
	lo, hi := g.lo[a]+g.lo[b], g.hi[a]+g.hi[b]
	if code == schema.OpSub {
		lo, hi = g.lo[a]-g.hi[b], g.hi[a]-g.lo[b]
	}
	switch act {
	case quant.ActRelu:
		lo = 0
	case quant.ActRelu6:
		lo, hi = 0, math.Min(hi, 6)
	}
	sa, sb := g.shape(a), g.shape(b)
	if len(sb) > len(sa) {
		sa = sb
	}
	y := g.act(g.name("add"), sa, lo, hi)
	g.rms[y] = math.Hypot(g.rmsOf(a), g.rmsOf(b))
	g.op(code, &schema.ActivationOptions{Activation: act, PotScaleInt16: g.mode != Int16x8}, []int{a, b}, y)
	return y
}

// mean adds MEAN over axes.
func (g *graph) mean(x int, axes []int, keep bool, shape []int) int {
	ax := g.constInt32(g.name("mean/axes"), []int{len(axes)}, axes...)
	// Means shrink the range; the converter calibrates a narrower one.
	y := g.act(g.name("mean"), shape, 0.7*g.lo[x], 0.7*g.hi[x])
	g.rms[y] = 0.7 * g.rmsOf(x)
	g.op(schema.OpMean, &schema.ReducerOptions{KeepDims: keep}, []int{x, ax}, y)
	return y
}

// reshape adds RESHAPE to shape (with the shape as an input tensor, as the
// converter writes it).
func (g *graph) reshape(x int, shape []int) int {
	st := g.constInt32(g.name("reshape/shape"), []int{len(shape)}, shape...)
	y := g.like(g.name("reshape"), shape, x)
	g.op(schema.OpReshape, &schema.ReshapeOptions{NewShape: shape}, []int{x, st}, y)
	return y
}

// softmax adds SOFTMAX with the fixed output quantization TFLite requires.
func (g *graph) softmax(x int, beta float64) int {
	s := g.shape(x)
	var y int
	switch g.mode {
	case Int8:
		y = g.actQ(g.name("softmax"), tensor.Int8, s, g.fixedQ(1.0/256, -128), 0, 1)
	case Uint8:
		y = g.actQ(g.name("softmax"), tensor.Uint8, s, g.fixedQ(1.0/256, 0), 0, 1)
	case Int16x8:
		y = g.actQ(g.name("softmax"), tensor.Int16, s, g.fixedQ(1.0/32768, 0), 0, 1)
	default:
		y = g.actQ(g.name("softmax"), tensor.Float32, s, nil, 0, 1)
	}
	g.op(schema.OpSoftmax, &schema.SoftmaxOptions{Beta: float32(beta)}, []int{x}, y)
	return y
}

// logistic adds LOGISTIC with the fixed output quantization.
func (g *graph) logistic(x int) int {
	s := g.shape(x)
	var y int
	switch g.mode {
	case Int8:
		y = g.actQ(g.name("sigmoid"), tensor.Int8, s, g.fixedQ(1.0/256, -128), 0, 1)
	case Uint8:
		y = g.actQ(g.name("sigmoid"), tensor.Uint8, s, g.fixedQ(1.0/256, 0), 0, 1)
	case Int16x8:
		y = g.actQ(g.name("sigmoid"), tensor.Int16, s, g.fixedQ(1.0/32768, 0), 0, 1)
	default:
		y = g.actQ(g.name("sigmoid"), tensor.Float32, s, nil, 0, 1)
	}
	g.op(schema.OpLogistic, nil, []int{x}, y)
	return y
}

// tanh adds TANH with the fixed output quantization (1/128 for int8 and
// uint8 with zero point 0 / 128, 1/32768 for int16).
func (g *graph) tanh(x int) int {
	s := g.shape(x)
	var y int
	switch g.mode {
	case Int8:
		y = g.actQ(g.name("tanh"), tensor.Int8, s, g.fixedQ(1.0/128, 0), -1, 1)
	case Uint8:
		y = g.actQ(g.name("tanh"), tensor.Uint8, s, g.fixedQ(1.0/128, 128), -1, 1)
	case Int16x8:
		y = g.actQ(g.name("tanh"), tensor.Int16, s, g.fixedQ(1.0/32768, 0), -1, 1)
	default:
		y = g.actQ(g.name("tanh"), tensor.Float32, s, nil, -1, 1)
	}
	g.rms[y] = 0.6
	g.op(schema.OpTanh, nil, []int{x}, y)
	return y
}

// resize adds RESIZE_BILINEAR to h×w.
func (g *graph) resize(x, h, w int, alignCorners, halfPixel bool) int {
	s := g.shape(x)
	size := g.constInt32(g.name("resize/size"), []int{2}, h, w)
	y := g.like(g.name("resize"), []int{s[0], h, w, s[3]}, x)
	g.op(schema.OpResizeBilinear, &schema.ResizeOptions{AlignCorners: alignCorners, HalfPixelCenters: halfPixel}, []int{x, size}, y)
	return y
}

// concat adds CONCATENATION along axis; the output range covers all inputs.
func (g *graph) concat(axis int, xs ...int) int {
	s := g.shape(xs[0])
	s[axis] = 0
	lo, hi := 0.0, 0.0
	for _, x := range xs {
		s[axis] += g.shape(x)[axis]
		lo, hi = math.Min(lo, g.lo[x]), math.Max(hi, g.hi[x])
	}
	y := g.act(g.name("concat"), s, lo, hi)
	ss := 0.0
	for _, x := range xs {
		ss += g.rmsOf(x) * g.rmsOf(x)
	}
	g.rms[y] = math.Sqrt(ss / float64(len(xs)))
	if g.mode == Int8 || g.mode == Int16x8 {
		// TensorFlow Lite's int8/int16 CONCATENATION requires every input
		// to share the output's scale and zero point; where the producers'
		// scales differ the converter inserts a requantizing QUANTIZE.
		q := g.tensor(y).Quant
		for k, x := range xs {
			xq := g.tensor(x).Quant
			if xq.Scale[0] == q.Scale[0] && xq.ZeroPoint[0] == q.ZeroPoint[0] {
				continue
			}
			r := g.b.AddTensor(modelbuilder.Tensor{Name: g.name("requantize"), Type: g.actType(), Shape: g.shape(x), Quant: q})
			g.lo[r], g.hi[r], g.rms[r] = g.lo[x], g.hi[x], g.rmsOf(x)
			g.op(schema.OpQuantize, nil, []int{x}, r)
			xs[k] = r
		}
	}
	g.op(schema.OpConcatenation, &schema.ConcatenationOptions{Axis: axis}, xs, y)
	return y
}

// finish serializes the graph with inputs and outputs.
func (g *graph) finish(name string, ins, outs []int) ([]byte, error) {
	g.b.SetIO(ins, outs)
	g.b.Description = "edgefleet zoo " + name
	m, err := g.b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("zoo %s: %w", name, err)
	}
	return m, nil
}

// randomInput draws a deterministic input for model input i: uniform over
// its real range, quantized to its dtype.
func (g *graph) randomInput(i int) []byte {
	t := g.tensor(i)
	n := tensor.NumElements(t.Shape)
	v := make([]float64, n)
	for k := range v {
		v[k] = g.r.uniform(g.lo[i], g.hi[i])
	}
	if t.Type == tensor.Float32 {
		return f32Bytes(v)
	}
	return quantizeAll(t.Type, t.Quant, v)
}

// pad adds PAD with per-dimension (before, after) paddings; quantized
// tensors pad with their zero point.
func (g *graph) pad(x int, p ...int) int {
	s := g.shape(x)
	os := make([]int, len(s))
	for i := range s {
		os[i] = s[i] + p[2*i] + p[2*i+1]
	}
	pt := g.constInt32(g.name("pad/paddings"), []int{len(s), 2}, p...)
	y := g.like(g.name("pad"), os, x)
	g.op(schema.OpPad, nil, []int{x, pt}, y)
	return y
}

// unary adds an op with one input, one output and no options whose output
// is quantized over [lo, hi] (rms r).
func (g *graph) unary(code schema.BuiltinOperator, x int, lo, hi, r float64) int {
	y := g.act(g.name(code.String()), g.shape(x), lo, hi)
	g.rms[y] = r
	g.op(code, nil, []int{x}, y)
	return y
}

// mul adds MUL of a and b (broadcasting) with output range [lo, hi].
func (g *graph) mul(a, b int, lo, hi float64) int {
	sa, sb := g.shape(a), g.shape(b)
	if tensor.NumElements(sb) > tensor.NumElements(sa) {
		sa = sb
	}
	y := g.act(g.name("mul"), sa, lo, hi)
	g.rms[y] = g.rmsOf(a) * g.rmsOf(b)
	g.op(schema.OpMul, &schema.ActivationOptions{}, []int{a, b}, y)
	return y
}

// quantizeIn makes a float model input feeding QUANTIZE into the graph's
// activation type (the converter's default float interface); it returns
// the input and the quantized tensor.
func (g *graph) quantizeIn(name string, shape []int, lo, hi float64) (int, int) {
	in := g.actQ(name, tensor.Float32, shape, nil, lo, hi)
	x := g.act(name+"_quantized", shape, lo, hi)
	g.op(schema.OpQuantize, nil, []int{in}, x)
	return in, x
}

// dequantizeOut adds DEQUANTIZE of x to a float output.
func (g *graph) dequantizeOut(x int, name string) int {
	y := g.actQ(name, tensor.Float32, g.shape(x), nil, g.lo[x], g.hi[x])
	g.op(schema.OpDequantize, nil, []int{x}, y)
	return y
}

// extremeInput draws each element of model input i at either end of its
// range.
func (g *graph) extremeInput(i int) []byte {
	t := g.tensor(i)
	v := make([]float64, tensor.NumElements(t.Shape))
	for k := range v {
		v[k] = g.lo[i]
		if g.r.intn(2) == 1 {
			v[k] = g.hi[i]
		}
	}
	if t.Type == tensor.Float32 {
		return f32Bytes(v)
	}
	return quantizeAll(t.Type, t.Quant, v)
}
