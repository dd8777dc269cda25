package elementwise

import (
	"math"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/quant"
)

// unaryData is the prepared state of a unary element-wise node.
type unaryData struct {
	op          schema.BuiltinOperator
	zpIn, zpOut int32
	rescale     bool
	mult        int32
	shift       int
	lo, hi      int32
	lut         *[256]int8 // int8 look-up table (EXP, LOG)
}

// unaryTypes lists the dtypes each unary op accepts.
var unaryTypes = map[schema.BuiltinOperator][]tensor.DType{
	schema.OpFloor: {tensor.Float32},
	schema.OpAbs:   {tensor.Float32, tensor.Int8, tensor.Int16, tensor.Int32},
	schema.OpNeg:   {tensor.Float32, tensor.Int32, tensor.Int64},
	schema.OpSqrt:  {tensor.Float32},
	schema.OpRsqrt: {tensor.Float32, tensor.Int8},
	schema.OpExp:   {tensor.Float32, tensor.Int8},
	schema.OpLog:   {tensor.Float32},
}

func init() {
	for op := range unaryTypes {
		kernels.RegisterBuiltin(op, kernels.Kernel{Prepare: prepareUnary, Eval: evalUnary})
	}
}

func prepareUnary(ctx *kernels.Context, n *kernels.Node) error {
	if err := n.CheckArity(1, 1, 1); err != nil {
		return err
	}
	if err := checkConstants(n); err != nil {
		return err
	}
	in, out := n.Inputs[0], n.Outputs[0]
	if err := checkType(n, "input", in, unaryTypes[n.Op]...); err != nil {
		return err
	}
	if err := checkSameType(n, "input", in, "output", out); err != nil {
		return err
	}
	d := &unaryData{op: n.Op}
	n.Data = d
	if in.Type == tensor.Int8 || in.Type == tensor.Int16 {
		if err := needQuant(n, "input", in); err != nil {
			return err
		}
		if err := needQuant(n, "output", out); err != nil {
			return err
		}
		d.zpIn, d.zpOut = in.ZeroPoint(), out.ZeroPoint()
		if in.Type == tensor.Int16 && (d.zpIn != 0 || d.zpOut != 0) {
			return n.Errorf("int16 %s needs zero points 0, got input %d and output %d", n.Name(), d.zpIn, d.zpOut)
		}
		d.lo, d.hi = out.Type.QuantRange()
		si, so := float32(in.Scale()), float32(out.Scale())
		switch n.Op {
		case schema.OpAbs:
			d.rescale = si != so
			d.mult, d.shift = quant.QuantizeMultiplier(float64(si / so))
		case schema.OpRsqrt:
			d.mult, d.shift = quant.QuantizeMultiplier(1 / float64(float32(math.Sqrt(float64(si)))*so))
		case schema.OpExp:
			d.lut = new([256]int8)
			fillLUT(d.lut, si, d.zpIn, so, d.zpOut, func(x float64) float64 { return math.Exp(x) })
		}
	}
	return ctx.ResizeOutput(out, in.Shape)
}

// fillLUT tabulates an int8 -> int8 function of the dequantized value,
// quantizing the result with round half away from zero (float32
// arithmetic as TFLite's LUTPopulate).
func fillLUT(lut *[256]int8, si float32, zpi int32, so float32, zpo int32, f func(float64) float64) {
	inv := 1 / so
	for v := -128; v <= 127; v++ {
		x := si * float32(int32(v)-zpi)
		y := float32(f(float64(x)))
		r := float32(math.Round(float64(y * inv)))
		q := toInt32(float64(r + float32(zpo)))
		lut[uint8(int8(v))] = int8(clamp32(q, math.MinInt8, math.MaxInt8))
	}
}

func evalUnary(ctx *kernels.Context, n *kernels.Node) error {
	d := n.Data.(*unaryData)
	in, out := n.Inputs[0], n.Outputs[0]
	switch in.Type {
	case tensor.Float32:
		x, o := elems[float32](in), elems[float32](out)
		var f func(float32) float32
		switch d.op {
		case schema.OpFloor:
			f = func(v float32) float32 { return float32(math.Floor(float64(v))) }
		case schema.OpAbs:
			f = func(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }
		case schema.OpNeg:
			f = func(v float32) float32 { return -v }
		case schema.OpSqrt:
			f = func(v float32) float32 { return float32(math.Sqrt(float64(v))) }
		case schema.OpRsqrt:
			f = func(v float32) float32 { return 1 / float32(math.Sqrt(float64(v))) }
		case schema.OpExp:
			f = func(v float32) float32 { return float32(math.Exp(float64(v))) }
		case schema.OpLog:
			f = func(v float32) float32 { return float32(math.Log(float64(v))) }
		}
		for i, v := range x {
			o[i] = f(v)
		}
	case tensor.Int32:
		unaryInt(d, elems[int32](in), elems[int32](out))
	case tensor.Int64:
		unaryInt(d, elems[int64](in), elems[int64](out))
	case tensor.Int8:
		x, o := elems[int8](in), elems[int8](out)
		switch d.op {
		case schema.OpAbs:
			absQuant(d, x, o)
		case schema.OpRsqrt:
			for _, v := range x {
				if int32(v) < d.zpIn {
					return n.Errorf("RSQRT is only defined for non-negative values (input %d below zero point %d)", v, d.zpIn)
				}
			}
			for i, v := range x {
				o[i] = int8(rsqrtQuant(d, int32(v)-d.zpIn))
			}
		case schema.OpExp:
			for i, v := range x {
				o[i] = d.lut[uint8(v)]
			}
		}
	case tensor.Int16:
		absQuant(d, elems[int16](in), elems[int16](out))
	}
	return nil
}

func unaryInt[T int32 | int64](d *unaryData, x, o []T) {
	switch d.op {
	case schema.OpNeg:
		for i, v := range x {
			o[i] = -v
		}
	case schema.OpAbs:
		for i, v := range x {
			if v < 0 {
				v = -v
			}
			o[i] = v
		}
	}
}

func absQuant[T int8 | int16](d *unaryData, x, o []T) {
	for i, v := range x {
		a := int32(v) - d.zpIn
		if a < 0 {
			a = -a
		}
		if d.rescale {
			a = mbqm(a, d.mult, d.shift)
		}
		o[i] = T(clamp32(a+d.zpOut, d.lo, d.hi))
	}
}

// rsqrtQuant computes the int8 RSQRT of a zero-point-adjusted value as
// TFLite does: a fixed-point inverse square root, then a rescale by
// 1/(sqrt(input_scale)*output_scale) with 20 bits of headroom.
func rsqrtQuant(d *unaryData, v int32) int32 {
	if v == 0 {
		return d.hi
	}
	const kShift = 20
	m, s := quant.GetInvSqrtQuantizedMultiplierExp(v, -1)
	data := mbqm(1, m, s+kShift)
	return clamp32(mbqm(data, d.mult, d.shift-kShift)+d.zpOut, d.lo, d.hi)
}
