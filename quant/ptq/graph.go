// Package ptq is a post-training full-integer quantizer: it calibrates a
// float32 TensorFlow Lite model on representative inputs (recording the
// min/max of every activation tensor) and rewrites it as an int8 model the
// way TensorFlow Lite's converter does — per-channel symmetric int8 weights,
// int32 biases, per-tensor asymmetric int8 activations, fixed output
// parameters for SOFTMAX/LOGISTIC/TANH, shared parameters across ops that
// only move data, int8 op versions, and float32, int8 or uint8 model
// boundaries.
package ptq

import (
	"fmt"

	"github.com/edgefleet/edgefleet/inference/modelbuilder"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
)

// toBuilder copies the primary subgraph of m into a modelbuilder.Builder,
// keeping tensors, constants, operators, options and the TFLITE_METADATA
// buffer. Only single-subgraph models are handled.
func toBuilder(m *schema.Model) (*modelbuilder.Builder, error) {
	if len(m.Subgraphs) != 1 {
		return nil, fmt.Errorf("model has %d subgraphs: the quantizer handles single-subgraph models only (no WHILE/IF/CALL)", len(m.Subgraphs))
	}
	sg := &m.Subgraphs[0]
	b := modelbuilder.New()
	b.Main().Name = sg.Name
	for ti := range sg.Tensors {
		t := &sg.Tensors[ti]
		if t.Sparse {
			return nil, fmt.Errorf("tensor %d (%q) is sparse: sparse models are not supported", ti, t.Name)
		}
		var data []byte
		if d := m.BufferData(t); len(d) > 0 {
			data = append([]byte(nil), d...)
		}
		b.AddTensor(modelbuilder.Tensor{
			Name: t.Name, Type: t.Type, Shape: append([]int(nil), t.Shape...),
			Data: data, Quant: t.Quant, Variable: t.IsVariable,
		})
	}
	for oi := range sg.Operators {
		op := &sg.Operators[oi]
		code := m.OperatorCodes[op.OpcodeIndex]
		b.AddOp(modelbuilder.Op{
			Builtin: code.Builtin, Custom: code.Custom, Version: code.Version,
			Inputs:        append([]int(nil), op.Inputs...),
			Outputs:       append([]int(nil), op.Outputs...),
			Intermediates: append([]int(nil), op.Intermediates...),
			Options:       op.Options, CustomOptions: op.CustomOptions,
		})
	}
	b.SetIO(append([]int(nil), sg.Inputs...), append([]int(nil), sg.Outputs...))
	if md := m.MetadataBuffer("TFLITE_METADATA"); len(md) > 0 {
		b.Metadata = map[string][]byte{"TFLITE_METADATA": append([]byte(nil), md...)}
	}
	b.Description = m.Description
	return b, nil
}

// isActivation reports whether tensor ti of sg is a float32 tensor computed
// at run time (not a constant).
func isActivation(m *schema.Model, sg *schema.Subgraph, ti int) bool {
	t := &sg.Tensors[ti]
	return t.Type == tensor.Float32 && len(m.BufferData(t)) == 0 && !t.IsVariable
}
