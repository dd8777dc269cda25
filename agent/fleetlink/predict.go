package fleetlink

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/edgefleet/edgefleet/agent/predict"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// PredictFunc runs a REST predict request body for model and returns the
// REST response body (Daemon binds it to the prediction service's
// PredictBody, bounded like an HTTP request).
type PredictFunc func(ctx context.Context, model string, body []byte) ([]byte, error)

// predictFunc answers the predict topic with svc within lim (nil: no
// service, requests are answered 503).
func predictFunc(svc *predict.Service, lim predict.BodyLimits) PredictFunc {
	if svc == nil {
		return nil
	}
	return func(ctx context.Context, model string, body []byte) ([]byte, error) {
		return svc.PredictBody(ctx, model, body, lim)
	}
}

// predictQueueWait is how long a request waits for a free prediction slot
// before it is answered 503.
const predictQueueWait = 10 * time.Second

// handlePredict answers one message on the predict/request topic. paho
// runs handlers concurrently (OrderMatters is false), so this blocks only
// its own goroutine; predictSem bounds how many predictions run at once.
// Malformed requests are answered 400 when their id can be read and are
// logged and dropped otherwise.
func (l *Link) handlePredict(payload []byte) {
	defer func() {
		if r := recover(); r != nil {
			l.log.Error("predict request panicked", "panic", r)
		}
	}()
	req, err := wire.DecodePredictRequest(payload)
	if err != nil {
		id := correlationID(payload)
		if id == "" {
			l.log.Warn("predict request dropped: malformed and no readable id", "err", err)
			return
		}
		l.log.Warn("bad predict request", "id", id, "err", err)
		l.sendPredict(wire.PredictResponse{ID: id, Status: http.StatusBadRequest,
			Error: &wire.PredictError{Code: "bad_request", Message: err.Error()}})
		return
	}
	resp := wire.PredictResponse{ID: req.ID, Model: req.Model}
	if l.cfg.Predict == nil {
		resp.Status, resp.Error = http.StatusServiceUnavailable, &wire.PredictError{Code: "unavailable", Message: "this agent does not serve predictions over MQTT"}
		l.sendPredict(resp)
		return
	}
	l.mu.Lock()
	ctx := l.runCtx
	l.mu.Unlock()
	wait := time.NewTimer(predictQueueWait)
	select {
	case l.predictSem <- struct{}{}:
		wait.Stop()
	case <-wait.C:
		resp.Status, resp.Error = http.StatusServiceUnavailable, &wire.PredictError{Code: "overloaded", Message: "too many MQTT predictions in flight, retry later"}
		l.sendPredict(resp)
		return
	case <-ctx.Done():
		wait.Stop()
		return
	}
	pctx, cancel := context.WithTimeout(ctx, l.cfg.PredictTimeout)
	body, err := func() (b []byte, err error) {
		defer func() {
			if r := recover(); r != nil {
				b, err = nil, refused{status: http.StatusInternalServerError, code: "internal", msg: "prediction panicked"}
			}
		}()
		return l.cfg.Predict(pctx, req.Model, req.Body)
	}()
	cancel()
	<-l.predictSem
	if err != nil {
		resp.Status, resp.Error = errorStatus(err)
	} else if !json.Valid(body) || len(body) == 0 || body[0] != '{' {
		resp.Status, resp.Error = http.StatusInternalServerError, &wire.PredictError{Code: "internal", Message: "prediction returned a body that is not a JSON object"}
	} else {
		resp.Status, resp.Body = http.StatusOK, body
	}
	l.sendPredict(resp)
}

// RefusedError is implemented by the errors a PredictFunc returns for a
// request it refused (agent/predict's *Error): the status of the answer,
// the error code and the message without the code.
type RefusedError interface {
	error
	HTTPStatus() int
	ErrorCode() string
	ErrorMessage() string
}

// refused is a RefusedError of the link itself.
type refused struct {
	status    int
	code, msg string
}

func (r refused) Error() string        { return r.code + ": " + r.msg }
func (r refused) HTTPStatus() int      { return r.status }
func (r refused) ErrorCode() string    { return r.code }
func (r refused) ErrorMessage() string { return r.msg }

// errorStatus maps a Predict error to a status and a wire error.
func errorStatus(err error) (int, *wire.PredictError) {
	var ae RefusedError
	if errors.As(err, &ae) && ae.HTTPStatus() >= 400 && ae.HTTPStatus() <= 599 && ae.ErrorCode() != "" {
		return ae.HTTPStatus(), &wire.PredictError{Code: truncate(ae.ErrorCode(), wire.MaxIDLen), Message: truncate(ae.ErrorMessage(), wire.MaxPredictErrorMessage)}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return http.StatusGatewayTimeout, &wire.PredictError{Code: "timeout", Message: truncate(err.Error(), wire.MaxPredictErrorMessage)}
	}
	return http.StatusInternalServerError, &wire.PredictError{Code: "internal", Message: truncate(err.Error(), wire.MaxPredictErrorMessage)}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// correlationID reads "id" from a payload the strict decoder rejected, if
// it is a JSON object whose id is a valid id.
func correlationID(payload []byte) string {
	if len(payload) > wire.MaxPayload {
		return ""
	}
	var p struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(payload, &p) != nil || wire.ValidateID("id", p.ID) != nil {
		return ""
	}
	return p.ID
}

// sendPredict publishes a response (QoS 1); one that is too large or does
// not validate is replaced by an error response with the same id.
func (l *Link) sendPredict(r wire.PredictResponse) {
	r.V = wire.Version
	b, err := wire.Encode(r)
	if err == nil && len(b) > wire.MaxPayload {
		err = errors.New("response is larger than the MQTT payload limit")
		r.Status = http.StatusRequestEntityTooLarge
	}
	if err == nil {
		if err = r.Validate(); err != nil {
			r.Status = http.StatusInternalServerError
		}
	}
	if err != nil {
		l.log.Warn("predict response replaced by an error", "id", r.ID, "err", err)
		r.Body = nil
		r.Error = &wire.PredictError{Code: "internal", Message: truncate(err.Error(), wire.MaxPredictErrorMessage)}
		if r.Status == http.StatusRequestEntityTooLarge {
			r.Error.Code = "too_large"
		}
		b, _ = wire.Encode(r)
	}
	if err := l.publish(wire.PredictResponseTopic(l.id), false, b, 10*time.Second); err != nil {
		l.log.Warn("predict response not delivered", "id", r.ID, "err", err)
	}
}
