// Package selfupdate replaces the running agent's own binary with a
// TUF-verified release (github.com/minio/selfupdate), keeps the previous
// binary, probes the new one and puts the old one back unless it reports
// healthy. Only the agent, which applies its own updates, links it; the
// fleet server, which publishes releases (ota/release), does not.
package selfupdate

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	minio "github.com/minio/selfupdate"

	"github.com/edgefleet/edgefleet/ota"
	"github.com/edgefleet/edgefleet/ota/download"
)

// HealthMarkerEnv names the environment variable through which Updater
// tells a freshly installed agent binary where to report health.
const HealthMarkerEnv = "EDGEFLEET_HEALTH_MARKER"

// ErrUnhealthy means the new agent binary did not report healthy before the
// deadline; the previous binary has been restored.
var ErrUnhealthy = errors.New("ota: new agent binary unhealthy")

// ReportHealthy is called by an agent binary once it has started correctly.
// When the process was launched by Updater.Probe it writes version to the
// marker file named by HealthMarkerEnv; otherwise it does nothing.
func ReportHealthy(version string) error {
	p := os.Getenv(HealthMarkerEnv)
	if p == "" {
		return nil
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(version), 0o644); err != nil {
		return fmt.Errorf("report healthy: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("report healthy: %w", err)
	}
	return nil
}

// Updater replaces the agent's own binary with a TUF-verified one using
// github.com/minio/selfupdate, keeps the old binary, and restores it unless
// the new binary reports healthy within HealthTimeout.
//
// Typical agent flow: Recover at start-up; when a new version is released,
// ota.Updater.ResolveAgent + ota.Updater.Fetch, then Apply, then Probe; on success
// exit so the service manager restarts into the new binary.
type Updater struct {
	// TargetPath is the agent executable to replace (os.Executable() if empty).
	TargetPath string
	// StateDir holds selfupdate.json (the pending update) and health markers.
	StateDir string
	// HealthTimeout bounds how long Probe waits for the health report (default 30s).
	HealthTimeout time.Duration
}

type pendingUpdate struct {
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
	OldPath string `json:"old_path"`
}

func (s *Updater) paths() (target, old, state string, err error) {
	target = s.TargetPath
	if target == "" {
		if target, err = os.Executable(); err != nil {
			return "", "", "", fmt.Errorf("self-update: find executable: %w", err)
		}
	}
	return target, target + ".old", filepath.Join(s.StateDir, "selfupdate.json"), nil
}

// Apply installs the verified agent artifact over TargetPath. The artifact
// file is re-hashed and the signed sha256 is also handed to selfupdate as
// Options.Checksum, so a file swapped after verification is refused. The old
// binary is kept at TargetPath+".old" and a pending record is written so
// that Recover can restore it after a crash.
func (s *Updater) Apply(ctx context.Context, a ota.Artifact) error {
	if a.Target.Custom.Kind != ota.KindAgent {
		return fmt.Errorf("self-update %s: kind %q is not an agent binary", a.Target.Path, a.Target.Custom.Kind)
	}
	target, old, state, err := s.paths()
	if err != nil {
		return err
	}
	sum, n, err := download.HashFile(a.Path)
	if err != nil {
		return fmt.Errorf("self-update %s: %w", a.Target.Version(), err)
	}
	if sum != a.Target.SHA256 || n != a.Target.Length {
		return fmt.Errorf("self-update %s: %w: file has sha256 %s size %d, signed %s size %d", a.Target.Version(), download.ErrHashMismatch, sum, n, a.Target.SHA256, a.Target.Length)
	}
	checksum, err := hex.DecodeString(a.Target.SHA256)
	if err != nil {
		return fmt.Errorf("self-update: bad sha256: %w", err)
	}
	if err := os.MkdirAll(s.StateDir, 0o755); err != nil {
		return fmt.Errorf("self-update: %w", err)
	}
	raw, _ := json.Marshal(pendingUpdate{Version: a.Target.Version(), SHA256: a.Target.SHA256, OldPath: old})
	if err := os.WriteFile(state, raw, 0o644); err != nil {
		return fmt.Errorf("self-update: write pending state: %w", err)
	}
	f, err := os.Open(a.Path)
	if err != nil {
		os.Remove(state)
		return fmt.Errorf("self-update: %w", err)
	}
	defer f.Close()
	if err := ctx.Err(); err != nil {
		os.Remove(state)
		return fmt.Errorf("self-update: %w", err)
	}
	err = minio.Apply(f, minio.Options{TargetPath: target, Checksum: checksum, OldSavePath: old})
	if err != nil {
		os.Remove(state)
		if rerr := minio.RollbackError(err); rerr != nil {
			return fmt.Errorf("self-update %s: apply failed (%v) and restoring the old binary failed: %w", a.Target.Version(), err, rerr)
		}
		return fmt.Errorf("self-update %s: apply: %w", a.Target.Version(), err)
	}
	return nil
}

// Install is the self-update sequence of updates by hand (agent/update) and
// fleet agent jobs (agent/fleetlink): it applies a over the agent binary
// (Apply), then probes the new binary started with args (Probe). applied
// reports whether the binary was replaced: an error with applied false is
// Apply's (the previous binary is in place, nothing is pending); with
// applied true it is Probe's, and wraps ErrUnhealthy when the new binary
// failed its health check and the previous one is back. On success the new
// binary is installed and healthy.
func (s *Updater) Install(ctx context.Context, a ota.Artifact, args ...string) (applied bool, err error) {
	if err := s.Apply(ctx, a); err != nil {
		return false, err
	}
	return true, s.Probe(ctx, args...)
}

// Probe starts the newly applied binary with args and HealthMarkerEnv set,
// and waits until it reports the pending version healthy (ReportHealthy),
// exits, or HealthTimeout passes. The probe process is stopped afterwards.
// On success the update is committed (the old binary stays at .old for
// manual rollback); otherwise the old binary is restored and an error
// wrapping ErrUnhealthy says why.
func (s *Updater) Probe(ctx context.Context, args ...string) error {
	target, _, state, err := s.paths()
	if err != nil {
		return err
	}
	p, err := s.pending(state)
	if err != nil {
		return err
	}
	timeout := s.HealthTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	marker := filepath.Join(s.StateDir, "health-"+p.Version)
	os.Remove(marker)
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(pctx, target, args...)
	cmd.Env = append(os.Environ(), HealthMarkerEnv+"="+marker)
	var stderr bytes.Buffer
	cmd.Stderr = &tailWriter{buf: &stderr, max: 2048}
	healthy := func() bool {
		b, err := os.ReadFile(marker)
		return err == nil && string(b) == p.Version
	}
	reason := ""
	if err := cmd.Start(); err != nil {
		reason = "start: " + err.Error()
	} else {
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
	wait:
		for {
			select {
			case werr := <-done:
				if !healthy() {
					reason = fmt.Sprintf("exited before reporting healthy: %v; stderr: %s", werr, strings.TrimSpace(stderr.String()))
				}
				break wait
			case <-tick.C:
				if healthy() {
					cmd.Process.Kill()
					<-done
					break wait
				}
			case <-pctx.Done():
				<-done
				if !healthy() {
					reason = fmt.Sprintf("no health report within %v", timeout)
					if ctx.Err() != nil {
						reason = "probe interrupted: " + ctx.Err().Error()
					}
				}
				break wait
			}
		}
	}
	os.Remove(marker)
	if reason == "" {
		if err := os.Remove(state); err != nil {
			return fmt.Errorf("self-update %s: commit: %w", p.Version, err)
		}
		return nil
	}
	if err := s.restore(p, target, state); err != nil {
		return fmt.Errorf("self-update %s: %w: %s; and restore failed: %w", p.Version, ErrUnhealthy, reason, err)
	}
	return fmt.Errorf("self-update %s: %w: %s; previous binary restored", p.Version, ErrUnhealthy, reason)
}

// Recover restores the previous binary if an update was applied but never
// confirmed healthy (the process died between Apply and the end of Probe).
// It reports whether it restored anything.
func (s *Updater) Recover() (bool, error) {
	target, _, state, err := s.paths()
	if err != nil {
		return false, err
	}
	p, err := s.pending(state)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := s.restore(p, target, state); err != nil {
		return false, fmt.Errorf("self-update recover %s: %w", p.Version, err)
	}
	return true, nil
}

func (s *Updater) pending(state string) (pendingUpdate, error) {
	var p pendingUpdate
	raw, err := os.ReadFile(state)
	if err != nil {
		return p, fmt.Errorf("self-update: no pending update: %w", err)
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return p, fmt.Errorf("self-update: decode %s: %w", state, err)
	}
	return p, nil
}

// restore puts the old binary back with an atomic rename (old → target) and
// drops the pending record.
func (s *Updater) restore(p pendingUpdate, target, state string) error {
	if _, err := os.Stat(p.OldPath); err != nil {
		return fmt.Errorf("old binary missing: %w", err)
	}
	if err := os.Rename(p.OldPath, target); err != nil {
		return fmt.Errorf("restore old binary: %w", err)
	}
	if err := os.Remove(state); err != nil {
		return fmt.Errorf("drop pending state: %w", err)
	}
	return nil
}

// tailWriter keeps the last max bytes written.
type tailWriter struct {
	buf *bytes.Buffer
	max int
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.buf.Write(p)
	if t.buf.Len() > t.max {
		b := t.buf.Bytes()[t.buf.Len()-t.max:]
		nb := bytes.Clone(b)
		t.buf.Reset()
		t.buf.Write(nb)
	}
	return len(p), nil
}
