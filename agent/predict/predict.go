// Package predict is the agent's prediction service: a request names a
// model ("id" or "id@version") and carries JSON instances; the service
// resolves the version that serves it (serving's router: pinned, A/B
// candidate or active), decodes the instances, runs them chunk by chunk
// and formats the predictions. The HTTP API (agent/api), batch files
// (agent/batch), async jobs (agent/jobs) and the fleet's MQTT predict
// topic (agent/fleetlink, through PredictBody) all predict through it. Its
// errors carry a stable code and the HTTP status of that code
// (HTTPStatusOf), which every transport answers with.
package predict

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/edgefleet/edgefleet/agent/serving"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// Request is the body of predict, batch-predict and jobs.
type Request struct {
	Instances  []json.RawMessage `json:"instances"`
	Parameters Parameters        `json:"parameters,omitempty"`
}

// Parameters tune a prediction.
type Parameters struct {
	// TopK is the number of labeled classes to return (default 5) when the
	// model has labels.
	TopK *int `json:"top_k,omitempty"`
	// Key makes the A/B assignment sticky (also header X-Request-Key).
	Key string `json:"key,omitempty"`
	// Webhook is the URL called when an async job finishes.
	Webhook string `json:"webhook,omitempty"`
}

// Response is the body of a successful prediction.
type Response struct {
	Predictions     []any            `json:"predictions"`
	TopK            [][]serving.TopK `json:"top_k,omitempty"`
	Errors          []*Error         `json:"errors,omitempty"`
	Model           string           `json:"model"`
	ModelVersion    string           `json:"model_version"`
	Role            wire.Role        `json:"role,omitempty"`
	InferenceTimeMs float64          `json:"inference_time_ms"`
}

// Error is a prediction error as the API reports it: a stable code
// (serving.ErrorCode's, or one of the request codes below) and a message.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error implements error.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// ErrorBody is the JSON body of every API error response.
type ErrorBody struct {
	Error *Error `json:"error"`
}

// Codes of the request errors the service returns itself (as *Error).
const (
	CodeBadRequest       = "bad_request"
	CodeTooManyInstances = "too_many_instances"
	CodeResponseTooLarge = "response_too_large"
)

// AsError returns err as an *Error: itself if it is one, else its
// serving.ErrorCode and message (an overloaded one says to retry later).
func AsError(err error) *Error {
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	code, msg := serving.ErrorCode(err), err.Error()
	if code == "overloaded" {
		msg += ": retry later"
	}
	return &Error{Code: code, Message: msg}
}

// Limits bound one request.
type Limits struct {
	// MaxInstances bounds the instances of one predict request (default
	// 64; partial requests are not bounded by it).
	MaxInstances int
	// MaxBatchInstances bounds the instances of one partial request
	// (batch-predict, jobs; default 10000).
	MaxBatchInstances int
	// ResponseMemory bounds the estimated size of one response (about 24
	// bytes per output value; 0: unbounded).
	ResponseMemory int64
}

// Service predicts with the versions a serving.Manager loads and routes.
type Service struct {
	mgr *serving.Manager
	lim Limits
}

// New returns a service over mgr.
func New(mgr *serving.Manager, lim Limits) *Service {
	if lim.MaxInstances <= 0 {
		lim.MaxInstances = 64
	}
	if lim.MaxBatchInstances <= 0 {
		lim.MaxBatchInstances = 10000
	}
	return &Service{mgr: mgr, lim: lim}
}

// SplitModel splits "id@version" (version "" when absent).
func SplitModel(s string) (id, version string) {
	if i := strings.IndexByte(s, '@'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// Predict runs a predict request for model ("id" or "id@version"). With
// partial set (batch-predict, jobs), instances that fail to decode get a
// null prediction and an entry in Errors instead of failing the request;
// they are decoded, run and formatted chunk by chunk so that memory stays
// proportional to the request, not to its decoded form. Errors are *Error
// for a request refused by its size, else serving's.
func (s *Service) Predict(ctx context.Context, model string, req Request, partial bool) (*Response, error) {
	n := len(req.Instances)
	if n == 0 {
		return nil, &Error{Code: CodeBadRequest, Message: `"instances" must be a non-empty array`}
	}
	if !partial && n > s.lim.MaxInstances {
		return nil, &Error{Code: CodeTooManyInstances, Message: fmt.Sprintf("%d instances, predict takes at most %d: use batch-predict or a job", n, s.lim.MaxInstances)}
	}
	if partial && n > s.lim.MaxBatchInstances {
		return nil, &Error{Code: CodeTooManyInstances, Message: fmt.Sprintf("%d instances, batch-predict and jobs take at most %d (max_batch_instances): split the batch", n, s.lim.MaxBatchInstances)}
	}
	id, version := SplitModel(model)
	l, role, err := s.mgr.Resolve(ctx, id, version, req.Parameters.Key)
	if err != nil {
		return nil, err
	}
	if err := s.CheckResponseSize(l, n); err != nil {
		return nil, err
	}
	start := time.Now()
	resp := &Response{Model: id, ModelVersion: l.Version, Predictions: make([]any, n)}
	if role != wire.RolePrimary {
		resp.Role = role
	}
	k := 5
	if req.Parameters.TopK != nil {
		k = *req.Parameters.TopK
	}
	if !partial {
		ins, err := serving.DecodeInstances(l, req.Instances)
		if err != nil {
			s.mgr.Observe(l, role, time.Since(start), n, "invalid_input")
			return nil, err
		}
		idx := make([]int, len(ins))
		for i := range idx {
			idx[i] = i
		}
		if err := s.runChunk(ctx, l, role, ins, idx, k, resp); err != nil {
			return nil, err
		}
		resp.InferenceTimeMs = float64(time.Since(start).Microseconds()) / 1000
		return resp, nil
	}
	// Chunks keep a large batch-predict within the queue bound.
	chunk := max(1, min(n, l.QueueBound()/2))
	resp.Errors = make([]*Error, n)
	hasErr := false
	for off := 0; off < n; off += chunk {
		end := min(n, off+chunk)
		var ins []serving.Instance
		var idx []int
		for i := off; i < end; i++ {
			in, err := serving.DecodeInstance(l, req.Instances[i])
			if err != nil {
				resp.Errors[i] = AsError(&serving.InputError{Instance: i, Msg: err.Error()})
				hasErr = true
				continue
			}
			ins = append(ins, in)
			idx = append(idx, i)
		}
		if len(ins) == 0 {
			continue
		}
		if err := s.runChunk(ctx, l, role, ins, idx, k, resp); err != nil {
			return nil, err
		}
	}
	if !hasErr {
		resp.Errors = nil
	}
	resp.InferenceTimeMs = float64(time.Since(start).Microseconds()) / 1000
	return resp, nil
}

// runChunk predicts ins (instances idx of the request) and stores their
// formatted predictions in resp.
func (s *Service) runChunk(ctx context.Context, l *serving.Loaded, role wire.Role, ins []serving.Instance, idx []int, k int, resp *Response) error {
	res, err := s.mgr.Predict(ctx, l, role, ins)
	if err != nil {
		return err
	}
	for j, r := range res {
		p, err := serving.Format(l, r, k)
		if err != nil {
			return err
		}
		i := idx[j]
		resp.Predictions[i] = p.Value
		if p.TopK != nil {
			if resp.TopK == nil {
				resp.TopK = make([][]serving.TopK, len(resp.Predictions))
			}
			resp.TopK[i] = p.TopK
		}
	}
	return nil
}

// CheckResponseSize refuses (CodeResponseTooLarge) a request whose response would exceed
// ResponseMemory: about 24 bytes per output value.
func (s *Service) CheckResponseSize(l *serving.Loaded, instances int) error {
	if s.lim.ResponseMemory <= 0 {
		return nil
	}
	per := int64(0)
	for _, o := range l.InstanceOutputs() {
		per += int64(tensor.NumElements(o.Shape))
	}
	if est := int64(instances) * per * 24; est > s.lim.ResponseMemory {
		return &Error{Code: CodeResponseTooLarge, Message: fmt.Sprintf("%d instances × %d output values would make a response of about %d bytes, over the limit of %d (request_memory): send fewer instances", instances, per, est, s.lim.ResponseMemory)}
	}
	return nil
}
