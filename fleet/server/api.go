package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edgefleet/edgefleet/fleet/apitype"
	"github.com/edgefleet/edgefleet/fleet/auth"
	"github.com/edgefleet/edgefleet/fleet/broker/mosquitto"
	"github.com/edgefleet/edgefleet/fleet/console"
	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/fleet/rollout"
	"github.com/edgefleet/edgefleet/fleet/telemetry"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// maxBody bounds JSON request bodies.
const maxBody = 1 << 20

// apiError is the one error body: {"error":{"code":"...","message":"..."}}.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Message }

func errf(status int, code, format string, a ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, a...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeErr(w http.ResponseWriter, err error) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
	case errors.Is(err, registry.ErrNotFound):
		ae = errf(http.StatusNotFound, "not_found", "%v", err)
	case errors.Is(err, registry.ErrBadToken):
		ae = errf(http.StatusForbidden, "bad_token", "%v", err)
	case errors.Is(err, rollout.ErrConflict):
		ae = errf(http.StatusConflict, "conflict", "%v", err)
	default:
		ae = errf(http.StatusBadRequest, "bad_request", "%v", err)
	}
	writeJSON(w, ae.Status, map[string]any{"error": map[string]string{"code": ae.Code, "message": ae.Message}})
}

type handlerFunc func(w http.ResponseWriter, r *http.Request) (any, error)

// wrap turns a handlerFunc into an http.Handler writing its JSON answer
// (guard adds authentication, CSRF checks and auditing around it).
func (s *Server) wrap(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := h(w, r)
		if err != nil {
			writeErr(w, err)
			return
		}
		if v == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

// readJSON decodes a strict JSON body into v.
func readJSON(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return errf(http.StatusBadRequest, "bad_request", "read body: %v", err)
	}
	if len(b) > maxBody {
		return errf(http.StatusRequestEntityTooLarge, "too_large", "body over %d bytes", maxBody)
	}
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return errf(http.StatusBadRequest, "bad_json", "request body: %v", err)
	}
	return nil
}

// apiRoutes is every authenticated-or-public route with the scope it
// needs. Every route must be listed here (guard panics on a route without a
// scope; TestEveryMutatingRouteNeedsAuth walks this table).
func (s *Server) apiRoutes() []Route {
	const v, o, a = auth.Viewer, auth.Operator, auth.Admin
	return []Route{
		{Pattern: "POST /api/v1/enroll", Scope: Public, RateLimited: true, h: s.enroll}, // enroll.go; the enrollment token authenticates
		{Pattern: "GET /api/v1/whoami", Scope: v, h: s.whoami},
		{Pattern: "GET /api/v1/devices", Scope: v, h: s.listDevices},
		{Pattern: "GET /api/v1/devices/{id}", Scope: v, h: s.getDevice},
		{Pattern: "DELETE /api/v1/devices/{id}", Scope: a, h: s.deleteDevice},
		{Pattern: "POST /api/v1/devices/{id}/reset", Scope: a, h: s.resetDevice},       // devices_reset.go
		{Pattern: "POST /api/v1/devices/{id}/predict/{model}", Scope: o, h: s.predict}, // predict.go
		{Pattern: "POST /api/v1/enroll-tokens", Scope: a, h: s.createEnrollToken},
		{Pattern: "GET /api/v1/tokens", Scope: a, h: s.listAPITokens},
		{Pattern: "POST /api/v1/tokens", Scope: a, h: s.createAPIToken},
		{Pattern: "DELETE /api/v1/tokens/{id}", Scope: a, h: s.revokeAPIToken},
		{Pattern: "GET /api/v1/audit", Scope: a, h: s.auditLog},
		{Pattern: "GET /api/v1/groups", Scope: v, h: s.listGroups},
		{Pattern: "PUT /api/v1/groups/{name}", Scope: o, h: s.putGroup},
		{Pattern: "GET /api/v1/models", Scope: v, h: s.listModels},
		{Pattern: "POST /api/v1/models", Scope: o, h: s.addModel},
		{Pattern: "POST /api/v1/models/upload", Scope: o, h: s.uploadModel}, // console_api.go
		{Pattern: "GET /api/v1/models/{id}", Scope: v, h: s.getModel},
		{Pattern: "DELETE /api/v1/models/{id}/{version}", Scope: o, h: s.deleteModel},
		{Pattern: "GET /api/v1/models/{id}/{version}/drift", Scope: v, h: s.modelDrift},              // drift_api.go
		{Pattern: "GET /api/v1/models/{id}/{version}/drift/series", Scope: v, h: s.modelDriftSeries}, // drift_api.go
		{Pattern: "PUT /api/v1/models/{id}/{version}/reference", Scope: o, h: s.putReference},        // drift_api.go
		{Pattern: "DELETE /api/v1/models/{id}/{version}/reference", Scope: o, h: s.deleteReference},  // drift_api.go
		{Pattern: "GET /api/v1/jobs", Scope: v, h: s.listJobs},
		{Pattern: "GET /api/v1/rollouts", Scope: v, h: s.listRollouts},
		{Pattern: "POST /api/v1/rollouts", Scope: o, h: s.createRollout},
		{Pattern: "GET /api/v1/rollouts/{id}", Scope: v, h: s.getRollout},
		{Pattern: "GET /api/v1/rollouts/{id}/devices", Scope: v, h: s.rolloutDevices}, // console_api.go
		{Pattern: "POST /api/v1/rollouts/{id}/{cmd}", Scope: o, h: s.commandRollout},
		{Pattern: "GET /api/v1/telemetry/health", Scope: v, h: s.health},
		{Pattern: "GET /api/v1/telemetry/series", Scope: v, h: s.series},
		{Pattern: "GET /api/v1/telemetry/records", Scope: v, h: s.records},
		{Pattern: "GET /api/v1/broker/mosquitto", Scope: a, h: s.mosquittoFiles},
		{Pattern: "GET /api/v1/agents", Scope: v, h: s.listAgents},                                  // agents_api.go
		{Pattern: "POST /api/v1/agents", Scope: o, BodyType: apitype.AgentBodyType, h: s.pushAgent}, // agents_api.go
		{Pattern: "GET /metrics", Scope: v, raw: promhttp.HandlerFor(s.prom, promhttp.HandlerOpts{})},
	}
}

// pprofRoutes are the Go runtime profiles, admin only (Config.Pprof).
func pprofRoutes() []Route {
	return []Route{
		{Pattern: "GET /debug/pprof/", Scope: auth.Admin, raw: http.HandlerFunc(pprof.Index)},
		{Pattern: "GET /debug/pprof/profile", Scope: auth.Admin, raw: http.HandlerFunc(pprof.Profile)},
	}
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.apiRoutes() {
		mux.Handle(rt.Pattern, s.guard(rt))
	}
	if s.cfg.Pprof {
		for _, rt := range pprofRoutes() {
			mux.Handle(rt.Pattern, s.guard(rt))
		}
	}
	// Unknown /api/ paths and methods: 404/405 from the mux, never a handler.
	repo := s.cfg.RepoHandler
	if repo == nil {
		repo = func(dir string) http.Handler { return http.FileServer(http.Dir(dir)) }
	}
	// The signed update repository is public: TUF signatures, not the
	// transport, make its content trustworthy.
	mux.Handle("GET /repo/", http.StripPrefix("/repo", repo(s.cfg.RepoDir)))
	// The console's static files are public; its API calls carry the token.
	mux.Handle("GET /", console.Handler())
	return mux
}

// enroll is in enroll.go (device identity: CSR, certificate, pinned CA).

func (s *Server) listDevices(w http.ResponseWriter, r *http.Request) (any, error) {
	sel, err := registry.ParseSelector(r.URL.Query().Get("selector"))
	if err != nil {
		return nil, err
	}
	ds, err := s.reg.Devices.List(r.Context(), sel)
	if err != nil {
		return nil, err
	}
	out := make([]apitype.DeviceView, 0, len(ds))
	for _, d := range ds {
		d.PasswordHash = ""
		out = append(out, apitype.DeviceView{Device: d})
	}
	return out, nil
}

func (s *Server) getDevice(w http.ResponseWriter, r *http.Request) (any, error) {
	d, err := s.reg.Devices.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	d.PasswordHash = ""
	jobs, err := s.reg.Jobs.List(r.Context(), d.ID)
	return apitype.DeviceView{Device: d, Jobs: jobs}, err
}

func (s *Server) deleteDevice(w http.ResponseWriter, r *http.Request) (any, error) {
	if err := s.reg.Devices.Delete(r.Context(), r.PathValue("id")); err != nil {
		return nil, err
	}
	return nil, s.writeMosquitto(r.Context())
}

func (s *Server) createEnrollToken(w http.ResponseWriter, r *http.Request) (any, error) {
	var req apitype.TokenRequest
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	var ttl time.Duration
	if req.TTL != "" {
		var err error
		if ttl, err = time.ParseDuration(req.TTL); err != nil {
			return nil, errf(http.StatusBadRequest, "bad_request", "ttl %q: %v", req.TTL, err)
		}
	}
	secret, tok, err := s.reg.Tokens.Create(r.Context(), req.Labels, req.MaxUses, ttl)
	if err != nil {
		return nil, err
	}
	auditTarget(r.Context(), "enroll_token", tok.ID)
	return apitype.EnrollTokenResponse{Info: tok, Token: secret}, nil
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) (any, error) {
	gs, err := s.reg.Groups.List(r.Context())
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for name, sel := range gs {
		ds, _ := s.reg.Devices.List(r.Context(), sel)
		ids := []string{}
		for _, d := range ds {
			ids = append(ids, d.ID)
		}
		out[name] = map[string]any{"selector": sel.String(), "devices": ids}
	}
	return out, nil
}

func (s *Server) putGroup(w http.ResponseWriter, r *http.Request) (any, error) {
	var req struct {
		Selector string `json:"selector"`
	}
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	sel, err := registry.ParseSelector(req.Selector)
	if err != nil {
		return nil, err
	}
	return map[string]string{"name": r.PathValue("name"), "selector": sel.String()}, s.reg.Groups.Put(r.Context(), r.PathValue("name"), sel)
}

func (s *Server) listModels(w http.ResponseWriter, r *http.Request) (any, error) {
	ms, err := s.reg.Models.List(r.Context(), "")
	if ms == nil {
		ms = []registry.Model{}
	}
	return ms, err
}

func (s *Server) getModel(w http.ResponseWriter, r *http.Request) (any, error) {
	ms, err := s.reg.Models.List(r.Context(), r.PathValue("id"))
	if err == nil && len(ms) == 0 {
		err = fmt.Errorf("model %s: %w", r.PathValue("id"), registry.ErrNotFound)
	}
	return ms, err
}

func (s *Server) addModel(w http.ResponseWriter, r *http.Request) (any, error) {
	var m registry.Model
	if err := readJSON(r, &m); err != nil {
		return nil, err
	}
	auditTarget(r.Context(), "model", m.ID+"@"+m.Version)
	// The target must already be in the served repository with that size.
	p := filepath.Join(s.cfg.RepoDir, "targets", filepath.FromSlash(m.Target.Name))
	if !strings.HasPrefix(filepath.Clean(p), filepath.Join(s.cfg.RepoDir, "targets")+string(filepath.Separator)) {
		return nil, errf(http.StatusBadRequest, "bad_request", "target name %q escapes the repository", m.Target.Name)
	}
	if m.Target.SHA256 != "" {
		// Consistent snapshots: TUF stores targets as <dir>/<sha256>.<name>.
		p = filepath.Join(filepath.Dir(p), m.Target.SHA256+"."+filepath.Base(p))
	}
	st, err := os.Stat(p)
	if err != nil {
		return nil, errf(http.StatusUnprocessableEntity, "target_missing", "target %s is not in the repository %s (release it with fleetctl models push --repo-dir pointing there): %v", m.Target.Name, s.cfg.RepoDir, err)
	}
	if st.Size() != m.Target.Length {
		return nil, errf(http.StatusUnprocessableEntity, "target_mismatch", "target %s is %d bytes in the repository, release says %d", m.Target.Name, st.Size(), m.Target.Length)
	}
	if err := s.reg.Models.Put(r.Context(), m); err != nil {
		if strings.Contains(err.Error(), "already exists") {
			return nil, errf(http.StatusConflict, "conflict", "%v", err)
		}
		return nil, err
	}
	return s.reg.Models.Get(r.Context(), m.ID, m.Version)
}

func (s *Server) deleteModel(w http.ResponseWriter, r *http.Request) (any, error) {
	for _, ro := range s.mgr.List() {
		if ro.Spec.ModelID == r.PathValue("id") && ro.Spec.Version == r.PathValue("version") && !ro.Phase.Final() {
			return nil, errf(http.StatusConflict, "conflict", "rollout %s of this version is %s", ro.Spec.ID, ro.Phase)
		}
	}
	return nil, s.reg.Models.Delete(r.Context(), r.PathValue("id"), r.PathValue("version"))
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) (any, error) {
	js, err := s.reg.Jobs.List(r.Context(), r.URL.Query().Get("device"))
	if js == nil {
		js = []registry.JobRecord{}
	}
	return js, err
}

func (s *Server) createRollout(w http.ResponseWriter, r *http.Request) (any, error) {
	var req apitype.RolloutRequest
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	target, gates, err := s.rolloutSubject(r.Context(), req) // agents_api.go
	if err != nil {
		return nil, err
	}
	spec := rollout.Spec{ID: req.ID, Kind: req.Kind, ModelID: req.ModelID, Version: req.Version, Target: target, RepoURL: s.cfg.PublicURL + "/repo",
		Strategy: req.Strategy, Stages: req.Stages, SplitPercent: req.SplitPercent, Selector: req.Selector,
		OnFailure: req.OnFailure, ManualPromote: req.ManualPromote, Gates: gates}
	if spec.ID == "" {
		spec.ID = fmt.Sprintf("r%d", s.cfg.Clock.Now().Unix()%1_000_000_000)
	}
	if req.Gates != nil {
		spec.Gates = *req.Gates
	}
	for _, d := range []struct {
		in  string
		out *time.Duration
	}{{req.Soak, &spec.Soak}, {req.DeviceDeadline, &spec.DeviceDeadline}, {req.BaselineWindow, &spec.BaselineWindow}} {
		if d.in == "" {
			continue
		}
		v, err := time.ParseDuration(d.in)
		if err != nil {
			return nil, errf(http.StatusBadRequest, "bad_request", "duration %q: %v", d.in, err)
		}
		*d.out = v
	}
	if _, err := registry.ParseSelector(spec.Selector); err != nil {
		return nil, err
	}
	auditTarget(r.Context(), "rollout", spec.ID)
	ro, err := s.mgr.Create(r.Context(), spec)
	if err != nil {
		return nil, err
	}
	s.Kick()
	return ro, nil
}

func (s *Server) listRollouts(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.mgr.List(), nil
}

func (s *Server) getRollout(w http.ResponseWriter, r *http.Request) (any, error) {
	ro, ok := s.mgr.Get(r.PathValue("id"))
	if !ok {
		return nil, fmt.Errorf("rollout %s: %w", r.PathValue("id"), registry.ErrNotFound)
	}
	return ro, nil
}

func (s *Server) commandRollout(w http.ResponseWriter, r *http.Request) (any, error) {
	ro, err := s.mgr.Command(r.Context(), r.PathValue("id"), rollout.Command(r.PathValue("cmd")))
	if err != nil && !errors.Is(err, registry.ErrNotFound) {
		return nil, errf(http.StatusConflict, "conflict", "%v", err)
	}
	return ro, err
}

func (s *Server) query(r *http.Request) (telemetry.Query, error) {
	q := r.URL.Query()
	tq := telemetry.Query{ModelID: q.Get("model"), Version: q.Get("version")}
	if since := q.Get("since"); since != "" {
		d, err := time.ParseDuration(since)
		if err != nil {
			return tq, errf(http.StatusBadRequest, "bad_request", "since %q: want a duration like 15m: %v", since, err)
		}
		tq.Since = s.cfg.Clock.Now().Add(-d)
	}
	if dev := q.Get("device"); dev != "" {
		tq.Devices = map[string]bool{dev: true}
	}
	if role := q.Get("role"); role != "" {
		tq.Roles = []wire.Role{wire.Role(role)}
	}
	return tq, nil
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) (any, error) {
	q, err := s.query(r)
	if err != nil {
		return nil, err
	}
	return s.tel.Health(q), nil
}

func (s *Server) series(w http.ResponseWriter, r *http.Request) (any, error) {
	q, err := s.query(r)
	if err != nil {
		return nil, err
	}
	step := 10 * time.Second
	if v := r.URL.Query().Get("step"); v != "" {
		if step, err = time.ParseDuration(v); err != nil || step <= 0 {
			return nil, errf(http.StatusBadRequest, "bad_request", "step %q: want a positive duration", v)
		}
	}
	out := []apitype.Series{}
	for _, mv := range s.tel.Versions(q) {
		model, version, _ := strings.Cut(mv, "@")
		vq := q
		vq.ModelID, vq.Version = model, version
		out = append(out, apitype.Series{Model: model, Version: version, Points: s.tel.Series(vq, step)})
	}
	return out, nil
}

func (s *Server) records(w http.ResponseWriter, r *http.Request) (any, error) {
	q, err := s.query(r)
	if err != nil {
		return nil, err
	}
	recs := s.tel.Records(q)
	limit := 500
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 {
			return nil, errf(http.StatusBadRequest, "bad_request", "limit %q: want a positive integer", v)
		}
	}
	if len(recs) > limit {
		recs = recs[len(recs)-limit:]
	}
	if recs == nil {
		recs = []telemetry.Record{}
	}
	return recs, nil
}

func (s *Server) mosquittoFiles(w http.ResponseWriter, r *http.Request) (any, error) {
	listen := r.URL.Query().Get("listen")
	if listen == "" {
		listen = "127.0.0.1:1883"
	}
	dir := r.URL.Query().Get("dir")
	if dir == "" {
		dir = "/etc/mosquitto/edgefleet"
	}
	pw := r.URL.Query().Get("server_password_hash")
	if pw == "" {
		return nil, errf(http.StatusBadRequest, "bad_request", "server_password_hash is required (fleetctl computes it from --server-password)")
	}
	accts, err := s.brokerAuth.Accounts(r.Context())
	if err != nil {
		return nil, err
	}
	f, err := mosquitto.Generate(mosquitto.Options{Server: mosquitto.Account{Username: registry.ServerUser, Hash: pw}, Devices: accts, Dir: dir, Listen: listen})
	if err != nil {
		return nil, err
	}
	return map[string]string{"passwd": f.Passwd, "acl": f.ACL, "mosquitto.conf": f.Conf}, nil
}

var _ = context.Background
