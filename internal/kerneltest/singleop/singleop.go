// Package singleop checks kernels end to end against TensorFlow Lite: it
// builds a model with one operator, runs it through the interpreter and
// compares the outputs with the stored golden outputs (see
// kerneltest.Golden).
//
// It is separate from kerneltest because it imports the interpreter, which
// imports every kernel package; kerneltest itself is used by the kernel
// packages' internal tests and must not.
package singleop

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"

	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/modelbuilder"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
)

// Spec describes one tensor of a single-op golden model. Data makes it a
// constant; otherwise it is a model input (In) or output.
type Spec struct {
	Type  tensor.DType
	Shape []int
	Scale float32
	ZP    int64
	Data  []byte
	In    []byte
	// Lo and Hi bound generated int16 and float32 inputs.
	Lo, Hi int
}

func (s Spec) quant() *tensor.Quantization {
	if s.Scale == 0 {
		return nil
	}
	return &tensor.Quantization{Scale: []float32{s.Scale}, ZeroPoint: []int64{s.ZP}}
}

// Build returns a model with one operator op reading ins and writing
// outs, and the model's inputs (the In of every non-constant spec).
func Build(t *testing.T, op schema.BuiltinOperator, version int, opts any, ins []Spec, outs []Spec) (model []byte, inputs [][]byte) {
	t.Helper()
	b := modelbuilder.New()
	var inIdx, modelIn, outIdx []int
	for i, s := range ins {
		idx := b.AddTensor(modelbuilder.Tensor{Name: fmt.Sprintf("in%d", i), Type: s.Type, Shape: s.Shape, Data: s.Data, Quant: s.quant()})
		inIdx = append(inIdx, idx)
		if s.Data == nil {
			modelIn = append(modelIn, idx)
			inputs = append(inputs, s.In)
		}
	}
	for i, s := range outs {
		outIdx = append(outIdx, b.AddTensor(modelbuilder.Tensor{Name: fmt.Sprintf("out%d", i), Type: s.Type, Shape: s.Shape, Quant: s.quant()}))
	}
	b.AddOp(modelbuilder.Op{Builtin: op, Version: version, Inputs: inIdx, Outputs: outIdx, Options: opts})
	b.SetIO(modelIn, outIdx)
	m, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return m, inputs
}

// Run runs model on inputs with the interpreter and returns copies of its
// outputs.
func Run(t *testing.T, model []byte, inputs [][]byte, opts ...inference.Option) [][]byte {
	t.Helper()
	m, err := inference.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	ip, err := inference.NewInterpreter(m, opts...)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range inputs {
		if err := ip.SetInput(i, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := ip.Invoke(); err != nil {
		t.Fatal(err)
	}
	var outs [][]byte
	for i := 0; i < ip.NumOutputs(); i++ {
		outs = append(outs, append([]byte(nil), ip.Output(i).Data...))
	}
	return outs
}

// CheckGolden compares the interpreter's outputs for model on inputs with
// TensorFlow Lite's (testdata/golden/<name>) using Compare; outTypes are
// the outputs' dtypes.
func CheckGolden(t *testing.T, name string, model []byte, inputs [][]byte, outTypes ...tensor.DType) {
	t.Helper()
	want := kerneltest.Golden(t, name, model, inputs)
	Compare(t, name, Run(t, model, inputs), want, outTypes...)
}

// Compare fails unless got matches TensorFlow Lite's outputs want:
// integer outputs byte for byte (reporting up to five differing elements),
// float32 within 1e-5 of the largest expected magnitude.
func Compare(t *testing.T, name string, got, want [][]byte, outTypes ...tensor.DType) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d outputs, golden has %d", name, len(got), len(want))
	}
	for i := range want {
		if outTypes[i] == tensor.Float32 {
			g, w := kerneltest.F32s(got[i]), kerneltest.F32s(want[i])
			if len(g) != len(w) {
				t.Fatalf("%s: output %d has %d values, want %d", name, i, len(g), len(w))
			}
			var big float64
			for _, v := range w {
				big = math.Max(big, math.Abs(float64(v)))
			}
			for j := range w {
				if d := math.Abs(float64(g[j] - w[j])); d > 1e-5*math.Max(big, 1e-30) && !(math.IsNaN(float64(g[j])) && math.IsNaN(float64(w[j]))) {
					t.Fatalf("%s: output %d[%d] = %v, want %v", name, i, j, g[j], w[j])
				}
			}
			continue
		}
		if len(got[i]) != len(want[i]) {
			t.Fatalf("%s: output %d has %d bytes, want %d", name, i, len(got[i]), len(want[i]))
		}
		size := outTypes[i].Size()
		diffs := 0
		for j := 0; j < len(want[i]); j += size {
			if string(got[i][j:j+size]) != string(want[i][j:j+size]) {
				if diffs < 5 {
					t.Errorf("%s: output %d element %d = %v, want %v", name, i, j/size, decode(outTypes[i], got[i][j:j+size]), decode(outTypes[i], want[i][j:j+size]))
				}
				diffs++
			}
		}
		if diffs > 0 {
			t.Fatalf("%s: %d of %d elements differ from TensorFlow Lite", name, diffs, len(want[i])/size)
		}
	}
}

func decode(dt tensor.DType, b []byte) int64 {
	switch dt {
	case tensor.Int8:
		return int64(int8(b[0]))
	case tensor.Uint8:
		return int64(b[0])
	case tensor.Int16:
		return int64(int16(binary.LittleEndian.Uint16(b)))
	case tensor.Int32:
		return int64(int32(binary.LittleEndian.Uint32(b)))
	case tensor.Int64:
		return int64(binary.LittleEndian.Uint64(b))
	}
	return 0
}
