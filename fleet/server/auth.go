package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/edgefleet/edgefleet/fleet/apitype"
	"github.com/edgefleet/edgefleet/fleet/auth"
	"github.com/edgefleet/edgefleet/internal/clock"
)

// AdminTokenFileName is the file in the data dir that receives the admin
// token generated at first start (mode 0600).
const AdminTokenFileName = "admin.token"

// Public marks a route that needs no API token (enrollment: the enrollment
// token in the body authenticates it).
const Public auth.Scope = "public"

// Route is one API route and the scope it requires.
type Route struct {
	Pattern string     // http.ServeMux pattern, "METHOD /path"
	Scope   auth.Scope // auth.Viewer, auth.Operator, auth.Admin or Public
	// RateLimited routes are limited per client address (enrollment).
	RateLimited bool
	// BodyType is the media type a mutating call must send (default
	// application/json; see Route.bodyType in agents_api.go).
	BodyType string

	h   handlerFunc
	raw http.Handler
}

// authState is the server's operator-auth state.
type authState struct {
	tokens    *auth.Tokens
	audit     *auth.Audit
	adminHash []byte // SHA-256 of Config.AdminToken
	enroll    *limiter
	cop       *http.CrossOriginProtection
	// anonAudit bounds audit writes for unauthenticated calls per client
	// address, so a flood of refused POSTs cannot turn into a flood of
	// store writes; the excess is only counted.
	anonAudit  *limiter
	suppressed prometheus.Counter
}

// initAuth opens the token store and audit log, refuses open mode off
// loopback, and generates the admin token at first start.
func (s *Server) initAuth(ctx context.Context) error {
	s.auth.tokens = auth.NewTokens(s.store, s.cfg.Clock)
	s.auth.audit = auth.NewAudit(s.store, s.cfg.AuditMax, s.cfg.Clock)
	s.auth.cop = http.NewCrossOriginProtection()
	r, b := s.cfg.EnrollRate, s.cfg.EnrollBurst
	if r <= 0 {
		r = 5
	}
	if b <= 0 {
		b = 20
	}
	s.auth.enroll = newLimiter(rate.Limit(r), b, 10_000, s.cfg.Clock)
	s.auth.anonAudit = newLimiter(1, 20, 10_000, s.cfg.Clock)
	s.auth.suppressed = prometheus.NewCounter(prometheus.CounterOpts{Name: "edgefleet_audit_suppressed_total",
		Help: "Unauthenticated mutating calls refused but not written to the audit log (over 1/s per client address)."})
	s.prom.MustRegister(s.auth.suppressed)
	if s.cfg.InsecureNoAuth {
		if err := CheckLoopback(s.cfg.HTTPAddr); err != nil {
			return fmt.Errorf("--insecure-no-auth: %w", err)
		}
		s.log.Warn("INSECURE: the API and console accept every call without a token (--insecure-no-auth); anyone on this host can operate the fleet", "listen", s.cfg.HTTPAddr)
		return nil
	}
	if s.cfg.AdminToken != "" {
		if err := auth.CheckSecret("--admin-token", s.cfg.AdminToken); err != nil {
			return err
		}
		h := sha256.Sum256([]byte(s.cfg.AdminToken))
		s.auth.adminHash = h[:]
	}
	n, err := s.auth.tokens.Count(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	secret, tok, err := s.auth.tokens.Create(ctx, "bootstrap-admin", auth.Admin, 0)
	if err != nil {
		return err
	}
	path := s.AdminTokenFile()
	if err := writeSecretFile(path, secret+"\n"); err != nil {
		return fmt.Errorf("write admin token: %w", err)
	}
	s.log.Info("generated the admin API token (only its hash is stored); use it with fleetctl --token-file or the console login",
		"file", path, "token_id", tok.ID)
	return nil
}

// AdminTokenFile is where the generated admin token is written.
func (s *Server) AdminTokenFile() string {
	if s.cfg.AdminTokenFile != "" {
		return s.cfg.AdminTokenFile
	}
	return filepath.Join(s.cfg.DataDir, AdminTokenFileName)
}

// Tokens exposes the API token store (tests, tools).
func (s *Server) Tokens() *auth.Tokens { return s.auth.tokens }

// Audit exposes the audit log.
func (s *Server) Audit() *auth.Audit { return s.auth.audit }

func writeSecretFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// CheckLoopback returns an error unless addr (host:port) listens only on
// a loopback address.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("listen address %q is not loopback: open mode is only allowed on 127.0.0.1, ::1 or localhost", addr)
	}
	return nil
}

// authenticate returns who sent r, or a 401 error.
func (s *Server) authenticate(r *http.Request) (apitype.Principal, error) {
	if s.cfg.InsecureNoAuth {
		return apitype.Principal{ID: "insecure-no-auth", Name: "anonymous", Scope: auth.Admin}, nil
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return apitype.Principal{}, errf(http.StatusUnauthorized, "unauthorized", "missing Authorization: Bearer <token> header (fleetctl: --token, --token-file or FLEET_TOKEN)")
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return apitype.Principal{}, errf(http.StatusUnauthorized, "unauthorized", "the Authorization header must be \"Bearer <token>\"")
	}
	tok = strings.TrimSpace(tok)
	if s.auth.adminHash != nil {
		h := sha256.Sum256([]byte(tok))
		if subtle.ConstantTimeCompare(h[:], s.auth.adminHash) == 1 {
			return apitype.Principal{ID: "admin-token-flag", Name: "--admin-token", Scope: auth.Admin}, nil
		}
	}
	t, err := s.auth.tokens.Authenticate(r.Context(), tok)
	switch {
	case errors.Is(err, auth.ErrRevoked):
		return apitype.Principal{}, errf(http.StatusUnauthorized, "token_revoked", "the token was revoked")
	case errors.Is(err, auth.ErrExpired):
		return apitype.Principal{}, errf(http.StatusUnauthorized, "token_expired", "the token expired")
	case errors.Is(err, auth.ErrUnknown), errors.Is(err, auth.ErrInvalid):
		return apitype.Principal{}, errf(http.StatusUnauthorized, "unauthorized", "unknown or malformed token")
	case err != nil:
		return apitype.Principal{}, errf(http.StatusInternalServerError, "internal", "authenticate: %v", err)
	}
	return apitype.Principal{ID: t.ID, Name: t.Name, Scope: t.Scope}, nil
}

type ctxKey int

const (
	principalKey ctxKey = iota
	auditKey
)

// auditTarget records an id a handler acted on (e.g. a created rollout).
func auditTarget(ctx context.Context, kind, id string) {
	if e, ok := ctx.Value(auditKey).(*auth.Entry); ok {
		if e.Target == nil {
			e.Target = map[string]string{}
		}
		e.Target[kind] = id
	}
}

func principalFrom(ctx context.Context) apitype.Principal {
	p, _ := ctx.Value(principalKey).(apitype.Principal)
	return p
}

func mutating(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

var wildcardRE = regexp.MustCompile(`\{([A-Za-z0-9_]+)(\.\.\.)?\}`)

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// guard wraps a route with, in order: cross-origin protection and the JSON
// content-type requirement on mutating calls (CSRF), the enrollment rate
// limit, authentication and the scope check, and the audit record of
// mutating calls.
func (s *Server) guard(rt Route) http.Handler {
	if rt.Scope == "" {
		panic("route " + rt.Pattern + " declares no scope")
	}
	var next http.Handler = rt.raw
	if next == nil {
		next = s.wrap(rt.h)
	}
	_, path, _ := strings.Cut(rt.Pattern, " ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		var entry *auth.Entry
		if mutating(r.Method) {
			entry = &auth.Entry{Actor: "-", Method: r.Method, Route: path, Path: r.URL.Path, Client: r.RemoteAddr}
			for _, m := range wildcardRE.FindAllStringSubmatch(path, -1) {
				if entry.Target == nil {
					entry.Target = map[string]string{}
				}
				entry.Target[m[1]] = r.PathValue(m[1])
			}
			defer func() {
				entry.Status = sw.status
				if entry.Status == 0 {
					entry.Status = http.StatusOK
				}
				if entry.Actor == "-" {
					if ok, _ := s.auth.anonAudit.allow(clientHost(r.RemoteAddr)); !ok {
						s.auth.suppressed.Inc()
						return
					}
				}
				if _, err := s.auth.audit.Append(context.WithoutCancel(r.Context()), *entry); err != nil {
					s.log.Error("audit log", "err", err)
				}
			}()
		}
		fail := func(err *apiError) {
			if entry != nil {
				entry.Error = err.Code
			}
			if err.Status == http.StatusUnauthorized {
				sw.Header().Set("WWW-Authenticate", `Bearer realm="edgefleet"`)
			}
			writeErr(sw, err)
		}
		if mutating(r.Method) {
			if err := s.auth.cop.Check(r); err != nil {
				fail(errf(http.StatusForbidden, "cross_origin", "cross-origin request refused: %v", err))
				return
			}
			if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != rt.bodyType() {
				fail(errf(http.StatusUnsupportedMediaType, "unsupported_media_type",
					"%s needs Content-Type: %s (got %q); other types are refused to stop cross-site requests", r.Method, rt.bodyType(), r.Header.Get("Content-Type")))
				return
			}
		}
		if rt.RateLimited {
			if ok, wait := s.auth.enroll.allow(clientHost(r.RemoteAddr)); !ok {
				sw.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
				fail(errf(http.StatusTooManyRequests, "rate_limited", "too many requests from %s; retry in %s", clientHost(r.RemoteAddr), wait.Round(time.Second)))
				return
			}
		}
		ctx := r.Context()
		if rt.Scope != Public {
			p, err := s.authenticate(r)
			if err != nil {
				var ae *apiError
				errors.As(err, &ae)
				fail(ae)
				return
			}
			if entry != nil {
				entry.Actor, entry.Name, entry.Scope = p.ID, p.Name, p.Scope
			}
			if !p.Scope.Allows(rt.Scope) {
				fail(errf(http.StatusForbidden, "forbidden", "%s needs a %s token; token %s (%s) has scope %s", rt.Pattern, rt.Scope, p.Name, p.ID, p.Scope))
				return
			}
			ctx = context.WithValue(ctx, principalKey, p)
		} else if entry != nil {
			entry.Actor = "public"
		}
		if entry != nil {
			ctx = context.WithValue(ctx, auditKey, entry)
		}
		next.ServeHTTP(sw, r.WithContext(ctx))
		if entry != nil && sw.status >= 400 && entry.Error == "" {
			entry.Error = http.StatusText(sw.status)
		}
	})
}

func clientHost(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

// limiter is a per-key token bucket with a bounded number of keys.
type limiter struct {
	mu    sync.Mutex
	r     rate.Limit
	burst int
	max   int
	now   func() time.Time
	m     map[string]*rate.Limiter
}

func newLimiter(r rate.Limit, burst, max int, c clock.Clock) *limiter {
	return &limiter{r: r, burst: burst, max: max, now: clock.Or(c).Now, m: map[string]*rate.Limiter{}}
}

// allow takes one token for key, or says how long to wait.
func (l *limiter) allow(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	lim := l.m[key]
	if lim == nil {
		if len(l.m) >= l.max {
			// Forget keys whose bucket is full again: they are equivalent
			// to new ones.
			for k, v := range l.m {
				if v.TokensAt(now) >= float64(l.burst) {
					delete(l.m, k)
				}
			}
			if len(l.m) >= l.max {
				return false, time.Duration(float64(time.Second) / float64(l.r))
			}
		}
		lim = rate.NewLimiter(l.r, l.burst)
		l.m[key] = lim
	}
	res := lim.ReserveN(now, 1)
	if !res.OK() {
		return false, time.Second
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}
