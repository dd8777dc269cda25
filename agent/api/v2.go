package api

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/edgefleet/edgefleet/agent/serving"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/jsonnum"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// Open Inference Protocol v2 (KServe / Triton) over HTTP/JSON.

// v2Datatype maps a tensor type to the protocol's datatype name.
func v2Datatype(d tensor.DType) string {
	switch d {
	case tensor.Float32:
		return "FP32"
	case tensor.Float16:
		return "FP16"
	case tensor.Float64:
		return "FP64"
	case tensor.Int8:
		return "INT8"
	case tensor.Uint8:
		return "UINT8"
	case tensor.Int16:
		return "INT16"
	case tensor.Uint16:
		return "UINT16"
	case tensor.Int32:
		return "INT32"
	case tensor.Uint32:
		return "UINT32"
	case tensor.Int64:
		return "INT64"
	case tensor.Uint64:
		return "UINT64"
	case tensor.Bool:
		return "BOOL"
	case tensor.String:
		return "BYTES"
	}
	return strings.ToUpper(d.String())
}

// V2Tensor is a tensor description or value in the v2 protocol.
type V2Tensor struct {
	Name       string         `json:"name"`
	Datatype   string         `json:"datatype"`
	Shape      []int          `json:"shape"`
	Data       any            `json:"data,omitempty"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

// V2ModelMetadata is the v2 model metadata response.
type V2ModelMetadata struct {
	Name     string     `json:"name"`
	Versions []string   `json:"versions"`
	Platform string     `json:"platform"`
	Inputs   []V2Tensor `json:"inputs"`
	Outputs  []V2Tensor `json:"outputs"`
}

func v2Shape(shape []int, batch bool) []int {
	s := append([]int(nil), shape...)
	if batch && len(s) > 0 {
		s[0] = -1
	}
	return s
}

func (s *Server) handleV2Metadata(w http.ResponseWriter, r *http.Request) {
	name, version := r.PathValue("name"), r.PathValue("version")
	l, err := s.mgr.Get(r.Context(), name, version)
	if err != nil {
		writeError(w, err)
		return
	}
	rec, err := s.mgr.Model(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	md := V2ModelMetadata{Name: name, Platform: "tflite", Versions: []string{}}
	for _, v := range rec.Versions {
		md.Versions = append(md.Versions, v.Version)
	}
	for _, t := range l.Inputs() {
		md.Inputs = append(md.Inputs, V2Tensor{Name: t.Name, Datatype: v2Datatype(t.Type), Shape: v2Shape(t.Shape, l.HasBatchDim())})
	}
	for _, t := range l.Outputs() {
		dt := v2Datatype(t.Type)
		if t.Quant != nil && len(t.Quant.Scale) > 0 {
			dt = "FP32" // outputs are returned dequantized
		}
		md.Outputs = append(md.Outputs, V2Tensor{Name: t.Name, Datatype: dt, Shape: v2Shape(t.Shape, l.HasBatchDim())})
	}
	writeJSON(w, http.StatusOK, md)
}

func (s *Server) handleV2Ready(w http.ResponseWriter, r *http.Request) {
	name, version := r.PathValue("name"), r.PathValue("version")
	ctx, cancel := context.WithTimeout(r.Context(), healthWait)
	defer cancel()
	if _, err := s.mgr.Get(ctx, name, version); err != nil {
		if e := toError(err); e.Status == http.StatusNotFound {
			writeError(w, e)
			return
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"name": name, "ready": false, "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "ready": true})
}

// healthWait bounds how long a health or readiness probe waits for a
// model that is still loading: it answers 503 rather than hang.
const healthWait = 2 * time.Second

// handleReady is ready when every model's active version is loaded.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), healthWait)
	defer cancel()
	r = r.WithContext(ctx)
	models, err := s.mgr.Models(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	for _, m := range models {
		if m.Active == "" {
			continue
		}
		if _, err := s.mgr.Get(r.Context(), m.ID, ""); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "error": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"ready": true})
}

// V2InferRequest is the v2 inference request.
type V2InferRequest struct {
	ID         string         `json:"id,omitempty"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Inputs     []V2Input      `json:"inputs"`
	Outputs    []struct {
		Name string `json:"name"`
	} `json:"outputs,omitempty"`
}

// V2Input is one input tensor of a v2 inference request.
type V2Input struct {
	Name       string          `json:"name"`
	Shape      []int           `json:"shape"`
	Datatype   string          `json:"datatype"`
	Data       json.RawMessage `json:"data"`
	Parameters map[string]any  `json:"parameters,omitempty"`
}

// V2InferResponse is the v2 inference response.
type V2InferResponse struct {
	ModelName    string     `json:"model_name"`
	ModelVersion string     `json:"model_version"`
	ID           string     `json:"id,omitempty"`
	Outputs      []V2Tensor `json:"outputs"`
}

func (s *Server) handleV2Infer(w http.ResponseWriter, r *http.Request) {
	name, version := r.PathValue("name"), r.PathValue("version")
	var req V2InferRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	ctx, cancel := s.withTimeout(r.Context())
	defer cancel()
	l, role, err := s.mgr.Resolve(ctx, name, version, r.Header.Get("X-Request-Key"))
	if err != nil {
		writeError(w, err)
		return
	}
	resp, err := s.v2Infer(ctx, l, role, name, &req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func badRequest(format string, a ...any) *Error {
	return errf(http.StatusBadRequest, "bad_request", fmt.Sprintf(format, a...))
}

func (s *Server) v2Infer(ctx context.Context, l *serving.Loaded, role wire.Role, name string, req *V2InferRequest) (*V2InferResponse, error) {
	infos := l.Inputs()
	if len(req.Inputs) != len(infos) {
		return nil, errf(http.StatusUnprocessableEntity, "invalid_input", fmt.Sprintf("%d inputs given, the model has %d (%s)", len(req.Inputs), len(infos), tensorNames(infos)))
	}
	for i, in := range req.Inputs {
		if !hasTensor(infos, in.Name) {
			return nil, badRequest("inputs[%d]: unknown input %q: the model's inputs are %s", i, in.Name, tensorNames(infos))
		}
		for j := range i {
			if req.Inputs[j].Name == in.Name {
				return nil, badRequest("inputs[%d]: input %q given twice", i, in.Name)
			}
		}
	}
	outs := l.InstanceOutputs()
	want := map[string]bool{}
	for i, o := range req.Outputs {
		if !hasTensor(outs, o.Name) {
			return nil, badRequest("outputs[%d]: unknown output %q: the model's outputs are %s", i, o.Name, tensorNames(outs))
		}
		want[o.Name] = true
	}
	// A model without inputs runs once per request.
	batch := 1
	if len(infos) > 0 {
		batch = -1
	}
	perInput := make([][]byte, len(infos))
	for i, info := range infos {
		var in *V2Input
		for j := range req.Inputs {
			if req.Inputs[j].Name == info.Name {
				in = &req.Inputs[j]
			}
		}
		b, n, err := v2Input(info, l.HasBatchDim(), in.Shape, in.Datatype, in.Data, s.cfg.MaxBatchInstances)
		if err != nil {
			return nil, err
		}
		if batch >= 0 && n != batch {
			return nil, errf(http.StatusUnprocessableEntity, "invalid_input", fmt.Sprintf("input %q has batch %d, other inputs %d", info.Name, n, batch))
		}
		batch, perInput[i] = n, b
	}
	if err := s.svc.CheckResponseSize(l, batch); err != nil {
		return nil, err
	}
	instances := make([]serving.Instance, batch)
	for k := range instances {
		instances[k] = make(serving.Instance, len(infos))
		for i := range infos {
			row := len(perInput[i]) / batch
			instances[k][i] = perInput[i][k*row : (k+1)*row]
		}
	}
	res, err := s.mgr.Predict(ctx, l, role, instances)
	if err != nil {
		return nil, err
	}
	resp := &V2InferResponse{ModelName: name, ModelVersion: l.Version, ID: req.ID, Outputs: []V2Tensor{}}
	for oi, info := range outs {
		if len(want) > 0 && !want[info.Name] {
			continue
		}
		data := []byte{'['}
		first := true
		for _, r := range res {
			vals, err := serving.Real(r[oi].Info, r[oi].Data)
			if err != nil {
				return nil, err
			}
			for _, v := range vals {
				if !first {
					data = append(data, ',')
				}
				first = false
				data = jsonnum.AppendFloat(data, v)
			}
		}
		data = append(data, ']')
		shape := info.Shape
		if l.HasBatchDim() {
			shape = append([]int{batch}, shape...)
		}
		dt := v2Datatype(info.Type)
		if info.Quant != nil && len(info.Quant.Scale) > 0 || info.Type == tensor.Float16 {
			dt = "FP32"
		}
		resp.Outputs = append(resp.Outputs, V2Tensor{Name: info.Name, Datatype: dt, Shape: shape, Data: json.RawMessage(data)})
	}
	return resp, nil
}

// v2Input converts one v2 input to bytes for every instance and returns the
// batch size. FP32/FP64 data for a quantized input is quantized; data in the
// input's own integer type is stored as is and must fit it. Data is parsed
// straight into typed values after the shape is checked, so it never takes
// more memory than the tensor it fills.
func v2Input(info tensor.Info, batched bool, shape []int, datatype string, raw json.RawMessage, maxBatch int) ([]byte, int, error) {
	invalid := func(format string, a ...any) *Error {
		return errf(http.StatusUnprocessableEntity, "invalid_input", fmt.Sprintf("input %q: ", info.Name)+fmt.Sprintf(format, a...))
	}
	for _, d := range shape {
		if d < 0 || d > 1<<24 {
			return nil, 0, invalid("shape %s: dimensions must be 0..%d", tensor.ShapeString(shape), 1<<24)
		}
	}
	batch := 1
	if batched {
		inst := info.Shape[1:]
		if len(shape) != len(info.Shape) || !tensor.SameShape(shape[1:], inst) {
			return nil, 0, invalid("expected shape [N,%s, given %s", strings.TrimPrefix(tensor.ShapeString(inst), "["), tensor.ShapeString(shape))
		}
		batch = shape[0]
		if batch < 1 {
			return nil, 0, invalid("batch %d: want at least 1", batch)
		}
		if batch > maxBatch {
			return nil, 0, errf(http.StatusRequestEntityTooLarge, "too_many_instances", fmt.Sprintf("input %q: batch %d, at most %d (max_batch_instances)", info.Name, batch, maxBatch))
		}
	} else if !tensor.SameShape(shape, info.Shape) {
		return nil, 0, invalid("expected shape %s, given %s", tensor.ShapeString(info.Shape), tensor.ShapeString(shape))
	}
	n := tensor.NumElements(shape)
	if len(raw) == 0 {
		return nil, 0, invalid(`"data" is missing`)
	}
	native := v2Datatype(info.Type)
	asRaw := datatype == native
	if !asRaw && datatype != "FP32" && datatype != "FP64" {
		return nil, 0, invalid("datatype %s: expected %s (raw values) or FP32 (real values)", datatype, native)
	}
	// Values are converted in blocks straight into the input tensor: the
	// request never holds more than the tensor and one block.
	out := tensor.Info{Name: info.Name, Type: info.Type, Quant: info.Quant}
	if asRaw {
		out.Quant = nil // raw values are stored as they are
	}
	size := info.Type.Size()
	if size == 0 {
		return nil, 0, invalid("type %s takes no numeric data", info.Type)
	}
	data := make([]byte, 0, n*size)
	block := make([]float64, 0, min(n, 4096))
	count := 0
	flush := func() error {
		if asRaw {
			if err := checkRaw(info.Type, block, count-len(block)); err != nil {
				return badRequest("input %q: datatype %s: %v", info.Name, datatype, err)
			}
		}
		out.Shape = []int{len(block)}
		b, err := serving.Quantize(out, block)
		if err != nil {
			return invalid("%v", err)
		}
		data = append(data, b...)
		block = block[:0]
		return nil
	}
	_, err := jsonnum.ParseFunc(raw, n, func(v float64) error {
		block = append(block, v)
		count++
		if len(block) == cap(block) {
			return flush()
		}
		return nil
	})
	if err == nil && len(block) > 0 {
		err = flush()
	}
	if err != nil {
		if e, ok := err.(*Error); ok {
			return nil, 0, e
		}
		return nil, 0, invalid("data: %v", err)
	}
	if count != n {
		return nil, 0, invalid("shape %s holds %d values, data has %d", tensor.ShapeString(shape), n, count)
	}
	return data, batch, nil
}

// checkRaw verifies that raw values fit an integer type exactly: no
// silent clamping or rounding; off is the index of vals[0] in the data.
func checkRaw(t tensor.DType, vals []float64, off int) error {
	var lo, hi float64
	switch t {
	case tensor.Uint8:
		lo, hi = 0, math.MaxUint8
	case tensor.Int8:
		lo, hi = math.MinInt8, math.MaxInt8
	case tensor.Int16:
		lo, hi = math.MinInt16, math.MaxInt16
	case tensor.Uint16:
		lo, hi = 0, math.MaxUint16
	case tensor.Int32:
		lo, hi = math.MinInt32, math.MaxInt32
	case tensor.Uint32:
		lo, hi = 0, math.MaxUint32
	case tensor.Int64:
		lo, hi = -(1 << 53), 1<<53 // exact in a JSON number (float64)
	case tensor.Uint64:
		lo, hi = 0, 1<<53
	case tensor.Bool:
		lo, hi = 0, 1
	default:
		return nil
	}
	for i, v := range vals {
		if v < lo || v > hi || v != math.Trunc(v) {
			return fmt.Errorf("data[%d] = %v: %s takes integers %v..%v", off+i, v, v2Datatype(t), lo, hi)
		}
	}
	return nil
}

func hasTensor(infos []tensor.Info, name string) bool {
	for _, t := range infos {
		if t.Name == name {
			return true
		}
	}
	return false
}

func tensorNames(infos []tensor.Info) string {
	if len(infos) == 0 {
		return "none"
	}
	var s []string
	for _, t := range infos {
		s = append(s, strconv.Quote(t.Name))
	}
	return strings.Join(s, ", ")
}
