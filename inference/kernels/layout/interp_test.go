package layout_test

import (
	"github.com/edgefleet/edgefleet/internal/kerneltest"
	"testing"

	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/modelbuilder"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
)

// TestFlattenPattern runs the converter's dynamic-flatten pattern
// SHAPE → STRIDED_SLICE → PACK → RESHAPE through the interpreter: the shape
// arithmetic is folded at prepare, so RESHAPE's output is planned
// statically, and the result is the input's bytes as [2,12].
func TestFlattenPattern(t *testing.T) {
	b := modelbuilder.New()
	in := b.AddTensor(modelbuilder.Tensor{Name: "x", Type: tensor.Float32, Shape: []int{2, 3, 4}})
	shp := b.AddTensor(modelbuilder.Tensor{Name: "shape", Type: tensor.Int32, Shape: []int{3}})
	c0 := b.AddTensor(modelbuilder.Tensor{Name: "b", Type: tensor.Int32, Shape: []int{1}, Data: kerneltest.I32(0)})
	c1 := b.AddTensor(modelbuilder.Tensor{Name: "e", Type: tensor.Int32, Shape: []int{1}, Data: kerneltest.I32(1)})
	batch := b.AddTensor(modelbuilder.Tensor{Name: "batch", Type: tensor.Int32, Shape: []int{}})
	minus := b.AddTensor(modelbuilder.Tensor{Name: "m1", Type: tensor.Int32, Shape: []int{}, Data: kerneltest.I32(-1)})
	packed := b.AddTensor(modelbuilder.Tensor{Name: "packed", Type: tensor.Int32, Shape: []int{2}})
	out := b.AddTensor(modelbuilder.Tensor{Name: "y", Type: tensor.Float32, Shape: []int{2, 12}})
	b.AddOp(modelbuilder.Op{Builtin: schema.OpShape, Inputs: []int{in}, Outputs: []int{shp}, Options: &schema.ShapeOptions{OutType: tensor.Int32}})
	b.AddOp(modelbuilder.Op{Builtin: schema.OpStridedSlice, Inputs: []int{shp, c0, c1, c1}, Outputs: []int{batch}, Options: &schema.StridedSliceOptions{ShrinkAxisMask: 1}})
	b.AddOp(modelbuilder.Op{Builtin: schema.OpPack, Inputs: []int{batch, minus}, Outputs: []int{packed}, Options: &schema.PackOptions{ValuesCount: 2}})
	b.AddOp(modelbuilder.Op{Builtin: schema.OpReshape, Inputs: []int{in, packed}, Outputs: []int{out}, Options: &schema.ReshapeOptions{}})
	b.SetIO([]int{in}, []int{out})
	ip := interpreter(t, b)
	x := kerneltest.F32(kerneltest.SeqF(24, 1)...)
	if err := ip.SetInput(0, x); err != nil {
		t.Fatal(err)
	}
	if err := ip.Invoke(); err != nil {
		t.Fatal(err)
	}
	y := ip.Output(0)
	if !tensor.SameShape(y.Shape, []int{2, 12}) || string(y.Data) != string(x) {
		t.Fatalf("output shape %v data equal %v, want [2 12] and the input bytes", y.Shape, string(y.Data) == string(x))
	}
	if y.Alloc == tensor.DynamicAlloc {
		t.Error("RESHAPE output is dynamic: the shape chain was not folded at prepare")
	}
}

// TestRuntimeShapeInputs feeds shape-defining tensors as model inputs, so
// the outputs are dynamic and sized during Invoke.
func TestRuntimeShapeInputs(t *testing.T) {
	b := modelbuilder.New()
	x := b.AddTensor(modelbuilder.Tensor{Name: "x", Type: tensor.Int8, Shape: []int{2, 3}})
	pads := b.AddTensor(modelbuilder.Tensor{Name: "pads", Type: tensor.Int32, Shape: []int{2, 2}})
	padded := b.AddTensor(modelbuilder.Tensor{Name: "padded", Type: tensor.Int8, Shape: []int{2, 3}})
	newShape := b.AddTensor(modelbuilder.Tensor{Name: "ns", Type: tensor.Int32, Shape: []int{1}})
	y := b.AddTensor(modelbuilder.Tensor{Name: "y", Type: tensor.Int8, Shape: []int{6}})
	b.AddOp(modelbuilder.Op{Builtin: schema.OpPad, Inputs: []int{x, pads}, Outputs: []int{padded}})
	b.AddOp(modelbuilder.Op{Builtin: schema.OpReshape, Inputs: []int{padded, newShape}, Outputs: []int{y}, Options: &schema.ReshapeOptions{}})
	b.SetIO([]int{x, pads, newShape}, []int{y})
	ip := interpreter(t, b)
	for i, d := range [][]byte{kerneltest.I8(1, 2, 3, 4, 5, 6), kerneltest.I32(0, 1, 1, 0), kerneltest.I32(-1)} {
		if err := ip.SetInput(i, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := ip.Invoke(); err != nil {
		t.Fatal(err)
	}
	got := ip.Output(0)
	want := kerneltest.I8(0, 1, 2, 3, 0, 4, 5, 6, 0, 0, 0, 0)
	if !tensor.SameShape(got.Shape, []int{12}) || string(got.Data) != string(want) {
		t.Fatalf("output %v %v, want [12] %v", got.Shape, got.Data, want)
	}
}

func interpreter(t *testing.T, b *modelbuilder.Builder) *inference.Interpreter {
	t.Helper()
	model, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	m, err := inference.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	ip, err := inference.NewInterpreter(m)
	if err != nil {
		t.Fatal(err)
	}
	return ip
}
