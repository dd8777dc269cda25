package elementwise

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/modelbuilder"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
	"github.com/edgefleet/edgefleet/quant"
)

// refCase is one single-op case for the reference cross-check.
type refCase struct {
	name    string
	op      schema.BuiltinOperator
	opts    any
	inputs  []*tensor.Tensor
	outputs []*tensor.Tensor // type and quantization only
}

// refCompare runs every case with our kernels and compares the results
// with TensorFlow Lite's outputs for one model holding all the cases
// (golden files testdata/golden/<name>, made by the real TFLite with
// -update-goldens). It returns the number of mismatching cases.
func refCompare(t *testing.T, name string, cases []refCase) int {
	t.Helper()
	b := modelbuilder.New()
	var ins, outs []int
	var inData [][]byte
	ours := make([][][]byte, len(cases))
	for ci, c := range cases {
		k, ok := kernels.Lookup(schema.OperatorCode{Builtin: c.op, Version: 1})
		if !ok {
			t.Fatalf("no kernel for %s", c.op)
		}
		node := &kernels.Node{Op: c.op, Version: 1, Options: c.opts, Inputs: c.inputs, Outputs: c.outputs}
		ctx := kernels.NewContext(quant.RoundingTFLite, 1)
		ctx.Preparing = true
		if err := k.Prepare(ctx, node); err != nil {
			t.Fatalf("case %s: prepare: %v", c.name, err)
		}
		ctx.Preparing = false
		for _, o := range c.outputs {
			o.Data = kernels.AlignedBytes(o.ByteSize())
		}
		if err := k.Eval(ctx, node); err != nil {
			t.Fatalf("case %s: eval: %v", c.name, err)
		}
		for _, o := range c.outputs {
			ours[ci] = append(ours[ci], append([]byte(nil), o.Data...))
		}
		var opIn, opOut []int
		for ii, in := range c.inputs {
			if in == nil {
				opIn = append(opIn, -1)
				continue
			}
			mt := modelbuilder.Tensor{Name: fmt.Sprintf("c%d_in%d", ci, ii), Type: in.Type, Shape: in.Shape, Quant: in.Quant}
			if in.KnownAtPrepare {
				mt.Data = append([]byte(nil), in.Data...)
				if len(mt.Data) == 0 {
					mt.Data = nil
				}
			}
			idx := b.AddTensor(mt)
			opIn = append(opIn, idx)
			if !in.KnownAtPrepare {
				ins = append(ins, idx)
				inData = append(inData, in.Data)
			}
		}
		for oi, o := range c.outputs {
			idx := b.AddTensor(modelbuilder.Tensor{Name: fmt.Sprintf("c%d_out%d", ci, oi), Type: o.Type, Shape: o.Shape, Quant: o.Quant})
			opOut = append(opOut, idx)
			outs = append(outs, idx)
		}
		b.AddOp(modelbuilder.Op{Builtin: c.op, Version: 1, Inputs: opIn, Outputs: opOut, Options: c.opts})
	}
	b.SetIO(ins, outs)
	mb, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	wants := kerneltest.Golden(t, name, mb, inData)
	// The goldens are only valid for the inputs they were made from.
	for i, in := range inData {
		stored, err := os.ReadFile(filepath.Join("testdata", "golden", name, fmt.Sprintf("input_%d.bin", i)))
		if err != nil || !bytes.Equal(stored, in) {
			t.Fatalf("golden %s: input %d differs from the stored one; regenerate with -update-goldens", name, i)
		}
	}
	if len(wants) != len(outs) {
		t.Fatalf("golden %s has %d outputs, the model %d (regenerate with -update-goldens)", name, len(wants), len(outs))
	}
	bad := 0
	k := 0
	for ci, c := range cases {
		for oi, o := range c.outputs {
			want := wants[k]
			k++
			got := ours[ci][oi]
			if !equalOut(o.Type, got, want) {
				bad++
				t.Errorf("case %s output %d mismatch:\n got  %v\n want %v", c.name, oi, rawValues(o.Type, got), rawValues(o.Type, want))
				for ii, in := range c.inputs {
					if in != nil {
						t.Logf("  input %d %s %v quant %+v: %v", ii, in.Type, in.Shape, in.Quant, rawValues(in.Type, in.Data))
					}
				}
				t.Logf("  output quant %+v", o.Quant)
			}
		}
	}
	return bad
}

func equalOut(dt tensor.DType, got, want []byte) bool {
	if dt != tensor.Float32 {
		return bytes.Equal(got, want)
	}
	g, w := tensor.View[float32](got), tensor.View[float32](want)
	if len(g) != len(w) {
		return false
	}
	var m float64
	for _, v := range w {
		m = max(m, abs64(float64(v)))
	}
	for i := range g {
		if g[i] != g[i] && w[i] != w[i] {
			continue
		}
		if abs64(float64(g[i])-float64(w[i])) > 1e-5*m {
			return false
		}
	}
	return true
}

func abs64(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// rawValues returns the stored values of a tensor's bytes.
func rawValues(dt tensor.DType, b []byte) any {
	t := &tensor.Tensor{Type: dt, Data: b}
	t.Shape = []int{len(b) / max(dt.Size(), 1)}
	v, err := t.Real()
	if err != nil {
		return b
	}
	return v
}
