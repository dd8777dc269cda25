package sequence

import (
	"math"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/quant"
)

// The integer (8x8->16) LSTM follows TensorFlow Lite's
// LstmStepInteger8x8_16: int8 input and output state, int8 weights, int32
// biases, int16 peephole and layer norm weights, an int16 cell state with a
// power-of-two scale, gate pre-activations in int16 (Q3.12 without layer
// norm, the scales of intermediates 0-3 with it), gemmlowp fixed-point
// sigmoid and tanh, and the hidden state requantized to intermediate 4's
// scale before the optional projection. Every requantization uses
// MultiplyByQuantizedMultiplier (double rounding), as TFLite does here.

func (d *lstmData) prepareInteger(n *kernels.Node) error {
	d.integer = true
	if err := d.checkTypes(n, tensor.Int8, tensor.Int8, tensor.Int32, tensor.Int16, tensor.Int16, tensor.Int16); err != nil {
		return err
	}
	if len(n.Intermediates) != 5 {
		return n.Errorf("integer LSTM needs 5 intermediate tensors (gate and hidden scales), got %d", len(n.Intermediates))
	}
	// As in TensorFlow Lite, only the intermediates the kernel reads need
	// quantization parameters: 4 (the hidden state's scale) always, 0-3
	// (the gate scales) with layer norm. The converter leaves the others
	// unquantized.
	for i, t := range n.Intermediates {
		if (i == 4 || d.layerNorm) && (t == nil || !t.IsQuantized()) {
			what := "gate"
			if i == 4 {
				what = "hidden state"
			}
			return n.Errorf("intermediate %d (%s scale) has no quantization parameters", i, what)
		}
	}
	in, outState, out := n.Input(lstmInput), n.Input(lstmOutState), n.Outputs[0]
	scaleOf := func(i int, what string) (float32, error) {
		t := n.Input(i)
		if t == nil {
			return 1, nil
		}
		s, err := needScale(n, what, t)
		return float32(s), err
	}
	sIn, err := scaleOf(lstmInput, "input")
	if err != nil {
		return err
	}
	sState, err := scaleOf(lstmOutState, "output_state")
	if err != nil {
		return err
	}
	sCell, err := scaleOf(lstmCellState, "cell_state")
	if err != nil {
		return err
	}
	if _, err := needScale(n, "output", out); err != nil {
		return err
	}
	// The cell state scale must be a power of two, at most 2^-9.
	l2 := float32(math.Log(float64(sCell))) * float32(1/math.Log(2))
	rounded := float32(math.Round(float64(l2)))
	if math.Abs(float64(l2-rounded)) >= 1e-3 || rounded > -9 || rounded < -15 {
		return n.Errorf("cell_state scale %v must be a power of two between 2^-15 and 2^-9", sCell)
	}
	d.cellScale = int(rounded)

	var inter [5]float32
	var interZP [5]int32
	for i := 0; i < 4; i++ {
		if d.layerNorm {
			inter[i] = float32(n.Intermediates[i].Scale())
			interZP[i] = n.Intermediates[i].ZeroPoint()
		} else {
			inter[i] = 1.0 / 4096 // Q3.12
		}
	}
	inter[4] = float32(n.Intermediates[4].Scale())
	interZP[4] = n.Intermediates[4].ZeroPoint()
	if !(inter[4] > 0) {
		return n.Errorf("intermediate 4 (hidden) has scale %v, expected > 0", inter[4])
	}
	for i := 0; i < 4; i++ {
		if !(inter[i] > 0) {
			return n.Errorf("intermediate %d has scale %v, expected > 0", i, inter[i])
		}
	}
	d.hiddenZP = interZP[4]
	d.outStateZP = outState.ZeroPoint()

	inW := [4]int{lstmInToIn, lstmInToForget, lstmInToCell, lstmInToOut}
	recW := [4]int{lstmRecToIn, lstmRecToForget, lstmRecToCell, lstmRecToOut}
	peepW := [4]int{lstmCellToIn, lstmCellToForget, -1, lstmCellToOut}
	lnW := [4]int{lstmLNIn, lstmLNForget, lstmLNCell, lstmLNOut}
	biasIdx := [4]int{lstmInBias, lstmForgetBias, lstmCellBias, lstmOutBias}
	inZP, stateZP := in.ZeroPoint(), outState.ZeroPoint()
	for gi := 0; gi < 4; gi++ {
		if gi == gIn && d.cifg {
			continue
		}
		q := &d.gates[gi]
		sW, err := scaleOf(inW[gi], "input weights")
		if err != nil {
			return err
		}
		sR, err := scaleOf(recW[gi], "recurrent weights")
		if err != nil {
			return err
		}
		// float32 arithmetic, as TFLite computes these scales.
		q.inM, q.inS = quant.QuantizeMultiplier(float64(sW * sIn / inter[gi]))
		q.recM, q.recS = quant.QuantizeMultiplier(float64(sR * sState / inter[gi]))
		if d.peephole && peepW[gi] >= 0 {
			sP, err := scaleOf(peepW[gi], "peephole weights")
			if err != nil {
				return err
			}
			q.cellM, q.cellS = quant.QuantizeMultiplier(float64(float32(math.Pow(2, float64(d.cellScale)) * float64(sP) / float64(inter[gi]))))
		}
		lnScale := float32(1)
		if d.layerNorm {
			if lnScale, err = scaleOf(lnW[gi], "layer norm coefficients"); err != nil {
				return err
			}
		}
		q.lnM, q.lnS = quant.QuantizeMultiplier(float64(lnScale))
		q.varianceGuard = max(1, int32(10000*lnScale))
		var bias *tensor.Tensor
		if !d.layerNorm {
			bias = n.Input(biasIdx[gi])
		}
		q.inBias = zpTimesWeights(-inZP, n.Input(inW[gi]), bias, d.nCell, d.nIn)
		q.recBias = zpTimesWeights(-stateZP, n.Input(recW[gi]), nil, d.nCell, d.nOut)
	}
	hidden := float32(math.Pow(2, -15) / float64(inter[4]) * math.Pow(2, -15))
	d.hiddenM, d.hiddenS = quant.QuantizeMultiplier(float64(hidden))
	if d.project {
		sP, err := scaleOf(lstmProj, "projection_weights")
		if err != nil {
			return err
		}
		d.projM, d.projS = quant.QuantizeMultiplier(float64(sP * inter[4] / sState))
		d.projBias = zpTimesWeights(d.hiddenZP, n.Input(lstmProj), n.Input(lstmProjBias), d.nOut, d.nCell)
	}
	if d.cellClip > 0 {
		d.qCellClip = int16(min(max(d.cellClip/sCell, -32768), 32767))
	}
	if d.projClip > 0 {
		d.qProjClip = int8(min(max(d.projClip/float32(out.Scale()), -128), 127))
	}
	return nil
}

// zpTimesWeights returns bias[row] + zp * sum(w[row]) per row (bias may be
// nil), TFLite's PrecomputeZeroPointTimesWeightWithBias.
func zpTimesWeights(zp int32, w, bias *tensor.Tensor, rows, cols int) []int32 {
	out := make([]int32, rows)
	if bias != nil {
		copy(out, bias.Int32s()[:rows])
	}
	if w == nil || zp == 0 {
		return out
	}
	ws := w.Int8s()
	for r := 0; r < rows; r++ {
		var s int32
		for _, v := range ws[r*cols : (r+1)*cols] {
			s += int32(v)
		}
		out[r] += s * zp
	}
	return out
}

// matMulAccQ computes, per batch and row, bias + W x, requantizes it, adds
// zp and the existing output, and saturates to the output type's range.
func matMulAccQ[T int16 | int8](x []int8, bias []int32, w []int8, m int32, s int, nb, cols, rows int, zp int32, out []T, lo, hi int32) {
	for b := 0; b < nb; b++ {
		xb := x[b*cols : (b+1)*cols]
		for r := 0; r < rows; r++ {
			acc := bias[r]
			wr := w[r*cols : (r+1)*cols]
			wr = wr[:len(xb)]
			for c, v := range xb {
				acc += int32(v) * int32(wr[c])
			}
			acc = quant.MultiplyByQuantizedMultiplier(acc, m, s) + zp + int32(out[b*rows+r])
			out[b*rows+r] = T(clamp32(acc, lo, hi))
		}
	}
}

// layerNormInt is TFLite's integer ApplyLayerNorm.
func layerNormInt(g []int16, nc, nb int, coef []int16, bias []int32, m int32, s int, guard int32) {
	for b := 0; b < nb; b++ {
		row := g[b*nc : (b+1)*nc]
		var sum, sumSq int64
		for _, v := range row {
			sum += int64(v)
			sumSq += int64(v) * int64(v)
		}
		mean := int32(sum * 1024 / int64(nc))
		temp := int32((1 << 20) / nc)
		variance := sumSq*int64(temp) - int64(mean)*int64(mean)
		v2 := int32(variance / (1 << 20))
		if v2 < 1 {
			v2 = guard
		}
		invM, invS := quant.GetInvSqrtQuantizedMultiplierExp(v2, -1)
		for j, v := range row {
			shifted := 1024*int32(v) - mean
			rescaled := quant.MultiplyByQuantizedMultiplier(shifted, invM, invS)
			v3 := int64(rescaled)*int64(coef[j]) + int64(bias[j])
			var v4 int32
			if v3 > 0 {
				v4 = int32((v3 + 512) / 1024)
			} else {
				v4 = int32((v3 - 512) / 1024)
			}
			v5 := quant.MultiplyByQuantizedMultiplier(v4, m, s+12)
			row[j] = int16(clamp32(v5, math.MinInt16, math.MaxInt16))
		}
	}
}

func (d *lstmData) stepInteger(n *kernels.Node, scratch []byte, b0, nb, inOff, outOff int) {
	nc, no := d.nCell, d.nOut
	size := nb * nc
	stride := 2 * d.batch * nc
	var g [4][]int16
	for i := range g {
		g[i] = i16s(scratch, i*stride, size)
	}
	tanhC := i16s(scratch, 4*stride, size)
	hidden := i8s(scratch, (2*5*d.batch*nc+63)&^63, size)
	x := n.Input(lstmInput).Int8s()[inOff : inOff+nb*d.nIn]
	h := n.Input(lstmOutState).Int8s()[b0*no : (b0+nb)*no]
	c := n.Input(lstmCellState).Int16s()[b0*nc : (b0+nb)*nc]
	out := n.Outputs[0].Int8s()[outOff : outOff+nb*no]
	inW := [4]int{lstmInToIn, lstmInToForget, lstmInToCell, lstmInToOut}
	recW := [4]int{lstmRecToIn, lstmRecToForget, lstmRecToCell, lstmRecToOut}
	peepW := [4]int{lstmCellToIn, lstmCellToForget, -1, lstmCellToOut}
	lnW := [4]int{lstmLNIn, lstmLNForget, lstmLNCell, lstmLNOut}
	biasIdx := [4]int{lstmInBias, lstmForgetBias, lstmCellBias, lstmOutBias}
	gate := func(gi int) {
		q := &d.gates[gi]
		gt := g[gi]
		clear(gt)
		matMulAccQ(x, q.inBias, n.Input(inW[gi]).Int8s(), q.inM, q.inS, nb, d.nIn, nc, 0, gt, math.MinInt16, math.MaxInt16)
		matMulAccQ(h, q.recBias, n.Input(recW[gi]).Int8s(), q.recM, q.recS, nb, no, nc, 0, gt, math.MinInt16, math.MaxInt16)
		if d.peephole && peepW[gi] >= 0 {
			// TFLite passes n_output as the vector size here; replicate it
			// (identical whenever n_output == n_cell).
			p := n.Input(peepW[gi]).Int16s()
			total := min(nb*no, len(gt))
			for i := 0; i < total; i++ {
				v := i % no
				if v >= len(p) {
					continue
				}
				prod := quant.MultiplyByQuantizedMultiplier(int32(p[v])*int32(c[i]), q.cellM, q.cellS)
				gt[i] = int16(clamp32(prod+int32(gt[i]), math.MinInt16, math.MaxInt16))
			}
		}
		if d.layerNorm {
			layerNormInt(gt, nc, nb, n.Input(lnW[gi]).Int16s(), n.Input(biasIdx[gi]).Int32s(), q.lnM, q.lnS, q.varianceGuard)
		}
		if gi == gCell {
			for i, v := range gt {
				gt[i] = quant.Tanh16(v, 3)
			}
			return
		}
		for i, v := range gt {
			gt[i] = quant.Logistic16(v, 3)
		}
	}
	if !d.cifg {
		gate(gIn)
	}
	gate(gForget)
	gate(gCell)
	ig, fg, cg := g[gIn], g[gForget], g[gCell]
	shift := 30 + d.cellScale
	for i := range c {
		fc := int16(quant.RoundingDivideByPOT(int32(fg[i])*int32(c[i]), 15))
		in := ig
		if d.cifg {
			in = fg
			fg[i] = math.MaxInt16 - fg[i]
		}
		ic := int16(quant.RoundingDivideByPOT(int32(in[i])*int32(cg[i]), shift))
		nv := clamp32(int32(fc)+int32(ic), math.MinInt16, math.MaxInt16)
		if d.qCellClip > 0 {
			nv = clamp32(nv, -int32(d.qCellClip), int32(d.qCellClip))
		}
		c[i] = int16(nv)
	}
	gate(gOut)
	og := g[gOut]
	for i, v := range c {
		tanhC[i] = quant.Tanh16(v, 15+d.cellScale)
	}
	for i := range og {
		v := quant.MultiplyByQuantizedMultiplier(int32(og[i])*int32(tanhC[i]), d.hiddenM, d.hiddenS)
		hidden[i] = int8(clamp32(v-d.hiddenZP, math.MinInt8, math.MaxInt8))
	}
	if d.project {
		clear(h)
		matMulAccQ(hidden, d.projBias, n.Input(lstmProj).Int8s(), d.projM, d.projS, nb, nc, no, d.outStateZP, h, math.MinInt8, math.MaxInt8)
		if d.qProjClip > 0 {
			for i, v := range h {
				h[i] = int8(clamp32(int32(v), -int32(d.qProjClip), int32(d.qProjClip)))
			}
		}
	} else {
		copy(h, hidden[:nb*no])
	}
	copy(out, h)
}
