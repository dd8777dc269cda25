package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/edgefleet/edgefleet/agent/predict"
)

// Predict runs a predict request through the prediction service (see
// predict.Service.Predict); the daemon's batch runs use it in process.
func (s *Server) Predict(ctx context.Context, model string, req predict.Request, partial bool) (*predict.Response, error) {
	return s.svc.Predict(ctx, model, req, partial)
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
		// Errors are *predict.Error (bad_request, too_many_instances).
		*x, err = predict.DecodeRequest(body, s.cfg.MaxBatchInstances)
		return err
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
