package conv

import (
	"encoding/binary"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/tensor"
)

// The paired depthwise path (8-bit, depth multiplier 1) multiplies two
// filter taps at a time with a pair-wise 16-bit multiply-add (x86
// VPMADDWD): the raw input values of taps 2p and 2p+1 are interleaved as
// int16 pairs and multiplied with the pre-interleaved filter pair, so each
// int32 lane gets x0*w0 + x1*w1 exactly (|x| <= 255, |w| <= 255). Every
// pixel uses all kh*kw taps: taps outside the image read a row holding
// the input zero point, and the input offset is folded into the bias,
//
//	sum_t (x_t - zp)*w_t = sum_t x_t*w_t - zp*sum_t w_t,
//
// so an outside tap (x = zp) adds zp*w - zp*w = 0 and the int32 sums
// (wrapping) equal the scalar loop's.

// dwPairI8 and dwPairU8, when non-nil, compute acc[c] = bias[c] + sum_t
// x_t[c]*w_t[c] for the leading channels of one pixel, in the blocks of
// dwPairBlocks(n) (32 channels each, then one of 16 and one of 8), and
// return how many they did. Tap t's input row starts at rows[t][shift:]
// (2*np rows: the last one of an odd tap count has zero weights); wp is
// packed by packDWPairs.
var (
	dwPairI8 func(acc, bias []int32, rows [][]byte, shift int, wp []int16, n int) int
	dwPairU8 func(acc, bias []int32, rows [][]byte, shift int, wp []int16, n int) int
)

// dwPairRunI8 and dwPairRunU8, when non-nil, run npix interior pixels of
// one output row at once for channel counts made of whole 32-channel
// blocks and at most one block of 16 (n, see dwPairRuns): pixel i reads its taps at rows[t][shift+i*step:] and writes
// acc[i*n:(i+1)*n] (the per-pixel call costs more than the work of a
// pixel of 32 to 64 channels).
var (
	dwPairRunI8 func(acc, bias []int32, rows [][]byte, shift int, wp []int16, n, npix, step int)
	dwPairRunU8 func(acc, bias []int32, rows [][]byte, shift int, wp []int16, n, npix, step int)
)

// dwPairRuns reports whether dwPairRunI8/U8 take n channels (whole
// blocks of 16 or 32, see dwPairWide).
func dwPairRuns(n int) bool { return n > 0 && n%16 == 0 }

// dwPairBlock is the number of channels of one full packed block of the
// AVX-512 kernel.
const dwPairBlock = 32

// dwPairWide is the width of the paired kernel's whole blocks: 32
// channels (AVX-512), or 16 (AVX2, set at start-up); packDWPairs lays
// the filters out for it.
var dwPairWide = dwPairBlock

// dwPairBlocks returns the channels the paired kernel covers: whole
// blocks of 32 (or 16), then a block of 16 and one of 8 when they fit.
func dwPairBlocks(n int) int {
	return n/32*32 + n%32/16*16 + n%16/8*8
}

// dwPairLen is the number of int16 values packDWPairs writes.
func dwPairLen(n, taps int) int { return (taps + 1) / 2 * 2 * dwPairBlocks(n) }

// packDWPairs packs the filter taps (w[t*n+c], T taps) for the paired
// kernel: per block of W channels (dwPairWide while they last, then 16,
// then 8)
// and pair p, two vectors of W int16 (low and high interleave halves)
// laid out as VPUNPCKLWD/VPUNPCKHWD leave the inputs, in 128-bit lanes L
// of 8 channels: element 2*(4L+j)+s of half h is tap 2p+s of channel
// c0 + 8L + 4h + j.
func packDWPairs(dst []int16, w []int32, n, taps int) {
	np := (taps + 1) / 2
	pos, c0 := 0, 0
	emit := func(width int) {
		for p := 0; p < np; p++ {
			for h := 0; h < 2; h++ {
				v := dst[pos : pos+width]
				pos += width
				for l := 0; l < width/8; l++ {
					for j := 0; j < 4; j++ {
						for s := 0; s < 2; s++ {
							var val int16
							if t := 2*p + s; t < taps {
								val = int16(w[t*n+c0+8*l+4*h+j])
							}
							v[2*(4*l+j)+s] = val
						}
					}
				}
			}
		}
		c0 += width
	}
	for c0+dwPairWide <= n {
		emit(dwPairWide)
	}
	if n-c0 >= 16 {
		emit(16)
	}
	if n-c0 >= 8 {
		emit(8)
	}
}

// pairPrepare sets up the paired path when the CPU has it.
func (d *dwData) pairPrepare() {
	if d.mult != 1 || dwPairBlocks(d.outC) == 0 || (d.dtype == tensor.Int8 && dwPairI8 == nil) || (d.dtype == tensor.Uint8 && dwPairU8 == nil) {
		return
	}
	taps := d.kh * d.kw
	np := (taps + 1) / 2
	if last := d.inW - 1 - (d.kw-1)*d.dw + d.padL; last >= 0 {
		d.oxInHi = min(last/d.sw+1, d.outW)
	}
	d.pairW = make([]int16, dwPairLen(d.outC, taps))
	d.pairBias = make([]int32, d.outC)
	d.padRow = make([]byte, d.outC)
	// Accumulators for a tile of pixels, requantized together.
	d.accBytesPW = align64(d.tile * d.outC * 4)
	d.workerBytes = d.accBytesPW
	d.pairRows = perWorker[[]byte](d.workers, 2*np)
	if (d.outC == 8 || d.outC == 16) && d.sw == 1 {
		// Few channels, stride 1: 32/outC neighbouring pixels of a row
		// read contiguous input, so they run as one 32-channel block
		// with the filter repeated.
		d.wideP = 32 / d.outC
		d.wideW = make([]int16, dwPairLen(32, taps))
		d.wideBias = make([]int32, 32)
		d.wideWq = make([]int32, taps*32)
	}
}

// pairPack packs the filters and the bias of the paired path (after pack).
func (d *dwData) pairPack() {
	taps := d.kh * d.kw
	packDWPairs(d.pairW, d.wq, d.outC, taps)
	for c := range d.pairBias {
		s := int32(0)
		for t := 0; t < taps; t++ {
			s += d.wq[t*d.outC+c]
		}
		d.pairBias[c] = d.bias32[c] + d.inOff*s
	}
	zp := byte(-d.inOff) // the input zero point as an int8 or uint8 byte
	for i := range d.padRow {
		d.padRow[i] = zp
	}
	if d.wideP > 1 {
		wv := d.wideWq
		for t := 0; t < taps; t++ {
			for c := 0; c < 32; c++ {
				wv[t*32+c] = d.wq[t*d.outC+c%d.outC]
			}
		}
		packDWPairs(d.wideW, wv, 32, taps)
		for c := range d.wideBias {
			d.wideBias[c] = d.pairBias[c%d.outC]
		}
	}
}

// interiorTaps points rows at the input from the taps of the interior
// pixel whose first tap is at base on to the end of x: a later interior
// pixel with first tap at base' reads them shifted by base'-base. The
// padding pair member repeats tap 0 (its weights are zero).
func (d *dwData) interiorTaps(base int, x []byte, rows [][]byte) {
	t := 0
	for _, o := range d.relX {
		rows[t] = x[base+o:]
		t++
	}
	for ; t < len(rows); t++ {
		rows[t] = rows[0]
	}
}

// pairTaps points rows at pixel p's input rows, tap by tap (the
// zero-point row for taps outside the image and the padding pair member).
func (d *dwData) pairTaps(p pixCursor, x []byte, rows [][]byte) {
	t := 0
	b := p.b
	iy0 := p.oy*d.sh - d.padT
	ix0 := p.ox*d.sw - d.padL
	for ky := 0; ky < d.kh; ky++ {
		iy := iy0 + ky*d.dh
		for kx := 0; kx < d.kw; kx++ {
			ix := ix0 + kx*d.dw
			if iy < 0 || iy >= d.inH || ix < 0 || ix >= d.inW {
				rows[t] = d.padRow
			} else {
				off := ((b*d.inH+iy)*d.inW + ix) * d.inC
				rows[t] = x[off : off+d.outC]
			}
			t++
		}
	}
	for ; t < len(rows); t++ {
		rows[t] = d.padRow
	}
}

// dwPairWorker is dwIntVec on the paired kernel; channels past the last
// whole block go through pixel (valid taps, offset inputs).
func dwPairWorker[T int8 | uint8](d *dwData, wk, lo, hi int, pair func(acc, bias []int32, rows [][]byte, shift int, wp []int16, n int) int, run func(acc, bias []int32, rows [][]byte, shift int, wp []int16, n, npix, step int), pixel func(acc, bias []int32, x []T, w []int32, xo, wo []int, off int32) int) {
	x, y := tensor.View[T](d.x), tensor.View[T](d.y)
	accs := tensor.View[int32](d.scratch[wk*d.stride : wk*d.stride+d.accBytesPW])
	xo, wo := d.workerTaps(wk)
	rows := d.pairRows[wk]
	p := d.cursorAt(lo)
	r0 := lo
	// Interior pixels reuse rows set at the first of them (runBase),
	// shifted; a border pixel sets its own (runBase -1).
	runBase := -1
	for r := lo; r < hi; {
		if wp := d.wideP; wp > 1 && r+wp <= hi && r-r0+wp <= d.tile && p.ox+wp <= d.outW {
			last := p
			last.ox += wp - 1
			base, ok := d.interior(p)
			if _, ok2 := d.interior(last); ok && ok2 {
				shift := 0
				if runBase < 0 {
					d.interiorTaps(base, d.x, rows)
					runBase = base
				} else {
					shift = base - runBase
				}
				pair(accs[(r-r0)*d.outC:][:32], d.wideBias, rows, shift, d.wideW, 32)
				r += wp
				p.ox += wp - 1
				p = d.nextOf(p)
				if r == hi || r-r0 == d.tile {
					requantRowsV(d.rq, d.rv, 0, accs, d.outC, y[r0*d.outC:], d.outC, d.outC, r-r0)
					r0 = r
				}
				continue
			}
		}
		if base, ok := d.interior(p); ok && run != nil && dwPairRuns(d.outC) {
			// A run of interior pixels of this output row, in one call.
			k := min(d.oxInHi-p.ox, hi-r, d.tile-(r-r0))
			if runBase < 0 {
				d.interiorTaps(base, d.x, rows)
				runBase = base
			}
			run(accs[(r-r0)*d.outC:], d.pairBias, rows, base-runBase, d.pairW, d.outC, k, d.sw*d.inC)
			r += k
			p.ox += k - 1
			p = d.nextOf(p)
			if r == hi || r-r0 == d.tile {
				requantRowsV(d.rq, d.rv, 0, accs, d.outC, y[r0*d.outC:], d.outC, d.outC, r-r0)
				r0 = r
			}
			continue
		}
		acc := accs[(r-r0)*d.outC : (r-r0+1)*d.outC]
		shift := 0
		if base, ok := d.interior(p); !ok {
			d.pairTaps(p, d.x, rows)
			runBase = -1
		} else if runBase < 0 {
			d.interiorTaps(base, d.x, rows)
			runBase = base
		} else {
			shift = base - runBase
		}
		done := pair(acc, d.pairBias, rows, shift, d.pairW, d.outC)
		if done < d.outC {
			nt := d.pixelTaps(p, xo, wo)
			if pixel != nil {
				done += pixel(acc[done:], d.bias32[done:], x[done:], d.wq[done:], xo[:nt], wo[:nt], d.inOff)
			}
			for c := done; c < d.outC; c++ {
				a := d.bias32[c]
				for t := range nt {
					a += (int32(x[xo[t]+c]) + d.inOff) * d.wq[wo[t]+c]
				}
				acc[c] = a
			}
		}
		r, p = r+1, d.nextOf(p)
		if r == hi || r-r0 == d.tile {
			// A tile of pixels: requantized together (per-channel
			// parameters loaded once per tile).
			requantRowsV(d.rq, d.rv, 0, accs, d.outC, y[r0*d.outC:], d.outC, d.outC, r-r0)
			r0 = r
		}
	}
}

func dwInt8PairWorker(d *dwData, wk, lo, hi int) {
	dwPairWorker(d, wk, lo, hi, dwPairI8, dwPairRunI8, dwPixelI8)
}

func dwUint8PairWorker(d *dwData, wk, lo, hi int) {
	dwPairWorker(d, wk, lo, hi, dwPairU8, dwPairRunU8, dwPixelU8)
}

// dwMultWorker runs a depth multiplier above 1 on the vector pixel
// kernels: each valid tap's input row is expanded into an outC-wide row
// (input channel i repeated mult times, the channel order of the output)
// in the worker's scratch, so output channel c reads exp[t*outC+c] with
// the same arithmetic as the scalar loop.
func dwMultWorker[T int8 | uint8](d *dwData, wk, lo, hi int, pixel func(acc, bias []int32, x []T, w []int32, xo, wo []int, off int32) int) {
	x, y := tensor.View[T](d.x), tensor.View[T](d.y)
	base := d.scratch[wk*d.stride : (wk+1)*d.stride]
	accs := tensor.View[int32](base[:d.accBytesPW])
	exp := tensor.View[T](base[d.accBytesPW:])[:d.kh*d.kw*d.outC]
	expb := base[d.accBytesPW:][:len(exp)]
	xo, wo := d.workerTaps(wk)
	p := d.cursorAt(lo)
	r0 := lo
	for r := lo; r < hi; r, p = r+1, d.nextOf(p) {
		acc := accs[(r-r0)*d.outC : (r-r0+1)*d.outC]
		nt := d.pixelTaps(p, xo, wo)
		for t := range nt {
			src := x[xo[t] : xo[t]+d.inC]
			dst := exp[t*d.outC : (t+1)*d.outC]
			if d.inC == 1 {
				// One input channel: the row is its value repeated.
				fill(expb[t*d.outC:(t+1)*d.outC], byte(src[0]))
			} else {
				for i, v := range src {
					seg := dst[i*d.mult : (i+1)*d.mult]
					for m := range seg {
						seg[m] = v
					}
				}
			}
			xo[t] = t * d.outC
		}
		done := 0
		if pixel != nil {
			done = pixel(acc, d.bias32, exp, d.wq, xo[:nt], wo[:nt], d.inOff)
		}
		for c := done; c < d.outC; c++ {
			a := d.bias32[c]
			for t := range nt {
				a += (int32(exp[xo[t]+c]) + d.inOff) * d.wq[wo[t]+c]
			}
			acc[c] = a
		}
		if r+1 == hi || r+1-r0 == d.tile {
			requantRowsV(d.rq, d.rv, 0, accs, d.outC, y[r0*d.outC:], d.outC, d.outC, r+1-r0)
			r0 = r + 1
		}
	}
}

// fill sets every byte of b to v, eight at a time.
func fill(b []byte, v byte) {
	w := uint64(v) * 0x0101010101010101
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], w)
	}
	for ; i < len(b); i++ {
		b[i] = v
	}
}

func dwInt8MultWorker(d *dwData, wk, lo, hi int) {
	dwMultWorker(d, wk, lo, hi, dwPixelI8)
}

func dwUint8MultWorker(d *dwData, wk, lo, hi int) {
	dwMultWorker(d, wk, lo, hi, dwPixelU8)
}

// oneChannelGemm returns, for a depthwise convolution of a one-channel
// input (depth multiplier = output channels, 8-bit, constant filter) on a
// CPU with the byte GEMM, the same computation as a CONV_2D on it: each
// output pixel's kh*kw taps times an outC x (kh*kw) filter. Taps outside
// the image are im2col padding holding the input zero point, which adds
// (zp-zp)*w = 0 as the skipped taps of the depthwise loops do, and the
// requantization is the depthwise node's; so the bytes are the same. It
// returns nil when the path does not apply.
func (d *dwData) oneChannelGemm(ctx *kernels.Context, filter *tensor.Tensor) *convData {
	if d.inC != 1 || d.mult <= 1 || d.dynamic || qbKernel32 == nil || (d.dtype != tensor.Int8 && d.dtype != tensor.Uint8) {
		return nil
	}
	g := d.geom
	g.fc, g.groups = 1, 1
	g.k = g.kh * g.kw
	g.direct = false
	c := &convData{geom: g, dtype: d.dtype, inZP: -d.inOff, rq: d.rq, rv: d.rv}
	c.bias32 = append([]int32(nil), d.bias32...)
	c.qbPrepare()
	g = c.geom
	g.workers = ctx.Threads
	g.workerBytes = g.accBytesPW + g.a16Bytes
	c.geom = g
	c.prepared = perWorker[uint32](g.workers, 1)
	// Filter rows per output channel: w[c][t] = wq[t*outC+c] (the
	// filter minus its zero point for uint8).
	k := g.k
	if d.dtype == tensor.Int8 {
		w := make([]int8, d.outC*k)
		for ch := 0; ch < d.outC; ch++ {
			for t := 0; t < k; t++ {
				w[ch*k+t] = int8(d.wq[t*d.outC+ch])
			}
		}
		foldZP(w, c.bias32, k, c.inZP)
		copy(c.biasQB, c.bias32)
		qbPackInt8(c.qb, c.biasQB, w, d.outC, k)
	} else {
		w := make([]int16, d.outC*k)
		for ch := 0; ch < d.outC; ch++ {
			for t := 0; t < k; t++ {
				w[ch*k+t] = int16(d.wq[t*d.outC+ch])
			}
		}
		foldZP(w, c.bias32, k, c.inZP)
		copy(c.biasQB, c.bias32)
		c.qbRowMul = qbPackUint8(c.qb, c.biasQB, w, filter.ZeroPoint(), d.outC, k)
	}
	ctx.RequestWorkerScratch(g.workers, g.workerBytes, 0)
	return c
}
