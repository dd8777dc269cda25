package sequence_test

import (
	"testing"

	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
	"github.com/edgefleet/edgefleet/quant"
)

func newInterp(tb testing.TB, model []byte, in []byte) *inference.Interpreter {
	tb.Helper()
	m, err := inference.Load(model)
	if err != nil {
		tb.Fatal(err)
	}
	ip, err := inference.NewInterpreter(m)
	if err != nil {
		tb.Fatal(err)
	}
	if err := ip.SetInput(0, in); err != nil {
		tb.Fatal(err)
	}
	return ip
}

func svdfBenchModel(t testing.TB, integer bool) ([]byte, []byte) {
	r := kerneltest.RNG(9)
	s := svdfSpec{batch: 1, inSize: 96, filters: 64, memory: 8, rank: 1, act: quant.ActRelu,
		inType: tensor.Float32, wfType: tensor.Float32, wtType: tensor.Float32, stType: tensor.Float32, outType: tensor.Float32,
		wf: kerneltest.RandF32(r, 64*96, -1, 1), wt: kerneltest.RandF32(r, 64*8, -1, 1), bias: kerneltest.RandF32(r, 64, -1, 1)}
	in := kerneltest.RandF32(r, 96, -1, 1)
	if integer {
		s.inType, s.wfType, s.wtType, s.stType, s.outType = tensor.Int8, tensor.Int8, tensor.Int16, tensor.Int16, tensor.Int8
		s.inQ, s.wfQ, s.wtQ, s.stQ, s.outQ, s.biasQ = kerneltest.Q(0.05, 3), kerneltest.Q(0.01, 0), kerneltest.Q(0.002, 0), kerneltest.Q(0.004, 0), kerneltest.Q(0.15, -10), kerneltest.Q(0.000008, 0)
		s.wf, s.wt, s.bias = kerneltest.RandInt8(r, 64*96, -127, 127), kerneltest.RandInt16(r, 64*8, -2000, 2000), kerneltest.RandInt32(r, 64, -1000, 1000)
		in = kerneltest.RandInt8(r, 96, -128, 127)
	}
	return s.model(t), in
}

func lstmBenchModel(t testing.TB, integer bool) ([]byte, []byte) {
	return lstmBench(t, lstmSpec{integer: integer, time: 16, batch: 1, nIn: 32, nCell: 64, nOut: 64, timeMajor: true})
}

func lstmHybridBenchModel(t testing.TB, _ bool) ([]byte, []byte) {
	return lstmBench(t, lstmSpec{hybrid: true, time: 16, batch: 1, nIn: 32, nCell: 64, nOut: 64, timeMajor: true})
}

func lstmBench(t testing.TB, s lstmSpec) ([]byte, []byte) {
	r := kerneltest.RNG(10)
	integer := s.integer
	m := s.model(t, r)
	if integer {
		return m, kerneltest.RandInt8(r, 16*32, -128, 127)
	}
	return m, kerneltest.RandF32(r, 16*32, -1, 1)
}

// TestNoAllocs: Invoke must not allocate on SVDF and LSTM models.
func TestNoAllocs(t *testing.T) {
	for _, integer := range []bool{false, true} {
		for name, build := range map[string]func(testing.TB, bool) ([]byte, []byte){"svdf": svdfBenchModel, "lstm": lstmBenchModel, "lstm_hybrid": lstmHybridBenchModel} {
			model, in := build(t, integer)
			ip := newInterp(t, model, in)
			ip.Invoke()
			if n := testing.AllocsPerRun(20, func() {
				if err := ip.Invoke(); err != nil {
					t.Fatal(err)
				}
			}); n != 0 {
				t.Errorf("%s (integer %v): %v allocations per Invoke", name, integer, n)
			}
		}
	}
}

func benchModel(b *testing.B, model, in []byte) {
	ip := newInterp(b, model, in)
	b.ReportAllocs()
	for b.Loop() {
		if err := ip.Invoke(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSVDFFloat(b *testing.B) {
	m, in := svdfBenchModel(b, false)
	benchModel(b, m, in)
}

func BenchmarkSVDFInt8(b *testing.B) {
	m, in := svdfBenchModel(b, true)
	benchModel(b, m, in)
}

func BenchmarkLSTMFloat(b *testing.B) {
	m, in := lstmBenchModel(b, false)
	benchModel(b, m, in)
}

func BenchmarkLSTMInt8(b *testing.B) {
	m, in := lstmBenchModel(b, true)
	benchModel(b, m, in)
}

func BenchmarkLSTMHybrid(b *testing.B) {
	m, in := lstmHybridBenchModel(b, false)
	benchModel(b, m, in)
}

// TestResetVariables: after ResetVariables an Invoke repeats the first
// Invoke's output, while a plain second Invoke (state carried) differs.
func TestResetVariables(t *testing.T) {
	for name, build := range map[string]func(testing.TB, bool) ([]byte, []byte){"svdf": svdfBenchModel, "lstm": lstmBenchModel} {
		model, in := build(t, true)
		ip := newInterp(t, model, in)
		run := func() string {
			if err := ip.Invoke(); err != nil {
				t.Fatal(err)
			}
			return string(ip.Output(0).Data)
		}
		first := run()
		second := run()
		if first == second {
			t.Errorf("%s: second Invoke equals the first; the state is not carried", name)
		}
		ip.ResetVariables()
		if got := run(); got != first {
			t.Errorf("%s: Invoke after ResetVariables differs from the first Invoke", name)
		}
	}
}
