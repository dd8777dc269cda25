// Package update is `edge-agent update`: it updates this device by hand from
// a TUF repository served by the fleet server (release.Handler).
//
// Agent updates the edge-agent binary itself: it resolves the release for
// this GOOS/GOARCH/GOARM with ota.Updater, downloads it with a progress bar,
// installs it with selfupdate.Updater (old binary kept at <agent>.old) and
// starts the new binary as a health probe (`edge-agent run` against the
// device's data dir on a loopback port). Unless the new binary reports
// healthy (selfupdate.ReportHealthy) before the deadline, the old binary is put back.
//
// Model installs a model release with ota.Installer into the agent's model
// store (agent/modelstore), checked by the same golden check as the daemon
// (serving.GoldenCheck), and rolls back to the previous version on failure.
//
// RecoverAtStartup is what `edge-agent run` calls first: it undoes an agent
// update that was applied but never confirmed healthy.
//
// All of these use the device's data dir like the fleet link does: TUF
// metadata and staged downloads in DATA/ota, install records in
// DATA/ota-install.db, the pending self-update in DATA/selfupdate.json. The
// model store is locked while the daemon runs, so stop the daemon first.
package update

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/edgefleet/edgefleet/agent/engine"
	"github.com/edgefleet/edgefleet/agent/enroll"
	"github.com/edgefleet/edgefleet/agent/modelstore"
	"github.com/edgefleet/edgefleet/agent/serving"
	"github.com/edgefleet/edgefleet/agent/update/selfexec"
	"github.com/edgefleet/edgefleet/ota"
	"github.com/edgefleet/edgefleet/ota/download"
	"github.com/edgefleet/edgefleet/ota/selfupdate"
)

// Source says where the update repository is and which root.json to trust.
type Source struct {
	// RepoURL is the base URL of the repository (release.Handler). Empty:
	// the repository of the device's fleet enrollment.
	RepoURL string
	// RootFile is the enrolled root.json (repo/metadata/1.root.json). Empty:
	// the enrollment's root, or the root already cached in DATA/ota/tuf.
	RootFile string
	// HTTPClient fetches metadata and artifacts (http.DefaultClient if nil).
	HTTPClient *http.Client
}

// Common options of Agent and Model.
type Common struct {
	Source
	// DataDir is the agent data directory (as for `edge-agent run`).
	DataDir string
	// Out receives the result lines; Progress the download progress bar
	// (both may be nil).
	Out, Progress io.Writer
}

// ErrDaemonRunning means the daemon holds the data dir's model store; an
// update by hand needs it stopped.
var ErrDaemonRunning = errors.New("update: the edge-agent daemon is using the data dir; stop it first")

func (c Common) updater(label string) (*ota.Updater, error) {
	if c.DataDir == "" {
		return nil, fmt.Errorf("update: --data-dir is required")
	}
	src := c.Source
	var root []byte
	if src.RootFile != "" {
		b, err := os.ReadFile(src.RootFile)
		if err != nil {
			return nil, fmt.Errorf("update: read trusted root: %w", err)
		}
		root = b
	}
	if src.RepoURL == "" || root == nil {
		enr, err := enroll.LoadEnrollment(c.DataDir)
		switch {
		case err == nil:
			if src.RepoURL == "" {
				src.RepoURL = enr.RepoURL
			}
			if root == nil {
				root = enr.TUFRoot
			}
		case !errors.Is(err, enroll.ErrNotEnrolled):
			return nil, fmt.Errorf("update: %w", err)
		}
	}
	if src.RepoURL == "" {
		return nil, fmt.Errorf("update: no repository: pass --repo URL (the device is not enrolled with one)")
	}
	cfg := ota.UpdaterConfig{DataDir: filepath.Join(c.DataDir, ota.UpdaterDir), RepoURL: src.RepoURL, TrustedRoot: root, HTTPClient: src.HTTPClient}
	if c.Progress != nil {
		cfg.Download.Progress = download.NewProgressBar(c.Progress, label)
	}
	u, err := ota.NewUpdater(cfg)
	if err != nil {
		return nil, fmt.Errorf("update: %w (pass --root root.json, the root the device is enrolled with)", err)
	}
	return u, nil
}

func (c Common) printf(format string, args ...any) {
	if c.Out != nil {
		fmt.Fprintf(c.Out, format, args...)
	}
}

// openStore opens the model store, turning the lock timeout into
// ErrDaemonRunning.
func openStore(dataDir string) (*modelstore.Store, error) {
	s, err := modelstore.Open(dataDir)
	if err != nil && strings.Contains(err.Error(), "locked by another process") {
		return nil, fmt.Errorf("%w (%v)", ErrDaemonRunning, err)
	}
	return s, err
}

// AgentOptions configures Agent.
type AgentOptions struct {
	Common
	// Version is the release to install; empty means the newest version
	// released for this platform.
	Version string
	// CurrentVersion is the version of the running binary.
	CurrentVersion string
	// TargetPath is the binary to replace (default: this executable, with
	// symlinks resolved).
	TargetPath string
	// GOOS, GOARCH and GOARM name the platform (default: this binary's).
	GOOS, GOARCH, GOARM string
	// HealthTimeout bounds the health probe (default 30s).
	HealthTimeout time.Duration
	// ProbeArgs are the arguments the new binary is started with for the
	// health probe (default: run --data-dir DATA --listen 127.0.0.1:0, with
	// no Unix socket and no fleet broker, so it does not collide with
	// anything the daemon would own).
	ProbeArgs []string
}

// AgentResult describes a finished agent update.
type AgentResult struct {
	// From and To are the versions before and after.
	From, To string
	// Path is the replaced binary; OldPath keeps the previous one.
	Path, OldPath string
	// UpToDate means nothing newer was released; nothing changed.
	UpToDate bool
}

// Platform returns GOOS, GOARCH and GOARM of this binary (GOARM from the
// build settings, "7" if arm and unrecorded).
func Platform() (goos, goarch, goarm string) { return selfexec.Platform() }

// Executable returns the path of this binary with symlinks resolved, so
// that a self-update replaces the real file, not a link to it.
func Executable() (string, error) { return selfexec.Executable() }

// Agent replaces the agent binary with a released version and checks that
// it starts: see the package doc. On a failed probe the error wraps
// selfupdate.ErrUnhealthy, says why (exit status, tail of stderr, or deadline), and
// the previous binary is back in place byte for byte.
func Agent(ctx context.Context, o AgentOptions) (AgentResult, error) {
	if o.GOOS == "" {
		o.GOOS, o.GOARCH, o.GOARM = Platform()
	}
	if o.TargetPath == "" {
		exe, err := Executable()
		if err != nil {
			return AgentResult{}, fmt.Errorf("update agent: %w", err)
		}
		o.TargetPath = exe
	}
	dataDir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return AgentResult{}, fmt.Errorf("update agent: %w", err)
	}
	o.DataDir = dataDir
	res := AgentResult{From: o.CurrentVersion, Path: o.TargetPath, OldPath: o.TargetPath + ".old"}
	fail := func(err error) (AgentResult, error) {
		return res, fmt.Errorf("update agent: %w", err)
	}
	// The probe runs the new binary on this data dir: refuse early, before
	// touching the binary, if the daemon holds it.
	s, err := openStore(o.DataDir)
	if err != nil {
		return fail(err)
	}
	s.Close()

	label := "edge-agent"
	if o.Version != "" {
		label += " " + o.Version
	}
	u, err := o.updater(label)
	if err != nil {
		return fail(err)
	}
	if err := u.Refresh(ctx); err != nil {
		return fail(err)
	}
	version := o.Version
	if version == "" {
		ts, err := u.Targets(ctx, ota.KindAgent)
		if err != nil {
			return fail(err)
		}
		var versions []string
		for _, t := range ts {
			c := t.Custom
			if c.GOOS == o.GOOS && c.GOARCH == o.GOARCH && c.GOARM == o.GOARM {
				versions = append(versions, c.Version)
			}
		}
		version = Newest(versions)
		if version == "" {
			return fail(fmt.Errorf("%w: no edge-agent released for %s", ota.ErrTargetNotFound, platformName(o.GOOS, o.GOARCH, o.GOARM)))
		}
		if o.CurrentVersion != "" && CompareVersions(version, o.CurrentVersion) <= 0 {
			res.To, res.UpToDate = o.CurrentVersion, true
			o.printf("edge-agent %s is up to date (newest release for %s: %s)\n", o.CurrentVersion, platformName(o.GOOS, o.GOARCH, o.GOARM), version)
			return res, nil
		}
	}
	res.To = version
	if version == o.CurrentVersion {
		res.UpToDate = true
		o.printf("edge-agent %s is already installed\n", version)
		return res, nil
	}
	t, err := u.ResolveAgent(ctx, version, o.GOOS, o.GOARCH, o.GOARM)
	if err != nil {
		return fail(err)
	}
	staged := filepath.Join(o.DataDir, ota.StagingDir, t.SHA256+"-edge-agent")
	if err := u.Fetch(ctx, t, staged); err != nil {
		return fail(err)
	}
	defer os.Remove(staged)

	args := o.ProbeArgs
	if args == nil {
		args = ProbeArgs(o.DataDir)
	}
	su := &selfupdate.Updater{TargetPath: o.TargetPath, StateDir: o.DataDir, HealthTimeout: o.HealthTimeout}
	if _, err := su.Install(ctx, ota.Artifact{Target: t, Path: staged}, args...); err != nil {
		return fail(err) // apply or probe: the previous binary is in place either way
	}
	from := o.CurrentVersion
	if from == "" {
		from = "previous version"
	}
	o.printf("edge-agent updated %s -> %s: %s reported healthy; previous binary kept at %s\nrestart the edge-agent service to run %s\n",
		from, version, version, res.OldPath, version)
	return res, nil
}

// ProbeArgs are the arguments a new agent binary is started with for its
// health probe on dataDir: `run` on a loopback port with no Unix socket and
// no fleet broker, so it collides with nothing the running daemon owns.
// Updates by hand and fleet agent jobs probe the same way.
func ProbeArgs(dataDir string) []string {
	return []string{"run", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--unix-socket=", "--fleet-broker="}
}

func platformName(goos, goarch, goarm string) string {
	s := goos + "/" + goarch
	if goarm != "" {
		s += " v" + goarm
	}
	return s
}

// Newest returns the highest of versions by CompareVersions ("" if none).
func Newest(versions []string) string {
	best := ""
	for _, v := range versions {
		if best == "" || CompareVersions(v, best) > 0 {
			best = v
		}
	}
	return best
}

// CompareVersions orders release versions: they are split at '.', '-' and
// '+', numeric parts compare as numbers, other parts as strings, and a
// version that is a prefix of another is older ("1.2" < "1.2.1"). It returns
// -1, 0 or +1.
func CompareVersions(a, b string) int {
	split := func(s string) []string {
		return strings.FieldsFunc(s, func(r rune) bool { return r == '.' || r == '-' || r == '+' })
	}
	pa, pb := split(a), split(b)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		na, errA := strconv.ParseUint(pa[i], 10, 64)
		nb, errB := strconv.ParseUint(pb[i], 10, 64)
		switch {
		case errA == nil && errB == nil:
			if na != nb {
				if na < nb {
					return -1
				}
				return 1
			}
		case errA == nil: // numbers sort before words
			return 1
		case errB == nil:
			return -1
		default:
			if c := strings.Compare(pa[i], pb[i]); c != 0 {
				return c
			}
		}
	}
	switch {
	case len(pa) < len(pb):
		return -1
	case len(pa) > len(pb):
		return 1
	}
	return strings.Compare(a, b)
}

// ModelOptions configures Model.
type ModelOptions struct {
	Common
	// ID and Version name the model release.
	ID, Version string
	// Backend runs the golden check ("" = native, as the daemon).
	Backend string
}

// Model installs model ID@Version from the repository into the data dir's
// model store with ota's installer (staged, verified, installed, activated,
// golden-checked, committed). An install interrupted earlier is finished
// first. A failed golden check returns the *ota.InstallError (wrapping
// ota.ErrGoldenCheck) with the reason and the version rolled back to.
func Model(ctx context.Context, o ModelOptions) (ota.Record, error) {
	fail := func(err error) (ota.Record, error) {
		return ota.Record{}, fmt.Errorf("update model %s@%s: %w", o.ID, o.Version, err)
	}
	if err := errors.Join(ota.ValidateName("model id", o.ID), ota.ValidateName("version", o.Version)); err != nil {
		return fail(err)
	}
	name := o.Backend
	if name == "" {
		name = "native"
	}
	backend, err := engine.Lookup(name)
	if err != nil {
		return fail(err)
	}
	u, err := o.updater(o.ID + " " + o.Version)
	if err != nil {
		return fail(err)
	}
	store, err := openStore(o.DataDir)
	if err != nil {
		return fail(err)
	}
	defer store.Close()
	pipe, err := ota.OpenPipeline(o.DataDir, store, serving.GoldenCheck(backend))
	if err != nil {
		return fail(err)
	}
	defer pipe.Close()
	if recs, err := pipe.Resume(ctx); err != nil {
		o.printf("finishing an interrupted install failed: %v\n", err)
	} else {
		for _, r := range recs {
			o.printf("finished interrupted install of %s@%s: %s\n", r.ID, r.Version, r.State)
		}
	}
	if err := u.Refresh(ctx); err != nil {
		return fail(err)
	}
	a, err := u.FetchModel(ctx, o.ID, o.Version, store)
	if err != nil {
		return fail(err)
	}
	rec, err := pipe.Install(ctx, a)
	if err != nil {
		var ie *ota.InstallError
		if errors.As(err, &ie) {
			return rec, err // already names the release, the reason and the rollback
		}
		return rec, fmt.Errorf("update model %s@%s: %w", o.ID, o.Version, err)
	}
	how := ""
	if a.ViaDelta {
		how = " (rebuilt from a delta)"
	}
	prev := ""
	if rec.Previous != "" && rec.Previous != o.Version {
		prev = "; previous " + rec.Previous
	}
	o.printf("%s@%s installed%s, golden check passed, active%s\n", o.ID, o.Version, how, prev)
	return rec, nil
}
