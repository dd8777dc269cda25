package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/edgefleet/edgefleet/fleet/telemetry"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// driftQuery reads the drift routes' path and query (docs/monitoring.md):
// since (duration before now or RFC 3339), role, baseline.
func (s *Server) driftQuery(r *http.Request, defSince time.Duration) (telemetry.DriftQuery, error) {
	q := r.URL.Query()
	dq := telemetry.DriftQuery{ModelID: r.PathValue("id"), Version: r.PathValue("version"), Baseline: q.Get("baseline")}
	if err := wire.ValidateID("model", dq.ModelID); err != nil {
		return dq, errf(http.StatusBadRequest, "bad_request", "%v", err)
	}
	if err := wire.ValidateID("version", dq.Version); err != nil {
		return dq, errf(http.StatusBadRequest, "bad_request", "%v", err)
	}
	if dq.Baseline != "" {
		if err := wire.ValidateID("baseline", dq.Baseline); err != nil {
			return dq, errf(http.StatusBadRequest, "bad_request", "%v", err)
		}
	}
	now := s.cfg.Clock.Now()
	dq.Until, dq.Since = now, now.Add(-defSince)
	if v := q.Get("since"); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			dq.Since = now.Add(-d)
		} else if at, err2 := time.Parse(time.RFC3339, v); err2 == nil && at.Before(now) {
			dq.Since = at
		} else {
			return dq, errf(http.StatusBadRequest, "bad_request", "since %q: want a positive duration like 1h or an RFC 3339 time in the past", v)
		}
	}
	switch role := wire.Role(q.Get("role")); role {
	case "":
	case wire.RolePrimary, wire.RoleShadow, wire.RoleCandidate:
		dq.Roles = []wire.Role{role}
	default:
		return dq, errf(http.StatusBadRequest, "bad_request", "role %q: want primary, shadow or candidate", role)
	}
	return dq, nil
}

// modelDrift answers GET /api/v1/models/{id}/{version}/drift.
func (s *Server) modelDrift(w http.ResponseWriter, r *http.Request) (any, error) {
	dq, err := s.driftQuery(r, time.Hour)
	if err != nil {
		return nil, err
	}
	return s.tel.Drift(dq), nil
}

// modelDriftSeries answers GET /api/v1/models/{id}/{version}/drift/series.
func (s *Server) modelDriftSeries(w http.ResponseWriter, r *http.Request) (any, error) {
	dq, err := s.driftQuery(r, 6*time.Hour)
	if err != nil {
		return nil, err
	}
	step := 10 * time.Minute
	if v := r.URL.Query().Get("step"); v != "" {
		if step, err = time.ParseDuration(v); err != nil || step < time.Minute {
			return nil, errf(http.StatusBadRequest, "bad_request", "step %q: want a duration of at least 1m", v)
		}
	}
	if dq.Until.Sub(dq.Since)/step > 10000 {
		return nil, errf(http.StatusBadRequest, "bad_request", "since/step asks for more than 10000 points")
	}
	return s.tel.DriftSeries(dq, step), nil
}

// putReference answers PUT /api/v1/models/{id}/{version}/reference: the
// body is a wire.Monitoring (the --reference-stats file).
func (s *Server) putReference(w http.ResponseWriter, r *http.Request) (any, error) {
	id, version := r.PathValue("id"), r.PathValue("version")
	if _, err := s.reg.Models.Get(r.Context(), id, version); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, wire.MaxPayload+1))
	if err != nil {
		return nil, errf(http.StatusBadRequest, "bad_request", "read body: %v", err)
	}
	if len(b) > wire.MaxPayload {
		return nil, errf(http.StatusRequestEntityTooLarge, "too_large", "reference stats over %d bytes", wire.MaxPayload)
	}
	m, err := wire.DecodeMonitoring(b)
	if err != nil {
		return nil, errf(http.StatusBadRequest, "bad_reference", "%v", err)
	}
	if err := s.tel.SetReference(r.Context(), id, version, m); err != nil {
		if errors.Is(err, telemetry.ErrNoReference) {
			return nil, errf(http.StatusBadRequest, "bad_reference", "%v", err)
		}
		return nil, fmt.Errorf("set reference stats: %w", err)
	}
	return map[string]any{"model_id": id, "version": version, "reference": m}, nil
}

// deleteReference answers DELETE /api/v1/models/{id}/{version}/reference.
func (s *Server) deleteReference(w http.ResponseWriter, r *http.Request) (any, error) {
	if err := s.tel.SetReference(r.Context(), r.PathValue("id"), r.PathValue("version"), nil); err != nil {
		return nil, err
	}
	return nil, nil
}
