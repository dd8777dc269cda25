//go:build goexperiment.simd && arm64 && !purego

package conv

import "simd/archsimd"

// NEON is part of every arm64 CPU: the kernels are always on.
func init() {
	dwPixelI8 = dwPixelI8NEON
	dwPixelU8 = dwPixelU8NEON
	dwPixelF32 = dwPixelF32NEON
}

// dwPixelI8NEON is dwPixelI8 for 16 channels at a time: a tap's 16 input
// bytes are sign-extended to four int32x4 vectors, offset by the input
// zero point and multiplied-accumulated (MLA) with the int32 filter
// values, in wrapping int32 arithmetic like the scalar loop.
func dwPixelI8NEON(acc, bias []int32, x []int8, w []int32, xo, wo []int, off int32) int {
	n := len(acc)
	offv := archsimd.BroadcastInt32x4(off)
	c := 0
	for ; c+16 <= n; c += 16 {
		a0 := archsimd.LoadInt32x4(bias[c:])
		a1 := archsimd.LoadInt32x4(bias[c+4:])
		a2 := archsimd.LoadInt32x4(bias[c+8:])
		a3 := archsimd.LoadInt32x4(bias[c+12:])
		for t, xoff := range xo {
			xv := archsimd.LoadInt8x16(x[xoff+c:])
			lo, hi := xv.ExtendLo8ToInt16(), xv.HiToLo().ExtendLo8ToInt16()
			ws := w[wo[t]+c:]
			a0 = lo.ExtendLo4ToInt32().Add(offv).MulAdd(archsimd.LoadInt32x4(ws), a0)
			a1 = lo.HiToLo().ExtendLo4ToInt32().Add(offv).MulAdd(archsimd.LoadInt32x4(ws[4:]), a1)
			a2 = hi.ExtendLo4ToInt32().Add(offv).MulAdd(archsimd.LoadInt32x4(ws[8:]), a2)
			a3 = hi.HiToLo().ExtendLo4ToInt32().Add(offv).MulAdd(archsimd.LoadInt32x4(ws[12:]), a3)
		}
		a0.Store(acc[c:])
		a1.Store(acc[c+4:])
		a2.Store(acc[c+8:])
		a3.Store(acc[c+12:])
	}
	return c
}

// dwPixelU8NEON is dwPixelI8NEON for uint8 inputs (zero-extended).
func dwPixelU8NEON(acc, bias []int32, x []uint8, w []int32, xo, wo []int, off int32) int {
	n := len(acc)
	offv := archsimd.BroadcastInt32x4(off)
	c := 0
	for ; c+16 <= n; c += 16 {
		a0 := archsimd.LoadInt32x4(bias[c:])
		a1 := archsimd.LoadInt32x4(bias[c+4:])
		a2 := archsimd.LoadInt32x4(bias[c+8:])
		a3 := archsimd.LoadInt32x4(bias[c+12:])
		for t, xoff := range xo {
			xv := archsimd.LoadUint8x16(x[xoff+c:])
			lo, hi := xv.ExtendLo8ToUint16(), xv.HiToLo().ExtendLo8ToUint16()
			ws := w[wo[t]+c:]
			a0 = lo.ExtendLo4ToUint32().BitsToInt32().Add(offv).MulAdd(archsimd.LoadInt32x4(ws), a0)
			a1 = lo.HiToLo().ExtendLo4ToUint32().BitsToInt32().Add(offv).MulAdd(archsimd.LoadInt32x4(ws[4:]), a1)
			a2 = hi.ExtendLo4ToUint32().BitsToInt32().Add(offv).MulAdd(archsimd.LoadInt32x4(ws[8:]), a2)
			a3 = hi.HiToLo().ExtendLo4ToUint32().BitsToInt32().Add(offv).MulAdd(archsimd.LoadInt32x4(ws[12:]), a3)
		}
		a0.Store(acc[c:])
		a1.Store(acc[c+4:])
		a2.Store(acc[c+8:])
		a3.Store(acc[c+12:])
	}
	return c
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
