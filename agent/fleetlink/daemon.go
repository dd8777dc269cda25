package fleetlink

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"

	"github.com/edgefleet/edgefleet/agent/daemon"
	"github.com/edgefleet/edgefleet/agent/engine"
	"github.com/edgefleet/edgefleet/fleet/wire"
	"github.com/edgefleet/edgefleet/hardware"
	"github.com/edgefleet/edgefleet/ota"
)

// Daemon is the daemon.FleetLink entry point: edge-agent run starts it with
// the daemon's model store, telemetry ring, serving manager and golden
// check. It reads the enrollment from the data dir (Config.Broker, if set,
// overrides the enrolled broker URL), installs releases with ota's TUF
// updater and crash-safe installer, and runs until ctx ends.
func Daemon(ctx context.Context, deps daemon.FleetDeps) error {
	enr, err := LoadEnrollment(deps.DataDir)
	if err != nil {
		return err
	}
	if deps.Config.Broker != "" {
		enr.BrokerURL = deps.Config.Broker
	}
	h := &otaJobs{deps: deps}
	var httpClient *http.Client
	if !enr.Insecure {
		tc, err := TLSConfig(deps.DataDir)
		if err != nil {
			return fmt.Errorf("fleet link: %w (re-enroll)", err)
		}
		httpClient = &http.Client{Transport: &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment}}
	}
	if enr.RepoURL != "" {
		h.up, err = ota.NewUpdater(ota.UpdaterConfig{DataDir: filepath.Join(deps.DataDir, "ota"), RepoURL: enr.RepoURL, TrustedRoot: enr.TUFRoot,
			HTTPClient: httpClient})
		if err != nil {
			return fmt.Errorf("fleet link: %w", err)
		}
	}
	h.in, err = ota.OpenInstaller(filepath.Join(deps.DataDir, "ota-install.db"), deps.Store, deps.GoldenCheck, ota.InstallerOptions{})
	if err != nil {
		return fmt.Errorf("fleet link: %w", err)
	}
	defer h.in.Close()
	if recs, err := h.in.Resume(ctx); err != nil {
		deps.Log.Warn("resume interrupted installs", "err", err)
	} else if len(recs) > 0 {
		deps.Log.Info("resumed interrupted installs", "count", len(recs))
	}
	hw := hardware.Detect()
	hwWire := &wire.Hardware{Arch: hw.Arch, OS: hw.OS, CPUs: hw.Cores, MemoryBytes: hw.MemoryBytes, CPUFeatures: hw.CPUFeatures}
	for _, a := range hw.Accelerator {
		hwWire.Accelerators = append(hwWire.Accelerators, a.Kind+"/"+a.Bus)
	}
	hwWire.ModelVariants, hwWire.Backends = engine.DeviceCapabilities() // docs/acceleration.md
	status := StatusFunc(func(ctx context.Context) wire.Status {
		s := wire.Status{AgentVersion: deps.AgentVersion, Hardware: hwWire}
		if deps.WireModels != nil {
			s.Models = deps.WireModels(ctx)
		}
		return s
	})
	l, err := New(Config{Enrollment: *enr, DataDir: deps.DataDir, Telemetry: RingSource(deps.Ring), Jobs: h, Status: status, Logger: deps.Log,
		Predict: deps.Predict})
	if err != nil {
		return err
	}
	h.link = l
	return l.Run(ctx)
}

// otaJobs runs fleet jobs with ota's updater and installer.
type otaJobs struct {
	deps daemon.FleetDeps
	up   *ota.Updater
	in   *ota.Installer
	link *Link
	mu   sync.Mutex // the updater is not safe for concurrent use
}

func (h *otaJobs) fetch(ctx context.Context, j wire.Job) (ota.Artifact, error) {
	if h.up == nil {
		return ota.Artifact{}, &wire.JobError{State: wire.JobRejected, Reason: "device has no update repository (re-enroll)"}
	}
	if err := h.up.Refresh(ctx); err != nil {
		return ota.Artifact{}, fmt.Errorf("refresh update metadata: %w", err)
	}
	a, err := h.up.FetchModel(ctx, j.ModelID, j.Version, h.deps.Store)
	if errors.Is(err, ota.ErrTargetNotFound) {
		return a, &wire.JobError{State: wire.JobRejected, Reason: err.Error()}
	}
	return a, err
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
		rec, err := h.in.Install(ctx, a)
		if err != nil {
			var ie *ota.InstallError
			if errors.As(err, &ie) {
				return &wire.JobError{State: wire.JobRolledBack, Reason: ie.Error()}
			}
			return err
		}
		if rec.State != ota.StateCommitted {
			return fmt.Errorf("install ended in state %s: %s", rec.State, rec.Reason)
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
