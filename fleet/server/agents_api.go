package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/edgefleet/edgefleet/fleet/apitype"
	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/fleet/rollout"
	"github.com/edgefleet/edgefleet/internal/wire"
	"github.com/edgefleet/edgefleet/ota"
	"github.com/edgefleet/edgefleet/ota/release"
)

// Agent releases (fleetctl agents push/list): an operator uploads an
// edge-agent binary; the server signs it into its TUF repository as the
// agents target of one platform (ota/release.AddAgentBinary: custom
// metadata kind agent, version, goos/goarch/goarm; TUF length and sha256)
// with the targets key in Config.KeysDir. Devices download it through TUF
// when an agent rollout (rollout kind "agent") sends them a wire.JobAgent.

// MaxAgentBytes bounds an uploaded agent binary.
const MaxAgentBytes = 512 << 20

// bodyType is the media type the route's mutating calls must carry.
func (rt Route) bodyType() string {
	if rt.BodyType != "" {
		return rt.BodyType
	}
	return "application/json"
}

// repoMu serializes this server's changes to the targets metadata.
var repoMu sync.Mutex

// pushAgent is POST /api/v1/agents?version=V&platform=linux/arm64[&sha256=HEX]
// with the binary as the body.
func (s *Server) pushAgent(w http.ResponseWriter, r *http.Request) (any, error) {
	q := r.URL.Query()
	version, platform := q.Get("version"), q.Get("platform")
	auditTarget(r.Context(), "agent", version+" "+platform)
	if err := ota.ValidateName("version", version); err != nil {
		return nil, errf(http.StatusBadRequest, "bad_request", "%v", err)
	}
	if err := wire.ValidateID("version", version); err != nil {
		return nil, errf(http.StatusBadRequest, "bad_request", "%v (rollouts name it)", err)
	}
	goos, goarch, goarm, err := release.ParsePlatform(platform)
	if err != nil {
		return nil, errf(http.StatusBadRequest, "bad_request", "%v", err)
	}
	want := q.Get("sha256")
	if want != "" && (len(want) != 64 || strings.ToLower(want) != want) {
		return nil, errf(http.StatusBadRequest, "bad_request", "sha256 %q: want 64 lowercase hex digits", want)
	}
	if s.cfg.KeysDir == "" {
		return nil, errf(http.StatusConflict, "no_signing_keys",
			"fleet-server has no signing keys: start it with --keys-dir (the directory of fleetctl keys init) to release agent binaries")
	}
	if r.ContentLength > MaxAgentBytes {
		return nil, errf(http.StatusRequestEntityTooLarge, "too_large", "agent binary is %d bytes, at most %d", r.ContentLength, MaxAgentBytes)
	}
	tmpDir := filepath.Join(s.cfg.DataDir, "uploads")
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return nil, fmt.Errorf("agent upload: %w", err)
	}
	// Uploads a crash left behind (a live one is younger than this).
	if old, _ := filepath.Glob(filepath.Join(tmpDir, "edge-agent-*")); len(old) > 0 {
		for _, p := range old {
			if st, err := os.Stat(p); err == nil && time.Since(st.ModTime()) > 6*time.Hour {
				os.Remove(p)
			}
		}
	}
	f, err := os.CreateTemp(tmpDir, "edge-agent-*")
	if err != nil {
		return nil, fmt.Errorf("agent upload: %w", err)
	}
	defer os.Remove(f.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r.Body, MaxAgentBytes+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		return nil, errf(http.StatusBadRequest, "bad_request", "agent upload: read body after %d bytes: %v", n, err)
	case n > MaxAgentBytes:
		return nil, errf(http.StatusRequestEntityTooLarge, "too_large", "agent binary over %d bytes", MaxAgentBytes)
	case n == 0:
		return nil, errf(http.StatusBadRequest, "bad_request", "agent upload: empty body (send the binary as %s)", apitype.AgentBodyType)
	case r.ContentLength >= 0 && n != r.ContentLength:
		return nil, errf(http.StatusBadRequest, "bad_request", "agent upload: got %d bytes, Content-Length said %d", n, r.ContentLength)
	}
	if got := hex.EncodeToString(h.Sum(nil)); want != "" && got != want {
		return nil, errf(http.StatusBadRequest, "sha256_mismatch", "agent upload: received bytes have sha256 %s, the client sent %s (corrupted in transit?)", got, want)
	}
	repoMu.Lock()
	before, _ := release.NewRepo("", s.cfg.RepoDir).Agents()
	info, err := release.NewRepo(s.cfg.KeysDir, s.cfg.RepoDir).AddAgentBinary(r.Context(), f.Name(), release.AgentRelease{Version: version, GOOS: goos, GOARCH: goarch, GOARM: goarm})
	repoMu.Unlock()
	if err != nil {
		if errors.Is(err, release.ErrVersionExists) {
			return nil, errf(http.StatusConflict, "conflict", "%v (released versions are immutable: push a new version)", err)
		}
		return nil, errf(http.StatusUnprocessableEntity, "release_failed", "%v", err)
	}
	existed := false
	for _, b := range before {
		if b.Path == info.Path {
			existed = true
		}
	}
	s.log.Info("agent released", "version", version, "platform", platform, "bytes", info.Length, "sha256", info.SHA256, "existed", existed)
	return apitype.AgentRelease{Version: version, Platform: release.Platform(info.Custom), Existed: existed,
		Target: wire.Target{Name: info.Path, Length: info.Length, SHA256: info.SHA256}}, nil
}

// listAgents is GET /api/v1/agents: every released agent binary, by
// platform and version, with how many devices report running each version.
func (s *Server) listAgents(w http.ResponseWriter, r *http.Request) (any, error) {
	rels, err := s.agentReleases(r.Context())
	if rels == nil {
		rels = []apitype.AgentRelease{}
	}
	return rels, err
}

func (s *Server) agentReleases(ctx context.Context) ([]apitype.AgentRelease, error) {
	infos, err := release.NewRepo("", s.cfg.RepoDir).Agents()
	if errors.Is(err, release.ErrNotInitialized) {
		return nil, nil // no repository yet: nothing released
	}
	if err != nil {
		return nil, err
	}
	devs, err := s.reg.Devices.List(ctx, registry.Selector{})
	if err != nil {
		return nil, err
	}
	running := map[string]int{}
	for _, d := range devs {
		running[d.AgentVersion]++
	}
	out := make([]apitype.AgentRelease, 0, len(infos))
	for _, in := range infos {
		out = append(out, apitype.AgentRelease{Version: in.Custom.Version, Platform: release.Platform(in.Custom), Devices: running[in.Custom.Version],
			Target: wire.Target{Name: in.Path, Length: in.Length, SHA256: in.SHA256}})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Platform != out[j].Platform {
			return out[i].Platform < out[j].Platform
		}
		return out[i].Version < out[j].Version
	})
	return out, nil
}

// rolloutSubject checks what a rollout request rolls out and returns the
// target its jobs carry and the default gates: a registered model version,
// or (kind agent) an edge-agent version released for at least one platform.
func (s *Server) rolloutSubject(ctx context.Context, req apitype.RolloutRequest) (wire.Target, rollout.Gates, error) {
	if req.Kind != rollout.KindAgent {
		m, err := s.reg.Models.Get(ctx, req.ModelID, req.Version)
		return m.Target, rollout.DefaultGates(), err
	}
	if req.ModelID != "" {
		return wire.Target{}, rollout.Gates{}, errf(http.StatusBadRequest, "bad_request", "an agent rollout names no model (got model_id %q)", req.ModelID)
	}
	rels, err := s.agentReleases(ctx)
	if err != nil {
		return wire.Target{}, rollout.Gates{}, err
	}
	var platforms []string
	for _, a := range rels {
		if a.Version == req.Version {
			platforms = append(platforms, a.Platform)
		}
	}
	if len(platforms) == 0 {
		return wire.Target{}, rollout.Gates{}, errf(http.StatusNotFound, "not_found",
			"edge-agent %s is not released: push it first (fleetctl agents push BINARY --version %s --arch linux/arm64)", req.Version, req.Version)
	}
	s.log.Info("agent rollout", "version", req.Version, "platforms", strings.Join(platforms, ","))
	return wire.Target{}, rollout.DefaultAgentGates(), nil
}
