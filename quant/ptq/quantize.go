package ptq

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/modelbuilder"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
)

// Options configures Quantize.
type Options struct {
	// IO is the type of the quantized model's inputs and outputs (the
	// zero value is tensor.Float32, as in TFLite's type numbering):
	// tensor.Float32 (QUANTIZE/DEQUANTIZE are inserted at the boundaries),
	// tensor.Int8 or tensor.Uint8 (QUANTIZE
	// uint8↔int8 at the boundaries, as TensorFlow 2 PTQ models do).
	IO tensor.DType
	// PerTensor quantizes weights with one scale per tensor instead of one
	// per output channel.
	PerTensor bool
}

// UnsupportedOpError reports a float op the quantizer cannot convert.
type UnsupportedOpError struct {
	Op   string
	Node int
}

func (e *UnsupportedOpError) Error() string {
	return fmt.Sprintf("node %d: op %s cannot be quantized to int8 (not supported by the quantizer)", e.Node, e.Op)
}

// opKind says how an op's output quantization parameters are chosen.
type opKind int

const (
	// kindOwn: the output gets its own calibrated parameters.
	kindOwn opKind = iota
	// kindWeights: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED,
	// TRANSPOSE_CONV: weights per channel, int32 bias, own output params.
	kindWeights
	// kindFixed: output parameters fixed by TensorFlow Lite's kernels.
	kindFixed
	// kindSame: data-movement ops whose (float) data inputs and outputs
	// share one scale and zero point.
	kindSame
)

type opRule struct {
	kind    opKind
	version int // minimum version for int8
	// dataInputs lists which inputs share the output's parameters for
	// kindSame (nil: every float input).
	dataInputs []int
	// fixedScale/fixedZP for kindFixed.
	fixedScale float32
	fixedZP    int64
}

// rules lists the ops the quantizer converts, with the int8 op versions
// TensorFlow Lite's converter writes (tensorflow/lite/tools/versioning).
var rules = map[schema.BuiltinOperator]opRule{
	schema.OpConv2D:                {kind: kindWeights, version: 3},
	schema.OpDepthwiseConv2D:       {kind: kindWeights, version: 3},
	schema.OpFullyConnected:        {kind: kindWeights, version: 4},
	schema.OpTransposeConv:         {kind: kindWeights, version: 3},
	schema.OpSoftmax:               {kind: kindFixed, version: 2, fixedScale: 1.0 / 256, fixedZP: -128},
	schema.OpLogistic:              {kind: kindFixed, version: 2, fixedScale: 1.0 / 256, fixedZP: -128},
	schema.OpTanh:                  {kind: kindFixed, version: 2, fixedScale: 1.0 / 128, fixedZP: 0},
	schema.OpL2Normalization:       {kind: kindFixed, version: 2, fixedScale: 1.0 / 128, fixedZP: 0},
	schema.OpLogSoftmax:            {kind: kindFixed, version: 2, fixedScale: 16.0 / 256, fixedZP: 127},
	schema.OpReshape:               {kind: kindSame, version: 1, dataInputs: []int{0}},
	schema.OpSqueeze:               {kind: kindSame, version: 1, dataInputs: []int{0}},
	schema.OpExpandDims:            {kind: kindSame, version: 1, dataInputs: []int{0}},
	schema.OpMaxPool2D:             {kind: kindSame, version: 2},
	schema.OpAveragePool2D:         {kind: kindSame, version: 2},
	schema.OpConcatenation:         {kind: kindSame, version: 2},
	schema.OpPad:                   {kind: kindSame, version: 2, dataInputs: []int{0}},
	schema.OpStridedSlice:          {kind: kindSame, version: 2, dataInputs: []int{0}},
	schema.OpSlice:                 {kind: kindSame, version: 2, dataInputs: []int{0}},
	schema.OpGather:                {kind: kindSame, version: 2, dataInputs: []int{0}},
	schema.OpTranspose:             {kind: kindSame, version: 2, dataInputs: []int{0}},
	schema.OpSplit:                 {kind: kindSame, version: 2, dataInputs: []int{1}},
	schema.OpSplitV:                {kind: kindSame, version: 2, dataInputs: []int{0}},
	schema.OpPack:                  {kind: kindSame, version: 2},
	schema.OpUnpack:                {kind: kindSame, version: 2},
	schema.OpResizeNearestNeighbor: {kind: kindSame, version: 2, dataInputs: []int{0}},
	schema.OpResizeBilinear:        {kind: kindSame, version: 2, dataInputs: []int{0}},
	schema.OpSpaceToDepth:          {kind: kindSame, version: 2},
	schema.OpDepthToSpace:          {kind: kindSame, version: 2},
	schema.OpReduceMax:             {kind: kindSame, version: 2, dataInputs: []int{0}},
	schema.OpReduceMin:             {kind: kindSame, version: 2, dataInputs: []int{0}},
	schema.OpMaximum:               {kind: kindSame, version: 2},
	schema.OpMinimum:               {kind: kindSame, version: 2},
	schema.OpBatchToSpaceND:        {kind: kindSame, version: 2, dataInputs: []int{0}},
	schema.OpSpaceToBatchND:        {kind: kindSame, version: 2, dataInputs: []int{0}},
	schema.OpAdd:                   {kind: kindOwn, version: 2},
	schema.OpSub:                   {kind: kindOwn, version: 2},
	schema.OpMul:                   {kind: kindOwn, version: 2},
	schema.OpRelu:                  {kind: kindOwn, version: 2},
	schema.OpRelu6:                 {kind: kindOwn, version: 2},
	schema.OpReluN1To1:             {kind: kindOwn, version: 2},
	schema.OpLeakyRelu:             {kind: kindOwn, version: 2},
	schema.OpHardSwish:             {kind: kindOwn, version: 1},
	schema.OpMean:                  {kind: kindOwn, version: 2},
	schema.OpSum:                   {kind: kindOwn, version: 2},
	schema.OpSquaredDifference:     {kind: kindOwn, version: 2},
}

// params is one tensor's affine quantization.
type params struct {
	scale float32
	zp    int64
}

// ActivationParams returns TensorFlow Lite's int8 parameters for a real
// range: the range is widened to include 0, scale = (max-min)/255 and the
// zero point is nudged to an integer in [-128, 127] so that 0 is exactly
// representable.
func ActivationParams(r Range) (scale float32, zeroPoint int64) {
	lo, hi := min(r.Min, 0), max(r.Max, 0)
	if hi-lo < 1e-9 {
		return 1, 0
	}
	s := (hi - lo) / 255
	zpFromMin := -128 - lo/s
	zp := math.Round(zpFromMin)
	zp = max(-128, min(127, zp))
	return float32(s), int64(zp)
}

type unionFind []int

func (u unionFind) find(x int) int {
	for u[x] != x {
		u[x] = u[u[x]]
		x = u[x]
	}
	return x
}

func (u unionFind) join(a, b int) { u[u.find(a)] = u.find(b) }

// Quantize rewrites a float32 model as a full-integer int8 model using the
// calibrated ranges (from Calibrate). The result is checked by loading it
// with the runtime.
func Quantize(model []byte, ranges Ranges, opts Options) ([]byte, error) {
	io := opts.IO
	if io != tensor.Int8 && io != tensor.Uint8 && io != tensor.Float32 {
		return nil, fmt.Errorf("quantize: input/output type %s: expected float32, int8 or uint8", io)
	}
	m, err := schema.Parse(model)
	if err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	b, err := toBuilder(m)
	if err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	s := b.Main()
	for _, ti := range s.Inputs {
		if s.Tensors[ti].Type != tensor.Float32 {
			return nil, fmt.Errorf("quantize: input %q is %s: expected a float32 model", s.Tensors[ti].Name, s.Tensors[ti].Type)
		}
	}
	isFloat := func(ti int) bool { return ti >= 0 && s.Tensors[ti].Type == tensor.Float32 }
	opName := func(op *modelbuilder.Op) string {
		if op.Builtin == schema.OpCustom {
			return op.Custom
		}
		return op.Builtin.String()
	}

	// Check ops; classify constants: weights and biases of weight ops.
	weightOf := map[int]int{} // weight tensor -> node
	biasOf := map[int]int{}   // bias tensor -> node
	quantized := make([]bool, len(s.Ops))
	for oi := range s.Ops {
		op := &s.Ops[oi]
		quantized[oi] = touchesFloat(s, op)
		rule, ok := rules[op.Builtin]
		if !quantized[oi] {
			continue // integer-only op (e.g. shape arithmetic) stays as it is
		}
		if !ok || op.Builtin == schema.OpCustom {
			return nil, fmt.Errorf("quantize: %w", &UnsupportedOpError{Op: opName(op), Node: oi})
		}
		if rule.kind != kindWeights {
			continue
		}
		wi, bi := 1, 2
		if op.Builtin == schema.OpTransposeConv {
			bi = 3
		}
		if len(op.Inputs) <= wi || op.Inputs[wi] < 0 || len(s.Tensors[op.Inputs[wi]].Data) == 0 {
			return nil, fmt.Errorf("quantize: node %d (%s): weights are not a constant tensor", oi, opName(op))
		}
		w := op.Inputs[wi]
		if s.Tensors[w].Type != tensor.Float32 {
			return nil, fmt.Errorf("quantize: node %d (%s): weights %q are %s, expected float32", oi, opName(op), s.Tensors[w].Name, s.Tensors[w].Type)
		}
		if prev, dup := weightOf[w]; dup {
			return nil, fmt.Errorf("quantize: weights %q are shared by nodes %d and %d", s.Tensors[w].Name, prev, oi)
		}
		weightOf[w] = oi
		if len(op.Inputs) > bi && op.Inputs[bi] >= 0 {
			bt := op.Inputs[bi]
			if len(s.Tensors[bt].Data) == 0 {
				return nil, fmt.Errorf("quantize: node %d (%s): bias %q is not a constant tensor", oi, opName(op), s.Tensors[bt].Name)
			}
			if prev, dup := biasOf[bt]; dup {
				return nil, fmt.Errorf("quantize: bias %q is shared by nodes %d and %d", s.Tensors[bt].Name, prev, oi)
			}
			biasOf[bt] = oi
		}
	}
	isParam := func(ti int) bool {
		_, w := weightOf[ti]
		_, bb := biasOf[ti]
		return w || bb
	}

	// Ranges: calibrated activations; other float constants from their
	// values.
	rng := Ranges{}
	for k, v := range ranges {
		rng[k] = v
	}
	for ti := range s.Tensors {
		t := &s.Tensors[ti]
		if t.Type == tensor.Float32 && !isParam(ti) && len(t.Data) > 0 {
			r := Range{}
			for _, v := range floats(t.Data) {
				r.add(float64(v))
			}
			rng[ti] = r
		}
	}

	fixed := map[int]params{}
	for oi := range s.Ops {
		if r := rules[s.Ops[oi].Builtin]; quantized[oi] && r.kind == kindFixed {
			for _, o := range s.Ops[oi].Outputs {
				fixed[o] = params{r.fixedScale, r.fixedZP}
			}
		}
	}
	// An op that merges several tensors into one scale (CONCATENATION,
	// MAXIMUM, …) cannot also keep the fixed scale of a SOFTMAX/TANH/…
	// input: that input is requantized first (an int8→int8 QUANTIZE), as
	// the converter does when scales conflict.
	var ops []modelbuilder.Op
	var opQuantized []bool
	newIndex := make([]int, len(s.Ops)) // float model node -> node after insertion
	for oi := range s.Ops {
		op := s.Ops[oi]
		if r := rules[op.Builtin]; quantized[oi] && r.kind == kindSame {
			data := sameMembers(s, &op, r)
			if len(data) > 1 {
				for k, in := range op.Inputs {
					if _, ok := fixed[in]; !ok || !slices.Contains(data, in) {
						continue
					}
					src := s.Tensors[in]
					nt := s.AddTensor(modelbuilder.Tensor{Name: src.Name + "/requantized", Type: tensor.Float32, Shape: append([]int(nil), src.Shape...)})
					rng[nt] = rng[in]
					ops = append(ops, modelbuilder.Op{Builtin: schema.OpQuantize, Version: 1, Inputs: []int{in}, Outputs: []int{nt}})
					opQuantized = append(opQuantized, true)
					op.Inputs = append([]int(nil), op.Inputs...)
					op.Inputs[k] = nt
				}
			}
		}
		newIndex[oi] = len(ops)
		ops = append(ops, op)
		opQuantized = append(opQuantized, quantized[oi])
	}
	s.Ops = ops

	// Group tensors that must share parameters.
	nt := len(s.Tensors)
	uf := make(unionFind, nt)
	for i := range uf {
		uf[i] = i
	}
	for oi := range s.Ops {
		op := &s.Ops[oi]
		if r := rules[op.Builtin]; opQuantized[oi] && r.kind == kindSame {
			members := sameMembers(s, op, r)
			for _, o := range op.Outputs {
				if isFloat(o) {
					members = append(members, o)
				}
			}
			for k := 1; k < len(members); k++ {
				uf.join(members[0], members[k])
			}
		}
	}
	groupRange := map[int]Range{}
	groupFixed := map[int]params{}
	for ti := range s.Tensors {
		if !isFloat(ti) || isParam(ti) {
			continue
		}
		g := uf.find(ti)
		if p, ok := fixed[ti]; ok {
			groupFixed[g] = p
		}
		r, ok := rng[ti]
		if !ok {
			return nil, fmt.Errorf("quantize: tensor %d (%q) has no calibrated range: calibrate with this model", ti, s.Tensors[ti].Name)
		}
		if old, seen := groupRange[g]; seen {
			r = old.union(r)
		}
		groupRange[g] = r
	}

	// Rewrite tensors.
	for ti := range s.Tensors {
		t := &s.Tensors[ti]
		if t.Type != tensor.Float32 {
			continue
		}
		if oi, ok := weightOf[ti]; ok {
			if err := quantizeWeights(t, s.Ops[newIndex[oi]].Builtin, opts.PerTensor); err != nil {
				return nil, fmt.Errorf("quantize: node %d: %w", oi, err)
			}
			continue
		}
		if _, ok := biasOf[ti]; ok {
			continue // after the weights and inputs are known
		}
		g := uf.find(ti)
		p, ok := groupFixed[g]
		if !ok {
			sc, zp := ActivationParams(groupRange[g])
			p = params{sc, zp}
		}
		t.Type = tensor.Int8
		t.Quant = &tensor.Quantization{Scale: []float32{p.scale}, ZeroPoint: []int64{p.zp}}
		if len(t.Data) > 0 {
			t.Data = quantizeValues(floats(t.Data), p)
		}
	}
	for bt, oi := range biasOf {
		op := &s.Ops[newIndex[oi]]
		in, wi := op.Inputs[0], op.Inputs[1]
		if op.Builtin == schema.OpTransposeConv {
			in = op.Inputs[2]
		}
		if in < 0 || s.Tensors[in].Type != tensor.Int8 || s.Tensors[in].Quant == nil || len(s.Tensors[in].Quant.Scale) != 1 {
			return nil, fmt.Errorf("quantize: node %d (%s): the input is not a float32 activation (quantized per tensor)", oi, op.Builtin)
		}
		if err := quantizeBias(&s.Tensors[bt], s.Tensors[in].Quant.Scale[0], s.Tensors[wi].Quant); err != nil {
			return nil, fmt.Errorf("quantize: node %d: %w", oi, err)
		}
	}

	// Op versions.
	for oi := range s.Ops {
		op := &s.Ops[oi]
		r, ok := rules[op.Builtin]
		if !ok || !opQuantized[oi] {
			continue
		}
		v := r.version
		if op.Builtin == schema.OpTransposeConv && (len(op.Inputs) < 4 || op.Inputs[3] < 0) {
			v = 2
		}
		if o, ok := op.Options.(*schema.FullyConnectedOptions); ok && o.KeepNumDims {
			v = 5
		}
		op.Version = max(op.Version, v)
	}

	if err := rewriteBoundaries(b, io); err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	out, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("quantize: write model: %w", err)
	}
	if _, err := inference.Load(out); err != nil {
		return nil, fmt.Errorf("quantize: the quantized model does not load: %w", err)
	}
	return out, nil
}

// sameMembers returns the float data inputs of a kindSame op.
func sameMembers(s *modelbuilder.Subgraph, op *modelbuilder.Op, r opRule) []int {
	var members []int
	if r.dataInputs == nil {
		for _, i := range op.Inputs {
			if i >= 0 && s.Tensors[i].Type == tensor.Float32 {
				members = append(members, i)
			}
		}
		return members
	}
	for _, k := range r.dataInputs {
		if k < len(op.Inputs) && op.Inputs[k] >= 0 && s.Tensors[op.Inputs[k]].Type == tensor.Float32 {
			members = append(members, op.Inputs[k])
		}
	}
	return members
}

// touchesFloat reports whether op reads or writes a float32 tensor.
func touchesFloat(s *modelbuilder.Subgraph, op *modelbuilder.Op) bool {
	for _, l := range [][]int{op.Inputs, op.Outputs} {
		for _, i := range l {
			if i >= 0 && s.Tensors[i].Type == tensor.Float32 {
				return true
			}
		}
	}
	return false
}

// rewriteBoundaries changes the model's inputs and outputs (now int8) to
// the requested type with QUANTIZE/DEQUANTIZE ops.
func rewriteBoundaries(b *modelbuilder.Builder, io tensor.DType) error {
	s := b.Main()
	if io == tensor.Int8 {
		return nil
	}
	var pre []modelbuilder.Op
	for k, ti := range s.Inputs {
		q := s.Tensors[ti]
		if q.Type != tensor.Int8 || q.Quant == nil || len(q.Quant.Scale) != 1 {
			return fmt.Errorf("input %q is %s after quantization, expected a per-tensor int8 activation", q.Name, q.Type)
		}
		outer := modelbuilder.Tensor{Name: q.Name, Type: io, Shape: append([]int(nil), q.Shape...)}
		if io == tensor.Uint8 {
			outer.Quant = &tensor.Quantization{Scale: q.Quant.Scale, ZeroPoint: []int64{q.Quant.ZeroPoint[0] + 128}}
		}
		s.Tensors[ti].Name = q.Name + "_int8"
		ni := s.AddTensor(outer)
		pre = append(pre, modelbuilder.Op{Builtin: schema.OpQuantize, Version: 1, Inputs: []int{ni}, Outputs: []int{ti}})
		s.Inputs[k] = ni
	}
	s.Ops = append(pre, s.Ops...)
	for k, ti := range s.Outputs {
		q := s.Tensors[ti]
		if q.Type != tensor.Int8 || q.Quant == nil || len(q.Quant.Scale) != 1 {
			return fmt.Errorf("output %q is %s after quantization, expected a per-tensor int8 activation", q.Name, q.Type)
		}
		outer := modelbuilder.Tensor{Name: q.Name, Type: io, Shape: append([]int(nil), q.Shape...)}
		op := modelbuilder.Op{Builtin: schema.OpDequantize, Version: 2}
		if io == tensor.Uint8 {
			outer.Quant = &tensor.Quantization{Scale: q.Quant.Scale, ZeroPoint: []int64{q.Quant.ZeroPoint[0] + 128}}
			op = modelbuilder.Op{Builtin: schema.OpQuantize, Version: 1}
		}
		s.Tensors[ti].Name = q.Name + "_int8"
		ni := s.AddTensor(outer)
		op.Inputs, op.Outputs = []int{ti}, []int{ni}
		s.AddOp(op)
		s.Outputs[k] = ni
	}
	return nil
}

func floats(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

func quantizeValues(v []float32, p params) []byte {
	out := make([]byte, len(v))
	for i, x := range v {
		q := math.Round(float64(x)/float64(p.scale)) + float64(p.zp)
		out[i] = byte(int8(max(-128, min(127, q))))
	}
	return out
}

// channelDim returns the output-channel dimension of op's weights.
func channelDim(op schema.BuiltinOperator) int {
	if op == schema.OpDepthwiseConv2D {
		return 3
	}
	return 0
}

// quantizeWeights makes t symmetric int8 in [-127, 127], per output channel
// unless perTensor.
func quantizeWeights(t *modelbuilder.Tensor, op schema.BuiltinOperator, perTensor bool) error {
	v := floats(t.Data)
	if len(t.Shape) == 0 {
		return fmt.Errorf("weights %q have no shape", t.Name)
	}
	dim := channelDim(op)
	if dim >= len(t.Shape) {
		return fmt.Errorf("weights %q have shape %s, expected at least %d dimensions", t.Name, tensor.ShapeString(t.Shape), dim+1)
	}
	channels := t.Shape[dim]
	inner := 1
	for _, d := range t.Shape[dim+1:] {
		inner *= d
	}
	if perTensor {
		channels, inner = 1, len(v)
	}
	if channels == 0 {
		return errors.New("weights have no output channels")
	}
	maxAbs := make([]float64, channels)
	chOf := func(i int) int { return (i / inner) % channels }
	if perTensor {
		chOf = func(int) int { return 0 }
	}
	for i, x := range v {
		c := chOf(i)
		maxAbs[c] = max(maxAbs[c], math.Abs(float64(x)))
	}
	q := &tensor.Quantization{Scale: make([]float32, channels), ZeroPoint: make([]int64, channels), Dim: dim}
	if perTensor {
		q.Dim = 0
	}
	for c, a := range maxAbs {
		s := float32(a / 127)
		if s == 0 {
			s = 1
		}
		q.Scale[c] = s
	}
	data := make([]byte, len(v))
	for i, x := range v {
		r := math.Round(float64(x) / float64(q.Scale[chOf(i)]))
		data[i] = byte(int8(max(-127, min(127, r))))
	}
	t.Type, t.Data, t.Quant = tensor.Int8, data, q
	return nil
}

// quantizeBias makes t int32 with scale inputScale*weightScale[c], zero
// point 0.
func quantizeBias(t *modelbuilder.Tensor, inputScale float32, wq *tensor.Quantization) error {
	v := floats(t.Data)
	if len(wq.Scale) != 1 && len(wq.Scale) != len(v) {
		return fmt.Errorf("bias %q has %d values, weights have %d channel scales", t.Name, len(v), len(wq.Scale))
	}
	q := &tensor.Quantization{Scale: make([]float32, len(wq.Scale)), ZeroPoint: make([]int64, len(wq.Scale))}
	for c, ws := range wq.Scale {
		q.Scale[c] = inputScale * ws
	}
	data := make([]byte, 4*len(v))
	for i, x := range v {
		s := q.Scale[0]
		if len(q.Scale) > 1 {
			s = q.Scale[i]
		}
		r := math.Round(float64(x) / float64(s))
		r = max(math.MinInt32, min(math.MaxInt32, r))
		binary.LittleEndian.PutUint32(data[4*i:], uint32(int32(r)))
	}
	t.Type, t.Data, t.Quant = tensor.Int32, data, q
	return nil
}
