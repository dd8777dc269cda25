// Package release is the operator side of edgefleet's signed updates: it
// creates the TUF keys and repository, adds model and agent releases as
// signed targets (with optional model deltas), rotates the online keys,
// re-signs timestamp/snapshot before they expire, and serves the repository
// over HTTP.
//
// Key layout under keysDir (ed25519, PKCS#8 PEM, mode 0600):
//
//	root/root-N.key          offline: signs root.json only; the server never reads it
//	targets/targets-N.key    release signing: used by `fleetctl release`
//	online/snapshot-N.key    online: used by the server to re-sign snapshot
//	online/timestamp-N.key   online: used by the server to re-sign timestamp
//	policy.json              thresholds and expiry durations
//
// Repository layout under repoDir (what Handler serves):
//
//	metadata/N.root.json, metadata/root.json, metadata/timestamp.json,
//	metadata/N.snapshot.json, metadata/N.targets.json (consistent snapshots)
//	targets/<dir>/<sha256>.<name>
package release

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// KeyOptions configures Repo.Init. Zero fields take the defaults noted.
type KeyOptions struct {
	// RootKeys is the number of root keys (default 1); RootThreshold how many
	// must sign (default RootKeys).
	RootKeys, RootThreshold int
	// TargetsKeys is the number of targets keys (default 1); TargetsThreshold
	// how many must sign (default TargetsKeys).
	TargetsKeys, TargetsThreshold int
	// Expiry durations per role (defaults: root 365d, targets 90d, snapshot 7d, timestamp 1d).
	RootExpiry, TargetsExpiry, SnapshotExpiry, TimestampExpiry time.Duration
	// Now is the signing time (the repository's clock if zero).
	Now time.Time
}

// Policy is the persisted form of the thresholds and expiries (keysDir/policy.json).
type Policy struct {
	RootThreshold    int           `json:"root_threshold"`
	TargetsThreshold int           `json:"targets_threshold"`
	RootExpiry       time.Duration `json:"root_expiry"`
	TargetsExpiry    time.Duration `json:"targets_expiry"`
	SnapshotExpiry   time.Duration `json:"snapshot_expiry"`
	TimestampExpiry  time.Duration `json:"timestamp_expiry"`
}

// ErrAlreadyInitialized is returned by Repo.Init when keys or a repository exist.
var ErrAlreadyInitialized = errors.New("release: keys or repository already initialized")

// ErrNotInitialized is returned when keysDir or repoDir lacks what Repo.Init creates.
var ErrNotInitialized = errors.New("release: keys or repository not initialized (run fleetctl keys init)")

func (o *KeyOptions) defaults() {
	if o.RootKeys <= 0 {
		o.RootKeys = 1
	}
	if o.RootThreshold <= 0 {
		o.RootThreshold = o.RootKeys
	}
	if o.TargetsKeys <= 0 {
		o.TargetsKeys = 1
	}
	if o.TargetsThreshold <= 0 {
		o.TargetsThreshold = o.TargetsKeys
	}
	if o.RootExpiry <= 0 {
		o.RootExpiry = 365 * 24 * time.Hour
	}
	if o.TargetsExpiry <= 0 {
		o.TargetsExpiry = 90 * 24 * time.Hour
	}
	if o.SnapshotExpiry <= 0 {
		o.SnapshotExpiry = 7 * 24 * time.Hour
	}
	if o.TimestampExpiry <= 0 {
		o.TimestampExpiry = 24 * time.Hour
	}
}

// generateKey creates an ed25519 key, writes it to path and returns its signer and TUF key.
func generateKey(path string) (signature.Signer, *metadata.Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key %s: %w", path, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("encode key %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, fmt.Errorf("create key dir: %w", err)
	}
	if err := writeFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, nil, fmt.Errorf("write key %s: %w", path, err)
	}
	return signerFor(priv, path)
}

func signerFor(priv ed25519.PrivateKey, path string) (signature.Signer, *metadata.Key, error) {
	s, err := signature.LoadED25519Signer(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("load signer %s: %w", path, err)
	}
	k, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		return nil, nil, fmt.Errorf("tuf key for %s: %w", path, err)
	}
	return s, k, nil
}

// LoadSigner reads an ed25519 PKCS#8 PEM key file written by Repo.Init or
// RotateOnlineKeys and returns a signer and the matching TUF public key.
func LoadSigner(path string) (signature.Signer, *metadata.Key, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read key: %w", err)
	}
	blk, _ := pem.Decode(raw)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, nil, fmt.Errorf("key %s: not a PEM PRIVATE KEY block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("key %s: %T is not ed25519", path, k)
	}
	return signerFor(priv, path)
}

// loadRole loads every key file matching keysDir/sub/prefix-*.key.
func loadRole(keysDir, sub, prefix string) ([]signature.Signer, error) {
	paths, err := filepath.Glob(filepath.Join(keysDir, sub, prefix+"-*.key"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w: no %s keys in %s", ErrNotInitialized, prefix, filepath.Join(keysDir, sub))
	}
	var out []signature.Signer
	for _, p := range paths {
		s, _, err := LoadSigner(p)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func loadPolicy(keysDir string) (Policy, error) {
	var p Policy
	raw, err := os.ReadFile(filepath.Join(keysDir, "policy.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return p, fmt.Errorf("%w: %v", ErrNotInitialized, err)
		}
		return p, fmt.Errorf("read policy: %w", err)
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return p, fmt.Errorf("decode %s: %w", filepath.Join(keysDir, "policy.json"), err)
	}
	return p, nil
}

// writeFileAtomic writes data to path via temp file + fsync + rename, so
// readers (and the HTTP handler) never see a partial file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
