package elementwise

import (
	"math"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/quant"
)

// arithOp names a broadcasting binary arithmetic op.
type arithOp int

const (
	opAdd arithOp = iota
	opSub
	opMul
	opDiv
	opSquaredDiff
	opMaximum
	opMinimum
	opFloorDiv
	opPow
)

// qkind selects the quantized arithmetic path.
type qkind int

const (
	qNone      qkind = iota
	qAddSub          // general rescaling add/sub (8-bit, and int16 general)
	qAddSubPOT       // int16 power-of-two scale add/sub
	qMul             // quantized mul
	qMul16To8        // int16 x int16 -> 8-bit mul in Q0.15 (LSTM style)
	qDiv             // uint8 div
	qSqDiff          // int8 squared difference
	qRaw             // max/min/floor_div: raw values
)

// arithData is the prepared state of an arithmetic node.
type arithData struct {
	op  arithOp
	bc  bcast
	act quant.Activation
	// Float and integer activation clamps.
	flo, fhi float32
	ilo, ihi int64

	q qkind
	// Quantized parameters: input zero points, output zero point, the
	// input left shift and multipliers, activation clamp.
	zp1, zp2, zpOut int32
	leftShift       int
	m1, m2, mOut    int32
	s1, s2, sOut    int
	lo, hi          int32
	// For POT int16 add/sub: which input is shifted and by how much.
	shiftFirst bool
	rshift     int
	// 8-bit add/sub: the result for every pair of raw input bytes
	// (index a<<8 | b), so the inner loop is a single load.
	pair []uint8
	// fa, fb, fo view the last flat 8-bit Eval's inputs and output for
	// the workers (pairFlatChunk).
	fa, fb, fo []byte
	// vecParams holds the parameters of addQ8Kernel (see addQ8Params)
	// when vec is set: an 8-bit ADD/SUB whose arithmetic the vector
	// kernel computes exactly; signed tells int8 from uint8.
	vecParams [19]int32
	vec       bool
	signed    bool
}

// addQ8Kernel, when non-nil, computes an 8-bit ADD/SUB (qAddSub) of
// equally shaped inputs for the leading elements of o it can (whole
// vectors) and returns how many; the table finishes the rest.
var addQ8Kernel func(d *arithData, a, b, o []byte) int

// addQ8Params sets up vecParams for addQ8Kernel, when the kernel's
// shortcuts are exact: every exponent in [0, 31] (TFLite applies a
// multiplier above one unchanged, which the vector code does not
// follow), the shifted inputs far from saturating the doubling multiply
// (8-bit inputs shifted by at most 20 bits stay below 2^29 in size).
func (d *arithData) addQ8Params(signed bool) {
	d.vec = false
	e1, e2, eo := -d.s1, -d.s2, -d.sOut
	if d.q != qAddSub || d.leftShift > 20 || min(e1, e2, eo) < 0 || max(e1, e2, eo) > 31 || d.m1 < 0 || d.m2 < 0 || d.mOut < 0 {
		return
	}
	mask := func(e int) int32 { return int32(int64(1)<<e - 1) }
	sub := int32(0)
	if d.op == opSub {
		sub = 1
	}
	d.vecParams = [19]int32{-d.zp1, -d.zp2, int32(d.leftShift), d.m1, d.m2, d.mOut,
		mask(e1), mask(e2), mask(eo), mask(e1) >> 1, mask(e2) >> 1, mask(eo) >> 1,
		int32(e1), int32(e2), int32(eo), d.zpOut, d.lo, d.hi, sub}
	d.vec, d.signed = true, signed
}

func init() {
	reg := func(op schema.BuiltinOperator, a arithOp) {
		kernels.RegisterBuiltin(op, kernels.Kernel{
			Prepare: func(ctx *kernels.Context, n *kernels.Node) error { return prepareArith(ctx, n, a) },
			Eval:    evalArith,
		})
	}
	reg(schema.OpAdd, opAdd)
	reg(schema.OpSub, opSub)
	reg(schema.OpMul, opMul)
	reg(schema.OpDiv, opDiv)
	reg(schema.OpSquaredDifference, opSquaredDiff)
	reg(schema.OpMaximum, opMaximum)
	reg(schema.OpMinimum, opMinimum)
	reg(schema.OpFloorDiv, opFloorDiv)
	reg(schema.OpPow, opPow)
}

// arithTypes lists the dtypes each op accepts (as in TFLite's kernels).
var arithTypes = map[arithOp][]tensor.DType{
	opAdd:         {tensor.Float32, tensor.Int32, tensor.Int64, tensor.Int8, tensor.Uint8, tensor.Int16},
	opSub:         {tensor.Float32, tensor.Int32, tensor.Int64, tensor.Int8, tensor.Uint8, tensor.Int16},
	opMul:         {tensor.Float32, tensor.Int32, tensor.Int64, tensor.Int8, tensor.Uint8, tensor.Int16},
	opDiv:         {tensor.Float32, tensor.Int32, tensor.Uint8},
	opSquaredDiff: {tensor.Float32, tensor.Int32, tensor.Int8},
	opMaximum:     {tensor.Float32, tensor.Uint8, tensor.Int8, tensor.Int16, tensor.Int32, tensor.Int64},
	opMinimum:     {tensor.Float32, tensor.Uint8, tensor.Int8, tensor.Int16, tensor.Int32, tensor.Int64},
	opFloorDiv:    {tensor.Float32, tensor.Int32, tensor.Int16, tensor.Int8},
	opPow:         {tensor.Float32, tensor.Int32},
}

func prepareArith(ctx *kernels.Context, n *kernels.Node, op arithOp) error {
	if err := n.CheckArity(2, 2, 1); err != nil {
		return err
	}
	if err := checkConstants(n); err != nil {
		return err
	}
	in1, in2, out := n.Inputs[0], n.Inputs[1], n.Outputs[0]
	if err := checkType(n, "input 0", in1, arithTypes[op]...); err != nil {
		return err
	}
	if err := checkSameType(n, "input 0", in1, "input 1", in2); err != nil {
		return err
	}
	mul16to8 := op == opMul && in1.Type == tensor.Int16 && (out.Type == tensor.Int8 || out.Type == tensor.Uint8)
	if !mul16to8 {
		if err := checkSameType(n, "input 0", in1, "output", out); err != nil {
			return err
		}
	}
	d, _ := n.Data.(*arithData)
	if d == nil {
		d = &arithData{}
		n.Data = d
	}
	d.op = op
	d.act = quant.ActNone
	if o, ok := n.Options.(*schema.ActivationOptions); ok && o != nil {
		d.act = o.Activation
	}
	if err := checkActivation(n, d.act); err != nil {
		return err
	}
	shape := in1.Shape
	if !tensor.SameShape(in1.Shape, in2.Shape) {
		s, err := broadcastShape(in1.Shape, in2.Shape)
		if err != nil {
			return n.Errorf("%v", err)
		}
		shape = s
	}
	bc, err := newBcast(shape, in1.Shape, in2.Shape)
	if err != nil {
		return n.Errorf("%v", err)
	}
	d.bc = bc
	d.flo, d.fhi = quant.ActivationRangeFloat(d.act)
	d.ilo, d.ihi = actRangeInt(d.act)
	d.q = qNone
	if isQuantType(in1.Type) {
		if err := prepareArithQuant(n, d, in1, in2, out); err != nil {
			return err
		}
	}
	return ctx.ResizeOutput(out, shape)
}

func prepareArithQuant(n *kernels.Node, d *arithData, in1, in2, out *tensor.Tensor) error {
	switch d.op {
	case opMaximum, opMinimum, opFloorDiv:
		// TFLite compares / divides the raw integers.
		d.q = qRaw
		return nil
	}
	for i, t := range []*tensor.Tensor{in1, in2, out} {
		what := "output"
		if i < 2 {
			what = []string{"input 0", "input 1"}[i]
		}
		if err := needQuant(n, what, t); err != nil {
			return err
		}
	}
	s1, s2, so := float32(in1.Scale()), float32(in2.Scale()), float32(out.Scale())
	d.zp1, d.zp2, d.zpOut = in1.ZeroPoint(), in2.ZeroPoint(), out.ZeroPoint()
	d.lo, d.hi = actRangeQuant(d.act, out)
	switch d.op {
	case opAdd, opSub:
		if out.Type == tensor.Int16 && potInt16(n, in1, in2, out) {
			return prepareAddSubPOT(n, d, in1, in2, out)
		}
		d.q = qAddSub
		d.leftShift = 20
		if out.Type == tensor.Int16 {
			d.leftShift = 15
		}
		twiceMax := float64(2 * max(s1, s2))
		d.m1, d.s1 = quant.QuantizeMultiplier(float64(s1) / twiceMax)
		d.m2, d.s2 = quant.QuantizeMultiplier(float64(s2) / twiceMax)
		d.mOut, d.sOut = quant.QuantizeMultiplier(twiceMax / float64(float32(int32(1)<<d.leftShift)*so))
	case opMul:
		d.q = qMul
		d.mOut, d.sOut = quant.QuantizeMultiplier(float64(s1 * s2 / so))
		if out.Type != in1.Type {
			// TFLite treats both int16 inputs as Q0.15 and the product,
			// shifted right by 8, as relative to the output zero point;
			// the scales are not used.
			d.q = qMul16To8
		}
	case opDiv:
		d.q = qDiv
		d.mOut, d.sOut = quant.QuantizeMultiplier(float64(s1 / (s2 * so)))
	case opSquaredDiff:
		d.q = qSqDiff
		d.leftShift = 7
		twiceMax := 2 * float64(max(s1, s2))
		d.m1, d.s1 = quant.QuantizeMultiplier(float64(s1) / twiceMax)
		d.m2, d.s2 = quant.QuantizeMultiplier(float64(s2) / twiceMax)
		d.mOut, d.sOut = quant.QuantizeMultiplier(twiceMax * twiceMax / (float64(int32(1)<<(2*d.leftShift)) * float64(so)))
		d.lo, d.hi = out.Type.QuantRange()
	case opPow:
		return n.Errorf("quantized %s is not supported", out.Type)
	}
	if (out.Type == tensor.Int8 || out.Type == tensor.Uint8) && in1.Type == out.Type {
		d.buildPair(out.Type == tensor.Int8)
		d.addQ8Params(out.Type == tensor.Int8)
	} else {
		d.vec = false
		d.pair = nil
	}
	return nil
}

// potInt16 reports whether an int16 ADD/SUB takes TFLite's power-of-two
// scale path: pot_scale_int16 set, every scale a power of two and every
// zero point 0.
func potInt16(n *kernels.Node, in1, in2, out *tensor.Tensor) bool {
	o, ok := n.Options.(*schema.ActivationOptions)
	if !ok || o == nil || !o.PotScaleInt16 {
		return false
	}
	for _, t := range []*tensor.Tensor{in1, in2, out} {
		if _, ok := log2Exact(t.Scale()); !ok || t.ZeroPoint() != 0 {
			return false
		}
	}
	return true
}

// log2Exact returns round(log2(x)) and whether x is within 1e-3 of that
// power of two in log space, as TFLite's CheckedLog2 does.
func log2Exact(x float64) (int, bool) {
	l := math.Log2(x)
	r := math.Round(l)
	return int(r), math.Abs(l-r) < 1e-3
}

func prepareAddSubPOT(n *kernels.Node, d *arithData, in1, in2, out *tensor.Tensor) error {
	l1, _ := log2Exact(in1.Scale())
	l2, _ := log2Exact(in2.Scale())
	lo, _ := log2Exact(out.Scale())
	sh1, sh2 := l1-lo, l2-lo
	if (sh1 != 0 && sh2 != 0) || sh1 > 0 || sh2 > 0 {
		return n.Errorf("int16 power-of-two scales: input scales 2^%d and 2^%d with output 2^%d; one input must match the output scale and the other be finer or equal",
			l1, l2, lo)
	}
	d.q = qAddSubPOT
	d.shiftFirst = sh1 != 0
	d.rshift = -sh1
	if !d.shiftFirst {
		d.rshift = -sh2
	}
	return nil
}

func evalArith(ctx *kernels.Context, n *kernels.Node) error {
	d := n.Data.(*arithData)
	in1, in2, out := n.Inputs[0], n.Inputs[1], n.Outputs[0]
	switch out.Type {
	case tensor.Float32:
		return evalArithFloat(n, d, elems[float32](in1), elems[float32](in2), elems[float32](out))
	case tensor.Int32:
		return evalArithInt(n, d, elems[int32](in1), elems[int32](in2), elems[int32](out), math.MinInt32, math.MaxInt32)
	case tensor.Int64:
		return evalArithInt(n, d, elems[int64](in1), elems[int64](in2), elems[int64](out), math.MinInt64, math.MaxInt64)
	case tensor.Int8:
		if d.q == qMul16To8 {
			mul16To8(d, elems[int16](in1), elems[int16](in2), elems[int8](out))
			return nil
		}
		return evalArithQuant(ctx, n, d, elems[int8](in1), elems[int8](in2), elems[int8](out))
	case tensor.Uint8:
		if d.q == qMul16To8 {
			mul16To8(d, elems[int16](in1), elems[int16](in2), elems[uint8](out))
			return nil
		}
		return evalArithQuant(ctx, n, d, elems[uint8](in1), elems[uint8](in2), elems[uint8](out))
	case tensor.Int16:
		return evalArithQuant(ctx, n, d, elems[int16](in1), elems[int16](in2), elems[int16](out))
	}
	return n.Errorf("unsupported output type %s", out.Type)
}

func clampF(v, lo, hi float32) float32 {
	if v < lo {
		v = lo
	}
	if v > hi {
		v = hi
	}
	return v
}

func evalArithFloat(n *kernels.Node, d *arithData, a, b, o []float32) error {
	lo, hi := d.flo, d.fhi
	switch d.op {
	case opAdd:
		if d.bc.flat {
			for i := range o {
				o[i] = clampF(a[i]+b[i], lo, hi)
			}
			return nil
		}
		binary(&d.bc, a, b, o, func(x, y float32) float32 { return clampF(x+y, lo, hi) })
	case opSub:
		binary(&d.bc, a, b, o, func(x, y float32) float32 { return clampF(x-y, lo, hi) })
	case opMul:
		if d.bc.flat {
			for i := range o {
				o[i] = clampF(a[i]*b[i], lo, hi)
			}
			return nil
		}
		binary(&d.bc, a, b, o, func(x, y float32) float32 { return clampF(x*y, lo, hi) })
	case opDiv:
		binary(&d.bc, a, b, o, func(x, y float32) float32 { return clampF(x/y, lo, hi) })
	case opSquaredDiff:
		binary(&d.bc, a, b, o, func(x, y float32) float32 { v := x - y; return v * v })
	case opMaximum:
		binary(&d.bc, a, b, o, func(x, y float32) float32 {
			if x > y {
				return x
			}
			return y
		})
	case opMinimum:
		binary(&d.bc, a, b, o, func(x, y float32) float32 {
			if x < y {
				return x
			}
			return y
		})
	case opFloorDiv:
		binary(&d.bc, a, b, o, func(x, y float32) float32 {
			return float32(math.Floor(float64(x) / float64(y)))
		})
	case opPow:
		binary(&d.bc, a, b, o, func(x, y float32) float32 {
			return float32(math.Pow(float64(x), float64(y)))
		})
	}
	return nil
}

type integer interface {
	~int8 | ~uint8 | ~int16 | ~int32 | ~int64
}

// evalArithInt handles int32 and int64 tensors (no quantization).
func evalArithInt[T int32 | int64](n *kernels.Node, d *arithData, a, b, o []T, tmin, tmax int64) error {
	lo, hi := T(max(d.ilo, tmin)), T(min(d.ihi, tmax))
	act := func(v T) T {
		if v < lo {
			return lo
		}
		if v > hi {
			return hi
		}
		return v
	}
	switch d.op {
	case opAdd:
		binary(&d.bc, a, b, o, func(x, y T) T { return act(x + y) })
	case opSub:
		binary(&d.bc, a, b, o, func(x, y T) T { return act(x - y) })
	case opMul:
		binary(&d.bc, a, b, o, func(x, y T) T { return act(x * y) })
	case opDiv:
		if hasZero(b) {
			return n.Errorf("integer division by zero")
		}
		// Go defines MinInt / -1 as MinInt (no trap), like two's complement.
		binary(&d.bc, a, b, o, func(x, y T) T { return act(x / y) })
	case opSquaredDiff:
		binary(&d.bc, a, b, o, func(x, y T) T { v := x - y; return v * v })
	case opMaximum:
		binary(&d.bc, a, b, o, func(x, y T) T { return max(x, y) })
	case opMinimum:
		binary(&d.bc, a, b, o, func(x, y T) T { return min(x, y) })
	case opFloorDiv:
		if hasZero(b) {
			return n.Errorf("division by zero")
		}
		binary(&d.bc, a, b, o, floorDivInt[T])
	case opPow:
		if hasNegative(b) {
			return n.Errorf("integer POW with a negative exponent is not supported")
		}
		binary(&d.bc, a, b, o, intPow[T])
	}
	return nil
}

func hasZero[T integer](b []T) bool {
	for _, v := range b {
		if v == 0 {
			return true
		}
	}
	return false
}

func hasNegative[T integer](b []T) bool {
	for _, v := range b {
		if v < 0 {
			return true
		}
	}
	return false
}

// floorDivInt is TFLite's integer FLOOR_DIV: floor of the real quotient.
func floorDivInt[T integer](x, y T) T {
	q := x / y
	if (x%y != 0) && ((x < 0) != (y < 0)) {
		q--
	}
	return q
}

// intPow raises x to a non-negative integer power by squaring, wrapping
// like TFLite's int32 kernel.
func intPow[T int32 | int64](x, e T) T {
	r := T(1)
	for e > 0 {
		if e&1 != 0 {
			r *= x
		}
		e >>= 1
		x *= x
	}
	return r
}

// evalArithQuant handles quantized int8, uint8 and int16 tensors.
func evalArithQuant[T int8 | uint8 | int16](ctx *kernels.Context, n *kernels.Node, d *arithData, a, b, o []T) error {
	switch d.q {
	case qRaw:
		switch d.op {
		case opMaximum:
			binary(&d.bc, a, b, o, func(x, y T) T { return max(x, y) })
		case opMinimum:
			binary(&d.bc, a, b, o, func(x, y T) T { return min(x, y) })
		case opFloorDiv:
			if hasZero(b) {
				return n.Errorf("division by zero")
			}
			binary(&d.bc, a, b, o, floorDivInt[T])
		}
		return nil
	case qDiv:
		for _, v := range b {
			if int32(v) == d.zp2 {
				return n.Errorf("quantized division by zero (input 1 holds its zero point %d)", d.zp2)
			}
		}
	}
	if d.pair != nil && d.bc.flat && len(o) > 0 {
		// Same shapes (residual connections): chunks of the flat range
		// on the pool's workers.
		d.fa, d.fb, d.fo = tensor.Bytes(a[:len(o)]), tensor.Bytes(b[:len(o)]), tensor.Bytes(o)
		// The views stay set after the job: in a kernels.Region it runs
		// after this Eval returns.
		// Chunks of whole groups of kernels.BandRows rows of the last
		// dimension: in a band the addition's parts then line up with
		// those of the convolutions feeding it (no part waits for a
		// neighbour's rows).
		unit := 64
		if out := n.Outputs[0]; out.Rank() > 0 {
			unit = max(unit, kernels.BandRows*out.Dim(-1))
		}
		kernels.Parallel(ctx, ctx.Threads, int64(len(o))*kernels.ElementCost, len(o), unit, d, pairFlatChunk)
		return nil
	}
	if d.pair != nil {
		switch a := any(a).(type) {
		case []int8:
			pair8(d, a, any(b).([]int8), any(o).([]int8))
			return nil
		case []uint8:
			pair8(d, a, any(b).([]uint8), any(o).([]uint8))
			return nil
		}
	}
	binary(&d.bc, a, b, o, func(x, y T) T { return T(d.quantElem(int32(x), int32(y))) })
	return nil
}

// quantElem computes one quantized result from raw input values.
func (d *arithData) quantElem(x, y int32) int32 {
	switch d.q {
	case qAddSub, qSqDiff:
		s1 := mbqmSmall((x-d.zp1)*(1<<d.leftShift), d.m1, d.s1)
		s2 := mbqmSmall((y-d.zp2)*(1<<d.leftShift), d.m2, d.s2)
		var raw int32
		switch {
		case d.q == qSqDiff:
			raw = (s1 - s2) * (s1 - s2)
		case d.op == opSub:
			raw = s1 - s2
		default:
			raw = s1 + s2
		}
		return clamp32(mbqmSmall(raw, d.mOut, d.sOut)+d.zpOut, d.lo, d.hi)
	case qAddSubPOT:
		var v int32
		if d.shiftFirst {
			x = rdbpot(x, d.rshift)
		} else {
			y = rdbpot(y, d.rshift)
		}
		if d.op == opSub {
			v = x - y
		} else {
			v = x + y
		}
		return clamp32(clamp32(v, math.MinInt16, math.MaxInt16), d.lo, d.hi)
	case qMul:
		return clamp32(mbqm((x-d.zp1)*(y-d.zp2), d.mOut, d.sOut)+d.zpOut, d.lo, d.hi)
	case qDiv:
		if y == d.zp2 {
			return 0 // never used: Eval rejects zero divisors
		}
		return divQuant(x-d.zp1, y-d.zp2, d)
	}
	return 0
}

// buildPair tabulates quantElem for every pair of raw 8-bit inputs.
func (d *arithData) buildPair(signed bool) {
	if d.pair == nil {
		d.pair = make([]uint8, 1<<16)
	}
	raw := func(v int) int32 {
		if signed {
			return int32(int8(v))
		}
		return int32(v)
	}
	for x := 0; x < 256; x++ {
		for y := 0; y < 256; y++ {
			d.pair[x<<8|y] = uint8(d.quantElem(raw(x), raw(y)))
		}
	}
}

// pair8 is the 8-bit quantized inner loop: one load from the table of
// all 256x256 results.
func pair8[T int8 | uint8](d *arithData, a, b, o []T) {
	lut := d.pair
	if d.bc.flat {
		a, b = a[:len(o)], b[:len(o)]
		for i := range o {
			o[i] = T(lut[int(uint8(a[i]))<<8|int(uint8(b[i]))])
		}
		return
	}
	d.bc.each(func(r run) {
		oo := o[r.o : r.o+r.n]
		ia, ib := r.off[0], r.off[1]
		switch {
		case r.step[0] == 1 && r.step[1] == 1:
			x, y := a[ia:ia+len(oo)], b[ib:ib+len(oo)]
			for i := range oo {
				oo[i] = T(lut[int(uint8(x[i]))<<8|int(uint8(y[i]))])
			}
		case r.step[1] == 1:
			row, y := lut[int(uint8(a[ia]))<<8:][:256], b[ib:ib+len(oo)]
			for i := range oo {
				oo[i] = T(row[uint8(y[i])])
			}
		case r.step[0] == 1:
			x, col := a[ia:ia+len(oo)], int(uint8(b[ib]))
			for i := range oo {
				oo[i] = T(lut[int(uint8(x[i]))<<8|col])
			}
		default:
			v := T(lut[int(uint8(a[ia]))<<8|int(uint8(b[ib]))])
			for i := range oo {
				oo[i] = v
			}
		}
	})
}

// pairFlatChunk is pair8 on elements [lo, hi) of same-shape 8-bit inputs
// (the table's bytes are the same for int8 and uint8).
func pairFlatChunk(d *arithData, _, lo, hi int) {
	lut := d.pair[:1<<16]
	x, y, o := d.fa[lo:hi], d.fb[lo:hi], d.fo[lo:hi]
	if d.vec && addQ8Kernel != nil {
		k := addQ8Kernel(d, x, y, o)
		x, y, o = x[k:], y[k:], o[k:]
	}
	for i := range o {
		o[i] = lut[int(x[i])<<8|int(y[i])]
	}
}

// mul16To8 multiplies Q0.15 int16 values (gemmlowp's 16-bit saturating
// rounding doubling high multiply), divides by 2^8 with rounding, clamps
// relative to the output zero point and adds it, as TFLite's int16 x int16
// -> 8-bit MUL does.
func mul16To8[O int8 | uint8](d *arithData, a, b []int16, o []O) {
	zp, lo, hi := d.zpOut, d.lo-d.zpOut, d.hi-d.zpOut
	binary(&d.bc, a, b, o, func(x, y int16) O {
		p := int32(srdhm16(x, y))
		r := rdbpot(p, 8)
		return O(clamp32(r, lo, hi) + zp)
	})
}

// srdhm16 is the 16-bit SaturatingRoundingDoublingHighMul.
func srdhm16(a, b int16) int16 {
	if a == b && a == math.MinInt16 {
		return math.MaxInt16
	}
	ab := int32(a) * int32(b)
	nudge := int32(1 << 14)
	if ab < 0 {
		nudge = 1 - (1 << 14)
	}
	return int16((ab + nudge) / (1 << 15))
}

// Bandable: an 8-bit ADD/SUB-like op of equally shaped inputs (the
// table path split along the flat range, pairFlatChunk) runs in a
// kernels.Region; the ops that look at their inputs at Eval (the
// division's zero check) or take other paths do not.
func (d *arithData) Bandable(n *kernels.Node, threads int) bool {
	out := n.Outputs[0]
	return d.pair != nil && d.bc.flat && (out.Type == tensor.Int8 || out.Type == tensor.Uint8) &&
		d.q != qRaw && d.q != qDiv && d.q != qMul16To8 && out.NumElements() > 0 &&
		n.Inputs[0].NumElements() == out.NumElements() && n.Inputs[1].NumElements() == out.NumElements()
}

// InputSpan implements kernels.Banded: element i of the output reads
// element i of each input.
func (d *arithData) InputSpan(_, lo, hi int) (int, int) { return lo, hi }

// OutputSpan implements kernels.Banded.
func (d *arithData) OutputSpan(lo, hi int) (int, int) { return lo, hi }
