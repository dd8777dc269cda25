package sequence_test

import (
	"testing"

	"github.com/edgefleet/edgefleet/inference/modelbuilder"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
	"github.com/edgefleet/edgefleet/quant"
)

// svdfSpec describes a single-SVDF model; with twice set, two SVDF nodes
// share one state tensor (the second sees the state the first left).
type svdfSpec struct {
	batch, inSize, filters, memory, rank int
	act                                  quant.Activation
	inType, wfType, wtType, stType       tensor.DType
	outType                              tensor.DType
	inQ, wfQ, wtQ, stQ, biasQ, outQ      *tensor.Quantization
	wf, wt, bias                         []byte
	twice                                bool
	asym                                 bool
}

func (s svdfSpec) model(t testing.TB) []byte {
	t.Helper()
	b := modelbuilder.New()
	units := s.filters / s.rank
	in := b.AddTensor(modelbuilder.Tensor{Name: "in", Type: s.inType, Shape: []int{s.batch, s.inSize}, Quant: s.inQ})
	wf := b.AddTensor(modelbuilder.Tensor{Name: "wf", Type: s.wfType, Shape: []int{s.filters, s.inSize}, Data: s.wf, Quant: s.wfQ})
	wt := b.AddTensor(modelbuilder.Tensor{Name: "wt", Type: s.wtType, Shape: []int{s.filters, s.memory}, Data: s.wt, Quant: s.wtQ})
	bias := -1
	if s.bias != nil {
		bt := tensor.Float32
		if s.inType == tensor.Int8 {
			bt = tensor.Int32
		}
		bias = b.AddTensor(modelbuilder.Tensor{Name: "bias", Type: bt, Shape: []int{units}, Data: s.bias, Quant: s.biasQ})
	}
	st := b.AddTensor(modelbuilder.Tensor{Name: "state", Type: s.stType, Shape: []int{s.batch, s.filters * s.memory}, Quant: s.stQ, Variable: true})
	out := b.AddTensor(modelbuilder.Tensor{Name: "out", Type: s.outType, Shape: []int{s.batch, units}, Quant: s.outQ})
	version := 1
	if s.inType == tensor.Int8 {
		version = 3
	} else if s.wfType == tensor.Int8 {
		version = 2
	}
	opts := &schema.SVDFOptions{Rank: s.rank, Activation: s.act, AsymmetricQuantizeInputs: s.asym}
	b.AddOp(modelbuilder.Op{Builtin: schema.OpSvdf, Version: version, Inputs: []int{in, wf, wt, bias, st}, Outputs: []int{out}, Options: opts})
	ins, outs := []int{in}, []int{out}
	if s.twice {
		in2 := b.AddTensor(modelbuilder.Tensor{Name: "in2", Type: s.inType, Shape: []int{s.batch, s.inSize}, Quant: s.inQ})
		out2 := b.AddTensor(modelbuilder.Tensor{Name: "out2", Type: s.outType, Shape: []int{s.batch, units}, Quant: s.outQ})
		b.AddOp(modelbuilder.Op{Builtin: schema.OpSvdf, Version: version, Inputs: []int{in2, wf, wt, bias, st}, Outputs: []int{out2}, Options: opts})
		ins, outs = append(ins, in2), append(outs, out2)
	}
	b.SetIO(ins, outs)
	m, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSVDFFloatHand checks a hand-computed two-step float case: the state
// must carry the first step's activation into the second Invoke.
func TestSVDFFloatHand(t *testing.T) {
	s := svdfSpec{batch: 1, inSize: 2, filters: 2, memory: 2, rank: 1,
		inType: tensor.Float32, wfType: tensor.Float32, wtType: tensor.Float32, stType: tensor.Float32, outType: tensor.Float32,
		wf: kerneltest.F32(1, 0, 0, 1), wt: kerneltest.F32(1, 2, 3, 4)}
	res := runModel(t, s.model(t), [][]byte{kerneltest.F32(1, 2)}, [][]byte{kerneltest.F32(3, -1)})
	// Step 1: memory rows [0 1], [0 2] -> 1*0+2*1=2, 3*0+4*2=8.
	expectFloatClose(t, "step 1", res[0][0], kerneltest.F32(2, 8))
	// Step 2: rows [1 3], [2 -1] -> 1+6=7, 6-4=2.
	expectFloatClose(t, "step 2", res[1][0], kerneltest.F32(7, 2))

	// Rank 2, bias and relu: one unit summing two filters.
	s = svdfSpec{batch: 1, inSize: 2, filters: 2, memory: 1, rank: 2, act: quant.ActRelu,
		inType: tensor.Float32, wfType: tensor.Float32, wtType: tensor.Float32, stType: tensor.Float32, outType: tensor.Float32,
		wf: kerneltest.F32(1, 1, 2, -1), wt: kerneltest.F32(2, 3), bias: kerneltest.F32(-0.5)}
	res = runModel(t, s.model(t), [][]byte{kerneltest.F32(1, 2)}, [][]byte{kerneltest.F32(-1, -1)})
	// (1+2)*2 + (2-2)*3 - 0.5 = 5.5; then (-2)*2 + (-1)*3 - 0.5 = -7.5 -> relu 0.
	expectFloatClose(t, "rank 2 step 1", res[0][0], kerneltest.F32(5.5))
	expectFloatClose(t, "rank 2 step 2", res[1][0], kerneltest.F32(0))
}

// TestSVDFIntegerHand checks the two-stage integer requantization on a
// tiny case with power-of-two scales.
func TestSVDFIntegerHand(t *testing.T) {
	s := svdfSpec{batch: 1, inSize: 2, filters: 1, memory: 2, rank: 1, act: quant.ActRelu,
		inType: tensor.Int8, wfType: tensor.Int8, wtType: tensor.Int16, stType: tensor.Int16, outType: tensor.Int8,
		// input scale 0.5 zp 1, wf scale 0.25: state scale 0.125 gives
		// effective scale 1; wt scale 0.5, output scale 0.25 zp -3:
		// effective scale 0.25.
		inQ: kerneltest.Q(0.5, 1), wfQ: kerneltest.Q(0.25, 0), wtQ: kerneltest.Q(0.5, 0), stQ: kerneltest.Q(0.125, 0), outQ: kerneltest.Q(0.25, -3), biasQ: kerneltest.Q(0.0625, 0),
		wf: []byte{2, 0xff}, wt: []byte{3, 0, 5, 0}, bias: []byte{7, 0, 0, 0}}
	res := runModel(t, s.model(t), [][]byte{{5, 2}}, [][]byte{{0, 0}})
	// Step 1: dot = 2*(5-1) + (-1)*(2-1) = 7 -> state [0 7];
	// time 3*0 + 5*7 = 35, +bias 7 = 42, *0.25 = 10.5 -> 11 (round half
	// away), -3 -> 8.
	expectBytes(t, "step 1", res[0][0], []byte{8})
	// Step 2: dot = 2*(-1) + (-1)*(-1) = -1 -> state [7 -1]; time
	// 21 - 5 = 16, +7 = 23, *0.25 = 5.75 -> 6, -3 -> 3.
	expectBytes(t, "step 2", res[1][0], []byte{3})
}

func TestSVDFIntegerGolden(t *testing.T) {
	r := kerneltest.RNG(1)
	for _, tc := range []struct {
		name   string
		stType tensor.DType
		bias   bool
	}{{"svdf_int8", tensor.Int16, true}, {"svdf_int8_nobias", tensor.Int16, false}} {
		t.Run(tc.name, func(t *testing.T) {
			s := svdfSpec{batch: 2, inSize: 5, filters: 6, memory: 4, rank: 2, act: quant.ActRelu,
				inType: tensor.Int8, wfType: tensor.Int8, wtType: tensor.Int16, stType: tc.stType, outType: tensor.Int8,
				inQ: kerneltest.Q(0.05, 3), wfQ: kerneltest.Q(0.01, 0), wtQ: kerneltest.Q(0.002, 0), stQ: kerneltest.Q(0.004, 0), outQ: kerneltest.Q(0.15, -10), biasQ: kerneltest.Q(0.000008, 0),
				wf: kerneltest.RandInt8(r, 30, -127, 127), wt: kerneltest.RandInt16(r, 24, -2000, 2000), twice: true}
			if tc.bias {
				s.bias = kerneltest.RandInt32(r, 3, -200000, 200000)
			}
			ins := [][]byte{kerneltest.RandInt8(r, 10, -128, 127), kerneltest.RandInt8(r, 10, -128, 127)}
			model := s.model(t)
			want := kerneltest.Golden(t, tc.name, model, ins)
			got := runModel(t, model, ins)
			for i := range want {
				expectBytes(t, "output", got[0][i], want[i])
			}
		})
	}
}

func TestSVDFFloatGolden(t *testing.T) {
	r := kerneltest.RNG(2)
	s := svdfSpec{batch: 2, inSize: 5, filters: 6, memory: 4, rank: 3, act: quant.ActRelu6,
		inType: tensor.Float32, wfType: tensor.Float32, wtType: tensor.Float32, stType: tensor.Float32, outType: tensor.Float32,
		wf: kerneltest.RandF32(r, 30, -1, 1), wt: kerneltest.RandF32(r, 24, -1, 1), bias: kerneltest.RandF32(r, 2, -1, 1), twice: true}
	ins := [][]byte{kerneltest.RandF32(r, 10, -2, 2), kerneltest.RandF32(r, 10, -2, 2)}
	model := s.model(t)
	want := kerneltest.Golden(t, "svdf_float", model, ins)
	got := runModel(t, model, ins)
	for i := range want {
		expectFloatClose(t, "output", got[0][i], want[i])
	}
}

func TestSVDFHybridGolden(t *testing.T) {
	r := kerneltest.RNG(3)
	for _, asym := range []bool{false, true} {
		name := "svdf_hybrid"
		if asym {
			name += "_asym"
		}
		t.Run(name, func(t *testing.T) {
			s := svdfSpec{batch: 2, inSize: 5, filters: 6, memory: 4, rank: 2,
				inType: tensor.Float32, wfType: tensor.Int8, wtType: tensor.Int8, stType: tensor.Float32, outType: tensor.Float32,
				wfQ: kerneltest.Q(0.01, 0), wtQ: kerneltest.Q(0.02, 0),
				wf: kerneltest.RandInt8(r, 30, -127, 127), wt: kerneltest.RandInt8(r, 24, -127, 127), bias: kerneltest.RandF32(r, 3, -1, 1), twice: true, asym: asym}
			ins := [][]byte{kerneltest.RandF32(r, 10, -2, 3), kerneltest.RandF32(r, 10, -2, 3)}
			model := s.model(t)
			want := kerneltest.Golden(t, name, model, ins)
			got := runModel(t, model, ins)
			for i := range want {
				expectFloatClose(t, "output", got[0][i], want[i])
			}
		})
	}
}

func TestSVDFErrors(t *testing.T) {
	base := svdfSpec{batch: 1, inSize: 2, filters: 2, memory: 2, rank: 1,
		inType: tensor.Float32, wfType: tensor.Float32, wtType: tensor.Float32, stType: tensor.Float32, outType: tensor.Float32,
		wf: kerneltest.F32(1, 0, 0, 1), wt: kerneltest.F32(1, 2, 3, 4)}
	bad := base
	bad.rank = 3
	if _, err := loadErr(bad.model(t)); err == nil {
		t.Fatal("filters not a multiple of rank: no error")
	}
	bad = base
	bad.wtType = tensor.Int8
	bad.wt = []byte{1, 2, 3, 4}
	bad.wtQ = kerneltest.Q(1, 0)
	if _, err := loadErr(bad.model(t)); err == nil {
		t.Fatal("float SVDF with int8 time weights: no error")
	}
}

// TestSVDFInt8State: with an int8 state (accepted, as TFLite Micro does)
// results equal the int16-state model whenever the state values fit int8.
func TestSVDFInt8State(t *testing.T) {
	r := kerneltest.RNG(4)
	s := svdfSpec{batch: 1, inSize: 4, filters: 2, memory: 3, rank: 1, act: quant.ActRelu,
		inType: tensor.Int8, wfType: tensor.Int8, wtType: tensor.Int16, stType: tensor.Int16, outType: tensor.Int8,
		inQ: kerneltest.Q(0.05, 0), wfQ: kerneltest.Q(0.01, 0), wtQ: kerneltest.Q(0.002, 0), stQ: kerneltest.Q(0.05, 0), outQ: kerneltest.Q(0.001, 0), biasQ: kerneltest.Q(0.0001, 0),
		wf: kerneltest.RandInt8(r, 8, -40, 40), wt: kerneltest.RandInt16(r, 6, -300, 300), bias: kerneltest.RandInt32(r, 2, -100, 100)}
	var steps [][]byte
	for i := 0; i < 4; i++ {
		steps = append(steps, kerneltest.RandInt8(r, 4, -30, 30))
	}
	var ins [][][]byte
	for _, st := range steps {
		ins = append(ins, [][]byte{st})
	}
	want := runModel(t, s.model(t), ins...)
	s.stType = tensor.Int8
	got := runModel(t, s.model(t), ins...)
	nonzero := false
	for i := range want {
		expectBytes(t, "output", got[i][0], want[i][0])
		for _, v := range want[i][0] {
			nonzero = nonzero || v != 0
		}
	}
	if !nonzero {
		t.Fatal("all outputs zero: the test checks nothing")
	}
}
