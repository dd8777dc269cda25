package conv

import (
	"math"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
)

func init() {
	kernels.RegisterBuiltin(schema.OpFullyConnected, kernels.Kernel{Prepare: prepareFC, Eval: evalFC})
}

// fcData is FULLY_CONNECTED's prepared state. The layer is one GEMM:
// rows (batch) x units, reduced over depth.
type fcData struct {
	rows, units, depth int
	dtype              tensor.DType
	hybrid             bool
	asymmetric         bool // hybrid with asymmetric input quantization
	dynamic            bool
	tile               int
	workers            int
	workerBytes        int
	stride             int // between workers' scratch (Context.WorkerScratch)
	hybridBytes        int // quantized input rows + per-row scale and offset
	lo, hi             float32
	biasF              []float32
	w16                []int16 // filters minus their zero point (uint8, or int8 with a zero point)
	useW16             bool
	bias32             []int32
	bias64             []int64
	rowSums            []int32 // hybrid: per-unit filter sums
	zeroBias           []int32
	filterScale        []float32
	inZP               int32
	rq                 *requant
	// q16 holds the weights packed for the SIMD GEMM (see packQ16) when
	// it runs; kp is the widened row length, a16Bytes each worker's
	// widened input rows, rv the SIMD requantization parameters.
	q16      []int16
	kp       int
	a16Bytes int
	rv       *rqVec
	fp       []float32 // float weights packed for the SIMD GEMM (packF32)
	// conv runs an 8-bit layer as a 1x1 convolution on the byte GEMM
	// (batch rows, units channels) when the CPU has it.
	conv *convData
	// per-Eval views
	x, w, y, scratch []byte
}

func prepareFC(ctx *kernels.Context, n *kernels.Node) error {
	if err := n.CheckArity(2, 3, 1); err != nil {
		return err
	}
	opts, _ := n.Options.(*schema.FullyConnectedOptions)
	if opts == nil {
		opts = &schema.FullyConnectedOptions{}
	}
	if opts.WeightsFormat != 0 {
		return n.Errorf("weights format %d (shuffled) is not supported, expected 0 (default)", opts.WeightsFormat)
	}
	if err := checkActivation(n, opts.Activation); err != nil {
		return err
	}
	in, filter, bias, out := n.Inputs[0], n.Inputs[1], n.Input(2), n.Outputs[0]
	if filter.Rank() != 2 {
		return n.Errorf("weights have shape %s, expected rank 2 [units, depth]", tensor.ShapeString(filter.Shape))
	}
	d := &fcData{units: filter.Shape[0], depth: filter.Shape[1], dtype: in.Type}
	total := in.NumElements()
	if d.depth == 0 {
		if total != 0 {
			return n.Errorf("weights have depth 0 but the input has %d elements", total)
		}
	} else {
		if total%d.depth != 0 {
			return n.Errorf("input shape %s has %d elements, not a multiple of the weights' depth %d", tensor.ShapeString(in.Shape), total, d.depth)
		}
		d.rows = total / d.depth
	}
	if bias != nil && bias.NumElements() != d.units {
		return n.Errorf("bias has %d elements (shape %s), expected %d (units)", bias.NumElements(), tensor.ShapeString(bias.Shape), d.units)
	}
	var outShape []int
	if opts.KeepNumDims {
		if in.Rank() == 0 || in.Shape[in.Rank()-1] != d.depth {
			return n.Errorf("keep_num_dims needs the input's last dimension (shape %s) to equal the weights' depth %d", tensor.ShapeString(in.Shape), d.depth)
		}
		outShape = append(append([]int{}, in.Shape[:in.Rank()-1]...), d.units)
	} else {
		outShape = []int{d.rows, d.units}
	}
	if err := ctx.ResizeOutput(out, outShape); err != nil {
		return n.Errorf("output: %v", err)
	}
	d.dynamic = !ctx.Known(filter) || (bias != nil && !ctx.Known(bias))
	accElem := 0
	switch in.Type {
	case tensor.Float32:
		if err := sameType(n, "output", out, tensor.Float32); err != nil {
			return err
		}
		if bias != nil {
			if err := sameType(n, "bias", bias, tensor.Float32); err != nil {
				return err
			}
		}
		d.lo, d.hi = floatAct(opts.Activation)
		d.biasF = make([]float32, d.units)
		switch filter.Type {
		case tensor.Float32:
			if useSIMD && !ctx.PortableFloat && gemmF32Kernel != nil && d.depth > 0 {
				d.fp = make([]float32, f32Len(d.units, d.depth))
			}
		case tensor.Int8:
			d.hybrid = true
			d.asymmetric = opts.AsymmetricQuantizeInputs
			if !filter.IsQuantized() {
				return n.Errorf("hybrid int8 weights carry no scale")
			}
			d.filterScale = make([]float32, d.units)
			if filter.Quant.PerChannel() && (len(filter.Quant.Scale) != d.units || filter.Quant.Dim != 0) {
				return n.Errorf("weights have %d scales along dimension %d, expected 1 or %d along dimension 0", len(filter.Quant.Scale), filter.Quant.Dim, d.units)
			}
			d.rowSums = make([]int32, d.units)
			d.zeroBias = make([]int32, d.units)
			d.useQ16()
			d.hybridBytes = align64(d.rows*d.depth) + align64(d.rows*4)*2
			accElem = 4
		default:
			return n.Errorf("weights have type %s, expected float32 or int8 (hybrid)", filter.Type)
		}
	case tensor.Int8, tensor.Uint8, tensor.Int16:
		if err := quantizedTypes(n, in, filter, bias, out, "weights"); err != nil {
			return err
		}
		rq, err := newRequant(n, in, filter, out, d.units, 0, true, opts.Activation)
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
			d.bias64 = make([]int64, d.units)
			accElem = 8
		} else {
			d.bias32 = make([]int32, d.units)
			d.useW16 = in.Type == tensor.Uint8 || (filter.ZeroPoint() != 0 && !filter.Quant.PerChannel())
			if d.useW16 {
				d.w16 = make([]int16, filter.NumElements())
			}
			d.useQ16()
			d.rv = newRQVec(rq)
			accElem = 4
		}
	default:
		return n.Errorf("input type %s is not supported (expected float32, int8, uint8 or int16)", in.Type)
	}
	if useSIMD && qbKernel32 != nil && !d.dynamic && d.depth > 0 && d.rows > 0 &&
		(in.Type == tensor.Uint8 || (in.Type == tensor.Int8 && !d.useW16)) {
		d.conv = d.qbConv(ctx)
		d.q16 = nil
	}
	d.tile = max(1, min(16, d.rows))
	d.workers = ctx.Threads
	if d.q16 != nil {
		d.a16Bytes = align64(d.tile * d.kp * 2)
	}
	d.workerBytes = align64(d.tile*d.units*accElem) + d.a16Bytes
	ctx.RequestWorkerScratch(d.workers, d.workerBytes, d.hybridBytes)
	if !d.dynamic {
		d.pack(filter, bias)
	}
	n.Data = d
	return nil
}

func (d *fcData) pack(filter, bias *tensor.Tensor) {
	if d.dtype == tensor.Float32 {
		if bias == nil {
			clear(d.biasF)
		} else {
			copy(d.biasF, bias.Float32s())
		}
		if d.fp != nil {
			packF32(d.fp, filter.Float32s(), d.units, d.depth)
		}
		if d.hybrid {
			hybridRowSums(filter, d.depth, d.rowSums, d.filterScale)
			if d.q16 != nil {
				packQ16(d.q16, filter.Int8s(), d.units, d.depth)
			}
		}
		return
	}
	if d.dtype == tensor.Int16 {
		biasValues64(bias, d.bias64)
		return
	}
	biasValues32(bias, d.bias32)
	if d.useW16 {
		zw := int16(filter.ZeroPoint())
		if d.dtype == tensor.Uint8 {
			offsetWeights(d.w16, filter.Uint8s(), zw)
		} else {
			offsetWeights(d.w16, filter.Int8s(), zw)
		}
		foldZP(d.w16, d.bias32, d.depth, d.inZP)
		if d.q16 != nil {
			packQ16(d.q16, d.w16, d.units, d.depth)
		}
		if c := d.conv; c != nil {
			// uint8 (an int8 layer with a filter zero point has no conv)
			copy(c.biasQB, d.bias32)
			c.qbRowMul = qbPackUint8(c.qb, c.biasQB, d.w16, filter.ZeroPoint(), d.units, d.depth)
		}
		return
	}
	foldZP(filter.Int8s(), d.bias32, d.depth, d.inZP)
	if d.q16 != nil {
		packQ16(d.q16, filter.Int8s(), d.units, d.depth)
	}
	if c := d.conv; c != nil {
		copy(c.biasQB, d.bias32)
		qbPackInt8(c.qb, c.biasQB, filter.Int8s(), d.units, d.depth)
	}
}

// qbConv returns the layer as a 1x1 convolution over rows x 1 x 1 x depth
// on the byte GEMM, with the layer's requantization; pack fills its
// weights and bias.
func (d *fcData) qbConv(ctx *kernels.Context) *convData {
	g := geom{batch: d.rows, inH: 1, inW: 1, inC: d.depth, outH: 1, outW: 1, outC: d.units,
		kh: 1, kw: 1, fc: d.depth, groups: 1, sh: 1, sw: 1, dh: 1, dw: 1,
		k: d.depth, rows: d.rows, direct: true}
	c := &convData{geom: g, dtype: d.dtype, inZP: d.inZP, rq: d.rq, rv: d.rv}
	c.qbPrepare()
	g = c.geom
	g.workers = ctx.Threads
	g.workerBytes = g.accBytesPW + g.a16Bytes
	c.geom = g
	c.prepared = perWorker[uint32](g.workers, 1)
	ctx.RequestWorkerScratch(g.workers, g.workerBytes, 0)
	return c
}

// useQ16 selects the SIMD GEMM when this build and CPU have one.
func (d *fcData) useQ16() {
	if useSIMD && qgemmKernel != nil && d.depth > 0 {
		d.kp = q16Even(d.depth)
		d.q16 = make([]int16, q16Len(d.units, d.depth))
	}
}

func evalFC(ctx *kernels.Context, n *kernels.Node) error {
	d, ok := n.Data.(*fcData)
	if !ok {
		return n.Errorf("not prepared")
	}
	in, filter, bias, out := n.Inputs[0], n.Inputs[1], n.Input(2), n.Outputs[0]
	if d.dynamic {
		d.pack(filter, bias)
	}
	d.scratch, d.stride = ctx.WorkerScratch(d.workers, d.workerBytes, d.hybridBytes)
	d.x, d.w, d.y = in.Data, filter.Data, out.Data
	if d.useW16 {
		d.w = int16Bytes(d.w16)
	}
	threads := min(ctx.Threads, d.workers)
	work := int64(d.rows) * int64(d.units) * int64(d.depth)
	// Split output units across workers (batch is often 1).
	const minChunk = 16
	blocks := (d.units + q16NR - 1) / q16NR
	if c := d.conv; c != nil {
		c.scratch, c.stride = ctx.WorkerScratch(c.workers, c.workerBytes, 0)
		c.x, c.y = in.Data, out.Data
		c.runQB(ctx, threads, work)
		return nil
	}
	switch {
	case d.hybrid && d.q16 != nil:
		d.quantizeRows()
		parallel(ctx, threads, work, blocks, 1, d, fcHybridQ16Worker)
	case d.hybrid:
		d.quantizeRows()
		parallel(ctx, threads, work, d.units, minChunk, d, fcHybridWorker)
	case d.q16 != nil && d.dtype == tensor.Int8:
		parallel(ctx, threads, work, blocks, 1, d, fcQ16Worker[int8])
	case d.q16 != nil && d.dtype == tensor.Uint8:
		parallel(ctx, threads, work, blocks, 1, d, fcQ16Worker[uint8])
	case d.fp != nil:
		parallel(ctx, threads, work, blocks, 1, d, fcF32Worker)
	case d.dtype == tensor.Float32:
		parallel(ctx, threads, work, d.units, minChunk, d, fcFloatWorker)
	case d.dtype == tensor.Int8 && d.useW16:
		parallel(ctx, threads, work, d.units, minChunk, d, fcIntWorker[int8, int16])
	case d.dtype == tensor.Int8:
		parallel(ctx, threads, work, d.units, minChunk, d, fcIntWorker[int8, int8])
	case d.dtype == tensor.Uint8:
		parallel(ctx, threads, work, d.units, minChunk, d, fcIntWorker[uint8, int16])
	case d.dtype == tensor.Int16:
		parallel(ctx, threads, work, d.units, minChunk, d, fcInt16Worker)
	}
	return nil
}

func fcFloatWorker(d *fcData, _, lo, hi int) {
	x, w, y := tensor.View[float32](d.x), tensor.View[float32](d.w), tensor.View[float32](d.y)
	if hi <= lo || d.rows == 0 {
		return
	}
	if d.depth == 0 {
		for r := 0; r < d.rows; r++ {
			for u := lo; u < hi; u++ {
				y[r*d.units+u] = clampF(d.biasF[u], d.lo, d.hi)
			}
		}
		return
	}
	gemmFloat(x, w[lo*d.depth:], d.biasF[lo:], y[lo:], d.rows, hi-lo, d.depth, d.units, d.lo, d.hi)
}

func fcIntWorker[TA int8 | uint8, TB int8 | int16](d *fcData, wk, lo, hi int) {
	x, w, y := tensor.View[TA](d.x), tensor.View[TB](d.w), tensor.View[TA](d.y)
	if hi <= lo {
		return
	}
	acc := tensor.View[int32](d.scratch[wk*d.stride : (wk+1)*d.stride])
	nu := hi - lo
	for r0 := 0; r0 < d.rows; r0 += d.tile {
		r1 := min(r0+d.tile, d.rows)
		gemmInt(x[r0*d.depth:], w[lo*d.depth:], d.bias32[lo:], acc, r1-r0, nu, d.depth, nu)
		for r := r0; r < r1; r++ {
			requantRow(d.rq, lo, acc[(r-r0)*nu:(r-r0+1)*nu], y[r*d.units+lo:r*d.units+hi])
		}
	}
}

// fcF32Worker is fcFloatWorker on the SIMD GEMM for packed blocks
// [blo, bhi) of q16NR units.
func fcF32Worker(d *fcData, _, blo, bhi int) {
	lo, hi := blo*q16NR, min(bhi*q16NR, d.units)
	if hi <= lo || d.rows == 0 {
		return
	}
	x, y := tensor.View[float32](d.x), tensor.View[float32](d.y)
	gemmF32Kernel(x, d.depth, d.fp[blo*d.depth*q16NR:], d.biasF[lo:], y[lo:], d.rows, hi-lo, d.units, d.lo, d.hi)
}

// fcQ16Worker is fcIntWorker on the SIMD GEMM for packed blocks
// [blo, bhi) of q16NR units.
func fcQ16Worker[TA int8 | uint8](d *fcData, wk, blo, bhi int) {
	lo, hi := blo*q16NR, min(bhi*q16NR, d.units)
	if hi <= lo {
		return
	}
	x, y := tensor.View[TA](d.x), tensor.View[TA](d.y)
	base := d.scratch[wk*d.stride : (wk+1)*d.stride]
	acc := tensor.View[int32](base[:len(base)-d.a16Bytes])
	a16 := int16View(base[len(base)-d.a16Bytes:])
	nu := hi - lo
	wp := d.q16[blo*d.kp*q16NR:]
	for r0 := 0; r0 < d.rows; r0 += d.tile {
		r1 := min(r0+d.tile, d.rows)
		widenRows(a16, x[r0*d.depth:], r1-r0, d.depth, d.depth)
		q16Gemm(a16, d.kp, wp, d.bias32[lo:], acc, r1-r0, nu, nu)
		requantRowsV(d.rq, d.rv, lo, acc, nu, y[r0*d.units+lo:], d.units, nu, r1-r0)
	}
}

// fcHybridQ16Worker runs fcHybridWorker on packed blocks [blo, bhi).
func fcHybridQ16Worker(d *fcData, wk, blo, bhi int) {
	fcHybridWorker(d, wk, blo*q16NR, min(bhi*q16NR, d.units))
}

func fcInt16Worker(d *fcData, wk, lo, hi int) {
	x, w, y := tensor.View[int16](d.x), tensor.View[int8](d.w), tensor.View[int16](d.y)
	if hi <= lo {
		return
	}
	acc := tensor.View[int64](d.scratch[wk*d.stride : (wk+1)*d.stride])
	nu := hi - lo
	for r0 := 0; r0 < d.rows; r0 += d.tile {
		r1 := min(r0+d.tile, d.rows)
		gemmInt64(x[r0*d.depth:], w[lo*d.depth:], d.bias64[lo:], acc, r1-r0, nu, d.depth, nu)
		for r := r0; r < r1; r++ {
			requantRow64(d.rq, lo, acc[(r-r0)*nu:(r-r0+1)*nu], y[r*d.units+lo:r*d.units+hi])
		}
	}
}

// hybridViews returns the quantized input rows, their scaling factors and
// their zero points in scratch (after the workers' accumulators).
func (d *fcData) hybridViews() ([]int8, []float32, []int32) {
	base := d.scratch[d.workers*d.stride:]
	qb := align64(d.rows * d.depth)
	sb := align64(d.rows * 4)
	return tensor.View[int8](base[:qb]), tensor.View[float32](base[qb : qb+sb]), tensor.View[int32](base[qb+sb : qb+2*sb])
}

// quantizeRows quantizes each float input row to int8 as TFLite's hybrid
// kernels do: symmetric (max |x| maps to 127) or asymmetric (min/max with
// a nudged zero point).
func (d *fcData) quantizeRows() {
	q, sf, off := d.hybridViews()
	x := tensor.View[float32](d.x)
	for r := 0; r < d.rows; r++ {
		row := x[r*d.depth : (r+1)*d.depth]
		qr := q[r*d.depth : (r+1)*d.depth]
		quantizeRow(row, qr, d.asymmetric, &sf[r], &off[r])
	}
}

// quantizeRow quantizes one float row to int8 like TFLite's
// tensor_utils: symmetric (max |x| maps to 127, zero point 0) or
// asymmetric (min/max including 0, nudged zero point).
func quantizeRow(row []float32, qr []int8, asymmetric bool, sf *float32, off *int32) {
	var mn, mx float32
	if len(row) > 0 {
		mn, mx = row[0], row[0]
	}
	for _, v := range row {
		mn = min(mn, v)
		mx = max(mx, v)
	}
	if asymmetric {
		*sf, *off = asymmetricQuantize(row, qr, mn, mx)
		return
	}
	*off = 0
	rng := max(float32(math.Abs(float64(mn))), float32(math.Abs(float64(mx))))
	if rng == 0 {
		clear(qr)
		*sf = 1
		return
	}
	*sf = rng / 127
	inv := 127 / rng
	for i, v := range row {
		qv := int32(roundF(v * inv))
		qr[i] = int8(min(127, max(-127, qv)))
	}
}

func asymmetricQuantize(row []float32, qr []int8, mn, mx float32) (float32, int32) {
	rmin := float64(min(0, mn))
	rmax := float64(max(0, mx))
	if rmin == rmax {
		clear(qr)
		return 1, 0
	}
	const qmin, qmax = -128.0, 127.0
	scale := (rmax - rmin) / (qmax - qmin)
	zpMin := qmin - rmin/scale
	zpMax := qmax - rmax/scale
	errMin := math.Abs(qmin) + math.Abs(rmin/scale)
	errMax := math.Abs(qmax) + math.Abs(rmax/scale)
	zpd := zpMax
	if errMin < errMax {
		zpd = zpMin
	}
	var zp int32
	switch {
	case zpd <= qmin:
		zp = -128
	case zpd >= qmax:
		zp = 127
	default:
		zp = int32(math.Round(zpd))
	}
	sf := float32(scale)
	inv := 1 / sf
	for i, v := range row {
		qv := int32(roundF(float32(zp) + v*inv))
		qr[i] = int8(min(127, max(-128, qv)))
	}
	return sf, zp
}

// roundF rounds half away from zero in float32 (C's roundf).
func roundF(v float32) float32 { return float32(math.Round(float64(v))) }

func fcHybridWorker(d *fcData, wk, lo, hi int) {
	if hi <= lo {
		return
	}
	q, sf, off := d.hybridViews()
	w, y := tensor.View[int8](d.w), tensor.View[float32](d.y)
	acc := tensor.View[int32](d.scratch[wk*d.stride : (wk+1)*d.stride])
	nu := hi - lo
	for r0 := 0; r0 < d.rows; r0 += d.tile {
		r1 := min(r0+d.tile, d.rows)
		switch {
		case d.q16 != nil:
			a16 := int16View(d.scratch[(wk+1)*d.stride-d.a16Bytes : (wk+1)*d.stride])
			widenRows(a16, q[r0*d.depth:], r1-r0, d.depth, d.depth)
			q16Gemm(a16, d.kp, d.q16[lo/q16NR*d.kp*q16NR:], d.zeroBias[:nu], acc, r1-r0, nu, nu)
		case d.depth > 0:
			gemmInt(q[r0*d.depth:], w[lo*d.depth:], d.zeroBias[:nu], acc, r1-r0, nu, d.depth, nu)
		default:
			clear(acc[:(r1-r0)*nu])
		}
		for r := r0; r < r1; r++ {
			a := acc[(r-r0)*nu : (r-r0+1)*nu]
			yr := y[r*d.units+lo : r*d.units+hi]
			for i, dot := range a {
				u := lo + i
				dot -= d.rowSums[u] * off[r]
				yr[i] = clampF(d.biasF[u]+float32(dot)*(sf[r]*d.filterScale[u]), d.lo, d.hi)
			}
		}
	}
}
