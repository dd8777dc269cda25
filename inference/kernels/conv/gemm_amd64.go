//go:build goexperiment.simd && amd64 && !purego

package conv

import (
	"simd/archsimd"
	"unsafe"
)

func init() {
	if archsimd.X86.AVX512() {
		qgemmKernel = qgemmAVX512
		widenI8Kernel = widenI8AVX2
		widenU8Kernel = widenU8AVX2
		useSIMD = true
	} else if archsimd.X86.AVX2() {
		qgemmKernel = qgemmAVX2
		widenI8Kernel = widenI8AVX2
		widenU8Kernel = widenU8AVX2
		useSIMD = true
	}
}

// q16AVX2x4 is four rows by sixteen channels of qgemmAVX2 in assembly
// (q16_amd64.s): rows of a lda bytes apart, kp2 packed pairs of w, the
// sums plus bias stored in rows of out ldo int32 apart.
//
//go:noescape
func q16AVX2x4(a *int16, lda int, w *int16, kp2 int, out *int32, ldo int, bias *int32)

// qgemmAVX2 is qgemmKernel with AVX2 VPMADDWD: blocks of 4 rows × 16
// channels in assembly (q16AVX2x4), the last 1–3 rows in Go (3 rows × 16
// channels: 6 accumulators, 4 rows would spill there), one pair of
// reduction steps per iteration.
func qgemmAVX2(a []int16, kp int, wp []int16, bias []int32, acc []int32, m, n, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	kp2 := kp / 2
	if kp2 == 0 {
		for i := 0; i < m; i++ {
			copy(acc[i*ldc:i*ldc+n], bias[:n])
		}
		return
	}
	a32 := unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(a))), len(a)/2)
	var tmp [3][q16NR]int32
	var tmp4 [4][q16NR]int32
	var zero16 [q16NR]int32
	for j := 0; j < n; j += q16NR {
		wb := wp[j/q16NR*kp2*2*q16NR:][: kp2*2*q16NR : kp2*2*q16NR]
		full := j+q16NR <= n
		var b0, b1 archsimd.Int32x8
		if full {
			b0 = archsimd.LoadInt32x8(bias[j:])
			b1 = archsimd.LoadInt32x8(bias[j+8:])
		}
		i := 0
		if m >= 4 {
			// Every bound of the assembly blocks, checked once: the rows
			// read, the packed block, the sums written.
			_ = a32[m/4*4*kp2-1]
			if full {
				_ = acc[(m/4*4-1)*ldc+j+q16NR-1]
				bj := bias[j : j+q16NR]
				for ; i+4 <= m; i += 4 {
					q16AVX2x4(&a[i*kp], kp*2, &wb[0], kp2, &acc[i*ldc+j], ldc, &bj[0])
				}
			}
			for ; i+4 <= m; i += 4 {
				q16AVX2x4(&a[i*kp], kp*2, &wb[0], kp2, &tmp4[0][0], q16NR, &zero16[0])
				for r := range 4 {
					row := acc[(i+r)*ldc+j : (i+r)*ldc+n]
					for c := range row {
						row[c] = tmp4[r][c] + bias[j+c]
					}
				}
			}
		}
		for ; i+3 <= m; i += 3 {
			r0 := a32[i*kp2:][:kp2]
			r1 := a32[(i+1)*kp2:][:kp2]
			r2 := a32[(i+2)*kp2:][:kp2]
			var c00, c01, c10, c11, c20, c21 archsimd.Int32x8
			for p := range r0 {
				w := (*[32]int16)(wb[p*32:])
				w0 := archsimd.LoadInt16x16Array((*[16]int16)(w[:16]))
				w1 := archsimd.LoadInt16x16Array((*[16]int16)(w[16:]))
				x := archsimd.BroadcastInt32x8(r0[p]).AsInt16x16()
				c00 = c00.Add(x.DotProductPairs(w0))
				c01 = c01.Add(x.DotProductPairs(w1))
				x = archsimd.BroadcastInt32x8(r1[p]).AsInt16x16()
				c10 = c10.Add(x.DotProductPairs(w0))
				c11 = c11.Add(x.DotProductPairs(w1))
				x = archsimd.BroadcastInt32x8(r2[p]).AsInt16x16()
				c20 = c20.Add(x.DotProductPairs(w0))
				c21 = c21.Add(x.DotProductPairs(w1))
			}
			if full {
				c00.Add(b0).Store(acc[i*ldc+j:])
				c01.Add(b1).Store(acc[i*ldc+j+8:])
				c10.Add(b0).Store(acc[(i+1)*ldc+j:])
				c11.Add(b1).Store(acc[(i+1)*ldc+j+8:])
				c20.Add(b0).Store(acc[(i+2)*ldc+j:])
				c21.Add(b1).Store(acc[(i+2)*ldc+j+8:])
				continue
			}
			c00.Store(tmp[0][:8])
			c01.Store(tmp[0][8:])
			c10.Store(tmp[1][:8])
			c11.Store(tmp[1][8:])
			c20.Store(tmp[2][:8])
			c21.Store(tmp[2][8:])
			for r := 0; r < 3; r++ {
				row := acc[(i+r)*ldc+j : (i+r)*ldc+n]
				for c := range row {
					row[c] = tmp[r][c] + bias[j+c]
				}
			}
		}
		for ; i < m; i++ {
			r0 := a32[i*kp2:][:kp2]
			var c00, c01, d00, d01 archsimd.Int32x8
			p := 0
			for ; p+2 <= len(r0); p += 2 {
				w := (*[64]int16)(wb[p*32:])
				x := archsimd.BroadcastInt32x8(r0[p]).AsInt16x16()
				c00 = c00.Add(x.DotProductPairs(archsimd.LoadInt16x16Array((*[16]int16)(w[:16]))))
				c01 = c01.Add(x.DotProductPairs(archsimd.LoadInt16x16Array((*[16]int16)(w[16:32]))))
				x = archsimd.BroadcastInt32x8(r0[p+1]).AsInt16x16()
				d00 = d00.Add(x.DotProductPairs(archsimd.LoadInt16x16Array((*[16]int16)(w[32:48]))))
				d01 = d01.Add(x.DotProductPairs(archsimd.LoadInt16x16Array((*[16]int16)(w[48:]))))
			}
			if p < len(r0) {
				w := (*[32]int16)(wb[p*32:])
				x := archsimd.BroadcastInt32x8(r0[p]).AsInt16x16()
				c00 = c00.Add(x.DotProductPairs(archsimd.LoadInt16x16Array((*[16]int16)(w[:16]))))
				c01 = c01.Add(x.DotProductPairs(archsimd.LoadInt16x16Array((*[16]int16)(w[16:]))))
			}
			c00, c01 = c00.Add(d00), c01.Add(d01)
			if full {
				c00.Add(b0).Store(acc[i*ldc+j:])
				c01.Add(b1).Store(acc[i*ldc+j+8:])
				continue
			}
			c00.Store(tmp[0][:8])
			c01.Store(tmp[0][8:])
			row := acc[i*ldc+j : i*ldc+n]
			for c := range row {
				row[c] = tmp[0][c] + bias[j+c]
			}
		}
	}
}

// widenI8AVX2 sign-extends int8 values to int16, 16 at a time.
func widenI8AVX2(dst []int16, src []int8) {
	dst = dst[:len(src)]
	i := 0
	for ; i+16 <= len(src); i += 16 {
		archsimd.LoadInt8x16Array((*[16]int8)(src[i:])).ExtendToInt16().StoreArray((*[16]int16)(dst[i:]))
	}
	for ; i < len(src); i++ {
		dst[i] = int16(src[i])
	}
}

// widenU8AVX2 zero-extends uint8 values to int16, 16 at a time.
func widenU8AVX2(dst []int16, src []uint8) {
	dst = dst[:len(src)]
	i := 0
	for ; i+16 <= len(src); i += 16 {
		archsimd.LoadUint8x16Array((*[16]uint8)(src[i:])).ExtendToUint16().AsInt16x16().StoreArray((*[16]int16)(dst[i:]))
	}
	for ; i < len(src); i++ {
		dst[i] = int16(src[i])
	}
}

// hasAVX512 selects the AVX-512 narrowing stores of the requantization.
var hasAVX512 bool

func init() {
	hasAVX512 = archsimd.X86.AVX512()
	if archsimd.X86.AVX2() {
		requantI8Kernel = requantBlocks[int8]
		requantU8Kernel = requantBlocks[uint8]
		rqBlocks = rqBlocks16
	}
}

// requantAVX2 is requantRow on 8 channels at a time. The 64-bit products
// of the even and odd lanes are formed with VPMULDQ; AVX2 lacks a 64-bit
// arithmetic shift, so the rounding shifts are done as logical shifts of
// sign-flipped values (double rounding: (ab + 2^30) >> 31 equals
// TFLite's nudged division for every sign). Channels are the outer loop:
// a chunk's per-channel vectors are derived once for all its rows, and
// the rows are read and written through pointers checked once per call
// (per-row slicing cost about eighty instructions of bounds checks and
// spills per eight lanes).
func requantAVX2[T int8 | uint8](rq *requant, v *rqVec, c0 int, acc []int32, lda int, out []T, ldo, n, rows int) {
	n8 := n &^ 7
	if rows <= 0 || n <= 0 {
		return
	}
	if c0 < 0 || c0+n > len(rq.mult) || c0+n > len(v.total) || c0+n > len(v.left) || c0+n > len(v.right) ||
		(rows-1)*lda+n > len(acc) || (rows-1)*ldo+n > len(out) {
		panic("conv: requantAVX2: short buffers")
	}
	zp := archsimd.BroadcastInt32x8(rq.outZP)
	lo := archsimd.BroadcastInt32x8(rq.actMin)
	hi := archsimd.BroadcastInt32x8(rq.actMax)
	low32 := archsimd.BroadcastUint64x4(0xFFFFFFFF)
	ap, op := unsafe.Pointer(&acc[0]), unsafe.Pointer(&out[0])
	wide, words := hasAVX512, archsimd.LoadInt8x16Array(&bytesOfWords)
	for c := 0; c < n8; c += 8 {
		m := archsimd.LoadInt32x8Array((*[8]int32)(rq.mult[c0+c:]))
		mOdd := m.AsUint64x4().ShiftAllRight(32).AsInt32x8()
		if rq.single {
			sign := archsimd.BroadcastUint64x4(1 << 63)
			one := archsimd.BroadcastUint64x4(1)
			t := archsimd.LoadUint32x8Array((*[8]uint32)(v.total[c0+c:])).AsUint64x4()
			te, to := t.And(low32), t.ShiftAllRight(32)
			rndE, rndO := one.ShiftLeft(te.Sub(one)), one.ShiftLeft(to.Sub(one))
			sgnE, sgnO := sign.ShiftRight(te), sign.ShiftRight(to)
			for r := range rows {
				a := archsimd.LoadInt32x8Array((*[8]int32)(unsafe.Add(ap, (r*lda+c)*4)))
				pe := a.MulWidenEven(m).AsUint64x4()
				po := a.AsUint64x4().ShiftAllRight(32).AsInt32x8().MulWidenEven(mOdd).AsUint64x4()
				// (p + 2^(t-1)) >> t, arithmetic: flip the sign bit, shift
				// logically, subtract the shifted sign bit.
				pe = pe.Add(rndE).Xor(sign).ShiftRight(te).Sub(sgnE)
				po = po.Add(rndO).Xor(sign).ShiftRight(to).Sub(sgnO)
				x := pe.And(low32).Or(po.ShiftAllLeft(32)).AsInt32x8()
				*(*uint64)(unsafe.Add(op, r*ldo+c)) = narrow8[T](x.Add(zp).Max(lo).Min(hi), wide, words)
			}
			continue
		}
		c30 := archsimd.BroadcastUint64x4(1 << 30)
		one := archsimd.BroadcastInt32x8(1)
		left := archsimd.LoadUint32x8Array((*[8]uint32)(v.left[c0+c:]))
		rs := archsimd.LoadUint32x8Array((*[8]uint32)(v.right[c0+c:]))
		mask := one.ShiftLeft(rs).Sub(one)
		half := mask.ShiftAllRight(1)
		for r := range rows {
			a := archsimd.LoadInt32x8Array((*[8]int32)(unsafe.Add(ap, (r*lda+c)*4))).ShiftLeft(left)
			pe := a.MulWidenEven(m).AsUint64x4()
			po := a.AsUint64x4().ShiftAllRight(32).AsInt32x8().MulWidenEven(mOdd).AsUint64x4()
			pe = pe.Add(c30).ShiftAllRight(31)
			po = po.Add(c30).ShiftAllRight(31)
			x := pe.And(low32).Or(po.ShiftAllLeft(32)).AsInt32x8()
			// RoundingDivideByPOT.
			th := half.Sub(x.ShiftAllRight(31))
			rem := x.And(mask)
			x = x.ShiftRight(rs).Sub(rem.Greater(th).ToInt32x8())
			*(*uint64)(unsafe.Add(op, r*ldo+c)) = narrow8[T](x.Add(zp).Max(lo).Min(hi), wide, words)
		}
	}
	if n8 < n {
		for r := range rows {
			requantRow(rq, c0+n8, acc[r*lda+n8:r*lda+n], out[r*ldo+n8:r*ldo+n])
		}
	}
}

// narrow8 returns 8 clamped int32 lanes (within T's range) as the 8
// bytes of T to store: one instruction with AVX-512 (VPMOVSDB/VPMOVUSDB,
// wide set), two with AVX2 (VPACKSSDW the halves to int16, in range so
// without saturation, then VPSHUFB with words, the bytesOfWords indices,
// their low bytes to the front).
func narrow8[T int8 | uint8](v archsimd.Int32x8, wide bool, words archsimd.Int8x16) uint64 {
	if wide {
		if k := 255; T(k) > 0 {
			return v.AsUint32x8().SaturateToUint8().AsUint64x2().GetElem(0)
		}
		return v.SaturateToInt8().AsUint64x2().GetElem(0)
	}
	return v.GetLo().SaturateToInt16Concat(v.GetHi()).AsInt8x16().PermuteOrZero(words).AsUint64x2().GetElem(0)
}

// bytesOfWords selects the low byte of each of eight int16 (PSHUFB
// indices; -1 zeroes the upper half).
var bytesOfWords = [16]int8{0, 2, 4, 6, 8, 10, 12, 14, -1, -1, -1, -1, -1, -1, -1, -1}

// qgemmAVX512 is qgemmKernel with AVX-512 VPMADDWD on 512-bit vectors:
// one vector holds a whole block's pair step (16 channels x 2), so each
// row needs one multiply-add and one add per pair; 6 rows per inner loop.
func qgemmAVX512(a []int16, kp int, wp []int16, bias []int32, acc []int32, m, n, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	kp2 := kp / 2
	if kp2 == 0 {
		for i := 0; i < m; i++ {
			copy(acc[i*ldc:i*ldc+n], bias[:n])
		}
		return
	}
	a32 := unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(a))), len(a)/2)
	var tmp [q16NR]int32
	var zero [q16NR]int32
	for j := 0; j < n; j += q16NR {
		wb := wp[j/q16NR*kp2*2*q16NR:][: kp2*2*q16NR : kp2*2*q16NR]
		full := j+q16NR <= n
		bs := &zero
		if full {
			bs = (*[q16NR]int32)(bias[j:])
		}
		b := archsimd.LoadInt32x16Array(bs)
		i := 0
		for ; i+6 <= m; i += 6 {
			r0 := a32[i*kp2:][:kp2]
			r1 := a32[(i+1)*kp2:][:kp2]
			r2 := a32[(i+2)*kp2:][:kp2]
			r3 := a32[(i+3)*kp2:][:kp2]
			r4 := a32[(i+4)*kp2:][:kp2]
			r5 := a32[(i+5)*kp2:][:kp2]
			c0, c1, c2, c3, c4, c5 := b, b, b, b, b, b
			for p := range r0 {
				w := archsimd.LoadInt16x32Array((*[32]int16)(wb[p*32:]))
				c0 = c0.Add(archsimd.BroadcastInt32x16(r0[p]).AsInt16x32().DotProductPairs(w))
				c1 = c1.Add(archsimd.BroadcastInt32x16(r1[p]).AsInt16x32().DotProductPairs(w))
				c2 = c2.Add(archsimd.BroadcastInt32x16(r2[p]).AsInt16x32().DotProductPairs(w))
				c3 = c3.Add(archsimd.BroadcastInt32x16(r3[p]).AsInt16x32().DotProductPairs(w))
				c4 = c4.Add(archsimd.BroadcastInt32x16(r4[p]).AsInt16x32().DotProductPairs(w))
				c5 = c5.Add(archsimd.BroadcastInt32x16(r5[p]).AsInt16x32().DotProductPairs(w))
			}
			store16(acc[i*ldc:], bias, j, n, full, &tmp, c0)
			store16(acc[(i+1)*ldc:], bias, j, n, full, &tmp, c1)
			store16(acc[(i+2)*ldc:], bias, j, n, full, &tmp, c2)
			store16(acc[(i+3)*ldc:], bias, j, n, full, &tmp, c3)
			store16(acc[(i+4)*ldc:], bias, j, n, full, &tmp, c4)
			store16(acc[(i+5)*ldc:], bias, j, n, full, &tmp, c5)
		}
		for ; i < m; i++ {
			r0 := a32[i*kp2:][:kp2]
			c0, d0 := b, archsimd.Int32x16{}
			p := 0
			for ; p+2 <= len(r0); p += 2 {
				c0 = c0.Add(archsimd.BroadcastInt32x16(r0[p]).AsInt16x32().DotProductPairs(archsimd.LoadInt16x32Array((*[32]int16)(wb[p*32:]))))
				d0 = d0.Add(archsimd.BroadcastInt32x16(r0[p+1]).AsInt16x32().DotProductPairs(archsimd.LoadInt16x32Array((*[32]int16)(wb[p*32+32:]))))
			}
			if p < len(r0) {
				c0 = c0.Add(archsimd.BroadcastInt32x16(r0[p]).AsInt16x32().DotProductPairs(archsimd.LoadInt16x32Array((*[32]int16)(wb[p*32:]))))
			}
			store16(acc[i*ldc:], bias, j, n, full, &tmp, c0.Add(d0))
		}
	}
}

// store16 stores one row's 16 channel sums from j on: whole (the bias
// was the accumulators' start) or, for a partial block, the channels
// below n plus their bias.
func store16(row []int32, bias []int32, j, n int, full bool, tmp *[q16NR]int32, s archsimd.Int32x16) {
	if full {
		s.StoreArray((*[q16NR]int32)(row[j:]))
		return
	}
	s.StoreArray(tmp)
	out := row[j:n]
	for c := range out {
		out[c] = tmp[c] + bias[j+c]
	}
}

func init() {
	if archsimd.X86.AVX2() && archsimd.X86.FMA() {
		gemmF32Kernel = gemmF32FMA
	}
}

// gemmF32FMA is gemmF32Kernel on AVX2 FMA: 3 rows x 16 channels (6
// accumulators), one broadcast activation per row and step.
func gemmF32FMA(a []float32, k int, wp []float32, bias []float32, out []float32, m, n, ldc int, lo, hi float32) {
	if m == 0 || n == 0 {
		return
	}
	vlo, vhi := archsimd.BroadcastFloat32x8(lo), archsimd.BroadcastFloat32x8(hi)
	var tmp [3][q16NR]float32
	for j := 0; j < n; j += q16NR {
		wb := wp[j/q16NR*k*q16NR:][: k*q16NR : k*q16NR]
		full := j+q16NR <= n
		var b0, b1 archsimd.Float32x8
		if full {
			b0 = archsimd.LoadFloat32x8Array((*[8]float32)(bias[j:]))
			b1 = archsimd.LoadFloat32x8Array((*[8]float32)(bias[j+8:]))
		}
		i := 0
		for ; i+3 <= m; i += 3 {
			r0 := a[i*k:][:k]
			r1 := a[(i+1)*k:][:k]
			r2 := a[(i+2)*k:][:k]
			c00, c01, c10, c11, c20, c21 := b0, b1, b0, b1, b0, b1
			for kk := range r0 {
				w := (*[16]float32)(wb[kk*16:])
				w0 := archsimd.LoadFloat32x8Array((*[8]float32)(w[:8]))
				w1 := archsimd.LoadFloat32x8Array((*[8]float32)(w[8:]))
				x := archsimd.BroadcastFloat32x8(r0[kk])
				c00 = x.MulAdd(w0, c00)
				c01 = x.MulAdd(w1, c01)
				x = archsimd.BroadcastFloat32x8(r1[kk])
				c10 = x.MulAdd(w0, c10)
				c11 = x.MulAdd(w1, c11)
				x = archsimd.BroadcastFloat32x8(r2[kk])
				c20 = x.MulAdd(w0, c20)
				c21 = x.MulAdd(w1, c21)
			}
			if full {
				clampF8(c00, vlo, vhi).StoreArray((*[8]float32)(out[i*ldc+j:]))
				clampF8(c01, vlo, vhi).StoreArray((*[8]float32)(out[i*ldc+j+8:]))
				clampF8(c10, vlo, vhi).StoreArray((*[8]float32)(out[(i+1)*ldc+j:]))
				clampF8(c11, vlo, vhi).StoreArray((*[8]float32)(out[(i+1)*ldc+j+8:]))
				clampF8(c20, vlo, vhi).StoreArray((*[8]float32)(out[(i+2)*ldc+j:]))
				clampF8(c21, vlo, vhi).StoreArray((*[8]float32)(out[(i+2)*ldc+j+8:]))
				continue
			}
			c00.StoreArray((*[8]float32)(tmp[0][:8]))
			c01.StoreArray((*[8]float32)(tmp[0][8:]))
			c10.StoreArray((*[8]float32)(tmp[1][:8]))
			c11.StoreArray((*[8]float32)(tmp[1][8:]))
			c20.StoreArray((*[8]float32)(tmp[2][:8]))
			c21.StoreArray((*[8]float32)(tmp[2][8:]))
			for r := 0; r < 3; r++ {
				row := out[(i+r)*ldc+j : (i+r)*ldc+n]
				for c := range row {
					row[c] = clampF(tmp[r][c]+bias[j+c], lo, hi)
				}
			}
		}
		// The last rows add their products in the same order as the
		// 3-row blocks (one chain per 8 channels, from the bias), so a
		// row's result does not depend on where a split of the rows put
		// it: any number of threads gives the same bytes.
		for ; i < m; i++ {
			r0 := a[i*k:][:k]
			c00, c01 := b0, b1
			for kk := range r0 {
				w := (*[16]float32)(wb[kk*16:])
				x := archsimd.BroadcastFloat32x8(r0[kk])
				c00 = x.MulAdd(archsimd.LoadFloat32x8Array((*[8]float32)(w[0:8])), c00)
				c01 = x.MulAdd(archsimd.LoadFloat32x8Array((*[8]float32)(w[8:16])), c01)
			}
			if full {
				clampF8(c00, vlo, vhi).StoreArray((*[8]float32)(out[i*ldc+j:]))
				clampF8(c01, vlo, vhi).StoreArray((*[8]float32)(out[i*ldc+j+8:]))
				continue
			}
			c00.StoreArray((*[8]float32)(tmp[0][:8]))
			c01.StoreArray((*[8]float32)(tmp[0][8:]))
			row := out[i*ldc+j : i*ldc+n]
			for c := range row {
				row[c] = clampF(tmp[0][c]+bias[j+c], lo, hi)
			}
		}
	}
}

// clampF8 is clampF on 8 lanes: NaN stays NaN (VMAXPS alone would
// replace it).
func clampF8(v, lo, hi archsimd.Float32x8) archsimd.Float32x8 {
	return v.IfElse(v.IsNaN(), v.Max(lo).Min(hi))
}
