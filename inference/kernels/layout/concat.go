package layout

import (
	"math"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/quant"
)

func init() {
	kernels.RegisterBuiltin(schema.OpConcatenation, kernels.Kernel{Prepare: prepareConcat, Eval: evalConcat})
	kernels.RegisterBuiltin(schema.OpPack, kernels.Kernel{Prepare: preparePack, Eval: evalConcat})
	kernels.RegisterBuiltin(schema.OpUnpack, kernels.Kernel{Prepare: prepareUnpack, Eval: evalSplit})
	kernels.RegisterBuiltin(schema.OpSplit, kernels.Kernel{Prepare: prepareSplit, Eval: evalSplit})
	kernels.RegisterBuiltin(schema.OpSplitV, kernels.Kernel{Prepare: prepareSplitV, Eval: evalSplit})
}

// joinData is the prepared state of CONCATENATION, PACK, UNPACK, SPLIT and
// SPLIT_V: the number of outer blocks and, per joined/split tensor, its
// chunk of elements per outer block.
type joinData struct {
	outer  int
	chunks []int
	// first is the index of the first data input (SPLIT's data is input 1).
	first int
	// requant holds, per input, whether CONCATENATION must rescale it.
	requant []bool
	act     bool
	actLo   int32
	actHi   int32
	actLoF  float32
	actHiF  float32
}

func prepareConcat(ctx *kernels.Context, n *kernels.Node) error {
	if len(n.Inputs) < 1 {
		return n.Errorf("has no inputs, expected at least 1")
	}
	if err := n.CheckArity(len(n.Inputs), len(n.Inputs), 1); err != nil {
		return err
	}
	out := n.Outputs[0]
	in0 := n.Inputs[0]
	if _, err := elemSize(n, in0); err != nil {
		return err
	}
	unfold(ctx, n)
	axis, act := 0, quant.ActNone
	if o, ok := n.Options.(*schema.ConcatenationOptions); ok && o != nil {
		axis, act = o.Axis, o.Activation
	}
	rank := in0.Rank()
	if rank == 0 {
		return n.Errorf("input %q is a scalar, expected rank >= 1", in0.Name)
	}
	axis, err := normAxis(n, axis, rank, "axis")
	if err != nil {
		return err
	}
	shape := append([]int{}, in0.Shape...)
	shape[axis] = 0
	d := &joinData{outer: product(in0.Shape, 0, axis), chunks: make([]int, len(n.Inputs)), requant: make([]bool, len(n.Inputs))}
	for i, in := range n.Inputs {
		if in.Type != out.Type {
			return n.Errorf("input %d (%q) has type %s, expected the output type %s", i, in.Name, in.Type, out.Type)
		}
		if in.Rank() != rank {
			return n.Errorf("input %d (%q) has shape %s, expected rank %d like input 0", i, in.Name, tensor.ShapeString(in.Shape), rank)
		}
		for k := range in.Shape {
			if k != axis && in.Shape[k] != in0.Shape[k] {
				return n.Errorf("input %d (%q) has shape %s, incompatible with %s along axes other than %d", i, in.Name, tensor.ShapeString(in.Shape), tensor.ShapeString(in0.Shape), axis)
			}
		}
		shape[axis] += in.Shape[axis]
		d.chunks[i] = product(in.Shape, axis, rank)
		if isQuantType(out.Type) && in.IsQuantized() && out.IsQuantized() &&
			(in.Scale() != out.Scale() || in.ZeroPoint() != out.ZeroPoint()) {
			d.requant[i] = true
		}
	}
	if act != quant.ActNone {
		d.act = true
		switch {
		case out.Type == tensor.Float32:
			d.actLoF, d.actHiF = quant.ActivationRangeFloat(act)
		case isQuantType(out.Type) && out.IsQuantized():
			lo, hi := out.Type.QuantRange()
			d.actLo, d.actHi = quant.ActivationRangeQuantized(act, float32(out.Scale()), out.ZeroPoint(), lo, hi)
		default:
			return n.Errorf("fused activation %d is not supported for %s outputs", act, out.Type)
		}
	}
	if err := ctx.ResizeOutput(out, shape); err != nil {
		return n.Errorf("%v", err)
	}
	n.Data = d
	return tryFold(ctx, n, evalConcat)
}

func isQuantType(t tensor.DType) bool {
	return t == tensor.Int8 || t == tensor.Uint8 || t == tensor.Int16
}

func preparePack(ctx *kernels.Context, n *kernels.Node) error {
	if len(n.Inputs) < 1 {
		return n.Errorf("has no inputs, expected at least 1")
	}
	if err := n.CheckArity(len(n.Inputs), len(n.Inputs), 1); err != nil {
		return err
	}
	out, in0 := n.Outputs[0], n.Inputs[0]
	if _, err := elemSize(n, in0); err != nil {
		return err
	}
	unfold(ctx, n)
	axis := 0
	if o, ok := n.Options.(*schema.PackOptions); ok && o != nil {
		axis = o.Axis
		if o.ValuesCount != 0 && o.ValuesCount != len(n.Inputs) {
			return n.Errorf("values_count is %d but the op has %d inputs", o.ValuesCount, len(n.Inputs))
		}
	}
	rank := in0.Rank()
	if axis < -rank-1 || axis > rank {
		return n.Errorf("axis %d is out of range for rank %d inputs (expected [%d, %d])", axis, rank, -rank-1, rank)
	}
	if axis < 0 {
		axis += rank + 1
	}
	d := &joinData{outer: product(in0.Shape, 0, axis), chunks: make([]int, len(n.Inputs))}
	for i, in := range n.Inputs {
		if in.Type != out.Type {
			return n.Errorf("input %d (%q) has type %s, expected the output type %s", i, in.Name, in.Type, out.Type)
		}
		if !tensor.SameShape(in.Shape, in0.Shape) {
			return n.Errorf("input %d (%q) has shape %s, expected %s like input 0", i, in.Name, tensor.ShapeString(in.Shape), tensor.ShapeString(in0.Shape))
		}
		d.chunks[i] = product(in.Shape, axis, rank)
	}
	shape := make([]int, 0, rank+1)
	shape = append(shape, in0.Shape[:axis]...)
	shape = append(shape, len(n.Inputs))
	shape = append(shape, in0.Shape[axis:]...)
	if err := ctx.ResizeOutput(out, shape); err != nil {
		return n.Errorf("%v", err)
	}
	n.Data = d
	return tryFold(ctx, n, evalConcat)
}

func evalConcat(ctx *kernels.Context, n *kernels.Node) error {
	d, ok := n.Data.(*joinData)
	if !ok {
		return n.Errorf("not prepared")
	}
	out := n.Outputs[0]
	es := out.Type.Size()
	if len(out.Data) < out.ByteSize() {
		return n.Errorf("output has %d bytes, expected %d", len(out.Data), out.ByteSize())
	}
	total := 0
	for i, in := range n.Inputs {
		if len(in.Data) < d.outer*d.chunks[i]*es {
			return n.Errorf("input %d has %d bytes, expected %d", i, len(in.Data), d.outer*d.chunks[i]*es)
		}
		total += d.chunks[i]
	}
	if d.outer*total*es > len(out.Data) {
		return n.Errorf("output has %d bytes, expected %d", len(out.Data), d.outer*total*es)
	}
	o := 0
	for b := 0; b < d.outer; b++ {
		for i, in := range n.Inputs {
			c := d.chunks[i]
			if c == 0 {
				continue
			}
			src := in.Data[b*c*es : (b+1)*c*es]
			dst := out.Data[o*es : (o+c)*es]
			if d.requant != nil && d.requant[i] {
				rescale(in, out, src, dst)
			} else {
				copy(dst, src)
			}
			o += c
		}
	}
	if d.act {
		clampOutput(d, out)
	}
	return nil
}

// rescale requantizes src (in's quantization) into dst (out's) as
// TensorFlow Lite's ConcatenationWithScaling does: in float32,
// round(q*scale + bias) + zero point with scale = in_scale * (1/out_scale)
// and bias = -in_zero_point * scale, then saturate.
func rescale(in, out *tensor.Tensor, src, dst []byte) {
	inv := 1 / float32(out.Scale())
	scale := float32(in.Scale()) * inv
	bias := float32(-in.ZeroPoint()) * scale
	ozp := out.ZeroPoint()
	lo, hi := out.Type.QuantRange()
	q := func(v int32) int32 {
		r := int32(math.Round(float64(float32(float32(v)*scale) + bias)))
		r += ozp
		if r < lo {
			r = lo
		}
		if r > hi {
			r = hi
		}
		return r
	}
	switch out.Type {
	case tensor.Uint8:
		for j, v := range src {
			dst[j] = uint8(q(int32(v)))
		}
	case tensor.Int8:
		s, o := tensor.View[int8](src), tensor.View[int8](dst)
		for j, v := range s {
			o[j] = int8(q(int32(v)))
		}
	case tensor.Int16:
		s, o := tensor.View[int16](src), tensor.View[int16](dst)
		for j, v := range s {
			o[j] = int16(q(int32(v)))
		}
	}
}

func clampOutput(d *joinData, out *tensor.Tensor) {
	cnt := out.NumElements()
	switch out.Type {
	case tensor.Float32:
		v := out.Float32s()[:cnt]
		for i, x := range v {
			v[i] = min(max(x, d.actLoF), d.actHiF)
		}
	case tensor.Uint8:
		v := out.Uint8s()[:cnt]
		for i, x := range v {
			v[i] = uint8(min(max(int32(x), d.actLo), d.actHi))
		}
	case tensor.Int8:
		v := out.Int8s()[:cnt]
		for i, x := range v {
			v[i] = int8(min(max(int32(x), d.actLo), d.actHi))
		}
	case tensor.Int16:
		v := out.Int16s()[:cnt]
		for i, x := range v {
			v[i] = int16(min(max(int32(x), d.actLo), d.actHi))
		}
	}
}

// evalSplit splits the data input along the prepared axis into the outputs.
func evalSplit(ctx *kernels.Context, n *kernels.Node) error {
	d, ok := n.Data.(*joinData)
	if !ok {
		return n.Errorf("not prepared")
	}
	in := n.Inputs[d.first]
	es := in.Type.Size()
	total := 0
	for i, o := range n.Outputs {
		if len(o.Data) < d.outer*d.chunks[i]*es {
			return n.Errorf("output %d has %d bytes, expected %d", i, len(o.Data), d.outer*d.chunks[i]*es)
		}
		total += d.chunks[i]
	}
	if len(in.Data) < d.outer*total*es {
		return n.Errorf("input has %d bytes, expected %d", len(in.Data), d.outer*total*es)
	}
	s := 0
	for b := 0; b < d.outer; b++ {
		for i, o := range n.Outputs {
			c := d.chunks[i]
			copy(o.Data[b*c*es:(b+1)*c*es], in.Data[s*es:(s+c)*es])
			s += c
		}
	}
	return nil
}

// prepareSplitOutputs sets each output's shape: the input's with sizes[i]
// along axis.
func prepareSplitOutputs(ctx *kernels.Context, n *kernels.Node, in *tensor.Tensor, axis int, sizes []int, first int) error {
	rank := in.Rank()
	d := &joinData{outer: product(in.Shape, 0, axis), chunks: make([]int, len(n.Outputs)), first: first}
	inner := product(in.Shape, axis+1, rank)
	for i, o := range n.Outputs {
		if o.Type != in.Type {
			return n.Errorf("output %d (%q) has type %s, expected the input type %s", i, o.Name, o.Type, in.Type)
		}
		shape := append([]int{}, in.Shape...)
		shape[axis] = sizes[i]
		if err := ctx.ResizeOutput(o, shape); err != nil {
			return n.Errorf("%v", err)
		}
		d.chunks[i] = sizes[i] * inner
	}
	n.Data = d
	return tryFold(ctx, n, evalSplit)
}

func prepareSplit(ctx *kernels.Context, n *kernels.Node) error {
	if err := n.CheckArity(2, 2, -1); err != nil {
		return err
	}
	if len(n.Outputs) < 1 {
		return n.Errorf("has no outputs, expected at least 1")
	}
	at, in := n.Inputs[0], n.Inputs[1]
	if _, err := elemSize(n, in); err != nil {
		return err
	}
	unfold(ctx, n)
	if o, ok := n.Options.(*schema.SplitOptions); ok && o != nil && o.NumSplits != 0 && o.NumSplits != len(n.Outputs) {
		return n.Errorf("num_splits is %d but the op has %d outputs", o.NumSplits, len(n.Outputs))
	}
	if !ctx.Known(at) {
		for _, o := range n.Outputs {
			ctx.MarkDynamic(o)
		}
		return nil
	}
	a, err := readScalarInt(n, at, "axis")
	if err != nil {
		return err
	}
	axis, err := normAxis(n, a, in.Rank(), "axis")
	if err != nil {
		return err
	}
	num := len(n.Outputs)
	if in.Shape[axis]%num != 0 {
		return n.Errorf("dimension %d of shape %s is not divisible into %d splits", axis, tensor.ShapeString(in.Shape), num)
	}
	sizes := make([]int, num)
	for i := range sizes {
		sizes[i] = in.Shape[axis] / num
	}
	return prepareSplitOutputs(ctx, n, in, axis, sizes, 1)
}

func prepareSplitV(ctx *kernels.Context, n *kernels.Node) error {
	if err := n.CheckArity(3, 3, -1); err != nil {
		return err
	}
	if len(n.Outputs) < 1 {
		return n.Errorf("has no outputs, expected at least 1")
	}
	in, st, at := n.Inputs[0], n.Inputs[1], n.Inputs[2]
	if _, err := elemSize(n, in); err != nil {
		return err
	}
	unfold(ctx, n)
	if st.Rank() != 1 || st.NumElements() != len(n.Outputs) {
		return n.Errorf("size_splits tensor %q has shape %s, expected [%d] (one size per output)", st.Name, tensor.ShapeString(st.Shape), len(n.Outputs))
	}
	if !ctx.Known(st) || !ctx.Known(at) {
		for _, o := range n.Outputs {
			ctx.MarkDynamic(o)
		}
		return nil
	}
	a, err := readScalarInt(n, at, "axis")
	if err != nil {
		return err
	}
	axis, err := normAxis(n, a, in.Rank(), "axis")
	if err != nil {
		return err
	}
	sizes, err := readInts(n, st, "size_splits")
	if err != nil {
		return err
	}
	infer, sum := -1, 0
	for i, s := range sizes {
		switch {
		case s == -1:
			if infer >= 0 {
				return n.Errorf("size_splits %v has more than one -1", sizes)
			}
			infer = i
		case s < 0:
			return n.Errorf("size_splits %v has a negative size", sizes)
		default:
			sum += s
		}
	}
	dim := in.Shape[axis]
	if infer >= 0 {
		if sum > dim {
			return n.Errorf("size_splits %v add up to more than dimension %d (%d)", sizes, axis, dim)
		}
		sizes[infer] = dim - sum
	} else if sum != dim {
		return n.Errorf("size_splits %v add up to %d, expected dimension %d's size %d", sizes, sum, axis, dim)
	}
	return prepareSplitOutputs(ctx, n, in, axis, sizes, 0)
}

func prepareUnpack(ctx *kernels.Context, n *kernels.Node) error {
	if err := n.CheckArity(1, 1, -1); err != nil {
		return err
	}
	in := n.Inputs[0]
	if _, err := elemSize(n, in); err != nil {
		return err
	}
	unfold(ctx, n)
	axis, num := 0, 0
	if o, ok := n.Options.(*schema.UnpackOptions); ok && o != nil {
		axis, num = o.Axis, o.Num
	}
	rank := in.Rank()
	if rank == 0 {
		return n.Errorf("input %q is a scalar, expected rank >= 1", in.Name)
	}
	axis, err := normAxis(n, axis, rank, "axis")
	if err != nil {
		return err
	}
	if in.Shape[axis] != len(n.Outputs) || (num != 0 && num != len(n.Outputs)) {
		return n.Errorf("input dimension %d is %d and num is %d, but the op has %d outputs", axis, in.Shape[axis], num, len(n.Outputs))
	}
	shape := make([]int, 0, rank-1)
	shape = append(shape, in.Shape[:axis]...)
	shape = append(shape, in.Shape[axis+1:]...)
	d := &joinData{outer: product(in.Shape, 0, axis), chunks: make([]int, len(n.Outputs))}
	inner := product(in.Shape, axis+1, rank)
	for i, o := range n.Outputs {
		if o.Type != in.Type {
			return n.Errorf("output %d (%q) has type %s, expected the input type %s", i, o.Name, o.Type, in.Type)
		}
		if err := ctx.ResizeOutput(o, shape); err != nil {
			return n.Errorf("%v", err)
		}
		d.chunks[i] = inner
	}
	n.Data = d
	return tryFold(ctx, n, evalSplit)
}
