package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/fleet/telemetry"
	"github.com/edgefleet/edgefleet/internal/wire"
)

const bucketRollouts = "rollouts"

// Notifier delivers a device's pending jobs (the server publishes JobNotify).
type Notifier interface {
	NotifyJobs(ctx context.Context, deviceID string) error
}

// ErrConflict is returned when a model already has an active rollout, or
// (agent rollouts) another edge-agent rollout is active.
var ErrConflict = errors.New("an active rollout already exists")

// Manager runs every rollout: it persists them in its store, builds their
// views from the registry and telemetry, creates and delivers their jobs.
type Manager struct {
	st     store.Store
	reg    *registry.Registry
	tel    *telemetry.Store
	notify Notifier
	clock  Clock
	log    *slog.Logger

	// opMu serializes the mutating operations (Create, Command, Tick)
	// across their store reads, job writes, publishes and saves. mu guards
	// the in-memory rollouts and is never held across I/O, so StageTag
	// (telemetry ingest), Get and List (API, /metrics) never wait for an
	// fsync or a publish.
	opMu     sync.Mutex
	minGap   time.Duration // see SetMinTickGap; guarded by opMu
	lastTick time.Time
	mu       sync.Mutex
	rollouts map[string]*Rollout
	// unsaved: rollouts whose last save failed (guarded by opMu).
	unsaved map[string]bool
	// version is the stored rollouts' version the in-memory ones are at
	// (persist.go), loaded whether they were ever loaded (guarded by opMu).
	version uint64
	loaded  bool
	// rows caches the decoded rollout device rows between loads (guarded
	// by opMu; load is called with it held, or before the Manager is shared).
	rows rowCache
}

// dispatchParallel bounds concurrent job writes and notifications; many
// concurrent writes are group-committed by the store.
const dispatchParallel = 64

// NewManager loads the rollouts persisted in st (the store the registry and
// telemetry use); unfinished ones continue on the next Tick.
func NewManager(ctx context.Context, st store.Store, reg *registry.Registry, tel *telemetry.Store, n Notifier, clock Clock, log *slog.Logger) (*Manager, error) {
	if log == nil {
		log = slog.Default()
	}
	m := &Manager{st: st, reg: reg, tel: tel, notify: n, clock: clock, log: log, rollouts: map[string]*Rollout{}}
	if err := m.reloadLocked(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// load reads every rollout from the store and the rollouts' version they
// are at, rewriting rollouts stored in the old one-row format as a header
// and device rows.
func (m *Manager) load(ctx context.Context) (map[string]*Rollout, uint64, error) {
	var (
		rs      map[string]*Rollout
		legacy  []string
		version uint64
	)
	err := m.st.View(ctx, func(tx store.Tx) error {
		var err error
		if version, err = readVersionTx(tx); err != nil {
			return err
		}
		rs, legacy, err = loadRolloutsTx(tx, &m.rows)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("load rollouts: %w", err)
	}
	if len(legacy) > 0 {
		var before, after uint64
		err := m.st.Update(ctx, func(tx store.Tx) error {
			for _, id := range legacy {
				if _, err := persistTx(tx, nil, rs[id]); err != nil {
					return err
				}
			}
			var err error
			before, after, err = bumpVersionTx(tx)
			return err
		})
		if err != nil {
			return nil, 0, fmt.Errorf("load rollouts: rewrite as device rows: %w", err)
		}
		if before == version {
			version = after
		} else {
			version = 0 // changed meanwhile: the next ReloadIfChanged reads again
		}
	}
	return rs, version, nil
}

// Reload replaces the in-memory rollouts with the stored ones (replicas
// sharing a store: standbys serve current state, a new leader continues
// where the old one stopped).
func (m *Manager) Reload(ctx context.Context) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	return m.reloadLocked(ctx)
}

// ReloadIfChanged reloads the rollouts only when the stored version
// differs from the one this manager last loaded or wrote itself, i.e.
// when another replica sharing the store changed a rollout; otherwise it
// reads one row. It reports whether it reloaded.
func (m *Manager) ReloadIfChanged(ctx context.Context) (bool, error) {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	var stored uint64
	err := m.st.View(ctx, func(tx store.Tx) error {
		var err error
		stored, err = readVersionTx(tx)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("reload: %w", err)
	}
	if m.loaded && stored == m.version {
		return false, nil
	}
	return true, m.reloadLocked(ctx)
}

// reloadLocked is Reload with opMu held.
func (m *Manager) reloadLocked(ctx context.Context) error {
	fresh, version, err := m.load(ctx)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	m.mu.Lock()
	m.rollouts = fresh
	m.mu.Unlock()
	m.version, m.loaded = version, true
	return nil
}

// save writes what changed between old (as stored; nil for a new
// rollout) and cur: the header and the changed device rows (persist.go).
// A rollout whose save failed is written whole next time (the store may
// lag the memory by more than one diff). Callers hold opMu.
func (m *Manager) save(ctx context.Context, old, cur *Rollout) error {
	if m.unsaved[cur.Spec.ID] {
		old = nil
	}
	var before, after uint64
	err := m.st.Update(ctx, func(tx store.Tx) error {
		st, err := persistTx(tx, old, cur)
		if err != nil || st.Rows == 0 {
			before, after = m.version, m.version // nothing written
			return err
		}
		before, after, err = bumpVersionTx(tx)
		return err
	})
	if err == nil && before == m.version {
		m.version = after // only this save since the last load: nothing to reload
	} // else another replica wrote in between: the next ReloadIfChanged reads it
	if err != nil {
		if m.unsaved == nil {
			m.unsaved = map[string]bool{}
		}
		m.unsaved[cur.Spec.ID] = true
		return err
	}
	delete(m.unsaved, cur.Spec.ID)
	return nil
}

// Create starts a rollout.
func (m *Manager) Create(ctx context.Context, spec Spec) (*Rollout, error) {
	if spec.Kind != KindAgent {
		// An agent release is checked by the caller against the signed
		// repository (the registry holds models only).
		if _, err := m.reg.Models.Get(ctx, spec.ModelID, spec.Version); err != nil {
			return nil, fmt.Errorf("create rollout: %w", err)
		}
	}
	r, err := New(spec, m.clock.Now())
	if err != nil {
		return nil, err
	}
	m.opMu.Lock()
	defer m.opMu.Unlock()
	m.mu.Lock()
	if _, ok := m.rollouts[r.Spec.ID]; ok {
		m.mu.Unlock()
		return nil, fmt.Errorf("create rollout: id %s already used", r.Spec.ID)
	}
	for _, o := range m.rollouts {
		if o.Spec.ModelID == r.Spec.ModelID && o.Spec.Agent() == r.Spec.Agent() && !o.Phase.Final() {
			m.mu.Unlock()
			if r.Spec.Agent() {
				return nil, fmt.Errorf("create rollout %s: %w: one edge-agent rollout at a time (%s of %s is %s)", r.Spec.ID, ErrConflict, o.Spec.ID, o.Spec.Subject(), o.Phase)
			}
			return nil, fmt.Errorf("create rollout %s: %w for model %s (%s is %s)", r.Spec.ID, ErrConflict, r.Spec.ModelID, o.Spec.ID, o.Phase)
		}
	}
	snap := copyRollout(r)
	m.mu.Unlock()
	if err := m.save(ctx, nil, snap); err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.rollouts[r.Spec.ID] = r
	m.mu.Unlock()
	if err := m.step(ctx, r.Spec.ID); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return clone(m.rollouts[r.Spec.ID]), nil
}

func clone(r *Rollout) *Rollout {
	b, _ := json.Marshal(r)
	var c Rollout
	_ = json.Unmarshal(b, &c)
	return &c
}

// Get returns a copy of a rollout.
func (m *Manager) Get(id string) (*Rollout, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.rollouts[id]
	if !ok {
		return nil, false
	}
	return clone(r), true
}

// List returns copies of every rollout, newest first.
func (m *Manager) List() []*Rollout {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Rollout, 0, len(m.rollouts))
	for _, r := range m.rollouts {
		out = append(out, clone(r))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out
}

// ActiveCount is the number of rollouts not yet finished (no copies: for
// /metrics).
func (m *Manager) ActiveCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, r := range m.rollouts {
		if !r.Phase.Final() {
			n++
		}
	}
	return n
}

// Command applies an operator command to a rollout.
func (m *Manager) Command(ctx context.Context, id string, c Command) (*Rollout, error) {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	m.mu.Lock()
	r, ok := m.rollouts[id]
	var spec Spec
	if ok {
		spec = r.Spec
	}
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("rollout %s: %w", id, registry.ErrNotFound)
	}
	v, err := m.view(ctx, spec)
	if err != nil {
		return nil, err
	}
	work := copyRollout(r)
	acts, err := work.Apply(m.clock.Now(), c, v)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.rollouts[id] = work
	m.mu.Unlock()
	if err := m.dispatch(ctx, acts); err != nil {
		return nil, err
	}
	// Only holders of opMu change rollouts: r and work are stable here.
	if err := m.save(ctx, r, work); err != nil {
		return nil, err
	}
	return clone(work), nil
}

// view reads the fleet snapshot a rollout decides on (store reads only;
// no lock held).
func (m *Manager) view(ctx context.Context, spec Spec) (View, error) {
	sel, err := registry.ParseSelector(spec.Selector)
	if err != nil {
		return View{}, err
	}
	// Briefs and EachBrief read every device and job but decode only
	// those that changed since the previous tick (and only the fields
	// used here): at 10,000 devices, decoding every record each tick was
	// most of the leader's CPU.
	devs, err := m.reg.Devices.Briefs(ctx, sel)
	if err != nil {
		return View{}, err
	}
	v := View{Jobs: map[string]JobStatus{}, Health: m.tel.Health, Drift: m.tel.Drift}
	v.Devices = make([]Device, 0, len(devs))
	for i := range devs {
		d := &devs[i]
		active := d.ActiveVersion(spec.ModelID)
		if spec.Agent() {
			active = d.AgentVersion // what the device's own status reports
		}
		v.Devices = append(v.Devices, Device{ID: d.ID, Online: d.Presence == wire.Online, Active: active})
	}
	err = m.reg.Jobs.EachBrief(ctx, func(j registry.JobBrief) {
		if j.RolloutID == spec.ID {
			v.Jobs[j.JobID] = JobStatus{State: j.State, Reason: j.Reason}
		}
	})
	if err != nil {
		return View{}, err
	}
	return v, nil
}

// dispatch writes the actions' jobs and notifies the devices, up to
// dispatchParallel devices at a time (one device's jobs in order).
func (m *Manager) dispatch(ctx context.Context, acts []Action) error {
	if len(acts) == 0 {
		return nil
	}
	byDevice := map[string][]Action{}
	var order []string
	for _, a := range acts {
		if _, ok := byDevice[a.DeviceID]; !ok {
			order = append(order, a.DeviceID)
		}
		byDevice[a.DeviceID] = append(byDevice[a.DeviceID], a)
	}
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
		errs  []error
	)
	sem := make(chan struct{}, dispatchParallel)
	for _, id := range order {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			for _, a := range byDevice[id] {
				if _, err := m.reg.Jobs.Add(ctx, a.DeviceID, a.Job); err != nil {
					errMu.Lock()
					errs = append(errs, fmt.Errorf("dispatch %s to %s: %w", a.Job.JobID, a.DeviceID, err))
					errMu.Unlock()
					return
				}
			}
			if m.notify != nil {
				if err := m.notify.NotifyJobs(ctx, id); err != nil {
					// The device asks again (jobs/get) when it reconnects.
					m.log.Warn("notify jobs", "device", id, "err", err)
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// step ticks one rollout; callers hold m.opMu (not m.mu). The decision is
// computed on a private copy without any lock (Tick evaluates the health
// gates, which scans telemetry), and the copy replaces the rollout in the
// map under m.mu, so readers (StageTag on every telemetry record, Get,
// List) never wait for gate evaluation, store I/O or publishing. Only
// holders of opMu change rollouts, so reading r here without m.mu is safe.
func (m *Manager) step(ctx context.Context, id string) error {
	m.mu.Lock()
	r, ok := m.rollouts[id]
	m.mu.Unlock()
	if !ok || r.Phase.Final() {
		return nil
	}
	v, err := m.view(ctx, r.Spec)
	if err != nil {
		return err
	}
	work := copyRollout(r)
	acts := work.Tick(m.clock.Now(), v)
	changed := len(acts) > 0 || !sameRollout(r, work)
	if changed {
		m.mu.Lock()
		m.rollouts[id] = work
		m.mu.Unlock()
	}
	if err := m.dispatch(ctx, acts); err != nil {
		return err
	}
	if changed {
		if work.Phase != r.Phase || work.Stage != r.Stage {
			m.log.Info("rollout", "id", id, "phase", work.Phase, "stage", work.Stage+1, "reason", work.Reason)
		}
		return m.save(ctx, r, work)
	}
	return nil
}

// sameRollout reports whether a and b would be stored identically.
func sameRollout(a, b *Rollout) bool {
	if len(a.Devices) != len(b.Devices) {
		return false
	}
	for id, d := range a.Devices {
		if o, ok := b.Devices[id]; !ok || *o != *d {
			return false
		}
	}
	ha, err1 := encodeHeader(a)
	hb, err2 := encodeHeader(b)
	return err1 == nil && err2 == nil && bytes.Equal(ha, hb)
}

// SetMinTickGap makes Tick skip calls that come less than d after the
// previous tick started (wall clock): job updates kick the controller, and
// during a big rollout they arrive by the thousand; one snapshot of the
// fleet per d is enough. 0 (the default) ticks on every call.
func (m *Manager) SetMinTickGap(d time.Duration) {
	m.opMu.Lock()
	m.minGap = d
	m.opMu.Unlock()
}

// Tick times out overdue jobs and advances every unfinished rollout.
func (m *Manager) Tick(ctx context.Context) error {
	if _, err := m.reg.Jobs.TimeOut(ctx); err != nil {
		return err
	}
	m.opMu.Lock()
	defer m.opMu.Unlock()
	if m.minGap > 0 && time.Since(m.lastTick) < m.minGap {
		return nil
	}
	m.lastTick = time.Now()
	m.mu.Lock()
	ids := make([]string, 0, len(m.rollouts))
	for id := range m.rollouts {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	sort.Strings(ids)
	var errs []error
	for _, id := range ids {
		if err := m.step(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("rollout %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// StageTag attributes a telemetry record to the rollout stage its device
// was assigned in ("rollout/stage", 1-based), or "".
func (m *Manager) StageTag(deviceID string, rec wire.TelemetryRecord) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.rollouts {
		if r.Phase.Final() || r.Spec.ModelID != rec.ModelID {
			continue
		}
		if d, ok := r.Devices[deviceID]; ok && rec.Version == r.Spec.Version {
			return fmt.Sprintf("%s/%d", r.Spec.ID, d.Stage+1)
		}
	}
	return ""
}
