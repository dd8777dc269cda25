// Package servingtest builds real TFLite models with controllable run time
// for the agent's tests: a WHILE loop that finishes after a few iterations
// or, for other inputs, practically never (until its context is canceled).
package servingtest

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/edgefleet/edgefleet/inference/modelbuilder"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
)

// I32 encodes int32 values as tensor bytes.
func I32(v ...int32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
	}
	return b
}

// WhileModel returns a model with one int32 input "x" of shape [1] and one
// output "y": i = x; while i != stop { i = i + 1 }; y = i. An input x <= stop
// runs stop-x iterations; any other input wraps around int32, about 4e9
// iterations, which is "never" for a test: only cancellation ends it.
func WhileModel(stop int32) ([]byte, error) {
	b := modelbuilder.New()
	x := b.AddTensor(modelbuilder.Tensor{Name: "x", Type: tensor.Int32, Shape: []int{1}})
	y := b.AddTensor(modelbuilder.Tensor{Name: "y", Type: tensor.Int32, Shape: []int{1}})
	cond, condIdx := b.AddSubgraph("cond")
	ci := cond.AddTensor(modelbuilder.Tensor{Name: "i", Type: tensor.Int32, Shape: []int{1}})
	cs := cond.AddTensor(modelbuilder.Tensor{Name: "stop", Type: tensor.Int32, Shape: []int{1}, Data: I32(stop)})
	co := cond.AddTensor(modelbuilder.Tensor{Name: "ne", Type: tensor.Bool, Shape: []int{1}})
	cond.AddOp(modelbuilder.Op{Builtin: schema.OpNotEqual, Inputs: []int{ci, cs}, Outputs: []int{co}})
	cond.Inputs, cond.Outputs = []int{ci}, []int{co}
	body, bodyIdx := b.AddSubgraph("body")
	bi := body.AddTensor(modelbuilder.Tensor{Name: "i", Type: tensor.Int32, Shape: []int{1}})
	one := body.AddTensor(modelbuilder.Tensor{Name: "one", Type: tensor.Int32, Shape: []int{1}, Data: I32(1)})
	bo := body.AddTensor(modelbuilder.Tensor{Name: "next", Type: tensor.Int32, Shape: []int{1}})
	body.AddOp(modelbuilder.Op{Builtin: schema.OpAdd, Inputs: []int{bi, one}, Outputs: []int{bo}, Options: &schema.ActivationOptions{}})
	body.Inputs, body.Outputs = []int{bi}, []int{bo}
	b.AddOp(modelbuilder.Op{Builtin: schema.OpWhile, Inputs: []int{x}, Outputs: []int{y}, Options: &schema.WhileOptions{Cond: condIdx, Body: bodyIdx}})
	b.SetIO([]int{x}, []int{y})
	data, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("while model: %w", err)
	}
	return data, nil
}

// NeverEndingModel returns a model like WhileModel(-1) whose loop also
// carries a 64 Ki-element float32 tensor it adds to itself every
// iteration, so that even the runtime's WHILE iteration cap (100 million)
// takes far longer than any test (at ≥ 10 µs an iteration: hours): only
// cancellation ends its invocation. WhileModel(-1) reaches the cap within
// seconds on a fast machine.
func NeverEndingModel() ([]byte, error) {
	const width = 1 << 16
	b := modelbuilder.New()
	x := b.AddTensor(modelbuilder.Tensor{Name: "x", Type: tensor.Int32, Shape: []int{1}})
	pad := b.AddTensor(modelbuilder.Tensor{Name: "pad", Type: tensor.Float32, Shape: []int{width}, Data: make([]byte, 4*width)})
	y := b.AddTensor(modelbuilder.Tensor{Name: "y", Type: tensor.Int32, Shape: []int{1}})
	yPad := b.AddTensor(modelbuilder.Tensor{Name: "y_pad", Type: tensor.Float32, Shape: []int{width}})
	cond, condIdx := b.AddSubgraph("cond")
	ci := cond.AddTensor(modelbuilder.Tensor{Name: "i", Type: tensor.Int32, Shape: []int{1}})
	cp := cond.AddTensor(modelbuilder.Tensor{Name: "pad", Type: tensor.Float32, Shape: []int{width}})
	cs := cond.AddTensor(modelbuilder.Tensor{Name: "stop", Type: tensor.Int32, Shape: []int{1}, Data: I32(-1)})
	co := cond.AddTensor(modelbuilder.Tensor{Name: "ne", Type: tensor.Bool, Shape: []int{1}})
	cond.AddOp(modelbuilder.Op{Builtin: schema.OpNotEqual, Inputs: []int{ci, cs}, Outputs: []int{co}})
	cond.Inputs, cond.Outputs = []int{ci, cp}, []int{co}
	body, bodyIdx := b.AddSubgraph("body")
	bi := body.AddTensor(modelbuilder.Tensor{Name: "i", Type: tensor.Int32, Shape: []int{1}})
	bp := body.AddTensor(modelbuilder.Tensor{Name: "pad", Type: tensor.Float32, Shape: []int{width}})
	one := body.AddTensor(modelbuilder.Tensor{Name: "one", Type: tensor.Int32, Shape: []int{1}, Data: I32(1)})
	bo := body.AddTensor(modelbuilder.Tensor{Name: "next", Type: tensor.Int32, Shape: []int{1}})
	bpo := body.AddTensor(modelbuilder.Tensor{Name: "pad_next", Type: tensor.Float32, Shape: []int{width}})
	body.AddOp(modelbuilder.Op{Builtin: schema.OpAdd, Inputs: []int{bi, one}, Outputs: []int{bo}, Options: &schema.ActivationOptions{}})
	body.AddOp(modelbuilder.Op{Builtin: schema.OpAdd, Inputs: []int{bp, bp}, Outputs: []int{bpo}, Options: &schema.ActivationOptions{}})
	body.Inputs, body.Outputs = []int{bi, bp}, []int{bo, bpo}
	b.AddOp(modelbuilder.Op{Builtin: schema.OpWhile, Inputs: []int{x, pad}, Outputs: []int{y, yPad}, Options: &schema.WhileOptions{Cond: condIdx, Body: bodyIdx}})
	b.SetIO([]int{x}, []int{y})
	data, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("never-ending model: %w", err)
	}
	return data, nil
}

// ConstModel returns a model without inputs whose float32 output "y" of
// shape [2] is the constant a + b.
func ConstModel() ([]byte, error) {
	b := modelbuilder.New()
	f := func(v ...float32) []byte {
		out := make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(x))
		}
		return out
	}
	a := b.AddTensor(modelbuilder.Tensor{Name: "a", Type: tensor.Float32, Shape: []int{2}, Data: f(1, 2)})
	c := b.AddTensor(modelbuilder.Tensor{Name: "b", Type: tensor.Float32, Shape: []int{2}, Data: f(10, 20)})
	y := b.AddTensor(modelbuilder.Tensor{Name: "y", Type: tensor.Float32, Shape: []int{2}})
	b.AddOp(modelbuilder.Op{Builtin: schema.OpAdd, Inputs: []int{a, c}, Outputs: []int{y}, Options: &schema.ActivationOptions{}})
	b.SetIO(nil, []int{y})
	data, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("const model: %w", err)
	}
	return data, nil
}
