package elementwise

import (
	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/quant"
)

// preluData is the prepared state of a PRELU node.
type preluData struct {
	bc            bcast
	zpIn, zpAlpha int32
	zpOut         int32
	m1, m2        int32
	s1, s2        int
	lo, hi        int32
}

func init() {
	kernels.RegisterBuiltin(schema.OpPrelu, kernels.Kernel{Prepare: preparePrelu, Eval: evalPrelu})
}

func preparePrelu(ctx *kernels.Context, n *kernels.Node) error {
	if err := n.CheckArity(2, 2, 1); err != nil {
		return err
	}
	if err := checkConstants(n); err != nil {
		return err
	}
	in, alpha, out := n.Inputs[0], n.Inputs[1], n.Outputs[0]
	if err := checkType(n, "input", in, tensor.Float32, tensor.Int8, tensor.Uint8); err != nil {
		return err
	}
	if err := checkSameType(n, "input", in, "alpha", alpha); err != nil {
		return err
	}
	if err := checkSameType(n, "input", in, "output", out); err != nil {
		return err
	}
	shape, err := broadcastShape(in.Shape, alpha.Shape)
	if err != nil {
		return n.Errorf("input and alpha: %v", err)
	}
	d := &preluData{}
	n.Data = d
	if d.bc, err = newBcast(shape, in.Shape, alpha.Shape); err != nil {
		return n.Errorf("%v", err)
	}
	if in.Type != tensor.Float32 {
		for _, x := range []struct {
			what string
			t    *tensor.Tensor
		}{{"input", in}, {"alpha", alpha}, {"output", out}} {
			if err := needQuant(n, x.what, x.t); err != nil {
				return err
			}
		}
		si, sa, so := float32(in.Scale()), float32(alpha.Scale()), float32(out.Scale())
		d.zpIn, d.zpAlpha, d.zpOut = in.ZeroPoint(), alpha.ZeroPoint(), out.ZeroPoint()
		d.m1, d.s1 = quant.QuantizeMultiplier(float64(si / so))
		d.m2, d.s2 = quant.QuantizeMultiplier(float64(si * sa / so))
		d.lo, d.hi = out.Type.QuantRange()
	}
	return ctx.ResizeOutput(out, shape)
}

func evalPrelu(ctx *kernels.Context, n *kernels.Node) error {
	d := n.Data.(*preluData)
	in, alpha, out := n.Inputs[0], n.Inputs[1], n.Outputs[0]
	switch in.Type {
	case tensor.Float32:
		binary(&d.bc, elems[float32](in), elems[float32](alpha), elems[float32](out), func(x, a float32) float32 {
			if x >= 0 {
				return x
			}
			return x * a
		})
	case tensor.Int8:
		preluQuant(d, elems[int8](in), elems[int8](alpha), elems[int8](out))
	case tensor.Uint8:
		preluQuant(d, elems[uint8](in), elems[uint8](alpha), elems[uint8](out))
	}
	return nil
}

func preluQuant[T int8 | uint8](d *preluData, x, a, o []T) {
	binary(&d.bc, x, a, o, func(x, a T) T {
		v := int32(x) - d.zpIn
		var r int32
		if v >= 0 {
			r = mbqm(v, d.m1, d.s1)
		} else {
			r = mbqm(v*(int32(a)-d.zpAlpha), d.m2, d.s2)
		}
		return T(clamp32(r+d.zpOut, d.lo, d.hi))
	})
}
