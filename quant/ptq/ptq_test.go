package ptq

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/modelbuilder"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
	"github.com/edgefleet/edgefleet/quant"
)

// testModel is a float model with a sampler for calibration and evaluation
// inputs and the accuracy bounds its int8 version must meet.
type testModel struct {
	name       string
	model      func(t *testing.T) []byte
	sample     func(r *rand.Rand, n int) []float32
	classifier bool
	// maxAbsErr bounds |float - dequantized int8| over the evaluation set,
	// relative to the float output's range; minTop1 bounds top-1
	// agreement for classifiers.
	maxRelErr float64
	minTop1   float64
}

func conformanceModel(name string) func(t *testing.T) []byte {
	return func(t *testing.T) []byte {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "conformance", name, "model.tflite"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

func uniform(lo, hi float64) func(r *rand.Rand, n int) []float32 {
	return func(r *rand.Rand, n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(lo + r.Float64()*(hi-lo))
		}
		return v
	}
}

func bits(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.IntN(2))
	}
	return v
}

var testModels = []testModel{
	{name: "iris", model: conformanceModel("iris"), sample: uniform(0, 8), classifier: true, maxRelErr: 0.1, minTop1: 0.95},
	{name: "sin_model", model: conformanceModel("sin_model"), sample: uniform(0, 2*math.Pi), maxRelErr: 0.1},
	{name: "hello_world_float", model: conformanceModel("hello_world_float"), sample: uniform(0, 2*math.Pi), maxRelErr: 0.1},
	{name: "fizzbuzz_model", model: conformanceModel("fizzbuzz_model"), sample: bits, classifier: true, maxRelErr: 0.1, minTop1: 0.95},
	{name: "float_cnn", model: buildCNN, sample: uniform(-1, 1), classifier: true, maxRelErr: 0.1, minTop1: 0.9},
	{name: "float_branches", model: buildBranches, sample: uniform(-2, 2), maxRelErr: 0.1},
}

// buildBranches writes a float model with two branches: CONV_2D, then
// ADD (with a constant) + RELU and MUL + TANH, CONCATENATION, MEAN,
// FULLY_CONNECTED, LOGISTIC.
func buildBranches(t *testing.T) []byte {
	r := rand.New(rand.NewPCG(11, 3))
	w := func(n int, std float64) []byte {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64() * std)
		}
		return f32bytes(v)
	}
	b := modelbuilder.New()
	act := func(name string, shape ...int) int {
		return b.AddTensor(modelbuilder.Tensor{Name: name, Type: tensor.Float32, Shape: shape})
	}
	in := act("x", 1, 8, 8, 2)
	cw := b.AddTensor(modelbuilder.Tensor{Name: "conv/w", Type: tensor.Float32, Shape: []int{4, 3, 3, 2}, Data: w(72, 0.3)})
	cb := b.AddTensor(modelbuilder.Tensor{Name: "conv/b", Type: tensor.Float32, Shape: []int{4}, Data: w(4, 0.2)})
	c := act("conv", 1, 8, 8, 4)
	b.AddOp(modelbuilder.Op{Builtin: schema.OpConv2D, Inputs: []int{in, cw, cb}, Outputs: []int{c},
		Options: &schema.Conv2DOptions{Padding: schema.PaddingSame, StrideW: 1, StrideH: 1, DilationW: 1, DilationH: 1}})
	k := b.AddTensor(modelbuilder.Tensor{Name: "offset", Type: tensor.Float32, Shape: []int{4}, Data: f32bytes([]float32{0.5, -0.25, 1, 0})})
	a := act("add", 1, 8, 8, 4)
	b.AddOp(modelbuilder.Op{Builtin: schema.OpAdd, Inputs: []int{c, k}, Outputs: []int{a}, Options: &schema.ActivationOptions{}})
	ra := act("relu", 1, 8, 8, 4)
	b.AddOp(modelbuilder.Op{Builtin: schema.OpRelu, Inputs: []int{a}, Outputs: []int{ra}})
	m := act("mul", 1, 8, 8, 4)
	b.AddOp(modelbuilder.Op{Builtin: schema.OpMul, Inputs: []int{c, c}, Outputs: []int{m}, Options: &schema.ActivationOptions{}})
	th := act("tanh", 1, 8, 8, 4)
	b.AddOp(modelbuilder.Op{Builtin: schema.OpTanh, Inputs: []int{m}, Outputs: []int{th}})
	cat := act("concat", 1, 8, 8, 8)
	b.AddOp(modelbuilder.Op{Builtin: schema.OpConcatenation, Inputs: []int{ra, th}, Outputs: []int{cat},
		Options: &schema.ConcatenationOptions{Axis: 3}})
	axes := b.AddTensor(modelbuilder.Tensor{Name: "axes", Type: tensor.Int32, Shape: []int{2}, Data: i32bytes(1, 2)})
	mean := act("mean", 1, 8)
	b.AddOp(modelbuilder.Op{Builtin: schema.OpMean, Inputs: []int{cat, axes}, Outputs: []int{mean},
		Options: &schema.ReducerOptions{KeepDims: false}})
	fw := b.AddTensor(modelbuilder.Tensor{Name: "fc/w", Type: tensor.Float32, Shape: []int{3, 8}, Data: w(24, 1)})
	fb := b.AddTensor(modelbuilder.Tensor{Name: "fc/b", Type: tensor.Float32, Shape: []int{3}, Data: w(3, 0.2)})
	fc := act("fc", 1, 3)
	b.AddOp(modelbuilder.Op{Builtin: schema.OpFullyConnected, Inputs: []int{mean, fw, fb}, Outputs: []int{fc},
		Options: &schema.FullyConnectedOptions{}})
	out := act("prob", 1, 3)
	b.AddOp(modelbuilder.Op{Builtin: schema.OpLogistic, Inputs: []int{fc}, Outputs: []int{out}})
	b.SetIO([]int{in}, []int{out})
	model, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return model
}

// buildCNN writes a small float CNN: CONV_2D+RELU6, DEPTHWISE_CONV_2D+RELU6,
// MAX_POOL_2D, AVERAGE_POOL_2D, RESHAPE, FULLY_CONNECTED, SOFTMAX.
func buildCNN(t *testing.T) []byte {
	r := rand.New(rand.NewPCG(7, 7))
	w := func(n int, std float64) []byte {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64() * std)
		}
		return f32bytes(v)
	}
	b := modelbuilder.New()
	in := b.AddTensor(modelbuilder.Tensor{Name: "image", Type: tensor.Float32, Shape: []int{1, 16, 16, 3}})
	cw := b.AddTensor(modelbuilder.Tensor{Name: "conv/w", Type: tensor.Float32, Shape: []int{8, 3, 3, 3}, Data: w(8*27, 0.27)})
	cb := b.AddTensor(modelbuilder.Tensor{Name: "conv/b", Type: tensor.Float32, Shape: []int{8}, Data: w(8, 0.1)})
	c := b.AddTensor(modelbuilder.Tensor{Name: "conv", Type: tensor.Float32, Shape: []int{1, 16, 16, 8}})
	b.AddOp(modelbuilder.Op{Builtin: schema.OpConv2D, Inputs: []int{in, cw, cb}, Outputs: []int{c},
		Options: &schema.Conv2DOptions{Padding: schema.PaddingSame, StrideW: 1, StrideH: 1, DilationW: 1, DilationH: 1, Activation: quant.ActRelu6}})
	dw := b.AddTensor(modelbuilder.Tensor{Name: "dw/w", Type: tensor.Float32, Shape: []int{1, 3, 3, 8}, Data: w(72, 0.33)})
	db := b.AddTensor(modelbuilder.Tensor{Name: "dw/b", Type: tensor.Float32, Shape: []int{8}, Data: w(8, 0.1)})
	d := b.AddTensor(modelbuilder.Tensor{Name: "dw", Type: tensor.Float32, Shape: []int{1, 16, 16, 8}})
	b.AddOp(modelbuilder.Op{Builtin: schema.OpDepthwiseConv2D, Inputs: []int{c, dw, db}, Outputs: []int{d},
		Options: &schema.DepthwiseConv2DOptions{Padding: schema.PaddingSame, StrideW: 1, StrideH: 1, DepthMultiplier: 1, DilationW: 1, DilationH: 1, Activation: quant.ActRelu6}})
	mp := b.AddTensor(modelbuilder.Tensor{Name: "maxpool", Type: tensor.Float32, Shape: []int{1, 8, 8, 8}})
	b.AddOp(modelbuilder.Op{Builtin: schema.OpMaxPool2D, Inputs: []int{d}, Outputs: []int{mp},
		Options: &schema.Pool2DOptions{Padding: schema.PaddingValid, StrideW: 2, StrideH: 2, FilterWidth: 2, FilterHeight: 2}})
	ap := b.AddTensor(modelbuilder.Tensor{Name: "avgpool", Type: tensor.Float32, Shape: []int{1, 4, 4, 8}})
	b.AddOp(modelbuilder.Op{Builtin: schema.OpAveragePool2D, Inputs: []int{mp}, Outputs: []int{ap},
		Options: &schema.Pool2DOptions{Padding: schema.PaddingValid, StrideW: 2, StrideH: 2, FilterWidth: 2, FilterHeight: 2}})
	shape := b.AddTensor(modelbuilder.Tensor{Name: "shape", Type: tensor.Int32, Shape: []int{2}, Data: i32bytes(1, 128)})
	flat := b.AddTensor(modelbuilder.Tensor{Name: "flat", Type: tensor.Float32, Shape: []int{1, 128}})
	b.AddOp(modelbuilder.Op{Builtin: schema.OpReshape, Inputs: []int{ap, shape}, Outputs: []int{flat},
		Options: &schema.ReshapeOptions{NewShape: []int{1, 128}}})
	fw := b.AddTensor(modelbuilder.Tensor{Name: "fc/w", Type: tensor.Float32, Shape: []int{10, 128}, Data: w(1280, 0.3)})
	fb := b.AddTensor(modelbuilder.Tensor{Name: "fc/b", Type: tensor.Float32, Shape: []int{10}, Data: w(10, 0.1)})
	logits := b.AddTensor(modelbuilder.Tensor{Name: "logits", Type: tensor.Float32, Shape: []int{1, 10}})
	b.AddOp(modelbuilder.Op{Builtin: schema.OpFullyConnected, Inputs: []int{flat, fw, fb}, Outputs: []int{logits},
		Options: &schema.FullyConnectedOptions{}})
	prob := b.AddTensor(modelbuilder.Tensor{Name: "probs", Type: tensor.Float32, Shape: []int{1, 10}})
	b.AddOp(modelbuilder.Op{Builtin: schema.OpSoftmax, Inputs: []int{logits}, Outputs: []int{prob},
		Options: &schema.SoftmaxOptions{Beta: 1}})
	b.SetIO([]int{in}, []int{prob})
	out, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func f32bytes(v []float32) []byte {
	var buf bytes.Buffer
	_ = binary.Write(&buf, binary.LittleEndian, v)
	return buf.Bytes()
}

func i32bytes(v ...int32) []byte {
	var buf bytes.Buffer
	_ = binary.Write(&buf, binary.LittleEndian, v)
	return buf.Bytes()
}

func samplesFor(t *testing.T, tm testModel, model []byte, n int, seed uint64) []Sample {
	m, err := inference.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 99))
	out := make([]Sample, n)
	for i := range out {
		for _, in := range m.Inputs() {
			out[i] = append(out[i], tm.sample(r, tensor.NumElements(in.Shape)))
		}
	}
	return out
}

// run runs model on one sample (real values, quantized as the model's
// inputs require) and returns the raw input bytes, raw output bytes and
// real outputs.
func run(t *testing.T, ip *inference.Interpreter, s Sample) (ins, outs [][]byte, real [][]float64) {
	t.Helper()
	for i, v := range s {
		vals := make([]float64, len(v))
		for k := range v {
			vals[k] = float64(v[k])
		}
		if err := ip.Input(i).SetReal(vals); err != nil {
			t.Fatal(err)
		}
		ins = append(ins, append([]byte(nil), ip.Input(i).Data...))
	}
	if err := ip.Invoke(); err != nil {
		t.Fatal(err)
	}
	for i := range ip.NumOutputs() {
		o := ip.Output(i)
		outs = append(outs, append([]byte(nil), o.Data...))
		r, err := o.Real()
		if err != nil {
			t.Fatal(err)
		}
		real = append(real, r)
	}
	return ins, outs, real
}

func argmax(v []float64) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}

// TestQuantizeModels quantizes every test model with every boundary type,
// checks the result runs in our runtime, matches TensorFlow Lite's outputs
// (goldens) byte for byte, and stays close to the float model.
func TestQuantizeModels(t *testing.T) {
	for _, tm := range testModels {
		t.Run(tm.name, func(t *testing.T) {
			floatModel := tm.model(t)
			calib := samplesFor(t, tm, floatModel, 200, 1)
			eval := samplesFor(t, tm, floatModel, 200, 2)
			ranges, err := Calibrate(floatModel, calib)
			if err != nil {
				t.Fatal(err)
			}
			fm, err := inference.Load(floatModel)
			if err != nil {
				t.Fatal(err)
			}
			fip, err := inference.NewInterpreter(fm)
			if err != nil {
				t.Fatal(err)
			}
			for _, io := range []tensor.DType{tensor.Int8, tensor.Uint8, tensor.Float32} {
				t.Run(io.String(), func(t *testing.T) {
					q, err := Quantize(floatModel, ranges, Options{IO: io})
					if err != nil {
						t.Fatal(err)
					}
					qm, err := inference.Load(q)
					if err != nil {
						t.Fatalf("quantized model does not load: %v", err)
					}
					for _, in := range qm.Inputs() {
						if in.Type != io {
							t.Fatalf("input %q is %s, want %s", in.Name, in.Type, io)
						}
					}
					for _, op := range qm.Schema().OperatorCodes {
						if want, ok := rules[op.Builtin]; ok && op.Version < want.version && !(op.Builtin == schema.OpTransposeConv) {
							t.Errorf("%s version %d, want >= %d", op.Name(), op.Version, want.version)
						}
					}
					qip, err := inference.NewInterpreter(qm)
					if err != nil {
						t.Fatal(err)
					}
					// (b) TensorFlow Lite's outputs, byte for byte.
					for k := range 2 {
						ins, outs, _ := run(t, qip, eval[k])
						want := kerneltest.Golden(t, fmt.Sprintf("%s_%s_%d", tm.name, io, k), q, ins)
						if len(want) != len(outs) {
							t.Fatalf("TensorFlow Lite gave %d outputs, we give %d", len(want), len(outs))
						}
						for i := range outs {
							if !bytes.Equal(outs[i], want[i]) {
								t.Errorf("sample %d output %d differs from TensorFlow Lite:\n got %v\nwant %v", k, i, outs[i], want[i])
							}
						}
					}
					// (c) accuracy against the float model.
					var maxErr, span float64
					agree := 0
					for _, s := range eval {
						_, _, fr := run(t, fip, s)
						_, _, qr := run(t, qip, s)
						for i := range fr {
							for k := range fr[i] {
								maxErr = max(maxErr, math.Abs(fr[i][k]-qr[i][k]))
								span = max(span, math.Abs(fr[i][k]))
							}
						}
						if argmax(fr[0]) == argmax(qr[0]) {
							agree++
						}
					}
					top1 := float64(agree) / float64(len(eval))
					t.Logf("%s io=%s: max abs error %.5f (max |float output| %.4f), top-1 agreement %.3f", tm.name, io, maxErr, span, top1)
					if maxErr > tm.maxRelErr*max(span, 1e-6) {
						t.Errorf("max abs error %.5f exceeds %.3f × %.4f", maxErr, tm.maxRelErr, span)
					}
					if tm.classifier && top1 < tm.minTop1 {
						t.Errorf("top-1 agreement %.3f below %.3f", top1, tm.minTop1)
					}
				})
			}
		})
	}
}
