package ota

import (
	"context"
	"fmt"
	"path/filepath"
)

// Where a device keeps its update state, relative to its data dir. The
// fleet link and `edge-agent update` share them, so an install one of them
// started is finished by the other.
const (
	// UpdaterDir holds the TUF metadata (UpdaterConfig.DataDir).
	UpdaterDir = "ota"
	// StagingDir holds downloads staged for install.
	StagingDir = "ota/staging"
	// InstallDB is the installer's database of install records.
	InstallDB = "ota-install.db"
)

// Pipeline is the one model install sequence of a device: the installer
// of its data dir (InstallDB), installs an earlier run left half-done
// finished first (Resume), and each install run through the state
// machine and required to end committed. Both the fleet link's install
// jobs and `edge-agent update model` install through it.
type Pipeline struct {
	in *Installer
}

// OpenPipeline opens the installer of dataDir for store, checking each
// install with check.
func OpenPipeline(dataDir string, store ModelStore, check GoldenCheck) (*Pipeline, error) {
	in, err := OpenInstaller(filepath.Join(dataDir, InstallDB), store, check, InstallerOptions{})
	if err != nil {
		return nil, err
	}
	return &Pipeline{in: in}, nil
}

// Resume finishes the installs an earlier run left half-done and returns
// their records.
func (p *Pipeline) Resume(ctx context.Context) ([]Record, error) { return p.in.Resume(ctx) }

// Install installs a fetched model artifact: staged, verified, installed,
// activated, golden-checked, committed. A failed install that was rolled
// back returns the *InstallError (with the reason and the version rolled
// back to); one that ended in any other state than committed is an error.
func (p *Pipeline) Install(ctx context.Context, a Artifact) (Record, error) {
	rec, err := p.in.Install(ctx, a)
	if err != nil {
		return rec, err
	}
	if rec.State != StateCommitted {
		return rec, fmt.Errorf("install ended in state %s: %s", rec.State, rec.Reason)
	}
	return rec, nil
}

// Close closes the installer's database.
func (p *Pipeline) Close() error { return p.in.Close() }
