package elementwise

import (
	"math"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/quant"
)

// typeNames formats a list of dtypes for error messages.
func typeNames(ts ...tensor.DType) string {
	s := ""
	for i, t := range ts {
		if i > 0 {
			s += ", "
		}
		s += t.String()
	}
	return s
}

// checkType fails unless t's dtype is one of allowed.
func checkType(n *kernels.Node, what string, t *tensor.Tensor, allowed ...tensor.DType) error {
	for _, a := range allowed {
		if t.Type == a {
			return nil
		}
	}
	return n.Errorf("%s has type %s, expected one of %s", what, t.Type, typeNames(allowed...))
}

// checkSameType fails unless b has a's dtype.
func checkSameType(n *kernels.Node, whatA string, a *tensor.Tensor, whatB string, b *tensor.Tensor) error {
	if a.Type != b.Type {
		return n.Errorf("%s has type %s but %s has type %s; they must match", whatB, b.Type, whatA, a.Type)
	}
	return nil
}

// isQuantType reports whether dt is an integer type that TFLite treats as
// quantized in arithmetic kernels.
func isQuantType(dt tensor.DType) bool {
	return dt == tensor.Int8 || dt == tensor.Uint8 || dt == tensor.Int16
}

// needQuant fails unless t carries per-tensor quantization with a positive
// finite scale.
func needQuant(n *kernels.Node, what string, t *tensor.Tensor) error {
	if !t.IsQuantized() {
		return n.Errorf("%s (%s) has no quantization parameters; quantized %s needs a scale and zero point", what, t.Type, n.Name())
	}
	s := t.Scale()
	if !(s > 0) || math.IsInf(s, 0) {
		return n.Errorf("%s has scale %v, expected a positive finite scale", what, s)
	}
	lo, hi := t.Type.QuantRange()
	if zp := t.ZeroPoint(); zp < lo || zp > hi {
		return n.Errorf("%s has zero point %d, outside the range [%d, %d] of %s", what, zp, lo, hi, t.Type)
	}
	return nil
}

// actRangeQuant returns the fused activation clamp of a quantized output.
func actRangeQuant(act quant.Activation, out *tensor.Tensor) (lo, hi int32) {
	tlo, thi := out.Type.QuantRange()
	return quant.ActivationRangeQuantized(act, float32(out.Scale()), out.ZeroPoint(), tlo, thi)
}

// actRangeInt returns the fused activation clamp of an integer (non
// quantized) output as TFLite computes it for int32/int64 kernels.
func actRangeInt(act quant.Activation) (lo, hi int64) {
	lo, hi = math.MinInt64, math.MaxInt64
	switch act {
	case quant.ActRelu:
		lo = 0
	case quant.ActRelu6:
		lo, hi = 0, 6
	case quant.ActReluN1To1:
		lo, hi = -1, 1
	}
	return lo, hi
}

// checkActivation fails on fused activations that the kernel cannot apply.
func checkActivation(n *kernels.Node, act quant.Activation) error {
	switch act {
	case quant.ActNone, quant.ActRelu, quant.ActRelu6, quant.ActReluN1To1:
		return nil
	}
	return n.Errorf("fused activation %d is not supported (expected NONE, RELU, RELU6 or RELU_N1_TO_1)", act)
}

// rdbpot is quant.RoundingDivideByPOT (round half away from zero), kept
// separate because it must also accept exponents outside [0, 31]. For an
// exponent outside [0, 31] (which TFLite reaches when a multiplier it
// assumes is below one is not, or in DIV's unguarded shifts) it computes
// what gemmlowp's code computes on x86-64 and WebAssembly, where shift
// counts are taken modulo the operand width (64 for the mask, 32 for x).
func rdbpot(x int32, exponent int) int32 {
	mask := int32(int64(1)<<(uint(exponent)&63) - 1)
	remainder := x & mask
	threshold := mask >> 1
	if x < 0 {
		threshold++
	}
	r := x >> (uint(exponent) & 31)
	if remainder > threshold {
		r++
	}
	return r
}

// mbqmSmall is MultiplyByQuantizedMultiplierSmallerThanOneExp: TFLite
// uses it where it assumes shift <= 0 (ADD, SUB, comparisons, DIV,
// SQUARED_DIFFERENCE) and applies it unchanged otherwise.
func mbqmSmall(x, m int32, shift int) int32 {
	return rdbpot(quant.SaturatingRoundingDoublingHighMul(x, m), -shift)
}

// mbqm is MultiplyByQuantizedMultiplier with TFLite's double rounding.
func mbqm(x, m int32, shift int) int32 {
	if shift > 0 {
		return quant.SaturatingRoundingDoublingHighMul(x*(1<<shift), m)
	}
	return rdbpot(quant.SaturatingRoundingDoublingHighMul(x, m), -shift)
}

func clamp32(v, lo, hi int32) int32 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

// floatsOf returns the elements of a float32 tensor.
func elems[T any](t *tensor.Tensor) []T {
	return tensor.View[T](t.Data)[:t.NumElements()]
}

// checkConstants fails when a constant input holds fewer bytes than its
// shape needs, so that Eval never reads past a malformed buffer.
func checkConstants(n *kernels.Node) error {
	for i, t := range n.Inputs {
		if t == nil || !t.KnownAtPrepare || t.Type.Size() == 0 {
			continue
		}
		if need := t.ByteSize(); len(t.Data) < need {
			return n.Errorf("input %d (%q) holds %d bytes, its shape %s of %s needs %d", i, t.Name, len(t.Data), tensor.ShapeString(t.Shape), t.Type, need)
		}
	}
	return nil
}
