package conv

import (
	"math"
	"unsafe"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/quant"
)

// outSize is TFLite's ComputeOutSize: the output extent of a windowed op.
func outSize(p schema.Padding, in, filter, stride, dilation int) int {
	eff := (filter-1)*dilation + 1
	if p == schema.PaddingSame {
		return (in + stride - 1) / stride
	}
	return (in + stride - eff) / stride
}

// padBefore is TFLite's ComputePaddingWithOffset (the leading padding; the
// odd remainder goes after).
func padBefore(stride, dilation, in, filter, out int) int {
	eff := (filter-1)*dilation + 1
	total := (out-1)*stride + eff - in
	if total < 0 {
		total = 0
	}
	return total / 2
}

// checkPadding validates a padding enum value.
func checkPadding(n *kernels.Node, p schema.Padding) error {
	if p != schema.PaddingSame && p != schema.PaddingValid {
		return n.Errorf("padding %d is not SAME (0) or VALID (1)", p)
	}
	return nil
}

// requant holds per-output-channel requantization parameters of an
// integer kernel.
type requant struct {
	mult   []int32
	shift  []int
	outZP  int32
	actMin int32
	actMax int32
	// single selects one rounding (TFLite int8 CONV_2D / FULLY_CONNECTED).
	single bool
	// left and right split shift for the double-rounding path.
	left, right []uint
}

// newRequant computes the per-channel multipliers the way TFLite does:
// per-channel (and int8/int16 per-tensor conv) scales multiply in double;
// with floatProduct the input*filter product is formed in float32 first
// (GetQuantizedConvolutionMultipler: uint8 kernels, per-tensor FC, matmul).
// filterDim is the filter dimension that holds output channels.
func newRequant(n *kernels.Node, in, filter, out *tensor.Tensor, channels, filterDim int, floatProduct bool, act quant.Activation) (*requant, error) {
	if !in.IsQuantized() || !filter.IsQuantized() || !out.IsQuantized() {
		return nil, n.Errorf("%s kernel needs quantized input, filter and output (scale missing)", in.Type)
	}
	// Taps outside the input (padding) read the input zero point in the
	// input's type and must add exactly zero: a zero point the type
	// cannot hold (no converter writes one) is refused rather than
	// computed differently from TensorFlow Lite.
	if lo, hi := in.Type.QuantRange(); (in.Type == tensor.Int8 || in.Type == tensor.Uint8) && (in.ZeroPoint() < lo || in.ZeroPoint() > hi) {
		return nil, n.Errorf("input zero point %d is outside %s's range [%d, %d]", in.ZeroPoint(), in.Type, lo, hi)
	}
	rq := &requant{mult: make([]int32, channels), shift: make([]int, channels)}
	fq := filter.Quant
	perChannel := len(fq.Scale) > 1
	if perChannel {
		if in.Type == tensor.Uint8 {
			return nil, n.Errorf("per-channel filter quantization needs int8 or int16 input, got %s", in.Type)
		}
		if len(fq.Scale) != channels {
			return nil, n.Errorf("filter has %d per-channel scales, expected %d (output channels)", len(fq.Scale), channels)
		}
		if fq.Dim != filterDim {
			return nil, n.Errorf("filter quantized along dimension %d, expected %d", fq.Dim, filterDim)
		}
	}
	inScale := float32(in.Scale())
	outScale := float32(out.Scale())
	for c := 0; c < channels; c++ {
		fs := fq.Scale[0]
		if perChannel {
			fs = fq.Scale[c]
		}
		var real float64
		if floatProduct && !perChannel {
			real = float64(inScale*fs) / float64(outScale)
		} else {
			real = float64(inScale) * float64(fs) / float64(outScale)
		}
		if real < 0 || math.IsNaN(real) || math.IsInf(real, 0) {
			return nil, n.Errorf("effective output scale %g for channel %d is not a finite non-negative number", real, c)
		}
		rq.mult[c], rq.shift[c] = quant.QuantizeMultiplier(real)
	}
	rq.left, rq.right = make([]uint, channels), make([]uint, channels)
	for c, sh := range rq.shift {
		if sh > 0 {
			rq.left[c] = uint(sh)
		} else {
			rq.right[c] = uint(-sh)
		}
	}
	lo, hi := out.Type.QuantRange()
	rq.outZP = out.ZeroPoint()
	rq.actMin, rq.actMax = quant.ActivationRangeQuantized(act, outScale, rq.outZP, lo, hi)
	return rq, nil
}

// requantRow converts one row of int32 accumulators (one per output
// channel from c0 on, bias already added) to the output type. The
// rounding is TFLite's (quant.MultiplyByQuantizedMultiplier or its single
// rounding variant), written out inline because it runs once per output.
func requantRow[T int8 | uint8](rq *requant, c0 int, acc []int32, out []T) {
	out = out[:len(acc)]
	mult := rq.mult[c0 : c0+len(acc)]
	shift := rq.shift[c0 : c0+len(acc)]
	zp, lo, hi := rq.outZP, rq.actMin, rq.actMax
	if rq.single {
		for c, a := range acc {
			v := quant.MultiplyByQuantizedMultiplierSingle(a, mult[c], shift[c]) + zp
			out[c] = T(min(max(v, lo), hi))
		}
		return
	}
	left := rq.left[c0 : c0+len(acc)]
	right := rq.right[c0 : c0+len(acc)]
	for c, a := range acc {
		// SaturatingRoundingDoublingHighMul (the multiplier is never
		// MinInt32, so it cannot saturate), written branch-free.
		ab := int64(a<<left[c]) * int64(mult[c])
		nudge := int64(1<<30) + (ab>>63)&(1-(1<<31))
		x := int32((ab + nudge) / (1 << 31))
		// RoundingDivideByPOT.
		r := right[c]
		mask := int32(1)<<r - 1
		th := mask>>1 + int32(uint32(x)>>31)
		rem := x & mask
		x >>= r
		if rem > th {
			x++
		}
		v := x + zp
		out[c] = T(min(max(v, lo), hi))
	}
}

// requantRow64 converts int64 accumulators of the 16x8 kernels.
func requantRow64(rq *requant, c0 int, acc []int64, out []int16) {
	out = out[:len(acc)]
	mult := rq.mult[c0 : c0+len(acc)]
	shift := rq.shift[c0 : c0+len(acc)]
	for c, a := range acc {
		v := quant.MultiplyByQuantizedMultiplier64(a, mult[c], shift[c]) + rq.outZP
		out[c] = int16(min(max(v, rq.actMin), rq.actMax))
	}
}

// floatAct returns the clamp bounds of a fused activation for float
// (like TFLite, no activation clamps to the finite float range).
func floatAct(a quant.Activation) (float32, float32) {
	return quant.ActivationRangeFloat(a)
}

// checkActivation rejects fused activations TFLite kernels do not apply.
func checkActivation(n *kernels.Node, a quant.Activation) error {
	switch a {
	case quant.ActNone, quant.ActRelu, quant.ActRelu6, quant.ActReluN1To1:
		return nil
	}
	return n.Errorf("fused activation %d is not supported (expected NONE, RELU, RELU_N1_TO_1 or RELU6)", a)
}

// parallel runs fn over [0, total) on up to threads of ctx's pooled
// workers (see kernels.Parallel); work is the node's multiply-accumulate
// count, which decides whether splitting pays. fn is a plain function and
// d lives in the node's prepared state, so nothing allocates.
func parallel[D any](ctx *kernels.Context, threads int, work int64, total, minChunk int, d *D, fn func(d *D, w, lo, hi int)) {
	kernels.Parallel(ctx, threads, work, total, minChunk, d, fn)
}

// align64 rounds n up to a multiple of 64 bytes.
func align64(n int) int { return (n + 63) &^ 63 }

// sameType checks a tensor's dtype.
func sameType(n *kernels.Node, what string, t *tensor.Tensor, want ...tensor.DType) error {
	for _, w := range want {
		if t.Type == w {
			return nil
		}
	}
	if len(want) == 1 {
		return n.Errorf("%s has type %s, expected %s", what, t.Type, want[0])
	}
	return n.Errorf("%s has type %s, expected one of %v", what, t.Type, want)
}

// quantizedTypes checks the dtypes of a quantized convolution or fully
// connected node with input type in.Type: filter (named filterName in
// errors) int8, or uint8 for a uint8 input; output the input's type; bias,
// when present, int32, or int64 or int32 for an int16 input.
func quantizedTypes(n *kernels.Node, in, filter, bias, out *tensor.Tensor, filterName string) error {
	wantF := tensor.Int8
	if in.Type == tensor.Uint8 {
		wantF = tensor.Uint8
	}
	if err := sameType(n, filterName, filter, wantF); err != nil {
		return err
	}
	if err := sameType(n, "output", out, in.Type); err != nil {
		return err
	}
	if bias == nil {
		return nil
	}
	if in.Type == tensor.Int16 {
		return sameType(n, "bias", bias, tensor.Int64, tensor.Int32)
	}
	return sameType(n, "bias", bias, tensor.Int32)
}

// hybridRowSums stores, for each output row r of the int8 filter (k
// values a row), the sum of its values in rowSums[r] and its scale (per
// channel or per tensor) in filterScale[r]: what the hybrid kernels need
// to correct for the per-batch input zero point and dequantize.
func hybridRowSums(filter *tensor.Tensor, k int, rowSums []int32, filterScale []float32) {
	w := filter.Int8s()
	for r := range rowSums {
		var s int32
		for _, v := range w[r*k : (r+1)*k] {
			s += int32(v)
		}
		rowSums[r] = s
		if filter.Quant.PerChannel() {
			filterScale[r] = filter.Quant.Scale[r]
		} else {
			filterScale[r] = filter.Quant.Scale[0]
		}
	}
}

// offsetWeights stores w minus the filter zero point zw in dst (as many
// values as dst holds).
func offsetWeights[T int8 | uint8](dst []int16, w []T, zw int16) {
	for i, v := range w[:len(dst)] {
		dst[i] = int16(v) - zw
	}
}

// biasValues32 reads an int32 bias (nil bias gives zeros) into dst.
func biasValues32(bias *tensor.Tensor, dst []int32) {
	if bias == nil {
		clear(dst)
		return
	}
	copy(dst, bias.Int32s())
}

// biasValues64 reads an int64 or int32 bias (nil gives zeros) into dst.
func biasValues64(bias *tensor.Tensor, dst []int64) {
	if bias == nil {
		clear(dst)
		return
	}
	if bias.Type == tensor.Int32 {
		for i, v := range bias.Int32s()[:len(dst)] {
			dst[i] = int64(v)
		}
		return
	}
	copy(dst, bias.Int64s())
}

// int16Bytes views int16 values as bytes.
func int16Bytes(v []int16) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 2*len(v))
}

// perWorker returns workers slices of n values each, carved from one
// allocation with at least 64 bytes between any two of them, so that
// workers writing their own slice never write a cache line another
// worker reads (two small slices allocated one after the other share a
// line: a depthwise layer's tap rows did, which made every row a worker
// set cost the other worker a miss).
func perWorker[T any](workers, n int) [][]T {
	var z T
	pad := (64 + int(unsafe.Sizeof(z)) - 1) / int(unsafe.Sizeof(z))
	stride := n + pad
	buf := make([]T, pad+workers*stride)
	out := make([][]T, workers)
	for w := range out {
		out[w] = buf[pad+w*stride : pad+w*stride+n : pad+w*stride+n]
	}
	return out
}
