package elementwise

import (
	"math"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/quant"
)

// quantizeData is the prepared state of QUANTIZE / DEQUANTIZE.
type quantizeData struct {
	// perChannel: axis, channel count and inner size of the channel
	// dimension (elements between consecutive channels).
	perChannel   bool
	axis, inner  int
	channels     int
	scales       []float64
	zeroPoints   []int32
	requantize   bool
	mult         int32
	shift        int
	zpIn, zpOut  int32
	outLo, outHi int32
	scaleIn      float64
	scaleOut     float64
	// lut8 holds the requantized value of every 8-bit input byte.
	lut8 *[256]int32
	// the last Eval's types and data, for the workers
	inT, outT tensor.DType
	x, y      []byte
}

func init() {
	kernels.RegisterBuiltin(schema.OpQuantize, kernels.Kernel{Prepare: prepareQuantize, Eval: evalQuantize})
	kernels.RegisterBuiltin(schema.OpDequantize, kernels.Kernel{Prepare: prepareDequantize, Eval: evalDequantize})
}

// channelParams validates per-channel quantization of t and fills d.
// shape is the tensor's shape (the input's, for an output not yet sized).
func channelParams(n *kernels.Node, what string, t *tensor.Tensor, shape []int, d *quantizeData) error {
	q := t.Quant
	axis := q.Dim
	if axis < 0 || axis >= len(shape) {
		return n.Errorf("%s: per-channel quantized dimension %d is out of range for shape %s", what, axis, tensor.ShapeString(shape))
	}
	ch := shape[axis]
	if len(q.Scale) != ch || len(q.ZeroPoint) != ch {
		return n.Errorf("%s: %d scales and %d zero points for %d channels along dimension %d", what, len(q.Scale), len(q.ZeroPoint), ch, axis)
	}
	d.perChannel = true
	d.axis, d.channels = axis, ch
	d.inner = 1
	for _, v := range shape[axis+1:] {
		d.inner *= v
	}
	d.scales = make([]float64, ch)
	d.zeroPoints = make([]int32, ch)
	lo, hi := t.Type.QuantRange()
	for i := range ch {
		s := float64(q.Scale[i])
		if !(s > 0) || math.IsInf(s, 0) {
			return n.Errorf("%s: channel %d has scale %v, expected a positive finite scale", what, i, s)
		}
		zp := q.ZeroPoint[i]
		if zp < int64(lo) || zp > int64(hi) {
			return n.Errorf("%s: channel %d has zero point %d, outside [%d, %d]", what, i, zp, lo, hi)
		}
		d.scales[i], d.zeroPoints[i] = s, int32(zp)
	}
	return nil
}

func prepareQuantize(ctx *kernels.Context, n *kernels.Node) error {
	if err := n.CheckArity(1, 1, 1); err != nil {
		return err
	}
	if err := checkConstants(n); err != nil {
		return err
	}
	in, out := n.Inputs[0], n.Outputs[0]
	d := &quantizeData{}
	n.Data = d
	ints := []tensor.DType{tensor.Int8, tensor.Uint8, tensor.Int16, tensor.Int32}
	switch in.Type {
	case tensor.Float32:
		if err := checkType(n, "output", out, tensor.Int8, tensor.Uint8, tensor.Int16); err != nil {
			return err
		}
		if out.Quant.PerChannel() {
			if err := channelParams(n, "output", out, in.Shape, d); err != nil {
				return err
			}
		} else if err := needQuant(n, "output", out); err != nil {
			return err
		}
	case tensor.Int8, tensor.Uint8, tensor.Int16, tensor.Int32:
		if err := checkType(n, "output", out, ints...); err != nil {
			return err
		}
		if in.Quant.PerChannel() || out.Quant.PerChannel() {
			return n.Errorf("requantization supports per-tensor quantization only")
		}
		if err := needQuant(n, "input", in); err != nil {
			return err
		}
		if err := needQuant(n, "output", out); err != nil {
			return err
		}
		d.requantize = true
		d.mult, d.shift = quant.QuantizeMultiplier(in.Scale() / out.Scale())
		d.zpIn = in.ZeroPoint()
		d.zpOut = out.ZeroPoint()
		d.outLo, d.outHi = out.Type.QuantRange()
		if in.Type == tensor.Int8 || in.Type == tensor.Uint8 {
			d.lut8 = new([256]int32)
			for v := 0; v < 256; v++ {
				raw := int32(v)
				if in.Type == tensor.Int8 {
					raw = int32(int8(v))
				}
				d.lut8[v] = requantizeOne(d, raw)
			}
		}
	default:
		return n.Errorf("input has type %s, expected float32 (quantize) or one of int8, uint8, int16, int32 (requantize)", in.Type)
	}
	d.zpOut = out.ZeroPoint()
	d.scaleOut = out.Scale()
	d.outLo, d.outHi = out.Type.QuantRange()
	return ctx.ResizeOutput(out, in.Shape)
}

func evalQuantize(ctx *kernels.Context, n *kernels.Node) error {
	d := n.Data.(*quantizeData)
	in, out := n.Inputs[0], n.Outputs[0]
	total := in.NumElements()
	d.inT, d.outT, d.x, d.y = in.Type, out.Type, in.Data, out.Data
	// Chunks of elements, 64 at a time (whole cache lines of 8-bit
	// outputs).
	// The views stay set after the job: in a kernels.Region it runs
	// after this Eval returns.
	kernels.Parallel(ctx, ctx.Threads, int64(total)*kernels.ElementCost, total, 64, d, quantizeChunk)
	return nil
}

// Bandable: QUANTIZE (and requantization) runs in a kernels.Region: one
// job over the flat elements, nothing read at Eval. DEQUANTIZE, whose
// node holds the same state, runs its own Eval: not in a region.
func (d *quantizeData) Bandable(n *kernels.Node, _ int) bool {
	return n.Op == schema.OpQuantize && n.Outputs[0].NumElements() > 0
}

// InputSpan implements kernels.Banded: element i of the output reads
// element i of the input.
func (d *quantizeData) InputSpan(_, lo, hi int) (int, int) { return lo, hi }

// OutputSpan implements kernels.Banded.
func (d *quantizeData) OutputSpan(lo, hi int) (int, int) { return lo, hi }

// quantizeChunk quantizes or requantizes elements [lo, hi).
func quantizeChunk(d *quantizeData, _, lo, hi int) {
	if !d.requantize {
		x := tensor.View[float32](d.x)[lo:hi]
		switch d.outT {
		case tensor.Int8:
			quantizeFloat(d, x, tensor.View[int8](d.y)[lo:hi], lo)
		case tensor.Uint8:
			quantizeFloat(d, x, tensor.View[uint8](d.y)[lo:hi], lo)
		case tensor.Int16:
			quantizeFloat(d, x, tensor.View[int16](d.y)[lo:hi], lo)
		}
		return
	}
	switch d.inT {
	case tensor.Int8:
		requantizeTo(d, tensor.View[int8](d.x)[lo:hi], lo)
	case tensor.Uint8:
		requantizeTo(d, tensor.View[uint8](d.x)[lo:hi], lo)
	case tensor.Int16:
		requantizeTo(d, tensor.View[int16](d.x)[lo:hi], lo)
	case tensor.Int32:
		requantizeTo(d, tensor.View[int32](d.x)[lo:hi], lo)
	}
}

// quantizeOne maps a float to the quantized domain as TFLite's
// AffineQuantize does: round(x / scale) in double precision, half away
// from zero, converted to int32, plus the zero point (int32 arithmetic),
// saturated to [lo, hi]. A quotient that does not fit int32 (or NaN)
// converts to MinInt32, as the reference build's float-to-int conversion
// does.
func quantizeOne(x float32, scale float64, zp, lo, hi int32) int32 {
	return clamp32(toInt32(math.Round(float64(x)/scale))+zp, lo, hi)
}

// toInt32 truncates f to int32; NaN and out-of-range values give
// MinInt32 (x86 cvttsd2si and TFLite's WebAssembly reference agree).
func toInt32(f float64) int32 {
	if !(f > -2147483649 && f < 2147483648) {
		return math.MinInt32
	}
	return int32(f)
}

// quantizeFloat quantizes x, the elements from index base on, into o.
func quantizeFloat[T int8 | uint8 | int16](d *quantizeData, x []float32, o []T, base int) {
	lo, hi := d.outLo, d.outHi
	if !d.perChannel {
		s, zp := d.scaleOut, d.zpOut
		for i, v := range x {
			o[i] = T(quantizeOne(v, s, zp, lo, hi))
		}
		return
	}
	for i, v := range x {
		c := ((base + i) / d.inner) % d.channels
		o[i] = T(quantizeOne(v, d.scales[c], d.zeroPoints[c], lo, hi))
	}
}

// requantizeTo requantizes x, the elements from index base on, into the
// output.
func requantizeTo[T int8 | uint8 | int16 | int32](d *quantizeData, x []T, base int) {
	n := len(x)
	switch d.outT {
	case tensor.Int8:
		requantize(d, x, tensor.View[int8](d.y)[base:base+n])
	case tensor.Uint8:
		requantize(d, x, tensor.View[uint8](d.y)[base:base+n])
	case tensor.Int16:
		requantize(d, x, tensor.View[int16](d.y)[base:base+n])
	case tensor.Int32:
		requantize(d, x, tensor.View[int32](d.y)[base:base+n])
	}
}

// requantizeOne maps one raw input value to the output's quantization:
// (v - zp_in) times the scale ratio (double rounding), plus zp_out,
// saturated to the output type.
func requantizeOne(d *quantizeData, v int32) int32 {
	r := int64(mbqm(v-d.zpIn, d.mult, d.shift)) + int64(d.zpOut)
	return int32(max(int64(d.outLo), min(int64(d.outHi), r)))
}

func requantize[I, O int8 | uint8 | int16 | int32](d *quantizeData, x []I, o []O) {
	o = o[:len(x)]
	if lut := d.lut8; lut != nil {
		for i, v := range x {
			o[i] = O(lut[uint8(v)])
		}
		return
	}
	for i, v := range x {
		o[i] = O(requantizeOne(d, int32(v)))
	}
}

func prepareDequantize(ctx *kernels.Context, n *kernels.Node) error {
	if err := n.CheckArity(1, 1, 1); err != nil {
		return err
	}
	if err := checkConstants(n); err != nil {
		return err
	}
	in, out := n.Inputs[0], n.Outputs[0]
	if err := checkType(n, "input", in, tensor.Int8, tensor.Uint8, tensor.Int16, tensor.Float16); err != nil {
		return err
	}
	if err := checkType(n, "output", out, tensor.Float32); err != nil {
		return err
	}
	d := &quantizeData{}
	n.Data = d
	if in.Type != tensor.Float16 {
		if in.Quant.PerChannel() {
			if err := channelParams(n, "input", in, in.Shape, d); err != nil {
				return err
			}
		} else if err := needQuant(n, "input", in); err != nil {
			return err
		}
		d.scaleIn, d.zpIn = in.Scale(), in.ZeroPoint()
	}
	return ctx.ResizeOutput(out, in.Shape)
}

func evalDequantize(ctx *kernels.Context, n *kernels.Node) error {
	d := n.Data.(*quantizeData)
	in, out := n.Inputs[0], n.Outputs[0]
	o := elems[float32](out)
	switch in.Type {
	case tensor.Int8:
		dequantize(d, elems[int8](in), o)
	case tensor.Uint8:
		dequantize(d, elems[uint8](in), o)
	case tensor.Int16:
		dequantize(d, elems[int16](in), o)
	case tensor.Float16:
		for i, h := range elems[uint16](in) {
			o[i] = halfToFloat(h)
		}
	}
	return nil
}

func dequantize[T int8 | uint8 | int16](d *quantizeData, x []T, o []float32) {
	if !d.perChannel {
		s, zp := d.scaleIn, d.zpIn
		for i, v := range x {
			o[i] = float32(s * float64(int32(v)-zp))
		}
		return
	}
	for i, v := range x {
		c := (i / d.inner) % d.channels
		o[i] = float32(d.scales[c] * float64(int32(v)-d.zeroPoints[c]))
	}
}

// halfToFloat converts an IEEE 754 binary16 value to float32.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp == 0:
		if frac == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal: value = frac * 2^-24.
		v := float32(frac) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
}
