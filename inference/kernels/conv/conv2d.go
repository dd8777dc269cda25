package conv

import (
	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
)

func init() {
	kernels.RegisterBuiltin(schema.OpConv2D, kernels.Kernel{Prepare: prepareConv2D, Eval: evalConv2D})
}

// geom is the geometry of a 2-D convolution over NHWC tensors.
type geom struct {
	batch, inH, inW, inC    int
	outH, outW, outC        int
	kh, kw, fc              int // filter height, width, input channels per group
	groups                  int
	sh, sw, dh, dw          int
	padT, padL              int
	k                       int // kh*kw*fc: im2col row length
	rows                    int // batch*outH*outW
	direct                  bool
	tile                    int // rows per im2col block
	workers, workerBytes    int
	stride                  int // between workers' scratch (Context.WorkerScratch)
	im2colBytes, accBytesPW int
	a16Bytes                int // widened activation rows (SIMD GEMM)
}

// convData is CONV_2D's prepared state.
type convData struct {
	geom
	dtype   tensor.DType
	dynamic bool // filter or bias only known at Eval: repack then
	// float
	lo, hi float32
	biasF  []float32
	// quantized
	w16    []int16 // uint8 filters minus their zero point
	bias32 []int32 // bias - inZP*sum(filter row)
	bias64 []int64
	inZP   int32
	rq     *requant
	// wp holds the 8-bit filters packed in channel pairs (see packPairs),
	// group after group, when the sums fit 32-bit lanes.
	wp     []int64
	packed bool
	// q16 holds the filters packed for the SIMD GEMM (see packQ16) when
	// it runs (groups == 1); kp is the widened row length.
	q16 []int16
	kp  int
	// qb holds the filters packed for the byte GEMM (see packQB) when the
	// CPU has it (groups == 1); biasQB is bias32 with its correction,
	// padded to np channels; kq4 is the byte row length.
	qb       []int8
	biasQB   []int32
	kq4, np  int
	zeroRows []int32 // rowadd of int8 models
	qbRowMul int32   // uint8 models: rowadd = qbRowMul * sum(row)
	rv       *rqVec  // SIMD requantization parameters (nil: scalar)
	// prepared[w][0] == evalSeq when worker w's scratch holds this Eval's
	// prepared rows (split along channels, see qbChanSplit); each worker's
	// flag on its own cache line (perWorker).
	prepared [][]uint32
	evalSeq  uint32
	// fp holds float filters packed for the SIMD GEMM (see packF32).
	fp []float32
	// hybrid (float input, int8 filter): inputs are quantized per batch
	hybrid           bool
	perChannelHybrid bool
	filterScale      []float32
	rowSums          []int32
	zeroBias         []int32
	hybridBytes      int
	// per-Eval views (set before the workers run)
	x, w, y, scratch []byte
}

func prepareConv2D(ctx *kernels.Context, n *kernels.Node) error {
	if err := n.CheckArity(2, 3, 1); err != nil {
		return err
	}
	opts, _ := n.Options.(*schema.Conv2DOptions)
	if opts == nil {
		opts = &schema.Conv2DOptions{Padding: schema.PaddingSame, StrideW: 1, StrideH: 1, DilationW: 1, DilationH: 1}
	}
	in, filter, bias, out := n.Inputs[0], n.Inputs[1], n.Input(2), n.Outputs[0]
	if in.Rank() != 4 {
		return n.Errorf("input has rank %d (shape %s), expected 4 (NHWC)", in.Rank(), tensor.ShapeString(in.Shape))
	}
	if filter.Rank() != 4 {
		return n.Errorf("filter has rank %d (shape %s), expected 4 (OHWI)", filter.Rank(), tensor.ShapeString(filter.Shape))
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
		outC: filter.Shape[0], kh: filter.Shape[1], kw: filter.Shape[2], fc: filter.Shape[3],
		sh: opts.StrideH, sw: opts.StrideW, dh: opts.DilationH, dw: opts.DilationW}
	if g.fc <= 0 || g.inC <= 0 || g.inC%g.fc != 0 {
		return n.Errorf("input has %d channels, not a multiple of the filter's %d input channels", g.inC, g.fc)
	}
	g.groups = g.inC / g.fc
	if g.groups > 0 && g.outC%g.groups != 0 {
		return n.Errorf("filter has %d output channels, not a multiple of the %d groups", g.outC, g.groups)
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
	g.k = g.kh * g.kw * g.fc
	g.rows = g.batch * g.outH * g.outW
	g.direct = g.groups == 1 && g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.padT == 0 && g.padL == 0
	if err := ctx.ResizeOutput(out, []int{g.batch, g.outH, g.outW, g.outC}); err != nil {
		return n.Errorf("output: %v", err)
	}
	d := &convData{geom: g, dtype: in.Type}
	d.dynamic = !ctx.Known(filter) || (bias != nil && !ctx.Known(bias))
	var inElem, accElem int
	switch in.Type {
	case tensor.Float32:
		if filter.Type == tensor.Int8 {
			d.hybrid = true
			if !filter.IsQuantized() {
				return n.Errorf("hybrid int8 filter carries no scale")
			}
			if fq := filter.Quant; fq.PerChannel() && (len(fq.Scale) != g.outC || fq.Dim != 0) {
				return n.Errorf("filter has %d scales along dimension %d, expected 1 or %d along dimension 0", len(fq.Scale), fq.Dim, g.outC)
			}
		} else if err := sameType(n, "filter", filter, tensor.Float32); err != nil {
			return err
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
		if !d.hybrid && useSIMD && !ctx.PortableFloat && gemmF32Kernel != nil && g.groups == 1 {
			d.fp = make([]float32, f32Len(g.outC, g.k))
		}
		inElem, accElem = 4, 0
		if d.hybrid {
			inElem, accElem = 1, 4
			d.filterScale = make([]float32, g.outC)
			d.rowSums = make([]int32, g.outC)
			d.zeroBias = make([]int32, g.outC)
			d.hybridBytes = align64(in.NumElements()) + 2*align64(g.batch*4)
			d.perChannelHybrid = filter.Quant.PerChannel()
		}
	case tensor.Int8, tensor.Uint8, tensor.Int16:
		if err := quantizedTypes(n, in, filter, bias, out, "filter"); err != nil {
			return err
		}
		rq, err := newRequant(n, in, filter, out, g.outC, 0, in.Type == tensor.Uint8, opts.Activation)
		if err != nil {
			return err
		}
		rq.single = in.Type == tensor.Int8 && ctx.SingleRounding()
		d.rq = rq
		d.inZP = in.ZeroPoint()
		if in.Type == tensor.Int16 {
			if d.inZP != 0 || rq.outZP != 0 {
				return n.Errorf("int16 input and output need zero point 0, got %d and %d", d.inZP, rq.outZP)
			}
			d.bias64 = make([]int64, g.outC)
			inElem, accElem = 2, 8
		} else {
			d.bias32 = make([]int32, g.outC)
			maxProd := int64(128 * 128)
			if in.Type == tensor.Uint8 {
				d.w16 = make([]int16, filter.NumElements())
				maxProd = 255 * 255
			}
			d.rv = newRQVec(rq)
			if useSIMD && g.groups == 1 && qbKernel32 != nil {
				d.qbPrepare()
			} else if useSIMD && g.groups == 1 && qgemmKernel != nil {
				d.kp = q16Even(g.k)
				d.q16 = make([]int16, q16Len(g.outC, g.k))
			} else if d.packed = packedFits(g.k, maxProd); d.packed {
				cpg := g.outC / g.groups
				d.wp = make([]int64, g.groups*((cpg+1)/2)*g.k)
			}
			inElem, accElem = 1, 4
		}
	default:
		return n.Errorf("input type %s is not supported (expected float32, int8, uint8 or int16)", in.Type)
	}
	// Tile so that one im2col block stays in L1/L2.
	g = d.geom
	g.tile = 64
	if g.k > 0 {
		g.tile = min(64, max(4, 32768/(g.k*inElem)))
	}
	g.tile = max(1, min(g.tile, g.rows))
	if !g.direct {
		g.im2colBytes = align64(g.tile * g.k * inElem)
	}
	if d.qb != nil {
		g = d.geom
	} else if d.q16 != nil {
		// Keep the widened rows, the accumulators and one im2col block
		// within about 64 KiB (L1/L2), in multiples of 12 rows: whole
		// blocks of the 4-row (AVX2) and 3-row (NEON) microkernels, whose
		// Go remainder loops are several times slower.
		per := g.outC*4 + d.kp*2
		if !g.direct {
			per += g.k
		}
		g.tile = max(12, min(60, 65536/per)/12*12)
		g.tile = max(1, min(g.tile, g.rows))
		g.im2colBytes = 0 // im2colQ16 writes the widened rows directly
		g.a16Bytes = align64(g.tile * d.kp * 2)
	}
	if d.qb == nil {
		g.accBytesPW = align64(g.tile * g.outC * accElem)
	}
	g.workers = ctx.Threads
	g.workerBytes = g.im2colBytes + g.accBytesPW + g.a16Bytes
	d.geom = g
	if d.qb != nil {
		d.prepared = perWorker[uint32](g.workers, 1)
	}
	if g.workerBytes+d.hybridBytes > 0 {
		ctx.RequestWorkerScratch(g.workers, g.workerBytes, d.hybridBytes)
	}
	if !d.dynamic {
		d.pack(filter, bias)
		if d.packed || d.q16 != nil || d.qb != nil {
			d.w16 = nil // only the packed copy is read
		}
	}
	n.Data = d
	return nil
}

// pack folds zero points into the bias (and offsets uint8 filters).
func (d *convData) pack(filter, bias *tensor.Tensor) {
	switch d.dtype {
	case tensor.Float32:
		if bias == nil {
			clear(d.biasF)
		} else {
			copy(d.biasF, bias.Float32s())
		}
		if d.hybrid {
			hybridRowSums(filter, d.k, d.rowSums, d.filterScale)
		}
		if d.fp != nil {
			packF32(d.fp, filter.Float32s(), d.outC, d.k)
		}
	case tensor.Int8:
		biasValues32(bias, d.bias32)
		foldZP(filter.Int8s(), d.bias32, d.k, d.inZP)
		if d.qb != nil {
			d.qbPack(filter)
		} else if d.q16 != nil {
			packQ16(d.q16, filter.Int8s(), d.outC, d.k)
		} else if d.packed {
			packGroups(d.wp, filter.Int8s(), d.outC, d.groups, d.k)
		}
	case tensor.Uint8:
		biasValues32(bias, d.bias32)
		offsetWeights(d.w16, filter.Uint8s(), int16(filter.ZeroPoint()))
		foldZP(d.w16, d.bias32, d.k, d.inZP)
		if d.qb != nil {
			d.qbPack(filter)
		} else if d.q16 != nil {
			packQ16(d.q16, d.w16, d.outC, d.k)
		} else if d.packed {
			packGroups(d.wp, d.w16, d.outC, d.groups, d.k)
		}
	case tensor.Int16:
		biasValues64(bias, d.bias64)
	}
}

// packGroups packs each group's filters in channel pairs.
func packGroups[TB int8 | int16](dst []int64, w []TB, outC, groups, k int) {
	cpg := outC / groups
	per := (cpg + 1) / 2 * k
	for g := 0; g < groups; g++ {
		packPairs(dst[g*per:(g+1)*per], w[g*cpg*k:(g+1)*cpg*k], cpg, k)
	}
}

// foldZP subtracts inZP*sum(row) from each channel's bias, so the GEMM can
// multiply raw input values (padding taps then hold inZP).
func foldZP[T int8 | int16](w []T, bias []int32, k int, inZP int32) {
	if inZP == 0 {
		return
	}
	for c := range bias {
		var s int32
		for _, v := range w[c*k : c*k+k] {
			s += int32(v)
		}
		bias[c] -= inZP * s
	}
}

func evalConv2D(ctx *kernels.Context, n *kernels.Node) error {
	d, ok := n.Data.(*convData)
	if !ok {
		return n.Errorf("not prepared")
	}
	in, filter, bias, out := n.Inputs[0], n.Inputs[1], n.Input(2), n.Outputs[0]
	if d.dynamic {
		d.pack(filter, bias)
	}
	d.scratch = nil
	if d.workerBytes+d.hybridBytes > 0 {
		d.scratch, d.stride = ctx.WorkerScratch(d.workers, d.workerBytes, d.hybridBytes)
	}
	d.x, d.y = in.Data, out.Data
	d.w = filter.Data
	threads := min(ctx.Threads, d.workers)
	work := int64(d.rows) * int64(d.outC) * int64(d.k)
	switch {
	case d.hybrid:
		d.quantizeInput()
		parallel(ctx, threads, work, d.rows, d.tile, d, convHybridWorker)
	// The workers take any range of rows (tiles within it), so threads
	// split in units of kernels.BandRows, not of tiles: a 7×7 layer has
	// fewer rows than one tile, and in a kernels.Region the parts then
	// line up with the depthwise and byte-GEMM neighbours'.
	case d.dtype == tensor.Float32:
		parallel(ctx, threads, work, d.rows, kernels.BandRows, d, convFloatWorker)
	case d.qb != nil:
		d.runQB(ctx, threads, work)
	case d.q16 != nil && d.dtype == tensor.Int8:
		parallel(ctx, threads, work, d.rows, kernels.BandRows, d, convQ16Worker[int8])
	case d.q16 != nil && d.dtype == tensor.Uint8:
		parallel(ctx, threads, work, d.rows, kernels.BandRows, d, convQ16Worker[uint8])
	case d.dtype == tensor.Int8:
		parallel(ctx, threads, work, d.rows, kernels.BandRows, d, convIntWorker[int8, int8])
	case d.dtype == tensor.Uint8:
		parallel(ctx, threads, work, d.rows, kernels.BandRows, d, convIntWorker[uint8, int16])
	case d.dtype == tensor.Int16:
		parallel(ctx, threads, work, d.rows, kernels.BandRows, d, convInt16Worker)
	}
	return nil
}

// runQB runs the byte GEMM convolution, split along rows in chunks of
// whole microkernel calls (not tiles, so that layers with few pixels
// still split evenly) or along channel blocks (see qbChanSplit).
func (d *convData) runQB(ctx *kernels.Context, threads int, work int64) {
	d.evalSeq++
	switch chans := d.qbChanSplit(threads); {
	case chans && d.dtype == tensor.Int8:
		parallel(ctx, threads, work, d.np/qbNR, 2, d, convQBChanWorker[int8])
	case chans:
		parallel(ctx, threads, work, d.np/qbNR, 2, d, convQBChanWorker[uint8])
	case d.dtype == tensor.Int8:
		parallel(ctx, threads, work, d.rows, qbMR, d, convQBWorker[int8])
	default:
		parallel(ctx, threads, work, d.rows, qbMR, d, convQBWorker[uint8])
	}
}

func convFloatWorker(d *convData, wk, lo, hi int) {
	g := &d.geom
	x, w, y := tensor.View[float32](d.x), tensor.View[float32](d.w), tensor.View[float32](d.y)
	col := tensor.View[float32](d.scratch[wk*g.stride : wk*g.stride+g.im2colBytes])
	cpg := g.outC / g.groups
	for r0 := lo; r0 < hi; r0 += g.tile {
		r1 := min(r0+g.tile, hi)
		for gr := 0; gr < g.groups; gr++ {
			a := col
			if g.direct {
				a = x[r0*g.k:]
			} else {
				im2col(g, x, col, r0, r1, gr*g.fc, 0)
			}
			if d.fp != nil {
				gemmF32Kernel(a, g.k, d.fp, d.biasF, y[r0*g.outC:], r1-r0, g.outC, g.outC, d.lo, d.hi)
				continue
			}
			gemmFloat(a, w[gr*cpg*g.k:], d.biasF[gr*cpg:], y[r0*g.outC+gr*cpg:], r1-r0, cpg, g.k, g.outC, d.lo, d.hi)
		}
	}
}

func convInt16Worker(d *convData, wk, lo, hi int) {
	g := &d.geom
	x, w, y := tensor.View[int16](d.x), tensor.View[int8](d.w), tensor.View[int16](d.y)
	base := d.scratch[wk*g.stride:]
	col := tensor.View[int16](base[:g.im2colBytes])
	acc := tensor.View[int64](base[g.im2colBytes : g.im2colBytes+g.accBytesPW])
	cpg := g.outC / g.groups
	for r0 := lo; r0 < hi; r0 += g.tile {
		r1 := min(r0+g.tile, hi)
		for gr := 0; gr < g.groups; gr++ {
			a := col
			if g.direct {
				a = x[r0*g.k:]
			} else {
				im2col(g, x, col, r0, r1, gr*g.fc, 0)
			}
			gemmInt64(a, w[gr*cpg*g.k:], d.bias64[gr*cpg:], acc[gr*cpg:], r1-r0, cpg, g.k, g.outC)
		}
		for r := r0; r < r1; r++ {
			requantRow64(d.rq, 0, acc[(r-r0)*g.outC:(r-r0+1)*g.outC], y[r*g.outC:(r+1)*g.outC])
		}
	}
}

// convIntWorker runs the 8-bit convolution on output rows [lo, hi):
// im2col blocks (input zero point as padding), int32 GEMM, per-channel
// requantization.
func convIntWorker[TA int8 | uint8, TB int8 | int16](d *convData, wk, lo, hi int) {
	g := &d.geom
	x, y := tensor.View[TA](d.x), tensor.View[TA](d.y)
	var w []TB
	if d.dtype == tensor.Uint8 {
		w = tensor.View[TB](int16Bytes(d.w16))
	} else {
		w = tensor.View[TB](d.w)
	}
	padVal := TA(d.inZP)
	base := d.scratch[wk*g.stride:]
	col := tensor.View[TA](base[:g.im2colBytes])
	acc := tensor.View[int32](base[g.im2colBytes : g.im2colBytes+g.accBytesPW])
	cpg := g.outC / g.groups
	for r0 := lo; r0 < hi; r0 += g.tile {
		r1 := min(r0+g.tile, hi)
		for gr := 0; gr < g.groups; gr++ {
			a := col
			if g.direct {
				a = x[r0*g.k:]
			} else {
				im2col(g, x, col, r0, r1, gr*g.fc, padVal)
			}
			if d.packed {
				per := (cpg + 1) / 2 * g.k
				gemmPacked(a, d.wp[gr*per:(gr+1)*per], d.bias32[gr*cpg:], acc[gr*cpg:], r1-r0, cpg, g.k, g.outC)
			} else {
				gemmInt(a, w[gr*cpg*g.k:], d.bias32[gr*cpg:], acc[gr*cpg:], r1-r0, cpg, g.k, g.outC)
			}
		}
		for r := r0; r < r1; r++ {
			requantRowV(d.rq, d.rv, 0, acc[(r-r0)*g.outC:(r-r0+1)*g.outC], y[r*g.outC:(r+1)*g.outC])
		}
	}
}

// convQ16Worker is convIntWorker on the SIMD GEMM: im2col blocks are
// widened to int16 rows, multiplied with the packed filters and
// requantized while still in cache.
func convQ16Worker[TA int8 | uint8](d *convData, wk, lo, hi int) {
	g := &d.geom
	x, y := tensor.View[TA](d.x), tensor.View[TA](d.y)
	padVal := TA(d.inZP)
	base := d.scratch[wk*g.stride : (wk+1)*g.stride]
	acc := tensor.View[int32](base[:g.accBytesPW])
	a16 := int16View(base[g.accBytesPW:])
	for r0 := lo; r0 < hi; r0 += g.tile {
		r1 := min(r0+g.tile, hi)
		if g.direct {
			widenRows(a16, x[r0*g.k:], r1-r0, g.k, g.k)
		} else {
			im2colQ16(g, x, a16, r0, r1, int16(padVal), d.kp)
		}
		q16Gemm(a16, d.kp, d.q16, d.bias32, acc, r1-r0, g.outC, g.outC)
		requantRowsV(d.rq, d.rv, 0, acc, g.outC, y[r0*g.outC:], g.outC, g.outC, r1-r0)
	}
}

// im2colQ16 is im2col for the SIMD GEMM: it writes the receptive fields
// of output rows [r0, r1) widened to int16, rows of kp values (the last
// one zero when kp > k).
func im2colQ16[T int8 | uint8](g *geom, x []T, dst []int16, r0, r1 int, padVal int16, kp int) {
	perImage := g.outH * g.outW
	for r := r0; r < r1; r++ {
		row := dst[(r-r0)*kp : (r-r0+1)*kp]
		if kp > g.k {
			row[g.k] = 0
		}
		pos := 0
		b := r / perImage
		rem := r - b*perImage
		oy := rem / g.outW
		ox := rem - oy*g.outW
		iy0 := oy*g.sh - g.padT
		ix0 := ox*g.sw - g.padL
		for ky := 0; ky < g.kh; ky++ {
			iy := iy0 + ky*g.dh
			if iy < 0 || iy >= g.inH {
				seg := row[pos : pos+g.kw*g.fc]
				for i := range seg {
					seg[i] = padVal
				}
				pos += len(seg)
				continue
			}
			rowBase := ((b*g.inH + iy) * g.inW) * g.inC
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
				src := x[rowBase+ix*g.inC : rowBase+ix*g.inC+g.fc]
				if len(src) >= 16 {
					widen(seg, src)
					continue
				}
				for i, v := range src {
					seg[i] = int16(v)
				}
			}
		}
	}
}

// hybridViews returns the quantized input and the per-batch scaling
// factors and zero points, held in scratch after the workers' blocks.
func (d *convData) hybridViews() ([]int8, []float32, []int32) {
	base := d.scratch[d.workers*d.stride:]
	qb := align64(d.batch * d.inH * d.inW * d.inC)
	sb := align64(d.batch * 4)
	return tensor.View[int8](base[:qb]), tensor.View[float32](base[qb : qb+sb]), tensor.View[int32](base[qb+sb : qb+2*sb])
}

// quantizeInput quantizes each batch of the float input to int8 as
// TensorFlow Lite's hybrid convolution does: asymmetrically with
// per-channel filters, symmetrically with a per-tensor filter scale.
func (d *convData) quantizeInput() {
	q, sf, off := d.hybridViews()
	x := tensor.View[float32](d.x)
	size := d.inH * d.inW * d.inC
	perChannel := len(d.filterScale) > 0 && d.perChannelHybrid
	for b := 0; b < d.batch; b++ {
		quantizeRow(x[b*size:(b+1)*size], q[b*size:(b+1)*size], perChannel, &sf[b], &off[b])
	}
}

// convHybridWorker runs the int8 GEMM on quantized inputs and rescales the
// int32 sums to float with the batch's and the channel's scales.
func convHybridWorker(d *convData, wk, lo, hi int) {
	g := &d.geom
	q, sf, off := d.hybridViews()
	w, y := tensor.View[int8](d.w), tensor.View[float32](d.y)
	base := d.scratch[wk*g.stride:]
	col := tensor.View[int8](base[:g.im2colBytes])
	acc := tensor.View[int32](base[g.im2colBytes : g.im2colBytes+g.accBytesPW])
	perImage := g.outH * g.outW
	cpg := g.outC / g.groups
	for r0 := lo; r0 < hi; {
		b := r0 / perImage
		r1 := min(r0+g.tile, hi, (b+1)*perImage)
		for gr := 0; gr < g.groups; gr++ {
			a := col
			if g.direct {
				a = q[r0*g.k:]
			} else {
				im2col(g, q, col, r0, r1, gr*g.fc, int8(off[b]))
			}
			gemmInt(a, w[gr*cpg*g.k:], d.zeroBias[gr*cpg:], acc[gr*cpg:], r1-r0, cpg, g.k, g.outC)
		}
		for r := r0; r < r1; r++ {
			ar := acc[(r-r0)*g.outC : (r-r0+1)*g.outC]
			yr := y[r*g.outC : (r+1)*g.outC]
			if d.perChannelHybrid {
				for c, v := range ar {
					v -= off[b] * d.rowSums[c]
					yr[c] = clampF(float32(v)*d.filterScale[c]*sf[b]+d.biasF[c], d.lo, d.hi)
				}
			} else {
				for c, v := range ar {
					yr[c] = clampF(d.biasF[c]+float32(v)*(sf[b]*d.filterScale[c]), d.lo, d.hi)
				}
			}
		}
		r0 = r1
	}
}

// im2col writes the receptive fields of output rows [r0, r1) (flattened
// batch, y, x) for input channels [c0, c0+fc) into dst, one row of
// kh*kw*fc values per output pixel; taps outside the image get padVal.
func im2col[T any](g *geom, x []T, dst []T, r0, r1, c0 int, padVal T) {
	pos := 0
	perImage := g.outH * g.outW
	for r := r0; r < r1; r++ {
		b := r / perImage
		rem := r - b*perImage
		oy := rem / g.outW
		ox := rem - oy*g.outW
		iy0 := oy*g.sh - g.padT
		ix0 := ox*g.sw - g.padL
		for ky := 0; ky < g.kh; ky++ {
			iy := iy0 + ky*g.dh
			if iy < 0 || iy >= g.inH {
				seg := dst[pos : pos+g.kw*g.fc]
				for i := range seg {
					seg[i] = padVal
				}
				pos += len(seg)
				continue
			}
			rowBase := ((b*g.inH + iy) * g.inW) * g.inC
			for kx := 0; kx < g.kw; kx++ {
				ix := ix0 + kx*g.dw
				seg := dst[pos : pos+g.fc]
				pos += g.fc
				if ix < 0 || ix >= g.inW {
					for i := range seg {
						seg[i] = padVal
					}
					continue
				}
				off := rowBase + ix*g.inC + c0
				copy(seg, x[off:off+g.fc])
			}
		}
	}
}
