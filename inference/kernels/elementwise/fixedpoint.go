package elementwise

import (
	"math/bits"

	"github.com/edgefleet/edgefleet/quant"
)

// leadingSignBits counts the redundant sign bits of x (31 for 0 and -1).
func leadingSignBits(x int32) int {
	if x < 0 {
		x = ^x
	}
	return bits.LeadingZeros32(uint32(x)) - 1
}

// divQuant divides two zero-point-adjusted quantized values and
// requantizes the quotient as TFLite's quantized DIV does.
func divQuant(v1, v2 int32, d *arithData) int32 {
	if v2 < 0 {
		v1, v2 = -v1, -v2
	}
	inv, recipShift := quant.GetReciprocal(v2, 31)
	headroom := leadingSignBits(v1)
	unscaled := quant.SaturatingRoundingDoublingHighMul(v1*(1<<headroom), inv)
	total := d.sOut - recipShift - headroom
	q := mbqmSmall(unscaled, d.mOut, total)
	return clamp32(q+d.zpOut, d.lo, d.hi)
}
