package conv_test

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/modelbuilder"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
	"github.com/edgefleet/edgefleet/internal/kerneltest/singleop"
)

// single builds a one-op model: runtime inputs, constants and outputs.
type single struct {
	b       *modelbuilder.Builder
	ins     []int
	inData  [][]byte
	outs    []int
	outType []tensor.DType
}

func newSingle() *single { return &single{b: modelbuilder.New()} }

func (s *single) input(dt tensor.DType, shape []int, q *tensor.Quantization, data []byte) int {
	i := s.b.AddTensor(modelbuilder.Tensor{Name: "in", Type: dt, Shape: shape, Quant: q})
	s.ins = append(s.ins, i)
	s.inData = append(s.inData, data)
	return i
}

func (s *single) constant(dt tensor.DType, shape []int, q *tensor.Quantization, data []byte) int {
	return s.b.AddTensor(modelbuilder.Tensor{Name: "c", Type: dt, Shape: shape, Quant: q, Data: data})
}

func (s *single) output(dt tensor.DType, shape []int, q *tensor.Quantization) int {
	i := s.b.AddTensor(modelbuilder.Tensor{Name: "out", Type: dt, Shape: shape, Quant: q})
	s.outs = append(s.outs, i)
	s.outType = append(s.outType, dt)
	return i
}

func (s *single) op(t *testing.T, op schema.BuiltinOperator, version int, opts any, inputs ...int) []byte {
	t.Helper()
	s.b.AddOp(modelbuilder.Op{Builtin: op, Version: version, Inputs: inputs, Outputs: s.outs, Options: opts})
	s.b.SetIO(s.ins, s.outs)
	m, err := s.b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// checkGolden compares our outputs (1 and 3 threads) with TensorFlow
// Lite's: integer outputs byte for byte, float32 within 1e-5 of the
// largest expected magnitude.
func (s *single) checkGolden(t *testing.T, name string, model []byte) {
	t.Helper()
	want := kerneltest.Golden(t, name, model, s.inData)
	for _, threads := range []int{1, 3} {
		singleop.Compare(t, name, singleop.Run(t, model, s.inData, inference.WithThreads(threads)), want, s.outType...)
	}
}

// rng returns conv's deterministic generator for test data (its own
// stream, not kerneltest.RNG's: the stored golden inputs depend on it).
func rng(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0xc0417)) }

func randU8(r *rand.Rand, n, lo, hi int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(lo + r.IntN(hi-lo+1))
	}
	return b
}

func randI64(r *rand.Rand, n, lo, hi int) []byte {
	b := make([]byte, 8*n)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(int64(lo+r.IntN(hi-lo+1))))
	}
	return b
}

// qc returns per-channel symmetric quantization along dim.
func qc(dim int, scales ...float32) *tensor.Quantization {
	return &tensor.Quantization{Scale: scales, ZeroPoint: make([]int64, len(scales)), Dim: dim}
}

// channelScales returns n scales spread around base.
func channelScales(r *rand.Rand, n int, base float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = base * float32(0.5+r.Float64())
	}
	return s
}

// scaleFor picks an output scale so that a sum of k products of values
// with the given spreads lands around 40 quantized steps.
func scaleFor(inScale, wScale float32, k int) float32 {
	return float32(float64(inScale) * float64(wScale) * math.Sqrt(float64(k)) * 74 * 74 / 40)
}

func scaleQ(scales []float32, f float32) []float32 {
	out := make([]float32, len(scales))
	for i, s := range scales {
		out[i] = s * f
	}
	return out
}
