package kerneltest

import (
	"math"
	"testing"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/modelbuilder"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
)

// GoldenTensor describes one tensor of a GoldenOp model: Const tensors are
// stored in the model, the others are model inputs fed with Data.
type GoldenTensor struct {
	Type  tensor.DType
	Shape []int
	Data  []byte
	Quant *tensor.Quantization
	Const bool
}

// GoldenOp builds a one-op model, gets TensorFlow Lite's outputs for it
// (testdata/golden/<name>, see Golden) and checks that the kernel, run
// directly as the interpreter would (constants known at prepare, model
// inputs only at run time), produces the same bytes (float32 within 1e-5
// of the largest magnitude).
func GoldenOp(t *testing.T, name string, op schema.BuiltinOperator, opts any, ins []GoldenTensor, outs []GoldenTensor) {
	t.Helper()
	b := modelbuilder.New()
	var opIn, graphIn, opOut []int
	var feeds [][]byte
	for _, in := range ins {
		mt := modelbuilder.Tensor{Name: "in", Type: in.Type, Shape: in.Shape, Quant: in.Quant}
		if in.Const {
			mt.Data = in.Data
		}
		i := b.AddTensor(mt)
		opIn = append(opIn, i)
		if !in.Const {
			graphIn = append(graphIn, i)
			feeds = append(feeds, in.Data)
		}
	}
	for _, o := range outs {
		opOut = append(opOut, b.AddTensor(modelbuilder.Tensor{Name: "out", Type: o.Type, Shape: o.Shape, Quant: o.Quant}))
	}
	b.AddOp(modelbuilder.Op{Builtin: op, Inputs: opIn, Outputs: opOut, Options: opts})
	b.SetIO(graphIn, opOut)
	model, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	want := Golden(t, name, model, feeds)
	var inputs []*tensor.Tensor
	for _, in := range ins {
		tt := &tensor.Tensor{Name: "in", Type: in.Type, Shape: append([]int{}, in.Shape...), Quant: in.Quant,
			Data: kernels.AlignedBytes(len(in.Data)), Alloc: tensor.ConstantAlloc, KnownAtPrepare: true}
		copy(tt.Data, in.Data)
		if !in.Const {
			Runtime(tt)
		}
		inputs = append(inputs, tt)
	}
	var outputs []*tensor.Tensor
	for _, o := range outs {
		outputs = append(outputs, &tensor.Tensor{Name: "out", Type: o.Type, Shape: append([]int{}, o.Shape...), Quant: o.Quant})
	}
	if err := Run(t, op, opts, inputs, outputs...); err != nil {
		t.Fatal(err)
	}
	if len(want) != len(outs) {
		t.Fatalf("%d golden outputs, expected %d", len(want), len(outs))
	}
	for i := range outs {
		compareTensor(t, i, outputs[i], want[i])
	}
}

func compareTensor(t *testing.T, i int, got *tensor.Tensor, want []byte) {
	t.Helper()
	if len(got.Data) != len(want) {
		t.Fatalf("output %d: %d bytes (shape %v), TensorFlow Lite gives %d", i, len(got.Data), got.Shape, len(want))
	}
	if got.Type == tensor.Float32 {
		g := got.Float32s()
		w := tensor.View[float32](want)
		big := 0.0
		for _, v := range w {
			big = math.Max(big, math.Abs(float64(v)))
		}
		for k := range w {
			if math.Abs(float64(g[k]-w[k])) > 1e-5*math.Max(big, 1e-30) {
				t.Fatalf("output %d element %d = %v, TensorFlow Lite gives %v\n got %v\nwant %v", i, k, g[k], w[k], g, w)
			}
		}
		return
	}
	for k := range want {
		if got.Data[k] != want[k] {
			t.Fatalf("output %d byte %d = %d, TensorFlow Lite gives %d\n got %v\nwant %v", i, k, got.Data[k], want[k], got.Data, want)
		}
	}
}
