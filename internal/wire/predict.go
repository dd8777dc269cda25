package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// PredictRequest asks a device for a prediction over MQTT (topic
// PredictRequestTopic). Body is the agent's REST predict request object
// ({"instances": [...], "parameters": {...}}); ID correlates the response.
type PredictRequest struct {
	V int `json:"v"`
	// ID is the caller's correlation id, echoed in the PredictResponse.
	ID string `json:"id"`
	// Model is "id" or "id@version".
	Model string          `json:"model"`
	Body  json.RawMessage `json:"body"`
}

// Validate checks a decoded PredictRequest.
func (r *PredictRequest) Validate() error {
	if err := ValidateID("id", r.ID); err != nil {
		return err
	}
	if err := ValidateModelRef(r.Model); err != nil {
		return err
	}
	if !isJSONObject(r.Body) {
		return fmt.Errorf("body: want a JSON object (the REST predict request)")
	}
	return nil
}

// PredictError is the error of a failed prediction, as in the agent's REST
// error body.
type PredictError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// MaxPredictErrorMessage bounds PredictError.Message in bytes.
const MaxPredictErrorMessage = 4096

// PredictResponse answers a PredictRequest (topic PredictResponseTopic).
// Status is the HTTP status the REST API would have answered; Body is the
// REST predict response object when Status is 2xx, Error is set otherwise.
type PredictResponse struct {
	V      int             `json:"v"`
	ID     string          `json:"id"`
	Model  string          `json:"model,omitempty"`
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body,omitempty"`
	Error  *PredictError   `json:"error,omitempty"`
}

// Validate checks a decoded PredictResponse.
func (r *PredictResponse) Validate() error {
	if err := ValidateID("id", r.ID); err != nil {
		return err
	}
	if r.Model != "" {
		if err := ValidateModelRef(r.Model); err != nil {
			return err
		}
	}
	if r.Status < 200 || r.Status > 599 {
		return fmt.Errorf("status %d: want 200..599", r.Status)
	}
	ok := r.Status < 300
	switch {
	case ok && r.Error != nil:
		return fmt.Errorf("status %d with an error: want body only", r.Status)
	case ok && !isJSONObject(r.Body):
		return fmt.Errorf("status %d: body: want a JSON object (the REST predict response)", r.Status)
	case !ok && r.Error == nil:
		return fmt.Errorf("status %d: error is missing", r.Status)
	case !ok && len(r.Body) > 0:
		return fmt.Errorf("status %d with a body: want error only", r.Status)
	}
	if r.Error != nil {
		if r.Error.Code == "" || len(r.Error.Code) > MaxIDLen {
			return fmt.Errorf("error.code: want 1..%d bytes, got %d", MaxIDLen, len(r.Error.Code))
		}
		if len(r.Error.Message) > MaxPredictErrorMessage {
			return fmt.Errorf("error.message is %d bytes, want at most %d", len(r.Error.Message), MaxPredictErrorMessage)
		}
	}
	return nil
}

// ValidateModelRef checks a model reference "id" or "id@version".
func ValidateModelRef(s string) error {
	id, ver, pinned := strings.Cut(s, "@")
	if err := ValidateID("model", id); err != nil {
		return err
	}
	if pinned {
		if err := ValidateID("model version", ver); err != nil {
			return err
		}
	}
	return nil
}

func isJSONObject(b json.RawMessage) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}
