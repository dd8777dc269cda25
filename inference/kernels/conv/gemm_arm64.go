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

// qgemmNEON is qgemmKernel with NEON SMULL/SMULL2: for each pair of
// reduction steps, the 16-channel block is 4 vectors of 4 channels x 2
// steps; the products accumulate unpaired (two int32 lanes per channel)
// and one pairwise add (ADDP) per 4 channels at the end yields the sums.
// 2 rows x 16 channels per inner loop (16 accumulators).
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
	for j := 0; j < n; j += q16NR {
		wb := wp[j/q16NR*kp2*2*q16NR:][: kp2*2*q16NR : kp2*2*q16NR]
		full := j+q16NR <= n
		i := 0
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
