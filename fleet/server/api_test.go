package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/apitype"
	"github.com/edgefleet/edgefleet/fleet/auth"
	"github.com/edgefleet/edgefleet/fleet/pki"
	"github.com/edgefleet/edgefleet/fleet/server"
)

// enrollSecret is a valid (long enough) enrollment token for tests.
const enrollSecret = "enroll-0f3c9a1b7d2e4f60a8b9c1d2e3f40516"

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// apiEnv is a running server without devices and an HTTPS client that
// trusts its CA.
type apiEnv struct {
	t     *testing.T
	srv   *server.Server
	url   string
	admin string // the generated admin token
	hc    *http.Client
	data  string
	close func()
}

func startAPI(t *testing.T, cfg server.Config) *apiEnv {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	cfg.EmbeddedAddr = "127.0.0.1:0"
	cfg.Tokens = []string{enrollSecret}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &apiEnv{t: t, srv: srv, url: srv.URL(), hc: httpClientFor(t, srv, cfg.DataDir), data: cfg.DataDir}
	e.close = sync.OnceFunc(func() { srv.Close() })
	t.Cleanup(e.close)
	if !cfg.InsecureNoAuth {
		b, err := os.ReadFile(filepath.Join(cfg.DataDir, server.AdminTokenFileName))
		if err != nil {
			t.Fatalf("admin token file: %v", err)
		}
		e.admin = strings.TrimSpace(string(b))
	}
	return e
}

// httpClientFor returns a client trusting the server's fleet CA (plain
// client for an http:// server).
func httpClientFor(t *testing.T, srv *server.Server, dataDir string) *http.Client {
	if !strings.HasPrefix(srv.URL(), "https://") {
		return &http.Client{Timeout: 30 * time.Second}
	}
	caPEM, err := os.ReadFile(filepath.Join(dataDir, server.PKIDir, pki.CACertFile))
	if err != nil {
		t.Fatalf("fleet CA: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// req sends method path with body; hdr are extra "Key: value" headers.
// A non-empty body defaults to Content-Type application/json.
func (e *apiEnv) req(method, path, token, body string, hdr ...string) (int, string, http.Header) {
	e.t.Helper()
	r, _ := http.NewRequest(method, e.url+path, bytes.NewBufferString(body))
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	if method != "GET" {
		r.Header.Set("Content-Type", "application/json")
	}
	for _, h := range hdr {
		k, v, _ := strings.Cut(h, ": ")
		if v == "" {
			r.Header.Del(k)
		} else {
			r.Header.Set(k, v)
		}
	}
	resp, err := e.hc.Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func errCode(body string) string {
	var eb struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	json.Unmarshal([]byte(body), &eb)
	return eb.Error.Code
}

// token creates an API token with the admin token.
func (e *apiEnv) token(name string, scope auth.Scope, ttl string) apitype.APITokenResponse {
	e.t.Helper()
	body, _ := json.Marshal(apitype.APITokenRequest{Name: name, Scope: scope, TTL: ttl})
	code, resp, _ := e.req("POST", "/api/v1/tokens", e.admin, string(body))
	if code != 200 {
		e.t.Fatalf("create token: %d %s", code, resp)
	}
	var out apitype.APITokenResponse
	json.Unmarshal([]byte(resp), &out)
	return out
}

// TestAPIErrors: errors use the one error body; metrics need a token.
func TestAPIErrors(t *testing.T) {
	e := startAPI(t, server.Config{})
	tests := []struct {
		method, path, body string
		code               int
		errCode            string
	}{
		{"GET", "/api/v1/devices/nope", "", 404, "not_found"},
		{"POST", "/api/v1/rollouts", `{"model_id":"m","version":"9"}`, 404, "not_found"},
		{"POST", "/api/v1/rollouts", `{"model_id":"m",`, 400, "bad_json"},
		{"POST", "/api/v1/rollouts", `{"model_id":"m","bogus":1}`, 400, "bad_json"},
		{"POST", "/api/v1/models", `{"id":"m","version":"1","target":{"name":"models/m/1/model.tflite","length":3}}`, 422, "target_missing"},
		{"POST", "/api/v1/models", `{"id":"m","version":"1","target":{"name":"../../etc/passwd","length":3}}`, 400, "bad_request"},
		{"POST", "/api/v1/enroll", `{"v":1,"token":"wrong-token","device_id":"x","hardware":{"arch":"a"}}`, 403, "bad_token"},
		{"POST", "/api/v1/enroll", `{"v":2}`, 400, "bad_request"},
		{"GET", "/api/v1/telemetry/health?since=yesterday", "", 400, "bad_request"},
		{"POST", "/api/v1/rollouts/none/promote", "", 404, "not_found"},
		{"POST", "/api/v1/tokens", `{"name":"x","scope":"root"}`, 400, "bad_request"},
		{"DELETE", "/api/v1/tokens/nope", "", 404, "not_found"},
		{"GET", "/api/v1/audit?limit=0", "", 400, "bad_request"},
	}
	for _, tt := range tests {
		code, body, _ := e.req(tt.method, tt.path, e.admin, tt.body)
		if code != tt.code || errCode(body) != tt.errCode {
			t.Errorf("%s %s: %d %s, want %d %s", tt.method, tt.path, code, body, tt.code, tt.errCode)
		}
	}
	if code, _, _ := e.req("GET", "/metrics", "", ""); code != 401 {
		t.Fatalf("metrics without token: %d", code)
	}
	code, body, _ := e.req("GET", "/metrics", e.admin, "")
	if code != 200 || !strings.Contains(body, "edgefleet_devices 0") {
		t.Fatalf("metrics: %d %s", code, body)
	}
}

var wildcard = regexp.MustCompile(`\{[^}]+\}`)

// TestEveryMutatingRouteNeedsAuth walks every registered route: without a
// token each is refused (except enrollment), a viewer token is refused on
// every mutating and every admin/operator route, and the controls (viewer
// on viewer routes, admin everywhere) are not refused.
func TestEveryMutatingRouteNeedsAuth(t *testing.T) {
	e := startAPI(t, server.Config{})
	viewer := e.token("ro", auth.Viewer, "").Token
	operator := e.token("ops", auth.Operator, "").Token
	var public []string
	routes := server.RoutesOf(e.srv)
	if len(routes) < 20 {
		t.Fatalf("only %d routes", len(routes))
	}
	for _, rt := range routes {
		method, path, _ := strings.Cut(rt.Pattern, " ")
		path = wildcard.ReplaceAllString(path, "x")
		mut := method != "GET"
		if rt.Scope == server.Public {
			public = append(public, rt.Pattern)
			continue
		}
		body := ""
		var hdr []string
		if mut {
			body = "{}"
			if rt.BodyType != "" {
				hdr = []string{"Content-Type: " + rt.BodyType}
			}
		}
		if code, resp, _ := e.req(method, path, "", body, hdr...); code != 401 {
			t.Errorf("%s without token: %d %s", rt.Pattern, code, resp)
		}
		code, resp, _ := e.req(method, path, viewer, body, hdr...)
		switch {
		case (mut || rt.Scope != auth.Viewer) && code != 403:
			t.Errorf("%s (needs %s) with a viewer token: %d %s, want 403", rt.Pattern, rt.Scope, code, resp)
		case !mut && rt.Scope == auth.Viewer && (code == 401 || code == 403):
			t.Errorf("control: %s with a viewer token: %d %s", rt.Pattern, code, resp)
		}
		if mut && rt.Scope == auth.Viewer {
			t.Errorf("mutating route %s only needs viewer", rt.Pattern)
		}
		code, resp, _ = e.req(method, path, operator, body, hdr...)
		if rt.Scope == auth.Admin && code != 403 {
			t.Errorf("%s (admin) with an operator token: %d %s", rt.Pattern, code, resp)
		}
		if rt.Scope != auth.Admin && (code == 401 || code == 403) {
			t.Errorf("control: %s (%s) with an operator token: %d %s", rt.Pattern, rt.Scope, code, resp)
		}
		if code, resp, _ := e.req(method, path, e.admin, body, hdr...); code == 401 || code == 403 {
			t.Errorf("control: %s with the admin token: %d %s", rt.Pattern, code, resp)
		}
	}
	if strings.Join(public, ",") != "POST /api/v1/enroll" {
		t.Errorf("public routes %v, want only enrollment", public)
	}
	// Admin-only surfaces named in the issue.
	for _, p := range []string{"GET /api/v1/broker/mosquitto", "GET /api/v1/tokens", "POST /api/v1/tokens", "GET /api/v1/audit",
		"POST /api/v1/enroll-tokens", "DELETE /api/v1/devices/{id}"} {
		found := false
		for _, rt := range routes {
			if rt.Pattern == p {
				found = rt.Scope == auth.Admin
			}
		}
		if !found {
			t.Errorf("%s is not admin-only", p)
		}
	}
}

// TestBearerOnly: the token without "Bearer " (the old bug), other schemes
// and unknown tokens are refused; the same token as a Bearer works.
func TestBearerOnly(t *testing.T) {
	e := startAPI(t, server.Config{})
	for name, h := range map[string]string{
		"bare":    e.admin,
		"basic":   "Basic " + e.admin,
		"empty":   "Bearer ",
		"unknown": "Bearer eft_0011223344556677_" + strings.Repeat("A", 43),
		"garbage": "Bearer " + strings.Repeat("x", 5000),
	} {
		if code, body, _ := e.req("GET", "/api/v1/devices", "", "", "Authorization: "+h); code != 401 {
			t.Errorf("%s: %d %s", name, code, body)
		}
	}
	if code, body, _ := e.req("GET", "/api/v1/devices", "", "", "Authorization: Bearer "+e.admin); code != 200 {
		t.Fatalf("control: %d %s", code, body)
	}
}

// TestCSRF: a cross-site "simple" POST (text/plain, or no content type)
// is refused even with a valid token and on an open (--insecure-no-auth)
// server; so is a POST the browser marks cross-site; the JSON control
// succeeds.
func TestCSRF(t *testing.T) {
	e := startAPI(t, server.Config{})
	count := func() int {
		ts, err := e.srv.Tokens().List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return len(ts)
	}
	body := `{"name":"evil","scope":"admin"}`
	before := count()
	for name, hdr := range map[string][]string{
		"text/plain":      {"Content-Type: text/plain;charset=UTF-8"},
		"form":            {"Content-Type: application/x-www-form-urlencoded"},
		"no content type": {"Content-Type: "},
		"cross-site":      {"Sec-Fetch-Site: cross-site"},
		"foreign origin":  {"Origin: https://evil.example"},
	} {
		code, resp, _ := e.req("POST", "/api/v1/tokens", e.admin, body, hdr...)
		if code != 415 && code != 403 {
			t.Errorf("%s: %d %s", name, code, resp)
		}
	}
	if n := count(); n != before {
		t.Fatalf("CSRF attempts created %d tokens", n-before)
	}
	if code, resp, _ := e.req("POST", "/api/v1/tokens", e.admin, body, "Sec-Fetch-Site: same-origin"); code != 200 || count() != before+1 {
		t.Fatalf("control: %d %s", code, resp)
	}

	// Open mode: no token needed, so only the content-type check stands
	// between a malicious page and the API.
	o := startAPI(t, server.Config{InsecureNoAuth: true})
	if code, resp, _ := o.req("POST", "/api/v1/enroll-tokens", "", `{}`, "Content-Type: text/plain"); code != 415 {
		t.Fatalf("open mode text/plain: %d %s", code, resp)
	}
	if code, resp, _ := o.req("POST", "/api/v1/enroll-tokens", "", `{}`); code != 200 || !strings.Contains(resp, `"token"`) {
		t.Fatalf("open mode control: %d %s", code, resp)
	}
}

// TestRevokedAndExpiredTokens: a revoked token and an expired token are
// refused; an unrevoked, unexpired one keeps working.
func TestRevokedAndExpiredTokens(t *testing.T) {
	clk := &testClock{t: time.Now()}
	e := startAPI(t, server.Config{Clock: clk})
	a := e.token("to-revoke", auth.Operator, "")
	b := e.token("short-lived", auth.Viewer, "1h")
	c := e.token("control", auth.Viewer, "48h")
	for _, tok := range []string{a.Token, b.Token, c.Token} {
		if code, body, _ := e.req("GET", "/api/v1/devices", tok, ""); code != 200 {
			t.Fatalf("before: %d %s", code, body)
		}
	}
	if code, body, _ := e.req("DELETE", "/api/v1/tokens/"+a.Info.ID, e.admin, ""); code != 200 || !strings.Contains(body, "revoked_at") {
		t.Fatalf("revoke: %d %s", code, body)
	}
	if code, body, _ := e.req("GET", "/api/v1/devices", a.Token, ""); code != 401 || errCode(body) != "token_revoked" {
		t.Fatalf("revoked token: %d %s", code, body)
	}
	clk.Add(2 * time.Hour)
	if code, body, _ := e.req("GET", "/api/v1/devices", b.Token, ""); code != 401 || errCode(body) != "token_expired" {
		t.Fatalf("expired token: %d %s", code, body)
	}
	if code, body, _ := e.req("GET", "/api/v1/devices", c.Token, ""); code != 200 {
		t.Fatalf("control token: %d %s", code, body)
	}
	// The list shows all three, without secrets.
	code, body, _ := e.req("GET", "/api/v1/tokens", e.admin, "")
	if code != 200 || strings.Contains(body, a.Token[20:]) || strings.Contains(body, `"hash"`) || !strings.Contains(body, "short-lived") {
		t.Fatalf("list: %d %s", code, body)
	}
}

// TestAuditLog: mutating calls, including refused ones, are recorded with
// who, what, target, status and client; reads are not; viewers cannot read
// the log; paging works.
func TestAuditLog(t *testing.T) {
	e := startAPI(t, server.Config{})
	viewer := e.token("auditor-test-viewer", auth.Viewer, "")
	e.req("POST", "/api/v1/rollouts/r1/abort", viewer.Token, "")           // 403
	e.req("PUT", "/api/v1/groups/lab", "", `{"selector":"site=lab"}`)      // 401
	e.req("PUT", "/api/v1/groups/lab", e.admin, `{"selector":"site=lab"}`) // 200
	e.req("GET", "/api/v1/devices", e.admin, "")                           // not audited
	e.req("DELETE", "/api/v1/tokens/"+viewer.Info.ID, e.admin, "")         // 200
	code, body, _ := e.req("GET", "/api/v1/audit", viewer.Token, "")
	if code != 401 { // revoked meanwhile
		t.Fatalf("revoked viewer reads audit: %d %s", code, body)
	}
	v2 := e.token("v2", auth.Viewer, "").Token
	if code, body, _ := e.req("GET", "/api/v1/audit", v2, ""); code != 403 {
		t.Fatalf("viewer reads audit: %d %s", code, body)
	}
	code, body, _ = e.req("GET", "/api/v1/audit?limit=100", e.admin, "")
	if code != 200 {
		t.Fatalf("audit: %d %s", code, body)
	}
	var page apitype.AuditPage
	json.Unmarshal([]byte(body), &page)
	// Newest first: token v2, revoke, group (admin), group (401), abort (403), create viewer.
	want := []struct {
		route  string
		status int
		actor  string
		target string
	}{
		{"/api/v1/tokens", 200, "bootstrap-admin", "token"},
		{"/api/v1/tokens/{id}", 200, "bootstrap-admin", "id=" + viewer.Info.ID},
		{"/api/v1/groups/{name}", 200, "bootstrap-admin", "name=lab"},
		{"/api/v1/groups/{name}", 401, "", "name=lab"},
		{"/api/v1/rollouts/{id}/{cmd}", 403, "auditor-test-viewer", "cmd=abort"},
		{"/api/v1/tokens", 200, "bootstrap-admin", "token=" + viewer.Info.ID},
	}
	if len(page.Entries) != len(want) {
		t.Fatalf("audit has %d entries, want %d: %s", len(page.Entries), len(want), body)
	}
	for i, w := range want {
		got := page.Entries[i]
		tb, _ := json.Marshal(got.Target)
		tgt := strings.ReplaceAll(strings.ReplaceAll(string(tb), `"`, ""), ":", "=")
		if got.Route != w.route || got.Status != w.status || got.Name != w.actor || !strings.Contains(tgt, w.target) ||
			!strings.HasPrefix(got.Client, "127.0.0.1:") || got.Time.IsZero() || got.Method == "GET" {
			t.Errorf("entry %d = %+v, want %+v", i, got, w)
		}
	}
	if page.Entries[3].Actor != "-" || page.Entries[3].Error != "unauthorized" {
		t.Errorf("unauthenticated entry: %+v", page.Entries[3])
	}
	// Paging and filters.
	code, body, _ = e.req("GET", "/api/v1/audit?limit=2", e.admin, "")
	json.Unmarshal([]byte(body), &page)
	if code != 200 || len(page.Entries) != 2 || page.Next == 0 {
		t.Fatalf("page 1: %d %s", code, body)
	}
	code, body, _ = e.req("GET", "/api/v1/audit?limit=100&before="+jsonNum(page.Next), e.admin, "")
	var p2 apitype.AuditPage
	json.Unmarshal([]byte(body), &p2)
	if code != 200 || len(p2.Entries) != len(want)-2 || p2.Entries[0].Seq >= page.Entries[1].Seq || p2.Next != 0 {
		t.Fatalf("page 2: %d %s", code, body)
	}
	code, body, _ = e.req("GET", "/api/v1/audit?actor=auditor-test-viewer", e.admin, "")
	json.Unmarshal([]byte(body), &page)
	if code != 200 || len(page.Entries) != 1 || page.Entries[0].Status != 403 {
		t.Fatalf("actor filter: %d %s", code, body)
	}
}

func jsonNum(n uint64) string { b, _ := json.Marshal(n); return string(b) }

// TestInsecureNoAuthLoopbackOnly: open mode is refused on a non-loopback
// listen address; on loopback it serves without a token and logs a
// warning.
func TestInsecureNoAuthLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0"} {
		_, err := server.Start(context.Background(), server.Config{DataDir: t.TempDir(), HTTPAddr: addr, EmbeddedAddr: "127.0.0.1:0",
			InsecureNoAuth: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err == nil || !strings.Contains(err.Error(), "not loopback") {
			t.Fatalf("--insecure-no-auth on %s: %v", addr, err)
		}
	}
	var logs syncBuf
	e := startAPI(t, server.Config{InsecureNoAuth: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if code, body, _ := e.req("GET", "/api/v1/devices", "", ""); code != 200 {
		t.Fatalf("control: open mode on loopback: %d %s", code, body)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "INSECURE") {
		t.Fatalf("no warning logged:\n%s", logs.String())
	}
	if _, err := os.Stat(filepath.Join(e.data, server.AdminTokenFileName)); err == nil {
		t.Fatal("open mode wrote an admin token")
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestAdminTokenBootstrap: the first start writes a 0600 admin token file
// whose secret is not in the database and logs where it is; a restart
// keeps it and does not write a new one.
func TestAdminTokenBootstrap(t *testing.T) {
	dir := t.TempDir()
	var logs syncBuf
	e := startAPI(t, server.Config{DataDir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	path := filepath.Join(dir, server.AdminTokenFileName)
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("admin token file: %v %v", st.Mode(), err)
	}
	if !strings.Contains(logs.String(), path) {
		t.Fatalf("log does not say where the token is:\n%s", logs.String())
	}
	if code, body, _ := e.req("GET", "/api/v1/whoami", e.admin, ""); code != 200 || !strings.Contains(body, `"admin"`) {
		t.Fatalf("whoami: %d %s", code, body)
	}
	_, secret, err := auth.ParseToken(e.admin)
	if err != nil {
		t.Fatal(err)
	}
	e.close()
	db, err := os.ReadFile(filepath.Join(dir, "fleet.db"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(db, []byte(secret)) {
		t.Fatal("the admin secret is stored in fleet.db")
	}
	e2 := startAPI(t, server.Config{DataDir: dir})
	if e2.admin != e.admin {
		t.Fatal("restart rewrote the admin token")
	}
	if code, body, _ := e2.req("GET", "/api/v1/whoami", e2.admin, ""); code != 200 {
		t.Fatalf("after restart: %d %s", code, body)
	}
	// A configured --admin-token must be strong.
	_, err = server.Start(context.Background(), server.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", EmbeddedAddr: "127.0.0.1:0",
		AdminToken: "admin-secret", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("short --admin-token: %v", err)
	}
}

// TestEnrollRateLimit: enrollment calls beyond the burst from one client
// address get 429 with Retry-After before the body is looked at; the calls
// within the burst reach the handler (control).
func TestEnrollRateLimit(t *testing.T) {
	clk := &testClock{t: time.Now()}
	e := startAPI(t, server.Config{Clock: clk, EnrollRate: 0.5, EnrollBurst: 3})
	bad := `{"v":1,"token":"guess-0000000000000000000000000000","device_id":"x","hardware":{"arch":"a"}}`
	for i := 0; i < 3; i++ {
		if code, body, _ := e.req("POST", "/api/v1/enroll", "", bad); code != 403 || errCode(body) != "bad_token" {
			t.Fatalf("call %d within the burst: %d %s", i, code, body)
		}
	}
	code, body, h := e.req("POST", "/api/v1/enroll", "", bad)
	if code != 429 || h.Get("Retry-After") != "2" {
		t.Fatalf("over the limit: %d %s Retry-After %q", code, body, h.Get("Retry-After"))
	}
	// Time refills the bucket.
	clk.Add(2 * time.Second)
	if code, body, _ := e.req("POST", "/api/v1/enroll", "", bad); code != 403 {
		t.Fatalf("after refill: %d %s", code, body)
	}
}

// TestAuditFloodBounded: a flood of unauthenticated POSTs from one address
// writes at most the burst (20) to the audit log and counts the rest; an
// authenticated call afterwards is still recorded (control).
func TestAuditFloodBounded(t *testing.T) {
	clk := &testClock{t: time.Now()}
	e := startAPI(t, server.Config{Clock: clk})
	for i := 0; i < 60; i++ {
		if code, _, _ := e.req("POST", "/api/v1/tokens", "", `{}`); code != 401 {
			t.Fatalf("flood call %d: %d", i, code)
		}
	}
	if code, body, _ := e.req("PUT", "/api/v1/groups/lab", e.admin, `{"selector":"site=lab"}`); code != 200 {
		t.Fatalf("control: %d %s", code, body)
	}
	code, body, _ := e.req("GET", "/api/v1/audit?limit=1000", e.admin, "")
	var page apitype.AuditPage
	json.Unmarshal([]byte(body), &page)
	anon := 0
	for _, en := range page.Entries {
		if en.Actor == "-" {
			anon++
		}
	}
	if code != 200 || anon != 20 || len(page.Entries) != 21 || page.Entries[0].Route != "/api/v1/groups/{name}" {
		t.Fatalf("audit after flood: %d, %d unauthenticated of %d entries", code, anon, len(page.Entries))
	}
	_, metrics, _ := e.req("GET", "/metrics", e.admin, "")
	if !strings.Contains(metrics, "edgefleet_audit_suppressed_total 40") {
		t.Fatalf("suppressed counter missing:\n%s", metrics)
	}
}

// TestRepoHandlerFromConfig: /repo/ is served by Config.RepoHandler when set
// (the command wires ota/release.Handler), else by a file server over RepoDir.
func TestRepoHandlerFromConfig(t *testing.T) {
	repo := t.TempDir()
	if err := os.WriteFile(filepath.Join(repo, "plain.txt"), []byte("from disk"), 0o600); err != nil {
		t.Fatal(err)
	}
	var gotDir string
	custom := func(dir string) http.Handler {
		gotDir = dir
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("custom " + r.URL.Path)) })
	}
	tests := []struct {
		name    string
		handler func(string) http.Handler
		want    string
	}{
		{"file server", nil, "from disk"},
		{"configured", custom, "custom /plain.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startAPI(t, server.Config{RepoDir: repo, RepoHandler: tt.handler})
			code, body, _ := e.req("GET", "/repo/plain.txt", "", "")
			if code != http.StatusOK || body != tt.want {
				t.Fatalf("GET /repo/plain.txt = %d %q, want 200 %q", code, body, tt.want)
			}
		})
	}
	if gotDir != repo {
		t.Fatalf("RepoHandler got dir %q, want %q", gotDir, repo)
	}
}
