//go:build goexperiment.simd && amd64 && !purego

package conv

import (
	"simd/archsimd"
	"unsafe"
)

func init() {
	if archsimd.X86.AVX2() {
		dwPixelI8 = dwPixelAVX2[int8]
		dwPixelU8 = dwPixelAVX2[uint8]
		dwPixelF32 = dwPixelF32AVX
	}
}

// dwPixelAVX2 is dwPixelI8/dwPixelU8 for 16 channels at a time: the
// input bytes of a tap are extended to int32 (two vectors of 8; sign- or
// zero-extended by T), offset by the input zero point and multiplied by
// the int32 filter values with VPMULLD, all in wrapping int32 arithmetic
// like the scalar loop. Loads go through pointers checked once per call
// (dwTapsFit): slice loads cost a bounds check and spills per load. The
// last 8 channels of a count that is not a multiple of 16 take the
// 8-wide loop.
func dwPixelAVX2[T int8 | uint8](acc, bias []int32, x []T, w []int32, xo, wo []int, off int32) int {
	n := len(acc) &^ 7
	if n == 0 || !dwTapsFit(len(x), len(w), len(bias), xo, wo, n) {
		return 0
	}
	offv := archsimd.BroadcastInt32x8(off)
	xp, wp := unsafe.Pointer(&x[0]), unsafe.Pointer(&w[0])
	wo = wo[:len(xo)]
	c := 0
	for ; c+16 <= n; c += 16 {
		a0 := archsimd.LoadInt32x8Array((*[8]int32)(bias[c:]))
		a1 := archsimd.LoadInt32x8Array((*[8]int32)(bias[c+8:]))
		for t, xoff := range xo {
			xv := load16[T](unsafe.Slice((*byte)(unsafe.Add(xp, xoff+c)), 16))
			ws := unsafe.Add(wp, (wo[t]+c)*4)
			a0 = a0.Add(xv.GetLo().ExtendToInt32().Add(offv).Mul(archsimd.LoadInt32x8Array((*[8]int32)(ws))))
			a1 = a1.Add(xv.GetHi().ExtendToInt32().Add(offv).Mul(archsimd.LoadInt32x8Array((*[8]int32)(unsafe.Add(ws, 32)))))
		}
		a0.StoreArray((*[8]int32)(acc[c:]))
		a1.StoreArray((*[8]int32)(acc[c+8:]))
	}
	for ; c < n; c += 8 {
		a := archsimd.LoadInt32x8Array((*[8]int32)(bias[c:]))
		for t, xoff := range xo {
			xv := load8x16[T](unsafe.Slice((*byte)(unsafe.Add(xp, xoff+c)), 8)).ExtendToInt32()
			a = a.Add(xv.Add(offv).Mul(archsimd.LoadInt32x8Array((*[8]int32)(unsafe.Add(wp, (wo[t]+c)*4)))))
		}
		a.StoreArray((*[8]int32)(acc[c:]))
	}
	return c
}

// load8 loads the first 8 bytes of s (which must hold them) into the low
// half of a vector, without reading past them.
func load8[T int8 | uint8](s []T) archsimd.Uint64x2 {
	var z archsimd.Uint64x2
	return z.SetElem(0, *(*uint64)(unsafe.Pointer(unsafe.SliceData(s[:8]))))
}

// dwPixelF32AVX is dwPixelF32 for 16 channels at a time, then 8: separate
// multiply and add (no fused multiply-add), taps in order, then bias and
// clampF's comparisons (a NaN passes through), as the scalar loop rounds.
func dwPixelF32AVX(y, bias []float32, lo, hi float32, x, w []float32, xo, wo []int) int {
	n := len(y)
	lov, hiv := archsimd.BroadcastFloat32x8(lo), archsimd.BroadcastFloat32x8(hi)
	c := 0
	for ; c+16 <= n; c += 16 {
		var a0, a1 archsimd.Float32x8
		for t, xoff := range xo {
			xs, ws := x[xoff+c:], w[wo[t]+c:]
			a0 = a0.Add(archsimd.LoadFloat32x8(xs).Mul(archsimd.LoadFloat32x8(ws)))
			a1 = a1.Add(archsimd.LoadFloat32x8(xs[8:]).Mul(archsimd.LoadFloat32x8(ws[8:])))
		}
		a0 = a0.Add(archsimd.LoadFloat32x8(bias[c:]))
		a1 = a1.Add(archsimd.LoadFloat32x8(bias[c+8:]))
		a0 = lov.IfElse(a0.Less(lov), a0)
		a1 = lov.IfElse(a1.Less(lov), a1)
		a0 = hiv.IfElse(a0.Greater(hiv), a0)
		a1 = hiv.IfElse(a1.Greater(hiv), a1)
		a0.Store(y[c:])
		a1.Store(y[c+8:])
	}
	for ; c+8 <= n; c += 8 {
		var a archsimd.Float32x8
		for t, xoff := range xo {
			a = a.Add(archsimd.LoadFloat32x8(x[xoff+c:]).Mul(archsimd.LoadFloat32x8(w[wo[t]+c:])))
		}
		a = a.Add(archsimd.LoadFloat32x8(bias[c:]))
		a = lov.IfElse(a.Less(lov), a)
		a = hiv.IfElse(a.Greater(hiv), a)
		a.Store(y[c:])
	}
	return c
}

//go:noescape
func dwPair16I8(acc *int32, bias *int32, rows *[]byte, shift int, wp *int16, np int, nb int, npix, step int)

//go:noescape
func dwPair16U8(acc *int32, bias *int32, rows *[]byte, shift int, wp *int16, np int, nb int, npix, step int)

// dwPairRunAVX2 is dwPairRunI8/dwPairRunU8 on AVX2: npix pixels of n
// channels (whole 16-channel blocks, dwPairWide 16) in one assembly call.
func dwPairRunAVX2[T int8 | uint8](acc, bias []int32, rows [][]byte, shift int, wp []int16, n, npix, step int) {
	np, nb := len(rows)/2, n/16
	if !dwRunReady(acc, bias, rows, shift, wp, n, npix, step, n%16 == 0, nb*np*32) {
		return
	}
	if k := 255; T(k) > 0 {
		dwPair16U8(&acc[0], &bias[0], &rows[0], shift, &wp[0], np, nb, npix, step)
	} else {
		dwPair16I8(&acc[0], &bias[0], &rows[0], shift, &wp[0], np, nb, npix, step)
	}
}

// dwRunReady checks what the paired assembly relies on for npix pixels of
// n channels (shape: the channel count suits the kernel; wpLen: the
// packed filter values it reads) and returns whether there is anything
// for it to do: nothing for no pixels, and for an empty filter window
// (no taps) it writes the bias, the sums' value, itself. It panics on a
// bound the kernels' callers guarantee.
func dwRunReady(acc, bias []int32, rows [][]byte, shift int, wp []int16, n, npix, step int, shape bool, wpLen int) bool {
	np := len(rows) / 2
	if npix <= 0 || n == 0 {
		return false
	}
	if shift < 0 || step < 0 || !shape || len(acc) < npix*n || len(bias) < n || len(wp) < wpLen {
		panic("conv: paired depthwise: short buffers")
	}
	if np == 0 {
		for i := range npix {
			copy(acc[i*n:(i+1)*n], bias[:n])
		}
		return false
	}
	end := shift + (npix-1)*step + n
	for _, r := range rows[:2*np] {
		if len(r) < end {
			panic("conv: paired depthwise: tap row shorter than its pixels")
		}
	}
	return true
}

// dwPairWith returns dwPairI8/dwPairU8 on top of a run kernel (run is
// dwPairRunAVX2 or dwPairRunAVX512): the whole 16-channel blocks of one
// pixel in assembly (a pixel's run of one), then a block of 8 here. Both
// packings take 2 int16 per channel and tap pair for those blocks.
func dwPairWith[T int8 | uint8](run func(acc, bias []int32, rows [][]byte, shift int, wp []int16, n, npix, step int)) func(acc, bias []int32, rows [][]byte, shift int, wp []int16, n int) int {
	return func(acc, bias []int32, rows [][]byte, shift int, wp []int16, n int) int {
		c := n / 16 * 16
		if c > 0 {
			run(acc, bias, rows, shift, wp, c, 1, 0)
		}
		np := len(rows) / 2
		return c + dwPairTail8[T](acc[c:], bias[c:], rows, shift+c, wp[2*c*np:], n-c)
	}
}

func init() {
	if archsimd.X86.AVX2() && !archsimd.X86.AVX512() {
		dwPairWide = 16
		dwPairI8, dwPairU8 = dwPairWith[int8](dwPairRunAVX2[int8]), dwPairWith[uint8](dwPairRunAVX2[uint8])
		dwPairRunI8, dwPairRunU8 = dwPairRunAVX2[int8], dwPairRunAVX2[uint8]
	}
	if archsimd.X86.AVX512() {
		// 32-channel blocks (dwPair32I8: inputs extended to int16, two
		// taps interleaved with VPUNPCKLWD/VPUNPCKHWD and multiplied
		// pair-wise with VPMADDWD) and a block of 16 in assembly.
		dwPairI8 = dwPairWith[int8](dwPairRunAVX512[int8])
		dwPairU8 = dwPairWith[uint8](dwPairRunAVX512[uint8])
		dwPairRunI8 = dwPairRunAVX512[int8]
		dwPairRunU8 = dwPairRunAVX512[uint8]
	}
}

// dwUnpair0 and dwUnpair1 restore channel order after the paired
// multiply-adds: the low interleave half holds channels 8L+j (lane 4L+j),
// the high half 8L+4+j; VPERMI2D picks channels 0..15 and 16..31.
var dwUnpair0, dwUnpair1 = func() (a, b [16]uint32) {
	for c := 0; c < 32; c++ {
		l, j := c/8, c%8
		idx := uint32(4*l + j%4)
		if j >= 4 {
			idx += 16
		}
		if c < 16 {
			a[c] = idx
		} else {
			b[c-16] = idx
		}
	}
	return
}()

// dwPair32I8 and dwPair32U8 run the whole 32-channel blocks of
// dwPairRunAVX512 (dwpair_amd64.s); the caller checks every bound.
//
//go:noescape
func dwPair32I8(acc *int32, bias *int32, rows *[]byte, shift int, wp *int16, np int, nb int, idx0, idx1 *[16]uint32, npix, step, tail int)

//go:noescape
func dwPair32U8(acc *int32, bias *int32, rows *[]byte, shift int, wp *int16, np int, nb int, idx0, idx1 *[16]uint32, npix, step, tail int)

// dwPairRunAVX512 is dwPairRunI8/dwPairRunU8: npix pixels of n channels
// (whole 32-channel blocks, then at most one of 16) in one assembly call.
func dwPairRunAVX512[T int8 | uint8](acc, bias []int32, rows [][]byte, shift int, wp []int16, n, npix, step int) {
	np := len(rows) / 2
	nb, tail := n/dwPairBlock, n%dwPairBlock/16
	if !dwRunReady(acc, bias, rows, shift, wp, n, npix, step, dwPairRuns(n), (nb*64+tail*32)*np) {
		return
	}
	if k := 255; T(k) > 0 {
		dwPair32U8(&acc[0], &bias[0], &rows[0], shift, &wp[0], np, nb, &dwUnpair0, &dwUnpair1, npix, step, tail)
	} else {
		dwPair32I8(&acc[0], &bias[0], &rows[0], shift, &wp[0], np, nb, &dwUnpair0, &dwUnpair1, npix, step, tail)
	}
}

// dwPairTail8 runs the paired kernel's last block of 8 channels (when n
// >= 8; wp at that block) and returns how many channels it did: the low
// half holds channels 0-3, the high half 4-7.
func dwPairTail8[T int8 | uint8](acc, bias []int32, rows [][]byte, shift int, wp []int16, n int) int {
	if n < 8 {
		return 0
	}
	np := len(rows) / 2
	w := wp[:np*16]
	var lo, hi archsimd.Int32x4
	for p := 0; p < np; p++ {
		x0 := load8x16[T](rows[2*p][shift:])
		x1 := load8x16[T](rows[2*p+1][shift:])
		lo = lo.Add(x0.InterleaveLo(x1).DotProductPairs(archsimd.LoadInt16x8Array((*[8]int16)(w[p*16:]))))
		hi = hi.Add(x0.InterleaveHi(x1).DotProductPairs(archsimd.LoadInt16x8Array((*[8]int16)(w[p*16+8:]))))
	}
	bs := bias[:8]
	lo.Add(archsimd.LoadInt32x4Array((*[4]int32)(bs))).StoreArray((*[4]int32)(acc))
	hi.Add(archsimd.LoadInt32x4Array((*[4]int32)(bs[4:]))).StoreArray((*[4]int32)(acc[4:]))
	return 8
}

// load16 loads 16 input bytes extended to int16.
func load16[T int8 | uint8](s []byte) archsimd.Int16x16 {
	p := (*[16]byte)(s)
	if k := 255; T(k) > 0 {
		return archsimd.LoadUint8x16Array(p).ExtendToUint16().AsInt16x16()
	}
	return archsimd.LoadInt8x16Array((*[16]int8)(unsafe.Pointer(p))).ExtendToInt16()
}

// load8x16 loads 8 input bytes extended to int16.
func load8x16[T int8 | uint8](s []byte) archsimd.Int16x8 {
	v := load8(s)
	if k := 255; T(k) > 0 {
		return v.AsUint8x16().ExtendLo8ToUint16().AsInt16x8()
	}
	return v.AsInt8x16().ExtendLo8ToInt16()
}
