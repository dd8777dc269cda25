package server

// Endpoints the web console needs beyond the CLI's: a model upload that
// signs the file into the repository on the server, and a per-device view
// of a rollout that says which device failed which gate and why.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/edgefleet/edgefleet/fleet/apitype"
	"github.com/edgefleet/edgefleet/fleet/modelrel"
	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/fleet/rollout"
	"github.com/edgefleet/edgefleet/fleet/telemetry"
	"github.com/edgefleet/edgefleet/internal/wire"
	"github.com/edgefleet/edgefleet/ota/release"
)

// MaxModelUpload bounds the model file of POST /api/v1/models/upload
// (before base64 encoding).
const MaxModelUpload = 64 << 20

// uploadMu serialises console pushes: each one rewrites the repository's
// targets, snapshot and timestamp metadata.
var uploadMu sync.Mutex

// uploadModel does what `fleetctl models push` does, on the server: it
// inspects and golden-tests the file with the runtime, signs it into the
// repository with the targets key in the server's --keys-dir and registers
// the version.
func (s *Server) uploadModel(w http.ResponseWriter, r *http.Request) (any, error) {
	// base64 is 4/3 of the file, plus the other fields.
	limit := int64(MaxModelUpload)*4/3 + 64<<10
	body := http.MaxBytesReader(w, r.Body, limit)
	var req apitype.ModelUpload
	d := json.NewDecoder(body)
	d.DisallowUnknownFields()
	if err := d.Decode(&req); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, errf(http.StatusRequestEntityTooLarge, "too_large", "model upload over %d MiB", MaxModelUpload>>20)
		}
		return nil, errf(http.StatusBadRequest, "bad_json", "model upload: %v", err)
	}
	if _, err := io.Copy(io.Discard, body); err != nil {
		return nil, errf(http.StatusRequestEntityTooLarge, "too_large", "model upload over %d MiB", MaxModelUpload>>20)
	}
	auditTarget(r.Context(), "model", req.ID+"@"+req.Version)
	if err := wire.ValidateID("model id", req.ID); err != nil {
		return nil, errf(http.StatusBadRequest, "bad_request", "%v", err)
	}
	if err := wire.ValidateID("version", req.Version); err != nil {
		return nil, errf(http.StatusBadRequest, "bad_request", "%v", err)
	}
	if len(req.Data) == 0 {
		return nil, errf(http.StatusBadRequest, "bad_request", "model upload: no file data")
	}
	if s.cfg.KeysDir == "" {
		return nil, errf(http.StatusConflict, "no_signing_key",
			"this fleet-server has no --keys-dir, so it cannot sign releases: push with `fleetctl models push` where the keys are, or restart the server with --keys-dir holding targets/targets-N.key")
	}
	if _, err := s.reg.Models.Get(r.Context(), req.ID, req.Version); err == nil {
		return nil, errf(http.StatusConflict, "conflict", "model %s@%s already exists: pick a new version", req.ID, req.Version)
	}
	tmp, err := os.MkdirTemp("", "edgefleet-upload-")
	if err != nil {
		return nil, errf(http.StatusInternalServerError, "internal", "model upload: %v", err)
	}
	defer os.RemoveAll(tmp)
	p := filepath.Join(tmp, "model.tflite")
	if err := os.WriteFile(p, req.Data, 0o600); err != nil {
		return nil, errf(http.StatusInternalServerError, "internal", "model upload: %v", err)
	}
	uploadMu.Lock()
	m, ins, err := modelrel.Push(r.Context(), p, modelrel.Options{ID: req.ID, Version: req.Version, Notes: req.Notes, KeysDir: s.cfg.KeysDir, RepoDir: s.cfg.RepoDir})
	uploadMu.Unlock()
	if err != nil {
		name := req.FileName
		if name == "" {
			name = "the upload"
		}
		if errors.Is(err, release.ErrNotInitialized) {
			return nil, errf(http.StatusConflict, "no_signing_key", "cannot sign %s: %v (the server's --keys-dir needs the targets key; or push with `fleetctl models push`)", name, err)
		}
		return nil, errf(http.StatusUnprocessableEntity, "bad_model", "%s: %v", name, err)
	}
	if err := s.reg.Models.Put(r.Context(), m); err != nil {
		return nil, err
	}
	saved, err := s.reg.Models.Get(r.Context(), m.ID, m.Version)
	return map[string]any{"model": saved, "inspection": ins}, err
}

func (s *Server) rolloutDevices(w http.ResponseWriter, r *http.Request) (any, error) {
	ro, ok := s.mgr.Get(r.PathValue("id"))
	if !ok {
		return nil, fmt.Errorf("rollout %s: %w", r.PathValue("id"), registry.ErrNotFound)
	}
	out := apitype.RolloutDevices{ID: ro.Spec.ID, Phase: string(ro.Phase), Reason: ro.Reason, FailedGates: []rollout.GateResult{}, Devices: []apitype.RolloutDevice{}}
	for _, g := range ro.Gates {
		if g.Evaluated && !g.OK {
			out.FailedGates = append(out.FailedGates, g)
		}
	}
	roles := []wire.Role{wire.RolePrimary}
	switch ro.Spec.Strategy {
	case rollout.Shadow:
		roles = []wire.Role{wire.RoleShadow}
	case rollout.AB:
		roles = []wire.Role{wire.RoleCandidate}
	}
	until := ro.Finished
	if until.IsZero() {
		until = s.cfg.Clock.Now()
	}
	g := ro.Spec.Gates
	for id, ds := range ro.Devices {
		rd := apitype.RolloutDevice{ID: id, Stage: ds.Stage + 1, Baseline: ds.Baseline, JobID: ds.JobID, JobState: ds.JobState, Reason: ds.Reason,
			RollbackState: ds.RollbackState, Failed: []apitype.DeviceGate{}}
		if dev, err := s.reg.Devices.Get(r.Context(), id); err == nil {
			rd.Presence, rd.Active = dev.Presence, dev.ActiveVersion(ro.Spec.ModelID)
		}
		q := telemetry.Query{ModelID: ro.Spec.ModelID, Version: ro.Spec.Version, Devices: map[string]bool{id: true}, Since: ro.Created, Until: until.Add(time.Nanosecond)}
		all := s.tel.Health(q)
		q.Roles = roles
		h := s.tel.Health(q)
		h.Crashes, h.Rollbacks = all.Crashes, all.Rollbacks
		rd.Health = h
		fail := func(gate string, v, th float64, why string) {
			rd.Failed = append(rd.Failed, apitype.DeviceGate{Gate: gate, Value: v, Threshold: th, Reason: why})
		}
		switch ds.JobState {
		case wire.JobFailed, wire.JobRejected, wire.JobRolledBack:
			why := ds.Reason
			if why == "" {
				why = "install " + string(ds.JobState)
			}
			fail("install_failures", 1, float64(g.MaxInstallFailures), why)
		}
		if g.MaxCrashes >= 0 && h.Crashes > uint64(g.MaxCrashes) {
			fail("crashes", float64(h.Crashes), float64(g.MaxCrashes), fmt.Sprintf("%d crash(es) of %s on this device", h.Crashes, ro.Spec.Version))
		}
		if g.MaxRollbacks >= 0 && h.Rollbacks > uint64(g.MaxRollbacks) {
			fail("rollbacks", float64(h.Rollbacks), float64(g.MaxRollbacks), fmt.Sprintf("the device rolled %s back %d time(s)", ro.Spec.Version, h.Rollbacks))
		}
		if h.Requests > 0 {
			if g.MaxErrorRate > 0 && h.ErrorRate > g.MaxErrorRate {
				fail("error_rate", h.ErrorRate, g.MaxErrorRate, fmt.Sprintf("error rate %.3f over %d requests (max %.3f)", h.ErrorRate, h.Requests, g.MaxErrorRate))
			}
			if bp := ro.Baseline.P95; g.MaxP95Ratio > 0 && bp > 0 && h.P95/bp > g.MaxP95Ratio && h.P95-bp > g.MinP95DeltaMs {
				fail("p95_latency_ratio", h.P95/bp, g.MaxP95Ratio, fmt.Sprintf("p95 %.2fms is %.2f× the baseline %.2fms (max %.2f×)", h.P95, h.P95/bp, bp, g.MaxP95Ratio))
			}
			if ro.Spec.Strategy == rollout.Shadow && g.MinShadowAgreement > 0 && h.ShadowCompared > 0 && h.ShadowAgreement < g.MinShadowAgreement {
				fail("shadow_agreement", h.ShadowAgreement, g.MinShadowAgreement, fmt.Sprintf("shadow agreement %.3f (min %.3f)", h.ShadowAgreement, g.MinShadowAgreement))
			}
		}
		out.Devices = append(out.Devices, rd)
	}
	sort.Slice(out.Devices, func(i, j int) bool {
		a, b := out.Devices[i], out.Devices[j]
		if (len(a.Failed) > 0) != (len(b.Failed) > 0) {
			return len(a.Failed) > 0
		}
		return a.ID < b.ID
	})
	return out, nil
}
