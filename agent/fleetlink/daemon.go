package fleetlink

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/edgefleet/edgefleet/agent/daemon"
	"github.com/edgefleet/edgefleet/agent/engine"
	"github.com/edgefleet/edgefleet/agent/enroll"
	"github.com/edgefleet/edgefleet/hardware"
	"github.com/edgefleet/edgefleet/internal/wire"
	"github.com/edgefleet/edgefleet/ota"
	"github.com/edgefleet/edgefleet/ota/download"
	"github.com/edgefleet/edgefleet/ota/release"
)

// Daemon is the daemon.FleetLink entry point: edge-agent run starts it with
// the daemon's model store, telemetry ring, serving manager and golden
// check. It reads the enrollment from the data dir (Config.Broker, if set,
// overrides the enrolled broker URL), installs releases with ota's TUF
// updater and install pipeline, and runs until ctx ends.
func Daemon(ctx context.Context, deps daemon.FleetDeps) error {
	enr, err := enroll.LoadEnrollment(deps.DataDir)
	if err != nil {
		return err
	}
	if deps.Config.Broker != "" {
		enr.BrokerURL = deps.Config.Broker
	}
	h := &otaJobs{deps: deps, downloads: newDownloadLog(deps.Log)}
	var httpClient *http.Client
	if !enr.Insecure {
		tc, err := enroll.TLSConfig(deps.DataDir)
		if err != nil {
			return fmt.Errorf("fleet link: %w (re-enroll)", err)
		}
		httpClient = &http.Client{Transport: &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment}}
	}
	if enr.RepoURL != "" {
		h.up, err = ota.NewUpdater(ota.UpdaterConfig{DataDir: filepath.Join(deps.DataDir, ota.UpdaterDir), RepoURL: enr.RepoURL, TrustedRoot: enr.TUFRoot,
			HTTPClient: httpClient, Download: download.Options{Progress: h.downloads.progress}})
		if err != nil {
			return fmt.Errorf("fleet link: %w", err)
		}
	}
	h.pipe, err = ota.OpenPipeline(deps.DataDir, deps.Store, deps.GoldenCheck)
	if err != nil {
		return fmt.Errorf("fleet link: %w", err)
	}
	defer h.pipe.Close()
	if recs, err := h.pipe.Resume(ctx); err != nil {
		deps.Log.Warn("resume interrupted installs", "err", err)
	} else if len(recs) > 0 {
		deps.Log.Info("resumed interrupted installs", "count", len(recs))
	}
	hwReport := DeviceHardware()
	hwWire := &hwReport
	status := StatusFunc(func(ctx context.Context) wire.Status {
		s := wire.Status{AgentVersion: deps.AgentVersion, Hardware: hwWire}
		if deps.WireModels != nil {
			s.Models = deps.WireModels(ctx)
		}
		return s
	})
	l, err := New(Config{Enrollment: *enr, DataDir: deps.DataDir, Telemetry: RingSource(deps.Ring), Jobs: h, Status: status, Logger: deps.Log,
		Predict: predictFunc(deps.Predict, deps.PredictLimits)})
	if err != nil {
		return err
	}
	h.link = l
	confirmAgentRestart(l, deps.DataDir, deps.AgentVersion) // agentjob.go
	return l.Run(ctx)
}

// DeviceHardware is what the device reports about itself at enrollment
// and in every status: the board (hardware.Detect) plus the model variants
// it runs and the backends it can use (engine.DeviceCapabilities, see
// docs/acceleration.md).
func DeviceHardware() wire.Hardware {
	variants, backends := engine.DeviceCapabilities()
	return hardwareReport(hardware.Detect(), variants, backends)
}

func hardwareReport(hw hardware.Info, variants, backends []string) wire.Hardware {
	out := wire.Hardware{Arch: hw.Arch, OS: hw.OS, CPUs: hw.Cores, MemoryBytes: hw.MemoryBytes, CPUFeatures: hw.CPUFeatures,
		ModelVariants: variants, Backends: backends}
	for _, a := range hw.Accelerator {
		out.Accelerators = append(out.Accelerators, a.Kind+"/"+a.Bus)
	}
	return out
}

// otaJobs runs fleet jobs with ota's updater and installer.
type otaJobs struct {
	deps daemon.FleetDeps
	up   *ota.Updater
	pipe *ota.Pipeline
	link *Link
	// self reaches the running binary for agent jobs (agentjob.go).
	self agentSelf
	// downloads logs download progress (progress.go).
	downloads *downloadLog
	mu        sync.Mutex // the updater is not safe for concurrent use
	// variants are the model variants this device runs, best first
	// (engine.DeviceCapabilities when nil).
	variants func() []string
}

// runnable is the device's model variants, best first.
func (h *otaJobs) runnable() []string {
	if h.variants != nil {
		return h.variants()
	}
	v, _ := engine.DeviceCapabilities()
	return v
}

// fetch stages the file of j's model version this device runs: the
// variant release.PickVariant chooses among the version's signed targets
// (docs/acceleration.md). The primary file goes through FetchModel (deltas
// from a held version); another variant is downloaded whole, verified
// against its signed length and sha256. Either way the artifact carries its
// own target's custom metadata, so the installer checks a variant against
// its own golden vector, never the primary's, and a variant released
// without one is verified by its TUF hash (and by loading it) only.
func (h *otaJobs) fetch(ctx context.Context, j wire.Job) (ota.Artifact, error) {
	if h.up == nil {
		return ota.Artifact{}, &wire.JobError{State: wire.JobRejected, Reason: "device has no update repository (re-enroll)"}
	}
	if err := h.up.Refresh(ctx); err != nil {
		return ota.Artifact{}, fmt.Errorf("refresh update metadata: %w", err)
	}
	targets, err := h.up.Targets(ctx, ota.KindModel)
	if err != nil {
		return ota.Artifact{}, fmt.Errorf("list model targets: %w", err)
	}
	runnable := h.runnable()
	t, err := release.PickVariant(targets, j.ModelID, j.Version, runnable)
	switch {
	case errors.Is(err, ota.ErrTargetNotFound):
		return ota.Artifact{}, &wire.JobError{State: wire.JobRejected, Reason: err.Error()}
	case errors.Is(err, hardware.ErrNoVariant):
		return ota.Artifact{}, &wire.JobError{State: wire.JobRejected,
			Reason: fmt.Sprintf("%v (device runs %s)", err, strings.Join(runnable, ", "))}
	case err != nil:
		return ota.Artifact{}, err
	}
	if h.downloads != nil {
		h.downloads.begin(j.ModelID + "@" + j.Version + " " + path.Base(t.Path))
	}
	if t.Path == ota.ModelTargetPath(j.ModelID, j.Version) {
		a, err := h.up.FetchModel(ctx, j.ModelID, j.Version, h.deps.Store)
		if errors.Is(err, ota.ErrTargetNotFound) {
			return a, &wire.JobError{State: wire.JobRejected, Reason: err.Error()}
		}
		return a, err
	}
	dir := filepath.Join(h.deps.DataDir, ota.StagingDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return ota.Artifact{}, fmt.Errorf("stage %s: %w", t.Path, err)
	}
	dest := filepath.Join(dir, t.SHA256+"-"+path.Base(t.Path))
	if sum, n, err := download.HashFile(dest); err == nil && sum == t.SHA256 && n == t.Length {
		return ota.Artifact{Target: t, Path: dest}, nil
	}
	if err := h.up.Fetch(ctx, t, dest); err != nil {
		return ota.Artifact{}, err
	}
	if h.deps.Log != nil {
		h.deps.Log.Info("model variant", "model", j.ModelID, "version", j.Version, "hardware", t.Custom.Hardware, "target", t.Path)
	}
	return ota.Artifact{Target: t, Path: dest}, nil
}

// HandleJob implements JobHandler.
func (h *otaJobs) HandleJob(ctx context.Context, j wire.Job, progress func(int)) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	defer h.link.StatusChanged()
	mgr := h.deps.Manager
	switch j.Kind {
	case wire.JobInstall:
		a, err := h.fetch(ctx, j)
		if err != nil {
			return err
		}
		progress(50)
		if _, err := h.pipe.Install(ctx, a); err != nil {
			var ie *ota.InstallError
			if errors.As(err, &ie) {
				return &wire.JobError{State: wire.JobRolledBack, Reason: ie.Error()}
			}
			return err
		}
		// The new version serves everything: stop any shadow or A/B split.
		mgr.SetShadow(ctx, j.ModelID, "")
		mgr.SetAB(ctx, j.ModelID, "", 0)
		return nil
	case wire.JobShadow, wire.JobAB:
		a, err := h.fetch(ctx, j)
		if err != nil {
			return err
		}
		progress(50)
		if h.deps.GoldenCheck != nil {
			if err := h.deps.GoldenCheck(ctx, a.Path, a.Target.Custom.GoldenVector()); err != nil {
				return &wire.JobError{State: wire.JobRejected, Reason: "golden check: " + err.Error()}
			}
		}
		if err := h.deps.Store.Install(ctx, j.ModelID, j.Version, a.Path, a.Info()); err != nil {
			return fmt.Errorf("store %s@%s: %w", j.ModelID, j.Version, err)
		}
		if j.Kind == wire.JobShadow {
			return mgr.SetShadow(ctx, j.ModelID, j.Version)
		}
		return mgr.SetAB(ctx, j.ModelID, j.Version, j.SplitPercent)
	case wire.JobAgent:
		return h.runAgent(ctx, j, progress) // agentjob.go
	case wire.JobRollback:
		mgr.SetShadow(ctx, j.ModelID, "")
		mgr.SetAB(ctx, j.ModelID, "", 0)
		active, err := h.deps.Store.ActiveVersion(ctx, j.ModelID)
		if err != nil && !errors.Is(err, ota.ErrNotFound) {
			return err
		}
		if active == j.Version {
			return nil
		}
		if err := h.deps.Store.Activate(ctx, j.ModelID, j.Version); err != nil {
			return &wire.JobError{State: wire.JobFailed, Reason: fmt.Sprintf("activate %s@%s: %v", j.ModelID, j.Version, err)}
		}
		return nil
	}
	return &wire.JobError{State: wire.JobRejected, Reason: "unknown job kind " + string(j.Kind)}
}
