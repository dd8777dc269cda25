package conv

import (
	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/quant"
)

func init() {
	kernels.RegisterBuiltin(schema.OpTransposeConv, kernels.Kernel{Prepare: prepareTransposeConv, Eval: evalTransposeConv})
}

// tconvData is TRANSPOSE_CONV's prepared state. Weights are repacked as
// [ky][kx][inC][outC] so the scatter's inner loop runs over contiguous
// output channels.
type tconvData struct {
	batch, inH, inW, inC int
	outH, outW, outC     int
	kh, kw, sh, sw       int
	padT, padL           int
	dtype                tensor.DType
	dynamic              bool
	lo, hi               float32
	wf                   []float32
	wq                   []int32
	biasF                []float32
	bias64               []int64
	inOff                int32
	rq                   *requant
	accBytes             int
	hasBias              bool
	workers              int
	x, y, scratch        []byte
}

func prepareTransposeConv(ctx *kernels.Context, n *kernels.Node) error {
	if err := n.CheckArity(3, 4, 1); err != nil {
		return err
	}
	opts, _ := n.Options.(*schema.TransposeConvOptions)
	if opts == nil {
		opts = &schema.TransposeConvOptions{Padding: schema.PaddingSame, StrideW: 1, StrideH: 1}
	}
	shapeT, filter, in, bias, out := n.Inputs[0], n.Inputs[1], n.Inputs[2], n.Input(3), n.Outputs[0]
	if shapeT.Type != tensor.Int32 || shapeT.NumElements() != 4 || shapeT.Rank() != 1 {
		return n.Errorf("output_shape input is %s%s, expected int32[4]", shapeT.Type, tensor.ShapeString(shapeT.Shape))
	}
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
	if err := checkActivation(n, opts.Activation); err != nil {
		return err
	}
	if filter.Shape[3] != in.Shape[3] {
		return n.Errorf("filter has %d input channels, input has %d", filter.Shape[3], in.Shape[3])
	}
	if !ctx.Known(shapeT) {
		ctx.MarkDynamic(out)
		return nil
	}
	s := shapeT.Int32s()
	d := &tconvData{batch: in.Shape[0], inH: in.Shape[1], inW: in.Shape[2], inC: in.Shape[3],
		outH: int(s[1]), outW: int(s[2]), outC: int(s[3]),
		kh: filter.Shape[1], kw: filter.Shape[2], sh: opts.StrideH, sw: opts.StrideW, dtype: in.Type}
	if int(s[0]) != d.batch || d.outC != filter.Shape[0] || d.outH < 0 || d.outW < 0 {
		return n.Errorf("output_shape %v does not fit input batch %d and filter output channels %d", s, d.batch, filter.Shape[0])
	}
	if bias != nil && bias.NumElements() != d.outC {
		return n.Errorf("bias has %d elements (shape %s), expected %d (output channels)", bias.NumElements(), tensor.ShapeString(bias.Shape), d.outC)
	}
	d.padT = padBefore(d.sh, 1, d.outH, d.kh, outSize(opts.Padding, d.outH, d.kh, d.sh, 1))
	d.padL = padBefore(d.sw, 1, d.outW, d.kw, outSize(opts.Padding, d.outW, d.kw, d.sw, 1))
	if err := ctx.ResizeOutput(out, []int{d.batch, d.outH, d.outW, d.outC}); err != nil {
		return n.Errorf("output: %v", err)
	}
	d.dynamic = !ctx.Known(filter) || (bias != nil && !ctx.Known(bias))
	d.hasBias = bias != nil
	d.workers = ctx.Threads
	outElems := d.batch * d.outH * d.outW * d.outC
	switch in.Type {
	case tensor.Float32:
		if err := sameType(n, "filter", filter, tensor.Float32); err != nil {
			return err
		}
		if err := sameType(n, "output", out, tensor.Float32); err != nil {
			return err
		}
		if bias != nil {
			if err := sameType(n, "bias", bias, tensor.Float32); err != nil {
				return err
			}
		}
		d.lo, d.hi = floatAct(opts.Activation)
		d.wf = make([]float32, filter.NumElements())
		d.biasF = make([]float32, d.outC)
	case tensor.Int8, tensor.Uint8, tensor.Int16:
		if err := quantizedTypes(n, in, filter, bias, out, "filter"); err != nil {
			return err
		}
		rq, err := newRequant(n, in, filter, out, d.outC, 0, in.Type == tensor.Uint8, opts.Activation)
		if err != nil {
			return err
		}
		d.rq = rq
		d.inOff = -in.ZeroPoint()
		if in.Type == tensor.Int16 && (d.inOff != 0 || rq.outZP != 0) {
			return n.Errorf("int16 input and output need zero point 0, got %d and %d", -d.inOff, rq.outZP)
		}
		d.wq = make([]int32, filter.NumElements())
		d.bias64 = make([]int64, d.outC)
		d.accBytes = align64(outElems * 4)
		if in.Type == tensor.Int16 {
			d.accBytes = align64(outElems * 8)
		}
		ctx.RequestScratch(d.accBytes)
	default:
		return n.Errorf("input type %s is not supported (expected float32, int8, uint8 or int16)", in.Type)
	}
	if !d.dynamic {
		d.pack(filter, bias)
	}
	n.Data = d
	return nil
}

func (d *tconvData) pack(filter, bias *tensor.Tensor) {
	// [oc][ky][kx][ic] -> [ky][kx][ic][oc]
	taps := d.kh * d.kw
	for oc := 0; oc < d.outC; oc++ {
		for t := 0; t < taps; t++ {
			for ic := 0; ic < d.inC; ic++ {
				src := (oc*taps+t)*d.inC + ic
				dst := (t*d.inC+ic)*d.outC + oc
				switch d.dtype {
				case tensor.Float32:
					d.wf[dst] = filter.Float32s()[src]
				case tensor.Uint8:
					d.wq[dst] = int32(filter.Uint8s()[src]) - filter.ZeroPoint()
				default:
					d.wq[dst] = int32(filter.Int8s()[src])
				}
			}
		}
	}
	if d.dtype == tensor.Float32 {
		if bias == nil {
			clear(d.biasF)
		} else {
			copy(d.biasF, bias.Float32s())
		}
		return
	}
	biasValues64(bias, d.bias64)
}

func evalTransposeConv(ctx *kernels.Context, n *kernels.Node) error {
	d, ok := n.Data.(*tconvData)
	if !ok {
		return n.Errorf("not prepared")
	}
	filter, in, bias, out := n.Inputs[1], n.Inputs[2], n.Input(3), n.Outputs[0]
	if d.dynamic {
		d.pack(filter, bias)
	}
	d.x, d.y = in.Data, out.Data
	d.scratch = ctx.Scratch(d.accBytes)
	// Workers own output-channel ranges: each scatters every input pixel
	// into its channels only, then requantizes them.
	threads := min(ctx.Threads, d.workers)
	work := int64(d.batch*d.inH*d.inW) * int64(d.inC) * int64(d.outC*d.kh*d.kw)
	switch d.dtype {
	case tensor.Float32:
		parallel(ctx, threads, work, d.outC, 8, d, tconvFloatWorker)
	case tensor.Int8:
		parallel(ctx, threads, work, d.outC, 8, d, tconvIntWorker[int8])
	case tensor.Uint8:
		parallel(ctx, threads, work, d.outC, 8, d, tconvIntWorker[uint8])
	case tensor.Int16:
		parallel(ctx, threads, work, d.outC, 8, d, tconvInt16Worker)
	}
	return nil
}

func tconvFloatWorker(d *tconvData, _, lo, hi int) {
	y := tensor.View[float32](d.y)
	tconvScatter(d, tensor.View[float32](d.x), d.wf, y, lo, hi)
	for i := 0; i < len(y); i += max(d.outC, 1) {
		row := y[i+lo : i+hi]
		for c, v := range row {
			row[c] = clampF(v+d.biasF[lo+c], d.lo, d.hi)
		}
	}
}

func tconvIntWorker[T int8 | uint8](d *tconvData, _, lo, hi int) {
	y := tensor.View[T](d.y)
	acc := tensor.View[int32](d.scratch)
	tconvScatter(d, tensor.View[T](d.x), d.wq, acc, lo, hi)
	for i := 0; i < len(y); i += max(d.outC, 1) {
		row := acc[i+lo : i+hi]
		for c := range row {
			row[c] += int32(d.bias64[lo+c])
		}
		requantRow(d.rq, lo, row, y[i+lo:i+hi])
	}
}

func tconvInt16Worker(d *tconvData, _, lo, hi int) {
	y := tensor.View[int16](d.y)
	acc := tensor.View[int64](d.scratch)
	tconvScatter(d, tensor.View[int16](d.x), d.wq, acc, lo, hi)
	for i := 0; i < len(y); i += max(d.outC, 1) {
		row := acc[i+lo : i+hi]
		for c := range row {
			row[c] += d.bias64[lo+c]
		}
		if !d.hasBias {
			// Without a bias TensorFlow Lite requantizes the 16x8
			// accumulators through the 32-bit, double-rounding
			// multiplier (checked against its builtin kernel).
			for c := range row {
				v := quant.MultiplyByQuantizedMultiplier(int32(row[c]), d.rq.mult[lo+c], d.rq.shift[lo+c])
				y[i+lo+c] = int16(min(max(v, d.rq.actMin), d.rq.actMax))
			}
			continue
		}
		requantRow64(d.rq, lo, row, y[i+lo:i+hi])
	}
}

// tconvScatter zeroes output channels [c0, c1) of acc and adds every input
// pixel's contribution (input + inOff) * filter to the output pixels its
// filter window covers.
func tconvScatter[TX int8 | uint8 | int16 | float32, TW int32 | float32, TA int32 | int64 | float32](d *tconvData, x []TX, w []TW, acc []TA, c0, c1 int) {
	outElems := d.batch * d.outH * d.outW * d.outC
	acc = acc[:outElems]
	for i := 0; i < outElems; i += d.outC {
		clear(acc[i+c0 : i+c1])
	}
	off := TA(d.inOff)
	for b := 0; b < d.batch; b++ {
		for iy := 0; iy < d.inH; iy++ {
			for ix := 0; ix < d.inW; ix++ {
				xr := x[((b*d.inH+iy)*d.inW+ix)*d.inC:][:d.inC]
				oy0 := iy*d.sh - d.padT
				ox0 := ix*d.sw - d.padL
				for ky := 0; ky < d.kh; ky++ {
					oy := oy0 + ky
					if oy < 0 || oy >= d.outH {
						continue
					}
					for kx := 0; kx < d.kw; kx++ {
						ox := ox0 + kx
						if ox < 0 || ox >= d.outW {
							continue
						}
						orow := acc[((b*d.outH+oy)*d.outW+ox)*d.outC+c0:][:c1-c0]
						wbase := (ky*d.kw+kx)*d.inC*d.outC + c0
						for ic, xv := range xr {
							v := TA(xv) + off
							wr := w[wbase+ic*d.outC:][:len(orow)]
							for c, wv := range wr {
								orow[c] += v * TA(wv)
							}
						}
					}
				}
			}
		}
	}
}
