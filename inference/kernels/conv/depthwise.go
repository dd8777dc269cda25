package conv

import (
	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
)

func init() {
	kernels.RegisterBuiltin(schema.OpDepthwiseConv2D, kernels.Kernel{Prepare: prepareDepthwise, Eval: evalDepthwise})
}

// dwData is DEPTHWISE_CONV_2D's prepared state.
type dwData struct {
	geom
	mult    int // depth multiplier: output channels per input channel
	dtype   tensor.DType
	dynamic bool
	lo, hi  float32
	biasF   []float32
	wq      []int32 // filter values minus the filter zero point (uint8)
	bias32  []int32
	bias64  []int64
	inOff   int32 // -input zero point
	rq      *requant
	rv      *rqVec // SIMD requantization parameters (nil: scalar)
	// hybrid (float input, int8 filter): input quantized per batch
	hybrid      bool
	filterScale []float32
	hybridBytes int
	// taps holds, per worker, the input and filter offsets of the filter
	// taps inside the image for the pixel being computed (vector path);
	// the workers' slices lie on separate cache lines (see perWorker).
	taps [][]int
	// relX holds the input offsets of every tap from the first one, for
	// pixels whose taps are all inside the image.
	relX []int
	// The paired path (see depthwise_pair.go): packed filter pairs, the
	// bias with the input offset folded in, the zero-point row and each
	// worker's tap rows.
	pairW    []int16
	pairBias []int32
	padRow   []byte
	pairRows [][][]byte
	// wideP > 1 runs wideP pixels of 8 or 16 channels (stride 1) as one
	// 32-channel block: wideW and wideBias are the filter and the bias
	// repeated wideP times.
	wideP int
	// oxInHi is one past the last output column whose taps are all
	// inside the image horizontally (pairPrepare).
	oxInHi   int
	wideW    []int16
	wideBias []int32
	wideWq   []int32 // the repeated filter before packing
	// conv runs a one-channel input with a depth multiplier as a
	// CONV_2D on the byte GEMM (see oneChannelGemm).
	conv *convData
	// multVec: depth multiplier > 1 on the vector kernels (dwMultWorker).
	multVec bool
	// per-Eval views (set before the workers run)
	x, w, y, scratch []byte
}

// Vector depthwise kernels, set by the architecture files
// (depthwise_amd64.go, depthwise_arm64.go) when the CPU has the
// instructions; nil runs the portable loops. Each computes one output
// pixel with depth multiplier 1 over its leading channels, a multiple of
// its vector width, and returns how many it did; the caller finishes the
// others with the same arithmetic:
//
//	acc[c] = bias[c] + sum over taps t of (x[xo[t]+c] + off) * w[wo[t]+c]
//
// in int32 (wrapping like the scalar loop, so results are identical); for
// float32 the output itself, y[c] = clampF(the taps' products summed in
// tap order + bias[c], lo, hi).
var (
	dwPixelI8  func(acc, bias []int32, x []int8, w []int32, xo, wo []int, off int32) int
	dwPixelU8  func(acc, bias []int32, x []uint8, w []int32, xo, wo []int, off int32) int
	dwPixelF32 func(y, bias []float32, lo, hi float32, x, w []float32, xo, wo []int) int
)

// dwTapsFit reports whether the pixel has taps and n channels from every
// tap's offsets stay inside the input (xLen elements) and the filter
// (wLen), and the bias holds n: the vector pixel kernels check this once
// per pixel and then load through pointers without per-load bounds
// checks. A pixel without taps (all outside the image) is left to the
// caller's scalar loop, which writes the bias.
func dwTapsFit(xLen, wLen, biasLen int, xo, wo []int, n int) bool {
	if len(xo) == 0 || len(wo) < len(xo) || biasLen < n {
		return false
	}
	for t, o := range xo {
		if o < 0 || o+n > xLen || wo[t] < 0 || wo[t]+n > wLen {
			return false
		}
	}
	return true
}

func prepareDepthwise(ctx *kernels.Context, n *kernels.Node) error {
	if err := n.CheckArity(2, 3, 1); err != nil {
		return err
	}
	opts, _ := n.Options.(*schema.DepthwiseConv2DOptions)
	if opts == nil {
		opts = &schema.DepthwiseConv2DOptions{Padding: schema.PaddingSame, StrideW: 1, StrideH: 1, DilationW: 1, DilationH: 1}
	}
	in, filter, bias, out := n.Inputs[0], n.Inputs[1], n.Input(2), n.Outputs[0]
	if in.Rank() != 4 {
		return n.Errorf("input has rank %d (shape %s), expected 4 (NHWC)", in.Rank(), tensor.ShapeString(in.Shape))
	}
	if filter.Rank() != 4 || filter.Shape[0] != 1 {
		return n.Errorf("filter has shape %s, expected [1, height, width, channels]", tensor.ShapeString(filter.Shape))
	}
	if err := checkPadding(n, opts.Padding); err != nil {
		return err
	}
	if opts.StrideH < 1 || opts.StrideW < 1 {
		return n.Errorf("strides %dx%d, expected >= 1", opts.StrideH, opts.StrideW)
	}
	if opts.DilationH < 1 || opts.DilationW < 1 {
		return n.Errorf("dilations %dx%d, expected >= 1", opts.DilationH, opts.DilationW)
	}
	if err := checkActivation(n, opts.Activation); err != nil {
		return err
	}
	g := geom{batch: in.Shape[0], inH: in.Shape[1], inW: in.Shape[2], inC: in.Shape[3],
		outC: filter.Shape[3], kh: filter.Shape[1], kw: filter.Shape[2], fc: 1, groups: 1,
		sh: opts.StrideH, sw: opts.StrideW, dh: opts.DilationH, dw: opts.DilationW}
	if g.inC <= 0 || g.outC%g.inC != 0 {
		return n.Errorf("filter has %d output channels, not a multiple of the input's %d channels", g.outC, g.inC)
	}
	mult := g.outC / g.inC
	if opts.DepthMultiplier > 0 && opts.DepthMultiplier != mult {
		return n.Errorf("depth_multiplier %d does not match filter channels %d / input channels %d", opts.DepthMultiplier, g.outC, g.inC)
	}
	if bias != nil && bias.NumElements() != g.outC {
		return n.Errorf("bias has %d elements (shape %s), expected %d (output channels)", bias.NumElements(), tensor.ShapeString(bias.Shape), g.outC)
	}
	g.outH = outSize(opts.Padding, g.inH, g.kh, g.sh, g.dh)
	g.outW = outSize(opts.Padding, g.inW, g.kw, g.sw, g.dw)
	if g.outH < 0 || g.outW < 0 {
		return n.Errorf("filter %dx%d (dilation %dx%d) is larger than the %dx%d input with VALID padding", g.kh, g.kw, g.dh, g.dw, g.inH, g.inW)
	}
	g.padT = padBefore(g.sh, g.dh, g.inH, g.kh, g.outH)
	g.padL = padBefore(g.sw, g.dw, g.inW, g.kw, g.outW)
	g.rows = g.batch * g.outH * g.outW
	if err := ctx.ResizeOutput(out, []int{g.batch, g.outH, g.outW, g.outC}); err != nil {
		return n.Errorf("output: %v", err)
	}
	d := &dwData{mult: mult, dtype: in.Type}
	d.dynamic = !ctx.Known(filter) || (bias != nil && !ctx.Known(bias))
	accElem := 4
	switch in.Type {
	case tensor.Float32:
		switch filter.Type {
		case tensor.Float32:
		case tensor.Int8:
			d.hybrid = true
			if !filter.IsQuantized() {
				return n.Errorf("hybrid int8 filter carries no scale")
			}
			if fq := filter.Quant; fq.PerChannel() && (len(fq.Scale) != g.outC || fq.Dim != 3) {
				return n.Errorf("filter has %d scales along dimension %d, expected 1 or %d along dimension 3", len(fq.Scale), fq.Dim, g.outC)
			}
			d.wq = make([]int32, filter.NumElements())
			d.filterScale = make([]float32, g.outC)
			d.hybridBytes = align64(in.NumElements()) + 2*align64(g.batch*4)
		default:
			return n.Errorf("filter has type %s, expected float32 or int8 (hybrid)", filter.Type)
		}
		if bias != nil {
			if err := sameType(n, "bias", bias, tensor.Float32); err != nil {
				return err
			}
		}
		if err := sameType(n, "output", out, tensor.Float32); err != nil {
			return err
		}
		d.lo, d.hi = floatAct(opts.Activation)
		d.biasF = make([]float32, g.outC)
	case tensor.Int8, tensor.Uint8, tensor.Int16:
		if err := quantizedTypes(n, in, filter, bias, out, "filter"); err != nil {
			return err
		}
		rq, err := newRequant(n, in, filter, out, g.outC, 3, in.Type == tensor.Uint8, opts.Activation)
		if err != nil {
			return err
		}
		d.rq = rq
		if in.Type != tensor.Int16 {
			d.rv = newRQVec(rq)
		}
		d.inOff = -in.ZeroPoint()
		d.wq = make([]int32, filter.NumElements())
		if in.Type == tensor.Int16 {
			if d.inOff != 0 || rq.outZP != 0 {
				return n.Errorf("int16 input and output need zero point 0, got %d and %d", -d.inOff, rq.outZP)
			}
			d.bias64 = make([]int64, g.outC)
			accElem = 8
		} else {
			d.bias32 = make([]int32, g.outC)
		}
	default:
		return n.Errorf("input type %s is not supported (expected float32, int8, uint8 or int16)", in.Type)
	}
	g.tile = max(1, min(kernels.BandRows, g.rows))
	g.accBytesPW = align64(g.outC * accElem)
	g.workers = ctx.Threads
	g.workerBytes = g.accBytesPW
	d.geom = g
	if mult > 1 && (in.Type == tensor.Int8 || in.Type == tensor.Uint8) && (dwPixelI8 != nil || dwPixelU8 != nil) {
		// Depth multiplier: tap offsets plus the expanded input rows.
		d.multVec = true
		d.taps = perWorker[int](g.workers, 2*g.kh*g.kw)
		// Accumulators for a tile of pixels (requantized together), then
		// the expanded rows.
		g.accBytesPW = align64(g.tile * g.outC * 4)
		g.workerBytes = g.accBytesPW + align64(g.kh*g.kw*g.outC)
		d.geom = g
	}
	if mult == 1 && !d.hybrid && in.Type != tensor.Int16 {
		d.taps = perWorker[int](g.workers, 2*g.kh*g.kw)
		if in.Type == tensor.Int8 || in.Type == tensor.Uint8 {
			d.pairPrepare()
			g = d.geom
		}
	}
	if d.taps != nil {
		for ky := 0; ky < g.kh; ky++ {
			for kx := 0; kx < g.kw; kx++ {
				d.relX = append(d.relX, (ky*g.dh*g.inW+kx*g.dw)*g.inC)
			}
		}
	}
	ctx.RequestWorkerScratch(g.workers, g.workerBytes, d.hybridBytes)
	if !d.dynamic {
		d.pack(filter, bias)
		d.conv = d.oneChannelGemm(ctx, filter)
	}
	n.Data = d
	return nil
}

func (d *dwData) pack(filter, bias *tensor.Tensor) {
	switch d.dtype {
	case tensor.Float32:
		if bias == nil {
			clear(d.biasF)
		} else {
			copy(d.biasF, bias.Float32s())
		}
		if d.hybrid {
			for i, w := range filter.Int8s()[:len(d.wq)] {
				d.wq[i] = int32(w)
			}
			for c := range d.filterScale {
				if filter.Quant.PerChannel() {
					d.filterScale[c] = filter.Quant.Scale[c]
				} else {
					d.filterScale[c] = filter.Quant.Scale[0]
				}
			}
		}
	case tensor.Int8, tensor.Int16:
		// TFLite's int8/int16 kernels take filters as symmetric.
		for i, w := range filter.Int8s()[:len(d.wq)] {
			d.wq[i] = int32(w)
		}
		if d.dtype == tensor.Int8 {
			biasValues32(bias, d.bias32)
		} else {
			biasValues64(bias, d.bias64)
		}
	case tensor.Uint8:
		zw := filter.ZeroPoint()
		for i, w := range filter.Uint8s()[:len(d.wq)] {
			d.wq[i] = int32(w) - zw
		}
		biasValues32(bias, d.bias32)
	}
	if d.pairW != nil {
		d.pairPack()
	}
}

func evalDepthwise(ctx *kernels.Context, n *kernels.Node) error {
	d, ok := n.Data.(*dwData)
	if !ok {
		return n.Errorf("not prepared")
	}
	in, filter, bias, out := n.Inputs[0], n.Inputs[1], n.Input(2), n.Outputs[0]
	if d.rows == 0 || d.outC == 0 {
		return nil // an empty output (a zero dimension): nothing to compute
	}
	if d.dynamic {
		d.pack(filter, bias)
	}
	d.scratch, d.stride = ctx.WorkerScratch(d.workers, d.workerBytes, d.hybridBytes)
	d.x, d.w, d.y = in.Data, filter.Data, out.Data
	threads := min(ctx.Threads, d.workers)
	work := int64(d.rows) * int64(d.outC) * int64(d.kh*d.kw)
	if c := d.conv; c != nil {
		// On the byte GEMM: GEMM multiply-accumulates.
		c.scratch, c.stride = ctx.WorkerScratch(c.workers, c.workerBytes, 0)
		c.x, c.y = in.Data, out.Data
		c.runQB(ctx, threads, work)
		return nil
	}
	work *= kernels.TapCost
	if d.hybrid {
		q, sf, off := d.hybridViews()
		x := tensor.View[float32](d.x)
		size := d.inH * d.inW * d.inC
		for b := 0; b < d.batch; b++ {
			quantizeRow(x[b*size:(b+1)*size], q[b*size:(b+1)*size], true, &sf[b], &off[b])
		}
		parallel(ctx, threads, work, d.rows, d.tile, d, dwHybridWorker)
		return nil
	}
	vec := d.taps != nil
	switch {
	case d.dtype == tensor.Float32 && vec && dwPixelF32 != nil:
		parallel(ctx, threads, work, d.rows, d.tile, d, dwFloatVecWorker)
	case d.dtype == tensor.Float32:
		parallel(ctx, threads, work, d.rows, d.tile, d, dwFloatWorker)
	case d.dtype == tensor.Int8 && d.multVec:
		parallel(ctx, threads, work, d.rows, d.tile, d, dwInt8MultWorker)
	case d.dtype == tensor.Uint8 && d.multVec:
		parallel(ctx, threads, work, d.rows, d.tile, d, dwUint8MultWorker)
	case d.dtype == tensor.Int8 && d.pairW != nil:
		parallel(ctx, threads, work, d.rows, d.tile, d, dwInt8PairWorker)
	case d.dtype == tensor.Uint8 && d.pairW != nil:
		parallel(ctx, threads, work, d.rows, d.tile, d, dwUint8PairWorker)
	case d.dtype == tensor.Int8 && vec && dwPixelI8 != nil:
		parallel(ctx, threads, work, d.rows, d.tile, d, dwInt8VecWorker)
	case d.dtype == tensor.Int8:
		parallel(ctx, threads, work, d.rows, d.tile, d, dwIntWorker[int8])
	case d.dtype == tensor.Uint8 && vec && dwPixelU8 != nil:
		parallel(ctx, threads, work, d.rows, d.tile, d, dwUint8VecWorker)
	case d.dtype == tensor.Uint8:
		parallel(ctx, threads, work, d.rows, d.tile, d, dwIntWorker[uint8])
	case d.dtype == tensor.Int16:
		parallel(ctx, threads, work, d.rows, d.tile, d, dwInt16Worker)
	}
	return nil
}

// pixCursor is an output pixel's position (batch, row, column), advanced
// pixel by pixel without divisions.
type pixCursor struct{ b, oy, ox int }

// cursorAt returns output row r's position.
func (d *dwData) cursorAt(r int) pixCursor {
	perImage := d.outH * d.outW
	b := r / perImage
	rem := r - b*perImage
	return pixCursor{b, rem / d.outW, rem % d.outW}
}

// nextOf returns the output pixel after p.
func (d *dwData) nextOf(p pixCursor) pixCursor {
	if p.ox++; p.ox == d.outW {
		p.ox = 0
		if p.oy++; p.oy == d.outH {
			p.oy = 0
			p.b++
		}
	}
	return p
}

// interior reports whether every tap of pixel p is inside the image, and
// the input offset of its first tap (the others are at relX from it).
func (d *dwData) interior(p pixCursor) (int, bool) {
	iy0 := p.oy*d.sh - d.padT
	ix0 := p.ox*d.sw - d.padL
	if iy0 < 0 || iy0+(d.kh-1)*d.dh >= d.inH || ix0 < 0 || ix0+(d.kw-1)*d.dw >= d.inW {
		return 0, false
	}
	return ((p.b*d.inH+iy0)*d.inW + ix0) * d.inC, true
}

// pixelTaps fills xo and wo with the input and filter offsets of pixel
// p's taps that fall inside the image, in the portable loops' order (row
// by row, left to right), and returns how many there are.
func (d *dwData) pixelTaps(p pixCursor, xo, wo []int) int {
	if base, ok := d.interior(p); ok {
		xo, wo = xo[:len(d.relX)], wo[:len(d.relX)]
		for t, o := range d.relX {
			xo[t] = base + o
			wo[t] = t * d.outC
		}
		return len(d.relX)
	}
	b := p.b
	iy0 := p.oy*d.sh - d.padT
	ix0 := p.ox*d.sw - d.padL
	n := 0
	for ky := 0; ky < d.kh; ky++ {
		iy := iy0 + ky*d.dh
		if iy < 0 || iy >= d.inH {
			continue
		}
		for kx := 0; kx < d.kw; kx++ {
			ix := ix0 + kx*d.dw
			if ix < 0 || ix >= d.inW {
				continue
			}
			xo[n] = ((b*d.inH+iy)*d.inW + ix) * d.inC
			wo[n] = (ky*d.kw + kx) * d.outC
			n++
		}
	}
	return n
}

// workerTaps returns worker wk's tap offset buffers.
func (d *dwData) workerTaps(wk int) ([]int, []int) {
	k := d.kh * d.kw
	t := d.taps[wk]
	return t[:k], t[k:]
}

func dwInt8VecWorker(d *dwData, wk, lo, hi int) {
	dwIntVec(d, wk, lo, hi, dwPixelI8)
}

func dwUint8VecWorker(d *dwData, wk, lo, hi int) {
	dwIntVec(d, wk, lo, hi, dwPixelU8)
}

// dwIntVec is dwIntWorker with depth multiplier 1 on a vector kernel:
// pixel does the leading channels, the loop below the rest.
func dwIntVec[T int8 | uint8](d *dwData, wk, lo, hi int, pixel func(acc, bias []int32, x []T, w []int32, xo, wo []int, off int32) int) {
	x, y := tensor.View[T](d.x), tensor.View[T](d.y)
	acc := tensor.View[int32](d.scratch[wk*d.stride : wk*d.stride+d.accBytesPW])[:d.outC]
	xo, wo := d.workerTaps(wk)
	p := d.cursorAt(lo)
	for r := lo; r < hi; r, p = r+1, d.nextOf(p) {
		nt := d.pixelTaps(p, xo, wo)
		done := pixel(acc, d.bias32, x, d.wq, xo[:nt], wo[:nt], d.inOff)
		for c := done; c < d.outC; c++ {
			a := d.bias32[c]
			for t := range nt {
				a += (int32(x[xo[t]+c]) + d.inOff) * d.wq[wo[t]+c]
			}
			acc[c] = a
		}
		requantRowV(d.rq, d.rv, 0, acc, y[r*d.outC:(r+1)*d.outC])
	}
}

// dwFloatVecWorker is dwFloatWorker with depth multiplier 1 on the
// vector kernel (taps summed in the same order).
func dwFloatVecWorker(d *dwData, wk, lo, hi int) {
	x, w, y := tensor.View[float32](d.x), tensor.View[float32](d.w), tensor.View[float32](d.y)
	xo, wo := d.workerTaps(wk)
	p := d.cursorAt(lo)
	for r := lo; r < hi; r, p = r+1, d.nextOf(p) {
		nt := d.pixelTaps(p, xo, wo)
		yr := y[r*d.outC : (r+1)*d.outC]
		done := dwPixelF32(yr, d.biasF, d.lo, d.hi, x, w, xo[:nt], wo[:nt])
		for c := done; c < d.outC; c++ {
			var a float32
			for t := range nt {
				a += x[xo[t]+c] * w[wo[t]+c]
			}
			yr[c] = clampF(a+d.biasF[c], d.lo, d.hi)
		}
	}
}

func dwFloatWorker(d *dwData, wk, lo, hi int) {
	x, w, y := tensor.View[float32](d.x), tensor.View[float32](d.w), tensor.View[float32](d.y)
	acc := tensor.View[float32](d.scratch[wk*d.stride : wk*d.stride+d.accBytesPW])[:d.outC]
	perImage := d.outH * d.outW
	for r := lo; r < hi; r++ {
		clear(acc)
		b := r / perImage
		rem := r - b*perImage
		oy := rem / d.outW
		ox := rem - oy*d.outW
		iy0 := oy*d.sh - d.padT
		ix0 := ox*d.sw - d.padL
		for ky := 0; ky < d.kh; ky++ {
			iy := iy0 + ky*d.dh
			if iy < 0 || iy >= d.inH {
				continue
			}
			rowOff := (b*d.inH + iy) * d.inW
			if d.mult == 1 && d.kw == 3 && ix0 >= 0 && ix0+2*d.dw < d.inW {
				// A full row of a 3-wide filter, tap by tap in the same
				// order as the general loop (float sums are order-sensitive).
				x0 := x[(rowOff+ix0)*d.inC:][:d.inC]
				x1 := x[(rowOff+ix0+d.dw)*d.inC:][:len(x0)]
				x2 := x[(rowOff+ix0+2*d.dw)*d.inC:][:len(x0)]
				wOff := ky * 3 * d.outC
				w0 := w[wOff:][:len(x0)]
				w1 := w[wOff+d.outC:][:len(x0)]
				w2 := w[wOff+2*d.outC:][:len(x0)]
				acc := acc[:len(x0)]
				for c, v := range x0 {
					s := acc[c] + v*w0[c]
					s += x1[c] * w1[c]
					acc[c] = s + x2[c]*w2[c]
				}
				continue
			}
			for kx := 0; kx < d.kw; kx++ {
				ix := ix0 + kx*d.dw
				if ix < 0 || ix >= d.inW {
					continue
				}
				xr := x[(rowOff+ix)*d.inC:][:d.inC]
				wr := w[(ky*d.kw+kx)*d.outC:][:d.outC]
				if d.mult == 1 {
					wr = wr[:len(xr)]
					acc := acc[:len(xr)]
					for c, v := range xr {
						acc[c] += v * wr[c]
					}
					continue
				}
				for c, v := range xr {
					ws := wr[c*d.mult : c*d.mult+d.mult]
					as := acc[c*d.mult : c*d.mult+d.mult]
					for m, wv := range ws {
						as[m] += v * wv
					}
				}
			}
		}
		yr := y[r*d.outC : (r+1)*d.outC]
		for c, v := range acc {
			yr[c] = clampF(v+d.biasF[c], d.lo, d.hi)
		}
	}
}

func dwInt16Worker(d *dwData, wk, lo, hi int) {
	x, y := tensor.View[int16](d.x), tensor.View[int16](d.y)
	acc := tensor.View[int64](d.scratch[wk*d.stride : wk*d.stride+d.accBytesPW])[:d.outC]
	for r := lo; r < hi; r++ {
		copy(acc, d.bias64)
		d.forTaps(r, func(xOff, wOff int) {
			xr := x[xOff : xOff+d.inC]
			wr := d.wq[wOff : wOff+d.outC]
			for c, v := range xr {
				for m := 0; m < d.mult; m++ {
					acc[c*d.mult+m] += int64(int32(v) * wr[c*d.mult+m])
				}
			}
		})
		requantRow64(d.rq, 0, acc, y[r*d.outC:(r+1)*d.outC])
	}
}

// hybridViews returns the quantized input and the per-batch scaling
// factors and zero points, held in scratch after the workers' blocks.
func (d *dwData) hybridViews() ([]int8, []float32, []int32) {
	base := d.scratch[d.workers*d.stride:]
	qb := align64(d.batch * d.inH * d.inW * d.inC)
	sb := align64(d.batch * 4)
	return tensor.View[int8](base[:qb]), tensor.View[float32](base[qb : qb+sb]), tensor.View[int32](base[qb+sb : qb+2*sb])
}

// dwHybridWorker is TensorFlow Lite's hybrid per-channel depthwise
// convolution: int32 sums of filter * (q - zero point) over the valid taps,
// scaled by channel scale times batch scale, plus the float bias.
func dwHybridWorker(d *dwData, wk, lo, hi int) {
	q, sf, off := d.hybridViews()
	y := tensor.View[float32](d.y)
	acc := tensor.View[int32](d.scratch[wk*d.stride : wk*d.stride+d.accBytesPW])[:d.outC]
	perImage := d.outH * d.outW
	for r := lo; r < hi; r++ {
		b := r / perImage
		inOff := -off[b]
		clear(acc)
		d.forTaps(r, func(xOff, wOff int) {
			xr := q[xOff : xOff+d.inC]
			wr := d.wq[wOff : wOff+d.outC]
			for c, v := range xr {
				xv := int32(v) + inOff
				for m := 0; m < d.mult; m++ {
					acc[c*d.mult+m] += xv * wr[c*d.mult+m]
				}
			}
		})
		yr := y[r*d.outC : (r+1)*d.outC]
		for c, v := range acc {
			f := float32(v)
			f *= d.filterScale[c] * sf[b]
			yr[c] = clampF(f+d.biasF[c], d.lo, d.hi)
		}
	}
}

// forTaps calls fn with the input and filter offsets of every filter tap
// of output row r that falls inside the image (others contribute nothing).
func (d *dwData) forTaps(r int, fn func(xOff, wOff int)) {
	perImage := d.outH * d.outW
	b := r / perImage
	rem := r - b*perImage
	oy := rem / d.outW
	ox := rem - oy*d.outW
	iy0 := oy*d.sh - d.padT
	ix0 := ox*d.sw - d.padL
	for ky := 0; ky < d.kh; ky++ {
		iy := iy0 + ky*d.dh
		if iy < 0 || iy >= d.inH {
			continue
		}
		for kx := 0; kx < d.kw; kx++ {
			ix := ix0 + kx*d.dw
			if ix < 0 || ix >= d.inW {
				continue
			}
			fn(((b*d.inH+iy)*d.inW+ix)*d.inC, (ky*d.kw+kx)*d.outC)
		}
	}
}

// dwIntWorker is the 8-bit depthwise loop: per output pixel, int32
// accumulators over the valid taps, then double-rounding requantization.
func dwIntWorker[T int8 | uint8](d *dwData, wk, lo, hi int) {
	x, y := tensor.View[T](d.x), tensor.View[T](d.y)
	inOff := d.inOff
	acc := tensor.View[int32](d.scratch[wk*d.stride : wk*d.stride+d.accBytesPW])[:d.outC]
	perImage := d.outH * d.outW
	for r := lo; r < hi; r++ {
		copy(acc, d.bias32)
		b := r / perImage
		rem := r - b*perImage
		oy := rem / d.outW
		ox := rem - oy*d.outW
		iy0 := oy*d.sh - d.padT
		ix0 := ox*d.sw - d.padL
		for ky := 0; ky < d.kh; ky++ {
			iy := iy0 + ky*d.dh
			if iy < 0 || iy >= d.inH {
				continue
			}
			if d.mult == 1 && d.kw == 3 && ix0 >= 0 && ix0+2*d.dw < d.inW {
				// A full row of a 3-wide filter: three taps per pass.
				rowOff := (b*d.inH + iy) * d.inW
				x0 := x[(rowOff+ix0)*d.inC:][:d.inC]
				x1 := x[(rowOff+ix0+d.dw)*d.inC:][:len(x0)]
				x2 := x[(rowOff+ix0+2*d.dw)*d.inC:][:len(x0)]
				wOff := ky * 3 * d.outC
				w0 := d.wq[wOff:][:len(x0)]
				w1 := d.wq[wOff+d.outC:][:len(x0)]
				w2 := d.wq[wOff+2*d.outC:][:len(x0)]
				acc := acc[:len(x0)]
				for c, v := range x0 {
					acc[c] += (int32(v)+inOff)*w0[c] + (int32(x1[c])+inOff)*w1[c] + (int32(x2[c])+inOff)*w2[c]
				}
				continue
			}
			for kx := 0; kx < d.kw; kx++ {
				ix := ix0 + kx*d.dw
				if ix < 0 || ix >= d.inW {
					continue
				}
				xOff := ((b*d.inH+iy)*d.inW + ix) * d.inC
				wOff := (ky*d.kw + kx) * d.outC
				xr := x[xOff : xOff+d.inC]
				wr := d.wq[wOff : wOff+d.outC]
				if d.mult == 1 {
					wr = wr[:len(xr)]
					acc := acc[:len(xr)]
					for c, v := range xr {
						acc[c] += (int32(v) + inOff) * wr[c]
					}
					continue
				}
				for c, v := range xr {
					xv := int32(v) + inOff
					ws := wr[c*d.mult : c*d.mult+d.mult]
					as := acc[c*d.mult : c*d.mult+d.mult]
					for m, wv := range ws {
						as[m] += xv * wv
					}
				}
			}
		}
		requantRowV(d.rq, d.rv, 0, acc, y[r*d.outC:(r+1)*d.outC])
	}
}
