// Package api is the agent's local HTTP API: the REST endpoints under
// /api/v1 (predict, batch-predict, async jobs, NDJSON streaming, model
// health and metadata), the Open Inference Protocol v2 under /v2,
// /openapi.json and /metrics. Every error has the body
// {"error": {"code": "...", "message": "..."}}.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/edgefleet/edgefleet/agent/engine"
	"github.com/edgefleet/edgefleet/agent/jobs"
	"github.com/edgefleet/edgefleet/agent/serving"
)

// Error is an API error with its HTTP status.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error implements error.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error *Error `json:"error"`
}

func errf(status int, code, msg string) *Error {
	return &Error{Status: status, Code: code, Message: msg}
}

// toError maps an error from serving or the engine to an API error.
func toError(err error) *Error {
	var ae *Error
	var mbe *http.MaxBytesError
	var ie *serving.InputError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &mbe):
		return errf(http.StatusRequestEntityTooLarge, "body_too_large", "request body exceeds "+strconv.FormatInt(mbe.Limit, 10)+" bytes")
	case errors.As(err, &ie), errors.Is(err, engine.ErrBadInput):
		return errf(http.StatusUnprocessableEntity, "invalid_input", err.Error())
	case errors.Is(err, jobs.ErrBadWebhook):
		return errf(http.StatusBadRequest, "invalid_webhook", err.Error())
	case errors.Is(err, serving.ErrModelNotFound):
		return errf(http.StatusNotFound, "model_not_found", err.Error())
	case errors.Is(err, serving.ErrVersionNotFound):
		return errf(http.StatusNotFound, "version_not_found", err.Error())
	case errors.Is(err, serving.ErrBatchTooLarge):
		return errf(http.StatusRequestEntityTooLarge, "batch_too_large", err.Error())
	case errors.Is(err, serving.ErrModelUnavailable):
		return errf(http.StatusServiceUnavailable, "model_unavailable", err.Error())
	case errors.Is(err, serving.ErrQueueFull), errors.Is(err, jobs.ErrFull):
		return errf(http.StatusTooManyRequests, "overloaded", err.Error()+": retry later")
	case errors.Is(err, serving.ErrStopped):
		return errf(http.StatusServiceUnavailable, "unavailable", err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return errf(http.StatusGatewayTimeout, "timeout", err.Error())
	case errors.Is(err, context.Canceled):
		return errf(499, "canceled", err.Error())
	case errors.Is(err, engine.ErrUnsupportedModel):
		return errf(http.StatusInternalServerError, "unsupported_model", err.Error())
	}
	return errf(http.StatusInternalServerError, "internal", err.Error())
}

// writeJSON encodes v before writing anything, so an encoding failure is a
// 500 with an error body, never a 200 with an empty one.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(ErrorBody{Error: errf(status, "internal", "encode response: "+err.Error())})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, err error) {
	e := toError(err)
	if e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable {
		secs := 1
		var ra interface{ RetryAfter() time.Duration }
		if errors.As(err, &ra) {
			secs = max(1, int(math.Ceil(ra.RetryAfter().Seconds())))
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	writeJSON(w, e.Status, ErrorBody{Error: e})
}

// AsError maps any error from the serving path to an *Error with its HTTP
// status and code.
func AsError(err error) *Error { return toError(err) }
