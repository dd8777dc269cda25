//go:build goexperiment.simd && arm64 && !purego

package conv

import (
	"simd/archsimd"
	"unsafe"
)

// NEON is part of every arm64 CPU: the kernels below always run.
func init() {
	qgemmKernel = qgemmNEON
	useSIMD = true
}

// dupPair returns the int16 pair held in v (two activations) repeated
// four times: [a0 a1 a0 a1 a0 a1 a0 a1].
func dupPair(v int32) archsimd.Int16x8 {
	u := uint64(uint32(v)) * 0x1_0000_0001
	b := [2]uint64{u, u}
	return archsimd.LoadInt16x8Array((*[8]int16)(unsafe.Pointer(&b)))
}

// q16NEON3x16 is three rows by sixteen channels of qgemmNEON in assembly
// (q16_arm64.s): rows of a lda bytes apart, kp2 packed pairs of w, the
// sums plus bias stored in rows of out ldo int32 apart.
//
//go:noescape
func q16NEON3x16(a *int16, lda int, w *int16, kp2 int, out *int32, ldo int, bias *int32)

// qgemmNEON is qgemmKernel with NEON: for each pair of reduction steps,
// the 16-channel block is 4 vectors of 4 channels x 2 steps; the products
// accumulate unpaired (two int32 lanes per channel) and one pairwise add
// (ADDP) per 4 channels at the end yields the sums. Blocks of 3 rows x 16
// channels run in assembly (q16NEON3x16, SMLAL), the last 1–2 rows in Go
// (SMULL, 2 rows x 16 channels per inner loop: 16 accumulators).
func qgemmNEON(a []int16, kp int, wp []int16, bias []int32, acc []int32, m, n, ldc int) {
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
	var tmp3 [3][q16NR]int32
	var zero16 [q16NR]int32
	for j := 0; j < n; j += q16NR {
		wb := wp[j/q16NR*kp2*2*q16NR:][: kp2*2*q16NR : kp2*2*q16NR]
		full := j+q16NR <= n
		i := 0
		if m >= 3 {
			// Every bound of the assembly blocks, checked once: the rows
			// read, the packed block, the sums written.
			_ = a32[m/3*3*kp2-1]
			if full {
				_ = acc[(m/3*3-1)*ldc+j+q16NR-1]
				bj := bias[j : j+q16NR]
				for ; i+3 <= m; i += 3 {
					q16NEON3x16(&a[i*kp], kp*2, &wb[0], kp2, &acc[i*ldc+j], ldc, &bj[0])
				}
			}
			for ; i+3 <= m; i += 3 {
				q16NEON3x16(&a[i*kp], kp*2, &wb[0], kp2, &tmp3[0][0], q16NR, &zero16[0])
				for r := range 3 {
					row := acc[(i+r)*ldc+j : (i+r)*ldc+n]
					for c := range row {
						row[c] = tmp3[r][c] + bias[j+c]
					}
				}
			}
		}
		for ; i+2 <= m; i += 2 {
			r0 := a32[i*kp2:][:kp2]
			r1 := a32[(i+1)*kp2:][:kp2]
			var l0, h0, l1, h1, l2, h2, l3, h3 archsimd.Int32x4 // row 0
			var L0, H0, L1, H1, L2, H2, L3, H3 archsimd.Int32x4 // row 1
			for p := range r0 {
				w := (*[32]int16)(wb[p*32:])
				w0 := archsimd.LoadInt16x8Array((*[8]int16)(w[0:8]))
				w1 := archsimd.LoadInt16x8Array((*[8]int16)(w[8:16]))
				w2 := archsimd.LoadInt16x8Array((*[8]int16)(w[16:24]))
				w3 := archsimd.LoadInt16x8Array((*[8]int16)(w[24:32]))
				x := dupPair(r0[p])
				l0 = l0.Add(x.MulWidenLo(w0))
				h0 = h0.Add(x.MulWidenLo(w0.HiToLo()))
				l1 = l1.Add(x.MulWidenLo(w1))
				h1 = h1.Add(x.MulWidenLo(w1.HiToLo()))
				l2 = l2.Add(x.MulWidenLo(w2))
				h2 = h2.Add(x.MulWidenLo(w2.HiToLo()))
				l3 = l3.Add(x.MulWidenLo(w3))
				h3 = h3.Add(x.MulWidenLo(w3.HiToLo()))
				x = dupPair(r1[p])
				L0 = L0.Add(x.MulWidenLo(w0))
				H0 = H0.Add(x.MulWidenLo(w0.HiToLo()))
				L1 = L1.Add(x.MulWidenLo(w1))
				H1 = H1.Add(x.MulWidenLo(w1.HiToLo()))
				L2 = L2.Add(x.MulWidenLo(w2))
				H2 = H2.Add(x.MulWidenLo(w2.HiToLo()))
				L3 = L3.Add(x.MulWidenLo(w3))
				H3 = H3.Add(x.MulWidenLo(w3.HiToLo()))
			}
			storeNEON(acc[i*ldc:], bias, j, n, full, &tmp, l0.ConcatAddPairs(h0), l1.ConcatAddPairs(h1), l2.ConcatAddPairs(h2), l3.ConcatAddPairs(h3))
			storeNEON(acc[(i+1)*ldc:], bias, j, n, full, &tmp, L0.ConcatAddPairs(H0), L1.ConcatAddPairs(H1), L2.ConcatAddPairs(H2), L3.ConcatAddPairs(H3))
		}
		for ; i < m; i++ {
			r0 := a32[i*kp2:][:kp2]
			var l0, h0, l1, h1, l2, h2, l3, h3 archsimd.Int32x4
			for p := range r0 {
				w := (*[32]int16)(wb[p*32:])
				w0 := archsimd.LoadInt16x8Array((*[8]int16)(w[0:8]))
				w1 := archsimd.LoadInt16x8Array((*[8]int16)(w[8:16]))
				w2 := archsimd.LoadInt16x8Array((*[8]int16)(w[16:24]))
				w3 := archsimd.LoadInt16x8Array((*[8]int16)(w[24:32]))
				x := dupPair(r0[p])
				l0 = l0.Add(x.MulWidenLo(w0))
				h0 = h0.Add(x.MulWidenLo(w0.HiToLo()))
				l1 = l1.Add(x.MulWidenLo(w1))
				h1 = h1.Add(x.MulWidenLo(w1.HiToLo()))
				l2 = l2.Add(x.MulWidenLo(w2))
				h2 = h2.Add(x.MulWidenLo(w2.HiToLo()))
				l3 = l3.Add(x.MulWidenLo(w3))
				h3 = h3.Add(x.MulWidenLo(w3.HiToLo()))
			}
			storeNEON(acc[i*ldc:], bias, j, n, full, &tmp, l0.ConcatAddPairs(h0), l1.ConcatAddPairs(h1), l2.ConcatAddPairs(h2), l3.ConcatAddPairs(h3))
		}
	}
}

// storeNEON adds the bias to one row's 16 channel sums from j on and
// stores the channels below n.
func storeNEON(row []int32, bias []int32, j, n int, full bool, tmp *[q16NR]int32, s0, s1, s2, s3 archsimd.Int32x4) {
	if full {
		s0.Add(archsimd.LoadInt32x4Array((*[4]int32)(bias[j:]))).StoreArray((*[4]int32)(row[j:]))
		s1.Add(archsimd.LoadInt32x4Array((*[4]int32)(bias[j+4:]))).StoreArray((*[4]int32)(row[j+4:]))
		s2.Add(archsimd.LoadInt32x4Array((*[4]int32)(bias[j+8:]))).StoreArray((*[4]int32)(row[j+8:]))
		s3.Add(archsimd.LoadInt32x4Array((*[4]int32)(bias[j+12:]))).StoreArray((*[4]int32)(row[j+12:]))
		return
	}
	s0.StoreArray((*[4]int32)(tmp[0:4]))
	s1.StoreArray((*[4]int32)(tmp[4:8]))
	s2.StoreArray((*[4]int32)(tmp[8:12]))
	s3.StoreArray((*[4]int32)(tmp[12:16]))
	out := row[j:n]
	for c := range out {
		out[c] = tmp[c] + bias[j+c]
	}
}

func init() {
	gemmF32Kernel = gemmF32NEON
}

// f32NEON4x16 is four rows by sixteen channels of gemmF32NEON in assembly
// (f32_arm64.s), for whole blocks of channels.
//
//go:noescape
func f32NEON4x16(a *float32, lda int, w *float32, k int, out *float32, ldo int, bias *float32, lohi *[2]float32)

// gemmF32NEON is gemmF32Kernel on NEON FMLA: whole blocks of 16 channels
// 4 rows at a time in assembly (f32NEON4x16), the rest 2 rows x 16
// channels (8 accumulators) in Go, every row's sums in the same order, so
// a row's result does not depend on its block. FMAX/FMIN propagate NaN,
// as clampF keeps it.
func gemmF32NEON(a []float32, k int, wp []float32, bias []float32, out []float32, m, n, ldc int, lo, hi float32) {
	if m == 0 || n == 0 {
		return
	}
	lohi := [2]float32{lo, hi}
	vlo, vhi := archsimd.BroadcastFloat32x4(lo), archsimd.BroadcastFloat32x4(hi)
	var tmp [q16NR]float32
	var zero [q16NR]float32
	for j := 0; j < n; j += q16NR {
		wb := wp[j/q16NR*k*q16NR:][: k*q16NR : k*q16NR]
		full := j+q16NR <= n
		bs := &zero
		if full {
			bs = (*[q16NR]float32)(bias[j:])
		}
		b0 := archsimd.LoadFloat32x4Array((*[4]float32)(bs[0:4]))
		b1 := archsimd.LoadFloat32x4Array((*[4]float32)(bs[4:8]))
		b2 := archsimd.LoadFloat32x4Array((*[4]float32)(bs[8:12]))
		b3 := archsimd.LoadFloat32x4Array((*[4]float32)(bs[12:16]))
		i := 0
		if full && k > 0 && m >= 4 {
			// Every bound of the assembly blocks, checked once.
			rows := m / 4 * 4
			_ = a[(rows-1)*k+k-1]
			_ = out[(rows-1)*ldc+j+q16NR-1]
			for ; i < rows; i += 4 {
				f32NEON4x16(&a[i*k], k, &wb[0], k, &out[i*ldc+j], ldc, &bs[0], &lohi)
			}
		}
		for ; i+2 <= m; i += 2 {
			r0 := a[i*k:][:k]
			r1 := a[(i+1)*k:][:k]
			c0, c1, c2, c3 := b0, b1, b2, b3
			d0, d1, d2, d3 := b0, b1, b2, b3
			for kk := range r0 {
				w := (*[16]float32)(wb[kk*16:])
				w0 := archsimd.LoadFloat32x4Array((*[4]float32)(w[0:4]))
				w1 := archsimd.LoadFloat32x4Array((*[4]float32)(w[4:8]))
				w2 := archsimd.LoadFloat32x4Array((*[4]float32)(w[8:12]))
				w3 := archsimd.LoadFloat32x4Array((*[4]float32)(w[12:16]))
				x := archsimd.BroadcastFloat32x4(r0[kk])
				c0, c1, c2, c3 = x.MulAdd(w0, c0), x.MulAdd(w1, c1), x.MulAdd(w2, c2), x.MulAdd(w3, c3)
				x = archsimd.BroadcastFloat32x4(r1[kk])
				d0, d1, d2, d3 = x.MulAdd(w0, d0), x.MulAdd(w1, d1), x.MulAdd(w2, d2), x.MulAdd(w3, d3)
			}
			storeF32NEON(out[i*ldc:], bias, j, n, full, &tmp, vlo, vhi, lo, hi, c0, c1, c2, c3)
			storeF32NEON(out[(i+1)*ldc:], bias, j, n, full, &tmp, vlo, vhi, lo, hi, d0, d1, d2, d3)
		}
		for ; i < m; i++ {
			r0 := a[i*k:][:k]
			c0, c1, c2, c3 := b0, b1, b2, b3
			for kk := range r0 {
				w := (*[16]float32)(wb[kk*16:])
				x := archsimd.BroadcastFloat32x4(r0[kk])
				c0 = x.MulAdd(archsimd.LoadFloat32x4Array((*[4]float32)(w[0:4])), c0)
				c1 = x.MulAdd(archsimd.LoadFloat32x4Array((*[4]float32)(w[4:8])), c1)
				c2 = x.MulAdd(archsimd.LoadFloat32x4Array((*[4]float32)(w[8:12])), c2)
				c3 = x.MulAdd(archsimd.LoadFloat32x4Array((*[4]float32)(w[12:16])), c3)
			}
			storeF32NEON(out[i*ldc:], bias, j, n, full, &tmp, vlo, vhi, lo, hi, c0, c1, c2, c3)
		}
	}
}

// storeF32NEON clamps and stores one row's 16 channel sums from j on
// (adding the bias here for a partial block, whose sums started at 0).
func storeF32NEON(row []float32, bias []float32, j, n int, full bool, tmp *[q16NR]float32, vlo, vhi archsimd.Float32x4, lo, hi float32, s0, s1, s2, s3 archsimd.Float32x4) {
	if full {
		s0.Max(vlo).Min(vhi).StoreArray((*[4]float32)(row[j:]))
		s1.Max(vlo).Min(vhi).StoreArray((*[4]float32)(row[j+4:]))
		s2.Max(vlo).Min(vhi).StoreArray((*[4]float32)(row[j+8:]))
		s3.Max(vlo).Min(vhi).StoreArray((*[4]float32)(row[j+12:]))
		return
	}
	s0.StoreArray((*[4]float32)(tmp[0:4]))
	s1.StoreArray((*[4]float32)(tmp[4:8]))
	s2.StoreArray((*[4]float32)(tmp[8:12]))
	s3.StoreArray((*[4]float32)(tmp[12:16]))
	out := row[j:n]
	for c := range out {
		out[c] = clampF(tmp[c]+bias[j+c], lo, hi)
	}
}
