package ota

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/fetcher"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/ota/delta"
	"github.com/edgefleet/edgefleet/ota/download"
)

// Sentinel errors of the device-side updater.
var (
	// ErrUntrusted wraps every failure of TUF verification (bad or missing
	// signatures, expired, rolled-back or mismatched metadata); the go-tuf
	// error is wrapped too, so errors.As on go-tuf's types works.
	ErrUntrusted = errors.New("ota: update metadata not trusted")
	// ErrTargetNotFound means no verified target matches the request.
	ErrTargetNotFound = errors.New("ota: no such release")
)

// UpdaterConfig configures a device-side Updater.
type UpdaterConfig struct {
	// DataDir holds the TUF metadata cache (DataDir/tuf) and staged
	// downloads (DataDir/staging).
	DataDir string
	// RepoURL is the base URL of the repository served by release.Repo.Handler
	// (metadata under RepoURL/metadata, targets under RepoURL/targets).
	RepoURL string
	// TrustedRoot is the root.json enrolled with the device. It is used only
	// until DataDir holds a (newer) verified root.
	TrustedRoot []byte
	// HTTPClient is used for metadata and targets (http.DefaultClient if nil).
	HTTPClient *http.Client
	// Clock, if set, is the reference time for expiry checks (the system
	// clock otherwise). Tests use it to drive freeze attacks deterministically.
	Clock clock.Clock
	// Download tunes artifact downloads (retries, backoff, progress).
	Download download.Options
}

// Target is a verified TUF target with its parsed edgefleet metadata.
type Target struct {
	// Path is the TUF target path.
	Path string
	// Length is the exact size in bytes from signed metadata.
	Length int64
	// SHA256 is the hex digest from signed metadata.
	SHA256 string
	// Custom is the parsed custom metadata.
	Custom TargetCustom
}

// Artifact is a downloaded and verified target file.
type Artifact struct {
	// Target is what was verified.
	Target Target
	// Path is the local file holding exactly the target's bytes.
	Path string
	// ViaDelta reports whether the file was rebuilt from a delta.
	ViaDelta bool
}

// Info returns the ArtifactInfo to hand to ModelStore.Install.
func (a Artifact) Info() ArtifactInfo {
	c := map[string]string{"hardware": a.Target.Custom.Hardware}
	if len(a.Target.Custom.RequiredOps) > 0 {
		raw := ""
		for i, op := range a.Target.Custom.RequiredOps {
			if i > 0 {
				raw += ","
			}
			raw += op
		}
		c["required_ops"] = raw
	}
	return ArtifactInfo{SHA256: a.Target.SHA256, Size: a.Target.Length, Source: a.Target.Path, Custom: c}
}

// Updater resolves and fetches releases verified with go-tuf's updater.
// It is not safe for concurrent use.
type Updater struct {
	cfg UpdaterConfig
	tuf *updater.Updater
}

// NewUpdater validates cfg and prepares DataDir. It does no network I/O.
func NewUpdater(cfg UpdaterConfig) (*Updater, error) {
	if cfg.DataDir == "" || cfg.RepoURL == "" {
		return nil, fmt.Errorf("new updater: DataDir and RepoURL are required")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Download.Client == nil {
		cfg.Download.Client = cfg.HTTPClient
	}
	for _, d := range []string{"tuf", "staging"} {
		if err := os.MkdirAll(filepath.Join(cfg.DataDir, d), 0o755); err != nil {
			return nil, fmt.Errorf("new updater: %w", err)
		}
	}
	if len(cfg.TrustedRoot) == 0 {
		if _, err := os.Stat(filepath.Join(cfg.DataDir, "tuf", "root.json")); err != nil {
			return nil, fmt.Errorf("new updater: no enrolled TrustedRoot and no cached root: %w", err)
		}
	}
	return &Updater{cfg: cfg}, nil
}

// Refresh fetches and verifies the newest metadata (root chain, timestamp,
// snapshot, targets). Every resolve call after it sees that state.
func (u *Updater) Refresh(ctx context.Context) error {
	rootPath := filepath.Join(u.cfg.DataDir, "tuf", "root.json")
	root, err := os.ReadFile(rootPath)
	if err != nil {
		root = u.cfg.TrustedRoot
	}
	t, err := u.newTUF(ctx, root)
	if err != nil && len(u.cfg.TrustedRoot) > 0 && !bytes.Equal(root, u.cfg.TrustedRoot) {
		// An unreadable cached root must not brick the device: start again
		// from the enrolled root and walk the signed root chain forward.
		t, err = u.newTUF(ctx, u.cfg.TrustedRoot)
	}
	if err != nil {
		return err
	}
	if err := t.Refresh(); err != nil {
		u.tuf = nil
		return fmt.Errorf("refresh: %w: %w", ErrUntrusted, err)
	}
	u.tuf = t
	return nil
}

// metadataTimeout bounds one metadata request when the configured client has
// no timeout of its own (metadata files are small).
const metadataTimeout = 30 * time.Second

func (u *Updater) newTUF(ctx context.Context, root []byte) (*updater.Updater, error) {
	metaURL, err := url.JoinPath(u.cfg.RepoURL, "metadata")
	if err != nil {
		return nil, fmt.Errorf("refresh: repo url %q: %w", u.cfg.RepoURL, err)
	}
	c, err := config.New(metaURL, root)
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	c.LocalMetadataDir = filepath.Join(u.cfg.DataDir, "tuf")
	c.LocalTargetsDir = filepath.Join(u.cfg.DataDir, "staging")
	hc := *u.cfg.HTTPClient
	if hc.Timeout == 0 {
		hc.Timeout = metadataTimeout
	}
	f := fetcher.NewDefaultFetcher()
	f.SetHTTPClient(&hc)
	c.Fetcher = ctxFetcher{ctx: ctx, f: f}
	t, err := updater.New(c)
	if err != nil {
		return nil, fmt.Errorf("refresh: %w: load trusted root: %w", ErrUntrusted, err)
	}
	if u.cfg.Clock != nil {
		t.UnsafeSetRefTime(u.cfg.Clock.Now())
	}
	return t, nil
}

// ctxFetcher stops metadata downloads once ctx is done.
type ctxFetcher struct {
	ctx context.Context
	f   fetcher.Fetcher
}

// DownloadFile implements fetcher.Fetcher, refusing to start once ctx is done.
func (c ctxFetcher) DownloadFile(urlPath string, maxLength int64, timeout time.Duration) ([]byte, error) {
	if err := c.ctx.Err(); err != nil {
		return nil, err
	}
	return c.f.DownloadFile(urlPath, maxLength, timeout)
}

func (u *Updater) ensure(ctx context.Context) error {
	if u.tuf != nil {
		return nil
	}
	return u.Refresh(ctx)
}

func toTarget(tf *metadata.TargetFiles) (Target, error) {
	sum, ok := tf.Hashes["sha256"]
	if !ok || len(sum) != 32 {
		return Target{}, fmt.Errorf("%w: target %s has no sha256 hash", ErrBadMetadata, tf.Path)
	}
	if tf.Custom == nil {
		return Target{}, fmt.Errorf("%w: target %s has no custom metadata", ErrBadMetadata, tf.Path)
	}
	c, err := ParseTargetCustom(*tf.Custom)
	if err != nil {
		return Target{}, fmt.Errorf("target %s: %w", tf.Path, err)
	}
	if tf.Length < 0 {
		return Target{}, fmt.Errorf("%w: target %s has negative length", ErrBadMetadata, tf.Path)
	}
	return Target{Path: tf.Path, Length: tf.Length, SHA256: fmt.Sprintf("%x", []byte(sum)), Custom: c}, nil
}

func (u *Updater) resolve(ctx context.Context, targetPath string, check func(TargetCustom) bool) (Target, error) {
	if err := u.ensure(ctx); err != nil {
		return Target{}, err
	}
	// edgefleet repositories use no delegations: every target is top-level.
	tf, ok := u.tuf.GetTopLevelTargets()[targetPath]
	if !ok {
		return Target{}, fmt.Errorf("resolve %s: %w", targetPath, ErrTargetNotFound)
	}
	copied := *tf
	tf = &copied
	tf.Path = targetPath
	t, err := toTarget(tf)
	if err != nil {
		return Target{}, fmt.Errorf("resolve %s: %w", targetPath, err)
	}
	if !check(t.Custom) {
		return Target{}, fmt.Errorf("resolve %s: %w: custom metadata %+v does not match the path", targetPath, ErrBadMetadata, t.Custom)
	}
	return t, nil
}

// ResolveModel returns the verified target of model id at version.
func (u *Updater) ResolveModel(ctx context.Context, id, version string) (Target, error) {
	if err := errors.Join(ValidateName("model id", id), ValidateName("version", version)); err != nil {
		return Target{}, fmt.Errorf("resolve model: %w", err)
	}
	return u.resolve(ctx, ModelTargetPath(id, version), func(c TargetCustom) bool {
		return c.Kind == KindModel && c.ID == id && c.Version == version
	})
}

// ResolveAgent returns the verified edge-agent target of version for a platform.
func (u *Updater) ResolveAgent(ctx context.Context, version, goos, goarch, goarm string) (Target, error) {
	if err := ValidateName("version", version); err != nil {
		return Target{}, fmt.Errorf("resolve agent: %w", err)
	}
	return u.resolve(ctx, AgentTargetPath(version, goos, goarch, goarm), func(c TargetCustom) bool {
		return c.Kind == KindAgent && c.Version == version && c.GOOS == goos && c.GOARCH == goarch && c.GOARM == goarm
	})
}

// Targets lists every verified top-level target of the given kind (all kinds
// if kind is empty), sorted by path. Targets with malformed custom metadata
// are skipped.
func (u *Updater) Targets(ctx context.Context, kind string) ([]Target, error) {
	if err := u.ensure(ctx); err != nil {
		return nil, err
	}
	var out []Target
	for p, tf := range u.tuf.GetTopLevelTargets() {
		tf.Path = p
		t, err := toTarget(tf)
		if err != nil || (kind != "" && t.Custom.Kind != kind) {
			continue
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func (u *Updater) targetURL(t Target) (string, error) {
	// consistent snapshots: targets are served as <dir>/<sha256>.<name>
	return url.JoinPath(u.cfg.RepoURL, "targets", path.Dir(t.Path), t.SHA256+"."+path.Base(t.Path))
}

// Fetch downloads t to dest (resuming a partial dest+".part"), enforcing the
// signed length and sha256.
func (u *Updater) Fetch(ctx context.Context, t Target, dest string) error {
	u2, err := u.targetURL(t)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", t.Path, err)
	}
	if err := download.Fetch(ctx, download.Request{URL: u2, Dest: dest, Length: t.Length, SHA256: t.SHA256}, u.cfg.Download); err != nil {
		return fmt.Errorf("fetch %s: %w", t.Path, err)
	}
	return nil
}

func (u *Updater) stagingPath(t Target) string {
	return filepath.Join(u.cfg.DataDir, "staging", t.SHA256+"-"+path.Base(t.Path))
}

// FetchModel resolves model id@version and stages a verified copy under
// DataDir/staging. If the release offers a delta from a version store
// holds, the delta (itself a verified target) is fetched and applied to the
// held version, and the rebuilt bytes are checked against the model's signed
// length and sha256; on any delta problem it falls back to the full file.
func (u *Updater) FetchModel(ctx context.Context, id, version string, store ModelStore) (Artifact, error) {
	t, err := u.ResolveModel(ctx, id, version)
	if err != nil {
		return Artifact{}, err
	}
	dest := u.stagingPath(t)
	if sum, n, err := download.HashFile(dest); err == nil && sum == t.SHA256 && n == t.Length {
		return Artifact{Target: t, Path: dest}, nil
	}
	if store != nil {
		for _, d := range t.Custom.Deltas {
			basePath, err := store.ModelPath(ctx, id, d.FromVersion)
			if err != nil {
				continue
			}
			if err := u.fetchViaDelta(ctx, t, d, basePath, dest); err == nil {
				return Artifact{Target: t, Path: dest, ViaDelta: true}, nil
			}
		}
	}
	if err := u.Fetch(ctx, t, dest); err != nil {
		return Artifact{}, err
	}
	return Artifact{Target: t, Path: dest}, nil
}

func (u *Updater) fetchViaDelta(ctx context.Context, t Target, d DeltaRef, basePath, dest string) error {
	dt, err := u.resolve(ctx, d.Path, func(c TargetCustom) bool {
		return c.Kind == KindDelta && c.ID == t.Custom.ID && c.Version == t.Custom.Version && c.BaseVersion == d.FromVersion
	})
	if err != nil {
		return err
	}
	patchPath := u.stagingPath(dt)
	if err := u.Fetch(ctx, dt, patchPath); err != nil {
		return err
	}
	defer os.Remove(patchPath)
	base, err := os.Open(basePath)
	if err != nil {
		return fmt.Errorf("open delta base: %w", err)
	}
	defer base.Close()
	st, err := base.Stat()
	if err != nil {
		return fmt.Errorf("stat delta base: %w", err)
	}
	patch, err := os.Open(patchPath)
	if err != nil {
		return fmt.Errorf("open delta: %w", err)
	}
	defer patch.Close()
	tmp := dest + ".delta"
	out, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("create rebuilt file: %w", err)
	}
	defer os.Remove(tmp)
	_, err = delta.Apply(base, st.Size(), patch, &limitedWriter{w: out, left: t.Length})
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("apply delta %s: %w", dt.Path, err)
	}
	sum, n, err := download.HashFile(tmp)
	if err != nil {
		return err
	}
	if sum != t.SHA256 || n != t.Length {
		return fmt.Errorf("apply delta %s: %w: rebuilt %d bytes sha256 %s, want %d bytes %s", dt.Path, download.ErrHashMismatch, n, sum, t.Length, t.SHA256)
	}
	if err := os.Rename(tmp, dest); err != nil {
		return fmt.Errorf("apply delta: %w", err)
	}
	return nil
}

// limitedWriter refuses to write more than left bytes (the signed length).
type limitedWriter struct {
	w    *os.File
	left int64
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		return 0, fmt.Errorf("%w: rebuilt file exceeds signed length", download.ErrTooLarge)
	}
	n, err := l.w.Write(p)
	l.left -= int64(n)
	return n, err
}

// Version returns the release version carried in the target's metadata.
func (t Target) Version() string { return t.Custom.Version }
