package ota

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/ota/download"
)

// State is a step of the persisted install state machine:
//
//	staged → verified → installed → activated → committed
//	                                    ↘ rolling-back → failed
//
// Any state may also go to failed when the loop guard trips.
type State string

// Install states.
const (
	// StateStaged: the artifact file is downloaded into the staging dir.
	StateStaged State = "staged"
	// StateVerified: the staged file's length and sha256 match signed metadata.
	StateVerified State = "verified"
	// StateInstalled: the ModelStore holds the version (not yet active).
	StateInstalled State = "installed"
	// StateActivated: the version is active; the golden check is pending.
	StateActivated State = "activated"
	// StateCommitted: the golden check passed; the install is final.
	StateCommitted State = "committed"
	// StateRollingBack: the install failed after activation; the previous
	// version is being re-activated.
	StateRollingBack State = "rolling-back"
	// StateFailed: the install gave up; Reason says why.
	StateFailed State = "failed"
)

// Terminal reports whether no more work is pending in s.
func (s State) Terminal() bool { return s == StateCommitted || s == StateFailed }

// Sentinel errors of the installer; *InstallError wraps one of them.
var (
	// ErrGoldenCheck means the golden check failed and the install was rolled back.
	ErrGoldenCheck = errors.New("ota: golden check failed")
	// ErrMaxAttempts means the loop guard tripped.
	ErrMaxAttempts = errors.New("ota: too many install attempts")
	// ErrCorruptStaged means the staged file no longer matches its metadata.
	ErrCorruptStaged = errors.New("ota: staged artifact corrupt")
)

// InstallError reports an install that ended in StateFailed.
type InstallError struct {
	// ID and Version name the failed release.
	ID, Version string
	// Reason is the human-readable cause persisted in the record.
	Reason string
	// RolledBackTo is the version active after the rollback ("" if none).
	RolledBackTo string
	// Err is ErrGoldenCheck, ErrMaxAttempts or ErrCorruptStaged, possibly
	// joined with the underlying cause.
	Err error
}

// Error describes the failure, the reason and the rollback.
func (e *InstallError) Error() string {
	s := fmt.Sprintf("install %s@%s failed: %s", e.ID, e.Version, e.Reason)
	if e.RolledBackTo != "" {
		s += "; rolled back to " + e.RolledBackTo
	}
	return s
}

// Unwrap returns the sentinel cause.
func (e *InstallError) Unwrap() error { return e.Err }

// Record is the persisted progress of the latest install of one model id.
type Record struct {
	// ID and Version name the release being installed.
	ID      string `json:"id"`
	Version string `json:"version"`
	// State is the last state reached.
	State State `json:"state"`
	// Attempts counts starts and resumes of this release (the loop guard).
	Attempts int `json:"attempts"`
	// Reason is the last error, or why the install failed.
	Reason string `json:"reason,omitempty"`
	// Staged is the verified artifact file being installed.
	Staged string `json:"staged"`
	// Info is what is handed to ModelStore.Install.
	Info ArtifactInfo `json:"info"`
	// Golden is the release's golden vector.
	Golden *GoldenJSON `json:"golden,omitempty"`
	// Previous is the version that was active before this install.
	Previous string `json:"previous,omitempty"`
	// RolledBackTo is the version re-activated after a failure.
	RolledBackTo string `json:"rolled_back_to,omitempty"`
	// UpdatedAt is when the record was last written.
	UpdatedAt time.Time `json:"updated_at"`
	sentinel  error
}

// InstallerOptions tunes an Installer.
type InstallerOptions struct {
	// MaxAttempts is how many times one release may be (re)started,
	// including resumes after crashes, before it fails (default 3).
	MaxAttempts int
	// Clock stamps records (nil: the system clock).
	Clock clock.Clock
}

// Installer drives the install state machine, persisting each transition in
// its own bbolt file so that it resumes after a crash at any point.
type Installer struct {
	db    *bolt.DB
	store ModelStore
	check GoldenCheck
	opts  InstallerOptions
}

var bucketInstalls = []byte("installs")

// OpenInstaller opens (creating) the state database at dbPath (e.g.
// DataDir/ota.db). check may be nil, which skips the golden check.
func OpenInstaller(dbPath string, store ModelStore, check GoldenCheck, opts InstallerOptions) (*Installer, error) {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 3
	}
	opts.Clock = clock.Or(opts.Clock)
	db, err := bolt.Open(dbPath, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open installer db %s: %w", dbPath, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketInstalls)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("open installer db %s: %w", dbPath, err)
	}
	return &Installer{db: db, store: store, check: check, opts: opts}, nil
}

// Close closes the state database.
func (in *Installer) Close() error { return in.db.Close() }

// Status returns the record of the latest install of model id (ErrNotFound if none).
func (in *Installer) Status(id string) (Record, error) {
	var rec Record
	err := in.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketInstalls).Get([]byte(id))
		if raw == nil {
			return fmt.Errorf("install status of %s: %w", id, ErrNotFound)
		}
		if err := json.Unmarshal(raw, &rec); err != nil {
			return fmt.Errorf("install status of %s: decode: %w", id, err)
		}
		return nil
	})
	return rec, err
}

func (in *Installer) save(rec *Record) error {
	rec.UpdatedAt = in.opts.Clock.Now().UTC()
	raw, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode install record: %w", err)
	}
	if err := in.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketInstalls).Put([]byte(rec.ID), raw)
	}); err != nil {
		return fmt.Errorf("save install record %s@%s (%s): %w", rec.ID, rec.Version, rec.State, err)
	}
	return nil
}

// Install runs a model artifact (from Updater.FetchModel) through the state
// machine. It returns the final record; a failed install returns an
// *InstallError. Installing a release that is already committed and still
// active is a no-op; a committed release that is no longer active (rolled
// back or another version activated since) is installed and activated
// again, as a new install; re-installing one whose record is unfinished
// continues it, counting towards the loop guard.
func (in *Installer) Install(ctx context.Context, a Artifact) (Record, error) {
	c := a.Target.Custom
	if c.Kind != KindModel {
		return Record{}, fmt.Errorf("install %s: kind %q is not a model", a.Target.Path, c.Kind)
	}
	info := a.Info()
	rec, err := in.Status(c.ID)
	if err == nil && rec.State == StateCommitted && rec.Version == c.Version && rec.Info.SHA256 == info.SHA256 {
		active, aerr := in.store.ActiveVersion(ctx, c.ID)
		switch {
		case aerr == nil && active == rec.Version:
			return rec, nil
		case aerr != nil && !errors.Is(aerr, ErrNotFound):
			return rec, fmt.Errorf("install %s@%s: read active version: %w", c.ID, c.Version, aerr)
		}
		// Committed once, but the store serves another version now: the
		// record is history, not the device's state. Start afresh.
		rec = Record{ID: c.ID, Version: c.Version, State: StateStaged, Staged: a.Path, Info: info, Golden: c.Golden}
		return in.run(ctx, rec)
	}
	switch {
	case err == nil && rec.Version == c.Version && rec.Info.SHA256 == info.SHA256:
		if rec.State == StateFailed {
			if rec.Attempts >= in.opts.MaxAttempts {
				return rec, &InstallError{ID: rec.ID, Version: rec.Version, Reason: rec.Reason, RolledBackTo: rec.RolledBackTo, Err: ErrMaxAttempts}
			}
			rec.State, rec.Reason, rec.RolledBackTo, rec.Staged = StateStaged, "", "", a.Path
		}
	case err == nil && !rec.State.Terminal():
		// a different release of this model was interrupted: finish it first
		// so the store is consistent, then start the new one.
		if _, err := in.run(ctx, rec); err != nil && !isInstallError(err) {
			return rec, err
		}
		fallthrough
	default:
		if err != nil && !errors.Is(err, ErrNotFound) {
			return Record{}, err
		}
		rec = Record{ID: c.ID, Version: c.Version, State: StateStaged, Staged: a.Path, Info: info, Golden: c.Golden}
	}
	return in.run(ctx, rec)
}

func isInstallError(err error) bool {
	var ie *InstallError
	return errors.As(err, &ie)
}

// Resume continues every unfinished install (after a crash or restart) and
// returns the records it touched. Errors of individual installs are joined.
func (in *Installer) Resume(ctx context.Context) ([]Record, error) {
	var pending []Record
	if err := in.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketInstalls).ForEach(func(k, v []byte) error {
			var rec Record
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode install record %q: %w", k, err)
			}
			if !rec.State.Terminal() {
				pending = append(pending, rec)
			}
			return nil
		})
	}); err != nil {
		return nil, fmt.Errorf("resume installs: %w", err)
	}
	var out []Record
	var errs []error
	for _, rec := range pending {
		r, err := in.run(ctx, rec)
		out = append(out, r)
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

// run advances rec until it is terminal or an error interrupts it.
func (in *Installer) run(ctx context.Context, rec Record) (Record, error) {
	rec.Attempts++
	if rec.Attempts > in.opts.MaxAttempts {
		reason := fmt.Sprintf("gave up after %d attempts", in.opts.MaxAttempts)
		if rec.Reason != "" {
			reason += "; last error: " + rec.Reason
		}
		return in.fail(ctx, rec, reason, ErrMaxAttempts)
	}
	if err := in.save(&rec); err != nil {
		return rec, err
	}
	for !rec.State.Terminal() {
		if err := ctx.Err(); err != nil {
			return rec, fmt.Errorf("install %s@%s: %w", rec.ID, rec.Version, err)
		}
		next, err := in.step(ctx, &rec)
		if err != nil {
			if isInstallError(err) {
				return rec, err
			}
			rec.Reason = err.Error()
			in.save(&rec) // best effort: keep the last error for the loop guard's report
			return rec, fmt.Errorf("install %s@%s (%s): %w", rec.ID, rec.Version, rec.State, err)
		}
		rec.State = next
		if err := in.save(&rec); err != nil {
			return rec, err
		}
	}
	if rec.State == StateCommitted {
		os.Remove(rec.Staged)
	}
	return rec, nil
}

// step performs the work of rec.State and returns the next state.
func (in *Installer) step(ctx context.Context, rec *Record) (State, error) {
	switch rec.State {
	case StateStaged:
		sum, n, err := download.HashFile(rec.Staged)
		if err != nil || sum != rec.Info.SHA256 || n != rec.Info.Size {
			reason := fmt.Sprintf("staged file %s does not match signed metadata (got sha256 %s size %d, want %s size %d)", rec.Staged, sum, n, rec.Info.SHA256, rec.Info.Size)
			if err != nil {
				reason = fmt.Sprintf("staged file %s unreadable: %v", rec.Staged, err)
			}
			r, ferr := in.fail(ctx, *rec, reason, ErrCorruptStaged)
			*rec = r
			return StateFailed, ferr
		}
		return StateVerified, nil
	case StateVerified:
		if err := in.store.Install(ctx, rec.ID, rec.Version, rec.Staged, rec.Info); err != nil {
			return "", err
		}
		prev, err := in.store.ActiveVersion(ctx, rec.ID)
		switch {
		case err == nil && prev != rec.Version:
			rec.Previous = prev
		case err != nil && !errors.Is(err, ErrNotFound):
			return "", err
		}
		return StateInstalled, nil
	case StateInstalled:
		if err := in.store.Activate(ctx, rec.ID, rec.Version); err != nil {
			return "", err
		}
		return StateActivated, nil
	case StateActivated:
		if in.check == nil {
			return StateCommitted, nil
		}
		p, err := in.store.ModelPath(ctx, rec.ID, rec.Version)
		if err != nil {
			return "", err
		}
		var g Golden
		if rec.Golden != nil {
			g = Golden{Inputs: rec.Golden.Inputs, OutputSHA256: rec.Golden.OutputSHA256}
		}
		if err := in.check(ctx, p, g); err != nil {
			if ctx.Err() != nil {
				return "", err // interrupted, not a verdict
			}
			rec.Reason = "golden check: " + err.Error()
			rec.sentinel = errors.Join(ErrGoldenCheck, err)
			return StateRollingBack, nil
		}
		return StateCommitted, nil
	case StateRollingBack:
		r, err := in.fail(ctx, *rec, rec.Reason, rec.sentinel)
		*rec = r
		return StateFailed, err
	default:
		return "", fmt.Errorf("unknown install state %q", rec.State)
	}
}

// fail rolls back if rec's version is active, marks rec failed and returns
// the *InstallError describing it.
func (in *Installer) fail(ctx context.Context, rec Record, reason string, sentinel error) (Record, error) {
	if sentinel == nil {
		sentinel = ErrGoldenCheck
	}
	active, err := in.store.ActiveVersion(ctx, rec.ID)
	switch {
	case err == nil && active == rec.Version:
		prev, err := in.store.Rollback(ctx, rec.ID)
		switch {
		case err == nil:
			rec.RolledBackTo = prev
		case errors.Is(err, ErrNoPrevious):
			reason += "; no previous version to roll back to"
		default:
			rec.Reason = reason
			in.save(&rec)
			return rec, fmt.Errorf("install %s@%s: roll back: %w", rec.ID, rec.Version, err)
		}
	case err == nil:
		rec.RolledBackTo = active
	case !errors.Is(err, ErrNotFound):
		return rec, fmt.Errorf("install %s@%s: read active version: %w", rec.ID, rec.Version, err)
	}
	rec.State = StateFailed
	rec.Reason = reason
	if err := in.save(&rec); err != nil {
		return rec, err
	}
	os.Remove(rec.Staged)
	return rec, &InstallError{ID: rec.ID, Version: rec.Version, Reason: reason, RolledBackTo: rec.RolledBackTo, Err: sentinel}
}
