package conv

import (
	"encoding/binary"
	"unsafe"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/tensor"
)

// The byte GEMM ("qb") multiplies unsigned 8-bit activations with signed
// 8-bit weights four reduction steps at a time (x86 VPDPBUSD), without
// widening to 16 bits:
//
//   - int8 models: activations are offset by 128 (x^0x80 = x+128, 0..255)
//     and the weights stay int8; sum((x+128)*w) = sum(x*w) + 128*sum(w),
//     so 128*sum(w) is subtracted from the bias when the filters are packed.
//   - uint8 models: activations stay uint8 and the weights are stored as
//     w-128 (int8); sum(x*(w-zw)) = sum(x*(w-128)) + (128-zw)*sum(x), so
//     each row gets (128-zw)*sum(x) added (rowadd).
//
// Each product is at most 255*128 and the instruction adds four of them to
// the int32 lane without saturation (wrapping, like TFLite's int32 sums),
// so the results are bit-identical to the scalar kernels. Filters are
// packed once at load into blocks of qbNR channels; within a block, for
// each group q of four reduction steps:
//
//	wp[block][q][c][t] = w[16*block+c][4q+t]
//
// Rows are computed qbMR at a time (row counts are rounded up in scratch;
// the extra rows are computed and dropped) and channels padded to whole
// blocks (the accumulator rows are qbNPad(n) long).

const (
	qbNR = 16               // channels per packed block
	qbMR = kernels.BandRows // rows per microkernel call (bands line parts up on them)
)

// qbKernel32 and qbKernel16, when non-nil, are the architecture's byte
// GEMM microkernels: rows [0, 8) of out (row stride ldo int32 values), 32
// (two blocks: w and w+kq*64) or 16 channels, out = bias + rowadd[row] +
// sum over kq groups of the 4-byte dot products of a's rows (stride lda)
// with the packed weights.
var qbKernel32, qbKernel16 func(a *uint8, lda int, w *int8, kq int, out *int32, ldo int, bias *int32, rowadd *int32)

// qbGemv64 and qbGemv16, when non-nil, are the architecture's one-row
// byte GEMM kernels (a layer with one output pixel would otherwise compute
// qbMR rows to keep one): out = bias + add + the dot products of the row
// a with 64 channels (four blocks: w, w+kq*64, ...) or 16 (one block).
var qbGemv64, qbGemv16 func(a *uint8, w *int8, kq int, out *int32, bias *int32, add int32)

// qbKernelRq, when non-nil, is the byte GEMM microkernel with the
// requantization fused in (the int32 sums never go through memory): rows
// [0, 8) of nb (1 or 2) blocks of 16 channels as qbKernel32/16 compute
// them, requantized with rqVec.blk's parameters p of those blocks and the
// output zero point and clamp bounds c (mode 1: single rounding); only
// the first rows rows and the channels whose bit is set in mask (bit
// 16*b+l: block b, lane l) are stored, as bytes, row stride ldo.
var qbKernelRq func(a *uint8, lda int, w *int8, kq int, out *byte, ldo int, bias *int32, rowadd *int32, p *int32, c *int32, mode int, rows int, mask int, nb int)

// qbFlip, qbRowSums: SIMD helpers of the byte GEMM, set with the kernels.
var (
	qbFlip    func(b []uint8)                             // b[i] ^= 0x80
	qbRowSums func(a []uint8, lda, k, m int, out []int32) // out[i] = sum a[i*lda : i*lda+k]
)

// qbK4 rounds k up to a multiple of 4.
func qbK4(k int) int { return (k + 3) &^ 3 }

// qbNPad rounds n up to whole blocks.
func qbNPad(n int) int { return (n + qbNR - 1) &^ (qbNR - 1) }

// qbRows rounds m up to whole microkernel calls.
func qbRows(m int) int { return (m + qbMR - 1) &^ (qbMR - 1) }

// qbLen is the number of bytes packQB writes for n channels of k.
func qbLen(n, k int) int { return qbNPad(n) * qbK4(k) }

// packQB packs w (n channels x k) as int8(w+off) into dst (qbLen bytes),
// zero padded.
func packQB[T int8 | int16](dst []int8, w []T, n, k int, off int16) {
	k4 := qbK4(k)
	clear(dst[:qbLen(n, k)])
	for c := 0; c < n; c++ {
		blk := dst[c/qbNR*k4*qbNR:]
		lane := c % qbNR
		for kk, v := range w[c*k : (c+1)*k] {
			blk[(kk/4)*4*qbNR+lane*4+kk%4] = int8(int16(v) + off)
		}
	}
}

// qbGemm computes acc[i*ldc+j] = bias[j] + rowadd[i] + sum a[i,:]*w[j,:]
// for rows [0, m) and channels [0, np) (a multiple of qbNR) of weights
// packed by packQB with row length k4. a, rowadd and acc hold qbRows(m)
// rows: the kernels compute qbMR rows at a time (one row alone has its
// own kernel where the architecture has one).
func qbGemm(a []uint8, k4 int, wp []int8, bias, rowadd, acc []int32, m, np, ldc int) {
	qbGemmCols(a, k4, wp, bias, rowadd, acc, m, 0, np, ldc)
}

// qbGemmCols is qbGemm for channels [j0, j1) only (multiples of qbNR).
func qbGemmCols(a []uint8, k4 int, wp []int8, bias, rowadd, acc []int32, m, j0, j1, ldc int) {
	mp := qbRows(m)
	if j0 >= j1 || m == 0 {
		return
	}
	if k4 == 0 {
		for i := 0; i < mp; i++ {
			for j, b := range bias[j0:j1] {
				acc[i*ldc+j0+j] = b + rowadd[i]
			}
		}
		return
	}
	if m == 1 && qbGemv64 != nil {
		kq := k4 / 4
		_ = a[k4-1]
		_ = acc[j1-1]
		_ = wp[j1*k4-1]
		j := j0
		for ; j+4*qbNR <= j1; j += 4 * qbNR {
			qbGemv64(&a[0], &wp[j*k4], kq, &acc[j], &bias[j], rowadd[0])
		}
		for ; j < j1; j += qbNR {
			qbGemv16(&a[0], &wp[j*k4], kq, &acc[j], &bias[j], rowadd[0])
		}
		return
	}
	kq := k4 / 4
	_ = a[(mp-1)*k4+k4-1]
	_ = acc[(mp-1)*ldc+j1-1]
	_ = rowadd[mp-1]
	_ = wp[j1*k4-1]
	j := j0
	for ; j+2*qbNR <= j1; j += 2 * qbNR {
		for i := 0; i < mp; i += qbMR {
			qbKernel32(&a[i*k4], k4, &wp[j*k4], kq, &acc[i*ldc+j], ldc, &bias[j], &rowadd[i])
		}
	}
	if j < j1 {
		for i := 0; i < mp; i += qbMR {
			qbKernel16(&a[i*k4], k4, &wp[j*k4], kq, &acc[i*ldc+j], ldc, &bias[j], &rowadd[i])
		}
	}
}

// qbPrepare sets up the byte GEMM for a convolution (groups == 1, 8-bit)
// when the CPU has it: packed filter and bias storage and the tile.
func (d *convData) qbPrepare() {
	g := &d.geom
	d.kq4 = qbK4(g.k)
	d.np = qbNPad(g.outC)
	d.qb = make([]int8, qbLen(g.outC, g.k))
	d.biasQB = make([]int32, d.np)
	// Keep the byte rows and the accumulators within about 64 KiB.
	per := d.np*4 + d.kq4 + 4
	g.tile = max(qbMR, min(64, 65536/per)/qbMR*qbMR)
	g.tile = min(g.tile, qbRows(g.rows))
	d.zeroRows = make([]int32, g.tile)
	g.im2colBytes = 0
	g.a16Bytes = align64(g.tile*d.kq4) + align64(g.tile*4)
	g.accBytesPW = align64(g.tile * d.np * 4)
}

// qbPack packs the filters for the byte GEMM (after pack folded the zero
// points into bias32).
func (d *convData) qbPack(filter *tensor.Tensor) {
	copy(d.biasQB, d.bias32)
	clear(d.biasQB[len(d.bias32):])
	if d.dtype == tensor.Int8 {
		qbPackInt8(d.qb, d.biasQB, filter.Int8s(), d.outC, d.k)
		return
	}
	d.qbRowMul = qbPackUint8(d.qb, d.biasQB, d.w16, filter.ZeroPoint(), d.outC, d.k)
}

// qbSigned is set by architectures whose byte dot product multiplies
// signed activations (arm64 SDOT) instead of unsigned ones (x86
// VPDPBUSD). The activations of the other 8-bit type are flipped
// (x^0x80) to fit: int8 on x86 (x+128), uint8 on arm64 (x-128).
var qbSigned bool

// qbFlips reports whether int8 (or uint8) activations are flipped.
func qbFlips(int8In bool) bool { return int8In != qbSigned }

// qbPackInt8 packs int8 filters (n x k) and corrects bias (the bias32
// values, padded) for flipped activations: x+128 adds 128*sum(w).
func qbPackInt8(wp []int8, bias []int32, w []int8, n, k int) {
	packQB(wp, w, n, k, 0)
	if qbFlips(true) {
		qbBiasAdd(bias, wp, n, k, -128)
	}
}

// qbPackUint8 packs uint8 filters given as w16 = w-zw (n x k) and
// corrects bias; it returns the row-sum multiplier (0: no row sums).
// When every w-zw fits int8 it is stored as is; otherwise w-128 is stored
// and each row needs (128-zw)*sum(x) added. Flipped activations (x-128)
// lose 128*sum(stored weights), added back to the bias.
func qbPackUint8(wp []int8, bias []int32, w16 []int16, zw int32, n, k int) int32 {
	rowMul := int32(0)
	off := int16(0)
	for _, v := range w16[:n*k] {
		if v < -128 || v > 127 {
			rowMul, off = 128-zw, int16(zw-128)
			break
		}
	}
	packQB(wp, w16, n, k, off)
	if qbFlips(false) {
		qbBiasAdd(bias, wp, n, k, 128)
	}
	return rowMul
}

// qbBiasAdd adds f times each channel's sum of packed weights to bias.
func qbBiasAdd(bias []int32, wp []int8, n, k int, f int32) {
	k4 := qbK4(k)
	for c := 0; c < n; c++ {
		blk := wp[c/qbNR*k4*qbNR:]
		lane := c % qbNR
		var s int32
		for q := 0; q < k4/4; q++ {
			for t := 0; t < 4; t++ {
				s += int32(blk[q*4*qbNR+lane*4+t])
			}
		}
		bias[c] += f * s
	}
}

// qbPrepRows readies m byte rows (stride k4, k values) for the GEMM: row
// sums times rowMul into rowadd (when rowMul != 0), then the flip.
func qbPrepRows(a []uint8, k4, k, m int, int8In bool, rowMul int32, rowadd []int32) {
	if rowMul != 0 {
		qbRowSums(a, k4, k, m, rowadd)
		for i := range rowadd[:m] {
			rowadd[i] *= rowMul
		}
	}
	if qbFlips(int8In) {
		qbFlip(a[:m*k4])
	}
}

// qbGemmRq computes what qbGemmCols and requantRowsV do together, with
// the requantization fused into the microkernel (qbKernelRq): rows [0, m)
// and channels [j0, min(j1, n)) (j0 a multiple of qbNR, n the output
// channels) go straight to out (row stride ldo bytes, channel j at
// out[i*ldo+j]) as 8-bit values; a and rowadd hold qbRows(m) rows.
func qbGemmRq(a []uint8, k4 int, wp []int8, bias, rowadd []int32, out []byte, ldo int, m, j0, j1, n int, rq *requant, v *rqVec) {
	j1 = min(j1, n)
	if j0 >= j1 || m == 0 || k4 == 0 {
		return
	}
	mp := qbRows(m)
	kq := k4 / 4
	_ = a[mp*k4-1]
	_ = rowadd[mp-1]
	_ = bias[qbNPad(j1)-1]
	_ = wp[qbNPad(j1)*k4-1]
	_ = v.blk[qbNPad(j1)/qbNR*96-1]
	_ = out[(m-1)*ldo+j1-1]
	mode := 0
	if rq.single {
		mode = 1
	}
	for j := j0; j < j1; j += 2 * qbNR {
		left := min(j1-j, 2*qbNR)
		nb := (left + qbNR - 1) / qbNR
		mask := 1<<left - 1
		for i := 0; i < m; i += qbMR {
			qbKernelRq(&a[i*k4], k4, &wp[j*k4], kq, &out[i*ldo+j], ldo, &bias[j], &rowadd[i], &v.blk[j/qbNR*96], &v.consts[0], mode, min(qbMR, m-i), mask, nb)
		}
	}
}

// qbFused reports whether the convolution's byte GEMM runs with the
// requantization fused in (qbGemmRq) for a tile of m rows: one row alone
// keeps its one-row kernel, an empty reduction the plain path.
func (d *convData) qbFused(m int) bool {
	return qbKernelRq != nil && d.rv != nil && d.rv.blk != nil && d.kq4 > 0 && (m > 1 || qbGemv64 == nil)
}

// convQBWorker is convIntWorker on the byte GEMM.
func convQBWorker[TA int8 | uint8](d *convData, wk, lo, hi int) {
	g := &d.geom
	y := tensor.View[TA](d.y)
	acc, a8, rowadd := d.qbScratch(wk)
	for r0 := lo; r0 < hi; r0 += g.tile {
		r1 := min(r0+g.tile, hi)
		m := r1 - r0
		a, ra := d.qbRowsPrep(a8, rowadd, r0, r1)
		if d.qbFused(m) {
			qbRowsRq(d, a, ra, acc, y[r0*g.outC:], m, 0, d.np)
			continue
		}
		qbGemm(a, d.kq4, d.qb, d.biasQB, ra, acc, m, d.np, d.np)
		requantRowsV(d.rq, d.rv, 0, acc, d.np, y[r0*g.outC:], g.outC, g.outC, m)
	}
}

// qbChanSplit reports whether a byte GEMM convolution is split along
// output channels rather than rows: when its rows fit one tile and are too
// few for even row chunks (the 7x7 and 1x1 layers at the end of a
// network), each worker prepares all of them once and runs a share of
// the channel blocks.
func (d *convData) qbChanSplit(threads int) bool {
	return threads > 1 && d.rows <= d.tile && qbRows(d.rows)/qbMR < 4*threads && d.np >= 4*qbNR
}

// convQBChanWorker is convQBWorker over channel blocks [lo, hi) (of qbNR
// channels) for every row (see qbChanSplit).
func convQBChanWorker[TA int8 | uint8](d *convData, wk, lo, hi int) {
	g := &d.geom
	y := tensor.View[TA](d.y)
	acc, a8, rowadd := d.qbScratch(wk)
	// The worker's scratch keeps the prepared rows for its next chunks.
	ra := d.zeroRows
	if d.qbRowMul != 0 {
		ra = rowadd
	}
	a := a8
	if x, ok := d.qbInputRows(0, g.rows); ok {
		a = x
	}
	if d.prepared[wk][0] != d.evalSeq {
		d.prepared[wk][0] = d.evalSeq
		a, ra = d.qbRowsPrep(a8, rowadd, 0, g.rows)
	}
	j0, j1 := lo*qbNR, min(hi*qbNR, d.np)
	if d.qbFused(g.rows) {
		qbRowsRq(d, a, ra, acc, y, g.rows, j0, j1)
		return
	}
	qbGemmCols(a, d.kq4, d.qb, d.biasQB, ra, acc, g.rows, j0, j1, d.np)
	if j1 = min(j1, g.outC); j1 > j0 {
		requantRowsV(d.rq, d.rv, j0, acc[j0:], d.np, y[j0:], g.outC, j1-j0, g.rows)
	}
}

// qbRowsRq runs the fused byte GEMM (qbGemmRq) over m prepared rows a
// (row terms ra) for channels [j0, j1) into out (rows of outC), except
// that a last row alone after whole 8-row blocks goes to the one-row
// kernel and is requantized separately (through acc): a masked block
// computes 8 rows to keep 1, which made the part of MobileNet's 7×7
// layers (49 = 6 × 8 + 1 rows) holding the last row 25 % slower than
// the other half (14.6 against 11.7 µs for 160 → 960 channels; 11.5 +
// 1.4 µs the two calls).
func qbRowsRq[TA int8 | uint8](d *convData, a []uint8, ra, acc []int32, out []TA, m, j0, j1 int) {
	g := &d.geom
	full := m
	if m > qbMR && m%qbMR == 1 && qbGemv64 != nil {
		full = m - 1
	}
	qbGemmRq(a, d.kq4, d.qb, d.biasQB, ra, tensor.Bytes(out), g.outC, full, j0, j1, g.outC, d.rq, d.rv)
	if full == m {
		return
	}
	qbGemmCols(a[full*d.kq4:], d.kq4, d.qb, d.biasQB, ra[full:], acc, 1, j0, j1, d.np)
	if j1 = min(j1, g.outC); j1 > j0 {
		requantRowsV(d.rq, d.rv, j0, acc[j0:], d.np, out[full*g.outC+j0:], g.outC, j1-j0, 1)
	}
}

// qbScratch returns worker wk's accumulators, byte rows and row sums.
func (d *convData) qbScratch(wk int) (acc []int32, a8 []uint8, rowadd []int32) {
	g := &d.geom
	base := d.scratch[wk*g.stride : (wk+1)*g.stride]
	acc = tensor.View[int32](base[:g.accBytesPW])
	a8 = base[g.accBytesPW : g.accBytesPW+align64(g.tile*d.kq4)]
	rowadd = tensor.View[int32](base[g.accBytesPW+align64(g.tile*d.kq4):])[:g.tile]
	return acc, a8, rowadd
}

// qbRowsPrep readies rows [r0, r1) for the GEMM and returns them with
// their rowadd (zeros for int8 models): the input itself when its rows
// already are byte rows the kernel can read (see qbInputRows), otherwise
// written into a8 (one copy of the whole tile for 1x1 convolutions whose
// rows need no padding, a copy per row when they do, im2col otherwise).
func (d *convData) qbRowsPrep(a8 []uint8, rowadd []int32, r0, r1 int) ([]uint8, []int32) {
	g := &d.geom
	xb := tensor.View[uint8](d.x)
	m := r1 - r0
	a := a8
	switch x, ok := d.qbInputRows(r0, r1); {
	case ok:
		a = x
	case g.direct && g.k == d.kq4:
		// Contiguous rows: one copy, flipped below for int8.
		copy(a8[:m*g.k], xb[r0*g.k:r1*g.k])
	case g.direct:
		for i := 0; i < m; i++ {
			row := a8[i*d.kq4 : (i+1)*d.kq4]
			copy(row, xb[(r0+i)*g.k:(r0+i+1)*g.k])
			clearPad(row[g.k:])
		}
	default:
		im2colRows(g, xb, a8, r0, r1, uint8(d.padByte()), d.kq4)
	}
	qbPrepRows(a, d.kq4, g.k, m, d.dtype == tensor.Int8, d.qbRowMul, rowadd)
	if d.qbRowMul != 0 {
		return a, rowadd
	}
	return a, d.zeroRows
}

// qbInputRows returns the input rows [r0, r1) of a 1x1 convolution as
// the GEMM reads them, when it can read them in place: rows of a multiple
// of 4 bytes (no padding), activations the kernel takes as they are (no
// flip), and the rows the kernel reads past r1 up to a whole tile
// (qbRows) still inside the input.
func (d *convData) qbInputRows(r0, r1 int) ([]uint8, bool) {
	g := &d.geom
	if !g.direct || g.k != d.kq4 || qbFlips(d.dtype == tensor.Int8) || r0+qbRows(r1-r0) > g.rows {
		return nil, false
	}
	xb := tensor.View[uint8](d.x)
	return xb[r0*g.k : (r0+qbRows(r1-r0))*g.k], true
}

// padByte is the input zero point as a raw byte (the im2col padding).
func (d *convData) padByte() byte {
	if d.dtype == tensor.Int8 {
		return byte(int8(d.inZP))
	}
	return byte(uint8(d.inZP))
}

// im2colRows is im2col (groups == 1) into rows of ld bytes, the tail of
// each row (from k on) zero. The output position advances row by row (no
// division per row), and a filter row that lies wholly inside the input
// is one copy of kw*inC contiguous bytes, two overlapping 8-byte moves
// when it is 8 to 16 bytes (a 3x3 filter on RGB: 9 bytes): the first
// layer of a network has few channels, so its rows are mostly this
// overhead.
func im2colRows(g *geom, x []uint8, dst []uint8, r0, r1 int, padVal uint8, ld int) {
	perImage := g.outH * g.outW
	b := r0 / perImage
	rem := r0 - b*perImage
	oy := rem / g.outW
	ox := rem - oy*g.outW
	span := g.kw * g.fc
	inside := g.dw == 1 // filter rows are contiguous when inside
	// Pixels whose taps all lie inside the input, along one output row:
	// columns [oxLo, oxHi) (rows checked per pixel), copied by
	// im2colInterior when a filter row is 8 to 16 bytes.
	oxLo, oxHi := 0, -1
	if inside && span >= 8 && span <= 16 {
		oxLo = (g.padL + g.sw - 1) / g.sw
		if last := g.inW - g.kw + g.padL; last >= 0 {
			oxHi = min(last/g.sw+1, g.outW)
		}
	}
	for r := r0; r < r1; {
		if iy0 := oy*g.sh - g.padT; ox >= oxLo && ox < oxHi && iy0 >= 0 && iy0+(g.kh-1)*g.dh < g.inH {
			n := min(oxHi-ox, r1-r)
			im2colInterior(g, x, dst[(r-r0)*ld:], ((b*g.inH+iy0)*g.inW+ox*g.sw-g.padL)*g.inC, n, span, ld)
			r += n
			if ox += n; ox == g.outW {
				ox = 0
				if oy++; oy == g.outH {
					oy = 0
					b++
				}
			}
			continue
		}
		row := dst[(r-r0)*ld : (r-r0+1)*ld]
		clearPad(row[g.k:])
		pos := 0
		iy0 := oy*g.sh - g.padT
		ix0 := ox*g.sw - g.padL
		whole := inside && ix0 >= 0 && ix0+g.kw <= g.inW
		for ky := 0; ky < g.kh; ky++ {
			iy := iy0 + ky*g.dh
			if iy < 0 || iy >= g.inH {
				seg := row[pos : pos+span]
				for i := range seg {
					seg[i] = padVal
				}
				pos += span
				continue
			}
			rowBase := ((b*g.inH + iy) * g.inW) * g.inC
			if whole {
				// The whole filter row is inside: kw*inC contiguous bytes
				// (groups == 1, so fc == inC).
				copyShort(row[pos:pos+span], x[rowBase+ix0*g.inC:rowBase+ix0*g.inC+span])
				pos += span
				continue
			}
			for kx := 0; kx < g.kw; kx++ {
				ix := ix0 + kx*g.dw
				seg := row[pos : pos+g.fc]
				pos += g.fc
				if ix < 0 || ix >= g.inW {
					for i := range seg {
						seg[i] = padVal
					}
					continue
				}
				copy(seg, x[rowBase+ix*g.inC:rowBase+ix*g.inC+g.fc])
			}
		}
		r++
		if ox++; ox == g.outW {
			ox = 0
			if oy++; oy == g.outH {
				oy = 0
				b++
			}
		}
	}
}

// im2colInterior writes n im2col rows (ld bytes apart in dst) of
// consecutive output pixels of one output row whose taps all lie inside
// the input, the first pixel's first tap at x[base]: each filter row is
// span (8 to 16) contiguous bytes, moved as two overlapping 8-byte words,
// and the rows' tails are zeroed. Bounds are checked once for the run
// (the words are unaligned: the byte GEMM runs on amd64 and arm64 only).
// MobileNet v2's 224² stem convolution: 270-278 -> 184-188 µs.
func im2colInterior(g *geom, x, dst []uint8, base, n, span, ld int) {
	rowStep := g.dh * g.inW * g.inC // next filter row
	pixStep := g.sw * g.inC         // next output pixel
	k := g.kh * span
	if n <= 0 || base < 0 || base+(n-1)*pixStep+(g.kh-1)*rowStep+span > len(x) || (n-1)*ld+ld > len(dst) || k > ld || span < 8 || span > 16 {
		panic("conv: im2colInterior: run outside its buffers")
	}
	xp, dp := unsafe.Pointer(&x[0]), unsafe.Pointer(&dst[0])
	for i := range n {
		src, d := base+i*pixStep, i*ld
		for range g.kh {
			*(*uint64)(unsafe.Add(dp, d)) = *(*uint64)(unsafe.Add(xp, src))
			*(*uint64)(unsafe.Add(dp, d+span-8)) = *(*uint64)(unsafe.Add(xp, src+span-8))
			src += rowStep
			d += span
		}
		for j := i*ld + k; j < i*ld+ld; j++ {
			*(*uint8)(unsafe.Add(dp, j)) = 0
		}
	}
}

// clearPad zeroes a row's padding to a multiple of 4 bytes (0 to 3
// bytes; clear would call the runtime for each row).
func clearPad(b []uint8) {
	// Not a range loop: the compiler turns that into a runtime call.
	for i := 0; i < len(b); i++ {
		b[i] = 0
	}
}

// copyShort is copy(dst, src) for len(dst) == len(src), with 8 to 16
// bytes moved as two overlapping 8-byte words (no call).
func copyShort(dst, src []uint8) {
	n := len(src)
	if n < 8 || n > 16 || len(dst) != n {
		copy(dst, src)
		return
	}
	binary.LittleEndian.PutUint64(dst[:8], binary.LittleEndian.Uint64(src[:8]))
	binary.LittleEndian.PutUint64(dst[n-8:n], binary.LittleEndian.Uint64(src[n-8:n]))
}
