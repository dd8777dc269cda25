package fleetlink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/edgefleet/edgefleet/agent/enroll"
	"github.com/edgefleet/edgefleet/agent/update"
	"github.com/edgefleet/edgefleet/agent/update/selfexec"
	"github.com/edgefleet/edgefleet/internal/atomicfile"
	"github.com/edgefleet/edgefleet/internal/wire"
	"github.com/edgefleet/edgefleet/ota"
	"github.com/edgefleet/edgefleet/ota/download"
	"github.com/edgefleet/edgefleet/ota/selfupdate"
)

// Fleet-driven agent updates (wire.JobAgent). The job handler downloads
// the edge-agent binary released for this device's platform through TUF,
// installs it over the running binary with selfupdate.Updater (the previous
// one kept at <binary>.old), starts it as a health probe on a scratch data
// dir, and, once it reports healthy, re-executes this process as the new
// binary. The job is finished by the restarted agent: at start-up it finds
// agentRestartFile and reports the job succeeded if it runs the version
// the job asked for (the fleet additionally waits for the device's status
// to report that version). A binary that fails its probe is replaced by the
// previous one at once and the job ends rolled_back with the probe's
// reason; the running process never stops.

// Files in DataDir/fleet.
const (
	// agentRestartFile records the agent job a re-exec is finishing.
	agentRestartFile = "agent-restart.json"
	// agentPreviousFile records the version of <binary>.old, so a rollback
	// to it needs no download (and works for a version never released).
	agentPreviousFile = "agent-previous.json"
)

// agentRestart is the content of agentRestartFile.
type agentRestart struct {
	JobID   string    `json:"job_id"`
	Version string    `json:"version"`
	From    string    `json:"from"`
	Time    time.Time `json:"time"`
}

// agentPrevious is the content of agentPreviousFile.
type agentPrevious struct {
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
}

// agentSelf is how the agent job reaches the running binary; tests replace
// restart (which must not exec the test binary) and exe.
type agentSelf struct {
	exe      func() (string, error)
	platform func() (goos, goarch, goarm string)
	restart  func(exe string) error
	// probeTimeout bounds the new binary's health probe (default 30s).
	probeTimeout time.Duration
}

func (a agentSelf) withDefaults() agentSelf {
	if a.exe == nil {
		a.exe = selfexec.Executable
	}
	if a.platform == nil {
		a.platform = selfexec.Platform
	}
	if a.restart == nil {
		a.restart = selfexec.Reexec
	}
	if a.probeTimeout <= 0 {
		a.probeTimeout = 30 * time.Second
	}
	return a
}

// runAgent runs a wire.JobAgent (see above). On success it does not return
// (the process is replaced); it returns nil only when this agent already
// runs j.Version.
func (h *otaJobs) runAgent(ctx context.Context, j wire.Job, progress func(int)) error {
	self := h.self.withDefaults()
	cur := h.deps.AgentVersion
	if j.Version == cur {
		return nil
	}
	exe, err := self.exe()
	if err != nil {
		return &wire.JobError{State: wire.JobFailed, Reason: err.Error()}
	}
	goos, goarch, goarm := self.platform()
	plat := selfexec.PlatformName(goos, goarch, goarm)
	staged, t, err := h.agentBinary(ctx, j.Version, exe, goos, goarch, goarm)
	if err != nil {
		return err
	}
	defer os.Remove(staged)
	progress(50)
	// The new binary's health probe runs on a data dir of its own.
	probeDir := filepath.Join(h.deps.DataDir, "ota", "probe")
	os.RemoveAll(probeDir)
	if err := os.MkdirAll(probeDir, 0o700); err != nil {
		return fmt.Errorf("agent health probe: %w", err)
	}
	defer os.RemoveAll(probeDir)
	h.logf("agent update: install and health probe of the new binary", "version", j.Version, "binary", exe, "timeout", self.probeTimeout)
	su := &selfupdate.Updater{TargetPath: exe, StateDir: h.deps.DataDir, HealthTimeout: self.probeTimeout}
	switch applied, err := su.Install(ctx, ota.Artifact{Target: t, Path: staged}, update.ProbeArgs(probeDir)...); {
	case err == nil:
	case !applied:
		return &wire.JobError{State: wire.JobFailed, Reason: fmt.Sprintf("install edge-agent %s (%s): %v", j.Version, plat, err)}
	case errors.Is(err, selfupdate.ErrUnhealthy):
		h.logf("agent update rolled back: the new binary failed its health check", "version", j.Version, "err", err)
		return &wire.JobError{State: wire.JobRolledBack, Reason: err.Error()}
	default:
		return fmt.Errorf("agent health probe: %w", err)
	}
	progress(90)
	// <binary>.old now holds the binary this process runs.
	if sum, _, err := download.HashFile(exe + ".old"); err == nil && cur != "" {
		if err := writeJSONFile(filepath.Join(h.deps.DataDir, enroll.Dir, agentPreviousFile), agentPrevious{Version: cur, SHA256: sum}); err != nil {
			h.logf("agent update: record the previous version", "err", err)
		}
	}
	rec := agentRestart{JobID: j.JobID, Version: j.Version, From: cur, Time: time.Now().UTC()}
	restartPath := filepath.Join(h.deps.DataDir, enroll.Dir, agentRestartFile)
	if err := writeJSONFile(restartPath, rec); err != nil {
		return fmt.Errorf("agent update: %w", err)
	}
	h.logf("agent update: new binary healthy, restarting as it", "from", cur, "to", j.Version, "binary", exe)
	if h.link != nil {
		h.link.sendUpdate(wire.JobUpdate{JobID: j.JobID, State: wire.JobInProgress, Progress: 95,
			Reason: fmt.Sprintf("edge-agent %s installed and healthy; restarting into it", j.Version)})
	}
	err = self.restart(exe)
	if err == nil {
		return nil // only a test's restart returns
	}
	os.Remove(restartPath)
	return &wire.JobError{State: wire.JobFailed, Reason: fmt.Sprintf("edge-agent %s installed at %s and healthy, but the running agent could not restart into it: %v", j.Version, exe, err)}
}

// agentBinary stages the binary of version for this platform: the previous
// binary kept at exe+".old" when it is that version (a rollback), else the
// TUF-signed release (downloaded with progress in the log).
func (h *otaJobs) agentBinary(ctx context.Context, version, exe, goos, goarch, goarm string) (string, ota.Target, error) {
	plat := selfexec.PlatformName(goos, goarch, goarm)
	dir := filepath.Join(h.deps.DataDir, ota.StagingDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", ota.Target{}, fmt.Errorf("stage edge-agent %s: %w", version, err)
	}
	var prev agentPrevious
	if err := readJSONFile(filepath.Join(h.deps.DataDir, enroll.Dir, agentPreviousFile), &prev); err == nil && prev.Version == version {
		if sum, n, err := download.HashFile(exe + ".old"); err == nil && sum == prev.SHA256 {
			staged := filepath.Join(dir, sum+"-edge-agent")
			if err := copyFile(exe+".old", staged); err == nil {
				h.logf("agent update: using the previous binary kept on the device", "version", version, "binary", exe+".old")
				return staged, ota.Target{Path: "local:" + exe + ".old", Length: n, SHA256: sum,
					Custom: ota.TargetCustom{Kind: ota.KindAgent, Version: version, GOOS: goos, GOARCH: goarch, GOARM: goarm}}, nil
			}
		}
	}
	if h.up == nil {
		return "", ota.Target{}, &wire.JobError{State: wire.JobRejected, Reason: "device has no update repository (re-enroll)"}
	}
	if err := h.up.Refresh(ctx); err != nil {
		return "", ota.Target{}, fmt.Errorf("refresh update metadata: %w", err)
	}
	t, err := h.up.ResolveAgent(ctx, version, goos, goarch, goarm)
	if errors.Is(err, ota.ErrTargetNotFound) {
		return "", ota.Target{}, &wire.JobError{State: wire.JobRejected,
			Reason: fmt.Sprintf("edge-agent %s is not released for %s (fleetctl agents push BINARY --version %s --arch %s)", version, plat, version, plat)}
	}
	if err != nil {
		return "", ota.Target{}, err
	}
	staged := filepath.Join(dir, t.SHA256+"-edge-agent")
	h.downloads.begin("edge-agent " + version + " " + plat)
	if err := h.up.Fetch(ctx, t, staged); err != nil {
		return "", ota.Target{}, err
	}
	return staged, t, nil
}

// confirmAgentRestart finishes the agent job a re-exec was for, once this
// (restarted) agent runs: succeeded when it runs the version the job asked
// for; otherwise (the update was undone at start-up) rolled back.
func confirmAgentRestart(l *Link, dataDir, running string) {
	p := filepath.Join(dataDir, enroll.Dir, agentRestartFile)
	var rec agentRestart
	if err := readJSONFile(p, &rec); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			l.log.Warn("agent update record unreadable; dropped", "err", err)
			os.Remove(p)
		}
		return
	}
	u := wire.JobUpdate{JobID: rec.JobID, State: wire.JobSucceeded, Progress: 100,
		Reason: fmt.Sprintf("edge-agent %s running (was %s)", running, rec.From)}
	if running != rec.Version {
		u = wire.JobUpdate{JobID: rec.JobID, State: wire.JobRolledBack,
			Reason: fmt.Sprintf("after the restart edge-agent runs %q, not %s (the update was undone at start-up)", running, rec.Version)}
	}
	l.log.Info("agent update finished", "job", rec.JobID, "state", u.State, "reason", u.Reason)
	l.finish(u) // journaled: resent on the next notify if not delivered now
	os.Remove(p)
}

func (h *otaJobs) logf(msg string, args ...any) {
	if h.deps.Log != nil {
		h.deps.Log.Info(msg, args...)
	}
}

func writeJSONFile(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return atomicfile.Write(path, b, 0o600)
}

func readJSONFile(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o700)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
