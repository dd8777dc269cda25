package sequence_test

import (
	"math"
	"testing"

	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/modelbuilder"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
)

// runModel loads model bytes with the runtime and invokes it once per
// input set, returning the outputs of every Invoke.
func runModel(t *testing.T, model []byte, inputs ...[][]byte) [][][]byte {
	t.Helper()
	m, err := inference.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	ip, err := inference.NewInterpreter(m)
	if err != nil {
		t.Fatal(err)
	}
	var res [][][]byte
	for _, in := range inputs {
		for i, b := range in {
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
		res = append(res, outs)
	}
	return res
}

// expectFloatClose fails unless got is within 1e-5 of the largest |want|.
func expectFloatClose(t *testing.T, what string, got, want []byte) {
	t.Helper()
	g, w := kerneltest.F32s(got), kerneltest.F32s(want)
	if len(g) != len(w) {
		t.Fatalf("%s: %d values, want %d", what, len(g), len(w))
	}
	var m float64
	for _, v := range w {
		m = max(m, math.Abs(float64(v)))
	}
	tol := 1e-5 * max(m, 1e-6)
	for i := range w {
		if math.Abs(float64(g[i])-float64(w[i])) > tol || math.IsNaN(float64(g[i])) {
			t.Fatalf("%s: value %d = %v, want %v (tolerance %g)\n got %v\nwant %v", what, i, g[i], w[i], tol, g, w)
		}
	}
}

// expectBytes fails unless got equals want byte for byte.
func expectBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if string(got) != string(want) {
		t.Fatalf("%s differs:\n got %v\nwant %v", what, got, want)
	}
}

var _ = modelbuilder.New

// loadErr loads a model and creates an interpreter, returning the error.
func loadErr(model []byte) (*inference.Interpreter, error) {
	m, err := inference.Load(model)
	if err != nil {
		return nil, err
	}
	return inference.NewInterpreter(m)
}
