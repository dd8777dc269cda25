package activation

import (
	"math"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/quant"
)

func init() {
	kernels.RegisterBuiltin(schema.OpRelu, kernels.Kernel{Prepare: prepareRelu, Eval: evalRelu})
	kernels.RegisterBuiltin(schema.OpRelu6, kernels.Kernel{Prepare: prepareRelu6, Eval: evalRelu})
	kernels.RegisterBuiltin(schema.OpReluN1To1, kernels.Kernel{Prepare: prepareReluN1To1, Eval: evalRelu})
	kernels.RegisterBuiltin(schema.OpLeakyRelu, kernels.Kernel{Prepare: prepareLeakyRelu, Eval: evalLeakyRelu})
}

// reluData is the prepared state of RELU, RELU6 and RELU_N1_TO_1: float
// clamp bounds, and for quantized types the input-to-output rescaling and
// the clamp bounds in the output's domain.
type reluData struct {
	table       lut8
	lo, hi      float32
	mult        int32
	shift       int
	inZP, outZP int32
	qmin, qmax  int32
}

func prepareRelu(ctx *kernels.Context, n *kernels.Node) error {
	return prepareReluX(ctx, n, 0, float32(math.Inf(1)))
}
func prepareRelu6(ctx *kernels.Context, n *kernels.Node) error { return prepareReluX(ctx, n, 0, 6) }
func prepareReluN1To1(ctx *kernels.Context, n *kernels.Node) error {
	return prepareReluX(ctx, n, -1, 1)
}

func prepareReluX(ctx *kernels.Context, n *kernels.Node, lo, hi float32) error {
	in, out, err := unaryPrepare(ctx, n, tensor.Float32, tensor.Int8, tensor.Uint8, tensor.Int16)
	if err != nil {
		return err
	}
	d := &reluData{lo: lo, hi: hi}
	if in.Type != tensor.Float32 {
		// TensorFlow Lite divides the scales in float32.
		d.mult, d.shift = quant.QuantizeMultiplier(float64(float32(in.Scale()) / float32(out.Scale())))
		d.inZP, d.outZP = in.ZeroPoint(), out.ZeroPoint()
		tmin, tmax := in.Type.QuantRange()
		oscale := float32(out.Scale())
		d.qmin = max(tmin, d.outZP+roundSat(lo/oscale))
		d.qmax = tmax
		if !math.IsInf(float64(hi), 1) {
			d.qmax = min(tmax, d.outZP+roundSat(hi/oscale))
		}
		tabulate8(&d.table, in.Type, func(x []int8, y []int8) { reluQuant(d, x, y) }, func(x []uint8, y []uint8) { reluQuant(d, x, y) })
	}
	n.Data = d
	return nil
}

func evalRelu(ctx *kernels.Context, n *kernels.Node) error {
	d := n.Data.(*reluData)
	in, out := n.Inputs[0], n.Outputs[0]
	total := in.NumElements()
	switch in.Type {
	case tensor.Float32:
		x, y := in.Float32s()[:total], out.Float32s()[:total]
		for i, v := range x {
			y[i] = min(max(v, d.lo), d.hi)
		}
	case tensor.Int8, tensor.Uint8:
		d.table.apply(in.Data[:total], out.Data[:total])
	case tensor.Int16:
		reluQuant(d, in.Int16s()[:total], out.Int16s()[:total])
	}
	return nil
}

func reluQuant[T int8 | uint8 | int16](d *reluData, in, out []T) {
	for i, v := range in {
		r := d.outZP + quant.MultiplyByQuantizedMultiplier(int32(v)-d.inZP, d.mult, d.shift)
		out[i] = T(min(max(r, d.qmin), d.qmax))
	}
}

// leakyData is the prepared state of LEAKY_RELU.
type leakyData struct {
	table                  lut8
	alpha                  float32
	multAlpha, multIdent   int32
	shiftAlpha, shiftIdent int
	inZP, outZP            int32
}

func prepareLeakyRelu(ctx *kernels.Context, n *kernels.Node) error {
	in, out, err := unaryPrepare(ctx, n, tensor.Float32, tensor.Int8, tensor.Uint8, tensor.Int16)
	if err != nil {
		return err
	}
	d := &leakyData{}
	if o, ok := n.Options.(*schema.LeakyReluOptions); ok && o != nil {
		d.alpha = o.Alpha
	}
	if in.Type != tensor.Float32 {
		inS, outS := float32(in.Scale()), float32(out.Scale())
		// float32 products and quotients, as in TensorFlow Lite.
		d.multAlpha, d.shiftAlpha = quant.QuantizeMultiplier(float64(float32(inS*d.alpha) / outS))
		d.multIdent, d.shiftIdent = quant.QuantizeMultiplier(float64(inS / outS))
		d.inZP, d.outZP = in.ZeroPoint(), out.ZeroPoint()
		tabulate8(&d.table, in.Type, func(x []int8, y []int8) { leakyQuant(d, x, y) }, func(x []uint8, y []uint8) { leakyQuant(d, x, y) })
	}
	n.Data = d
	return nil
}

func evalLeakyRelu(ctx *kernels.Context, n *kernels.Node) error {
	d := n.Data.(*leakyData)
	in, out := n.Inputs[0], n.Outputs[0]
	total := in.NumElements()
	switch in.Type {
	case tensor.Float32:
		x, y := in.Float32s()[:total], out.Float32s()[:total]
		for i, v := range x {
			if v > 0 {
				y[i] = v
			} else {
				y[i] = float32(v * d.alpha)
			}
		}
	case tensor.Int8, tensor.Uint8:
		d.table.apply(in.Data[:total], out.Data[:total])
	case tensor.Int16:
		leakyQuant(d, in.Int16s()[:total], out.Int16s()[:total])
	}
	return nil
}

func leakyQuant[T int8 | uint8 | int16](d *leakyData, in, out []T) {
	lo, hi := typeOf[T]().QuantRange()
	for i, v := range in {
		x := int32(v) - d.inZP
		var r int32
		if x >= 0 {
			r = quant.MultiplyByQuantizedMultiplier(x, d.multIdent, d.shiftIdent)
		} else {
			r = quant.MultiplyByQuantizedMultiplier(x, d.multAlpha, d.shiftAlpha)
		}
		out[i] = T(min(max(r+d.outZP, lo), hi))
	}
}

func typeOf[T int8 | uint8 | int16]() tensor.DType {
	switch any(T(0)).(type) {
	case int8:
		return tensor.Int8
	case uint8:
		return tensor.Uint8
	}
	return tensor.Int16
}

// roundSat rounds half away from zero into a range where adding a zero
// point cannot overflow.
func roundSat(v float32) int32 {
	return int32(min(max(math.Round(float64(v)), -(1<<30)), 1<<30))
}
