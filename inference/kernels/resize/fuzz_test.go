package resize_test

import (
	"testing"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
	"github.com/edgefleet/edgefleet/quant"
)

// FuzzResize feeds untrusted sizes, shapes and options to both resize ops:
// Prepare may reject them, nothing may panic.
func FuzzResize(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 8, 16, 24, 0, 1})
	f.Add([]byte{1, 2, 3, 1, 2, 5, 0xff, 1, 1})
	f.Add([]byte{0, 3, 1, 1, 1, 1, 1, 2, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		at := func(i int) int {
			if i < len(b) {
				return int(b[i])
			}
			return 0
		}
		op := schema.OpResizeBilinear
		if at(0)&1 == 1 {
			op = schema.OpResizeNearestNeighbor
		}
		typ := []tensor.DType{tensor.Float32, tensor.Uint8, tensor.Int8, tensor.Int16}[at(1)&3]
		shape := []int{at(2)&3 + 1, at(3) & 7, at(4) & 7, at(5) & 15}
		oh, ow := int(int8(at(6))), int(int8(at(7)))
		in := kerneltest.New(typ, shape, make([]float64, tensor.NumElements(shape)), nil)
		size := kerneltest.New(tensor.Int32, []int{2}, []float64{float64(oh), float64(ow)}, nil)
		if at(8)&1 == 1 {
			kerneltest.Runtime(size)
		}
		opts := &schema.ResizeOptions{AlignCorners: at(8)&2 != 0, HalfPixelCenters: at(8)&4 != 0}
		out := &tensor.Tensor{Name: "out", Type: typ}
		kern, _ := kernels.Lookup(schema.OperatorCode{Builtin: op, Version: 1})
		_ = kerneltest.RunKernel(kern, quant.RoundingTFLite, &kernels.Node{Op: op, Version: 1, Options: opts, Inputs: []*tensor.Tensor{in, size}, Outputs: []*tensor.Tensor{out}})
	})
}
