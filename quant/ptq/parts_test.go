package ptq

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/modelbuilder"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
)

func TestActivationParams(t *testing.T) {
	for _, tc := range []struct {
		r     Range
		scale float64
		zp    int64
	}{
		{Range{0, 6}, 6.0 / 255, -128},
		{Range{-1, 1}, 2.0 / 255, -1},        // -0.5 rounds away from zero
		{Range{2, 4}, 4.0 / 255, -128},       // widened to include 0
		{Range{-3, -1}, 3.0 / 255, 127},      // widened to include 0
		{Range{-0.5, 2}, 2.5 / 255, -77},     // -128 + 0.5/(2.5/255) = -77
		{Range{0, 0}, 1, 0},                  // degenerate
		{Range{-2.55, 0.0}, 2.55 / 255, 127}, // all negative
	} {
		s, zp := ActivationParams(tc.r)
		if math.Abs(float64(s)-tc.scale) > 1e-7 || zp != tc.zp {
			t.Errorf("ActivationParams(%v) = %g, %d; want %g, %d", tc.r, s, zp, tc.scale, tc.zp)
		}
		// The range must stay representable after nudging (within a step).
		lo, hi := float64(s)*float64(-128-zp), float64(s)*float64(127-zp)
		if lo > min(tc.r.Min, 0)+float64(s) || hi < max(tc.r.Max, 0)-float64(s) {
			t.Errorf("%v: representable range [%g, %g] loses the calibrated range", tc.r, lo, hi)
		}
	}
}

func TestQuantizeWeightsPerChannel(t *testing.T) {
	w := modelbuilder.Tensor{Name: "w", Type: tensor.Float32, Shape: []int{2, 1, 1, 3},
		Data: f32bytes([]float32{1, -0.5, 0.25, 0.01, -0.02, 0})}
	if err := quantizeWeights(&w, schema.OpConv2D, false); err != nil {
		t.Fatal(err)
	}
	if w.Type != tensor.Int8 || len(w.Quant.Scale) != 2 || w.Quant.Dim != 0 {
		t.Fatalf("got %s with %d scales dim %d", w.Type, len(w.Quant.Scale), w.Quant.Dim)
	}
	want := []int8{127, -64, 32, 63, -127, 0} // 0.01/(0.02/127) is 63.4999 in float32
	for i, v := range tensor.View[int8](w.Data) {
		if v != want[i] {
			t.Errorf("weight %d = %d, want %d", i, v, want[i])
		}
	}
	if s := w.Quant.Scale[1]; math.Abs(float64(s)-0.02/127) > 1e-9 {
		t.Errorf("channel 1 scale %g, want %g", s, 0.02/127)
	}
	b := modelbuilder.Tensor{Name: "b", Type: tensor.Float32, Shape: []int{2}, Data: f32bytes([]float32{0.5, -0.001})}
	if err := quantizeBias(&b, 0.1, w.Quant); err != nil {
		t.Fatal(err)
	}
	bv := tensor.View[int32](b.Data)
	if b.Type != tensor.Int32 || bv[0] != int32(math.Round(0.5/(0.1/127))) || bv[1] != int32(math.Round(-0.001/(0.1*0.02/127))) {
		t.Errorf("bias %v (%s)", bv, b.Type)
	}
	// Depthwise weights use the last dimension.
	d := modelbuilder.Tensor{Name: "d", Type: tensor.Float32, Shape: []int{1, 1, 2, 2}, Data: f32bytes([]float32{1, 2, -1, 4})}
	if err := quantizeWeights(&d, schema.OpDepthwiseConv2D, false); err != nil {
		t.Fatal(err)
	}
	if d.Quant.Dim != 3 || d.Quant.Scale[0] != 1.0/127 || d.Quant.Scale[1] != 4.0/127 {
		t.Errorf("depthwise quant %+v", d.Quant)
	}
}

// TestUnsupportedOp checks that a float op the quantizer cannot convert is
// named with its node.
func TestUnsupportedOp(t *testing.T) {
	b := modelbuilder.New()
	in := b.AddTensor(modelbuilder.Tensor{Name: "x", Type: tensor.Float32, Shape: []int{1, 4}})
	r := b.AddTensor(modelbuilder.Tensor{Name: "r", Type: tensor.Float32, Shape: []int{1, 4}})
	e := b.AddTensor(modelbuilder.Tensor{Name: "e", Type: tensor.Float32, Shape: []int{1, 4}})
	b.AddOp(modelbuilder.Op{Builtin: schema.OpRelu, Inputs: []int{in}, Outputs: []int{r}})
	b.AddOp(modelbuilder.Op{Builtin: schema.OpExp, Inputs: []int{r}, Outputs: []int{e}})
	b.SetIO([]int{in}, []int{e})
	model, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	ranges, err := Calibrate(model, []Sample{{{-1, 0, 1, 2}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := ranges[r]; got != (Range{0, 2}) {
		t.Errorf("relu output range %v, want [0 2]", got)
	}
	_, err = Quantize(model, ranges, Options{IO: tensor.Int8})
	var ue *UnsupportedOpError
	if !errors.As(err, &ue) || ue.Op != "EXP" || ue.Node != 1 {
		t.Fatalf("got %v, want an UnsupportedOpError for EXP at node 1", err)
	}
	if !strings.Contains(err.Error(), "node 1") || !strings.Contains(err.Error(), "EXP") {
		t.Errorf("error %q does not name the op and node", err)
	}
}

func TestQuantizeRejectsMissingRanges(t *testing.T) {
	model := buildCNN(t)
	if _, err := Quantize(model, Ranges{}, Options{IO: tensor.Int8}); err == nil || !strings.Contains(err.Error(), "no calibrated range") {
		t.Fatalf("got %v, want a missing-range error", err)
	}
}

// TestPerTensor quantizes the CNN with per-tensor weights and compares with
// TensorFlow Lite.
func TestPerTensor(t *testing.T) {
	tm := testModels[len(testModels)-1]
	model := buildCNN(t)
	ranges, err := Calibrate(model, samplesFor(t, tm, model, 100, 1))
	if err != nil {
		t.Fatal(err)
	}
	q, err := Quantize(model, ranges, Options{IO: tensor.Int8, PerTensor: true})
	if err != nil {
		t.Fatal(err)
	}
	qm, err := inference.Load(q)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range qm.Schema().Subgraphs[0].Tensors {
		if st.Type == tensor.Int8 && st.Quant.PerChannel() {
			t.Fatalf("tensor %q is per channel", st.Name)
		}
	}
	ip, err := inference.NewInterpreter(qm)
	if err != nil {
		t.Fatal(err)
	}
	ins, outs, _ := run(t, ip, samplesFor(t, tm, model, 1, 3)[0])
	want := kerneltest.Golden(t, "float_cnn_per_tensor", q, ins)
	if !bytes.Equal(outs[0], want[0]) {
		t.Errorf("differs from TensorFlow Lite:\n got %v\nwant %v", outs[0], want[0])
	}
}

func TestParseNDJSON(t *testing.T) {
	one := []tensor.Info{{Name: "x", Type: tensor.Float32, Shape: []int{1, 2, 2}}}
	two := []tensor.Info{{Name: "a", Shape: []int{2}}, {Name: "b", Shape: []int{1}}}
	for _, tc := range []struct {
		name   string
		in     string
		inputs []tensor.Info
		want   []Sample
		err    string
	}{
		{"nested", "[[[1,2],[3,4]]]\n\n[5,6,7,8]\n", one, []Sample{{{1, 2, 3, 4}}, {{5, 6, 7, 8}}}, ""},
		{"two inputs", "[[1,2],[3]]\n[[4,5],[[6]]]", two, []Sample{{{1, 2}, {3}}, {{4, 5}, {6}}}, ""},
		{"too few", "[1,2,3]", one, nil, "line 1 input 0 (\"x\"): got 3 values, expected 4"},
		{"too many", "[1,2,3,4,5]", one, nil, "more than the 4 values expected"},
		{"ragged", "[[1],[2,3],[4]]", one, []Sample{{{1, 2, 3, 4}}}, ""},
		{"boolean", "[1,2,true,4]", one, nil, "expected numbers"},
		{"string", "[1,2,\"a\",4]", one, nil, "expected numbers"},
		{"wrong arity", "[[1,2]]", two, nil, "one per model input"},
		{"bad json", "[1,2,\n", one, nil, "line 1"},
		{"empty", "\n\n", one, nil, "no samples"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseNDJSON(strings.NewReader(tc.in), tc.inputs)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func FuzzParseNDJSON(f *testing.F) {
	for _, s := range []string{"[[[1,2],[3,4]]]\n", "[1,2,3,4]\n[5,6,7,8]", "[[1,2],[3]]", "[", "{}", "[1e400,2,3,4]", "[[[[[[]]]]]]", "null\n[1,2,3,4]"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, in string, multi bool) {
		inputs := []tensor.Info{{Name: "x", Shape: []int{1, 4}}}
		if multi {
			inputs = []tensor.Info{{Name: "a", Shape: []int{2}}, {Name: "b", Shape: []int{1}}}
		}
		samples, err := ParseNDJSON(strings.NewReader(in), inputs)
		if err != nil {
			return
		}
		for _, s := range samples {
			if len(s) != len(inputs) {
				t.Fatalf("sample has %d inputs", len(s))
			}
			for i := range s {
				if len(s[i]) != tensor.NumElements(inputs[i].Shape) {
					t.Fatalf("input %d has %d values", i, len(s[i]))
				}
			}
		}
	})
}

func TestLoadCalibration(t *testing.T) {
	inputs := []tensor.Info{{Name: "x", Type: tensor.Float32, Shape: []int{1, 2}}}
	dir := t.TempDir()
	// One sample directory and one loose .bin file.
	if err := os.MkdirAll(filepath.Join(dir, "case_0"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(p string, v ...float32) {
		if err := os.WriteFile(p, f32bytes(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "case_0", "input_0.bin"), 1, 2)
	write(filepath.Join(dir, "b.bin"), 3, 4)
	got, err := LoadCalibration(dir, inputs)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint([]Sample{{{3, 4}}, {{1, 2}}}) {
		t.Errorf("got %v", got)
	}
	write(filepath.Join(dir, "short.bin"), 1)
	if _, err := LoadCalibration(dir, inputs); err == nil || !strings.Contains(err.Error(), "4 bytes, expected 8") {
		t.Errorf("short file: got %v", err)
	}
	if _, err := LoadCalibration(t.TempDir(), inputs); err == nil || !strings.Contains(err.Error(), "no samples") {
		t.Errorf("empty dir: got %v", err)
	}
}

func TestRandomSamplesUseMetadata(t *testing.T) {
	inputs := []tensor.Info{{Shape: []int{1, 100}}, {Shape: []int{3}}}
	md := &inference.Metadata{Inputs: []inference.TensorMetadata{{Mean: []float32{127.5}, Std: []float32{127.5}}}}
	s := RandomSamples(inputs, md, 5, 1)
	if len(s) != 5 || len(s[0]) != 2 || len(s[0][0]) != 100 || len(s[0][1]) != 3 {
		t.Fatalf("bad sample layout")
	}
	for _, v := range s[0][0] {
		if v < -1 || v > 1 {
			t.Fatalf("value %g outside the normalized range [-1, 1]", v)
		}
	}
	if fmt.Sprint(RandomSamples(inputs, md, 2, 9)) != fmt.Sprint(RandomSamples(inputs, md, 2, 9)) {
		t.Error("same seed gave different samples")
	}
}

// TestRun runs the whole file-based flow as `edge-agent quantize` does.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	var nd strings.Builder
	r := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		fmt.Fprintf(&nd, "[[%g, %g, %g, %g]]\n", r.Float64()*8, r.Float64()*8, r.Float64()*8, r.Float64()*8)
	}
	cal := filepath.Join(dir, "cal.ndjson")
	if err := os.WriteFile(cal, []byte(nd.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	model := filepath.Join("..", "..", "testdata", "conformance", "iris", "model.tflite")
	for _, tc := range []struct {
		cfg  Config
		want tensor.DType
		err  string
	}{
		{Config{ModelPath: model, Calibration: cal, IO: "uint8"}, tensor.Uint8, ""},
		{Config{ModelPath: model, Random: 20, IO: "float32"}, tensor.Float32, ""},
		{Config{ModelPath: model, Random: 20, IO: "int16"}, 0, "expected int8, uint8 or float32"},
		{Config{ModelPath: model, IO: "int8"}, 0, "exactly one of"},
		{Config{ModelPath: filepath.Join(dir, "missing.tflite"), Random: 1}, 0, "no such file"},
	} {
		tc.cfg.OutputPath = filepath.Join(dir, "out.tflite")
		res, err := Run(tc.cfg)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v: got %v, want %q", tc.cfg, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		m, err := inference.LoadFile(tc.cfg.OutputPath)
		if err != nil {
			t.Fatal(err)
		}
		if m.Inputs()[0].Type != tc.want || res.Bytes == 0 || res.Samples == 0 {
			t.Errorf("%+v: input %s, result %+v", tc.cfg, m.Inputs()[0].Type, res)
		}
	}
}

// TestQuantizedStructure checks the converter's rules on every test model:
// data-movement ops share their input's parameters, SOFTMAX/LOGISTIC/TANH
// outputs have TensorFlow Lite's fixed parameters, weights are symmetric
// int8 in [-127, 127] per output channel and biases are int32 with scale
// input_scale × weight_scale[c].
func TestQuantizedStructure(t *testing.T) {
	for _, tm := range testModels {
		t.Run(tm.name, func(t *testing.T) {
			model := tm.model(t)
			ranges, err := Calibrate(model, samplesFor(t, tm, model, 50, 1))
			if err != nil {
				t.Fatal(err)
			}
			q, err := Quantize(model, ranges, Options{IO: tensor.Int8})
			if err != nil {
				t.Fatal(err)
			}
			m, err := schema.Parse(q)
			if err != nil {
				t.Fatal(err)
			}
			sg := &m.Subgraphs[0]
			qp := func(i int) params {
				tq := sg.Tensors[i].Quant
				if tq == nil || len(tq.Scale) != 1 {
					t.Fatalf("tensor %q: want per-tensor parameters, got %+v", sg.Tensors[i].Name, tq)
				}
				return params{tq.Scale[0], tq.ZeroPoint[0]}
			}
			requantized := 0
			for oi, op := range sg.Operators {
				code := m.OperatorCodes[op.OpcodeIndex]
				for _, ti := range append(append([]int(nil), op.Inputs...), op.Outputs...) {
					if ti >= 0 && sg.Tensors[ti].Type == tensor.Float32 {
						t.Errorf("node %d (%s): tensor %q is still float32", oi, code.Name(), sg.Tensors[ti].Name)
					}
				}
				r := rules[code.Builtin]
				switch {
				case code.Builtin == schema.OpQuantize:
					requantized++
				case r.kind == kindFixed:
					if got := qp(op.Outputs[0]); got != (params{r.fixedScale, r.fixedZP}) {
						t.Errorf("node %d (%s): output %+v, want fixed %v/%d", oi, code.Name(), got, r.fixedScale, r.fixedZP)
					}
				case r.kind == kindSame:
					want := qp(op.Outputs[0])
					for _, in := range op.Inputs {
						if in >= 0 && sg.Tensors[in].Type == tensor.Int8 && qp(in) != want {
							t.Errorf("node %d (%s): input %q %+v differs from output %+v", oi, code.Name(), sg.Tensors[in].Name, qp(in), want)
						}
					}
				case r.kind == kindWeights:
					w := sg.Tensors[op.Inputs[1]]
					if len(w.Quant.Scale) != w.Shape[channelDim(code.Builtin)] {
						t.Errorf("node %d: %d weight scales for shape %v", oi, len(w.Quant.Scale), w.Shape)
					}
					for _, v := range tensor.View[int8](m.BufferData(&w)) {
						if v == -128 {
							t.Fatalf("node %d: weight -128 outside the symmetric range", oi)
						}
					}
					bias := sg.Tensors[op.Inputs[2]]
					in := qp(op.Inputs[0])
					for c, bs := range bias.Quant.Scale {
						if bias.Type != tensor.Int32 || bias.Quant.ZeroPoint[c] != 0 || math.Abs(float64(bs-in.scale*w.Quant.Scale[c])) > 1e-12 {
							t.Errorf("node %d: bias channel %d scale %g, want %g", oi, c, bs, in.scale*w.Quant.Scale[c])
						}
					}
				}
			}
			if tm.name == "float_branches" && requantized != 1 {
				t.Errorf("want one requantize of the TANH output before CONCATENATION, got %d", requantized)
			}
		})
	}
}
