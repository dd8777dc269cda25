package server

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/edgefleet/edgefleet/fleet/apitype"
	"github.com/edgefleet/edgefleet/fleet/auth"
)

// whoami answers GET /api/v1/whoami with the caller's token id, name and
// scope (the console uses it to check a login).
func (s *Server) whoami(w http.ResponseWriter, r *http.Request) (any, error) {
	return principalFrom(r.Context()), nil
}

func (s *Server) createAPIToken(w http.ResponseWriter, r *http.Request) (any, error) {
	var req apitype.APITokenRequest
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	var ttl time.Duration
	if req.TTL != "" {
		var err error
		if ttl, err = time.ParseDuration(req.TTL); err != nil || ttl < 0 {
			return nil, errf(http.StatusBadRequest, "bad_request", "ttl %q: want a positive duration like 720h", req.TTL)
		}
	}
	if _, err := auth.ParseScope(string(req.Scope)); err != nil {
		return nil, errf(http.StatusBadRequest, "bad_request", "%v", err)
	}
	secret, tok, err := s.auth.tokens.Create(r.Context(), req.Name, req.Scope, ttl)
	if err != nil {
		return nil, errf(http.StatusBadRequest, "bad_request", "%v", err)
	}
	auditTarget(r.Context(), "token", tok.ID)
	s.log.Info("API token created", "token_id", tok.ID, "name", tok.Name, "scope", tok.Scope, "by", principalFrom(r.Context()).ID)
	return apitype.APITokenResponse{Token: secret, Info: tok}, nil
}

func (s *Server) listAPITokens(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.auth.tokens.List(r.Context())
}

func (s *Server) revokeAPIToken(w http.ResponseWriter, r *http.Request) (any, error) {
	tok, err := s.auth.tokens.Revoke(r.Context(), r.PathValue("id"))
	if errors.Is(err, auth.ErrNotFound) {
		return nil, errf(http.StatusNotFound, "not_found", "%v", err)
	}
	if err != nil {
		return nil, err
	}
	s.log.Info("API token revoked", "token_id", tok.ID, "name", tok.Name, "by", principalFrom(r.Context()).ID)
	return tok, nil
}

// auditLog answers GET /api/v1/audit?actor=&method=&route=&since=15m&before=N&limit=N.
func (s *Server) auditLog(w http.ResponseWriter, r *http.Request) (any, error) {
	q := r.URL.Query()
	f := auth.Filter{Actor: q.Get("actor"), Method: q.Get("method"), Route: q.Get("route")}
	if v := q.Get("since"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, errf(http.StatusBadRequest, "bad_request", "since %q: want a duration like 24h", v)
		}
		f.Since = s.cfg.Clock.Now().Add(-d)
	}
	for _, p := range []struct {
		name string
		set  func(uint64)
	}{{"before", func(n uint64) { f.Before = n }}, {"limit", func(n uint64) { f.Limit = int(n) }}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.ParseUint(v, 10, 63)
			if err != nil || n == 0 {
				return nil, errf(http.StatusBadRequest, "bad_request", "%s %q: want a positive integer", p.name, v)
			}
			p.set(n)
		}
	}
	es, next, err := s.auth.audit.Query(r.Context(), f)
	if err != nil {
		return nil, err
	}
	return apitype.AuditPage{Entries: es, Next: next}, nil
}
