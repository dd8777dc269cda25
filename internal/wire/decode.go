package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxPayload is the largest payload any decoder accepts, in bytes.
const MaxPayload = 1 << 20

// DecodeError reports a payload that could not be decoded or validated.
type DecodeError struct {
	Payload string // the payload type, e.g. "TelemetryBatch"
	Err     error
}

func (e *DecodeError) Error() string { return fmt.Sprintf("decode %s: %v", e.Payload, e.Err) }
func (e *DecodeError) Unwrap() error { return e.Err }

// ErrVersion is wrapped when the "v" field is missing or unsupported.
var ErrVersion = errors.New("unsupported payload version")

type validator interface{ Validate() error }

// decode is the one strict decoder behind every Decode function.
func decode[T any, PT interface {
	*T
	validator
}](name string, b []byte, version func(PT) int) (*T, error) {
	if len(b) > MaxPayload {
		return nil, &DecodeError{name, fmt.Errorf("payload is %d bytes, want at most %d", len(b), MaxPayload)}
	}
	var v T
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&v); err != nil {
		return nil, &DecodeError{name, describeJSON(err)}
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, &DecodeError{name, fmt.Errorf("trailing data after the JSON object")}
	}
	p := PT(&v)
	if got := version(p); got != Version {
		return nil, &DecodeError{name, fmt.Errorf("\"v\" is %d, want %d: %w", got, Version, ErrVersion)}
	}
	if err := p.Validate(); err != nil {
		return nil, &DecodeError{name, err}
	}
	return &v, nil
}

func describeJSON(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("malformed JSON at byte %d: %w", se.Offset, err)
	case errors.As(err, &te):
		return fmt.Errorf("field %q: got JSON %s, want %s", te.Field, te.Value, te.Type)
	case errors.Is(err, io.EOF):
		return fmt.Errorf("empty payload, want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("truncated JSON: %w", err)
	}
	return err
}

// DecodeStatus strictly decodes a Status payload.
func DecodeStatus(b []byte) (*Status, error) {
	return decode("Status", b, func(p *Status) int { return p.V })
}

// DecodeTelemetryBatch strictly decodes a TelemetryBatch payload.
func DecodeTelemetryBatch(b []byte) (*TelemetryBatch, error) {
	return decode("TelemetryBatch", b, func(p *TelemetryBatch) int { return p.V })
}

// DecodeTelemetryAck strictly decodes a TelemetryAck payload.
func DecodeTelemetryAck(b []byte) (*TelemetryAck, error) {
	return decode("TelemetryAck", b, func(p *TelemetryAck) int { return p.V })
}

// DecodeJobNotify strictly decodes a JobNotify payload.
func DecodeJobNotify(b []byte) (*JobNotify, error) {
	return decode("JobNotify", b, func(p *JobNotify) int { return p.V })
}

// DecodeJobsGet strictly decodes a JobsGet payload.
func DecodeJobsGet(b []byte) (*JobsGet, error) {
	return decode("JobsGet", b, func(p *JobsGet) int { return p.V })
}

// DecodeJobUpdate strictly decodes a JobUpdate payload.
func DecodeJobUpdate(b []byte) (*JobUpdate, error) {
	return decode("JobUpdate", b, func(p *JobUpdate) int { return p.V })
}

// DecodeEnrollRequest strictly decodes an EnrollRequest body.
func DecodeEnrollRequest(b []byte) (*EnrollRequest, error) {
	return decode("EnrollRequest", b, func(p *EnrollRequest) int { return p.V })
}

// DecodeEnrollResponse strictly decodes an EnrollResponse body.
func DecodeEnrollResponse(b []byte) (*EnrollResponse, error) {
	return decode("EnrollResponse", b, func(p *EnrollResponse) int { return p.V })
}

// DecodePredictRequest strictly decodes a PredictRequest payload.
func DecodePredictRequest(b []byte) (*PredictRequest, error) {
	return decode("PredictRequest", b, func(p *PredictRequest) int { return p.V })
}

// DecodePredictResponse strictly decodes a PredictResponse payload.
func DecodePredictResponse(b []byte) (*PredictResponse, error) {
	return decode("PredictResponse", b, func(p *PredictResponse) int { return p.V })
}

// Encode marshals a payload (callers fill V). It fails only on values JSON
// cannot carry, such as NaN latencies.
func Encode(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return b, nil
}
