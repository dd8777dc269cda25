// Package api is the agent's local HTTP API: the REST endpoints under
// /api/v1 (predict, batch-predict, async jobs, NDJSON streaming, model
// health and metadata), the Open Inference Protocol v2 under /v2,
// /openapi.json and /metrics. Every error has the body
// {"error": {"code": "...", "message": "..."}}.
package api

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/edgefleet/edgefleet/agent/jobs"
	"github.com/edgefleet/edgefleet/agent/predict"
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

// toError maps an error from the prediction service, serving or the
// engine to an API error with its HTTP status.
func toError(err error) *Error {
	var ae *Error
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &mbe):
		return errf(http.StatusRequestEntityTooLarge, "body_too_large", "request body exceeds "+strconv.FormatInt(mbe.Limit, 10)+" bytes")
	case errors.Is(err, jobs.ErrBadWebhook):
		return errf(http.StatusBadRequest, "invalid_webhook", err.Error())
	case errors.Is(err, jobs.ErrFull):
		return errf(http.StatusTooManyRequests, "overloaded", err.Error()+": retry later")
	}
	// The prediction service's and serving's errors: their code and its
	// status (predict's table).
	pe := predict.AsError(err)
	code := pe.Code
	return errf(predict.HTTPStatusOf(code), code, pe.Message)
}

// HTTPStatus is the status of the answer that carries e.
func (e *Error) HTTPStatus() int { return e.Status }

// ErrorCode is e's code (jobs.Coder).
func (e *Error) ErrorCode() string { return e.Code }

// ErrorMessage is e's message without its code.
func (e *Error) ErrorMessage() string { return e.Message }

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
