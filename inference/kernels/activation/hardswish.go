package activation

import (
	"math"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/quant"
)

func init() {
	kernels.RegisterBuiltin(schema.OpHardSwish, kernels.Kernel{Prepare: prepareHardSwish, Eval: evalHardSwish})
}

// hardSwishData holds TensorFlow Lite's 16-bit fixed-point parameters of a
// quantized HARD_SWISH: the input is moved to a "hires" scale (×128), a
// "reluish" factor in [0, 1] (relu6(x+3)/6 as a Q0.15 value) is formed
// with one multiplier, and the product is taken to the output scale with
// another.
type hardSwishData struct {
	table               lut8
	inZP, outZP         int32
	outMult, reluMult   int16
	outShift, reluShift int
}

func prepareHardSwish(ctx *kernels.Context, n *kernels.Node) error {
	in, out, err := unaryPrepare(ctx, n, tensor.Float32, tensor.Int8, tensor.Uint8)
	if err != nil {
		return err
	}
	d := &hardSwishData{}
	if in.Type != tensor.Float32 {
		d.inZP, d.outZP = in.ZeroPoint(), out.ZeroPoint()
		hires := float32(1.0/128.0) * float32(in.Scale())
		const reluishScale = float32(3.0 / 32768.0)
		m, s := quant.QuantizeMultiplier(float64(hires / float32(out.Scale())))
		d.outMult, d.outShift = downScale16(m), s
		if d.outShift > 0 {
			return n.Errorf("output scale %g is too small for input scale %g (multiplier exponent %d > 0)", out.Scale(), in.Scale(), d.outShift)
		}
		m, s = quant.QuantizeMultiplier(float64(hires / reluishScale))
		d.reluMult, d.reluShift = downScale16(m), s
		tabulate8(&d.table, in.Type, func(x []int8, y []int8) { hardSwishQuant(d, x, y) }, func(x []uint8, y []uint8) { hardSwishQuant(d, x, y) })
	}
	n.Data = d
	return nil
}

// downScale16 rounds a Q31 multiplier to Q15, saturating.
func downScale16(m int32) int16 {
	const round = 1 << 15
	if m >= math.MaxInt32-round {
		return math.MaxInt16
	}
	return int16((m + round) >> 16)
}

func evalHardSwish(ctx *kernels.Context, n *kernels.Node) error {
	d := n.Data.(*hardSwishData)
	in, out := n.Inputs[0], n.Outputs[0]
	total := in.NumElements()
	switch in.Type {
	case tensor.Float32:
		x, y := in.Float32s()[:total], out.Float32s()[:total]
		for i, v := range x {
			y[i] = float32(v*min(float32(6), max(float32(0), v+3))) / 6
		}
	case tensor.Int8, tensor.Uint8:
		d.table.apply(in.Data[:total], out.Data[:total])
	}
	return nil
}

// sdhm16 is the doubling high multiply rounding toward zero (ARM SQDMULH).
func sdhm16(a, b int16) int16 {
	if a == b && a == math.MinInt16 {
		return math.MaxInt16
	}
	return int16((int32(a) * int32(b)) / (1 << 15))
}

func satLeftShift16(v int16, amount int) int16 {
	r := int64(v) * (1 << amount)
	return int16(min(max(r, math.MinInt16), math.MaxInt16))
}

func hardSwishQuant[T int8 | uint8](d *hardSwishData, in, out []T) {
	lo, hi := typeOf[T]().QuantRange()
	for i, v := range in {
		x := int16(int32(v) - d.inZP)
		hiresIn := int16(int32(x) * (1 << 7))
		preshiftOut := quant.SaturatingRoundingDoublingHighMul16(hiresIn, d.outMult)
		reluish := hiresIn
		if d.reluShift > 0 {
			reluish = satLeftShift16(reluish, d.reluShift-1)
		}
		reluish = quant.SaturatingRoundingDoublingHighMul16(reluish, d.reluMult)
		if d.reluShift > 0 {
			reluish = satLeftShift16(reluish, 1)
		}
		if d.reluShift < 0 {
			reluish = quant.RoundingDivideByPOT16(reluish, -d.reluShift)
		}
		// [-1, 1] → [0, 1].
		reluish = int16((int32(reluish) + (1 << 15)) >> 1)
		pre := sdhm16(reluish, preshiftOut)
		o := int32(quant.RoundingDivideByPOT16(pre, -d.outShift)) + d.outZP
		out[i] = T(min(max(o, lo), hi))
	}
}
