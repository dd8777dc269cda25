package reduce

import (
	"math"
	"unsafe"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/quant"
)

func init() {
	kernels.RegisterBuiltin(schema.OpMean, kernels.Kernel{Prepare: prepareMean, Eval: evalReduce})
	kernels.RegisterBuiltin(schema.OpSum, kernels.Kernel{Prepare: prepareSum, Eval: evalReduce})
	kernels.RegisterBuiltin(schema.OpReduceMax, kernels.Kernel{Prepare: prepareMax, Eval: evalReduce})
}

type reduceOp int

const (
	opMean reduceOp = iota
	opSum
	opMax
)

// quantMode selects how a quantized MEAN or SUM produces its output.
type quantMode int

const (
	// qRaw reduces the raw integer values in the element type (SUM with
	// identical input and output quantization, REDUCE_MAX).
	qRaw quantMode = iota
	// qMean4D is TensorFlow Lite's optimized 4-D mean over height and
	// width: sum * M + bias with a float-derived multiplier.
	qMean4D
	// qMeanTrunc is the mean of the raw values with unchanged quantization:
	// the int32 sum divided by the count, truncated toward zero.
	qMeanTrunc
	// qMeanFloat and qSumFloat are TensorFlow Lite's QuantizedMeanOrSum:
	// the int32 sum rescaled in float32 and rounded half away from zero.
	qMeanFloat
	qSumFloat
)

// reduceData is the prepared state of a reduction node.
type reduceData struct {
	op       reduceOp
	keepDims bool
	// axes are the normalized, de-duplicated reduced dimensions.
	axes    []int
	reduced []bool
	// The input is viewed with adjacent dimensions of the same kind
	// (reduced or kept) merged: dims, with outStride the output stride of
	// each merged dimension (0 if reduced). The last merged dimension is
	// processed as contiguous runs of runLen elements.
	dims        []int
	outStride   []int
	counter     []int
	runLen      int
	lastReduced bool
	outCount    int
	count       int // elements reduced into each output
	mode        quantMode
	mult        int32
	shift       int
	bias        int32
	inZP        int32
	outZP       int32
	// per-Eval views, for the workers (channelsSplit)
	inT   tensor.DType
	x, y  []byte
	scale float32
	fbias float32
	// accumulators, one per output element.
	f32 []float32
	i32 []int32
	// even and odd hold kernels.AddRowWords' lane sums for meanChannels
	// (a word per 8 channels).
	even, odd []uint64
	i64       []int64
}

func prepareMean(ctx *kernels.Context, n *kernels.Node) error { return prepareReduce(ctx, n, opMean) }
func prepareSum(ctx *kernels.Context, n *kernels.Node) error  { return prepareReduce(ctx, n, opSum) }
func prepareMax(ctx *kernels.Context, n *kernels.Node) error  { return prepareReduce(ctx, n, opMax) }

func prepareReduce(ctx *kernels.Context, n *kernels.Node, op reduceOp) error {
	if err := n.CheckArity(2, 2, 1); err != nil {
		return err
	}
	in, axis, out := n.Inputs[0], n.Inputs[1], n.Outputs[0]
	switch in.Type {
	case tensor.Float32, tensor.Int8, tensor.Uint8, tensor.Int16, tensor.Int32, tensor.Int64:
	default:
		return n.Errorf("input type %s is not supported (float32, int8, uint8, int16, int32, int64)", in.Type)
	}
	if out.Type != in.Type {
		return n.Errorf("output type %s differs from input type %s", out.Type, in.Type)
	}
	if axis.Type != tensor.Int32 && axis.Type != tensor.Int64 {
		return n.Errorf("axis tensor type %s is not supported (int32, int64)", axis.Type)
	}
	if axis.Rank() > 1 {
		return n.Errorf("axis tensor must be a scalar or 1-D, got shape %s", tensor.ShapeString(axis.Shape))
	}
	quantized := in.Type == tensor.Int8 || in.Type == tensor.Uint8 || in.Type == tensor.Int16
	if quantized && op != opMax && (!in.IsQuantized() || !out.IsQuantized()) {
		return n.Errorf("%s %s needs quantized input and output tensors", in.Type, n.Name())
	}
	if !ctx.Known(axis) {
		ctx.MarkDynamic(out)
		return nil
	}
	keep := false
	if o, ok := n.Options.(*schema.ReducerOptions); ok && o != nil {
		keep = o.KeepDims
	}
	d, _ := n.Data.(*reduceData)
	if d == nil {
		d = &reduceData{}
	}
	d.op, d.keepDims = op, keep
	rank := in.Rank()
	d.axes = d.axes[:0]
	d.reduced = resize(d.reduced, rank)
	clear(d.reduced)
	nAxis := axis.NumElements()
	for i := 0; i < nAxis; i++ {
		var a int
		if axis.Type == tensor.Int32 {
			a = int(axis.Int32s()[i])
		} else {
			a = int(axis.Int64s()[i])
		}
		if rank == 0 {
			// TensorFlow Lite reduces a scalar to itself.
			break
		}
		if a < -rank || a >= rank {
			return n.Errorf("axis %d is out of range for input of rank %d", a, rank)
		}
		if a < 0 {
			a += rank
		}
		if !d.reduced[a] {
			d.reduced[a] = true
			d.axes = append(d.axes, a)
		}
	}
	var outShape []int
	d.count = 1
	for i, dim := range in.Shape {
		if d.reduced[i] {
			d.count *= dim
			if keep {
				outShape = append(outShape, 1)
			}
			continue
		}
		outShape = append(outShape, dim)
	}
	if outShape == nil {
		outShape = []int{}
	}
	d.collapse(in.Shape)
	d.outCount = tensor.NumElements(outShape)
	d.mode = qRaw
	if quantized && op == opMax && (in.Scale() != out.Scale() || in.ZeroPoint() != out.ZeroPoint()) {
		// TensorFlow Lite reduces the raw values and rejects a change of
		// quantization.
		return n.Errorf("%s REDUCE_MAX needs equal input and output quantization, got scale %g zero point %d and scale %g zero point %d",
			in.Type, in.Scale(), in.ZeroPoint(), out.Scale(), out.ZeroPoint())
	}
	if quantized && op != opMax {
		if err := d.prepareQuant(n, in, out); err != nil {
			return err
		}
	}
	switch {
	case in.Type == tensor.Float32:
		d.f32 = resize(d.f32, d.outCount)
	case in.Type == tensor.Int32 || in.Type == tensor.Int64:
		d.i64 = resize(d.i64, d.outCount)
	default:
		d.i32 = resize(d.i32, d.outCount)
		d.even, d.odd = resize(d.even, d.outCount/8+1), resize(d.odd, d.outCount/8+1)
	}
	n.Data = d
	if err := ctx.ResizeOutput(out, outShape); err != nil {
		return n.Errorf("%v", err)
	}
	return nil
}

// prepareQuant chooses and precomputes the requantization of a quantized
// MEAN or SUM the way TensorFlow Lite's builtin kernels do.
func (d *reduceData) prepareQuant(n *kernels.Node, in, out *tensor.Tensor) error {
	d.inZP, d.outZP = in.ZeroPoint(), out.ZeroPoint()
	inScale, outScale := float32(in.Scale()), float32(out.Scale())
	sameQuant := inScale == outScale && d.inZP == d.outZP
	if in.Type == tensor.Int16 && (d.inZP != 0 || d.outZP != 0) {
		return n.Errorf("int16 %s needs zero points 0, got input %d and output %d", n.Name(), d.inZP, d.outZP)
	}
	d.scale = inScale / outScale
	if d.op == opSum {
		switch {
		case sameQuant:
			d.mode = qRaw
		case in.Type == tensor.Int16:
			return n.Errorf("int16 SUM needs equal input and output scales, got %g and %g (TensorFlow Lite has no int16 rescaling sum)", inScale, outScale)
		default:
			d.mode = qSumFloat
			d.fbias = float32(float32(-float32(d.inZP)*d.scale) * float32(d.count))
		}
		return nil
	}
	switch {
	case in.Type != tensor.Int16 && in.Rank() == 4 && d.keepDims && len(d.axes) == 2 && d.reduced[1] && d.reduced[2]:
		// Optimized 4-D mean over height and width, in float32 like TFLite.
		d.mode = qMean4D
		num := float32(in.Shape[1] * in.Shape[2])
		tmp := float32(float32(d.inZP)*inScale) / outScale
		if tmp > 0 {
			tmp += 0.5
		} else {
			tmp -= 0.5
		}
		d.bias = d.outZP - int32(min(max(tmp, -(1<<30)), 1<<30))
		realScale := inScale / float32(num*outScale)
		d.mult, d.shift = quant.QuantizeMultiplier(float64(realScale))
	case sameQuant:
		d.mode = qMeanTrunc
	default:
		d.mode = qMeanFloat
		d.fbias = -float32(d.inZP) * d.scale
	}
	return nil
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

func evalReduce(ctx *kernels.Context, n *kernels.Node) error {
	d, ok := n.Data.(*reduceData)
	if !ok {
		return n.Errorf("axis values were not available")
	}
	in, out := n.Inputs[0], n.Outputs[0]
	total := in.NumElements()
	switch in.Type {
	case tensor.Float32:
		return reduceFloat(d, in.Float32s()[:total], out.Float32s()[:d.outCount], total)
	case tensor.Int32:
		reduceWide(d, in.Int32s()[:total], out.Int32s()[:d.outCount], total)
	case tensor.Int64:
		reduceWide(d, in.Int64s()[:total], out.Int64s()[:d.outCount], total)
	case tensor.Int8, tensor.Uint8, tensor.Int16:
		if d.channelsSplit(total) {
			// Sums over rows into each channel: chunks of channels.
			d.inT, d.x, d.y = in.Type, in.Data, out.Data
			work := int64(total) * kernels.ElementCost
			if in.Type != tensor.Int16 {
				work /= 8 // kernels.AddRowWords: eight channels per add
			}
			kernels.Parallel(ctx, ctx.Threads, work, d.runLen, 16, d, meanChannels)
			d.x, d.y = nil, nil
			return nil
		}
	}
	switch in.Type {
	case tensor.Int8:
		reduceQuant(d, in.Int8s()[:total], out.Int8s()[:d.outCount], total)
	case tensor.Uint8:
		reduceQuant(d, in.Uint8s()[:total], out.Uint8s()[:d.outCount], total)
	case tensor.Int16:
		reduceQuant(d, in.Int16s()[:total], out.Int16s()[:d.outCount], total)
	}
	return nil
}

// collapse merges adjacent dimensions that are all reduced or all kept
// (dropping size-1 dimensions) and computes their output strides.
func (d *reduceData) collapse(shape []int) {
	d.dims = d.dims[:0]
	var red []bool
	for i, dim := range shape {
		if dim == 1 {
			continue
		}
		r := d.reduced[i]
		if k := len(d.dims); k > 0 && red[k-1] == r {
			d.dims[k-1] *= dim
			continue
		}
		d.dims = append(d.dims, dim)
		red = append(red, r)
	}
	if len(d.dims) == 0 {
		d.dims = append(d.dims, 1)
		red = append(red, false)
	}
	k := len(d.dims)
	d.outStride = resize(d.outStride, k)
	d.counter = resize(d.counter, k)
	stride := 1
	for i := k - 1; i >= 0; i-- {
		if red[i] {
			d.outStride[i] = 0
			continue
		}
		d.outStride[i] = stride
		stride *= d.dims[i]
	}
	d.runLen, d.lastReduced = d.dims[k-1], red[k-1]
}

// eachRun calls f(inputStart, outputStart) for every run of runLen
// contiguous input elements, in row-major order. Within a run the
// elements all go to output outputStart when lastReduced, else to
// consecutive outputs from outputStart.
func (d *reduceData) eachRun(total int, f func(i, o int)) {
	if total == 0 || d.runLen == 0 {
		return
	}
	last := len(d.dims) - 1
	clear(d.counter)
	o := 0
	for i := 0; i < total; i += d.runLen {
		f(i, o)
		for k := last - 1; k >= 0; k-- {
			d.counter[k]++
			o += d.outStride[k]
			if d.counter[k] < d.dims[k] {
				break
			}
			o -= d.outStride[k] * d.counter[k]
			d.counter[k] = 0
		}
	}
}

type number interface {
	~int8 | ~uint8 | ~int16 | ~int32 | ~int64 | ~float32
}

// sumInto adds every input element into its output accumulator, in
// input order.
func sumInto[T, A number](d *reduceData, in []T, acc []A) {
	l, lastReduced := d.runLen, d.lastReduced
	d.eachRun(len(in), func(i, o int) {
		src := in[i : i+l]
		if lastReduced {
			s := acc[o]
			for _, v := range src {
				s += A(v)
			}
			acc[o] = s
			return
		}
		dst := acc[o : o+l]
		for j, v := range src {
			dst[j] += A(v)
		}
	})
}

// maxInto keeps the largest input element per output accumulator.
func maxInto[T, A number](d *reduceData, in []T, acc []A) {
	l, lastReduced := d.runLen, d.lastReduced
	d.eachRun(len(in), func(i, o int) {
		src := in[i : i+l]
		if lastReduced {
			m := acc[o]
			for _, v := range src {
				if A(v) > m {
					m = A(v)
				}
			}
			acc[o] = m
			return
		}
		dst := acc[o : o+l]
		for j, v := range src {
			if A(v) > dst[j] {
				dst[j] = A(v)
			}
		}
	})
}

func reduceFloat(d *reduceData, in, out []float32, total int) error {
	acc := d.f32
	switch d.op {
	case opMax:
		for i := range acc {
			acc[i] = -math.MaxFloat32
		}
		maxInto(d, in, acc)
		copy(out, acc)
	default:
		clear(acc)
		sumInto(d, in, acc)
		if d.op == opSum {
			copy(out, acc)
			return nil
		}
		if total == 0 || d.count == 0 {
			for i := range out {
				out[i] = float32(math.NaN())
			}
			return nil
		}
		c := float32(d.count)
		for i, v := range acc {
			out[i] = v / c
		}
	}
	return nil
}

// reduceWide reduces int32 and int64 tensors: sums in int64 (MEAN
// truncates the quotient like C++ integer division), SUM wraps in the
// element type.
func reduceWide[T int32 | int64](d *reduceData, in, out []T, total int) {
	acc := d.i64
	switch d.op {
	case opMax:
		lo := int64(math.MinInt64)
		if _, is32 := any(T(0)).(int32); is32 {
			lo = math.MinInt32
		}
		for i := range acc {
			acc[i] = lo
		}
		maxInto(d, in, acc)
		for i, v := range acc {
			out[i] = T(v)
		}
	case opSum:
		clear(out)
		sumInto(d, in, out)
	case opMean:
		clear(acc)
		sumInto(d, in, acc)
		for i, v := range acc {
			if d.count == 0 || total == 0 {
				out[i] = 0
				continue
			}
			out[i] = T(v / int64(d.count))
		}
	}
}

func qRange[T int8 | uint8 | int16]() (int32, int32) {
	switch any(T(0)).(type) {
	case int8:
		return math.MinInt8, math.MaxInt8
	case uint8:
		return 0, math.MaxUint8
	}
	return math.MinInt16, math.MaxInt16
}

// channelsSplit reports whether a quantized MEAN or SUM reduces leading
// dimensions into the last ones (a global average over height and width):
// then each channel's sum is independent and chunks of channels run on
// the pool's workers (meanChannels).
func (d *reduceData) channelsSplit(total int) bool {
	return d.op != opMax && d.mode != qRaw && total > 0 && d.count > 0 &&
		len(d.dims) == 2 && d.outStride[0] == 0 && !d.lastReduced
}

// meanChannels is reduceQuant for channels [c0, c1) (see channelsSplit).
func meanChannels(d *reduceData, _, c0, c1 int) {
	switch d.inT {
	case tensor.Int8:
		meanChannelsT(d, tensor.View[int8](d.x), tensor.View[int8](d.y), c0, c1)
	case tensor.Uint8:
		meanChannelsT(d, tensor.View[uint8](d.x), tensor.View[uint8](d.y), c0, c1)
	case tensor.Int16:
		meanChannelsT(d, tensor.View[int16](d.x), tensor.View[int16](d.y), c0, c1)
	}
}

func meanChannelsT[T int8 | uint8 | int16](d *reduceData, in, out []T, c0, c1 int) {
	acc := d.i32[c0:c1]
	clear(acc)
	c := d.runLen
	rows := d.dims[0]
	done := 0
	if size := unsafe.Sizeof(in[0]); size == 1 {
		// Eight channels per add (kernels.AddRowWords), int8 as its
		// value + 128.
		var flip byte
		if T(0)-1 < 0 {
			flip = 0x80
		}
		raw := tensor.Bytes(in)
		done = len(acc) &^ 7
		even, odd := d.even[c0/8:][:done/8], d.odd[c0/8:][:done/8]
		for r := range rows {
			kernels.AddRowWords(even, odd, raw[r*c+c0:][:done], flip)
			if r%kernels.MaxWordRows == kernels.MaxWordRows-1 || r == rows-1 {
				kernels.FlushRowWords(acc, even, odd)
			}
		}
		if flip != 0 {
			for j := range acc[:done] {
				acc[j] -= 128 * int32(rows)
			}
		}
	}
	for r := range rows {
		row := in[r*c+c0 : r*c+c1]
		for j := done; j < len(row); j++ {
			acc[j] += int32(row[j])
		}
	}
	requantSums(d, acc, out[c0:c1])
}

func reduceQuant[T int8 | uint8 | int16](d *reduceData, in, out []T, total int) {
	lo, _ := qRange[T]()
	if d.op == opMax {
		clear(d.i32)
		for i := range d.i32 {
			d.i32[i] = lo
		}
		maxInto(d, in, d.i32)
		for i, v := range d.i32 {
			out[i] = T(v)
		}
		return
	}
	if d.mode == qRaw {
		// SUM with unchanged quantization: TensorFlow Lite adds the raw
		// values in the element type (wrapping).
		clear(out)
		sumInto(d, in, out)
		return
	}
	acc := d.i32
	clear(acc)
	sumInto(d, in, acc)
	if total == 0 || d.count == 0 {
		clear(out)
		return
	}
	requantSums(d, acc, out)
}

// requantSums turns a quantized MEAN's or SUM's int32 sums into outputs.
func requantSums[T int8 | uint8 | int16](d *reduceData, acc []int32, out []T) {
	lo, hi := qRange[T]()
	switch d.mode {
	case qMean4D:
		for i, s := range acc {
			v := quant.MultiplyByQuantizedMultiplier(s, d.mult, d.shift) + d.bias
			out[i] = T(min(max(v, lo), hi))
		}
	case qMeanTrunc:
		c := int32(d.count)
		for i, s := range acc {
			out[i] = T(s / c)
		}
	case qMeanFloat:
		c := float32(d.count)
		flo, fhi := float32(lo), float32(hi)
		for i, s := range acc {
			mean := float32(s) / c
			r := float32(math.Round(float64(float32(mean*d.scale)+d.fbias))) + float32(d.outZP)
			out[i] = T(min(max(r, flo), fhi))
		}
	case qSumFloat:
		for i, s := range acc {
			f := math.Round(float64(float32(float32(s)*d.scale) + d.fbias))
			v := int32(min(max(f, math.MinInt32), math.MaxInt32)) + d.outZP
			// TensorFlow Lite does not saturate here: the value wraps.
			out[i] = T(v)
		}
	}
}
