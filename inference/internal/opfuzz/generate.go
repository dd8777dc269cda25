// Package opfuzz generates hostile single-op TensorFlow Lite models from
// fuzz bytes: any registered kernel, random dtypes, shapes (rank 0 to 7,
// zero-sized and mismatched), options, constant inputs, quantization
// parameters and arities. Its tests run every generated model through the
// real loader and interpreter, which must answer with errors, never a
// panic, a hang or unbounded allocation.
package opfuzz

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"

	_ "github.com/edgefleet/edgefleet/inference" // registers every kernel
	"github.com/edgefleet/edgefleet/inference/flexbuf"
	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/modelbuilder"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/quant"
)

// OpCode names one registered kernel: a builtin op, or a custom op when
// Builtin is schema.OpCustom.
type OpCode struct {
	Builtin schema.BuiltinOperator
	Custom  string
}

// String returns the op's name.
func (o OpCode) String() string {
	if o.Builtin == schema.OpCustom {
		return o.Custom
	}
	return o.Builtin.String()
}

// Ops lists every registered kernel in a fixed order (builtins by code,
// then customs by name), so the same fuzz bytes always pick the same op.
func Ops() []OpCode {
	bs := kernels.Builtins()
	slices.Sort(bs)
	cs := kernels.Customs()
	slices.Sort(cs)
	out := make([]OpCode, 0, len(bs)+len(cs))
	for _, b := range bs {
		out = append(out, OpCode{Builtin: b})
	}
	for _, c := range cs {
		out = append(out, OpCode{Builtin: schema.OpCustom, Custom: c})
	}
	return out
}

// Case is one generated model and the data for its runtime inputs.
type Case struct {
	Op OpCode
	// Model is the serialized .tflite file.
	Model []byte
	// Fill supplies the bytes written into the interpreter's inputs.
	Fill []byte
	// Resize, when not nil, is a new shape for input 0 applied after the
	// first Invoke (exercising re-prepare and re-planning).
	Resize []int
	// Desc describes the node (for failure messages).
	Desc string
}

// src hands out fuzz bytes; past the end it continues with a
// deterministic pseudo-random stream (zeros would make every chance() true
// once a large node has used up the input).
type src struct {
	b []byte
	i int
	x uint64
	// rank is the SVDF rank a structured node was built for (0: none).
	rank int
}

func (s *src) byte() byte {
	if s.i >= len(s.b) {
		// splitmix64 over the position.
		s.i++
		s.x += 0x9e3779b97f4a7c15
		z := s.x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		return byte(z ^ (z >> 31))
	}
	v := s.b[s.i]
	s.i++
	return v
}

func (s *src) intn(n int) int {
	if n <= 1 {
		return 0
	}
	if n <= 256 {
		return int(s.byte()) % n
	}
	return int(binary.LittleEndian.Uint16([]byte{s.byte(), s.byte()})) % n
}

func (s *src) chance(num, den int) bool { return s.intn(den) < num }

func pick[T any](s *src, vals ...T) T { return vals[s.intn(len(vals))] }

// bytes returns the next n fuzz bytes, cycling them when the input is short.
func (s *src) bytes(n int) []byte {
	out := make([]byte, n)
	for i := range out {
		if len(s.b) > 0 {
			out[i] = s.b[(s.i+i)%len(s.b)] ^ byte(i*131)
		}
	}
	s.i += min(n, 8)
	return out
}

// weird returns an integer biased towards values that break kernels.
func (s *src) weird() int {
	if s.chance(5, 8) {
		return s.intn(5) - 1 // -1..3
	}
	return pick(s, 0, 1, 2, 3, 4, 5, 7, 8, 16, -1, -2, -3, -8, 100, 255, 256, 65535, 1<<20, 1<<30, math.MaxInt32, math.MinInt32, -(1 << 30))
}

// stride returns a stride, dilation or block size, mostly valid.
func (s *src) stride() int {
	if s.chance(3, 4) {
		return 1 + s.intn(3)
	}
	return pick(s, 0, -1, -2, 1<<20, 1<<30, math.MaxInt32, math.MinInt32, 64)
}

var dtypes = []tensor.DType{tensor.Float32, tensor.Int8, tensor.Uint8, tensor.Int16, tensor.Int32, tensor.Int64, tensor.Bool}

func (s *src) dtype() tensor.DType {
	if s.chance(1, 32) {
		return pick(s, tensor.Float16, tensor.String, tensor.Float64, tensor.Uint32, tensor.Int4, tensor.Complex64)
	}
	return pick(s, dtypes...)
}

func (s *src) activation() quant.Activation {
	if s.chance(7, 8) {
		return quant.Activation(s.intn(7))
	}
	return quant.Activation(pick(s, 7, 42, -1, 127))
}

func (s *src) padding() schema.Padding {
	if s.chance(7, 8) {
		return schema.Padding(s.intn(2))
	}
	return schema.Padding(pick(s, 2, -1, 100))
}

func (s *src) f32() float32 {
	return pick[float32](s, 0, 1, 0.5, -1, 0.2, 1e-30, 1e30, -1e30, 3.4e38, 1e-45, 2, 0.01)
}

// dim returns one dimension: mostly small, sometimes zero or larger.
func (s *src) dim() int {
	if s.chance(13, 16) {
		return 1 + s.intn(4)
	}
	return pick(s, 0, 0, 5, 7, 8, 16, 33)
}

// shape returns a shape whose element count stays small.
func (s *src) shape() []int {
	rank := pick(s, 0, 1, 2, 2, 3, 3, 4, 4, 4, 4, 5, 6, 7)
	sh := make([]int, rank)
	elems := 1
	for i := range sh {
		d := s.dim()
		if elems*max(d, 1) > 4096 {
			d = 1
		}
		sh[i] = d
		elems *= max(d, 1)
	}
	return sh
}

// variant derives a shape related to base: equal, broadcastable, with a
// changed dimension, or a different rank.
func (s *src) variant(base []int) []int {
	sh := slices.Clone(base)
	switch s.intn(8) {
	case 0, 1, 2, 3:
	case 4:
		if len(sh) > 0 {
			sh[s.intn(len(sh))] = 1
		}
	case 5:
		if len(sh) > 0 {
			sh[s.intn(len(sh))] = s.dim()
		}
	case 6:
		if len(sh) > 0 {
			sh = sh[s.intn(len(sh)):]
		}
	default:
		return s.shape()
	}
	return sh
}

func (s *src) quant(dt tensor.DType, sh []int) *tensor.Quantization {
	isQ := dt == tensor.Int8 || dt == tensor.Uint8 || dt == tensor.Int16
	if !isQ && !s.chance(1, 8) {
		return nil
	}
	if s.chance(1, 16) {
		return nil
	}
	scale := func() float32 {
		if s.chance(15, 16) {
			return pick[float32](s, 0.5, 0.1, 1.0/256, 1.0/128, 0.02, 1, 2)
		}
		return pick[float32](s, 0, 1e-38, 1e-20, 1e-10, 1e10, 1e30, 3.4e38, -1, 1e-45)
	}
	zp := func() int64 {
		if s.chance(3, 4) {
			switch dt {
			case tensor.Uint8:
				return int64(pick(s, 128, 0, 255, 3))
			case tensor.Int8:
				return int64(pick(s, 0, -128, 127, -5))
			}
			return 0
		}
		return pick[int64](s, -129, 256, 40000, -1<<40, 1<<40, math.MaxInt64)
	}
	n := 1
	dim := 0
	if s.chance(1, 6) && len(sh) > 0 {
		dim = s.intn(len(sh))
		n = sh[dim]
		if s.chance(1, 8) {
			n = pick(s, 0, 2, 3, 1000)
		}
		if s.chance(1, 16) {
			dim = pick(s, -1, 7, 100)
		}
	}
	q := &tensor.Quantization{Dim: dim}
	for i := 0; i < n; i++ {
		q.Scale = append(q.Scale, scale())
		q.ZeroPoint = append(q.ZeroPoint, zp())
	}
	if s.chance(1, 32) && n > 0 {
		q.ZeroPoint = q.ZeroPoint[:n-1]
	}
	if n == 0 || len(q.Scale) == 0 {
		return nil // the builder writes no quantization without scales
	}
	return q
}

// constData returns constant bytes for a tensor; integer tensors get
// values biased to small, negative and huge numbers (shapes, axes, indices,
// paddings).
func (s *src) constData(dt tensor.DType, sh []int, small bool) []byte {
	n := tensor.NumElements(sh)
	size := dt.Size()
	if size == 0 || n <= 0 {
		return nil
	}
	out := make([]byte, n*size)
	for i := 0; i < n; i++ {
		switch dt {
		case tensor.Int32:
			v := s.weird()
			if small && s.chance(7, 8) {
				v = s.intn(4)
			}
			binary.LittleEndian.PutUint32(out[i*4:], uint32(int32(v)))
		case tensor.Int64:
			v := int64(s.weird())
			if s.chance(1, 16) {
				v = pick[int64](s, math.MaxInt64, math.MinInt64, 1<<40)
			}
			binary.LittleEndian.PutUint64(out[i*8:], uint64(v))
		case tensor.Float32:
			binary.LittleEndian.PutUint32(out[i*4:], math.Float32bits(s.f32()))
		default:
			for k := 0; k < size; k++ {
				out[i*size+k] = s.byte()
			}
		}
	}
	return out
}

// unary lists the ops that take one input.
var unary = map[schema.BuiltinOperator]bool{
	schema.OpAbs: true, schema.OpAveragePool2D: true, schema.OpMaxPool2D: true, schema.OpDepthToSpace: true,
	schema.OpSpaceToDepth: true, schema.OpDequantize: true, schema.OpQuantize: true, schema.OpFloor: true,
	schema.OpL2Normalization: true, schema.OpLogistic: true, schema.OpRelu: true, schema.OpReluN1To1: true,
	schema.OpRelu6: true, schema.OpSoftmax: true, schema.OpTanh: true, schema.OpExp: true, schema.OpLogSoftmax: true,
	schema.OpCast: true, schema.OpNeg: true, schema.OpLog: true, schema.OpSqrt: true, schema.OpRsqrt: true,
	schema.OpShape: true, schema.OpUnpack: true, schema.OpLeakyRelu: true, schema.OpHardSwish: true, schema.OpSqueeze: true,
}

// boolOut lists the ops whose output is bool.
var boolOut = map[schema.BuiltinOperator]bool{
	schema.OpEqual: true, schema.OpNotEqual: true, schema.OpLess: true, schema.OpLessEqual: true,
	schema.OpGreater: true, schema.OpGreaterEqual: true,
}

// arity returns the usual input and output counts of op.
func arity(op OpCode) (int, int) {
	switch op.Builtin {
	case schema.OpConv2D, schema.OpDepthwiseConv2D, schema.OpFullyConnected, schema.OpSelectV2, schema.OpSelect,
		schema.OpPadV2, schema.OpSplitV, schema.OpSlice, schema.OpTransposeConv:
		return 3, 1
	case schema.OpStridedSlice:
		return 4, 1
	case schema.OpSvdf:
		return 5, 1
	case schema.OpUnidirectionalSequenceLstm, schema.OpLstm:
		return 24, 1
	case schema.OpSplit, schema.OpUnpack:
		return 2, 2
	case schema.OpCustom:
		return 3, 4
	}
	if unary[op.Builtin] {
		return 1, 1
	}
	return 2, 1
}

// Generate turns fuzz bytes into a single-op model.
func Generate(data []byte) (Case, error) {
	s := &src{b: data}
	ops := Ops()
	op := ops[s.intn(len(ops))]
	nIn, nOut := arity(op)
	switch s.intn(8) {
	case 0:
		nIn = s.intn(7)
	case 1:
		nOut = s.intn(5)
	case 2:
		nIn = max(0, nIn+s.intn(3)-1)
	}
	if op.Builtin == schema.OpUnidirectionalSequenceLstm && s.chance(1, 2) {
		nIn = 20 // no layer norm
	}
	main := s.dtype()
	if op.Builtin == schema.OpCustom && s.chance(3, 4) {
		main = pick(s, tensor.Float32, tensor.Uint8, tensor.Int8)
	}
	base := s.shape()
	b := modelbuilder.New()
	var desc strings.Builder
	fmt.Fprintf(&desc, "%s:", op)
	var inputs, runtime []int
	specs, structOut := s.structured(op.Builtin, main)
	if specs != nil {
		nIn = len(specs)
		if structOut > 0 && s.chance(7, 8) {
			nOut = structOut
		}
		desc.WriteString(" structured")
	}
	for i := 0; i < nIn; i++ {
		var sp spec
		if specs != nil {
			sp = specs[i]
		} else {
			sp = s.randomSpec(i, main, base)
		}
		if sp.omit || s.chance(1, 32) {
			inputs = append(inputs, -1)
			desc.WriteString(" in-")
			continue
		}
		t := modelbuilder.Tensor{Name: fmt.Sprintf("in%d", i), Type: sp.dt, Shape: sp.sh, Quant: s.quant(sp.dt, sp.sh)}
		isConst := sp.konst
		if isConst {
			t.Data = s.constData(t.Type, t.Shape, sp.small)
			if len(t.Data) == 0 {
				isConst = false
			}
		}
		if !isConst && (sp.variable || s.chance(1, 32)) {
			t.Variable = true
		}
		idx := b.AddTensor(t)
		inputs = append(inputs, idx)
		if !isConst && !t.Variable {
			runtime = append(runtime, idx)
		}
		fmt.Fprintf(&desc, " in%d=%s%v%s", i, t.Type, t.Shape, qdesc(t.Quant))
		if isConst {
			desc.WriteString("c")
		}
	}
	var outputs []int
	for i := 0; i < nOut; i++ {
		if s.chance(1, 32) && len(inputs) > 0 && inputs[0] >= 0 {
			// Hostile: an output aliasing an input (maybe a constant).
			outputs = append(outputs, inputs[s.intn(len(inputs))])
			if outputs[i] < 0 {
				outputs[i] = inputs[0]
			}
			desc.WriteString(" out=alias")
			continue
		}
		dt := main
		if boolOut[op.Builtin] {
			dt = tensor.Bool
		}
		if s.chance(1, 3) {
			dt = s.dtype()
		}
		sh := s.variant(base)
		q := s.quant(dt, sh)
		idx := b.AddTensor(modelbuilder.Tensor{Name: fmt.Sprintf("out%d", i), Type: dt, Shape: sh, Quant: q})
		outputs = append(outputs, idx)
		fmt.Fprintf(&desc, " out%d=%s%v%s", i, dt, sh, qdesc(q))
	}
	var inter []int
	if op.Builtin == schema.OpUnidirectionalSequenceLstm && s.chance(1, 2) {
		for i := 0; i < 5; i++ {
			inter = append(inter, b.AddTensor(modelbuilder.Tensor{Name: fmt.Sprintf("inter%d", i), Type: tensor.Int16, Shape: []int{}, Quant: s.quant(tensor.Int16, nil)}))
		}
	}
	version := 1
	if s.chance(1, 8) {
		version = 1 + s.intn(8)
	}
	mop := modelbuilder.Op{Builtin: op.Builtin, Custom: op.Custom, Version: version, Inputs: inputs, Outputs: outputs, Intermediates: inter}
	mop.Options = s.options(op.Builtin)
	if op.Builtin == schema.OpCustom {
		mop.CustomOptions = s.customOptions()
	}
	fmt.Fprintf(&desc, " opts=%+v", mop.Options)
	b.AddOp(mop)
	modelOut := outputs
	if len(outputs) > 0 && s.chance(1, 4) {
		// A second node consumes the first one's outputs: intermediate
		// tensors share the arena, and dynamic shapes propagate.
		op2 := ops[s.intn(len(ops))]
		in2 := slices.Clone(outputs)
		if s.chance(1, 2) {
			sp := s.randomSpec(1, main, base)
			sp.konst = true
			t := modelbuilder.Tensor{Name: "in2b", Type: sp.dt, Shape: sp.sh, Data: s.constData(sp.dt, sp.sh, true)}
			if len(t.Data) > 0 {
				in2 = append(in2, b.AddTensor(t))
			}
		}
		dt := main
		if s.chance(1, 3) {
			dt = s.dtype()
		}
		sh := s.variant(base)
		out2 := b.AddTensor(modelbuilder.Tensor{Name: "out2", Type: dt, Shape: sh, Quant: s.quant(dt, sh)})
		b.AddOp(modelbuilder.Op{Builtin: op2.Builtin, Custom: op2.Custom, Version: 1, Inputs: in2, Outputs: []int{out2}, Options: s.options(op2.Builtin)})
		modelOut = []int{out2}
		if s.chance(1, 2) {
			modelOut = append(modelOut, outputs[0])
		}
		fmt.Fprintf(&desc, " then %s(%v)->%s%v", op2, in2, dt, sh)
	}
	b.SetIO(runtime, modelOut)
	model, err := b.Bytes()
	if err != nil {
		return Case{}, err
	}
	c := Case{Op: op, Model: model, Fill: s.bytes(64)}
	if s.chance(1, 4) {
		c.Resize = s.variant(base)
		fmt.Fprintf(&desc, " resize=%v", c.Resize)
	}
	c.Desc = desc.String()
	return c, nil
}

func (s *src) customOptions() []byte {
	if s.chance(1, 16) {
		return s.bytes(s.intn(40))
	}
	num := func() any {
		if s.chance(11, 12) {
			return pick[any](s, 10, 1, 3, 100, 90, 2)
		}
		return pick[any](s, 0, -1, 1<<30, int64(math.MaxInt64), math.MaxInt32)
	}
	flt := func() any { return pick[any](s, 0.5, 0.6, 10.0, 5.0, 0.0, -1.0, 1e30, 1e-30) }
	var es []flexbuf.Entry
	add := func(k string, v any) {
		if !s.chance(1, 40) {
			es = append(es, flexbuf.Entry{Key: k, Value: v})
		}
	}
	add("max_detections", num())
	add("max_classes_per_detection", num())
	add("detections_per_class", num())
	add("num_classes", num())
	add("nms_score_threshold", flt())
	add("nms_iou_threshold", flt())
	add("y_scale", flt())
	add("x_scale", flt())
	add("h_scale", flt())
	add("w_scale", flt())
	add("use_regular_nms", s.chance(1, 2))
	b, err := flexbuf.BuildMap(pick(s, 4, 8, 1, 2), es...)
	if err != nil {
		b, _ = flexbuf.BuildMap(8, es...)
	}
	return b
}

// options returns a random options struct of the type op takes, or nil.
func (s *src) options(op schema.BuiltinOperator) any {
	if s.chance(1, 16) {
		return nil
	}
	switch op {
	case schema.OpConv2D:
		return &schema.Conv2DOptions{Padding: s.padding(), StrideW: s.stride(), StrideH: s.stride(), Activation: s.activation(),
			DilationW: s.stride(), DilationH: s.stride(), QuantizedBiasType: pick(s, tensor.Float32, tensor.Int32, tensor.Int64, tensor.Int8)}
	case schema.OpDepthwiseConv2D:
		return &schema.DepthwiseConv2DOptions{Padding: s.padding(), StrideW: s.stride(), StrideH: s.stride(), DepthMultiplier: s.weird(),
			Activation: s.activation(), DilationW: s.stride(), DilationH: s.stride()}
	case schema.OpTransposeConv:
		return &schema.TransposeConvOptions{Padding: s.padding(), StrideW: s.stride(), StrideH: s.stride(), Activation: s.activation()}
	case schema.OpAveragePool2D, schema.OpMaxPool2D, schema.OpL2Pool2D:
		return &schema.Pool2DOptions{Padding: s.padding(), StrideW: s.stride(), StrideH: s.stride(), FilterWidth: s.stride(), FilterHeight: s.stride(), Activation: s.activation()}
	case schema.OpFullyConnected:
		return &schema.FullyConnectedOptions{Activation: s.activation(), WeightsFormat: int8(pick(s, 0, 0, 0, 1, 2, -1)), KeepNumDims: s.chance(1, 2), AsymmetricQuantizeInputs: s.chance(1, 4)}
	case schema.OpAdd, schema.OpSub, schema.OpMul, schema.OpDiv, schema.OpL2Normalization:
		return &schema.ActivationOptions{Activation: s.activation(), PotScaleInt16: s.chance(1, 2)}
	case schema.OpSoftmax:
		return &schema.SoftmaxOptions{Beta: s.f32()}
	case schema.OpConcatenation:
		return &schema.ConcatenationOptions{Axis: s.weird(), Activation: s.activation()}
	case schema.OpReshape:
		if s.chance(1, 2) {
			return &schema.ReshapeOptions{}
		}
		sh := make([]int, s.intn(8))
		for i := range sh {
			sh[i] = s.weird()
		}
		return &schema.ReshapeOptions{NewShape: sh}
	case schema.OpMean, schema.OpSum, schema.OpReduceMax, schema.OpReduceMin, schema.OpReduceProd, schema.OpReduceAny, schema.OpReduceAll:
		return &schema.ReducerOptions{KeepDims: s.chance(1, 2)}
	case schema.OpSqueeze:
		sd := make([]int, s.intn(4))
		for i := range sd {
			sd[i] = s.weird()
		}
		return &schema.SqueezeOptions{SqueezeDims: sd}
	case schema.OpSplit, schema.OpSplitV:
		return &schema.SplitOptions{NumSplits: s.weird()}
	case schema.OpStridedSlice:
		m := func() int32 {
			if s.chance(1, 2) {
				return 0
			}
			return int32(s.intn(256)) | pick[int32](s, 0, 0, -1, math.MinInt32)
		}
		return &schema.StridedSliceOptions{BeginMask: m(), EndMask: m(), EllipsisMask: m(), NewAxisMask: m(), ShrinkAxisMask: m(), Offset: s.chance(1, 4)}
	case schema.OpGather:
		return &schema.GatherOptions{Axis: s.weird(), BatchDims: s.weird()}
	case schema.OpCast:
		return &schema.CastOptions{In: s.dtype(), Out: s.dtype()}
	case schema.OpArgMax, schema.OpArgMin:
		return &schema.ArgOptions{OutputType: s.dtype()}
	case schema.OpPack:
		return &schema.PackOptions{ValuesCount: s.weird(), Axis: s.weird()}
	case schema.OpUnpack:
		return &schema.UnpackOptions{Num: s.weird(), Axis: s.weird()}
	case schema.OpLeakyRelu:
		return &schema.LeakyReluOptions{Alpha: s.f32()}
	case schema.OpResizeBilinear, schema.OpResizeNearestNeighbor:
		return &schema.ResizeOptions{AlignCorners: s.chance(1, 2), HalfPixelCenters: s.chance(1, 2)}
	case schema.OpSpaceToDepth, schema.OpDepthToSpace:
		return &schema.BlockOptions{BlockSize: s.stride()}
	case schema.OpShape:
		return &schema.ShapeOptions{OutType: s.dtype()}
	case schema.OpSvdf:
		rank := s.weird()
		if s.rank > 0 && s.chance(3, 4) {
			rank = s.rank
		}
		return &schema.SVDFOptions{Rank: rank, Activation: s.activation(), AsymmetricQuantizeInputs: s.chance(1, 4)}
	case schema.OpUnidirectionalSequenceLstm, schema.OpLstm:
		return &schema.LSTMOptions{Activation: s.activation(), CellClip: s.f32(), ProjClip: s.f32(), TimeMajor: s.chance(1, 2),
			AsymmetricQuantizeInputs: s.chance(1, 4), DiagonalRecurrentTensors: s.chance(1, 8)}
	case schema.OpBatchMatMul:
		return &schema.BatchMatMulOptions{AdjX: s.chance(1, 2), AdjY: s.chance(1, 2), AsymmetricQuantizeInputs: s.chance(1, 4)}
	case schema.OpMirrorPad:
		return &schema.MirrorPadOptions{Mode: int8(pick(s, 0, 1, 2, -1))}
	}
	return nil
}

// qdesc describes quantization parameters for messages.
func qdesc(q *tensor.Quantization) string {
	if q == nil {
		return ""
	}
	if len(q.Scale) > 4 {
		return fmt.Sprintf("{scale[%d]=%g.. zp[%d] dim %d}", len(q.Scale), q.Scale[0], len(q.ZeroPoint), q.Dim)
	}
	return fmt.Sprintf("{scale %v zp %v dim %d}", q.Scale, q.ZeroPoint, q.Dim)
}

// spec describes one input to generate.
type spec struct {
	dt       tensor.DType
	sh       []int
	konst    bool
	small    bool // constant integers mostly in [0, 4)
	variable bool
	omit     bool
}

// randomSpec returns an input related to the node's main dtype and shape.
func (s *src) randomSpec(i int, main tensor.DType, base []int) spec {
	sp := spec{dt: main, sh: s.variant(base)}
	if s.chance(1, 4) {
		sp.dt = s.dtype()
	}
	sp.konst = i > 0 && s.chance(1, 2)
	if i > 0 && (sp.dt == tensor.Int32 || sp.dt == tensor.Int64) && s.chance(1, 2) {
		// Likely a shape, axis, index or paddings tensor.
		sp.sh = pick(s, []int{s.intn(9)}, []int{}, []int{s.intn(5), 2}, sp.sh)
		sp.konst = s.chance(3, 4)
	}
	return sp
}

// structured returns coherent inputs (and the usual output count) for ops
// that rarely get past Prepare with unrelated random tensors, or nil.
func (s *src) structured(op schema.BuiltinOperator, main tensor.DType) ([]spec, int) {
	if !s.chance(2, 3) {
		return nil, 0
	}
	d := func() int { return 1 + s.intn(4) }
	if s.chance(1, 8) {
		d = s.dim
	}
	i32 := tensor.Int32
	// Weights and biases follow the activation type as TFLite does.
	wt, bt := main, tensor.Int32
	switch main {
	case tensor.Float32:
		bt = tensor.Float32
	case tensor.Int16:
		wt, bt = tensor.Int8, tensor.Int64
	}
	if s.chance(1, 8) {
		wt, bt = s.dtype(), s.dtype()
	}
	rt := func(dt tensor.DType, sh ...int) spec { return spec{dt: dt, sh: sh} }
	cs := func(dt tensor.DType, sh ...int) spec { return spec{dt: dt, sh: sh, konst: true, small: true} }
	n, h, w, c, o := d(), d(), d(), d(), d()
	switch op {
	case schema.OpConv2D:
		return []spec{rt(main, n, h, w, c), cs(wt, o, d(), d(), c), cs(bt, o)}, 1
	case schema.OpDepthwiseConv2D:
		return []spec{rt(main, 1, h, w, c), cs(wt, 1, d(), d(), c*o), cs(bt, c*o)}, 1
	case schema.OpFullyConnected:
		return []spec{rt(main, n, c), cs(wt, o, c), cs(bt, o)}, 1
	case schema.OpTransposeConv:
		sh := cs(i32, 4)
		return []spec{sh, cs(wt, o, d(), d(), c), rt(main, n, h, w, c), cs(bt, o)}, 1
	case schema.OpSvdf:
		units, rank, mem, batch := d(), d(), d(), d()
		s.rank = rank
		return []spec{rt(main, batch, c), cs(wt, units*rank, c), cs(pick(s, wt, tensor.Int16, tensor.Float32), units*rank, mem), cs(bt, units),
			{dt: pick(s, main, tensor.Int16, tensor.Int8), sh: []int{batch, mem * units * rank}, variable: true}}, 1
	case schema.OpUnidirectionalSequenceLstm:
		batch, steps, in, cell := d(), d(), d(), d()
		out := cell
		proj := s.chance(1, 4)
		if proj {
			out = d()
		}
		x := rt(main, steps, batch, in)
		if s.chance(1, 2) {
			x = rt(main, batch, steps, in)
		}
		sp := []spec{x}
		for range 4 {
			sp = append(sp, cs(wt, cell, in))
		}
		for range 4 {
			sp = append(sp, cs(wt, cell, out))
		}
		peep := s.chance(1, 4)
		for range 3 {
			sp = append(sp, spec{dt: pick(s, bt, tensor.Int16, tensor.Float32), sh: []int{cell}, konst: true, omit: !peep})
		}
		for range 4 {
			sp = append(sp, cs(bt, cell))
		}
		sp = append(sp, spec{dt: wt, sh: []int{out, cell}, konst: true, omit: !proj}, spec{dt: bt, sh: []int{out}, konst: true, omit: !proj || s.chance(1, 2)})
		st := main
		if main == tensor.Int8 {
			st = pick(s, tensor.Int8, tensor.Int16)
		}
		sp = append(sp, spec{dt: st, sh: []int{batch, out}, variable: true}, spec{dt: pick(s, tensor.Int16, main), sh: []int{batch, cell}, variable: true})
		if s.chance(1, 3) {
			for range 4 {
				sp = append(sp, cs(pick(s, tensor.Int16, tensor.Float32, main), cell))
			}
		}
		return sp, 1
	case schema.OpCustom:
		anchors, classes := d()*d(), d()
		return []spec{rt(main, 1, anchors, 4), rt(main, 1, anchors, classes+1), cs(pick(s, main, tensor.Float32), anchors, 4)}, 4
	case schema.OpPad, schema.OpPadV2, schema.OpMirrorPad:
		sp := []spec{rt(main, n, h, w, c), cs(pick(s, i32, tensor.Int64), 4, 2)}
		if op == schema.OpPadV2 {
			sp = append(sp, cs(main))
		}
		return sp, 1
	case schema.OpResizeBilinear, schema.OpResizeNearestNeighbor:
		return []spec{rt(main, n, h, w, c), cs(i32, 2)}, 1
	case schema.OpStridedSlice:
		r := 1 + s.intn(5)
		x := rt(main, n, h, w, c, d())
		x.sh = x.sh[:r]
		return []spec{x, cs(i32, r), cs(i32, r), cs(i32, r)}, 1
	case schema.OpSlice:
		return []spec{rt(main, n, h, w), cs(i32, 3), cs(i32, 3)}, 1
	case schema.OpSplit:
		return []spec{cs(i32), rt(main, n, h, w)}, 1 + s.intn(3)
	case schema.OpSplitV:
		k := 1 + s.intn(3)
		return []spec{rt(main, n, h, w), cs(i32, k), cs(i32)}, k
	case schema.OpTile:
		return []spec{rt(main, n, h, w), cs(i32, 3)}, 1
	case schema.OpUnpack:
		return []spec{rt(main, n, h, w)}, pick(s, n, h, w)
	case schema.OpFill:
		return []spec{cs(i32, 1+s.intn(4)), rt(main)}, 1
	case schema.OpGather:
		return []spec{rt(main, n, h, w), cs(i32, d())}, 1
	case schema.OpGatherND:
		return []spec{rt(main, n, h, w), cs(i32, d(), 1+s.intn(3))}, 1
	case schema.OpReshape:
		return []spec{rt(main, n, h, w), cs(i32, 1+s.intn(4))}, 1
	case schema.OpTranspose:
		return []spec{rt(main, n, h, w, c), cs(i32, 4)}, 1
	case schema.OpBatchMatMul:
		return []spec{rt(main, n, h, c), rt(main, n, c, w)}, 1
	case schema.OpMean, schema.OpSum, schema.OpReduceMax, schema.OpArgMax, schema.OpArgMin:
		return []spec{rt(main, n, h, w, c), cs(i32, 1+s.intn(3))}, 1
	case schema.OpSpaceToDepth, schema.OpDepthToSpace, schema.OpAveragePool2D, schema.OpMaxPool2D, schema.OpL2Normalization:
		return []spec{rt(main, n, 2*h, 2*w, c*4)}, 1
	}
	return nil, 0
}
