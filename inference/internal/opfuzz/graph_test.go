package opfuzz

import (
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/modelbuilder"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
)

func f32s(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// TestAliasedOutputsRejected covers the first crashes FuzzOps found: a node
// whose output is a constant, its own input, a subgraph input or a
// variable had that tensor resized under its fixed memory, and Eval then
// indexed past its end. Such models must fail to load with a clear error.
func TestAliasedOutputsRejected(t *testing.T) {
	tests := []struct {
		name string
		// build returns the model; x is a runtime float32[2 3 7] input.
		build func(b *modelbuilder.Builder, x int)
		want  string
	}{
		{"output is a constant", func(b *modelbuilder.Builder, x int) {
			c := b.AddTensor(modelbuilder.Tensor{Name: "c", Type: tensor.Float32, Shape: []int{3, 1}, Data: f32s(1, 2, 3)})
			b.AddOp(modelbuilder.Op{Builtin: schema.OpMinimum, Inputs: []int{x, c}, Outputs: []int{c}})
			b.SetIO([]int{x}, []int{c})
		}, "constant tensor"},
		{"output is its own input", func(b *modelbuilder.Builder, x int) {
			y := b.AddTensor(modelbuilder.Tensor{Name: "y", Type: tensor.Float32, Shape: []int{3, 1}})
			b.AddOp(modelbuilder.Op{Builtin: schema.OpMinimum, Inputs: []int{x, y}, Outputs: []int{y}})
			b.SetIO([]int{x}, []int{y})
		}, "also an input"},
		{"output is a subgraph input", func(b *modelbuilder.Builder, x int) {
			y := b.AddTensor(modelbuilder.Tensor{Name: "y", Type: tensor.Float32, Shape: []int{3, 1}})
			b.AddOp(modelbuilder.Op{Builtin: schema.OpRelu, Inputs: []int{x}, Outputs: []int{y}})
			b.SetIO([]int{x, y}, []int{y})
		}, "also an input"},
		{"output is a variable of another shape", func(b *modelbuilder.Builder, x int) {
			v := b.AddTensor(modelbuilder.Tensor{Name: "v", Type: tensor.Float32, Shape: []int{3, 1}, Variable: true})
			b.AddOp(modelbuilder.Op{Builtin: schema.OpRelu, Inputs: []int{x}, Outputs: []int{v}})
			b.SetIO([]int{x}, []int{v})
		}, "cannot become"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := modelbuilder.New()
			x := b.AddTensor(modelbuilder.Tensor{Name: "x", Type: tensor.Float32, Shape: []int{2, 3, 7}})
			tc.build(b, x)
			data, err := b.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			_, err = inference.Load(data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load: got error %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(tc.want, "input") || strings.Contains(tc.want, "constant") {
				if !errors.Is(err, inference.ErrInvalidModel) {
					t.Errorf("error %v does not wrap ErrInvalidModel", err)
				}
			}
		})
	}
}
