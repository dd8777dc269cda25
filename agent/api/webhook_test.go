package api_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestSubmitJobBadWebhook: a job whose webhook the queue refuses is a 400
// with the validation message (not a 500), and nothing is queued; the
// control with an http webhook is accepted.
func TestSubmitJobBadWebhook(t *testing.T) {
	e := start(t, opts{})
	for _, hook := range []string{"file:///etc/passwd", "http://169.254.169.254/latest/meta-data/", "gopher://x"} {
		r := e.do(t, "POST", "/api/v1/models/iris/jobs", `{"instances":[[5.1,3.5,1.4,0.2]],"parameters":{"webhook":"`+hook+`"}}`)
		if r.status != http.StatusBadRequest {
			t.Fatalf("webhook %s: status %d (%s), want 400", hook, r.status, r.body)
		}
		if code := r.errCode(t); code != "invalid_webhook" {
			t.Errorf("webhook %s: code %q, want invalid_webhook", hook, code)
		}
		if !strings.Contains(string(r.body), "webhook URL refused") {
			t.Errorf("webhook %s: message does not say why: %s", hook, r.body)
		}
	}
	r := e.do(t, "POST", "/api/v1/models/iris/jobs", `{"instances":[[5.1,3.5,1.4,0.2]],"parameters":{"webhook":"http://127.0.0.1:9/hook"}}`)
	if r.status != http.StatusAccepted {
		t.Fatalf("control: http webhook: status %d (%s), want 202", r.status, r.body)
	}
}
