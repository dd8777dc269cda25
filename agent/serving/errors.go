package serving

import (
	"context"
	"errors"

	"github.com/edgefleet/edgefleet/agent/engine"
)

// Errors for a model or version the store does not have.
var (
	ErrModelNotFound   = errors.New("model not found")
	ErrVersionNotFound = errors.New("model version not found")
)

// ErrModelUnavailable is wrapped by Get errors for a version that failed
// to load (HTTP 503 with the reason). The failure is remembered: the file
// is not parsed again until the model's versions change.
var ErrModelUnavailable = errors.New("model unavailable")

// ErrorCode classifies an error of the serving path by a stable code ("" for
// nil): the outcome label of request telemetry and the code of API errors
// (agent/api maps codes to HTTP statuses).
func ErrorCode(err error) string {
	var ie *InputError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ie), errors.Is(err, engine.ErrBadInput):
		return "invalid_input"
	case errors.Is(err, ErrQueueFull):
		return "overloaded"
	case errors.Is(err, ErrBatchTooLarge):
		return "batch_too_large"
	case errors.Is(err, ErrModelUnavailable):
		return "model_unavailable"
	case errors.Is(err, ErrModelNotFound):
		return "model_not_found"
	case errors.Is(err, ErrVersionNotFound):
		return "version_not_found"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, ErrStopped):
		return "unavailable"
	case errors.Is(err, engine.ErrUnsupportedModel):
		return "unsupported_model"
	}
	return "internal"
}
