//go:build goexperiment.simd && arm64 && !purego

package conv

import (
	"simd/archsimd"
	"unsafe"
)

// NEON is part of every arm64 CPU: the kernels are always on.
func init() {
	dwPixelI8 = dwPixelI8NEON
	dwPixelU8 = dwPixelU8NEON
	dwPixelF32 = dwPixelF32NEON
}

// dwPixelI8NEON is dwPixelI8 for 16 channels at a time: a tap's 16 input
// bytes are sign-extended to four int32x4 vectors, offset by the input
// zero point and multiplied-accumulated (MLA) with the int32 filter
// values, in wrapping int32 arithmetic like the scalar loop. The loads go
// through pointers checked once per call (dwTapsFit): with slices the
// compiler checked bounds and spilled around every load, about sixty
// instructions per tap for sixteen vector ones.
func dwPixelI8NEON(acc, bias []int32, x []int8, w []int32, xo, wo []int, off int32) int {
	n := len(acc) &^ 15
	if n == 0 || !dwTapsFit(len(x), len(w), len(bias), xo, wo, n) {
		return 0
	}
	offv := archsimd.BroadcastInt32x4(off)
	xp, wp := unsafe.Pointer(&x[0]), unsafe.Pointer(&w[0])
	wo = wo[:len(xo)]
	for c := 0; c < n; c += 16 {
		a0 := archsimd.LoadInt32x4Array((*[4]int32)(bias[c:]))
		a1 := archsimd.LoadInt32x4Array((*[4]int32)(bias[c+4:]))
		a2 := archsimd.LoadInt32x4Array((*[4]int32)(bias[c+8:]))
		a3 := archsimd.LoadInt32x4Array((*[4]int32)(bias[c+12:]))
		for t, xoff := range xo {
			xv := archsimd.LoadInt8x16Array((*[16]int8)(unsafe.Add(xp, xoff+c)))
			ws := unsafe.Add(wp, (wo[t]+c)*4)
			lo, hi := xv.ExtendLo8ToInt16(), xv.HiToLo().ExtendLo8ToInt16()
			a0 = lo.ExtendLo4ToInt32().Add(offv).MulAdd(archsimd.LoadInt32x4Array((*[4]int32)(ws)), a0)
			a1 = lo.HiToLo().ExtendLo4ToInt32().Add(offv).MulAdd(archsimd.LoadInt32x4Array((*[4]int32)(unsafe.Add(ws, 16))), a1)
			a2 = hi.ExtendLo4ToInt32().Add(offv).MulAdd(archsimd.LoadInt32x4Array((*[4]int32)(unsafe.Add(ws, 32))), a2)
			a3 = hi.HiToLo().ExtendLo4ToInt32().Add(offv).MulAdd(archsimd.LoadInt32x4Array((*[4]int32)(unsafe.Add(ws, 48))), a3)
		}
		a0.StoreArray((*[4]int32)(acc[c:]))
		a1.StoreArray((*[4]int32)(acc[c+4:]))
		a2.StoreArray((*[4]int32)(acc[c+8:]))
		a3.StoreArray((*[4]int32)(acc[c+12:]))
	}
	return n
}

// dwPixelU8NEON is dwPixelI8NEON for uint8 inputs (zero-extended).
func dwPixelU8NEON(acc, bias []int32, x []uint8, w []int32, xo, wo []int, off int32) int {
	n := len(acc) &^ 15
	if n == 0 || !dwTapsFit(len(x), len(w), len(bias), xo, wo, n) {
		return 0
	}
	offv := archsimd.BroadcastInt32x4(off)
	xp, wp := unsafe.Pointer(&x[0]), unsafe.Pointer(&w[0])
	wo = wo[:len(xo)]
	for c := 0; c < n; c += 16 {
		a0 := archsimd.LoadInt32x4Array((*[4]int32)(bias[c:]))
		a1 := archsimd.LoadInt32x4Array((*[4]int32)(bias[c+4:]))
		a2 := archsimd.LoadInt32x4Array((*[4]int32)(bias[c+8:]))
		a3 := archsimd.LoadInt32x4Array((*[4]int32)(bias[c+12:]))
		for t, xoff := range xo {
			xv := archsimd.LoadUint8x16Array((*[16]uint8)(unsafe.Add(xp, xoff+c)))
			ws := unsafe.Add(wp, (wo[t]+c)*4)
			lo, hi := xv.ExtendLo8ToUint16(), xv.HiToLo().ExtendLo8ToUint16()
			a0 = lo.ExtendLo4ToUint32().BitsToInt32().Add(offv).MulAdd(archsimd.LoadInt32x4Array((*[4]int32)(ws)), a0)
			a1 = lo.HiToLo().ExtendLo4ToUint32().BitsToInt32().Add(offv).MulAdd(archsimd.LoadInt32x4Array((*[4]int32)(unsafe.Add(ws, 16))), a1)
			a2 = hi.ExtendLo4ToUint32().BitsToInt32().Add(offv).MulAdd(archsimd.LoadInt32x4Array((*[4]int32)(unsafe.Add(ws, 32))), a2)
			a3 = hi.HiToLo().ExtendLo4ToUint32().BitsToInt32().Add(offv).MulAdd(archsimd.LoadInt32x4Array((*[4]int32)(unsafe.Add(ws, 48))), a3)
		}
		a0.StoreArray((*[4]int32)(acc[c:]))
		a1.StoreArray((*[4]int32)(acc[c+4:]))
		a2.StoreArray((*[4]int32)(acc[c+8:]))
		a3.StoreArray((*[4]int32)(acc[c+12:]))
	}
	return n
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
