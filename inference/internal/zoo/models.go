package zoo

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/edgefleet/edgefleet/inference/flexbuf"
	"github.com/edgefleet/edgefleet/inference/modelbuilder"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/quant"
)

const (
	same  = schema.PaddingSame
	valid = schema.PaddingValid
	none  = quant.ActNone
	relu  = quant.ActRelu
	relu6 = quant.ActRelu6
)

func pq(scale float64, zp int64) *tensor.Quantization {
	return &tensor.Quantization{Scale: []float32{float32(scale)}, ZeroPoint: []int64{zp}}
}

func checkMode(name string, m Mode, allowed ...Mode) error {
	for _, a := range allowed {
		if a == m {
			return nil
		}
	}
	return fmt.Errorf("zoo %s: mode %s not supported (TensorFlow Lite has no such kernels for its ops)", name, m)
}

// BuildMobileNetV2 builds a MobileNetV2-style image classifier on a
// 16×16×3 image: a strided 3×3 stem, inverted-residual blocks (1×1 expand,
// 3×3 depthwise, linear 1×1 projection) with residual ADDs, RELU6 fused
// everywhere, a Keras-style explicit PAD before a VALID stride-2
// depthwise, then MEAN over H and W, FULLY_CONNECTED and SOFTMAX over 10
// classes (in the old uint8 form AVERAGE_POOL_2D, 1×1 CONV_2D logits and
// SQUEEZE). In Int8 mode
// the model takes and returns uint8, with QUANTIZE ops at both ends, as
// the converter writes it for inference_input_type=uint8.
func BuildMobileNetV2(mode Mode) (*Model, error) {
	name := "mobilenetv2_" + mode.String()
	if err := checkMode(name, mode, Float32, Int8, Uint8, Int16x8); err != nil {
		return nil, err
	}
	g := newGraph(mode, 0x1001)
	shape := []int{1, 16, 16, 3}
	var in, x int
	if mode == Int8 {
		in = g.actQ("image", tensor.Uint8, shape, pq(1.0/128, 128), -1, 127.0/128)
		x = g.actQ("image_int8", tensor.Int8, shape, pq(1.0/128, 0), -1, 127.0/128)
		g.op(schema.OpQuantize, nil, []int{in}, x)
	} else {
		in = g.input("image", shape, -1, 1)
		x = in
	}
	x = g.conv(x, 8, 3, 3, 2, 1, same, relu6, 6) // 8x8x8
	// Block 1 (expansion 1): depthwise, linear projection.
	x = g.dw(x, 3, 1, 1, 1, same, relu6, 6)
	x = g.conv(x, 8, 1, 1, 1, 1, same, none, 4)
	// Block 2: inverted residual with a skip connection.
	y := g.conv(x, 24, 1, 1, 1, 1, same, relu6, 6)
	y = g.dw(y, 3, 1, 1, 1, same, relu6, 6)
	y = g.conv(y, 8, 1, 1, 1, 1, same, none, 4)
	x = g.add(schema.OpAdd, x, y, none)
	// Block 3: stride 2.
	// Keras pads explicitly (ZeroPadding2D) before a VALID stride-2
	// depthwise; quantized PAD fills with the zero point.
	y = g.conv(x, 24, 1, 1, 1, 1, same, relu6, 6)
	y = g.pad(y, 0, 0, 0, 1, 0, 1, 0, 0)
	y = g.dw(y, 3, 2, 1, 1, valid, relu6, 6) // 4x4
	x = g.conv(y, 16, 1, 1, 1, 1, same, none, 4)
	// Block 4: residual again.
	y = g.conv(x, 32, 1, 1, 1, 1, same, relu6, 6)
	y = g.dw(y, 3, 1, 1, 1, same, relu6, 6)
	y = g.conv(y, 16, 1, 1, 1, 1, same, none, 4)
	x = g.add(schema.OpAdd, x, y, none)
	x = g.conv(x, 32, 1, 1, 1, 1, same, relu6, 6)
	if mode == Uint8 {
		// TOCO MobileNet head: AVERAGE_POOL_2D, 1×1 CONV_2D logits,
		// SQUEEZE.
		p := g.like(g.name("avgpool"), []int{1, 1, 1, 32}, x)
		g.op(schema.OpAveragePool2D, &schema.Pool2DOptions{Padding: valid, StrideW: 1, StrideH: 1, FilterWidth: 4, FilterHeight: 4}, []int{x}, p)
		g.rms[p] = 0.7 * g.rmsOf(x)
		x = g.conv(p, 10, 1, 1, 1, 1, same, none, 3)
		sq := g.like(g.name("squeeze"), []int{1, 10}, x)
		g.op(schema.OpSqueeze, &schema.SqueezeOptions{SqueezeDims: []int{1, 2}}, []int{x}, sq)
		x = sq
	} else {
		x = g.mean(x, []int{1, 2}, false, []int{1, 32})
		x = g.fc(x, 10, none, 3, false)
	}
	p := g.softmax(x, 1)
	out := p
	if mode == Int8 {
		out = g.actQ("probabilities", tensor.Uint8, []int{1, 10}, pq(1.0/256, 0), 0, 1)
		g.op(schema.OpQuantize, nil, []int{p}, out)
	}
	return g.model(name, []int{in}, []int{out})
}

// debugAllOutputs makes every operator output a model output, so the zoo's
// diagnostic test can compare each intermediate tensor with TensorFlow
// Lite's and name the first operator that diverges.
var debugAllOutputs bool

// tokens draws n token ids below vocab as an int32 tensor.
func (g *graph) tokens(n, vocab int) []byte {
	in := make([]byte, 4*n)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint32(in[4*i:], uint32(g.r.intn(vocab)))
	}
	return in
}

// outputs returns outs, or every operator output with debugAllOutputs.
func (g *graph) outputs(outs []int) []int {
	if !debugAllOutputs {
		return outs
	}
	var all []int
	for _, op := range g.b.Main().Ops {
		all = append(all, op.Outputs...)
	}
	return all
}

// model finishes g and draws one input per model input.
func (g *graph) model(name string, ins, outs []int) (*Model, error) {
	b, err := g.finish(name, ins, g.outputs(outs))
	if err != nil {
		return nil, err
	}
	m := &Model{Name: name, Bytes: b}
	for _, i := range ins {
		m.Inputs = append(m.Inputs, g.randomInput(i))
	}
	// More cases: four more random draws, and inputs pinned to the ends of
	// their ranges (saturated images, clipped features).
	for c := 0; c < 4; c++ {
		var again [][]byte
		for _, i := range ins {
			again = append(again, g.randomInput(i))
		}
		m.Cases = append(m.Cases, again)
	}
	var extreme [][]byte
	for _, i := range ins {
		extreme = append(extreme, g.extremeInput(i))
	}
	m.Cases = append(m.Cases, extreme)
	return m, nil
}

// BuildDeepLab builds a DeepLabV3-style segmenter on an odd-sized 9×9×3
// image: a stem, a stride-2 SAME depthwise (9→5), an ASPP head with a 1×1
// branch, a dilation-2 CONV_2D branch, a dilation-2 depthwise separable
// branch and an image-pooling branch (MEAN, 1×1 CONV_2D, RESIZE_BILINEAR
// with align_corners), concatenated at different scales, then 4-class
// logits upsampled to 9×9 by RESIZE_BILINEAR with half_pixel_centers and
// an int64 ARG_MAX. Outputs: the upsampled logits and the class map.
func BuildDeepLab(mode Mode) (*Model, error) {
	name := "deeplab_" + mode.String()
	if err := checkMode(name, mode, Float32, Int8, Uint8); err != nil {
		return nil, err
	}
	g := newGraph(mode, 0x2002)
	in := g.input("image", []int{1, 9, 9, 3}, -1, 1)
	x := g.conv(in, 8, 3, 3, 1, 1, same, relu6, 6)
	x = g.dw(x, 3, 2, 1, 1, same, relu6, 6) // 5x5
	x = g.conv(x, 16, 1, 1, 1, 1, same, relu6, 6)
	b1 := g.conv(x, 8, 1, 1, 1, 1, same, relu, 3)
	b2 := g.conv(x, 8, 3, 3, 1, 2, same, relu, 5)
	b3 := g.dw(x, 3, 1, 2, 1, same, relu, 4)
	b3 = g.conv(b3, 8, 1, 1, 1, 1, same, relu, 8)
	pool := g.mean(x, []int{1, 2}, true, []int{1, 1, 1, 16})
	pool = g.conv(pool, 8, 1, 1, 1, 1, same, relu, 2)
	pool = g.resize(pool, 5, 5, true, false)
	cat := g.concat(3, b1, b2, b3, pool)
	y := g.conv(cat, 8, 1, 1, 1, 1, same, relu, 4)
	g.biasFrac = 0.02 // class logits vary over the image
	logits := g.conv(y, 4, 1, 1, 1, 1, same, none, 6)
	up := g.resize(logits, 9, 9, false, true)
	axis := g.constInt32("argmax/axis", []int{1}, 3)
	classes := g.b.AddTensor(modelbuilder.Tensor{Name: "classes", Type: tensor.Int64, Shape: []int{1, 9, 9}})
	g.op(schema.OpArgMax, &schema.ArgOptions{OutputType: tensor.Int64}, []int{up, axis}, classes)
	return g.model(name, []int{in}, []int{up, classes})
}

// BuildPoseNet builds a PoseNet-style keypoint model on a 9×9×3 image:
// a strided MobileNet backbone down to 3×3, a stride-2 TRANSPOSE_CONV
// (with bias) back up to 6×6, LOGISTIC keypoint heatmaps (5 keypoints) and
// linear offsets (10 channels). Outputs: heatmaps, offsets. The Int8
// model has the converter's default float interface (QUANTIZE in,
// DEQUANTIZE out).
func BuildPoseNet(mode Mode) (*Model, error) {
	name := "posenet_" + mode.String()
	if err := checkMode(name, mode, Float32, Int8, Int16x8); err != nil {
		return nil, err
	}
	g := newGraph(mode, 0x3003)
	var in, x int
	if mode == Int8 {
		// The converter's default interface: float in, QUANTIZE, ...,
		// DEQUANTIZE, float out.
		in, x = g.quantizeIn("image", []int{1, 9, 9, 3}, -1, 1)
	} else {
		in = g.input("image", []int{1, 9, 9, 3}, -1, 1)
		x = in
	}
	x = g.conv(x, 8, 3, 3, 2, 1, same, relu6, 6) // 5x5
	x = g.dw(x, 3, 1, 1, 1, same, relu6, 6)
	x = g.conv(x, 16, 1, 1, 1, 1, same, relu6, 6)
	x = g.dw(x, 3, 2, 1, 1, same, relu6, 6) // 3x3
	x = g.conv(x, 16, 1, 1, 1, 1, same, relu6, 6)
	up := g.transposeConv(x, 8, 3, 2, same, 4) // 6x6
	heat := g.conv(up, 5, 1, 1, 1, 1, same, none, 6)
	heat = g.logistic(heat)
	off := g.conv(up, 10, 1, 1, 1, 1, same, none, 8)
	if mode == Int8 {
		heat, off = g.dequantizeOut(heat, "heatmaps"), g.dequantizeOut(off, "offsets")
	}
	return g.model(name, []int{in}, []int{heat, off})
}

// BuildKeywordDSCNN builds a DS-CNN keyword spotter on 10 frames × 8 MFCC
// features: a strided 4×3 CONV_2D, a depthwise separable block, a global
// AVERAGE_POOL_2D, RESHAPE, FULLY_CONNECTED and SOFTMAX over 4 words.
func BuildKeywordDSCNN(mode Mode) (*Model, error) {
	name := "kws_dscnn_" + mode.String()
	if err := checkMode(name, mode, Float32, Int8, Int16x8); err != nil {
		return nil, err
	}
	g := newGraph(mode, 0x4004)
	in := g.input("mfcc", []int{1, 10, 8, 1}, -3, 3)
	x := g.conv(in, 16, 4, 3, 2, 1, same, relu, 5) // 5x4
	x = g.dw(x, 3, 1, 1, 1, same, relu, 5)
	x = g.conv(x, 16, 1, 1, 1, 1, same, relu, 5)
	p := g.like(g.name("avgpool"), []int{1, 1, 1, 16}, x)
	g.op(schema.OpAveragePool2D, &schema.Pool2DOptions{Padding: valid, StrideW: 1, StrideH: 1, FilterWidth: 4, FilterHeight: 5}, []int{x}, p)
	x = g.reshape(p, []int{1, 16})
	x = g.fc(x, 4, none, 3, false)
	out := g.softmax(x, 1)
	return g.model(name, []int{in}, []int{out})
}

// svdf adds an SVDF layer applied to each of xs in turn, sharing weights
// and the variable state (a streaming keyword spotter run over several
// frames in one Invoke).
func (g *graph) svdf(xs []int, units, rank, memory int, act quant.Activation, out float64) []int {
	s := g.shape(xs[0])
	batch, inSize := s[0], s[1]
	filters := units * rank
	lo, hi := actRange(act, out)
	// Feature weights: int8 symmetric per tensor; state: int16 symmetric;
	// time weights: int16 symmetric; bias: int32 at state·time scale.
	featOut := 3.0
	wf, _ := g.weights(g.name("svdf/wf"), []int{filters, inSize}, 0, g.wmaxFor(xs[0], inSize, featOut), true)
	var wt, bias, state int
	wtMax := math.Sqrt(3) * (out / 2.5) / (math.Sqrt(float64(memory*rank)) * featOut / 2.5)
	wtv := make([]float64, filters*memory)
	for i := range wtv {
		wtv[i] = g.r.uniform(-wtMax, wtMax)
	}
	bv := make([]float64, units)
	for i := range bv {
		bv[i] = g.r.uniform(-0.2*out, 0.2*out)
	}
	stShape := []int{batch, filters * memory}
	if g.mode == Float32 {
		wt = g.b.AddTensor(modelbuilder.Tensor{Name: g.name("svdf/wt"), Type: tensor.Float32, Shape: []int{filters, memory}, Data: f32Bytes(wtv)})
		bias = g.b.AddTensor(modelbuilder.Tensor{Name: g.name("svdf/b"), Type: tensor.Float32, Shape: []int{units}, Data: f32Bytes(bv)})
		state = g.b.AddTensor(modelbuilder.Tensor{Name: g.name("svdf/state"), Type: tensor.Float32, Shape: stShape, Variable: true})
	} else {
		stQ := rangeQ(tensor.Int16, -featOut*1.5, featOut*1.5)
		wtQ := rangeQ(tensor.Int16, -wtMax, wtMax)
		wt = g.b.AddTensor(modelbuilder.Tensor{Name: g.name("svdf/wt"), Type: tensor.Int16, Shape: []int{filters, memory}, Data: quantizeAll(tensor.Int16, wtQ, wtv), Quant: wtQ})
		bs := float64(stQ.Scale[0]) * float64(wtQ.Scale[0])
		bQ := pq(bs, 0)
		bb := make([]byte, 4*units)
		for i, v := range bv {
			putInt(tensor.Int32, bb, i, math.Round(v/bs))
		}
		bias = g.b.AddTensor(modelbuilder.Tensor{Name: g.name("svdf/b"), Type: tensor.Int32, Shape: []int{units}, Data: bb, Quant: bQ})
		state = g.b.AddTensor(modelbuilder.Tensor{Name: g.name("svdf/state"), Type: tensor.Int16, Shape: stShape, Quant: stQ, Variable: true})
	}
	outQ := rangeQ(g.actType(), lo, hi)
	var ys []int
	for _, x := range xs {
		y := g.actQ(g.name("svdf"), g.actType(), []int{batch, units}, outQ, math.Min(lo, 0), math.Max(hi, 0))
		g.op(schema.OpSvdf, &schema.SVDFOptions{Rank: rank, Activation: act}, []int{x, wf, wt, bias, state}, y)
		ys = append(ys, y)
	}
	return ys
}

// BuildKeywordSVDF builds a streaming SVDF keyword spotter: three frames
// of 40 features (input [3,1,40], UNPACKed) pass through two stacked SVDF
// layers (rank 1 and rank 2, RELU) that keep their memory in variable
// state tensors shared by the three steps; the last step's output goes
// through FULLY_CONNECTED and SOFTMAX over 4 words. Int8 mode uses int16
// time weights and state, as TensorFlow Lite's integer SVDF requires.
func BuildKeywordSVDF(mode Mode) (*Model, error) {
	name := "kws_svdf_" + mode.String()
	if err := checkMode(name, mode, Float32, Int8); err != nil {
		return nil, err
	}
	g := newGraph(mode, 0x5005)
	const frames = 3
	in := g.input("features", []int{frames, 1, 40}, -2, 2)
	var xs []int
	for i := 0; i < frames; i++ {
		xs = append(xs, g.like(g.name("frame"), []int{1, 40}, in))
	}
	g.op(schema.OpUnpack, &schema.UnpackOptions{Num: frames, Axis: 0}, []int{in}, xs...)
	h := g.svdf(xs, 16, 1, 8, relu, 4)
	h = g.svdf(h, 8, 2, 4, relu, 4)
	x := g.fc(h[len(h)-1], 4, none, 6, false)
	out := g.softmax(x, 1)
	return g.model(name, []int{in}, []int{out})
}

// BuildTextLSTM builds a text classifier over 5 token ids (int32 input
// [1,5]): a GATHER embedding lookup (vocabulary 20, width 6), a
// batch-major UNIDIRECTIONAL_SEQUENCE_LSTM with 8 units (in Int8 mode the
// full-integer kernel: int8 weights, int16 cell state, five intermediate
// tensors holding the gate scales), a STRIDED_SLICE of the last step
// (negative begin index, masks, shrink axis), FULLY_CONNECTED and SOFTMAX
// over 3 classes.
func BuildTextLSTM(mode Mode) (*Model, error) {
	name := "text_lstm_" + mode.String()
	if err := checkMode(name, mode, Float32, Int8); err != nil {
		return nil, err
	}
	g := newGraph(mode, 0x6006)
	const T, vocab, E, H = 5, 20, 6, 8
	ids := g.b.AddTensor(modelbuilder.Tensor{Name: "token_ids", Type: tensor.Int32, Shape: []int{1, T}})
	ev := make([]float64, vocab*E)
	for i := range ev {
		ev[i] = g.r.uniform(-1, 1)
	}
	table := g.constAct("embedding", []int{vocab, E}, ev)
	emb := g.like("embedded", []int{1, T, E}, table)
	g.op(schema.OpGather, &schema.GatherOptions{Axis: 0}, []int{table, ids}, emb)

	idx := make([]int, 24)
	for i := range idx {
		idx[i] = -1
	}
	idx[0] = emb
	wT, bT := tensor.Float32, tensor.Float32
	if mode == Int8 {
		wT, bT = tensor.Int8, tensor.Int32
	}
	inS := g.scale(emb)
	// Output (and output state) range [-1, 1]: tanh(c)·σ(o).
	outQ := rangeQ(g.actType(), -1, 1)
	outS := 1.0
	if outQ != nil {
		outS = float64(outQ.Scale[0])
	}
	mat := func(base string, rows, cols int, wmax float64) (int, float64) {
		v := make([]float64, rows*cols)
		for i := range v {
			v[i] = g.r.uniform(-wmax, wmax)
		}
		if wT == tensor.Float32 {
			return g.b.AddTensor(modelbuilder.Tensor{Name: g.name(base), Type: wT, Shape: []int{rows, cols}, Data: f32Bytes(v)}), 1
		}
		m := 0.0
		for _, x := range v {
			m = math.Max(m, math.Abs(x))
		}
		q := pq(m/127, 0)
		return g.b.AddTensor(modelbuilder.Tensor{Name: g.name(base), Type: wT, Shape: []int{rows, cols}, Data: quantizeAll(wT, q, v), Quant: q}), m / 127
	}
	for gate := 0; gate < 4; gate++ {
		var wS float64
		idx[1+gate], wS = mat("lstm/input_w", H, E, 0.6)
		idx[5+gate], _ = mat("lstm/recurrent_w", H, H, 0.5)
		bv := make([]float64, H)
		for i := range bv {
			bv[i] = g.r.uniform(-0.3, 0.3)
			if gate == 1 {
				bv[i] += 1 // forget bias, as Keras initializes it
			}
		}
		if bT == tensor.Float32 {
			idx[12+gate] = g.b.AddTensor(modelbuilder.Tensor{Name: g.name("lstm/bias"), Type: bT, Shape: []int{H}, Data: f32Bytes(bv)})
		} else {
			bs := inS * wS
			bb := make([]byte, 4*H)
			for i, v := range bv {
				putInt(tensor.Int32, bb, i, math.Round(v/bs))
			}
			idx[12+gate] = g.b.AddTensor(modelbuilder.Tensor{Name: g.name("lstm/bias"), Type: bT, Shape: []int{H}, Data: bb, Quant: pq(bs, 0)})
		}
	}
	var inter []int
	if mode == Float32 {
		idx[18] = g.b.AddTensor(modelbuilder.Tensor{Name: "lstm/output_state", Type: tensor.Float32, Shape: []int{1, H}, Variable: true})
		idx[19] = g.b.AddTensor(modelbuilder.Tensor{Name: "lstm/cell_state", Type: tensor.Float32, Shape: []int{1, H}, Variable: true})
	} else {
		idx[18] = g.b.AddTensor(modelbuilder.Tensor{Name: "lstm/output_state", Type: tensor.Int8, Shape: []int{1, H}, Quant: outQ, Variable: true})
		// Cell state: power-of-two scale covering [-8, 8).
		idx[19] = g.b.AddTensor(modelbuilder.Tensor{Name: "lstm/cell_state", Type: tensor.Int16, Shape: []int{1, H}, Quant: pq(1.0/4096, 0), Variable: true})
		for i := 0; i < 4; i++ {
			inter = append(inter, g.b.AddTensor(modelbuilder.Tensor{Name: g.name("lstm/gate_intermediate"), Type: tensor.Int16, Shape: []int{}, Quant: pq(1.0/4096, 0)}))
		}
		inter = append(inter, g.b.AddTensor(modelbuilder.Tensor{Name: "lstm/hidden_intermediate", Type: tensor.Int8, Shape: []int{}, Quant: pq(outS, outQ.ZeroPoint[0])}))
	}
	seq := g.actQ("lstm/output", g.actType(), []int{1, T, H}, outQ, -1, 1)
	g.b.AddOp(modelbuilder.Op{Builtin: schema.OpUnidirectionalSequenceLstm, Version: g.version(schema.OpUnidirectionalSequenceLstm),
		Inputs: idx, Outputs: []int{seq}, Intermediates: inter,
		Options: &schema.LSTMOptions{Activation: quant.ActTanh, CellClip: 10, TimeMajor: false}})
	begin := g.constInt32("last/begin", []int{3}, 0, -1, 0)
	end := g.constInt32("last/end", []int{3}, 0, 0, 0)
	strides := g.constInt32("last/strides", []int{3}, 1, 1, 1)
	last := g.like("last_step", []int{1, H}, seq)
	g.op(schema.OpStridedSlice, &schema.StridedSliceOptions{BeginMask: 5, EndMask: 5, ShrinkAxisMask: 2}, []int{seq, begin, end, strides}, last)
	x := g.fc(last, 3, none, 4, false)
	out := g.softmax(x, 1)
	b, err := g.finish(name, []int{ids}, g.outputs([]int{out}))
	if err != nil {
		return nil, err
	}
	return &Model{Name: name, Bytes: b, Inputs: [][]byte{g.tokens(T, vocab)},
		Cases: [][][]byte{{g.tokens(T, vocab)}, {g.tokens(T, vocab)}, {g.tokens(T, vocab)}, {g.tokens(T, 1)}}}, nil
}

// BuildAttentionBlock builds a float transformer-style block over 6 tokens
// of width 8: layer normalization as the converter lowers it (MEAN,
// SQUARED_DIFFERENCE, ADD ε, RSQRT, SUB, MUL), a QKV FULLY_CONNECTED with
// keep_num_dims, SPLIT, RESHAPE and TRANSPOSE into 2 heads, BATCH_MATMUL
// (adj_y) scores, SOFTMAX, BATCH_MATMUL with V, a residual ADD, an FFN with
// HARD_SWISH and LEAKY_RELU, then PAD, UNPACK, PACK, TILE and
// L2_NORMALIZATION. Outputs: the normalized features and the attention
// probabilities.
func BuildAttentionBlock() (*Model, error) {
	const name = "attention_float32"
	g := newGraph(Float32, 0x7007)
	const T, D, heads = 6, 8, 2
	f := func(base string, shape []int) int {
		return g.b.AddTensor(modelbuilder.Tensor{Name: g.name(base), Type: tensor.Float32, Shape: shape})
	}
	op := func(code schema.BuiltinOperator, opts any, ins []int, outs ...int) { g.op(code, opts, ins, outs...) }
	in := g.input("tokens", []int{1, T, D}, -2, 2)
	// Layer norm.
	ax := g.constInt32("ln/axis", []int{1}, 2)
	mu := f("ln/mean", []int{1, T, 1})
	op(schema.OpMean, &schema.ReducerOptions{KeepDims: true}, []int{in, ax}, mu)
	sq := f("ln/sqdiff", []int{1, T, D})
	op(schema.OpSquaredDifference, nil, []int{in, mu}, sq)
	va := f("ln/var", []int{1, T, 1})
	op(schema.OpMean, &schema.ReducerOptions{KeepDims: true}, []int{sq, ax}, va)
	eps := g.constFloat("ln/eps", []int{}, 1e-3)
	ve := f("ln/var_eps", []int{1, T, 1})
	op(schema.OpAdd, &schema.ActivationOptions{}, []int{va, eps}, ve)
	rs := f("ln/rsqrt", []int{1, T, 1})
	op(schema.OpRsqrt, nil, []int{ve}, rs)
	xc := f("ln/centered", []int{1, T, D})
	op(schema.OpSub, &schema.ActivationOptions{}, []int{in, mu}, xc)
	xn := f("ln/normalized", []int{1, T, D})
	op(schema.OpMul, &schema.ActivationOptions{}, []int{xc, rs}, xn)
	gv, bv := make([]float64, D), make([]float64, D)
	for i := range gv {
		gv[i], bv[i] = g.r.uniform(0.5, 1.5), g.r.uniform(-0.2, 0.2)
	}
	gamma, beta := g.constFloat("ln/gamma", []int{D}, gv...), g.constFloat("ln/beta", []int{D}, bv...)
	xg := f("ln/scaled", []int{1, T, D})
	op(schema.OpMul, &schema.ActivationOptions{}, []int{xn, gamma}, xg)
	ln := g.act("ln/out", []int{1, T, D}, -3, 3)
	op(schema.OpAdd, &schema.ActivationOptions{}, []int{xg, beta}, ln)
	// Attention.
	qkv := g.fc(ln, 3*D, none, 3, true)
	splitAxis := g.constInt32("qkv/axis", []int{}, 2)
	q, k, v := f("q", []int{1, T, D}), f("k", []int{1, T, D}), f("v", []int{1, T, D})
	op(schema.OpSplit, &schema.SplitOptions{NumSplits: 3}, []int{splitAxis, qkv}, q, k, v)
	perm := g.constInt32("heads/perm", []int{4}, 0, 2, 1, 3)
	toHeads := func(x int) int {
		r := f("heads/reshape", []int{1, T, heads, D / heads})
		op(schema.OpReshape, &schema.ReshapeOptions{NewShape: []int{1, T, heads, D / heads}}, []int{x, g.constInt32(g.name("heads/shape"), []int{4}, 1, T, heads, D/heads)}, r)
		t := f("heads/transpose", []int{1, heads, T, D / heads})
		op(schema.OpTranspose, nil, []int{r, perm}, t)
		return t
	}
	qh, kh, vh := toHeads(q), toHeads(k), toHeads(v)
	scores := f("scores", []int{1, heads, T, T})
	op(schema.OpBatchMatMul, &schema.BatchMatMulOptions{AdjY: true}, []int{qh, kh}, scores)
	scaled := f("scores_scaled", []int{1, heads, T, T})
	op(schema.OpMul, &schema.ActivationOptions{}, []int{scores, g.constFloat("scores/scale", []int{}, 1/math.Sqrt(D/heads))}, scaled)
	probs := f("attention_probs", []int{1, heads, T, T})
	op(schema.OpSoftmax, &schema.SoftmaxOptions{Beta: 1}, []int{scaled}, probs)
	ctx := f("context", []int{1, heads, T, D / heads})
	op(schema.OpBatchMatMul, &schema.BatchMatMulOptions{}, []int{probs, vh}, ctx)
	ctxT := f("context_t", []int{1, T, heads, D / heads})
	op(schema.OpTranspose, nil, []int{ctx, perm}, ctxT)
	merged := g.act("context_merged", []int{1, T, D}, -3, 3)
	op(schema.OpReshape, &schema.ReshapeOptions{NewShape: []int{1, T, D}}, []int{ctxT, g.constInt32("merge/shape", []int{3}, 1, T, D)}, merged)
	res := g.add(schema.OpAdd, in, merged, none)
	// FFN.
	h := g.fc(res, 2*D, none, 4, true)
	hs := g.like("ffn/hard_swish", []int{1, T, 2 * D}, h)
	op(schema.OpHardSwish, nil, []int{h}, hs)
	h2 := g.fc(hs, D, none, 4, true)
	lr := g.like("ffn/leaky_relu", []int{1, T, D}, h2)
	op(schema.OpLeakyRelu, &schema.LeakyReluOptions{Alpha: 0.2}, []int{h2}, lr)
	// Shape plumbing.
	pads := g.constInt32("pad/paddings", []int{3, 2}, 0, 0, 1, 1, 0, 0)
	padded := f("padded", []int{1, T + 2, D})
	op(schema.OpPad, nil, []int{lr, pads}, padded)
	var rows []int
	for i := 0; i < T+2; i++ {
		rows = append(rows, f("row", []int{1, D}))
	}
	op(schema.OpUnpack, &schema.UnpackOptions{Num: T + 2, Axis: 1}, []int{padded}, rows...)
	packed := f("packed", []int{1, 3, D})
	op(schema.OpPack, &schema.PackOptions{ValuesCount: 3, Axis: 1}, []int{rows[1], rows[T], rows[0]}, packed)
	tiled := f("tiled", []int{1, 6, D})
	op(schema.OpTile, nil, []int{packed, g.constInt32("tile/multiples", []int{3}, 1, 2, 1)}, tiled)
	out := f("l2_normalized", []int{1, 6, D})
	op(schema.OpL2Normalization, &schema.ActivationOptions{}, []int{tiled}, out)
	return g.model(name, []int{in}, []int{out, probs})
}

// BuildSSD builds an SSD detector head on an 8×8×3 image: a small
// MobileNet backbone to 4×4, box-encoding and class-score 1×1 convolutions
// (2 anchors per cell, 3 classes plus background), RESHAPE to [1,32,4],
// LOGISTIC scores, and the TFLite_Detection_PostProcess custom op with
// fast (regularNMS false) or regular NMS. Float32 and Uint8 only: the
// reference TensorFlow Lite fails to invoke the op on int8 inputs. Uint8 mode quantizes the anchors
// too, as TOCO did. Outputs: boxes, classes, scores, number of detections.
func BuildSSD(mode Mode, regularNMS bool) (*Model, error) {
	name := "ssd_" + mode.String()
	if regularNMS {
		name += "_regular_nms"
	}
	if err := checkMode(name, mode, Float32, Uint8); err != nil {
		return nil, err
	}
	g := newGraph(mode, 0x8008)
	in := g.input("image", []int{1, 8, 8, 3}, -1, 1)
	x := g.conv(in, 8, 3, 3, 2, 1, same, relu6, 6) // 4x4
	x = g.dw(x, 3, 1, 1, 1, same, relu6, 6)
	x = g.conv(x, 16, 1, 1, 1, 1, same, relu6, 6)
	const boxes, classes = 32, 3
	enc := g.conv(x, 8, 1, 1, 1, 1, same, none, 3)
	enc = g.reshape(enc, []int{1, boxes, 4})
	cls := g.conv(x, 2*(classes+1), 1, 1, 1, 1, same, none, 6)
	cls = g.reshape(cls, []int{1, boxes, classes + 1})
	scores := g.logistic(cls)
	av := make([]float64, 0, boxes*4)
	for y := 0; y < 4; y++ {
		for xx := 0; xx < 4; xx++ {
			for a := 0; a < 2; a++ {
				size := 0.3 + 0.25*float64(a)
				av = append(av, (float64(y)+0.5)/4, (float64(xx)+0.5)/4, size, size*(1+0.5*float64(a)))
			}
		}
	}
	var anchors int
	if mode == Uint8 {
		q := rangeQ(tensor.Uint8, 0, 1)
		anchors = g.b.AddTensor(modelbuilder.Tensor{Name: "anchors", Type: tensor.Uint8, Shape: []int{boxes, 4}, Data: quantizeAll(tensor.Uint8, q, av), Quant: q})
	} else {
		anchors = g.constFloat("anchors", []int{boxes, 4}, av...)
	}
	opts, err := flexbuf.BuildMap(4,
		flexbuf.Entry{Key: "max_detections", Value: 5}, flexbuf.Entry{Key: "max_classes_per_detection", Value: 1},
		flexbuf.Entry{Key: "detections_per_class", Value: 5}, flexbuf.Entry{Key: "use_regular_nms", Value: regularNMS},
		flexbuf.Entry{Key: "nms_score_threshold", Value: float32(0.3)}, flexbuf.Entry{Key: "nms_iou_threshold", Value: float32(0.6)},
		flexbuf.Entry{Key: "num_classes", Value: classes},
		flexbuf.Entry{Key: "y_scale", Value: float32(10)}, flexbuf.Entry{Key: "x_scale", Value: float32(10)},
		flexbuf.Entry{Key: "h_scale", Value: float32(5)}, flexbuf.Entry{Key: "w_scale", Value: float32(5)})
	if err != nil {
		return nil, fmt.Errorf("zoo %s: %w", name, err)
	}
	fl := func(n string, shape []int) int {
		return g.b.AddTensor(modelbuilder.Tensor{Name: n, Type: tensor.Float32, Shape: shape})
	}
	ob, oc, os, on := fl("detection_boxes", []int{1, 5, 4}), fl("detection_classes", []int{1, 5}), fl("detection_scores", []int{1, 5}), fl("num_detections", []int{1})
	g.b.AddOp(modelbuilder.Op{Builtin: schema.OpCustom, Custom: "TFLite_Detection_PostProcess", Version: 1,
		Inputs: []int{enc, scores, anchors}, Outputs: []int{ob, oc, os, on}, CustomOptions: opts})
	return g.model(name, []int{in}, []int{ob, oc, os, on})
}

// BuildMobileNetV3 builds a MobileNetV3-style classifier on a 12×12×3
// image: a strided stem with HARD_SWISH, a depthwise block with
// squeeze-and-excite (MEAN keep_dims, 1×1 CONV_2D with RELU, 1×1 CONV_2D,
// hard sigmoid lowered as the converter does to ADD 3, RELU6, MUL 1/6,
// then a broadcasting MUL with the features), a HARD_SWISH 1×1 expansion,
// MEAN, FULLY_CONNECTED and SOFTMAX over 6 classes.
func BuildMobileNetV3(mode Mode) (*Model, error) {
	name := "mobilenetv3_" + mode.String()
	if err := checkMode(name, mode, Float32, Int8, Uint8); err != nil {
		return nil, err
	}
	g := newGraph(mode, 0x9009)
	in := g.input("image", []int{1, 12, 12, 3}, -1, 1)
	x := g.conv(in, 8, 3, 3, 2, 1, same, none, 4) // 6x6
	x = g.unary(schema.OpHardSwish, x, -0.375, 4, 1)
	y := g.dw(x, 3, 1, 1, 1, same, relu, 4)
	// Squeeze and excite.
	se := g.mean(y, []int{1, 2}, true, []int{1, 1, 1, 8})
	se = g.conv(se, 4, 1, 1, 1, 1, same, relu, 3)
	se = g.conv(se, 8, 1, 1, 1, 1, same, none, 4)
	three := g.constAct("hard_sigmoid/three", []int{}, []float64{3})
	se = g.add(schema.OpAdd, se, three, none)
	se = g.unary(schema.OpRelu6, se, 0, 6, 2)
	sixth := g.constAct("hard_sigmoid/sixth", []int{}, []float64{1.0 / 6})
	se = g.mul(se, sixth, 0, 1)
	y = g.mul(y, se, 0, g.hi[y])
	y = g.conv(y, 8, 1, 1, 1, 1, same, none, 4)
	x = g.add(schema.OpAdd, x, y, none)
	x = g.conv(x, 24, 1, 1, 1, 1, same, none, 4)
	x = g.unary(schema.OpHardSwish, x, -0.375, 4, 1)
	x = g.mean(x, []int{1, 2}, false, []int{1, 24})
	x = g.fc(x, 6, none, 3, false)
	out := g.softmax(x, 1)
	return g.model(name, []int{in}, []int{out})
}

// BuildTextAveragePool builds the TFLite text-classification example's
// shape: token ids (int32 [1,12]) → GATHER embedding (vocabulary 30,
// width 8) → MEAN over tokens → FULLY_CONNECTED with RELU →
// FULLY_CONNECTED → LOGISTIC (one sentiment score).
func BuildTextAveragePool(mode Mode) (*Model, error) {
	name := "text_avgpool_" + mode.String()
	if err := checkMode(name, mode, Float32, Int8); err != nil {
		return nil, err
	}
	g := newGraph(mode, 0xa00a)
	const T, vocab, E = 12, 30, 8
	ids := g.b.AddTensor(modelbuilder.Tensor{Name: "token_ids", Type: tensor.Int32, Shape: []int{1, T}})
	ev := make([]float64, vocab*E)
	for i := range ev {
		ev[i] = g.r.uniform(-0.8, 0.8)
	}
	table := g.constAct("embedding", []int{vocab, E}, ev)
	emb := g.like("embedded", []int{1, T, E}, table)
	g.op(schema.OpGather, &schema.GatherOptions{Axis: 0}, []int{table, ids}, emb)
	x := g.mean(emb, []int{1}, false, []int{1, E})
	x = g.fc(x, 8, relu, 3, false)
	x = g.fc(x, 1, none, 3, false)
	out := g.logistic(x)
	b, err := g.finish(name, []int{ids}, g.outputs([]int{out}))
	if err != nil {
		return nil, err
	}
	return &Model{Name: name, Bytes: b, Inputs: [][]byte{g.tokens(T, vocab)},
		Cases: [][][]byte{{g.tokens(T, vocab)}, {g.tokens(T, vocab)}, {g.tokens(T, vocab)}, {g.tokens(T, 1)}}}, nil
}

// BuildSuperResolution builds an ESPCN-style ×2 super-resolution model on
// a 6×6×3 image: two CONV_2D + TANH feature layers, a CONV_2D to 12
// channels and DEPTH_TO_SPACE (block 2), added to a
// RESIZE_NEAREST_NEIGHBOR upsampling of the input (a residual, as in
// FPN-style upsampling paths).
func BuildSuperResolution(mode Mode) (*Model, error) {
	name := "superres_" + mode.String()
	if err := checkMode(name, mode, Float32, Int8, Uint8); err != nil {
		return nil, err
	}
	g := newGraph(mode, 0xb00b)
	in := g.input("image", []int{1, 6, 6, 3}, -1, 1)
	x := g.conv(in, 8, 3, 3, 1, 1, same, none, 3)
	x = g.tanh(x)
	x = g.conv(x, 8, 3, 3, 1, 1, same, none, 3)
	x = g.tanh(x)
	x = g.conv(x, 12, 3, 3, 1, 1, same, none, 1)
	d := g.like(g.name("depth_to_space"), []int{1, 12, 12, 3}, x)
	g.op(schema.OpDepthToSpace, &schema.BlockOptions{BlockSize: 2}, []int{x}, d)
	up := g.like(g.name("nearest"), []int{1, 12, 12, 3}, in)
	g.op(schema.OpResizeNearestNeighbor, &schema.ResizeOptions{}, []int{in, g.constInt32("nearest/size", []int{2}, 12, 12)}, up)
	out := g.add(schema.OpAdd, d, up, none)
	return g.model(name, []int{in}, []int{out})
}

// BuildWideHead builds a classifier head at real MobileNet widths on a
// 3×3 feature map, so kernels take their blocked and multi-threaded paths:
// 1×1 CONV_2D 64→384 with RELU6, 3×3 depthwise over 384 channels, 1×1
// CONV_2D 384→96, MEAN, FULLY_CONNECTED 96→1001 and SOFTMAX over 1001
// classes. Outputs: logits and probabilities. Cases: the random inputs and
// the extreme ones only.
func BuildWideHead(mode Mode) (*Model, error) {
	name := "wide_head_" + mode.String()
	if err := checkMode(name, mode, Float32, Int8, Uint8, Int16x8); err != nil {
		return nil, err
	}
	g := newGraph(mode, 0xc00c)
	in := g.input("features", []int{1, 3, 3, 64}, 0, 6)
	x := g.conv(in, 384, 1, 1, 1, 1, same, relu6, 6)
	x = g.dw(x, 3, 1, 1, 1, same, relu6, 6)
	x = g.conv(x, 96, 1, 1, 1, 1, same, none, 4)
	x = g.mean(x, []int{1, 2}, false, []int{1, 96})
	logits := g.fc(x, 1001, none, 4, false)
	out := g.softmax(logits, 1)
	m, err := g.model(name, []int{in}, []int{logits, out})
	if err == nil {
		// Its outputs are large: keep the goldens small with one random
		// and the extreme case.
		m.Cases = m.Cases[len(m.Cases)-1:]
	}
	return m, err
}

// BuildMoveNetDecode builds a MoveNet-style pose model with its
// keypoint decoding in the graph: a strided backbone to 5×5, LOGISTIC
// heatmaps for 3 keypoints and offsets (DEQUANTIZEd to float in Int8
// mode), then float and int32 post-processing: center weighting (MUL),
// RESHAPE, ARG_MAX (int32), FLOOR_DIV, MUL and SUB on int32 to get
// row/column, PACK, GATHER_ND into the offsets, SLICE, CAST, ADD, DIV,
// and REDUCE_MAX + SQRT scores. Outputs: keypoints [3,2] and scores [1,3].
func BuildMoveNetDecode(mode Mode) (*Model, error) {
	name := "movenet_decode_" + mode.String()
	if err := checkMode(name, mode, Float32, Int8); err != nil {
		return nil, err
	}
	g := newGraph(mode, 0xd00d)
	const S, K = 5, 3
	in := g.input("image", []int{1, 9, 9, 3}, -1, 1)
	x := g.conv(in, 8, 3, 3, 2, 1, same, relu6, 6) // 5x5
	x = g.dw(x, 3, 1, 1, 1, same, relu6, 6)
	x = g.conv(x, 16, 1, 1, 1, 1, same, relu6, 6)
	heat := g.logistic(g.conv(x, K, 1, 1, 1, 1, same, none, 6))
	off := g.conv(x, 2*K, 1, 1, 1, 1, same, none, 3)
	if mode == Int8 {
		heat, off = g.dequantizeOut(heat, "heatmaps_float"), g.dequantizeOut(off, "offsets_float")
	}
	fl := func(base string, shape []int) int {
		return g.b.AddTensor(modelbuilder.Tensor{Name: g.name(base), Type: tensor.Float32, Shape: shape})
	}
	i32 := func(base string, shape []int) int {
		return g.b.AddTensor(modelbuilder.Tensor{Name: g.name(base), Type: tensor.Int32, Shape: shape})
	}
	op := func(code schema.BuiltinOperator, opts any, ins []int, outs ...int) {
		g.b.AddOp(modelbuilder.Op{Builtin: code, Version: 1, Inputs: ins, Outputs: outs, Options: opts})
	}
	cw := make([]float64, 0, S*S)
	for r := 0; r < S; r++ {
		for c := 0; c < S; c++ {
			cw = append(cw, 1/(math.Hypot(float64(r)-2, float64(c)-2)+1.8))
		}
	}
	weighted := fl("weighted", []int{1, S, S, K})
	op(schema.OpMul, &schema.ActivationOptions{}, []int{heat, g.constFloat("center_weight", []int{1, S, S, 1}, cw...)}, weighted)
	flat := fl("flat", []int{1, S * S, K})
	op(schema.OpReshape, &schema.ReshapeOptions{NewShape: []int{1, S * S, K}}, []int{weighted, g.constInt32("flat/shape", []int{3}, 1, S*S, K)}, flat)
	idx := i32("argmax", []int{1, K})
	op(schema.OpArgMax, &schema.ArgOptions{OutputType: tensor.Int32}, []int{flat, g.constInt32("argmax/axis", []int{1}, 1)}, idx)
	five := g.constInt32("five", []int{}, S)
	row := i32("row", []int{1, K})
	op(schema.OpFloorDiv, nil, []int{idx, five}, row)
	rowS := i32("row_times_size", []int{1, K})
	op(schema.OpMul, &schema.ActivationOptions{}, []int{row, five}, rowS)
	col := i32("col", []int{1, K})
	op(schema.OpSub, &schema.ActivationOptions{}, []int{idx, rowS}, col)
	rc := i32("rowcol", []int{1, K, 2})
	op(schema.OpPack, &schema.PackOptions{ValuesCount: 2, Axis: 2}, []int{row, col}, rc)
	ind := i32("indices", []int{K, 2})
	op(schema.OpReshape, &schema.ReshapeOptions{NewShape: []int{K, 2}}, []int{rc, g.constInt32("indices/shape", []int{2}, K, 2)}, ind)
	offs := fl("offsets_hw", []int{S, S, 2 * K})
	op(schema.OpReshape, &schema.ReshapeOptions{NewShape: []int{S, S, 2 * K}}, []int{off, g.constInt32("offsets/shape", []int{3}, S, S, 2*K)}, offs)
	picked := fl("picked_offsets", []int{K, 2 * K})
	op(schema.OpGatherND, nil, []int{offs, ind}, picked)
	yx := fl("offset_yx", []int{K, 2})
	op(schema.OpSlice, nil, []int{picked, g.constInt32("slice/begin", []int{2}, 0, 0), g.constInt32("slice/size", []int{2}, -1, 2)}, yx)
	indF := fl("indices_float", []int{K, 2})
	op(schema.OpCast, &schema.CastOptions{In: tensor.Int32, Out: tensor.Float32}, []int{ind}, indF)
	pos := fl("position", []int{K, 2})
	op(schema.OpAdd, &schema.ActivationOptions{}, []int{indF, yx}, pos)
	kp := fl("keypoints", []int{K, 2})
	op(schema.OpDiv, &schema.ActivationOptions{}, []int{pos, g.constFloat("size", []int{}, S)}, kp)
	mx := fl("max_heat", []int{1, K})
	op(schema.OpReduceMax, &schema.ReducerOptions{}, []int{flat, g.constInt32("max/axis", []int{1}, 1)}, mx)
	score := fl("scores", []int{1, K})
	op(schema.OpSqrt, nil, []int{mx}, score)
	return g.model(name, []int{in}, []int{kp, score})
}

// silu adds x·σ(x) as exported models write SiLU: LOGISTIC then MUL.
func (g *graph) silu(x int) int {
	return g.mul(x, g.logistic(x), -0.28, g.hi[x])
}

// BuildYOLO builds a YOLOv5-style detector on a 12×12×3 image: strided
// CONV_2D with SiLU (LOGISTIC + MUL), a LEAKY_RELU layer, an SPPF block
// (MAX_POOL_2D 3×3 stride 1 SAME twice, CONCATENATION), a
// RESIZE_NEAREST_NEIGHBOR ×2 upsample concatenated with the stride-2
// features, a 1×1 detection CONV_2D (3 anchors × (5 + 2 classes)),
// RESHAPE, LOGISTIC and the box-decoding arithmetic (STRIDED_SLICE,
// MUL, SUB, ADD, CONCATENATION). Output: [1,108,7] decoded predictions.
func BuildYOLO(mode Mode) (*Model, error) {
	name := "yolo_" + mode.String()
	if err := checkMode(name, mode, Float32, Int8, Uint8); err != nil {
		return nil, err
	}
	g := newGraph(mode, 0xe00e)
	in := g.input("image", []int{1, 12, 12, 3}, 0, 1)
	x := g.silu(g.conv(in, 8, 3, 3, 2, 1, same, none, 4)) // 6x6
	p2 := g.silu(g.conv(x, 8, 3, 3, 1, 1, same, none, 4))
	x = g.conv(p2, 16, 3, 3, 2, 1, same, none, 4) // 3x3
	lr := g.like(g.name("leaky"), g.shape(x), x)
	g.b.Main().Tensors[lr].Quant = rangeQ(g.actType(), -0.1*4, 4)
	g.lo[lr], g.hi[lr] = -0.4, 4
	g.op(schema.OpLeakyRelu, &schema.LeakyReluOptions{Alpha: 0.1}, []int{x}, lr)
	x = lr
	// SPPF.
	pool := func(x int) int {
		y := g.like(g.name("maxpool"), g.shape(x), x)
		g.op(schema.OpMaxPool2D, &schema.Pool2DOptions{Padding: same, StrideW: 1, StrideH: 1, FilterWidth: 3, FilterHeight: 3}, []int{x}, y)
		return y
	}
	m1 := pool(x)
	m2 := pool(m1)
	x = g.concat(3, x, m1, m2)
	x = g.silu(g.conv(x, 8, 1, 1, 1, 1, same, none, 4))
	up := g.like(g.name("upsample"), []int{1, 6, 6, 8}, x)
	g.op(schema.OpResizeNearestNeighbor, &schema.ResizeOptions{}, []int{x, g.constInt32("upsample/size", []int{2}, 6, 6)}, up)
	x = g.concat(3, up, p2)
	x = g.silu(g.conv(x, 8, 3, 3, 1, 1, same, none, 4))
	const A, C = 3, 7
	det := g.conv(x, A*C, 1, 1, 1, 1, same, none, 6)
	det = g.reshape(det, []int{1, 36 * A, C})
	det = g.logistic(det)
	slice := func(from, to int) int {
		y := g.like(g.name("slice"), []int{1, 36 * A, to - from}, det)
		g.op(schema.OpStridedSlice, &schema.StridedSliceOptions{BeginMask: 3, EndMask: 3},
			[]int{det, g.constInt32(g.name("slice/begin"), []int{3}, 0, 0, from), g.constInt32(g.name("slice/end"), []int{3}, 0, 0, to), g.constInt32(g.name("slice/strides"), []int{3}, 1, 1, 1)}, y)
		return y
	}
	xy, wh, rest := slice(0, 2), slice(2, 4), slice(4, C)
	two := g.constAct("two", []int{}, []float64{2})
	half := g.constAct("half", []int{}, []float64{0.5})
	xy = g.mul(xy, two, 0, 2)
	xy = g.add(schema.OpSub, xy, half, none)
	wh = g.mul(wh, two, 0, 2)
	wh = g.mul(wh, wh, 0, 4)
	out := g.concat(2, xy, wh, rest)
	return g.model(name, []int{in}, []int{out})
}

// constLike adds a constant holding the real values v quantized with x's
// parameters (ops like MAXIMUM, PADV2 and SELECT_V2 need operands on the
// same scale).
func (g *graph) constLike(name string, shape []int, x int, v ...float64) int {
	t := g.tensor(x)
	i := g.b.AddTensor(modelbuilder.Tensor{Name: g.name(name), Type: t.Type, Shape: shape, Quant: t.Quant, Data: quantizeAll(t.Type, t.Quant, v)})
	g.lo[i], g.hi[i] = g.lo[x], g.hi[x]
	return i
}

// BuildMiscOps builds a model of the plumbing ops converted Keras models
// carry around their layers: PRELU, MAXIMUM and MINIMUM clamps,
// SPACE_TO_DEPTH, SPLIT_V, PADV2 with a constant value, SUM, GREATER +
// SELECT_V2, ARG_MIN, the dynamic-batch flatten the converter emits for
// Flatten layers (SHAPE, STRIDED_SLICE, PACK with -1, RESHAPE from a
// computed shape), EXPAND_DIMS, SQUEEZE, FULLY_CONNECTED and LOG_SOFTMAX.
// The Float32 model adds an elementwise chain on the SUM (ABS, ADD, LOG,
// NEG, EXP, POW, FLOOR, RELU_N1_TO_1, EQUAL/NOT_EQUAL/LESS with
// SELECT_V2, FILL). Outputs: log-probabilities, the ARG_MIN map and the
// SUM branch.
func BuildMiscOps(mode Mode) (*Model, error) {
	name := "misc_ops_" + mode.String()
	if err := checkMode(name, mode, Float32, Int8); err != nil {
		return nil, err
	}
	g := newGraph(mode, 0xf00f)
	in := g.input("x", []int{1, 4, 4, 8}, -2, 2)
	c := g.conv(in, 8, 1, 1, 1, 1, same, none, 3)
	// PRELU with a per-channel alpha.
	av := make([]float64, 8)
	for i := range av {
		av[i] = g.r.uniform(0.05, 0.4)
	}
	var alpha int
	if mode == Float32 {
		alpha = g.constFloat("prelu/alpha", []int{1, 1, 8}, av...)
	} else {
		q := rangeQ(tensor.Int8, 0, 0.4)
		alpha = g.b.AddTensor(modelbuilder.Tensor{Name: "prelu/alpha", Type: tensor.Int8, Shape: []int{1, 1, 8}, Quant: q, Data: quantizeAll(tensor.Int8, q, av)})
	}
	p := g.act("prelu", []int{1, 4, 4, 8}, -1.2, 3)
	g.op(schema.OpPrelu, nil, []int{c, alpha}, p)
	mx := g.like("maximum", g.shape(p), p)
	g.op(schema.OpMaximum, nil, []int{p, g.constLike("max/floor", []int{}, p, -0.5)}, mx)
	mn := g.like("minimum", g.shape(p), p)
	g.op(schema.OpMinimum, nil, []int{mx, g.constLike("min/ceiling", []int{}, p, 1.5)}, mn)
	s2d := g.like("space_to_depth", []int{1, 2, 2, 32}, mn)
	g.op(schema.OpSpaceToDepth, &schema.BlockOptions{BlockSize: 2}, []int{mn}, s2d)
	a, b := g.like("split_a", []int{1, 2, 2, 8}, s2d), g.like("split_b", []int{1, 2, 2, 24}, s2d)
	g.op(schema.OpSplitV, &schema.SplitOptions{NumSplits: 2}, []int{s2d, g.constInt32("splitv/sizes", []int{2}, 8, -1), g.constInt32("splitv/axis", []int{}, 3)}, a, b)
	pa := g.like("padv2", []int{1, 3, 3, 8}, a)
	g.op(schema.OpPadV2, nil, []int{a, g.constInt32("padv2/paddings", []int{4, 2}, 0, 0, 1, 0, 0, 1, 0, 0), g.constLike("padv2/value", []int{}, a, 0.25)}, pa)
	sum := g.act("sum", []int{1, 2, 2, 1}, -6, 20)
	g.op(schema.OpSum, &schema.ReducerOptions{KeepDims: true}, []int{b, g.constInt32("sum/axis", []int{1}, 3)}, sum)
	cond := g.b.AddTensor(modelbuilder.Tensor{Name: "greater", Type: tensor.Bool, Shape: []int{1, 2, 2, 8}})
	g.op(schema.OpGreater, nil, []int{a, g.constLike("greater/threshold", []int{}, a, 0.1)}, cond)
	sel := g.like("select", g.shape(a), a)
	g.op(schema.OpSelectV2, nil, []int{cond, a, g.constLike("select/else", []int{}, a, 1.0)}, sel)
	amin := g.b.AddTensor(modelbuilder.Tensor{Name: "argmin", Type: tensor.Int32, Shape: []int{1, 2, 2}})
	g.op(schema.OpArgMin, &schema.ArgOptions{OutputType: tensor.Int32}, []int{sel, g.constInt32("argmin/axis", []int{1}, 3)}, amin)
	// Keras Flatten with a dynamic batch.
	shp := g.b.AddTensor(modelbuilder.Tensor{Name: "shape", Type: tensor.Int32, Shape: []int{4}})
	g.op(schema.OpShape, &schema.ShapeOptions{OutType: tensor.Int32}, []int{pa}, shp)
	bsz := g.b.AddTensor(modelbuilder.Tensor{Name: "batch", Type: tensor.Int32, Shape: []int{}})
	g.op(schema.OpStridedSlice, &schema.StridedSliceOptions{ShrinkAxisMask: 1},
		[]int{shp, g.constInt32("batch/begin", []int{1}, 0), g.constInt32("batch/end", []int{1}, 1), g.constInt32("batch/strides", []int{1}, 1)}, bsz)
	ns := g.b.AddTensor(modelbuilder.Tensor{Name: "flat_shape", Type: tensor.Int32, Shape: []int{2}})
	g.op(schema.OpPack, &schema.PackOptions{ValuesCount: 2, Axis: 0}, []int{bsz, g.constInt32("minus_one", []int{}, -1)}, ns)
	flat := g.like("flatten", []int{1, 72}, pa)
	g.op(schema.OpReshape, nil, []int{pa, ns}, flat)
	ex := g.like("expand_dims", []int{1, 1, 72}, flat)
	g.op(schema.OpExpandDims, nil, []int{flat, g.constInt32("expand/axis", []int{}, 1)}, ex)
	sq := g.like("squeeze", []int{1, 72}, ex)
	g.op(schema.OpSqueeze, &schema.SqueezeOptions{SqueezeDims: []int{1}}, []int{ex}, sq)
	logits := g.fc(sq, 5, none, 4, false)
	var ls int
	if mode == Int8 {
		ls = g.actQ("log_softmax", tensor.Int8, []int{1, 5}, pq(16.0/256, 127), -16, 0)
	} else {
		ls = g.actQ("log_softmax", tensor.Float32, []int{1, 5}, nil, -16, 0)
	}
	g.op(schema.OpLogSoftmax, nil, []int{logits}, ls)
	branch := sum
	if mode == Float32 {
		fl := func(n string) int {
			return g.b.AddTensor(modelbuilder.Tensor{Name: n, Type: tensor.Float32, Shape: []int{1, 2, 2, 1}})
		}
		un := func(code schema.BuiltinOperator, x int, extra ...int) int {
			y := fl(code.String())
			g.op(code, nil, append([]int{x}, extra...), y)
			return y
		}
		ab := un(schema.OpAbs, sum)
		ae := fl("abs_eps")
		g.op(schema.OpAdd, &schema.ActivationOptions{}, []int{ab, g.constFloat("eps", []int{}, 1e-3)}, ae)
		lg := un(schema.OpLog, ae)
		ng := un(schema.OpNeg, lg)
		ep := un(schema.OpExp, ng)
		pw := un(schema.OpPow, ep, g.constFloat("pow/exponent", []int{}, 0.5))
		fo := un(schema.OpFloor, g.scaleBy(pw, 10))
		rn := un(schema.OpReluN1To1, g.scaleBy(lg, 0.5))
		fill := fl("fill")
		g.op(schema.OpFill, nil, []int{g.constInt32("fill/dims", []int{4}, 1, 2, 2, 1), g.constFloat("fill/value", []int{}, 0.75)}, fill)
		bools := func(code schema.BuiltinOperator, a, b int) int {
			t := g.b.AddTensor(modelbuilder.Tensor{Name: code.String(), Type: tensor.Bool, Shape: []int{1, 2, 2, 1}})
			g.op(code, nil, []int{a, b}, t)
			return t
		}
		eq := bools(schema.OpEqual, fo, g.constFloat("eq/value", []int{}, 3))
		ne := bools(schema.OpNotEqual, fo, g.constFloat("ne/value", []int{}, 4))
		ls2 := bools(schema.OpLess, rn, fill)
		s1 := fl("select_eq")
		g.op(schema.OpSelectV2, nil, []int{eq, fill, rn}, s1)
		s2 := fl("select_ne")
		g.op(schema.OpSelectV2, nil, []int{ne, s1, fo}, s2)
		s3 := fl("select_less")
		g.op(schema.OpSelectV2, nil, []int{ls2, s2, ep}, s3)
		branch = s3
	}
	return g.model(name, []int{in}, []int{ls, amin, branch})
}

// scaleBy multiplies float x by a constant.
func (g *graph) scaleBy(x int, k float64) int {
	y := g.b.AddTensor(modelbuilder.Tensor{Name: g.name("scaled"), Type: tensor.Float32, Shape: g.shape(x)})
	g.op(schema.OpMul, &schema.ActivationOptions{}, []int{x, g.constFloat(g.name("scale"), []int{}, k)}, y)
	return y
}
