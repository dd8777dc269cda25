package serving

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/imageprep"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/jsonnum"
)

// InputError reports an instance that does not fit the model (HTTP 422):
// what was wrong, where, and what was expected.
type InputError struct {
	Instance int
	Msg      string
}

// Error implements error.
func (e *InputError) Error() string {
	if e.Instance < 0 {
		return e.Msg
	}
	return fmt.Sprintf("instance %d: %s", e.Instance, e.Msg)
}

// DecodeInstances converts the JSON instances of a predict request into
// input bytes for l. Each instance is one of:
//   - nested numeric arrays in the input's shape without the batch
//     dimension (a flat array with the right element count is accepted
//     too), real values quantized with the input's scale and zero point;
//   - {"b64": "..."}: the raw input bytes;
//   - {"image_b64": "..."}: an encoded image preprocessed for the input;
//   - for models with several inputs, an object keyed by input name whose
//     values take one of the forms above.
func DecodeInstances(l *Loaded, raw []json.RawMessage) ([]Instance, error) {
	out := make([]Instance, len(raw))
	for i, r := range raw {
		in, err := DecodeInstance(l, r)
		if err != nil {
			return nil, &InputError{Instance: i, Msg: err.Error()}
		}
		out[i] = in
	}
	return out, nil
}

// DecodeInstance converts one JSON instance (see DecodeInstances).
func DecodeInstance(l *Loaded, raw json.RawMessage) (Instance, error) {
	infos := l.InstanceInputs()
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, fmt.Errorf("empty instance")
	}
	var meta []inference.TensorMetadata
	if md := l.Metadata(); md != nil {
		meta = md.Inputs
	}
	metaOf := func(i int) *inference.TensorMetadata {
		if i < len(meta) {
			return &meta[i]
		}
		return nil
	}
	if len(infos) == 1 {
		if raw[0] == '{' {
			var probe map[string]json.RawMessage
			if err := json.Unmarshal(raw, &probe); err != nil {
				return nil, fmt.Errorf("malformed instance object: %v", err)
			}
			if _, ok := probe["b64"]; ok {
				b, err := decodeValue(raw, infos[0], metaOf(0), l.HasBatchDim())
				return Instance{b}, err
			}
			if _, ok := probe["image_b64"]; ok {
				b, err := decodeValue(raw, infos[0], metaOf(0), l.HasBatchDim())
				return Instance{b}, err
			}
			if v, ok := probe[infos[0].Name]; ok && len(probe) == 1 {
				b, err := decodeValue(v, infos[0], metaOf(0), l.HasBatchDim())
				return Instance{b}, err
			}
			return nil, fmt.Errorf("instance object needs \"b64\", \"image_b64\" or the input name %q", infos[0].Name)
		}
		b, err := decodeValue(raw, infos[0], metaOf(0), l.HasBatchDim())
		return Instance{b}, err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || raw[0] != '{' {
		return nil, fmt.Errorf("the model has %d inputs (%s): an instance must be an object keyed by input name", len(infos), inputNames(infos))
	}
	in := make(Instance, len(infos))
	for i, info := range infos {
		v, ok := obj[info.Name]
		if !ok {
			return nil, fmt.Errorf("missing input %q (inputs: %s)", info.Name, inputNames(infos))
		}
		b, err := decodeValue(v, info, metaOf(i), l.HasBatchDim())
		if err != nil {
			return nil, err
		}
		in[i] = b
	}
	if len(obj) != len(infos) {
		for k := range obj {
			if !hasName(infos, k) {
				return nil, fmt.Errorf("unknown input %q (inputs: %s)", k, inputNames(infos))
			}
		}
	}
	return in, nil
}

func hasName(infos []tensor.Info, n string) bool {
	for _, i := range infos {
		if i.Name == n {
			return true
		}
	}
	return false
}

func inputNames(infos []tensor.Info) string {
	var s []string
	for _, i := range infos {
		s = append(s, fmt.Sprintf("%q %s%s", i.Name, i.Type, tensor.ShapeString(i.Shape)))
	}
	return strings.Join(s, ", ")
}

func byteSize(info tensor.Info) int { return tensor.NumElements(info.Shape) * info.Type.Size() }

// decodeValue decodes one input value of an instance.
func decodeValue(raw json.RawMessage, info tensor.Info, meta *inference.TensorMetadata, batched bool) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		var obj struct {
			B64      *string `json:"b64"`
			ImageB64 *string `json:"image_b64"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, fmt.Errorf("input %q: malformed object: %v", info.Name, err)
		}
		switch {
		case obj.B64 != nil:
			b, err := base64.StdEncoding.DecodeString(*obj.B64)
			if err != nil {
				return nil, fmt.Errorf("input %q: b64 is not valid base64: %v", info.Name, err)
			}
			if want := byteSize(info); len(b) != want {
				return nil, fmt.Errorf("input %q: b64 holds %d bytes, expected %d bytes (%s%s)", info.Name, len(b), want, info.Type, tensor.ShapeString(info.Shape))
			}
			return b, nil
		case obj.ImageB64 != nil:
			b, err := base64.StdEncoding.DecodeString(*obj.ImageB64)
			if err != nil {
				return nil, fmt.Errorf("input %q: image_b64 is not valid base64: %v", info.Name, err)
			}
			full := info
			if batched {
				full.Shape = append([]int{1}, info.Shape...)
			}
			px, err := imageprep.Prepare(b, full, meta)
			if err != nil {
				return nil, fmt.Errorf("input %q: %v", info.Name, err)
			}
			return px, nil
		}
		return nil, fmt.Errorf("input %q: object needs \"b64\" or \"image_b64\"", info.Name)
	}
	want := tensor.NumElements(info.Shape)
	buf := getFloats(min(want, len(raw)/2+1)) // a value takes 2 bytes at least
	vals, shape, err := jsonnum.ParseInto(buf, raw, want)
	defer putFloats(buf)
	if err != nil {
		return nil, fmt.Errorf("input %q: expected nested numeric arrays of shape %s: %v", info.Name, tensor.ShapeString(info.Shape), err)
	}
	if !tensor.SameShape(shape, info.Shape) && !(len(shape) == 1 && shape[0] == want) {
		return nil, fmt.Errorf("input %q: expected shape %s (%d values of %s), given shape %s", info.Name, tensor.ShapeString(info.Shape), want, info.Type, tensor.ShapeString(shape))
	}
	return Quantize(info, vals)
}

// Quantize stores real values into the bytes of a tensor described by info
// (quantizing with its scale and zero point).
func Quantize(info tensor.Info, vals []float64) ([]byte, error) {
	t := &tensor.Tensor{Name: info.Name, Type: info.Type, Shape: info.Shape, Quant: info.Quant}
	if t.Type.Size() == 0 {
		return nil, fmt.Errorf("input %q has type %s, which takes only b64", info.Name, info.Type)
	}
	t.Data = make([]byte, t.ByteSize())
	if err := t.SetReal(vals); err != nil {
		return nil, err
	}
	return t.Data, nil
}

// Real dequantizes an output tensor's bytes.
func Real(info tensor.Info, data []byte) ([]float64, error) {
	t := &tensor.Tensor{Name: info.Name, Type: info.Type, Shape: info.Shape, Quant: info.Quant, Data: data}
	return t.Real()
}

// Nest shapes flat values into nested arrays.
func Nest(vals []float64, shape []int) any {
	if len(shape) == 0 {
		if len(vals) == 0 {
			return nil
		}
		return vals[0]
	}
	if len(shape) == 1 {
		return vals
	}
	n := shape[0]
	step := 1
	for _, d := range shape[1:] {
		step *= d
	}
	out := make([]any, n)
	for i := 0; i < n; i++ {
		out[i] = Nest(vals[i*step:(i+1)*step], shape[1:])
	}
	return out
}

// TopK is one labeled class of a classification output.
type TopK struct {
	Index int     `json:"index"`
	Label string  `json:"label,omitempty"`
	Score float64 `json:"score"`
}

// Prediction is one instance's formatted prediction.
type Prediction struct {
	// Value is the JSON of the prediction (a json.RawMessage): nested
	// arrays of real values (one output) or an object keyed by output name
	// (several outputs). Non-finite values are the strings "NaN",
	// "Infinity" and "-Infinity" (see jsonnum.AppendFloat).
	Value any
	// TopK lists the best classes when the first output has labels.
	TopK []TopK
	// Class and Score are the top-1 of the first output when it is a
	// vector of at least two scores (-1 otherwise).
	Class int
	Score float64
}

// MarshalJSON encodes a TopK entry; a non-finite score is written as a
// string (see jsonnum.AppendFloat) instead of failing the whole response.
func (t TopK) MarshalJSON() ([]byte, error) {
	b := append([]byte(`{"index":`), strconv.Itoa(t.Index)...)
	if t.Label != "" {
		l, _ := json.Marshal(t.Label)
		b = append(append(b, `,"label":`...), l...)
	}
	b = append(b, `,"score":`...)
	b = jsonnum.AppendFloat(b, t.Score)
	return append(b, '}'), nil
}

// Format dequantizes and shapes one instance's outputs; k is the number of
// top classes to report when the model has labels.
func Format(l *Loaded, r Result, k int) (Prediction, error) {
	p := Prediction{Class: -1}
	var obj map[string][]byte
	if len(r) > 1 {
		obj = make(map[string][]byte, len(r))
	}
	for i, o := range r {
		vals, err := Real(o.Info, o.Data)
		if err != nil {
			return p, fmt.Errorf("output %d: %w", i, err)
		}
		if i == 0 {
			if len(vals) >= 2 && (len(o.Info.Shape) == 1) {
				best := 0
				for j, v := range vals {
					if v > vals[best] || math.IsNaN(vals[best]) && !math.IsNaN(v) {
						best = j
					}
				}
				p.Class, p.Score = best, vals[best]
				var labels []string
				if md := l.Metadata(); md != nil && len(md.Outputs) > 0 {
					labels = md.Outputs[0].Labels
				}
				if len(labels) > 0 && k > 0 {
					p.TopK = topK(vals, labels, k)
				}
			}
		}
		nested := jsonnum.AppendNested(make([]byte, 0, 8+12*len(vals)), vals, o.Info.Shape)
		if len(r) == 1 {
			p.Value = json.RawMessage(nested)
		} else {
			obj[o.Info.Name] = nested
		}
	}
	if len(r) > 1 {
		p.Value = json.RawMessage(appendObject(nil, obj))
	}
	return p, nil
}

func topK(vals []float64, labels []string, k int) []TopK {
	idx := make([]int, len(vals))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { // NaN ranks last
		x, y := vals[idx[a]], vals[idx[b]]
		return x > y || math.IsNaN(y) && !math.IsNaN(x)
	})
	k = min(k, len(idx))
	out := make([]TopK, k)
	for i := 0; i < k; i++ {
		j := idx[i]
		out[i] = TopK{Index: j, Score: vals[j]}
		if j < len(labels) {
			out[i].Label = labels[j]
		}
	}
	return out
}
