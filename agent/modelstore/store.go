// Package modelstore is the device's model store: model files live in the
// data directory and a bbolt database maps each model id to its installed
// versions (content sha256, size, source, metadata, install time) and to its
// active and previous version.
//
// Install is atomic: the file is copied to a temp file, fsynced, hashed,
// renamed into place and the directory fsynced before one bbolt transaction
// records it; activate and rollback are single transactions. A crash at any
// point leaves either the old or the new state, never a record pointing at a
// missing or partial file. Store implements ota.ModelStore.
//
// The store keeps a bounded number of versions per model (WithKeep, default
// DefaultKeep): older versions are removed after each install and
// activation, except the active version and the rollback target.
package modelstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/ota"
)

// DBFile is the name of the store's database inside the data directory.
const DBFile = "models.db"

var bucketModels = []byte("models")

// Version describes one installed version of a model.
type Version struct {
	Version     string            `json:"version"`
	SHA256      string            `json:"sha256"`
	Size        int64             `json:"size"`
	Source      string            `json:"source,omitempty"`
	Custom      map[string]string `json:"custom,omitempty"`
	InstalledAt time.Time         `json:"installed_at"`
}

// Model is one model id with its versions, newest install last.
type Model struct {
	ID       string    `json:"id"`
	Active   string    `json:"active,omitempty"`
	Previous string    `json:"previous,omitempty"`
	Versions []Version `json:"versions"`
}

// Version returns the record of version v.
func (m *Model) Version(v string) (Version, bool) {
	for _, x := range m.Versions {
		if x.Version == v {
			return x, true
		}
	}
	return Version{}, false
}

// Store is the bbolt-backed model store. It is safe for concurrent use.
type Store struct {
	dir  string
	db   *bolt.DB
	now  func() time.Time
	keep int

	mu        sync.Mutex
	listeners []func(id string)
}

// Option configures Open.
type Option func(*Store)

// WithClock sets the clock used for installed_at (tests).
func WithClock(c clock.Clock) Option { return func(s *Store) { s.now = clock.Or(c).Now } }

// DefaultKeep is how many versions of a model the store keeps by default.
const DefaultKeep = 3

// WithKeep sets how many versions of each model are kept (n <= 0 means
// DefaultKeep). After every install and activation the oldest versions
// beyond n are removed, records and files; the active version and the
// rollback target (previous) are always kept, even if that makes more
// than n.
func WithKeep(n int) Option { return func(s *Store) { s.keep = n } }

// Open opens (creating if needed) the store in dataDir. It waits at most 2 s
// for the database lock, so a second process gets a clear error instead of
// hanging. Temp files left by an interrupted install are removed.
func Open(dataDir string, opts ...Option) (*Store, error) {
	s := &Store{dir: dataDir, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	if s.keep <= 0 {
		s.keep = DefaultKeep
	}
	if err := os.MkdirAll(filepath.Join(dataDir, "models"), 0o755); err != nil {
		return nil, fmt.Errorf("open model store %s: %w", dataDir, err)
	}
	dbPath := filepath.Join(dataDir, DBFile)
	db, err := bolt.Open(dbPath, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open model store %s: database is locked by another process (is edge-agent running?)", dbPath)
		}
		return nil, fmt.Errorf("open model store %s: %w", dbPath, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketModels)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("open model store %s: %w", dbPath, err)
	}
	s.db = db
	s.cleanTemps()
	if err := s.removeOrphans(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open model store %s: %w", dbPath, err)
	}
	return s, nil
}

// removeOrphans deletes model files no record points to: a crash between
// the rename and the commit of an install leaves one. The database lock
// guarantees no other process is installing.
func (s *Store) removeOrphans() error {
	keep := map[string]bool{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketModels).ForEach(func(k, _ []byte) error {
			r, err := get(tx, string(k))
			if err != nil {
				return err
			}
			for _, v := range r.Versions {
				keep[s.filePath(string(k), v.Version, v.SHA256)] = true
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	return filepath.WalkDir(filepath.Join(s.dir, "models"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(d.Name(), ".tflite") && !keep[p] {
			os.Remove(p)
		}
		return nil
	})
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Dir returns the data directory.
func (s *Store) Dir() string { return s.dir }

// OnChange registers fn to be called (synchronously, after the commit) with
// the model id whenever a version of it is installed, activated or rolled
// back.
func (s *Store) OnChange(fn func(id string)) {
	s.mu.Lock()
	s.listeners = append(s.listeners, fn)
	s.mu.Unlock()
}

func (s *Store) notify(id string) {
	s.mu.Lock()
	ls := append([]func(string){}, s.listeners...)
	s.mu.Unlock()
	for _, fn := range ls {
		fn(id)
	}
}

// cleanTemps removes temp files of interrupted installs.
func (s *Store) cleanTemps() {
	_ = filepath.WalkDir(filepath.Join(s.dir, "models"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), ".tmp-") {
			os.Remove(p)
		}
		return nil
	})
}

func (s *Store) filePath(id, version, sha string) string {
	return filepath.Join(s.dir, "models", id, version, sha+".tflite")
}

type record struct {
	Active   string             `json:"active,omitempty"`
	Previous string             `json:"previous,omitempty"`
	Versions map[string]Version `json:"versions"`
}

func get(tx *bolt.Tx, id string) (record, error) {
	r := record{Versions: map[string]Version{}}
	raw := tx.Bucket(bucketModels).Get([]byte(id))
	if raw == nil {
		return r, nil
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, fmt.Errorf("decode record of model %s: %w", id, err)
	}
	if r.Versions == nil {
		r.Versions = map[string]Version{}
	}
	return r, nil
}

func put(tx *bolt.Tx, id string, r record) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode record of model %s: %w", id, err)
	}
	return tx.Bucket(bucketModels).Put([]byte(id), raw)
}

// Install implements ota.ModelStore: it copies the file at path into the
// store, checks its sha256 and size against info (an empty info.SHA256 means
// "compute it"), and records the version in one transaction. Installing the
// same id, version and sha256 again is a no-op; a different sha256 under an
// existing version is refused.
func (s *Store) Install(ctx context.Context, id, version, path string, info ota.ArtifactInfo) error {
	if err := errors.Join(ota.ValidateName("model id", id), ota.ValidateName("version", version)); err != nil {
		return fmt.Errorf("install %s@%s: %w", id, version, err)
	}
	var existing *Version
	if err := s.db.View(func(tx *bolt.Tx) error {
		r, err := get(tx, id)
		if v, ok := r.Versions[version]; ok {
			existing = &v
		}
		return err
	}); err != nil {
		return fmt.Errorf("install %s@%s: %w", id, version, err)
	}
	if existing != nil && info.SHA256 != "" {
		if existing.SHA256 == info.SHA256 {
			return nil
		}
		return fmt.Errorf("install %s@%s: already installed with sha256 %s, refusing %s", id, version, existing.SHA256, info.SHA256)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("install %s@%s: %w", id, version, err)
	}
	dir := filepath.Join(s.dir, "models", id, version)
	tmp, sum, n, err := copyToTemp(path, dir)
	if err != nil {
		return fmt.Errorf("install %s@%s: %w", id, version, err)
	}
	defer os.Remove(tmp) // no-op after the rename
	if info.SHA256 != "" && (sum != info.SHA256 || (info.Size != 0 && n != info.Size)) {
		return fmt.Errorf("install %s@%s: file %s has sha256 %s and %d bytes, expected sha256 %s and %d bytes", id, version, path, sum, n, info.SHA256, info.Size)
	}
	if existing != nil { // computed hash, version already present
		if existing.SHA256 == sum {
			return nil
		}
		return fmt.Errorf("install %s@%s: already installed with sha256 %s, refusing %s", id, version, existing.SHA256, sum)
	}
	dst := s.filePath(id, version, sum)
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("install %s@%s: %w", id, version, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("install %s@%s: %w", id, version, err)
	}
	v := Version{Version: version, SHA256: sum, Size: n, Source: info.Source, Custom: info.Custom, InstalledAt: s.now().UTC()}
	var pruned []Version
	err = s.db.Update(func(tx *bolt.Tx) error {
		r, err := get(tx, id)
		if err != nil {
			return err
		}
		if old, ok := r.Versions[version]; ok && old.SHA256 != sum {
			return fmt.Errorf("already installed with sha256 %s, refusing %s", old.SHA256, sum)
		}
		r.Versions[version] = v
		pruned = s.prune(&r, version)
		return put(tx, id, r)
	})
	if err != nil {
		return fmt.Errorf("install %s@%s: %w", id, version, err)
	}
	s.removeFiles(id, pruned)
	s.notify(id)
	return nil
}

// prune drops from r the oldest versions beyond s.keep, never the active
// one, the previous one or `also` (the version just installed), and returns
// the dropped versions. Versions are ordered by install time.
func (s *Store) prune(r *record, also string) []Version {
	if len(r.Versions) <= s.keep {
		return nil
	}
	vs := make([]Version, 0, len(r.Versions))
	for _, v := range r.Versions {
		vs = append(vs, v)
	}
	sort.Slice(vs, func(i, j int) bool { // newest first
		a, b := vs[i], vs[j]
		if !a.InstalledAt.Equal(b.InstalledAt) {
			return a.InstalledAt.After(b.InstalledAt)
		}
		return a.Version > b.Version
	})
	keep := map[string]bool{}
	for _, v := range []string{r.Active, r.Previous, also} {
		if v != "" {
			keep[v] = true
		}
	}
	for _, v := range vs {
		if len(keep) >= s.keep {
			break
		}
		keep[v.Version] = true
	}
	var dropped []Version
	for _, v := range vs {
		if !keep[v.Version] {
			dropped = append(dropped, v)
			delete(r.Versions, v.Version)
		}
	}
	return dropped
}

// removeFiles deletes the files (and then empty version directories) of
// versions whose records were dropped. A crash before this leaves orphan
// files that the next Open removes.
func (s *Store) removeFiles(id string, vs []Version) {
	for _, v := range vs {
		p := s.filePath(id, v.Version, v.SHA256)
		os.Remove(p)
		os.Remove(filepath.Dir(p)) // only succeeds when empty
	}
}

// copyToTemp copies src into a new temp file in dir, fsyncs it and returns
// its name, sha256 and size.
func copyToTemp(src, dir string) (string, string, int64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", 0, fmt.Errorf("create %s: %w", dir, err)
	}
	in, err := os.Open(src)
	if err != nil {
		return "", "", 0, fmt.Errorf("open model file: %w", err)
	}
	defer in.Close()
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return "", "", 0, fmt.Errorf("create temp file: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), in)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", "", 0, fmt.Errorf("copy model file: %w", err)
	}
	return f.Name(), hex.EncodeToString(h.Sum(nil)), n, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir for sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// Activate implements ota.ModelStore: version becomes active and the
// previously active version becomes previous, in one transaction.
// Activating the active version is a no-op.
func (s *Store) Activate(ctx context.Context, id, version string) error {
	changed := false
	var pruned []Version
	err := s.db.Update(func(tx *bolt.Tx) error {
		r, err := get(tx, id)
		if err != nil {
			return err
		}
		if _, ok := r.Versions[version]; !ok {
			return ota.ErrNotFound
		}
		if r.Active == version {
			return nil
		}
		if r.Active != "" {
			r.Previous = r.Active
		}
		r.Active = version
		changed = true
		pruned = s.prune(&r, "")
		return put(tx, id, r)
	})
	if err != nil {
		return fmt.Errorf("activate %s@%s: %w", id, version, err)
	}
	s.removeFiles(id, pruned)
	if changed {
		s.notify(id)
	}
	return nil
}

// Rollback implements ota.ModelStore: the previous version becomes active
// again and there is no previous until the next Activate.
func (s *Store) Rollback(ctx context.Context, id string) (string, error) {
	var prev string
	err := s.db.Update(func(tx *bolt.Tx) error {
		r, err := get(tx, id)
		if err != nil {
			return err
		}
		if r.Previous == "" {
			return ota.ErrNoPrevious
		}
		prev = r.Previous
		r.Active, r.Previous = r.Previous, ""
		return put(tx, id, r)
	})
	if err != nil {
		return "", fmt.Errorf("rollback %s: %w", id, err)
	}
	s.notify(id)
	return prev, nil
}

// ActiveVersion implements ota.ModelStore.
func (s *Store) ActiveVersion(ctx context.Context, id string) (string, error) {
	var v string
	err := s.db.View(func(tx *bolt.Tx) error {
		r, err := get(tx, id)
		if err != nil {
			return err
		}
		if r.Active == "" {
			return ota.ErrNotFound
		}
		v = r.Active
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("active version of %s: %w", id, err)
	}
	return v, nil
}

// ModelPath implements ota.ModelStore.
func (s *Store) ModelPath(ctx context.Context, id, version string) (string, error) {
	var p string
	err := s.db.View(func(tx *bolt.Tx) error {
		r, err := get(tx, id)
		if err != nil {
			return err
		}
		v, ok := r.Versions[version]
		if !ok {
			return ota.ErrNotFound
		}
		p = s.filePath(id, version, v.SHA256)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("model path %s@%s: %w", id, version, err)
	}
	return p, nil
}

// Get returns model id with its versions (ota.ErrNotFound if unknown).
func (s *Store) Get(ctx context.Context, id string) (Model, error) {
	var m Model
	err := s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketModels).Get([]byte(id))
		if raw == nil {
			return ota.ErrNotFound
		}
		r, err := get(tx, id)
		m = toModel(id, r)
		return err
	})
	if err != nil {
		return Model{}, fmt.Errorf("model %s: %w", id, err)
	}
	return m, nil
}

// List returns every model, sorted by id.
func (s *Store) List(ctx context.Context) ([]Model, error) {
	var out []Model
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketModels).ForEach(func(k, _ []byte) error {
			r, err := get(tx, string(k))
			if err != nil {
				return err
			}
			out = append(out, toModel(string(k), r))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list models: %w", err)
	}
	return out, nil
}

func toModel(id string, r record) Model {
	m := Model{ID: id, Active: r.Active, Previous: r.Previous}
	for _, v := range r.Versions {
		m.Versions = append(m.Versions, v)
	}
	sort.Slice(m.Versions, func(i, j int) bool {
		a, b := m.Versions[i], m.Versions[j]
		if !a.InstalledAt.Equal(b.InstalledAt) {
			return a.InstalledAt.Before(b.InstalledAt)
		}
		return a.Version < b.Version
	})
	return m
}

// Verify re-hashes the file of id@version and reports a mismatch with the
// recorded sha256 or size.
func (s *Store) Verify(ctx context.Context, id, version string) error {
	m, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	v, ok := m.Version(version)
	if !ok {
		return fmt.Errorf("verify %s@%s: %w", id, version, ota.ErrNotFound)
	}
	f, err := os.Open(s.filePath(id, version, v.SHA256))
	if err != nil {
		return fmt.Errorf("verify %s@%s: %w", id, version, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("verify %s@%s: %w", id, version, err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != v.SHA256 || n != v.Size {
		return fmt.Errorf("verify %s@%s: file has sha256 %s and %d bytes, recorded %s and %d bytes", id, version, sum, n, v.SHA256, v.Size)
	}
	return nil
}

var _ ota.ModelStore = (*Store)(nil)
