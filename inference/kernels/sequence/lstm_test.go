package sequence_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/inference/modelbuilder"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
	"github.com/edgefleet/edgefleet/quant"
)

type lstmSpec struct {
	integer                              bool
	time, batch, nIn, nCell, nOut        int
	timeMajor, cifg, peephole, layerNorm bool
	projection, projBias                 bool
	cellClip, projClip                   float32
	hiddenZP                             int64
	noIntermediates                      bool
	// converter gives the node the intermediates the TensorFlow Lite
	// converter writes: five, those the kernel does not read without
	// quantization parameters (float32, shape [0]).
	converter bool
	// bareHidden and bareGates also leave intermediate 4, or 0-3 of a
	// layer-norm LSTM, without quantization (invalid: the kernel reads
	// them).
	bareHidden, bareGates bool
	hybrid, asym          bool
	act                   quant.Activation
	// fixed weights for hand-computed cases (float only): all 24 inputs by
	// slot, nil to generate.
	fixed map[int][]float32
}

// model builds a single-op UNIDIRECTIONAL_SEQUENCE_LSTM model with random
// weights drawn from r.
func (s lstmSpec) model(t testing.TB, r *rand.Rand) []byte {
	t.Helper()
	b := modelbuilder.New()
	wT, bT, pT, lnT := tensor.Float32, tensor.Float32, tensor.Float32, tensor.Float32
	if s.integer {
		wT, bT, pT, lnT = tensor.Int8, tensor.Int32, tensor.Int16, tensor.Int16
	}
	if s.hybrid {
		wT, pT = tensor.Int8, tensor.Int8
	}
	// wq quantizes weights: integer and hybrid models.
	wq := func(scale float32) *tensor.Quantization {
		if s.hybrid {
			return kerneltest.Q(scale, 0)
		}
		return nil
	}
	inScale, wScale, stScale := float32(0.02), float32(0.01), float32(1.0/128)
	inShape := []int{s.batch, s.time, s.nIn}
	outShape := []int{s.batch, s.time, s.nOut}
	if s.timeMajor {
		inShape = []int{s.time, s.batch, s.nIn}
		outShape = []int{s.time, s.batch, s.nOut}
	}
	qq := func(scale float32, zp int64) *tensor.Quantization {
		if !s.integer {
			return nil
		}
		return kerneltest.Q(scale, zp)
	}
	data := func(slot int, dt tensor.DType, n int, lo, hi int) []byte {
		if v, ok := s.fixed[slot]; ok {
			return kerneltest.F32(v...)
		}
		switch dt {
		case tensor.Int8:
			return kerneltest.RandInt8(r, n, lo, hi)
		case tensor.Int16:
			return kerneltest.RandInt16(r, n, lo, hi)
		case tensor.Int32:
			return kerneltest.RandInt32(r, n, lo, hi)
		}
		return kerneltest.RandF32(r, n, -0.6, 0.6)
	}
	idx := make([]int, 24)
	for i := range idx {
		idx[i] = -1
	}
	idx[0] = b.AddTensor(modelbuilder.Tensor{Name: "input", Type: map[bool]tensor.DType{false: tensor.Float32, true: tensor.Int8}[s.integer], Shape: inShape, Quant: qq(inScale, 3)})
	addW := func(slot, rows, cols int) {
		idx[slot] = b.AddTensor(modelbuilder.Tensor{Name: "w", Type: wT, Shape: []int{rows, cols}, Data: data(slot, wT, rows*cols, -127, 127), Quant: orQ(qq(wScale, 0), wq(wScale))})
	}
	for g := 0; g < 4; g++ {
		if g == 0 && s.cifg {
			continue
		}
		addW(1+g, s.nCell, s.nIn)
		addW(5+g, s.nCell, s.nOut)
		bq := qq(inScale*wScale, 0)
		if s.layerNorm {
			bq = qq(1.0/(1<<20), 0)
		}
		idx[12+g] = b.AddTensor(modelbuilder.Tensor{Name: "bias", Type: bT, Shape: []int{s.nCell}, Data: data(12+g, bT, s.nCell, -3000, 3000), Quant: bq})
		if s.peephole && g != 2 {
			slot := 9 + map[int]int{0: 0, 1: 1, 3: 2}[g]
			idx[slot] = b.AddTensor(modelbuilder.Tensor{Name: "peep", Type: pT, Shape: []int{s.nCell}, Data: data(slot, pT, s.nCell, -3000, 3000), Quant: orQ(qq(0.0002, 0), wq(0.004))})
		}
		if s.layerNorm {
			idx[20+g] = b.AddTensor(modelbuilder.Tensor{Name: "ln", Type: lnT, Shape: []int{s.nCell}, Data: data(20+g, lnT, s.nCell, 600, 1500), Quant: qq(1.0/1024, 0)})
		}
	}
	if s.projection {
		idx[16] = b.AddTensor(modelbuilder.Tensor{Name: "proj", Type: wT, Shape: []int{s.nOut, s.nCell}, Data: data(16, wT, s.nOut*s.nCell, -127, 127), Quant: orQ(qq(0.02, 0), wq(0.02))})
		if s.projBias {
			idx[17] = b.AddTensor(modelbuilder.Tensor{Name: "projbias", Type: bT, Shape: []int{s.nOut}, Data: data(17, bT, s.nOut, -2000, 2000), Quant: qq(0.02/128, 0)})
		}
	}
	stT := map[bool]tensor.DType{false: tensor.Float32, true: tensor.Int8}[s.integer]
	cT := map[bool]tensor.DType{false: tensor.Float32, true: tensor.Int16}[s.integer]
	idx[18] = b.AddTensor(modelbuilder.Tensor{Name: "output_state", Type: stT, Shape: []int{s.batch, s.nOut}, Quant: qq(stScale, -2), Variable: true})
	idx[19] = b.AddTensor(modelbuilder.Tensor{Name: "cell_state", Type: cT, Shape: []int{s.batch, s.nCell}, Quant: qq(1.0/2048, 0), Variable: true})
	out := b.AddTensor(modelbuilder.Tensor{Name: "output", Type: stT, Shape: outShape, Quant: qq(stScale, -2)})
	var inter []int
	if s.converter {
		for i := 0; i < 5; i++ {
			mt := modelbuilder.Tensor{Name: fmt.Sprintf("intermediate_%d", i), Type: tensor.Float32, Shape: []int{0}}
			switch {
			case s.integer && i == 4 && !s.bareHidden:
				mt.Type, mt.Quant = tensor.Int8, kerneltest.Q(1.0/128, s.hiddenZP)
			case s.integer && s.layerNorm && i < 4 && !s.bareGates:
				mt.Type, mt.Quant = tensor.Int16, kerneltest.Q(0.003, 0)
			}
			inter = append(inter, b.AddTensor(mt))
		}
	} else if s.integer && !s.noIntermediates {
		for i := 0; i < 4; i++ {
			sc := float32(1.0 / 4096)
			if s.layerNorm {
				sc = 0.003
			}
			inter = append(inter, b.AddTensor(modelbuilder.Tensor{Name: "gate", Type: tensor.Int16, Shape: []int{}, Quant: kerneltest.Q(sc, 0)}))
		}
		inter = append(inter, b.AddTensor(modelbuilder.Tensor{Name: "hidden", Type: tensor.Int8, Shape: []int{}, Quant: kerneltest.Q(1.0/128, s.hiddenZP)}))
	}
	version := 1
	if s.integer {
		version = 3
	} else if s.hybrid {
		version = 2
	}
	act := s.act
	if act == 0 {
		act = quant.ActTanh
	}
	b.AddOp(modelbuilder.Op{Builtin: schema.OpUnidirectionalSequenceLstm, Version: version, Inputs: idx, Outputs: []int{out}, Intermediates: inter,
		Options: &schema.LSTMOptions{Activation: act, CellClip: s.cellClip, ProjClip: s.projClip, TimeMajor: s.timeMajor, AsymmetricQuantizeInputs: s.asym}})
	b.SetIO([]int{idx[0]}, []int{out})
	m, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestLSTMFloatHand: one cell, input weights 1, recurrent weights 0.5, no
// bias; the expected values follow the LSTM equations step by step.
func TestLSTMFloatHand(t *testing.T) {
	one := []float32{1}
	half := []float32{0.5}
	zero := []float32{0}
	s := lstmSpec{time: 2, batch: 1, nIn: 1, nCell: 1, nOut: 1, timeMajor: true, fixed: map[int][]float32{
		1: one, 2: one, 3: one, 4: one, 5: half, 6: half, 7: half, 8: half, 12: zero, 13: zero, 14: zero, 15: zero}}
	res := runModel(t, s.model(t, kerneltest.RNG(0)), [][]byte{kerneltest.F32(1, -2)})
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	var c, h float64
	var want []float32
	for _, x := range []float64{1, -2} {
		pre := x + 0.5*h
		i, f, g, o := sig(pre), sig(pre), math.Tanh(pre), sig(pre)
		c = f*c + i*g
		h = o * math.Tanh(c)
		want = append(want, float32(h))
	}
	expectFloatClose(t, "output", res[0][0], kerneltest.F32(want...))
	// The state persists: a second Invoke continues from (c, h).
	res = runModel(t, s.model(t, kerneltest.RNG(0)), [][]byte{kerneltest.F32(1, -2)}, [][]byte{kerneltest.F32(0.5, 0.5)})
	for _, x := range []float64{0.5, 0.5} {
		pre := x + 0.5*h
		i, f, g, o := sig(pre), sig(pre), math.Tanh(pre), sig(pre)
		c = f*c + i*g
		h = o * math.Tanh(c)
		want = append(want, float32(h))
	}
	expectFloatClose(t, "second invoke", res[1][0], kerneltest.F32(want[2:]...))
}

var lstmCases = []struct {
	name string
	s    lstmSpec
}{
	{"basic", lstmSpec{time: 3, batch: 2, nIn: 3, nCell: 4, nOut: 4, timeMajor: true}},
	{"batch_major", lstmSpec{time: 3, batch: 2, nIn: 3, nCell: 4, nOut: 4}},
	{"cifg_peephole", lstmSpec{time: 3, batch: 2, nIn: 3, nCell: 4, nOut: 4, timeMajor: true, cifg: true, peephole: true, cellClip: 0.8}},
	{"peephole", lstmSpec{time: 2, batch: 1, nIn: 2, nCell: 4, nOut: 4, peephole: true}},
	{"projection", lstmSpec{time: 3, batch: 2, nIn: 3, nCell: 5, nOut: 3, timeMajor: true, projection: true, projBias: true, projClip: 0.3}},
	{"projection_nobias", lstmSpec{time: 2, batch: 1, nIn: 3, nCell: 4, nOut: 2, projection: true, hiddenZP: 5}},
	{"layer_norm", lstmSpec{time: 3, batch: 2, nIn: 3, nCell: 4, nOut: 4, timeMajor: true, layerNorm: true}},
	{"layer_norm_cifg_proj", lstmSpec{time: 2, batch: 2, nIn: 3, nCell: 4, nOut: 3, cifg: true, layerNorm: true, projection: true, peephole: true}},
}

func TestLSTMFloatGolden(t *testing.T) {
	for ci, tc := range lstmCases {
		t.Run(tc.name, func(t *testing.T) {
			r := kerneltest.RNG(uint64(100 + ci))
			s := tc.s
			if tc.name == "peephole" {
				s.act = quant.ActRelu6
			}
			model := s.model(t, r)
			in := kerneltest.RandF32(r, s.time*s.batch*s.nIn, -1.5, 1.5)
			want := kerneltest.Golden(t, "lstm_float_"+tc.name, model, [][]byte{in})
			got := runModel(t, model, [][]byte{in})
			expectFloatClose(t, "output", got[0][0], want[0])
		})
	}
}

func TestLSTMIntegerGolden(t *testing.T) {
	for ci, tc := range lstmCases {
		t.Run(tc.name, func(t *testing.T) {
			r := kerneltest.RNG(uint64(200 + ci))
			s := tc.s
			s.integer = true
			model := s.model(t, r)
			in := kerneltest.RandInt8(r, s.time*s.batch*s.nIn, -128, 127)
			want := kerneltest.Golden(t, "lstm_int8_"+tc.name, model, [][]byte{in})
			got := runModel(t, model, [][]byte{in})
			expectBytes(t, "output", got[0][0], want[0])
		})
	}
}

func TestLSTMErrors(t *testing.T) {
	base := lstmSpec{time: 2, batch: 1, nIn: 2, nCell: 4, nOut: 4, timeMajor: true}
	for name, c := range map[string]struct {
		s lstmSpec
	}{
		"output size without projection": {s: lstmSpec{time: 2, batch: 1, nIn: 2, nCell: 4, nOut: 3, timeMajor: true}},
		"negative cell clip":             {s: lstmSpec{time: 2, batch: 1, nIn: 2, nCell: 4, nOut: 4, cellClip: -1}},
	} {
		if _, err := loadErr(c.s.model(t, kerneltest.RNG(1))); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// Integer LSTM without the 5 intermediates.
	s := base
	s.integer = true
	m := s.model(t, kerneltest.RNG(1))
	if _, err := loadErr(m); err != nil {
		t.Fatalf("valid integer LSTM: %v", err)
	}
}

// TestLSTMIntegerNeedsIntermediates checks the error for an integer LSTM
// whose node lacks the intermediate tensors carrying the gate scales.
func TestLSTMIntegerNeedsIntermediates(t *testing.T) {
	s := lstmSpec{integer: true, time: 1, batch: 1, nIn: 2, nCell: 2, nOut: 2, timeMajor: true, noIntermediates: true}
	_, err := loadErr(s.model(t, kerneltest.RNG(1)))
	if err == nil || !strings.Contains(err.Error(), "intermediate") {
		t.Fatalf("error %v, want one about intermediates", err)
	}
}

func orQ(a, b *tensor.Quantization) *tensor.Quantization {
	if a != nil {
		return a
	}
	return b
}

func TestLSTMHybridGolden(t *testing.T) {
	for _, asym := range []bool{false, true} {
		for ci, tc := range lstmCases {
			name := "lstm_hybrid_" + tc.name
			if asym {
				name += "_asym"
			}
			t.Run(name, func(t *testing.T) {
				r := kerneltest.RNG(uint64(300 + ci))
				s := tc.s
				s.hybrid, s.asym = true, asym
				model := s.model(t, r)
				in := kerneltest.RandF32(r, s.time*s.batch*s.nIn, -1.5, 1.5)
				want := kerneltest.Golden(t, name, model, [][]byte{in})
				got := runModel(t, model, [][]byte{in})
				expectFloatClose(t, "output", got[0][0], want[0])
			})
		}
	}
}

// TestLSTMConverterShaped runs LSTMs shaped like the TensorFlow Lite
// converter's output, whose node lists five intermediate tensors and
// leaves those the kernel does not read without quantization parameters
// (float and hybrid: all five; integer without layer norm: the four gate
// intermediates). TensorFlow Lite runs them; the goldens are its outputs.
func TestLSTMConverterShaped(t *testing.T) {
	cases := []struct {
		kind string // float, hybrid, hybrid_asym or int8
		name string
		s    lstmSpec
	}{
		{"float", "basic", lstmSpec{time: 3, batch: 2, nIn: 3, nCell: 4, nOut: 4, timeMajor: true}},
		{"float", "projection", lstmSpec{time: 3, batch: 2, nIn: 3, nCell: 5, nOut: 3, projection: true, projBias: true}},
		{"hybrid", "basic", lstmSpec{time: 3, batch: 2, nIn: 3, nCell: 4, nOut: 4, timeMajor: true}},
		{"hybrid_asym", "cifg_peephole", lstmSpec{time: 3, batch: 2, nIn: 3, nCell: 4, nOut: 4, cifg: true, peephole: true, cellClip: 0.8}},
		{"int8", "basic", lstmSpec{time: 3, batch: 2, nIn: 3, nCell: 4, nOut: 4, timeMajor: true}},
		{"int8", "batch_major", lstmSpec{time: 4, batch: 1, nIn: 5, nCell: 8, nOut: 8}},
		{"int8", "cifg_peephole", lstmSpec{time: 3, batch: 2, nIn: 3, nCell: 4, nOut: 4, timeMajor: true, cifg: true, peephole: true, cellClip: 0.8}},
		{"int8", "projection", lstmSpec{time: 3, batch: 2, nIn: 3, nCell: 5, nOut: 3, timeMajor: true, projection: true, projBias: true, projClip: 0.3, hiddenZP: 4}},
		{"int8", "layer_norm", lstmSpec{time: 3, batch: 2, nIn: 3, nCell: 4, nOut: 4, timeMajor: true, layerNorm: true}},
	}
	for ci, tc := range cases {
		name := "lstm_converter_" + tc.kind + "_" + tc.name
		t.Run(name, func(t *testing.T) {
			r := kerneltest.RNG(uint64(400 + ci))
			s := tc.s
			s.converter = true
			switch tc.kind {
			case "int8":
				s.integer = true
			case "hybrid":
				s.hybrid = true
			case "hybrid_asym":
				s.hybrid, s.asym = true, true
			}
			model := s.model(t, r)
			var in []byte
			if s.integer {
				in = kerneltest.RandInt8(r, s.time*s.batch*s.nIn, -128, 127)
			} else {
				in = kerneltest.RandF32(r, s.time*s.batch*s.nIn, -1.5, 1.5)
			}
			want := kerneltest.Golden(t, name, model, [][]byte{in})
			// Two Invokes: the state carried between them is checked by
			// the second (TensorFlow Lite's golden is the first Invoke).
			got := runModel(t, model, [][]byte{in}, [][]byte{in})
			if s.integer {
				expectBytes(t, "output", got[0][0], want[0])
			} else {
				expectFloatClose(t, "output", got[0][0], want[0])
			}
			if string(got[1][0]) == string(got[0][0]) {
				t.Errorf("second Invoke gave the first's output: the state did not carry over")
			}
		})
	}
}

// TestLSTMIntegerIntermediatesNeedScales: the intermediates an integer
// LSTM reads (4, the hidden state's scale, always; 0-3, the gate scales,
// with layer norm) must carry quantization parameters, as TensorFlow Lite
// requires; the controls, with them, load.
func TestLSTMIntegerIntermediatesNeedScales(t *testing.T) {
	base := lstmSpec{integer: true, time: 1, batch: 1, nIn: 2, nCell: 2, nOut: 2, timeMajor: true, converter: true}
	ln := base
	ln.layerNorm = true
	for _, tc := range []struct {
		name string
		s    lstmSpec
		want string // "" for a control that loads
	}{
		{"control", base, ""},
		{"control layer norm", ln, ""},
		{"bare hidden", func() lstmSpec { s := base; s.bareHidden = true; return s }(), "intermediate 4"},
		{"bare hidden layer norm", func() lstmSpec { s := ln; s.bareHidden = true; return s }(), "intermediate 4"},
		{"bare gates layer norm", func() lstmSpec { s := ln; s.bareGates = true; return s }(), "intermediate 0"},
	} {
		_, err := loadErr(tc.s.model(t, kerneltest.RNG(1)))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one about %s", tc.name, err, tc.want)
		}
	}
}
