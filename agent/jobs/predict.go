package jobs

import (
	"context"
	"encoding/json"
	"time"

	"github.com/edgefleet/edgefleet/agent/predict"
)

// DefaultPredictTimeout is the deadline of one predict job when Predictor
// is given none.
const DefaultPredictTimeout = 10 * time.Minute

// Predictor is the RunFunc of the agent's async jobs: it runs a job's
// request (a predict request body) through svc like batch-predict (partial:
// instances that fail to decode get an entry in the result's errors), within
// timeout (DefaultPredictTimeout if <= 0). Errors carry the prediction
// service's code (Coder) and its message.
func Predictor(svc *predict.Service, timeout time.Duration) RunFunc {
	if timeout <= 0 {
		timeout = DefaultPredictTimeout
	}
	return func(ctx context.Context, model string, request json.RawMessage) (json.RawMessage, error) {
		req, err := svc.Decode(request)
		if err != nil {
			return nil, codedError{predict.AsError(err)}
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		resp, err := svc.Predict(ctx, model, req, true)
		if err != nil {
			return nil, codedError{predict.AsError(err)}
		}
		b, err := json.Marshal(resp)
		if err != nil {
			return nil, codedError{&predict.Error{Code: "internal", Message: "encode result: " + err.Error()}}
		}
		return b, nil
	}
}

// codedError is a prediction error as a job failure: its message without
// the code, and the code (Coder).
type codedError struct{ e *predict.Error }

func (c codedError) Error() string     { return c.e.Message }
func (c codedError) ErrorCode() string { return c.e.Code }
