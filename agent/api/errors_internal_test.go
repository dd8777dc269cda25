package api

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/edgefleet/edgefleet/agent/engine"
	"github.com/edgefleet/edgefleet/agent/jobs"
	"github.com/edgefleet/edgefleet/agent/predict"
	"github.com/edgefleet/edgefleet/agent/serving"
)

// TestToErrorStatus: every error of the serving path and of the prediction
// service gets its code (serving.ErrorCode, predict.Error) and the HTTP
// status of that code; nothing known falls through to 500.
func TestToErrorStatus(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("predict iris: %w", err) }
	for _, c := range []struct {
		err    error
		code   string
		status int
	}{
		{wrap(&serving.InputError{Instance: 1, Msg: "bad"}), "invalid_input", http.StatusUnprocessableEntity},
		{wrap(engine.ErrBadInput), "invalid_input", http.StatusUnprocessableEntity},
		{wrap(serving.ErrModelNotFound), "model_not_found", http.StatusNotFound},
		{wrap(serving.ErrVersionNotFound), "version_not_found", http.StatusNotFound},
		{wrap(serving.ErrBatchTooLarge), "batch_too_large", http.StatusRequestEntityTooLarge},
		{wrap(serving.ErrModelUnavailable), "model_unavailable", http.StatusServiceUnavailable},
		{wrap(serving.ErrQueueFull), "overloaded", http.StatusTooManyRequests},
		{wrap(jobs.ErrFull), "overloaded", http.StatusTooManyRequests},
		{wrap(jobs.ErrBadWebhook), "invalid_webhook", http.StatusBadRequest},
		{wrap(serving.ErrStopped), "unavailable", http.StatusServiceUnavailable},
		{wrap(context.DeadlineExceeded), "timeout", http.StatusGatewayTimeout},
		{wrap(context.Canceled), "canceled", 499},
		{wrap(engine.ErrUnsupportedModel), "unsupported_model", http.StatusInternalServerError},
		{&predict.Error{Code: predict.CodeTooManyInstances, Message: "x"}, "too_many_instances", http.StatusRequestEntityTooLarge},
		{&predict.Error{Code: predict.CodeResponseTooLarge, Message: "x"}, "response_too_large", http.StatusRequestEntityTooLarge},
		{&predict.Error{Code: predict.CodeBadRequest, Message: "x"}, "bad_request", http.StatusBadRequest},
		{fmt.Errorf("disk on fire"), "internal", http.StatusInternalServerError},
	} {
		e := toError(c.err)
		if e.Code != c.code || e.Status != c.status {
			t.Errorf("toError(%v) = %d %s, want %d %s", c.err, e.Status, e.Code, c.status, c.code)
		}
		if c.code == "overloaded" && e.Message == c.err.Error() {
			t.Errorf("overloaded %v: message %q does not say to retry", c.err, e.Message)
		}
	}
}
