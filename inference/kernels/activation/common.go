package activation

import (
	"math"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/tensor"
)

// unaryPrepare validates a one-input one-output node whose output has the
// input's shape, checks the input dtype against allowed and (unless
// outTypes is given) requires the output dtype to equal it, then sizes the
// output.
func unaryPrepare(ctx *kernels.Context, n *kernels.Node, allowed ...tensor.DType) (in, out *tensor.Tensor, err error) {
	if err := n.CheckArity(1, 1, 1); err != nil {
		return nil, nil, err
	}
	in, out = n.Inputs[0], n.Outputs[0]
	ok := false
	for _, d := range allowed {
		if in.Type == d {
			ok = true
		}
	}
	if !ok {
		return nil, nil, n.Errorf("input type %s is not supported (supported: %v)", in.Type, allowed)
	}
	if out.Type != in.Type {
		return nil, nil, n.Errorf("output type %s differs from input type %s", out.Type, in.Type)
	}
	if err := needQuant(n, in, out); err != nil {
		return nil, nil, err
	}
	if err := ctx.ResizeOutput(out, in.Shape); err != nil {
		return nil, nil, n.Errorf("%v", err)
	}
	return in, out, nil
}

// needQuant requires quantization parameters on integer tensors.
func needQuant(n *kernels.Node, ts ...*tensor.Tensor) error {
	for _, t := range ts {
		switch t.Type {
		case tensor.Int8, tensor.Uint8, tensor.Int16:
			if !t.IsQuantized() || t.Scale() <= 0 || math.IsInf(t.Scale(), 0) || math.IsNaN(t.Scale()) {
				return n.Errorf("%s tensor %q needs a positive quantization scale", t.Type, t.Name)
			}
			if t.Quant.PerChannel() {
				return n.Errorf("%s tensor %q is quantized per channel; only per-tensor quantization is supported here", t.Type, t.Name)
			}
		}
	}
	return nil
}

// lut8 maps every 8-bit input byte to an output byte.
type lut8 [256]uint8

// apply maps every input byte through the table.
func (l *lut8) apply(in, out []byte) {
	out = out[:len(in)]
	for i, v := range in {
		out[i] = l[v]
	}
}

// populateLUT8 fills an 8-bit table the way TensorFlow Lite's
// PopulateLookupTable / LUTPopulate does: dequantize in float32, apply f,
// multiply by the inverse output scale, round half away from zero, add the
// output zero point and saturate.
func populateLUT8(l *lut8, dt tensor.DType, inScale float32, inZP int32, outScale float32, outZP int32, f func(float32) float32) {
	lo, hi := dt.QuantRange()
	inv := 1 / outScale
	for v := lo; v <= hi; v++ {
		deq := inScale * float32(v-inZP)
		y := f(deq)
		r := float32(math.Round(float64(float32(y*inv)))) + float32(outZP)
		// Saturate before converting (a huge or NaN value must not reach
		// an out-of-range float-to-int conversion).
		q := lo
		if r >= float32(hi) {
			q = hi
		} else if r > float32(lo) {
			q = int32(r)
		}
		l[uint8(v)] = uint8(q)
	}
}

// tabulate8 fills an 8-bit table by running an element-wise kernel (f8
// for int8, fu8 for uint8) over every value of the type; Eval then only
// looks values up, with identical results.
func tabulate8(l *lut8, dt tensor.DType, f8 func(in, out []int8), fu8 func(in, out []uint8)) {
	var src, dst [256]byte
	for i := range src {
		src[i] = byte(i)
	}
	if dt == tensor.Int8 {
		f8(tensor.View[int8](src[:]), tensor.View[int8](dst[:]))
	} else {
		fu8(src[:], dst[:])
	}
	*l = dst
}
