package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/ota"
	"github.com/edgefleet/edgefleet/ota/delta"
)

// ErrVersionExists is returned when a release reuses an id+version (or agent
// version+platform) with different bytes; released versions are immutable.
var ErrVersionExists = errors.New("release: version already released with different content")

// Repo is a TUF repository of releases on disk, in the manner of go-tuf's
// repository: signed metadata and target files in its directory (what
// Handler serves), signed with the keys in its keys directory (offline root
// and targets keys, online snapshot and timestamp keys; see keys.go for both
// layouts). Changes take the repository's file lock, so several processes
// may release into one repository. A Repo whose keys dir is "" can only be
// read: Handler and Agents.
type Repo struct {
	keysDir, dir string
	clock        clock.Clock
}

// Option configures a Repo.
type Option func(*Repo)

// WithClock sets the clock whose time signs metadata and names retired keys
// (the system clock if nil or not given).
func WithClock(c clock.Clock) Option { return func(rp *Repo) { rp.clock = c } }

// NewRepo returns the repository in repoDir signed with the keys in
// keysDir. Nothing is read or created until a method needs it (Init
// creates both).
func NewRepo(keysDir, repoDir string, opts ...Option) *Repo {
	rp := &Repo{keysDir: keysDir, dir: repoDir}
	for _, o := range opts {
		o(rp)
	}
	return rp
}

// now is the repository clock's time in UTC.
func (rp *Repo) now() time.Time { return clock.Or(rp.clock).Now().UTC() }

// Dir is the repository's directory.
func (rp *Repo) Dir() string { return rp.dir }

// KeysDir is the directory of the repository's signing keys.
func (rp *Repo) KeysDir() string { return rp.keysDir }

// ModelRelease describes a model to add with AddModel.
type ModelRelease struct {
	// ID and Version name the model release.
	ID, Version string
	// RequiredOps lists the runtime ops the model needs.
	RequiredOps []string
	// Hardware is the variant, e.g. "cpu" or "edgetpu".
	Hardware string
	// GoldenInputs are the raw input tensors of the golden test.
	GoldenInputs [][]byte
	// GoldenOutputSHA256 is the sha256 hex over the concatenated expected outputs.
	GoldenOutputSHA256 string
	// DeltaBaseVersion, if set, also publishes a delta from that (already
	// released) version; DeltaBasePath is the local file of that version,
	// checked against its released hash.
	DeltaBaseVersion, DeltaBasePath string
}

// AgentRelease describes an edge-agent binary to add with AddAgentBinary.
type AgentRelease struct {
	// Version is the agent version.
	Version string
	// GOOS, GOARCH and GOARM name the platform (GOARM only for arm).
	GOOS, GOARCH, GOARM string
}

// TargetInfo describes a target that was added to the repository.
type TargetInfo struct {
	// Path is the TUF target path.
	Path string
	// Length is the size in bytes.
	Length int64
	// SHA256 is the hex digest.
	SHA256 string
	// Custom is the edgefleet metadata signed with the target.
	Custom ota.TargetCustom
	// Deltas lists delta targets published alongside (models only).
	Deltas []TargetInfo
}

// tufMeta is the loaded metadata of a repository (one change at a time,
// under the repository lock).
type tufMeta struct {
	dir       string
	root      *metadata.Metadata[metadata.RootType]
	targets   *metadata.Metadata[metadata.TargetsType]
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	timestamp *metadata.Metadata[metadata.TimestampType]
}

func metaDir(repoDir string) string { return filepath.Join(repoDir, "metadata") }

// Init creates all keys under the keys dir and a signed, empty repository in
// the repository dir (root, targets, snapshot, timestamp, version 1). It refuses to
// overwrite existing keys or metadata.
func (rp *Repo) Init(opts KeyOptions) error {
	keysDir, repoDir := rp.keysDir, rp.dir
	if opts.Now.IsZero() {
		opts.Now = rp.now()
	}
	opts.defaults()
	if opts.RootThreshold > opts.RootKeys || opts.TargetsThreshold > opts.TargetsKeys {
		return fmt.Errorf("init keys: threshold above key count (root %d/%d, targets %d/%d)",
			opts.RootThreshold, opts.RootKeys, opts.TargetsThreshold, opts.TargetsKeys)
	}
	for _, p := range []string{filepath.Join(keysDir, "policy.json"), filepath.Join(metaDir(repoDir), "root.json")} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("init keys: %w: %s exists", ErrAlreadyInitialized, p)
		}
	}
	now := opts.Now.UTC()
	pol := Policy{RootThreshold: opts.RootThreshold, TargetsThreshold: opts.TargetsThreshold, RootExpiry: opts.RootExpiry,
		TargetsExpiry: opts.TargetsExpiry, SnapshotExpiry: opts.SnapshotExpiry, TimestampExpiry: opts.TimestampExpiry}
	root := metadata.Root(now.Add(pol.RootExpiry))
	var rootSigners, targetSigners []signature.Signer
	gen := func(role, sub string, n int) ([]signature.Signer, error) {
		var out []signature.Signer
		for i := 1; i <= n; i++ {
			s, k, err := generateKey(filepath.Join(keysDir, sub, role+"-"+strconv.Itoa(i)+".key"))
			if err != nil {
				return nil, fmt.Errorf("init keys: %w", err)
			}
			if err := root.Signed.AddKey(k, role); err != nil {
				return nil, fmt.Errorf("init keys: add %s key: %w", role, err)
			}
			out = append(out, s)
		}
		return out, nil
	}
	var err error
	if rootSigners, err = gen(metadata.ROOT, "root", opts.RootKeys); err != nil {
		return err
	}
	if targetSigners, err = gen(metadata.TARGETS, "targets", opts.TargetsKeys); err != nil {
		return err
	}
	if _, err = gen(metadata.SNAPSHOT, "online", 1); err != nil {
		return err
	}
	if _, err = gen(metadata.TIMESTAMP, "online", 1); err != nil {
		return err
	}
	root.Signed.Roles[metadata.ROOT].Threshold = pol.RootThreshold
	root.Signed.Roles[metadata.TARGETS].Threshold = pol.TargetsThreshold
	polRaw, _ := json.MarshalIndent(pol, "", "  ")
	if err := writeFileAtomic(filepath.Join(keysDir, "policy.json"), polRaw, 0o600); err != nil {
		return fmt.Errorf("init keys: write policy: %w", err)
	}
	r := &tufMeta{dir: repoDir, root: root, targets: metadata.Targets(now), snapshot: metadata.Snapshot(now), timestamp: metadata.Timestamp(now)}
	r.targets.Signed.Version = 0
	r.snapshot.Signed.Version = 0
	r.timestamp.Signed.Version = 0
	if err := r.writeRoot(rootSigners); err != nil {
		return fmt.Errorf("init keys: %w", err)
	}
	if err := r.publish(keysDir, pol, now, targetSigners, true); err != nil {
		return fmt.Errorf("init keys: %w", err)
	}
	return nil
}

// openRepo loads the latest metadata of repoDir.
func openRepo(repoDir string) (*tufMeta, error) {
	r := &tufMeta{dir: repoDir}
	var err error
	md := metaDir(repoDir)
	if r.root, err = metadata.Root().FromFile(filepath.Join(md, "root.json")); err != nil {
		return nil, fmt.Errorf("%w: load root: %v", ErrNotInitialized, err)
	}
	if r.targets, err = metadata.Targets().FromFile(filepath.Join(md, "targets.json")); err != nil {
		return nil, fmt.Errorf("load targets: %w", err)
	}
	if r.snapshot, err = metadata.Snapshot().FromFile(filepath.Join(md, "snapshot.json")); err != nil {
		return nil, fmt.Errorf("load snapshot: %w", err)
	}
	if r.timestamp, err = metadata.Timestamp().FromFile(filepath.Join(md, "timestamp.json")); err != nil {
		return nil, fmt.Errorf("load timestamp: %w", err)
	}
	return r, nil
}

func signAll[T metadata.Roles](m *metadata.Metadata[T], signers []signature.Signer) error {
	m.ClearSignatures()
	for _, s := range signers {
		if _, err := m.Sign(s); err != nil {
			return err
		}
	}
	return nil
}

func (r *tufMeta) writeRoot(signers []signature.Signer) error {
	if err := signAll(r.root, signers); err != nil {
		return fmt.Errorf("sign root: %w", err)
	}
	raw, err := r.root.ToBytes(true)
	if err != nil {
		return fmt.Errorf("encode root: %w", err)
	}
	md := metaDir(r.dir)
	if err := writeFileAtomic(filepath.Join(md, strconv.FormatInt(r.root.Signed.Version, 10)+".root.json"), raw, 0o644); err != nil {
		return fmt.Errorf("write root: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(md, "root.json"), raw, 0o644); err != nil {
		return fmt.Errorf("write root: %w", err)
	}
	return nil
}

// publish re-signs (optionally) targets, then snapshot and timestamp, writing
// them in that order so a client never sees a timestamp pointing at missing files.
func (r *tufMeta) publish(keysDir string, pol Policy, now time.Time, targetSigners []signature.Signer, withTargets bool) error {
	md := metaDir(r.dir)
	write := func(name string, version int64, raw []byte) error {
		if err := writeFileAtomic(filepath.Join(md, strconv.FormatInt(version, 10)+"."+name), raw, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		if err := writeFileAtomic(filepath.Join(md, name), raw, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		return nil
	}
	if withTargets {
		r.targets.Signed.Version++
		r.targets.Signed.Expires = now.Add(pol.TargetsExpiry)
		if err := signAll(r.targets, targetSigners); err != nil {
			return fmt.Errorf("sign targets: %w", err)
		}
		raw, err := r.targets.ToBytes(true)
		if err != nil {
			return fmt.Errorf("encode targets: %w", err)
		}
		if err := write("targets.json", r.targets.Signed.Version, raw); err != nil {
			return err
		}
	}
	return r.publishSnapshotTimestamp(keysDir, pol, now, true)
}

func (r *tufMeta) publishSnapshotTimestamp(keysDir string, pol Policy, now time.Time, withSnapshot bool) error {
	md := metaDir(r.dir)
	if withSnapshot {
		snapSigners, err := loadRole(keysDir, "online", metadata.SNAPSHOT)
		if err != nil {
			return err
		}
		r.snapshot.Signed.Meta["targets.json"] = metadata.MetaFile(r.targets.Signed.Version)
		r.snapshot.Signed.Version++
		r.snapshot.Signed.Expires = now.Add(pol.SnapshotExpiry)
		if err := signAll(r.snapshot, snapSigners); err != nil {
			return fmt.Errorf("sign snapshot: %w", err)
		}
		raw, err := r.snapshot.ToBytes(true)
		if err != nil {
			return fmt.Errorf("encode snapshot: %w", err)
		}
		v := strconv.FormatInt(r.snapshot.Signed.Version, 10)
		if err := writeFileAtomic(filepath.Join(md, v+".snapshot.json"), raw, 0o644); err != nil {
			return fmt.Errorf("write snapshot: %w", err)
		}
		if err := writeFileAtomic(filepath.Join(md, "snapshot.json"), raw, 0o644); err != nil {
			return fmt.Errorf("write snapshot: %w", err)
		}
	}
	snapRaw, err := os.ReadFile(filepath.Join(md, strconv.FormatInt(r.snapshot.Signed.Version, 10)+".snapshot.json"))
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	tsSigners, err := loadRole(keysDir, "online", metadata.TIMESTAMP)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(snapRaw)
	mf := metadata.MetaFile(r.snapshot.Signed.Version)
	mf.Length = int64(len(snapRaw))
	mf.Hashes = metadata.Hashes{"sha256": sum[:]}
	r.timestamp.Signed.Meta["snapshot.json"] = mf
	r.timestamp.Signed.Version++
	r.timestamp.Signed.Expires = now.Add(pol.TimestampExpiry)
	if err := signAll(r.timestamp, tsSigners); err != nil {
		return fmt.Errorf("sign timestamp: %w", err)
	}
	raw, err := r.timestamp.ToBytes(true)
	if err != nil {
		return fmt.Errorf("encode timestamp: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(md, "timestamp.json"), raw, 0o644); err != nil {
		return fmt.Errorf("write timestamp: %w", err)
	}
	return nil
}

// storeTarget copies src into repoDir/targets/<dir>/<sha256>.<name> while
// hashing it, and returns length and hex sha256.
func storeTarget(repoDir, targetPath, src string) (int64, string, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, "", fmt.Errorf("open %s: %w", src, err)
	}
	defer in.Close()
	dir := filepath.Join(repoDir, "targets", filepath.FromSlash(path.Dir(targetPath)))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, "", fmt.Errorf("create target dir: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return 0, "", fmt.Errorf("create temp target: %w", err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), in)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, "", fmt.Errorf("copy %s into repository: %w", src, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := os.Rename(tmp.Name(), filepath.Join(dir, sum+"."+path.Base(targetPath))); err != nil {
		return 0, "", fmt.Errorf("store target: %w", err)
	}
	return n, sum, nil
}

func targetFiles(length int64, sum string, custom ota.TargetCustom) (*metadata.TargetFiles, error) {
	raw, err := json.Marshal(custom)
	if err != nil {
		return nil, fmt.Errorf("encode custom metadata: %w", err)
	}
	b, err := hex.DecodeString(sum)
	if err != nil {
		return nil, err
	}
	rm := json.RawMessage(raw)
	return &metadata.TargetFiles{Length: length, Hashes: metadata.Hashes{"sha256": b}, Custom: &rm}, nil
}

func sha256Of(tf *metadata.TargetFiles) string { return hex.EncodeToString(tf.Hashes["sha256"]) }

// addTarget stores src as targetPath; it returns (info, true) when the same
// bytes are already released under targetPath, and ErrVersionExists when
// different bytes are.
func (r *tufMeta) addTarget(targetPath, src string, custom ota.TargetCustom) (TargetInfo, bool, error) {
	n, sum, err := storeTarget(r.dir, targetPath, src)
	if err != nil {
		return TargetInfo{}, false, err
	}
	info := TargetInfo{Path: targetPath, Length: n, SHA256: sum, Custom: custom}
	if old, ok := r.targets.Signed.Targets[targetPath]; ok {
		if sha256Of(old) == sum {
			return info, true, nil
		}
		return TargetInfo{}, false, fmt.Errorf("%w: %s has sha256 %s, new file %s", ErrVersionExists, targetPath, sha256Of(old), sum)
	}
	tf, err := targetFiles(n, sum, custom)
	if err != nil {
		return TargetInfo{}, false, err
	}
	tf.Path = targetPath
	r.targets.Signed.Targets[targetPath] = tf
	return info, false, nil
}

// AddModel releases the model file at modelPath: it stores it in the
// repository, adds a signed target with m as custom metadata (optionally with
// a delta from m.DeltaBaseVersion), and re-signs targets, snapshot and
// timestamp.
func (rp *Repo) AddModel(ctx context.Context, modelPath string, m ModelRelease) (TargetInfo, error) {
	keysDir, repoDir := rp.keysDir, rp.dir
	custom := m.targetCustom()
	fail := func(err error) (TargetInfo, error) {
		return TargetInfo{}, fmt.Errorf("release model %s@%s: %w", m.ID, m.Version, err)
	}
	if m.DeltaBaseVersion != "" {
		custom.Deltas = []ota.DeltaRef{{FromVersion: m.DeltaBaseVersion, Path: ota.DeltaTargetPath(m.ID, m.Version, m.DeltaBaseVersion)}}
	}
	if err := custom.Validate(); err != nil {
		return fail(err)
	}
	unlock, err := lockRepo(repoDir)
	if err != nil {
		return fail(err)
	}
	defer unlock()
	r, pol, signers, err := openForTargets(keysDir, repoDir)
	if err != nil {
		return fail(err)
	}
	var deltas []TargetInfo
	if m.DeltaBaseVersion != "" {
		d, err := r.addDelta(m, modelPath)
		if err != nil {
			return fail(err)
		}
		deltas = append(deltas, d)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	info, existed, err := r.addTarget(ota.ModelTargetPath(m.ID, m.Version), modelPath, custom)
	if err != nil {
		return fail(err)
	}
	info.Deltas = deltas
	if existed && len(deltas) == 0 {
		return info, nil
	}
	if err := r.publish(keysDir, pol, rp.now(), signers, true); err != nil {
		return fail(err)
	}
	return info, nil
}

func (r *tufMeta) addDelta(m ModelRelease, modelPath string) (TargetInfo, error) {
	baseTarget, ok := r.targets.Signed.Targets[ota.ModelTargetPath(m.ID, m.DeltaBaseVersion)]
	if !ok {
		return TargetInfo{}, fmt.Errorf("delta base %s@%s is not released", m.ID, m.DeltaBaseVersion)
	}
	base, err := os.ReadFile(m.DeltaBasePath)
	if err != nil {
		return TargetInfo{}, fmt.Errorf("read delta base: %w", err)
	}
	if s := sha256.Sum256(base); hex.EncodeToString(s[:]) != sha256Of(baseTarget) {
		return TargetInfo{}, fmt.Errorf("delta base file %s does not match released %s@%s (sha256 %s)", m.DeltaBasePath, m.ID, m.DeltaBaseVersion, sha256Of(baseTarget))
	}
	target, err := os.ReadFile(modelPath)
	if err != nil {
		return TargetInfo{}, fmt.Errorf("read model: %w", err)
	}
	var buf bytes.Buffer
	if err := delta.Diff(base, target, &buf); err != nil {
		return TargetInfo{}, err
	}
	tmp, err := os.CreateTemp("", "edgefleet-delta-*")
	if err != nil {
		return TargetInfo{}, fmt.Errorf("create delta temp: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(buf.Bytes())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return TargetInfo{}, fmt.Errorf("write delta: %w", err)
	}
	custom := ota.TargetCustom{Kind: ota.KindDelta, ID: m.ID, Version: m.Version, BaseVersion: m.DeltaBaseVersion}
	info, _, err := r.addTarget(ota.DeltaTargetPath(m.ID, m.Version, m.DeltaBaseVersion), tmp.Name(), custom)
	return info, err
}

// AddAgentBinary releases an edge-agent binary for one platform.
func (rp *Repo) AddAgentBinary(ctx context.Context, binPath string, a AgentRelease) (TargetInfo, error) {
	keysDir, repoDir := rp.keysDir, rp.dir
	custom := ota.TargetCustom{Kind: ota.KindAgent, Version: a.Version, GOOS: a.GOOS, GOARCH: a.GOARCH, GOARM: a.GOARM}
	fail := func(err error) (TargetInfo, error) {
		return TargetInfo{}, fmt.Errorf("release agent %s (%s/%s%s): %w", a.Version, a.GOOS, a.GOARCH, a.GOARM, err)
	}
	if err := custom.Validate(); err != nil {
		return fail(err)
	}
	unlock, err := lockRepo(repoDir)
	if err != nil {
		return fail(err)
	}
	defer unlock()
	r, pol, signers, err := openForTargets(keysDir, repoDir)
	if err != nil {
		return fail(err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	info, existed, err := r.addTarget(ota.AgentTargetPath(a.Version, a.GOOS, a.GOARCH, a.GOARM), binPath, custom)
	if err != nil {
		return fail(err)
	}
	if existed {
		return info, nil
	}
	if err := r.publish(keysDir, pol, rp.now(), signers, true); err != nil {
		return fail(err)
	}
	return info, nil
}

// RotateOnlineKeys replaces the snapshot and timestamp keys: it generates new
// keys, writes root version N+1 (signed with the offline root keys in
// keys dir's root/) that revokes the old ones, moves the old key files to
// online/retired in the keys dir, and re-signs snapshot and timestamp. Devices follow
// the root chain on their next refresh; nothing is re-flashed.
func (rp *Repo) RotateOnlineKeys() error {
	keysDir, repoDir := rp.keysDir, rp.dir
	unlock, err := lockRepo(repoDir)
	if err != nil {
		return fmt.Errorf("rotate online keys: %w", err)
	}
	defer unlock()
	pol, err := loadPolicy(keysDir)
	if err != nil {
		return fmt.Errorf("rotate online keys: %w", err)
	}
	rootSigners, err := loadRole(keysDir, "root", metadata.ROOT)
	if err != nil {
		return fmt.Errorf("rotate online keys: %w", err)
	}
	r, err := openRepo(repoDir)
	if err != nil {
		return fmt.Errorf("rotate online keys: %w", err)
	}
	now := rp.now()
	online := filepath.Join(keysDir, "online")
	retired := filepath.Join(online, "retired", now.Format("20060102T150405.000000000"))
	if err := os.MkdirAll(retired, 0o700); err != nil {
		return fmt.Errorf("rotate online keys: %w", err)
	}
	for _, role := range []string{metadata.SNAPSHOT, metadata.TIMESTAMP} {
		for _, id := range append([]string(nil), r.root.Signed.Roles[role].KeyIDs...) {
			if err := r.root.Signed.RevokeKey(id, role); err != nil {
				return fmt.Errorf("rotate online keys: revoke %s key: %w", role, err)
			}
		}
		olds, _ := filepath.Glob(filepath.Join(online, role+"-*.key"))
		next := 1
		for _, p := range olds {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), role+"-"), ".key"))
			if n >= next {
				next = n + 1
			}
			if err := os.Rename(p, filepath.Join(retired, filepath.Base(p))); err != nil {
				return fmt.Errorf("rotate online keys: retire %s: %w", p, err)
			}
		}
		_, k, err := generateKey(filepath.Join(online, role+"-"+strconv.Itoa(next)+".key"))
		if err != nil {
			return fmt.Errorf("rotate online keys: %w", err)
		}
		if err := r.root.Signed.AddKey(k, role); err != nil {
			return fmt.Errorf("rotate online keys: add %s key: %w", role, err)
		}
	}
	r.root.Signed.Version++
	r.root.Signed.Expires = now.Add(pol.RootExpiry)
	if err := r.writeRoot(rootSigners); err != nil {
		return fmt.Errorf("rotate online keys: %w", err)
	}
	if err := r.publishSnapshotTimestamp(keysDir, pol, now, true); err != nil {
		return fmt.Errorf("rotate online keys: %w", err)
	}
	return nil
}

// Refresh re-signs the timestamp (and the snapshot, when it would expire
// within half its lifetime) with the online keys, as of now. The server runs
// it periodically so devices never see expired metadata from an honest
// server; a frozen server's metadata expires and devices refuse it.
func (rp *Repo) Refresh(now time.Time) error {
	keysDir, repoDir := rp.keysDir, rp.dir
	unlock, err := lockRepo(repoDir)
	if err != nil {
		return fmt.Errorf("refresh metadata: %w", err)
	}
	defer unlock()
	pol, err := loadPolicy(keysDir)
	if err != nil {
		return fmt.Errorf("refresh metadata: %w", err)
	}
	r, err := openRepo(repoDir)
	if err != nil {
		return fmt.Errorf("refresh metadata: %w", err)
	}
	now = now.UTC()
	snap := r.snapshot.Signed.Expires.Before(now.Add(pol.SnapshotExpiry / 2))
	if err := r.publishSnapshotTimestamp(keysDir, pol, now, snap); err != nil {
		return fmt.Errorf("refresh metadata: %w", err)
	}
	return nil
}

// Handler serves the repository's metadata/ and targets/ trees over HTTP with Range
// support (http.ServeContent). Nothing else in the repository dir is reachable; it
// never reads keys.
func (rp *Repo) Handler() http.Handler {
	repoDir := rp.dir
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		p := path.Clean("/" + req.URL.Path)
		top, rest, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
		if (top != "metadata" && top != "targets") || rest == "" || strings.Contains(p, "/.") {
			http.NotFound(w, req)
			return
		}
		f, err := os.Open(filepath.Join(repoDir, top, filepath.FromSlash(rest)))
		if err != nil {
			http.NotFound(w, req)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil || st.IsDir() {
			http.NotFound(w, req)
			return
		}
		if top == "metadata" {
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Content-Type", "application/json")
		} else {
			w.Header().Set("Content-Type", "application/octet-stream")
		}
		http.ServeContent(w, req, "", st.ModTime(), f)
	})
}

// openForTargets opens the repository for a change of the targets role:
// the policy, the offline targets signers and the current metadata.
func openForTargets(keysDir, repoDir string) (*tufMeta, Policy, []signature.Signer, error) {
	pol, err := loadPolicy(keysDir)
	if err != nil {
		return nil, Policy{}, nil, err
	}
	signers, err := loadRole(keysDir, "targets", metadata.TARGETS)
	if err != nil {
		return nil, Policy{}, nil, err
	}
	r, err := openRepo(repoDir)
	if err != nil {
		return nil, Policy{}, nil, err
	}
	return r, pol, signers, nil
}

// targetCustom is the signed custom metadata of a model file of m.
func (m ModelRelease) targetCustom() ota.TargetCustom {
	custom := ota.TargetCustom{Kind: ota.KindModel, ID: m.ID, Version: m.Version, RequiredOps: m.RequiredOps, Hardware: m.Hardware}
	if len(m.GoldenInputs) > 0 || m.GoldenOutputSHA256 != "" {
		custom.Golden = &ota.GoldenJSON{Inputs: m.GoldenInputs, OutputSHA256: m.GoldenOutputSHA256}
	}
	return custom
}
