package ptq

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/jsonnum"
)

// Sample is one representative input: one flattened row-major float32
// slice per model input, in input order.
type Sample [][]float32

// Range is the observed [Min, Max] of a tensor's real values.
type Range struct{ Min, Max float64 }

func (r *Range) add(v float64) {
	r.Min, r.Max = min(r.Min, v), max(r.Max, v)
}

func (r Range) union(o Range) Range { return Range{min(r.Min, o.Min), max(r.Max, o.Max)} }

// Ranges maps a tensor index of the primary subgraph to its calibrated
// range.
type Ranges map[int]Range

// maxLineBytes bounds one NDJSON calibration line.
const maxLineBytes = 64 << 20

// Calibrate runs the float model on every sample and records the min/max of
// every float32 activation tensor (inputs, intermediates and outputs). The
// runtime is not instrumented: a copy of the model that lists every
// intermediate tensor as a subgraph output is built and run instead.
func Calibrate(model []byte, samples []Sample) (Ranges, error) {
	return calibrate(model, samples)
}

// calibrate is Calibrate with interpreter options (the fuzz target bounds
// memory with them).
func calibrate(model []byte, samples []Sample, opts ...inference.Option) (Ranges, error) {
	if len(samples) == 0 {
		return nil, errors.New("calibrate: no calibration samples")
	}
	m, err := schema.Parse(model)
	if err != nil {
		return nil, fmt.Errorf("calibrate: %w", err)
	}
	b, err := toBuilder(m)
	if err != nil {
		return nil, fmt.Errorf("calibrate: %w", err)
	}
	sg := &m.Subgraphs[0]
	isInput := map[int]bool{}
	for _, i := range sg.Inputs {
		isInput[i] = true
	}
	var watched []int
	seen := map[int]bool{}
	for _, op := range sg.Operators {
		for _, o := range op.Outputs {
			if o >= 0 && !seen[o] && !isInput[o] && isActivation(m, sg, o) {
				seen[o] = true
				watched = append(watched, o)
			}
		}
	}
	b.Main().Outputs = watched
	calBytes, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("calibrate: build instrumented model: %w", err)
	}
	cm, err := inference.Load(calBytes)
	if err != nil {
		return nil, fmt.Errorf("calibrate: load instrumented model: %w", err)
	}
	// Portable float sums: the same calibration ranges, and so the same
	// quantized model, on every CPU.
	ip, err := inference.NewInterpreter(cm, append(slices.Clip(opts), inference.WithPortableFloat())...)
	if err != nil {
		return nil, fmt.Errorf("calibrate: %w", err)
	}
	ranges := Ranges{}
	observe := func(ti int, vals []float32) {
		r, ok := ranges[ti]
		if !ok {
			r = Range{math.Inf(1), math.Inf(-1)}
		}
		for _, v := range vals {
			if !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) {
				r.add(float64(v))
			}
		}
		ranges[ti] = r
	}
	for si, s := range samples {
		if len(s) != len(sg.Inputs) {
			return nil, fmt.Errorf("calibrate: sample %d has %d inputs, model has %d", si, len(s), len(sg.Inputs))
		}
		for i, ti := range sg.Inputs {
			in := ip.Input(i)
			if in.Type != tensor.Float32 {
				return nil, fmt.Errorf("calibrate: input %d (%q) is %s: the quantizer expects a float32 model", i, in.Name, in.Type)
			}
			if len(s[i]) != in.NumElements() {
				return nil, fmt.Errorf("calibrate: sample %d input %d (%q): got %d values, expected %d for shape %s", si, i, in.Name, len(s[i]), in.NumElements(), tensor.ShapeString(in.Shape))
			}
			copy(in.Float32s(), s[i])
			observe(ti, s[i])
		}
		if err := ip.Invoke(); err != nil {
			return nil, fmt.Errorf("calibrate: sample %d: %w", si, err)
		}
		for oi, ti := range watched {
			observe(ti, ip.Output(oi).Float32s())
		}
	}
	for ti, r := range ranges {
		if r.Min > r.Max { // only non-finite values seen
			ranges[ti] = Range{}
		}
	}
	return ranges, nil
}

// LoadCalibration reads representative inputs for a model with the given
// float32 inputs from path: an .ndjson/.jsonl file (see ParseNDJSON), a
// directory of sample directories each holding input_0.bin, input_1.bin, …,
// or (for single-input models) a directory of .bin files, one per sample.
// .bin files hold raw little-endian float32 values.
func LoadCalibration(path string, inputs []tensor.Info) ([]Sample, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("calibration data: %w", err)
	}
	if !st.IsDir() {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("calibration data: %w", err)
		}
		defer f.Close()
		s, err := ParseNDJSON(f, inputs)
		if err != nil {
			return nil, fmt.Errorf("calibration data %s: %w", path, err)
		}
		return s, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("calibration data: %w", err)
	}
	var samples []Sample
	for _, e := range entries {
		p := filepath.Join(path, e.Name())
		switch {
		case e.IsDir():
			var s Sample
			for i := range inputs {
				v, err := readBin(filepath.Join(p, fmt.Sprintf("input_%d.bin", i)), inputs[i])
				if err != nil {
					return nil, fmt.Errorf("calibration sample %s: %w", p, err)
				}
				s = append(s, v)
			}
			samples = append(samples, s)
		case strings.HasSuffix(e.Name(), ".bin"):
			if len(inputs) != 1 {
				return nil, fmt.Errorf("calibration data %s: loose .bin files need a single-input model (model has %d inputs); use one directory per sample with input_<i>.bin", path, len(inputs))
			}
			v, err := readBin(p, inputs[0])
			if err != nil {
				return nil, fmt.Errorf("calibration sample: %w", err)
			}
			samples = append(samples, Sample{v})
		}
	}
	if len(samples) == 0 {
		return nil, fmt.Errorf("calibration data %s: no samples (expected sample directories with input_<i>.bin, or .bin files)", path)
	}
	return samples, nil
}

func readBin(path string, in tensor.Info) ([]float32, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	n := tensor.NumElements(in.Shape)
	if len(raw) != 4*n {
		return nil, fmt.Errorf("%s: %d bytes, expected %d (float32%s)", path, len(raw), 4*n, tensor.ShapeString(in.Shape))
	}
	v := make([]float32, n)
	if err := binary.Read(bytes.NewReader(raw), binary.LittleEndian, v); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// ParseNDJSON reads one sample per non-empty line. For a single-input model
// a line is that input as a (nested) JSON array of numbers; for several
// inputs a line is a JSON array with one (nested) array per input, in input
// order. Nesting is flattened row-major; only the element count must match
// the input's shape.
func ParseNDJSON(r io.Reader, inputs []tensor.Info) ([]Sample, error) {
	if len(inputs) == 0 {
		return nil, errors.New("model has no inputs")
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLineBytes)
	var samples []Sample
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		parts := []json.RawMessage{text}
		if len(inputs) > 1 {
			var arr []json.RawMessage
			if err := json.Unmarshal(text, &arr); err != nil || len(arr) != len(inputs) {
				if err != nil && !json.Valid(text) {
					return nil, fmt.Errorf("line %d: %w", line, err)
				}
				return nil, fmt.Errorf("line %d: expected a JSON array of %d arrays (one per model input)", line, len(inputs))
			}
			parts = arr
		}
		s := make(Sample, len(inputs))
		for i, p := range parts {
			n := tensor.NumElements(inputs[i].Shape)
			flat := make([]float32, 0, n)
			if _, err := jsonnum.Flatten(p, n, func(v float64) error { flat = append(flat, float32(v)); return nil }); err != nil {
				return nil, fmt.Errorf("line %d input %d (%q): %w", line, i, inputs[i].Name, err)
			}
			if len(flat) != n {
				return nil, fmt.Errorf("line %d input %d (%q): got %d values, expected %d for shape %s", line, i, inputs[i].Name, len(flat), n, tensor.ShapeString(inputs[i].Shape))
			}
			s[i] = flat
		}
		samples = append(samples, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	if len(samples) == 0 {
		return nil, errors.New("no samples")
	}
	return samples, nil
}

// RandomSamples makes n samples with values drawn uniformly from each
// input's range: the metadata's Min/Max if present, else the range the
// metadata's normalization maps pixels 0..255 to, else [-1, 1].
func RandomSamples(inputs []tensor.Info, md *inference.Metadata, n int, seed uint64) []Sample {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	lo, hi := make([]float64, len(inputs)), make([]float64, len(inputs))
	for i := range inputs {
		lo[i], hi[i] = -1, 1
		if md == nil || i >= len(md.Inputs) {
			continue
		}
		tm := md.Inputs[i]
		switch {
		case len(tm.Min) > 0 && len(tm.Max) > 0:
			lo[i], hi[i] = float64(slices.Min(tm.Min)), float64(slices.Max(tm.Max))
		case len(tm.Mean) > 0 && len(tm.Std) > 0 && tm.Std[0] != 0:
			a, b := (0-float64(tm.Mean[0]))/float64(tm.Std[0]), (255-float64(tm.Mean[0]))/float64(tm.Std[0])
			lo[i], hi[i] = min(a, b), max(a, b)
		}
	}
	samples := make([]Sample, n)
	for s := range samples {
		samples[s] = make(Sample, len(inputs))
		for i, in := range inputs {
			v := make([]float32, tensor.NumElements(in.Shape))
			for k := range v {
				v[k] = float32(lo[i] + rng.Float64()*(hi[i]-lo[i]))
			}
			samples[s][i] = v
		}
	}
	return samples
}
