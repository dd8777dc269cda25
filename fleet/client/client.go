// Package client is the Go client of fleet-server's /api/v1 REST API, used
// by fleetctl and the demo driver.
package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/edgefleet/edgefleet/fleet/apitype"
	"github.com/edgefleet/edgefleet/fleet/auth"
	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/fleet/rollout"
	"github.com/edgefleet/edgefleet/fleet/telemetry"
)

// Client calls one fleet-server.
type Client struct {
	Base  string // e.g. http://127.0.0.1:8080
	Token string // API token sent as "Authorization: Bearer <token>"
	HTTP  *http.Client
}

// New returns a client for base.
func New(base, token string) *Client {
	return &Client{Base: strings.TrimRight(base, "/"), Token: token, HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// UseCA makes the client trust only the fleet CA in caPEM (the server's
// <data-dir>/pki/ca.pem) for https:// servers.
func (c *Client) UseCA(caPEM []byte) error {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return errors.New("CA file has no PEM certificates")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	c.HTTP.Transport = tr
	return nil
}

// ReadTokenFile reads an API token from a file (e.g. the server's
// <data-dir>/admin.token), trimming surrounding whitespace.
func ReadTokenFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	return tok, nil
}

// APIError is a non-2xx answer.
type APIError struct {
	Status  int
	Code    string
	Message string
	// RetryAfter is the server's Retry-After (429 answers).
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	hint := ""
	switch e.Status {
	case http.StatusUnauthorized:
		hint = " (give an API token: --token, --token-file, FLEET_TOKEN; the server wrote its first admin token to <data-dir>/admin.token)"
	case http.StatusForbidden:
		if e.Code == "forbidden" {
			hint = " (the token's scope is too small for this call; ask an admin for an operator or admin token)"
		}
	}
	return fmt.Sprintf("fleet-server: %s (HTTP %d): %s%s", e.Code, e.Status, e.Message, hint)
}

// Do sends method path with body (JSON-encoded unless nil) and decodes the
// answer into out (if non-nil).
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil || (method != http.MethodGet && method != http.MethodHead) {
		// The server refuses mutating calls without it (CSRF defence).
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, c.Base+path, err)
	}
	defer resp.Body.Close()
	return decodeAnswer(resp, method+" "+path, out)
}

// decodeAnswer turns a non-2xx answer into an *APIError and decodes a
// 2xx answer into out (if non-nil).
func decodeAnswer(resp *http.Response, what string, out any) error {
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s: read: %w", what, err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		json.Unmarshal(b, &e)
		if e.Error.Message == "" {
			e.Error.Message = strings.TrimSpace(string(b))
		}
		ae := &APIError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
		if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			ae.RetryAfter = time.Duration(ra) * time.Second
		}
		return ae
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s: decode: %w", what, err)
		}
	}
	return nil
}

// Devices lists devices matching selector.
func (c *Client) Devices(ctx context.Context, selector string) ([]apitype.DeviceView, error) {
	var out []apitype.DeviceView
	return out, c.Do(ctx, "GET", "/api/v1/devices?selector="+url.QueryEscape(selector), nil, &out)
}

// Device returns one device with its jobs.
func (c *Client) Device(ctx context.Context, id string) (apitype.DeviceView, error) {
	var out apitype.DeviceView
	return out, c.Do(ctx, "GET", "/api/v1/devices/"+url.PathEscape(id), nil, &out)
}

// CreateEnrollToken creates an enrollment token and returns its secret.
func (c *Client) CreateEnrollToken(ctx context.Context, req apitype.TokenRequest) (string, error) {
	var out apitype.EnrollTokenResponse
	return out.Token, c.Do(ctx, "POST", "/api/v1/enroll-tokens", req, &out)
}

// CreateAPIToken creates an API token (admin only); the secret is in the
// answer, shown once.
func (c *Client) CreateAPIToken(ctx context.Context, req apitype.APITokenRequest) (apitype.APITokenResponse, error) {
	var out apitype.APITokenResponse
	return out, c.Do(ctx, "POST", "/api/v1/tokens", req, &out)
}

// APITokens lists API tokens (admin only).
func (c *Client) APITokens(ctx context.Context) ([]auth.Token, error) {
	var out []auth.Token
	return out, c.Do(ctx, "GET", "/api/v1/tokens", nil, &out)
}

// RevokeAPIToken revokes an API token by id (admin only).
func (c *Client) RevokeAPIToken(ctx context.Context, id string) (auth.Token, error) {
	var out auth.Token
	return out, c.Do(ctx, "DELETE", "/api/v1/tokens/"+url.PathEscape(id), nil, &out)
}

// Whoami returns the caller's token id, name and scope.
func (c *Client) Whoami(ctx context.Context) (apitype.Principal, error) {
	var out apitype.Principal
	return out, c.Do(ctx, "GET", "/api/v1/whoami", nil, &out)
}

// AuditQuery selects audit entries (zero fields: no filter).
type AuditQuery struct {
	Actor, Method, Route, Since string
	Before                      uint64
	Limit                       int
}

// Audit reads one page of the audit log, newest first (admin only).
func (c *Client) Audit(ctx context.Context, q AuditQuery) (apitype.AuditPage, error) {
	v := url.Values{}
	for k, s := range map[string]string{"actor": q.Actor, "method": q.Method, "route": q.Route, "since": q.Since} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.Before > 0 {
		v.Set("before", strconv.FormatUint(q.Before, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out apitype.AuditPage
	return out, c.Do(ctx, "GET", "/api/v1/audit?"+v.Encode(), nil, &out)
}

// AddModel registers a signed release.
func (c *Client) AddModel(ctx context.Context, m registry.Model) (registry.Model, error) {
	var out registry.Model
	return out, c.Do(ctx, "POST", "/api/v1/models", m, &out)
}

// Models lists model versions (of one id when id != "").
func (c *Client) Models(ctx context.Context, id string) ([]registry.Model, error) {
	var out []registry.Model
	p := "/api/v1/models"
	if id != "" {
		p += "/" + url.PathEscape(id)
	}
	return out, c.Do(ctx, "GET", p, nil, &out)
}

// CreateRollout starts a rollout.
func (c *Client) CreateRollout(ctx context.Context, req apitype.RolloutRequest) (*rollout.Rollout, error) {
	var out rollout.Rollout
	return &out, c.Do(ctx, "POST", "/api/v1/rollouts", req, &out)
}

// Rollout returns one rollout.
func (c *Client) Rollout(ctx context.Context, id string) (*rollout.Rollout, error) {
	var out rollout.Rollout
	return &out, c.Do(ctx, "GET", "/api/v1/rollouts/"+url.PathEscape(id), nil, &out)
}

// Rollouts lists rollouts, newest first.
func (c *Client) Rollouts(ctx context.Context) ([]*rollout.Rollout, error) {
	var out []*rollout.Rollout
	return out, c.Do(ctx, "GET", "/api/v1/rollouts", nil, &out)
}

// Command sends promote, pause, resume or abort.
func (c *Client) Command(ctx context.Context, id string, cmd rollout.Command) (*rollout.Rollout, error) {
	var out rollout.Rollout
	return &out, c.Do(ctx, "POST", "/api/v1/rollouts/"+url.PathEscape(id)+"/"+string(cmd), nil, &out)
}

// Health aggregates telemetry (since is a duration like "15m", or "").
func (c *Client) Health(ctx context.Context, model, version, since string) (telemetry.Health, error) {
	var out telemetry.Health
	q := url.Values{"model": {model}, "version": {version}, "since": {since}}
	return out, c.Do(ctx, "GET", "/api/v1/telemetry/health?"+q.Encode(), nil, &out)
}

// Agents lists the released edge-agent binaries by platform and version.
func (c *Client) Agents(ctx context.Context) ([]apitype.AgentRelease, error) {
	var out []apitype.AgentRelease
	return out, c.Do(ctx, "GET", "/api/v1/agents", nil, &out)
}

// AgentPush describes an edge-agent binary to release with PushAgent.
type AgentPush struct {
	// Path is the binary; Version the version it was built as (-X
	// main.version); Platform GOOS/GOARCH[/vGOARM], e.g. linux/arm/v7.
	Path, Version, Platform string
	// Progress, if set, is called as bytes are sent: done of total.
	Progress func(done, total int64)
}

// PushAgent uploads an edge-agent binary; the server signs it into its
// update repository as the release of p.Version for p.Platform. The
// binary's sha256 goes with it, so bytes corrupted on the way are refused.
// The upload is bounded by ctx only (not by the client's timeout).
func (c *Client) PushAgent(ctx context.Context, p AgentPush) (apitype.AgentRelease, error) {
	var out apitype.AgentRelease
	f, err := os.Open(p.Path)
	if err != nil {
		return out, fmt.Errorf("push agent: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return out, fmt.Errorf("push agent: %w", err)
	}
	if !st.Mode().IsRegular() || st.Size() == 0 {
		return out, fmt.Errorf("push agent: %s is not a non-empty regular file", p.Path)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return out, fmt.Errorf("push agent: hash %s: %w", p.Path, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return out, fmt.Errorf("push agent: %w", err)
	}
	q := url.Values{"version": {p.Version}, "platform": {p.Platform}, "sha256": {hex.EncodeToString(h.Sum(nil))}}
	body := &countingReader{r: f, total: st.Size(), fn: p.Progress}
	req, err := http.NewRequestWithContext(ctx, "POST", c.Base+"/api/v1/agents?"+q.Encode(), body)
	if err != nil {
		return out, fmt.Errorf("push agent: %w", err)
	}
	req.ContentLength = st.Size()
	req.Header.Set("Content-Type", apitype.AgentBodyType)
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := *c.HTTP
	hc.Timeout = 0 // a big binary on a slow link takes as long as it takes
	resp, err := hc.Do(req)
	if err != nil {
		return out, fmt.Errorf("push agent: POST %s: %w", c.Base+"/api/v1/agents", err)
	}
	defer resp.Body.Close()
	return out, decodeAnswer(resp, "POST /api/v1/agents", &out)
}

// countingReader reports how much of total was read.
type countingReader struct {
	r     io.Reader
	done  int64
	total int64
	fn    func(done, total int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.done += int64(n)
	if c.fn != nil && n > 0 {
		c.fn(c.done, c.total)
	}
	return n, err
}

// Predict runs a prediction on a device through the fleet server (POST
// /api/v1/devices/{device}/predict/{model}, operator scope): body is the
// agent's REST predict request ({"instances": …} or {"inputs": …}), the
// answer the device's JSON response. It waits as long as ctx allows, not
// the client's usual 30 s: the server gives up after its own
// --predict-timeout (504). A device the server knows to be offline is an
// *APIError with Status 409 and Code "device_offline" at once; one that is
// connected but has not subscribed to prediction requests within the
// server's --predict-ready-wait is 409 "device_not_ready" (nothing was
// sent: retry).
func (c *Client) Predict(ctx context.Context, device, model string, body []byte) (json.RawMessage, error) {
	path := "/api/v1/devices/" + url.PathEscape(device) + "/predict/" + url.PathEscape(model)
	req, err := http.NewRequestWithContext(ctx, "POST", c.Base+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("predict on %s: %w", device, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := *c.HTTP
	hc.Timeout = 0 // bounded by ctx: the device may take the server's whole predict timeout
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("predict on %s: POST %s: %w", device, c.Base+path, err)
	}
	defer resp.Body.Close()
	var out json.RawMessage
	if err := decodeAnswer(resp, "POST "+path, &out); err != nil {
		return nil, err
	}
	return out, nil
}
