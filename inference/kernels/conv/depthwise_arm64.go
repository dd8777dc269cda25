//go:build goexperiment.simd && arm64 && !purego

package conv

import (
	"simd/archsimd"
	"unsafe"
)

// NEON is part of every arm64 CPU: the kernels are always on.
func init() {
	dwPixelI8 = dwPixelNEON[int8]
	dwPixelU8 = dwPixelNEON[uint8]
	dwPixelF32 = dwPixelF32NEON
}

// dwOff16Max bounds the input offset dwPixelNEON adds in int16: x + off
// then lies in [-128-dwOff16Max, 255+dwOff16Max] = [-32640, 32767] for
// int8 and uint8 inputs x, inside int16, so the wrapping int16 sum is the
// exact one.
const dwOff16Max = 32512

// dwPixelNEON is dwPixelI8/dwPixelU8 for blocks of 32 channels, then one
// of 16 and one of 8 (dwBlocks32NEON, dwBlock16NEON, dwBlock8NEON). Per
// tap, the input bytes are extended (sign or zero, by T) to int16 and
// offset there: x + off is exact in int16 for |off| <= dwOff16Max, so
// extending the int16 sum to int32 gives int32(x) + off exactly, and the
// multiply-accumulate (MLA) with the int32 filter values wraps in int32
// like the scalar loop: the sums are bit-identical whatever the filter
// values. Offsetting 8 int16 lanes instead of 4 int32 lanes saves two
// instructions per 16 channels and tap, and a block of 32 channels shares
// the tap's address arithmetic and loop branch between twice the vector
// work: 41 instructions per tap for 32 channels (34 vector), where
// offsetting in int32 took 28 for 16 (19 vector).
//
// A larger offset (a zero point outside the 8-bit range, which Prepare
// refuses) is left to the scalar loop (0 channels done). Loads go
// through pointers checked once per call (dwTapsFit): with slices the
// compiler checked bounds and spilled around every load.
func dwPixelNEON[T int8 | uint8](acc, bias []int32, x []T, w []int32, xo, wo []int, off int32) int {
	if off < -dwOff16Max || off > dwOff16Max {
		return 0 // the scalar loop: see dwOff16Max
	}
	n := len(acc) &^ 7
	if n == 0 || !dwTapsFit(len(x), len(w), len(bias), xo, wo, n) {
		return 0
	}
	off16 := archsimd.BroadcastInt16x8(int16(off))
	xp, wp, bp, ap := unsafe.Pointer(&x[0]), unsafe.Pointer(&w[0]), unsafe.Pointer(&bias[0]), unsafe.Pointer(&acc[0])
	c := n &^ 31
	if c > 0 {
		dwBlocks32NEON[T](ap, bp, xp, wp, c/32, xo, wo, off16)
	}
	if c+16 <= n {
		dwBlock16NEON[T](unsafe.Add(ap, 4*c), unsafe.Add(bp, 4*c), unsafe.Add(xp, c), unsafe.Add(wp, 4*c), xo, wo, off16)
		c += 16
	}
	if c < n {
		dwBlock8NEON[T](unsafe.Add(ap, 4*c), unsafe.Add(bp, 4*c), unsafe.Add(xp, c), unsafe.Add(wp, 4*c), xo, wo, off16)
		c += 8
	}
	return c
}

// dwBlocks32NEON computes nb blocks of 32 channels of dwPixelNEON:
//
//	acc[c] = bias[c] + sum over taps t of (x[xo[t]+c] + off) * w[wo[t]+c]
//
// for c < 32*nb, with a, b, x and w pointing at channel 0 of the
// accumulators, bias, input (bytes of type T) and filter (int32), eight
// int32x4 accumulators a block. The input offset is added in int16
// (off16 holds it; exact, see dwOff16Max), so each int16 lane extended to
// int32 is int32(x) + off, and MLA wraps in int32 as the scalar loop
// does. The caller checked every load's bounds (dwTapsFit). The vectors
// are loaded through array pointers with constant indices: inlined
// helpers would leave a NOP per call in the loop.
func dwBlocks32NEON[T int8 | uint8](a, b, x, w unsafe.Pointer, nb int, xo, wo []int, off16 archsimd.Int16x8) {
	// uint8 inputs (255 stays positive) are zero-extended, int8 ones
	// sign-extended; the test folds to a constant in each instantiation.
	k := 255
	unsigned := T(k) > 0
	wo = wo[:len(xo)]
	for ; nb > 0; nb-- {
		bv, av := (*[32]int32)(b), (*[32]int32)(a)
		a0, a1 := archsimd.LoadInt32x4Array((*[4]int32)(bv[0:])), archsimd.LoadInt32x4Array((*[4]int32)(bv[4:]))
		a2, a3 := archsimd.LoadInt32x4Array((*[4]int32)(bv[8:])), archsimd.LoadInt32x4Array((*[4]int32)(bv[12:]))
		a4, a5 := archsimd.LoadInt32x4Array((*[4]int32)(bv[16:])), archsimd.LoadInt32x4Array((*[4]int32)(bv[20:]))
		a6, a7 := archsimd.LoadInt32x4Array((*[4]int32)(bv[24:])), archsimd.LoadInt32x4Array((*[4]int32)(bv[28:]))
		for t, xoff := range xo {
			ws := (*[32]int32)(unsafe.Add(w, 4*wo[t]))
			v0, v1, v2, v3 := extend32(unsafe.Add(x, xoff), unsigned)
			v0, v1, v2, v3 = v0.Add(off16), v1.Add(off16), v2.Add(off16), v3.Add(off16)
			a0 = v0.ExtendLo4ToInt32().MulAdd(archsimd.LoadInt32x4Array((*[4]int32)(ws[0:])), a0)
			a1 = v0.HiToLo().ExtendLo4ToInt32().MulAdd(archsimd.LoadInt32x4Array((*[4]int32)(ws[4:])), a1)
			a2 = v1.ExtendLo4ToInt32().MulAdd(archsimd.LoadInt32x4Array((*[4]int32)(ws[8:])), a2)
			a3 = v1.HiToLo().ExtendLo4ToInt32().MulAdd(archsimd.LoadInt32x4Array((*[4]int32)(ws[12:])), a3)
			a4 = v2.ExtendLo4ToInt32().MulAdd(archsimd.LoadInt32x4Array((*[4]int32)(ws[16:])), a4)
			a5 = v2.HiToLo().ExtendLo4ToInt32().MulAdd(archsimd.LoadInt32x4Array((*[4]int32)(ws[20:])), a5)
			a6 = v3.ExtendLo4ToInt32().MulAdd(archsimd.LoadInt32x4Array((*[4]int32)(ws[24:])), a6)
			a7 = v3.HiToLo().ExtendLo4ToInt32().MulAdd(archsimd.LoadInt32x4Array((*[4]int32)(ws[28:])), a7)
		}
		a0.StoreArray((*[4]int32)(av[0:]))
		a1.StoreArray((*[4]int32)(av[4:]))
		a2.StoreArray((*[4]int32)(av[8:]))
		a3.StoreArray((*[4]int32)(av[12:]))
		a4.StoreArray((*[4]int32)(av[16:]))
		a5.StoreArray((*[4]int32)(av[20:]))
		a6.StoreArray((*[4]int32)(av[24:]))
		a7.StoreArray((*[4]int32)(av[28:]))
		a, b, x, w = unsafe.Add(a, 128), unsafe.Add(b, 128), unsafe.Add(x, 32), unsafe.Add(w, 128)
	}
}

// dwBlock16NEON is one block of dwBlocks32NEON for 16 channels (four
// accumulators), with the same exact int16 offset and wrapping int32 MLA.
func dwBlock16NEON[T int8 | uint8](a, b, x, w unsafe.Pointer, xo, wo []int, off16 archsimd.Int16x8) {
	k := 255
	unsigned := T(k) > 0
	wo = wo[:len(xo)]
	bv, av := (*[16]int32)(b), (*[16]int32)(a)
	a0, a1 := archsimd.LoadInt32x4Array((*[4]int32)(bv[0:])), archsimd.LoadInt32x4Array((*[4]int32)(bv[4:]))
	a2, a3 := archsimd.LoadInt32x4Array((*[4]int32)(bv[8:])), archsimd.LoadInt32x4Array((*[4]int32)(bv[12:]))
	for t, xoff := range xo {
		ws := (*[16]int32)(unsafe.Add(w, 4*wo[t]))
		v0, v1 := extend16(unsafe.Add(x, xoff), unsigned)
		v0, v1 = v0.Add(off16), v1.Add(off16)
		a0 = v0.ExtendLo4ToInt32().MulAdd(archsimd.LoadInt32x4Array((*[4]int32)(ws[0:])), a0)
		a1 = v0.HiToLo().ExtendLo4ToInt32().MulAdd(archsimd.LoadInt32x4Array((*[4]int32)(ws[4:])), a1)
		a2 = v1.ExtendLo4ToInt32().MulAdd(archsimd.LoadInt32x4Array((*[4]int32)(ws[8:])), a2)
		a3 = v1.HiToLo().ExtendLo4ToInt32().MulAdd(archsimd.LoadInt32x4Array((*[4]int32)(ws[12:])), a3)
	}
	a0.StoreArray((*[4]int32)(av[0:]))
	a1.StoreArray((*[4]int32)(av[4:]))
	a2.StoreArray((*[4]int32)(av[8:]))
	a3.StoreArray((*[4]int32)(av[12:]))
}

// dwBlock8NEON is one block of dwBlocks32NEON for 8 channels (two
// accumulators): each tap's 8 input bytes are loaded as one 64-bit word
// (nothing past them is read), then extended and offset in int16 and
// multiplied-accumulated in int32 exactly as in dwBlocks32NEON.
func dwBlock8NEON[T int8 | uint8](a, b, x, w unsafe.Pointer, xo, wo []int, off16 archsimd.Int16x8) {
	k := 255
	unsigned := T(k) > 0
	wo = wo[:len(xo)]
	bv, av := (*[8]int32)(b), (*[8]int32)(a)
	a0, a1 := archsimd.LoadInt32x4Array((*[4]int32)(bv[0:])), archsimd.LoadInt32x4Array((*[4]int32)(bv[4:]))
	for t, xoff := range xo {
		ws := (*[8]int32)(unsafe.Add(w, 4*wo[t]))
		v := extend8(unsafe.Add(x, xoff), unsigned).Add(off16)
		a0 = v.ExtendLo4ToInt32().MulAdd(archsimd.LoadInt32x4Array((*[4]int32)(ws[0:])), a0)
		a1 = v.HiToLo().ExtendLo4ToInt32().MulAdd(archsimd.LoadInt32x4Array((*[4]int32)(ws[4:])), a1)
	}
	a0.StoreArray((*[4]int32)(av[0:]))
	a1.StoreArray((*[4]int32)(av[4:]))
}

// extend8 loads the 8 bytes at p and returns them extended to int16, as
// uint8 values (zero-extended) when unsigned, else as int8 (sign-extended).
// The 64-bit word goes into the low half of a zero vector (two
// instructions; a broadcast takes three).
func extend8(p unsafe.Pointer, unsigned bool) archsimd.Int16x8 {
	var z archsimd.Uint64x2
	v := z.SetElem(0, *(*uint64)(p)).ReshapeToUint8s()
	if unsigned {
		return v.ExtendLo8ToUint16().BitsToInt16()
	}
	return v.BitsToInt8().ExtendLo8ToInt16()
}

// extend16 loads the 16 bytes at p and returns them extended to int16,
// low and high halves, zero-extended (uint8) when unsigned, else
// sign-extended (int8).
func extend16(p unsafe.Pointer, unsigned bool) (lo, hi archsimd.Int16x8) {
	if unsigned {
		v := archsimd.LoadUint8x16Array((*[16]uint8)(p))
		return v.ExtendLo8ToUint16().BitsToInt16(), v.HiToLo().ExtendLo8ToUint16().BitsToInt16()
	}
	v := archsimd.LoadInt8x16Array((*[16]int8)(p))
	return v.ExtendLo8ToInt16(), v.HiToLo().ExtendLo8ToInt16()
}

// extend32 is extend16 for the 32 bytes at p, in four vectors of 8
// (written out rather than calling extend16, whose inlined calls would
// each leave a NOP in the caller's loop).
func extend32(p unsafe.Pointer, unsigned bool) (v0, v1, v2, v3 archsimd.Int16x8) {
	q := unsafe.Add(p, 16)
	if unsigned {
		u0, u1 := archsimd.LoadUint8x16Array((*[16]uint8)(p)), archsimd.LoadUint8x16Array((*[16]uint8)(q))
		return u0.ExtendLo8ToUint16().BitsToInt16(), u0.HiToLo().ExtendLo8ToUint16().BitsToInt16(),
			u1.ExtendLo8ToUint16().BitsToInt16(), u1.HiToLo().ExtendLo8ToUint16().BitsToInt16()
	}
	s0, s1 := archsimd.LoadInt8x16Array((*[16]int8)(p)), archsimd.LoadInt8x16Array((*[16]int8)(q))
	return s0.ExtendLo8ToInt16(), s0.HiToLo().ExtendLo8ToInt16(), s1.ExtendLo8ToInt16(), s1.HiToLo().ExtendLo8ToInt16()
}

// dwPixelF32NEON is dwPixelF32 for 8 channels at a time: multiply and
// add per tap in order, then bias and clampF's comparisons.
func dwPixelF32NEON(y, bias []float32, lo, hi float32, x, w []float32, xo, wo []int) int {
	n := len(y)
	lov, hiv := archsimd.BroadcastFloat32x4(lo), archsimd.BroadcastFloat32x4(hi)
	c := 0
	for ; c+8 <= n; c += 8 {
		var a0, a1 archsimd.Float32x4
		for t, xoff := range xo {
			xs, ws := x[xoff+c:], w[wo[t]+c:]
			a0 = a0.Add(archsimd.LoadFloat32x4(xs).Mul(archsimd.LoadFloat32x4(ws)))
			a1 = a1.Add(archsimd.LoadFloat32x4(xs[4:]).Mul(archsimd.LoadFloat32x4(ws[4:])))
		}
		a0 = a0.Add(archsimd.LoadFloat32x4(bias[c:]))
		a1 = a1.Add(archsimd.LoadFloat32x4(bias[c+4:]))
		a0 = lov.IfElse(a0.Less(lov), a0)
		a1 = lov.IfElse(a1.Less(lov), a1)
		a0 = hiv.IfElse(a0.Greater(hiv), a0)
		a1 = hiv.IfElse(a1.Greater(hiv), a1)
		a0.Store(y[c:])
		a1.Store(y[c+4:])
	}
	return c
}
