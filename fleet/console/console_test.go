package console

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestServedSelfContained: the console is served with its CSP and
// references nothing outside the server (no CDN, no inline script).
func TestServedSelfContained(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	external := regexp.MustCompile(`(src|href)\s*=\s*["']?(https?:)?//`)
	for _, tc := range []struct{ path, ctype string }{{"/", "text/html"}, {"/app.js", "javascript"}, {"/style.css", "text/css"}} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), tc.ctype) {
			t.Errorf("%s: %d %s", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q", tc.path, csp)
		}
		if m := external.FindString(string(b)); m != "" {
			t.Errorf("%s references an external resource: %q", tc.path, m)
		}
		if tc.path == "/" && (strings.Count(string(b), "<script") != 1 || !strings.Contains(string(b), `<script src="app.js"></script>`)) {
			t.Errorf("index.html: want exactly one external script tag")
		}
	}
}
