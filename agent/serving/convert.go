package serving

import (
	"fmt"
	"math"

	"github.com/edgefleet/edgefleet/agent/engine"
	"github.com/edgefleet/edgefleet/inference/tensor"
)

// Convert re-encodes instances of model version from for version to: raw
// bytes are dequantized with from's inputs and quantized with to's (the
// shapes must match), so a shadow or candidate with another input type
// sees the same real values.
func Convert(from, to *Loaded, in []Instance) ([]Instance, error) {
	fi, ti := from.InstanceInputs(), to.InstanceInputs()
	if len(fi) != len(ti) {
		return nil, fmt.Errorf("%w: %s@%s has %d inputs, %s@%s has %d", engine.ErrBadInput, from.ID, from.Version, len(fi), to.ID, to.Version, len(ti))
	}
	same := true
	for i := range fi {
		if !tensor.SameShape(fi[i].Shape, ti[i].Shape) {
			return nil, fmt.Errorf("%w: input %d has shape %s in %s and %s in %s", engine.ErrBadInput, i, tensor.ShapeString(fi[i].Shape), from.Version, tensor.ShapeString(ti[i].Shape), to.Version)
		}
		same = same && fi[i].Type == ti[i].Type && quantEqual(fi[i].Quant, ti[i].Quant)
	}
	if same {
		return in, nil
	}
	out := make([]Instance, len(in))
	for k, inst := range in {
		out[k] = make(Instance, len(inst))
		for i := range inst {
			vals, err := Real(fi[i], inst[i])
			if err != nil {
				return nil, err
			}
			if out[k][i], err = Quantize(ti[i], vals); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func quantEqual(a, b *tensor.Quantization) bool {
	if a == nil || b == nil {
		return a == b
	}
	if len(a.Scale) != len(b.Scale) || len(a.ZeroPoint) != len(b.ZeroPoint) {
		return false
	}
	for i := range a.Scale {
		if a.Scale[i] != b.Scale[i] {
			return false
		}
	}
	for i := range a.ZeroPoint {
		if a.ZeroPoint[i] != b.ZeroPoint[i] {
			return false
		}
	}
	return true
}

// Compare reports whether two results agree on the top-1 class of the first
// output (or, for non-classification outputs, differ by at most 5 % of the
// primary's largest magnitude, at least 0.05) and the largest absolute
// difference over all outputs' real values.
func Compare(l *Loaded, a, b Result) (bool, float64) {
	var scale float64 = 1
	var maxDiff float64
	for i := range a {
		if i >= len(b) {
			return false, math.Inf(1)
		}
		x, err1 := Real(a[i].Info, a[i].Data)
		y, err2 := Real(b[i].Info, b[i].Data)
		if err1 != nil || err2 != nil || len(x) != len(y) {
			return false, math.Inf(1)
		}
		for k := range x {
			maxDiff = max(maxDiff, math.Abs(x[k]-y[k]))
			scale = max(scale, math.Abs(x[k]))
		}
	}
	pa, err1 := Format(l, a[:1], 0)
	pb, err2 := Format(l, b[:1], 0)
	if err1 != nil || err2 != nil {
		return false, maxDiff
	}
	if pa.Class >= 0 {
		return pa.Class == pb.Class, maxDiff
	}
	return maxDiff <= 0.05*scale, maxDiff
}
