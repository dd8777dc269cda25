package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/edgefleet/edgefleet/agent/predict"
)

// Predict runs a predict request through the prediction service (see
// predict.Service.Predict); the daemon's batch runs use it in process.
func (s *Server) Predict(ctx context.Context, model string, req predict.Request, partial bool) (*predict.Response, error) {
	return s.svc.Predict(ctx, model, req, partial)
}

// PredictJSON runs a predict request body (from a transport other than
// HTTP: the fleet's MQTT predict topic) for model and returns the response
// body, with the bounds of an HTTP request: body size, instance count and
// request timeout. Errors are *Error.
func (s *Server) PredictJSON(ctx context.Context, model string, body []byte) ([]byte, error) {
	if int64(len(body)) > s.cfg.MaxBodyBytes {
		return nil, errf(http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request body of %d bytes exceeds the limit of %d bytes", len(body), s.cfg.MaxBodyBytes))
	}
	var req predict.Request
	if err := s.decodeJSON(body, &req); err != nil {
		return nil, toError(err)
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	resp, err := s.Predict(ctx, model, req, false)
	if err != nil {
		return nil, toError(err)
	}
	b, err := json.Marshal(resp)
	if err != nil {
		return nil, errf(http.StatusInternalServerError, "internal", "encode response: "+err.Error())
	}
	return b, nil
}

// withTimeout bounds a synchronous request by RequestTimeout.
func (s *Server) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.RequestTimeout)
}

func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	return s.decodeJSON(body, v)
}

// readBody reads the whole body (at most MaxBodyBytes) into one buffer of
// its exact size when the length is declared: no growth, no copies.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	var b []byte
	var err error
	if n := r.ContentLength; n > 0 && n <= s.cfg.MaxBodyBytes {
		b = make([]byte, n)
		_, err = io.ReadFull(body, b)
	} else {
		b, err = io.ReadAll(body)
	}
	if err != nil {
		if toError(err).Status == http.StatusRequestEntityTooLarge {
			return nil, err
		}
		return nil, errf(http.StatusBadRequest, "bad_request", "read body: "+err.Error())
	}
	return b, nil
}

// decodeJSON decodes body into v; *predict.Request and *V2InferRequest keep
// their instances and tensor data as slices of body instead of copies.
func (s *Server) decodeJSON(body []byte, v any) error {
	var err error
	switch x := v.(type) {
	case *predict.Request:
		var in struct {
			Instances  rawList            `json:"instances"`
			Parameters predict.Parameters `json:"parameters,omitempty"`
		}
		in.Instances.max = s.cfg.MaxBatchInstances
		if err = json.Unmarshal(body, &in); err == nil {
			x.Instances, x.Parameters = in.Instances.items, in.Parameters
		}
	case *V2InferRequest:
		var in struct {
			ID         string         `json:"id,omitempty"`
			Parameters map[string]any `json:"parameters,omitempty"`
			Inputs     []struct {
				Name       string         `json:"name"`
				Shape      []int          `json:"shape"`
				Datatype   string         `json:"datatype"`
				Data       rawRef         `json:"data"`
				Parameters map[string]any `json:"parameters,omitempty"`
			} `json:"inputs"`
			Outputs []struct {
				Name string `json:"name"`
			} `json:"outputs,omitempty"`
		}
		if err = json.Unmarshal(body, &in); err == nil {
			x.ID, x.Parameters, x.Outputs = in.ID, in.Parameters, in.Outputs
			x.Inputs = make([]V2Input, len(in.Inputs))
			for i, t := range in.Inputs {
				x.Inputs[i] = V2Input{Name: t.Name, Shape: t.Shape, Datatype: t.Datatype, Data: json.RawMessage(t.Data), Parameters: t.Parameters}
			}
		}
	default:
		err = json.Unmarshal(body, v)
	}
	var tm *tooManyError
	if errors.As(err, &tm) {
		return errf(http.StatusRequestEntityTooLarge, "too_many_instances", tm.Error())
	}
	if err != nil {
		return errf(http.StatusBadRequest, "bad_request", "malformed JSON body: "+err.Error())
	}
	return nil
}

// rawRef is a JSON value kept as a slice of the document it was decoded
// from (json.Unmarshal hands UnmarshalJSON a slice of its input; the body
// buffer outlives the request's decoding, so it is retained, not copied).
type rawRef []byte

// UnmarshalJSON implements json.Unmarshaler.
func (r *rawRef) UnmarshalJSON(b []byte) error {
	*r = b
	return nil
}

// rawList is a JSON array whose elements are kept as slices of the
// document (see rawRef); null is an empty list. More than max elements is
// a *tooManyError, found before any element is stored.
type rawList struct {
	max   int
	items []json.RawMessage
}

type tooManyError struct{ n, max int }

func (e *tooManyError) Error() string {
	return fmt.Sprintf("%d instances, at most %d (max_batch_instances): split the request", e.n, e.max)
}

// UnmarshalJSON splits the (already validated) array into its elements.
func (l *rawList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		l.items = nil
		return nil
	}
	if len(b) < 2 || b[0] != '[' {
		return fmt.Errorf("instances: expected an array")
	}
	each := func(fn func(v []byte)) int {
		n := 0
		for i := 1; i < len(b)-1; {
			i = skipSpace(b, i)
			if i >= len(b)-1 {
				break
			}
			end := skipValue(b, i)
			if fn != nil {
				fn(b[i:end])
			}
			n++
			i = skipSpace(b, end)
			if i < len(b) && b[i] == ',' {
				i++
			}
		}
		return n
	}
	n := each(nil)
	if l.max > 0 && n > l.max {
		return &tooManyError{n: n, max: l.max}
	}
	l.items = make([]json.RawMessage, 0, n)
	each(func(v []byte) { l.items = append(l.items, json.RawMessage(v)) })
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the JSON value starting at b[i]; b is valid
// JSON (json.Unmarshal checked it), so only nesting and strings matter.
func skipValue(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
			if depth == 0 {
				return i + 1
			}
		case '[', '{':
			depth++
		case ']', '}':
			if depth == 0 { // the end of the enclosing array
				return i
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',':
			if depth == 0 {
				return i
			}
		default:
			if depth == 0 && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
				return i
			}
		}
	}
	return i
}

func (s *Server) handlePredict(partial bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req predict.Request
		if err := s.decodeBody(w, r, &req); err != nil {
			writeError(w, err)
			return
		}
		if k := r.Header.Get("X-Request-Key"); k != "" && req.Parameters.Key == "" {
			req.Parameters.Key = k
		}
		ctx, cancel := s.withTimeout(r.Context())
		defer cancel()
		resp, err := s.Predict(ctx, r.PathValue("model_id"), req, partial)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, resp)
	}
}
