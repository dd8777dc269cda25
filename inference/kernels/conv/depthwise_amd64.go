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
	np := len(rows) / 2
	nb := n / 16
	if npix <= 0 || n == 0 {
		return
	}
	if np == 0 {
		// No taps (an empty filter window): the sums are the bias.
		for i := range npix {
			copy(acc[i*n:(i+1)*n], bias[:n])
		}
		return
	}
	end := shift + (npix-1)*step + n
	if shift < 0 || step < 0 || n%16 != 0 || len(acc) < npix*n || len(bias) < n || len(wp) < nb*np*32 {
		panic("conv: dwPairRunAVX2: short buffers")
	}
	for _, r := range rows[:2*np] {
		if len(r) < end {
			panic("conv: dwPairRunAVX2: tap row shorter than its pixels")
		}
	}
	if k := 255; T(k) > 0 {
		dwPair16U8(&acc[0], &bias[0], &rows[0], shift, &wp[0], np, nb, npix, step)
	} else {
		dwPair16I8(&acc[0], &bias[0], &rows[0], shift, &wp[0], np, nb, npix, step)
	}
}

// dwPairAVX2 is dwPairI8/dwPairU8 on AVX2: the whole 16-channel blocks
// of one pixel in assembly, then a block of 8 here.
func dwPairAVX2[T int8 | uint8](acc, bias []int32, rows [][]byte, shift int, wp []int16, n int) int {
	nb := n / 16
	c := nb * 16
	if nb > 0 {
		dwPairRunAVX2[T](acc, bias, rows, shift, wp, c, 1, 0)
	}
	np := len(rows) / 2
	return c + dwPairTail8[T](acc[c:], bias[c:], rows, shift+c, wp[nb*np*32:], n-c)
}

func init() {
	if archsimd.X86.AVX2() && !archsimd.X86.AVX512() {
		dwPairWide = 16
		dwPairI8, dwPairU8 = dwPairAVX2[int8], dwPairAVX2[uint8]
		dwPairRunI8, dwPairRunU8 = dwPairRunAVX2[int8], dwPairRunAVX2[uint8]
	}
	if archsimd.X86.AVX512() {
		dwPairI8 = dwPairAVX512[int8]
		dwPairU8 = dwPairAVX512[uint8]
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
// dwPairAVX512 (dwpair_amd64.s); the caller checks every bound.
//
//go:noescape
func dwPair32I8(acc *int32, bias *int32, rows *[]byte, shift int, wp *int16, np int, nb int, idx0, idx1 *[16]uint32, npix, step, tail int, idx16 *[2][8]uint32)

//go:noescape
func dwPair32U8(acc *int32, bias *int32, rows *[]byte, shift int, wp *int16, np int, nb int, idx0, idx1 *[16]uint32, npix, step, tail int, idx16 *[2][8]uint32)

// dwPairRunAVX512 is dwPairRunI8/dwPairRunU8: npix pixels of n channels
// (whole 32-channel blocks, then at most one of 16) in one assembly call.
func dwPairRunAVX512[T int8 | uint8](acc, bias []int32, rows [][]byte, shift int, wp []int16, n, npix, step int) {
	np := len(rows) / 2
	nb, tail := n/dwPairBlock, n%dwPairBlock/16
	if npix <= 0 || n == 0 {
		return
	}
	if np == 0 {
		// No taps (an empty filter window): the sums are the bias.
		for i := range npix {
			copy(acc[i*n:(i+1)*n], bias[:n])
		}
		return
	}
	end := shift + (npix-1)*step + n
	if shift < 0 || step < 0 || !dwPairRuns(n) || len(acc) < npix*n || len(bias) < n || len(wp) < (nb*64+tail*32)*np {
		panic("conv: dwPairRunAVX512: short buffers")
	}
	for _, r := range rows[:2*np] {
		if len(r) < end {
			panic("conv: dwPairRunAVX512: tap row shorter than its pixels")
		}
	}
	if k := 255; T(k) > 0 {
		dwPair32U8(&acc[0], &bias[0], &rows[0], shift, &wp[0], np, nb, &dwUnpair0, &dwUnpair1, npix, step, tail, &dwUnpair16)
	} else {
		dwPair32I8(&acc[0], &bias[0], &rows[0], shift, &wp[0], np, nb, &dwUnpair0, &dwUnpair1, npix, step, tail, &dwUnpair16)
	}
}

// dwPairAVX512 is dwPairI8/dwPairU8 on 32 channels at a time: inputs
// extended to int16 (VPMOVSXBW/VPMOVZXBW), two taps interleaved
// (VPUNPCKLWD/VPUNPCKHWD) and multiplied pair-wise with VPMADDWD, in
// assembly (dwPair32I8); then a block of 16 and one of 8 here.
func dwPairAVX512[T int8 | uint8](acc, bias []int32, rows [][]byte, shift int, wp []int16, n int) int {
	np := len(rows) / 2
	nb := n / dwPairBlock
	if nb > 0 && np == 0 {
		// No taps (an empty filter window): the sums are the bias.
		copy(acc[:nb*dwPairBlock], bias[:nb*dwPairBlock])
	} else if nb > 0 {
		// The bounds the assembly relies on.
		end := shift + nb*dwPairBlock
		if shift < 0 || len(acc) < nb*dwPairBlock || len(bias) < nb*dwPairBlock || len(wp) < nb*np*64 {
			panic("conv: dwPairAVX512: short buffers")
		}
		for _, r := range rows[:2*np] {
			if len(r) < end {
				panic("conv: dwPairAVX512: tap row shorter than its channels")
			}
		}
		if k := 255; T(k) > 0 {
			dwPair32U8(&acc[0], &bias[0], &rows[0], shift, &wp[0], np, nb, &dwUnpair0, &dwUnpair1, 1, 0, 0, &dwUnpair16)
		} else {
			dwPair32I8(&acc[0], &bias[0], &rows[0], shift, &wp[0], np, nb, &dwUnpair0, &dwUnpair1, 1, 0, 0, &dwUnpair16)
		}
	}
	c := nb * dwPairBlock
	wp = wp[nb*np*64:]
	if n-c >= 16 {
		// 16 channels: two 128-bit lanes (low half: channels 0-3 and
		// 8-11, high half: 4-7 and 12-15).
		w := wp[:np*32]
		var lo, hi archsimd.Int32x8
		for p := 0; p < np; p++ {
			x0 := load16[T](rows[2*p][shift+c:])
			x1 := load16[T](rows[2*p+1][shift+c:])
			lo = lo.Add(x0.InterleaveLoGrouped(x1).DotProductPairs(archsimd.LoadInt16x16Array((*[16]int16)(w[p*32:]))))
			hi = hi.Add(x0.InterleaveHiGrouped(x1).DotProductPairs(archsimd.LoadInt16x16Array((*[16]int16)(w[p*32+16:]))))
		}
		i0 := archsimd.LoadUint32x8Array(&dwUnpair16[0])
		i1 := archsimd.LoadUint32x8Array(&dwUnpair16[1])
		bs := bias[c:][:16]
		lo.ConcatPermute(hi, i0).Add(archsimd.LoadInt32x8Array((*[8]int32)(bs))).StoreArray((*[8]int32)(acc[c:]))
		lo.ConcatPermute(hi, i1).Add(archsimd.LoadInt32x8Array((*[8]int32)(bs[8:]))).StoreArray((*[8]int32)(acc[c+8:]))
		c += 16
		wp = wp[np*32:]
	}
	return c + dwPairTail8[T](acc[c:], bias[c:], rows, shift+c, wp, n-c)
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

// dwUnpair16 restores channel order for the 16-channel block: the low
// half holds channels 0-3 and 8-11, the high half 4-7 and 12-15.
var dwUnpair16 = [2][8]uint32{{0, 1, 2, 3, 8, 9, 10, 11}, {4, 5, 6, 7, 12, 13, 14, 15}}

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
