// Package zoo builds small but realistic multi-op TensorFlow Lite models —
// classification, segmentation, pose estimation, keyword spotting, LSTM
// text classification, an attention block and an SSD detection head — the
// way TensorFlow's converter emits them: float32; full-integer int8 with
// per-channel symmetric weights and int32 biases of scale
// in_scale·w_scale[c]; old-style (TOCO) per-tensor asymmetric uint8; and
// 16x8 (int16 activations, int8 weights, int64 biases).
//
// Weights and inputs come from a fixed, self-contained generator, so every
// builder returns the same bytes on every run and platform. The zoo's tests
// compare the runtime's outputs on these models with TensorFlow Lite's
// (stored goldens) and its benchmarks time whole-model Invokes; other
// packages may use the models as fixtures.
package zoo

import (
	"fmt"
)

// Mode is how a zoo model is quantized.
type Mode int

// Quantization modes.
const (
	// Float32 keeps weights and activations in float32.
	Float32 Mode = iota
	// Int8 is full-integer int8: activations asymmetric int8, weights
	// symmetric int8 per channel (per tensor for FULLY_CONNECTED), biases
	// int32.
	Int8
	// Uint8 is the old TOCO scheme: everything per-tensor asymmetric uint8,
	// biases int32.
	Uint8
	// Int16x8 has symmetric int16 activations, int8 per-channel weights and
	// int64 biases.
	Int16x8
)

// String names the mode as the zoo's model names do.
func (m Mode) String() string {
	switch m {
	case Float32:
		return "float32"
	case Int8:
		return "int8"
	case Uint8:
		return "uint8"
	case Int16x8:
		return "int16x8"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Model is a built zoo model with one deterministic set of inputs.
type Model struct {
	// Name identifies the model (architecture and mode), e.g.
	// "mobilenetv2_int8".
	Name string
	// Bytes is the .tflite flatbuffer.
	Bytes []byte
	// Inputs holds one raw little-endian tensor per model input, in input
	// order, drawn over each input's calibrated range.
	Inputs [][]byte
	// Cases holds further input sets in the same layout: more random
	// draws and one with every value at an end of its range (for text
	// models, a sequence of the same token).
	Cases [][][]byte
}

// InputSets returns Inputs followed by Cases.
func (m *Model) InputSets() [][][]byte { return append([][][]byte{m.Inputs}, m.Cases...) }

// Entry is one model of the zoo and its builder.
type Entry struct {
	// Name is the Model's name.
	Name string
	// Build constructs the model.
	Build func() (*Model, error)
}

// All lists every zoo model: each architecture in each mode TensorFlow
// Lite supports for its ops.
func All() []Entry {
	var es []Entry
	add := func(name string, f func() (*Model, error)) { es = append(es, Entry{Name: name, Build: f}) }
	for _, m := range []Mode{Int8, Float32, Uint8, Int16x8} {
		add("mobilenetv2_"+m.String(), func() (*Model, error) { return BuildMobileNetV2(m) })
	}
	for _, m := range []Mode{Int8, Float32, Uint8, Int16x8} {
		add("wide_head_"+m.String(), func() (*Model, error) { return BuildWideHead(m) })
	}
	for _, m := range []Mode{Int8, Float32, Uint8} {
		add("mobilenetv3_"+m.String(), func() (*Model, error) { return BuildMobileNetV3(m) })
	}
	for _, m := range []Mode{Int8, Float32, Uint8} {
		add("deeplab_"+m.String(), func() (*Model, error) { return BuildDeepLab(m) })
	}
	for _, m := range []Mode{Int8, Float32, Uint8} {
		add("superres_"+m.String(), func() (*Model, error) { return BuildSuperResolution(m) })
	}
	for _, m := range []Mode{Int8, Float32, Int16x8} {
		add("posenet_"+m.String(), func() (*Model, error) { return BuildPoseNet(m) })
	}
	for _, m := range []Mode{Int8, Float32} {
		add("movenet_decode_"+m.String(), func() (*Model, error) { return BuildMoveNetDecode(m) })
	}
	for _, m := range []Mode{Int8, Float32, Int16x8} {
		add("kws_dscnn_"+m.String(), func() (*Model, error) { return BuildKeywordDSCNN(m) })
	}
	for _, m := range []Mode{Int8, Float32} {
		add("kws_svdf_"+m.String(), func() (*Model, error) { return BuildKeywordSVDF(m) })
	}
	for _, m := range []Mode{Int8, Float32} {
		add("text_lstm_"+m.String(), func() (*Model, error) { return BuildTextLSTM(m) })
	}
	for _, m := range []Mode{Int8, Float32} {
		add("text_avgpool_"+m.String(), func() (*Model, error) { return BuildTextAveragePool(m) })
	}
	add("attention_float32", BuildAttentionBlock)
	for _, m := range []Mode{Int8, Float32} {
		add("misc_ops_"+m.String(), func() (*Model, error) { return BuildMiscOps(m) })
	}
	for _, m := range []Mode{Int8, Float32, Uint8} {
		add("yolo_"+m.String(), func() (*Model, error) { return BuildYOLO(m) })
	}
	for _, c := range []struct {
		m       Mode
		regular bool
	}{{Float32, false}, {Float32, true}, {Uint8, false}, {Uint8, true}} {
		name := "ssd_" + c.m.String()
		if c.regular {
			name += "_regular_nms"
		}
		add(name, func() (*Model, error) { return BuildSSD(c.m, c.regular) })
	}
	return es
}
