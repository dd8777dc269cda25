package zoo

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
)

// The zoo tests run every zoo model through the runtime and compare its
// outputs with TensorFlow Lite's builtin kernels (XNNPACK off), stored in
// testdata/golden/<model>/ (regenerate with -args -update-goldens; that
// needs node and ../shared/tflite-reference installed, see kerneltest).
//
// Integer outputs must match byte for byte; float32 outputs within
// floatTolerance × max|expected| (summation order differs).
//
// When a model diverges, -args -zoo-diagnose=<regexp> rebuilds the
// matching models with every operator output exposed, runs them through
// TensorFlow Lite and the runtime, and logs each operator's agreement:
// the first operator whose output differs is the culprit (FINDINGS.md).

const floatTolerance = 1e-5

var diagnose = flag.String("zoo-diagnose", "", "regexp of zoo models to diagnose op by op against the real TensorFlow Lite (needs node)")

// run loads model and invokes it once on inputs, returning each output.
func run(t testing.TB, model []byte, inputs [][]byte) []*tensor.Tensor {
	t.Helper()
	m, err := inference.Load(model)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	ip, err := inference.NewInterpreter(m)
	if err != nil {
		t.Fatalf("new interpreter: %v", err)
	}
	for i, b := range inputs {
		if err := ip.SetInput(i, b); err != nil {
			t.Fatalf("input %d: %v", i, err)
		}
	}
	if err := ip.Invoke(); err != nil {
		t.Fatalf("invoke: %v", err)
	}
	outs := make([]*tensor.Tensor, ip.NumOutputs())
	for i := range outs {
		o := ip.Output(i)
		outs[i] = &tensor.Tensor{Name: o.Name, Type: o.Type, Shape: append([]int(nil), o.Shape...), Data: append([]byte(nil), o.Data...), Quant: o.Quant}
	}
	return outs
}

// values decodes raw little-endian data of dtype dt.
func values(dt tensor.DType, b []byte) []float64 {
	n := len(b) / max(1, dt.Size())
	v := make([]float64, n)
	for i := range v {
		switch dt {
		case tensor.Float32:
			v[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
		case tensor.Int8:
			v[i] = float64(int8(b[i]))
		case tensor.Uint8:
			v[i] = float64(b[i])
		case tensor.Int16:
			v[i] = float64(int16(binary.LittleEndian.Uint16(b[2*i:])))
		case tensor.Int32:
			v[i] = float64(int32(binary.LittleEndian.Uint32(b[4*i:])))
		case tensor.Int64:
			v[i] = float64(int64(binary.LittleEndian.Uint64(b[8*i:])))
		case tensor.Bool:
			v[i] = float64(b[i])
		}
	}
	return v
}

// diff compares got with want: nil when they agree (exactly for integer
// dtypes, within the tolerance for float32), else a description.
func diff(got *tensor.Tensor, want []byte) error {
	if len(got.Data) != len(want) {
		return fmt.Errorf("%d bytes, expected %d", len(got.Data), len(want))
	}
	g, w := values(got.Type, got.Data), values(got.Type, want)
	tol := 0.0
	if got.Type == tensor.Float32 {
		m := 0.0
		for _, x := range w {
			m = math.Max(m, math.Abs(x))
		}
		tol = floatTolerance * math.Max(m, 1e-30)
	}
	n, worst, first := 0, 0.0, -1
	for i := range w {
		d := math.Abs(g[i] - w[i])
		if d > tol || math.IsNaN(g[i]) != math.IsNaN(w[i]) {
			n++
			if first < 0 {
				first = i
			}
			worst = math.Max(worst, d)
		}
	}
	if n == 0 {
		return nil
	}
	unit := "steps"
	if got.Type == tensor.Float32 {
		unit = fmt.Sprintf("(tolerance %.3g)", tol)
	}
	return fmt.Errorf("%d of %d elements differ, max |diff| %.6g %s; first at %d: got %v want %v; got %v want %v",
		n, len(w), worst, unit, first, g[first], w[first], head(g, first), head(w, first))
}

func head(v []float64, from int) []float64 {
	from = max(0, from-2)
	return v[from:min(len(v), from+8)]
}

// TestZoo runs every zoo model (one subtest each) on each of its input
// sets and compares the outputs with TensorFlow Lite's. All sets run on
// one interpreter in turn (variables reset in between), so state left
// behind by an earlier Invoke shows up as a mismatch. A model with an op
// the runtime lacks fails at load.
func TestZoo(t *testing.T) {
	for _, e := range All() {
		t.Run(e.Name, func(t *testing.T) {
			m, err := e.Build()
			if err != nil {
				t.Fatal(err)
			}
			if m.Name != e.Name {
				t.Fatalf("built %q, listed as %q", m.Name, e.Name)
			}
			model, err := inference.Load(m.Bytes)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			ip, err := inference.NewInterpreter(model)
			if err != nil {
				t.Fatalf("new interpreter: %v", err)
			}
			for k, ins := range m.InputSets() {
				c := caseModel(m, k)
				want := golden(t, c)
				ip.ResetVariables()
				for i, b := range ins {
					if err := ip.SetInput(i, b); err != nil {
						t.Fatalf("case %d: input %d: %v", k, i, err)
					}
				}
				if err := ip.Invoke(); err != nil {
					t.Fatalf("case %d: invoke: %v", k, err)
				}
				if ip.NumOutputs() != len(want) {
					t.Fatalf("%d outputs, TensorFlow Lite gave %d", ip.NumOutputs(), len(want))
				}
				for i := 0; i < ip.NumOutputs(); i++ {
					o := ip.Output(i)
					if err := diff(o, want[i]); err != nil {
						t.Errorf("case %d: output %d %q (%s%v): %v", k, i, o.Name, o.Type, o.Shape, err)
					}
				}
			}
		})
	}
}

// caseModel is m with input set k as its Inputs, named for its golden
// directory (case 0 keeps the model's own).
func caseModel(m *Model, k int) *Model {
	if k == 0 {
		return m
	}
	return &Model{Name: fmt.Sprintf("%s/case_%d", m.Name, k), Bytes: m.Bytes, Inputs: m.InputSets()[k]}
}

// golden returns TensorFlow Lite's outputs for m (kerneltest.Golden).
// Only the outputs and a fingerprint of the model and inputs are kept in
// testdata (the builders recreate both), so the goldens stay small; a
// builder whose output changed fails until the goldens are regenerated.
func golden(t *testing.T, m *Model) [][]byte {
	t.Helper()
	dir := filepath.Join("testdata", "golden", m.Name)
	fp := filepath.Join(dir, "model.sha256")
	h := sha256.New()
	h.Write(m.Bytes)
	for _, in := range m.Inputs {
		h.Write(in)
	}
	sum := hex.EncodeToString(h.Sum(nil)) + "\n"
	update := flagSet("update-goldens")
	if !update {
		stored, err := os.ReadFile(fp)
		if err != nil {
			t.Fatalf("no goldens for %s (%v): run the test with -args -update-goldens", m.Name, err)
		}
		if string(stored) != sum {
			t.Fatalf("%s: the builder's model or inputs changed since the goldens were made: regenerate them with -args -update-goldens", m.Name)
		}
	}
	if update {
		useZooReference(t)
	}
	want := kerneltest.Golden(t, m.Name, m.Bytes, m.Inputs)
	if update {
		if err := os.WriteFile(fp, []byte(sum), 0o644); err != nil {
			t.Fatal(err)
		}
		extra, _ := filepath.Glob(filepath.Join(dir, "input_*.bin"))
		for _, f := range append(extra, filepath.Join(dir, "model.tflite")) {
			os.Remove(f)
		}
	}
	return want
}

// useZooReference points kerneltest at testdata/reference/run.mjs, which
// reads outputs correctly when TensorFlow Lite re-plans memory during
// Invoke (dynamic tensors); it loads the TensorFlow Lite build from the
// usual reference directory.
func useZooReference(t *testing.T) {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "reference"))
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("ZOO_TFLITE_REFERENCE") == "" {
		t.Setenv("ZOO_TFLITE_REFERENCE", kerneltest.ReferenceDir())
	}
	t.Setenv("EDGEFLEET_TFLITE_REFERENCE", dir)
}

func flagSet(name string) bool {
	f := flag.Lookup(name)
	return f != nil && f.Value.String() == "true"
}

// TestZooDeterministic checks that building a model twice gives the same
// bytes (goldens depend on it).
func TestZooDeterministic(t *testing.T) {
	for _, e := range All() {
		a, err := e.Build()
		if err != nil {
			t.Fatalf("%s: %v", e.Name, err)
		}
		b, _ := e.Build()
		if !bytes.Equal(a.Bytes, b.Bytes) || len(a.Inputs) != len(b.Inputs) {
			t.Errorf("%s: two builds differ", e.Name)
		}
	}
}

// TestZooModes checks that builders reject modes TensorFlow Lite cannot run.
func TestZooModes(t *testing.T) {
	if _, err := BuildDeepLab(Int16x8); err == nil {
		t.Error("BuildDeepLab(Int16x8): no error")
	}
	if _, err := BuildTextLSTM(Uint8); err == nil {
		t.Error("BuildTextLSTM(Uint8): no error")
	}
}

// TestZooRepeatable invokes each model three times on one interpreter
// (resetting variable state in between) and twice more from two goroutines
// sharing the Model: every run must still equal TensorFlow Lite's first
// Invoke. It catches stale arena contents, state that leaks across
// Invokes, and weights packed into shared memory.
func TestZooRepeatable(t *testing.T) {
	for _, e := range All() {
		t.Run(e.Name, func(t *testing.T) {
			m, err := e.Build()
			if err != nil {
				t.Fatal(err)
			}
			want := golden(t, m)
			model, err := inference.Load(m.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			check := func(ip *inference.Interpreter, what string) error {
				for i, b := range m.Inputs {
					if err := ip.SetInput(i, b); err != nil {
						return err
					}
				}
				if err := ip.Invoke(); err != nil {
					return err
				}
				for i := 0; i < ip.NumOutputs(); i++ {
					if err := diff(ip.Output(i), want[i]); err != nil {
						return fmt.Errorf("%s: output %d: %v", what, i, err)
					}
				}
				return nil
			}
			ip, err := inference.NewInterpreter(model)
			if err != nil {
				t.Fatal(err)
			}
			for k := 0; k < 3; k++ {
				if err := check(ip, fmt.Sprintf("invoke %d", k+1)); err != nil {
					t.Fatal(err)
				}
				ip.ResetVariables()
			}
			if hasVariables(model) {
				// State must carry over: a second Invoke without a reset
				// sees the first one's memory.
				if err := check(ip, "first"); err != nil {
					t.Fatal(err)
				}
				if err := check(ip, "second without reset"); err == nil {
					t.Error("second Invoke without ResetVariables equals the first: variable state did not persist")
				}
				ip.ResetVariables()
				if err := check(ip, "after reset"); err != nil {
					t.Fatal(err)
				}
			}
			errs := make(chan error, 2)
			for k := 0; k < 2; k++ {
				go func() {
					ip, err := inference.NewInterpreter(model)
					if err == nil {
						err = check(ip, fmt.Sprintf("goroutine %d", k))
					}
					errs <- err
				}()
			}
			for k := 0; k < 2; k++ {
				if err := <-errs; err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func hasVariables(m *inference.Model) bool {
	for _, t := range m.Schema().Subgraphs[0].Tensors {
		if t.IsVariable {
			return true
		}
	}
	return false
}

// TestZooResizeBatch resizes the batch of the models without a fixed
// batch in their graph to 3, feeds the golden input three times, and checks
// every batch element equals TensorFlow Lite's batch-1 output.
func TestZooResizeBatch(t *testing.T) {
	for _, name := range []string{"mobilenetv2_int8", "mobilenetv2_float32", "mobilenetv3_int8", "deeplab_uint8", "superres_int8", "text_avgpool_int8"} {
		t.Run(name, func(t *testing.T) {
			var e Entry
			for _, x := range All() {
				if x.Name == name {
					e = x
				}
			}
			m, err := e.Build()
			if err != nil {
				t.Fatal(err)
			}
			want := golden(t, m)
			model, err := inference.Load(m.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			ip, err := inference.NewInterpreter(model)
			if err != nil {
				t.Fatal(err)
			}
			const batch = 3
			shape := append([]int{batch}, ip.Input(0).Shape[1:]...)
			if err := ip.ResizeInput(0, shape); err != nil {
				t.Fatal(err)
			}
			if err := ip.AllocateTensors(); err != nil {
				t.Fatal(err)
			}
			if err := ip.SetInput(0, bytes.Repeat(m.Inputs[0], batch)); err != nil {
				t.Fatal(err)
			}
			if err := ip.Invoke(); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < ip.NumOutputs(); i++ {
				o := ip.Output(i)
				if o.Shape[0] != batch || len(o.Data) != batch*len(want[i]) {
					t.Fatalf("output %d: shape %v, %d bytes; want batch %d of %d bytes", i, o.Shape, len(o.Data), batch, len(want[i]))
				}
				n := len(want[i])
				for b := 0; b < batch; b++ {
					part := &tensor.Tensor{Name: o.Name, Type: o.Type, Data: o.Data[b*n : (b+1)*n]}
					if err := diff(part, want[i]); err != nil {
						t.Errorf("output %d batch %d: %v", i, b, err)
					}
				}
			}
		})
	}
}

// TestZooThreads runs every model with 2 and 3 kernel goroutines: work
// split across threads must not change a single bit.
func TestZooThreads(t *testing.T) {
	for _, e := range All() {
		t.Run(e.Name, func(t *testing.T) {
			m, err := e.Build()
			if err != nil {
				t.Fatal(err)
			}
			want := golden(t, m)
			model, err := inference.Load(m.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []int{2, 3} {
				ip, err := inference.NewInterpreter(model, inference.WithThreads(n))
				if err != nil {
					t.Fatal(err)
				}
				for i, b := range m.Inputs {
					if err := ip.SetInput(i, b); err != nil {
						t.Fatal(err)
					}
				}
				if err := ip.Invoke(); err != nil {
					t.Fatal(err)
				}
				for i := 0; i < ip.NumOutputs(); i++ {
					if err := diff(ip.Output(i), want[i]); err != nil {
						t.Errorf("%d threads: output %d: %v", n, i, err)
					}
				}
			}
		})
	}
}

// TestZooInvokeDoesNotAllocate checks the steady-state Invoke of every
// zoo model allocates nothing.
func TestZooInvokeDoesNotAllocate(t *testing.T) {
	for _, e := range All() {
		t.Run(e.Name, func(t *testing.T) {
			ip := interpreter(t, e)
			if n := testing.AllocsPerRun(5, func() {
				if err := ip.Invoke(); err != nil {
					t.Fatal(err)
				}
			}); n != 0 {
				t.Errorf("Invoke allocates %v times", n)
			}
		})
	}
}

func interpreter(t testing.TB, e Entry) *inference.Interpreter {
	t.Helper()
	m, err := e.Build()
	if err != nil {
		t.Fatal(err)
	}
	model, err := inference.Load(m.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ip, err := inference.NewInterpreter(model)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range m.Inputs {
		if err := ip.SetInput(i, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := ip.Invoke(); err != nil {
		t.Fatal(err)
	}
	return ip
}

// BenchmarkZoo times one Invoke of each zoo model (single thread).
func BenchmarkZoo(b *testing.B) {
	for _, e := range All() {
		b.Run(e.Name, func(b *testing.B) {
			ip := interpreter(b, e)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := ip.Invoke(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestZooDiagnose (with -args -zoo-diagnose=<regexp>) compares every
// operator output of the matching models with TensorFlow Lite's and logs
// the agreement op by op. It needs node and the reference runner.
func TestZooDiagnose(t *testing.T) {
	if *diagnose == "" {
		t.Skip("diagnostic tool: run with -args -zoo-diagnose=<model regexp>")
	}
	re := regexp.MustCompile(*diagnose)
	debugAllOutputs = true
	defer func() { debugAllOutputs = false }()
	for _, e := range All() {
		if !re.MatchString(e.Name) {
			continue
		}
		t.Run(e.Name, func(t *testing.T) {
			m, err := e.Build()
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := inference.Load(m.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			ops := parsed.Schema().Subgraphs[0].Operators
			for ci := range m.InputSets() {
				c := caseModel(m, ci)
				want := reference(t, c)
				got := run(t, c.Bytes, c.Inputs)
				if len(want) != len(got) {
					t.Fatalf("%d outputs, TensorFlow Lite gave %d", len(got), len(want))
				}
				k := 0
				for oi, op := range ops {
					for range op.Outputs {
						status := "ok"
						if err := diff(got[k], want[k]); err != nil {
							status = "DIFFERS: " + err.Error()
						}
						t.Logf("case %d op %2d %-24v -> %-24q %s%v: %s", ci, oi, opName(parsed, op.OpcodeIndex), got[k].Name, got[k].Type, got[k].Shape, status)
						k++
					}
				}
			}
		})
	}
}

func opName(m *inference.Model, idx int) string {
	codes := m.Schema().OperatorCodes
	if idx < 0 || idx >= len(codes) {
		return "?"
	}
	return codes[idx].Name()
}

// reference runs m through the real TensorFlow Lite.
func reference(t *testing.T, m *Model) [][]byte {
	t.Helper()
	useZooReference(t)
	dir := t.TempDir()
	mp := filepath.Join(dir, "model.tflite")
	if err := os.WriteFile(mp, m.Bytes, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{filepath.Join(kerneltest.ReferenceDir(), "run.mjs"), "--model", mp, "--xnnpack", "off", "--repeat", "1", "--warmup", "0", "--outdir", filepath.Join(dir, "out")}
	for i, in := range m.Inputs {
		p := filepath.Join(dir, fmt.Sprintf("in%d.bin", i))
		if err := os.WriteFile(p, in, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--input", p)
	}
	if msg, err := exec.Command("node", args...).CombinedOutput(); err != nil {
		t.Fatalf("reference: %v\n%s", err, msg)
	}
	var outs [][]byte
	for i := 0; ; i++ {
		b, err := os.ReadFile(filepath.Join(dir, "out", fmt.Sprintf("out%d.bin", i)))
		if err != nil {
			break
		}
		outs = append(outs, b)
	}
	return outs
}
