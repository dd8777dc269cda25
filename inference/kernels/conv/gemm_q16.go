package conv

import "unsafe"

// The SIMD integer GEMM ("q16") works on 16-bit values: activations are
// widened (int8 sign-extended, uint8 zero-extended) into rows of kp values
// (k rounded up to even, zero padded), and filters are packed once at load
// into blocks of q16NR output channels; within a block, for each pair of
// reduction steps (k, k+1), channel c's two weights are adjacent:
//
//	wp[block][p][c][0..1] = w[16*block+c][2p], w[16*block+c][2p+1]
//
// so a pair-wise multiply-add (x86 VPMADDWD, NEON SMULL + pairwise add) of
// a broadcast activation pair with one 16-value vector yields 8 exact int32
// partial sums. Every product is at most 255*255 in magnitude and two of
// them fit int32, and the int32 accumulation wraps like TFLite's, so the
// results are bit-identical to the scalar kernels in gemm.go.

// q16NR is the number of output channels in one packed block.
const q16NR = 16

// qgemmKernel, when non-nil, is the architecture's SIMD GEMM:
// acc[i*ldc+j] = bias[j] + sum_kk a[i*kp+kk]*w[j][kk] for rows [0, m) of
// the widened activations a and channels [0, n) of the packed weights wp.
// It is set at init when the CPU supports it (see useSIMD).
var qgemmKernel func(a []int16, kp int, wp []int16, bias []int32, acc []int32, m, n, ldc int)

// widenKernel, when non-nil, is the architecture's SIMD widening of 8-bit
// rows (see widenRows).
var widenI8Kernel func(dst []int16, src []int8)
var widenU8Kernel func(dst []int16, src []uint8)

// useSIMD reports whether this build and CPU run the SIMD kernels: set at
// init on amd64 (AVX2) and arm64 when built with GOEXPERIMENT=simd, never
// with the purego tag. Nodes choose their kernels when prepared.
var useSIMD = false

// q16Even rounds k up to even.
func q16Even(k int) int { return (k + 1) &^ 1 }

// q16Len is the number of int16 values packQ16 writes for n channels of k.
func q16Len(n, k int) int { return (n + q16NR - 1) / q16NR * q16Even(k) * q16NR }

// packQ16 packs the rows of w (n channels x k, offset by the filter zero
// point where needed) into dst (q16Len(n, k) values), zero padded.
func packQ16[T int8 | int16](dst []int16, w []T, n, k int) {
	kp := q16Even(k)
	clear(dst[:q16Len(n, k)])
	for c := 0; c < n; c++ {
		blk := dst[c/q16NR*kp*q16NR:]
		lane := c % q16NR
		row := w[c*k : (c+1)*k]
		for kk, v := range row {
			blk[(kk/2)*2*q16NR+lane*2+kk%2] = int16(v)
		}
	}
}

// widenRows writes m rows of k 8-bit values (row stride lda) as int16 rows
// of kp = q16Even(k) values into dst, the padding value zero.
func widenRows[T int8 | uint8](dst []int16, a []T, m, k, lda int) {
	kp := q16Even(k)
	for i := 0; i < m; i++ {
		d := dst[i*kp : (i+1)*kp]
		s := a[i*lda : i*lda+k]
		widen(d[:k], s)
		if kp > k {
			d[k] = 0
		}
	}
}

// widen converts 8-bit values to int16 (len(dst) == len(src)).
func widen[T int8 | uint8](dst []int16, src []T) {
	if useSIMD {
		switch s := any(src).(type) {
		case []int8:
			if widenI8Kernel != nil {
				widenI8Kernel(dst, s)
				return
			}
		case []uint8:
			if widenU8Kernel != nil {
				widenU8Kernel(dst, s)
				return
			}
		}
	}
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = int16(v)
	}
}

// q16Gemm runs the SIMD GEMM on widened activations (see qgemmKernel).
func q16Gemm(a []int16, kp int, wp []int16, bias []int32, acc []int32, m, n, ldc int) {
	qgemmKernel(a, kp, wp, bias, acc, m, n, ldc)
}

// int16View views bytes (64-byte aligned scratch) as int16 values.
func int16View(b []byte) []int16 {
	if len(b) < 2 {
		return nil
	}
	return unsafe.Slice((*int16)(unsafe.Pointer(&b[0])), len(b)/2)
}

// rqVec holds a requant's per-channel parameters in the form the SIMD
// requantization reads: shift counts as uint32 lanes.
type rqVec struct {
	left, right []uint32 // double rounding: a<<left, then divide by 2^right
	hasLeft     bool     // some left shift is not zero
	total       []uint32 // single rounding: 31 - shift (>= 31 here)
	// blk holds the parameters of whole 16-channel chunks in the layout
	// of the amd64 requantization (see rqBlocks), when it runs.
	blk []int32
	// consts is the output zero point and clamp bounds (the fused
	// kernel's c: in the heap, so that passing it allocates nothing).
	consts [3]int32
}

// rqBlocks, when set, fills rqVec.blk (amd64: AVX2 and AVX-512).
var rqBlocks func(rq *requant, v *rqVec)

// newRQVec returns the SIMD form of rq, or nil when the SIMD
// requantization does not cover it (single rounding with a multiplier
// above 1, where the product may need saturation).
func newRQVec(rq *requant) *rqVec {
	if !useSIMD || requantI8Kernel == nil {
		return nil
	}
	n := len(rq.mult)
	v := &rqVec{left: make([]uint32, n), right: make([]uint32, n), total: make([]uint32, n), consts: [3]int32{rq.outZP, rq.actMin, rq.actMax}}
	for c := range n {
		if rq.single && rq.shift[c] > 0 {
			return nil
		}
		if rq.left[c] > 31 || rq.right[c] > 31 {
			return nil
		}
		v.left[c], v.right[c] = uint32(rq.left[c]), uint32(rq.right[c])
		v.hasLeft = v.hasLeft || v.left[c] != 0
		v.total[c] = uint32(31 - rq.shift[c])
		if v.total[c] > 62 {
			return nil
		}
	}
	if rqBlocks != nil {
		rqBlocks(rq, v)
	}
	return v
}

// requantI8Kernel and requantU8Kernel, when set, are SIMD versions of
// requantRowsV for rqVec-covered requants (bit-identical).
var (
	requantI8Kernel func(rq *requant, v *rqVec, c0 int, acc []int32, lda int, out []int8, ldo, n, rows int)
	requantU8Kernel func(rq *requant, v *rqVec, c0 int, acc []int32, lda int, out []uint8, ldo, n, rows int)
)

// requantRowV is requantRow, on SIMD when v is non-nil.
func requantRowV[T int8 | uint8](rq *requant, v *rqVec, c0 int, acc []int32, out []T) {
	requantRowsV(rq, v, c0, acc, len(acc), out, len(acc), len(acc), 1)
}

// requantRowsV requantizes rows rows of n accumulators (channels c0 on;
// row strides lda and ldo), on SIMD when v is non-nil.
func requantRowsV[T int8 | uint8](rq *requant, v *rqVec, c0 int, acc []int32, lda int, out []T, ldo, n, rows int) {
	if v != nil {
		switch o := any(out).(type) {
		case []int8:
			requantI8Kernel(rq, v, c0, acc, lda, o, ldo, n, rows)
			return
		case []uint8:
			requantU8Kernel(rq, v, c0, acc, lda, o, ldo, n, rows)
			return
		}
	}
	for r := 0; r < rows; r++ {
		requantRow(rq, c0, acc[r*lda:r*lda+n], out[r*ldo:r*ldo+n])
	}
}

// gemmF32Kernel, when non-nil, is the architecture's SIMD float32 GEMM
// with fused multiply-add: out[i*ldc+j] = clamp(bias[j] + sum_kk
// a[i*k+kk]*w[j][kk], lo, hi) for channels [0, n) of weights packed by
// packF32. The sums differ from gemmFloat's in the last bits (FMA rounds
// once, lanes sum in another order), within the float tolerance.
var gemmF32Kernel func(a []float32, k int, wp []float32, bias []float32, out []float32, m, n, ldc int, lo, hi float32)

// f32Len is the number of values packF32 writes for n channels of k.
func f32Len(n, k int) int { return (n + q16NR - 1) / q16NR * k * q16NR }

// packF32 packs the rows of w (n x k) into blocks of q16NR channels,
// step-major: dst[block][kk][c] = w[block*q16NR+c][kk], zero padded.
func packF32(dst []float32, w []float32, n, k int) {
	clear(dst[:f32Len(n, k)])
	for c := 0; c < n; c++ {
		blk := dst[c/q16NR*k*q16NR:]
		lane := c % q16NR
		for kk, v := range w[c*k : (c+1)*k] {
			blk[kk*q16NR+lane] = v
		}
	}
}
