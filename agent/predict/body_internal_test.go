package predict

import (
	"net/http"
	"testing"

	"github.com/edgefleet/edgefleet/agent/serving"
)

// TestHTTPStatusOf: every code of the table is an error status; an
// unknown code is 500; *Error reports its code's status, code and message
// (what fleetlink and jobs read).
func TestHTTPStatusOf(t *testing.T) {
	for code, st := range codeStatus {
		if code != serving.ErrorCode(nil) && HTTPStatusOf(code) < 400 {
			t.Errorf("code %s has status %d", code, st)
		}
	}
	if got := HTTPStatusOf("no_such_code"); got != http.StatusInternalServerError {
		t.Errorf("unknown code: status %d, want 500", got)
	}
	e := &Error{Code: CodeTooManyInstances, Message: "3 instances"}
	if e.HTTPStatus() != http.StatusRequestEntityTooLarge || e.ErrorCode() != CodeTooManyInstances || e.ErrorMessage() != "3 instances" {
		t.Errorf("Error methods: %d %q %q", e.HTTPStatus(), e.ErrorCode(), e.ErrorMessage())
	}
}
