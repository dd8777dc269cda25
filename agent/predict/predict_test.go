package predict

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/edgefleet/edgefleet/agent/serving"
)

func TestSplitModel(t *testing.T) {
	for _, c := range []struct{ in, id, version string }{
		{"iris", "iris", ""},
		{"iris@2", "iris", "2"},
		{"iris@", "iris", ""},
		{"a@b@c", "a", "b@c"},
	} {
		if id, v := SplitModel(c.in); id != c.id || v != c.version {
			t.Errorf("SplitModel(%q) = %q, %q; want %q, %q", c.in, id, v, c.id, c.version)
		}
	}
}

func TestAsError(t *testing.T) {
	own := &Error{Code: CodeTooManyInstances, Message: "too many"}
	for _, c := range []struct {
		err  error
		code string
	}{
		{own, CodeTooManyInstances},
		{fmt.Errorf("wrapped: %w", own), CodeTooManyInstances},
		{fmt.Errorf("load: %w", serving.ErrModelNotFound), "model_not_found"},
		{serving.ErrQueueFull, "overloaded"},
		{context.DeadlineExceeded, "timeout"},
		{&serving.InputError{Instance: 3, Msg: "bad"}, "invalid_input"},
		{errors.New("boom"), "internal"},
	} {
		if got := AsError(c.err); got.Code != c.code || got.Message == "" {
			t.Errorf("AsError(%v) = %+v, want code %q", c.err, got, c.code)
		}
	}
}

// TestPredictRefusesBySize: the request bounds are checked before any model
// is resolved (the service has no manager here: reaching it would panic).
func TestPredictRefusesBySize(t *testing.T) {
	s := New(nil, Limits{MaxInstances: 2, MaxBatchInstances: 3})
	inst := func(n int) Request {
		r := Request{}
		for range n {
			r.Instances = append(r.Instances, json.RawMessage(`[1]`))
		}
		return r
	}
	for _, c := range []struct {
		n       int
		partial bool
		code    string
	}{
		{0, false, CodeBadRequest},
		{0, true, CodeBadRequest},
		{3, false, CodeTooManyInstances},
		{4, true, CodeTooManyInstances},
	} {
		_, err := s.Predict(context.Background(), "m", inst(c.n), c.partial)
		var pe *Error
		if !errors.As(err, &pe) || pe.Code != c.code {
			t.Errorf("%d instances (partial %v): %v, want code %s", c.n, c.partial, err, c.code)
		}
	}
}

// TestPredictBodyRefuses: a JSON body is refused for its size, its JSON and
// its instance count before any model is resolved (no manager here), with
// the code and HTTP status the HTTP API would answer; the controls (a body
// of exactly the limit, instances decoded as slices of the body) pass the
// checks they are next to.
func TestPredictBodyRefuses(t *testing.T) {
	s := New(nil, Limits{MaxInstances: 2, MaxBatchInstances: 3})
	for _, c := range []struct {
		name   string
		body   string
		max    int64
		code   string
		status int
	}{
		{"over the size limit", `{"instances":[[1]]}`, 10, CodeBodyTooLarge, 413},
		{"at the size limit, malformed (control)", `{"instances":[1`, 15, CodeBadRequest, 400},
		{"malformed", `{"instances":`, 0, CodeBadRequest, 400},
		{"no instances", `{"instances":[]}`, 0, CodeBadRequest, 400},
		{"over MaxBatchInstances while decoding", `{"instances":[[1],[2],[3],[4]]}`, 0, CodeTooManyInstances, 413},
		{"over MaxInstances", `{"instances":[[1],[2],[3]]}`, 0, CodeTooManyInstances, 413},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.PredictBody(context.Background(), "m", []byte(c.body), BodyLimits{MaxBytes: c.max})
			var pe *Error
			if !errors.As(err, &pe) || pe.Code != c.code || pe.HTTPStatus() != c.status {
				t.Fatalf("%s: %v, want %s (%d)", c.body, err, c.code, c.status)
			}
		})
	}
	body := []byte(`{"instances":[ [1, 2], {"a":"x,]"} ,3 ],"parameters":{"key":"k"}}`)
	req, err := s.Decode(body)
	if err != nil || len(req.Instances) != 3 || string(req.Instances[1]) != `{"a":"x,]"}` || req.Parameters.Key != "k" {
		t.Fatalf("Decode: %+v %v", req, err)
	}
}
