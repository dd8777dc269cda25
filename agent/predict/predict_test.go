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
