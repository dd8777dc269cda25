package predict

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// CodeBodyTooLarge is the code of a request body over its size limit.
const CodeBodyTooLarge = "body_too_large"

// codeStatus is the HTTP status of each prediction error code
// (serving.ErrorCode's and the service's own); string keys, so that
// agent/api's TestOpenAPIErrorCodes sees them.
var codeStatus = map[string]int{
	"invalid_input":      http.StatusUnprocessableEntity,
	"model_not_found":    http.StatusNotFound,
	"version_not_found":  http.StatusNotFound,
	"batch_too_large":    http.StatusRequestEntityTooLarge,
	"model_unavailable":  http.StatusServiceUnavailable,
	"overloaded":         http.StatusTooManyRequests,
	"unavailable":        http.StatusServiceUnavailable,
	"timeout":            http.StatusGatewayTimeout,
	"canceled":           499,
	"unsupported_model":  http.StatusInternalServerError,
	"internal":           http.StatusInternalServerError,
	"bad_request":        http.StatusBadRequest,            // CodeBadRequest
	"too_many_instances": http.StatusRequestEntityTooLarge, // CodeTooManyInstances
	"response_too_large": http.StatusRequestEntityTooLarge, // CodeResponseTooLarge
	"body_too_large":     http.StatusRequestEntityTooLarge, // CodeBodyTooLarge
}

// HTTPStatusOf is the HTTP status of a prediction error code (500 for a
// code it does not know).
func HTTPStatusOf(code string) int {
	if s, ok := codeStatus[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// HTTPStatus is the HTTP status of the answer that carries e.
func (e *Error) HTTPStatus() int { return HTTPStatusOf(e.Code) }

// ErrorCode is e's code.
func (e *Error) ErrorCode() string { return e.Code }

// ErrorMessage is e's message without its code.
func (e *Error) ErrorMessage() string { return e.Message }

// DecodeRequest decodes a JSON predict body. The instances stay slices of
// body (no copies). More than maxInstances instances (when maxInstances >
// 0) is CodeTooManyInstances, found before any instance is kept; a
// malformed body is CodeBadRequest. Errors are *Error.
func DecodeRequest(body []byte, maxInstances int) (Request, error) {
	var in struct {
		Instances  rawList    `json:"instances"`
		Parameters Parameters `json:"parameters,omitempty"`
	}
	in.Instances.max = maxInstances
	err := json.Unmarshal(body, &in)
	var tm *tooManyError
	if errors.As(err, &tm) {
		return Request{}, &Error{Code: CodeTooManyInstances, Message: tm.Error()}
	}
	if err != nil {
		return Request{}, &Error{Code: CodeBadRequest, Message: "malformed JSON body: " + err.Error()}
	}
	return Request{Instances: in.Instances.items, Parameters: in.Parameters}, nil
}

// Decode is DecodeRequest with the service's MaxBatchInstances.
func (s *Service) Decode(body []byte) (Request, error) {
	return DecodeRequest(body, s.lim.MaxBatchInstances)
}

// BodyLimits bound a predict request that arrives as a JSON body from a
// transport other than HTTP (the fleet's MQTT predict topic): the bounds of
// an HTTP request.
type BodyLimits struct {
	// MaxBytes bounds the body (0: unbounded).
	MaxBytes int64
	// Timeout bounds the prediction (0: none).
	Timeout time.Duration
}

// PredictBody runs a predict request body for model like Predict (not
// partial; instances bounded by MaxBatchInstances while decoding, by
// MaxInstances after) and returns the response body. Errors are *Error:
// HTTPStatus is the status of the answer.
func (s *Service) PredictBody(ctx context.Context, model string, body []byte, lim BodyLimits) ([]byte, error) {
	if lim.MaxBytes > 0 && int64(len(body)) > lim.MaxBytes {
		return nil, &Error{Code: CodeBodyTooLarge, Message: fmt.Sprintf("request body of %d bytes exceeds the limit of %d bytes", len(body), lim.MaxBytes)}
	}
	req, err := s.Decode(body)
	if err != nil {
		return nil, err
	}
	if lim.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, lim.Timeout)
		defer cancel()
	}
	resp, err := s.Predict(ctx, model, req, false)
	if err != nil {
		return nil, AsError(err)
	}
	b, err := json.Marshal(resp)
	if err != nil {
		return nil, &Error{Code: "internal", Message: "encode response: " + err.Error()}
	}
	return b, nil
}

// rawList is a JSON array whose elements are kept as slices of the
// document (json.Unmarshal hands UnmarshalJSON a slice of its input);
// null is an empty list. More than max elements is a *tooManyError, found
// before any element is stored.
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
