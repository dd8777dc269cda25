package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgefleet/edgefleet/agent/engine"
	"github.com/edgefleet/edgefleet/agent/modelstore"
	"github.com/edgefleet/edgefleet/ota"
)

// loader loads model versions from the store into the backend on demand,
// once however many callers wait for a version, within the memory budget;
// remembers versions that failed to load until the model's versions
// change; and unloads versions that were replaced or stayed idle. It is
// safe for concurrent use.
type loader struct {
	backend engine.Backend
	store   *modelstore.Store
	obs     *observer
	cfg     Config
	log     *slog.Logger

	mu      sync.Mutex
	loaded  map[string]*Loaded
	loading map[string]*loadCall
	failed  map[string]error
	mem     *memBudget
	ctx     context.Context
	cancel  context.CancelFunc
	// loads counts backend loads (tests: a failed model is parsed once).
	loads atomic.Int64

	stop chan struct{}
	wg   sync.WaitGroup
}

type loadCall struct {
	done chan struct{}
	l    *Loaded
	err  error
}

// newLoader returns a loader of the store's models into b; cfg has its
// defaults applied (NewManager).
func newLoader(b engine.Backend, store *modelstore.Store, obs *observer, cfg Config, log *slog.Logger) *loader {
	ld := &loader{backend: b, store: store, obs: obs, cfg: cfg, log: log,
		loaded: map[string]*Loaded{}, loading: map[string]*loadCall{}, failed: map[string]error{},
		mem: &memBudget{limit: cfg.MemoryBudget}, stop: make(chan struct{})}
	ld.ctx, ld.cancel = context.WithCancel(context.Background())
	obs.memory(ld.mem)
	if cfg.IdleUnload > 0 {
		ld.wg.Add(1)
		go ld.unloadIdle()
	}
	return ld
}

func key(id, version string) string { return id + "@" + version }

// Get returns model id at version (the active version when version is ""),
// loading it if needed.
func (ld *loader) Get(ctx context.Context, id, version string) (*Loaded, error) {
	if version == "" {
		v, err := ld.store.ActiveVersion(ctx, id)
		if err != nil {
			if errors.Is(err, ota.ErrNotFound) {
				if _, gerr := ld.store.Get(ctx, id); gerr != nil {
					return nil, fmt.Errorf("%w: %q", ErrModelNotFound, id)
				}
				return nil, fmt.Errorf("%w: model %q has no active version", ErrVersionNotFound, id)
			}
			return nil, err
		}
		version = v
	}
	k := key(id, version)
	ld.mu.Lock()
	if l := ld.loaded[k]; l != nil {
		ld.mu.Unlock()
		return l, nil
	}
	if err := ld.failed[k]; err != nil {
		ld.mu.Unlock()
		return nil, err
	}
	if c := ld.loading[k]; c != nil {
		ld.mu.Unlock()
		select {
		case <-c.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return c.l, c.err
	}
	c := &loadCall{done: make(chan struct{})}
	ld.loading[k] = c
	ld.mu.Unlock()
	// The load runs on its own goroutine, shared by every caller and bound
	// to the loader's life (and the probe timeout), not to this caller: a
	// readiness probe that waits 2 s must not end up running a model's
	// never-ending probe itself because it happened to ask first.
	go ld.finishLoad(k, c, id, version)
	select {
	case <-c.done:
		return c.l, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// finishLoad runs the load c of id@version and publishes its result. A
// version that finishes loading after the loader began to close is closed
// at once instead of being kept (Close has unloaded the others).
func (ld *loader) finishLoad(k string, c *loadCall, id, version string) {
	l, err := ld.load(ld.ctx, id, version)
	ld.mu.Lock()
	delete(ld.loading, k)
	switch {
	case err == nil && ld.ctx.Err() != nil:
		l.Close()
		l, err = nil, fmt.Errorf("load %s@%s: %w", id, version, ErrStopped)
	case err == nil:
		ld.loaded[k] = l
		ld.obs.loaded(l)
	case errors.Is(err, ErrModelUnavailable):
		ld.failed[k] = err
	}
	c.l, c.err = l, err
	ld.mu.Unlock()
	close(c.done)
}

func (ld *loader) load(ctx context.Context, id, version string) (*Loaded, error) {
	rec, err := ld.store.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("%w: %q", ErrModelNotFound, id)
	}
	v, ok := rec.Version(version)
	if !ok {
		return nil, fmt.Errorf("%w: %s@%s", ErrVersionNotFound, id, version)
	}
	path, err := ld.store.ModelPath(ctx, id, version)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s@%s: %w", ErrModelUnavailable, id, version, err)
	}
	start := time.Now()
	ld.loads.Add(1)
	// A load is shared by every caller waiting for it: it is not canceled
	// with the first caller, only when the loader closes; its probes are
	// bounded by Limits.ProbeTimeout.
	l, err := loadWithBudget(ld.ctx, ld.backend, id, version, v.SHA256, data, ld.cfg.Limits, ld.mem, ld.log)
	if err != nil {
		if ld.ctx.Err() != nil {
			return nil, fmt.Errorf("load %s@%s: %w", id, version, ErrStopped)
		}
		return nil, fmt.Errorf("%w: %w", ErrModelUnavailable, err)
	}
	ld.log.Info("model loaded", "model", id, "version", version, "backend", ld.backend.Name(), "batchable", l.Batchable,
		"pool", l.limits.Pool, "elapsed", time.Since(start).Round(time.Millisecond))
	return l, nil
}

// Retain forgets the load failures of model id (its versions changed) and
// unloads, after UnloadDelay, its loaded versions for which keep is false.
func (ld *loader) Retain(id string, keep func(version string) bool) {
	ld.mu.Lock()
	for k := range ld.failed {
		if strings.HasPrefix(k, id+"@") {
			delete(ld.failed, k)
		}
	}
	var drop []*Loaded
	for k, l := range ld.loaded {
		if l.ID != id || keep(l.Version) {
			continue
		}
		delete(ld.loaded, k)
		drop = append(drop, l)
	}
	ld.mu.Unlock()
	for _, l := range drop {
		ld.obs.unloaded(l, "replaced")
		time.AfterFunc(ld.cfg.UnloadDelay, func() { l.Close() })
	}
}

// unloadIdle unloads versions idle for IdleUnload (checked every quarter
// of it, at most every 30 s). A request racing with the unload gets
// ErrStopped at worst; the next one loads the version again.
func (ld *loader) unloadIdle() {
	defer ld.wg.Done()
	t := time.NewTicker(min(30*time.Second, max(time.Millisecond, ld.cfg.IdleUnload/4)))
	defer t.Stop()
	for {
		select {
		case <-ld.stop:
			return
		case <-t.C:
		}
		var drop []*Loaded
		ld.mu.Lock()
		for k, l := range ld.loaded {
			if time.Since(l.LastUsed()) >= ld.cfg.IdleUnload && l.QueueLen() == 0 && l.inflight.Load() == 0 {
				delete(ld.loaded, k)
				drop = append(drop, l)
			}
		}
		ld.mu.Unlock()
		for _, l := range drop {
			ld.log.Info("model unloaded: idle", "model", l.ID, "version", l.Version, "idle_for", ld.cfg.IdleUnload)
			ld.obs.unloaded(l, "idle")
			l.Close()
		}
	}
}

// Loads returns how many times a model file was handed to the backend.
func (ld *loader) Loads() int64 { return ld.loads.Load() }

// BackendName names the backend versions are loaded into.
func (ld *loader) BackendName() string { return ld.backend.Name() }

// loadedStatus lists the loaded versions of model id.
func (ld *loader) loadedStatus(id string) []VersionStatus {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	var out []VersionStatus
	for _, l := range ld.loaded {
		if l.ID == id {
			out = append(out, VersionStatus{Version: l.Version, Batchable: l.Batchable, Queue: l.QueueLen(), QueueBound: l.QueueBound(), Interpreters: int(l.workers.Load())})
		}
	}
	return out
}

// WarmUp loads the active version of every model; failures are logged and
// returned joined (the agent still serves the models that load).
func (ld *loader) WarmUp(ctx context.Context) error {
	models, err := ld.store.List(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, md := range models {
		if md.Active == "" {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := ld.Get(ctx, md.ID, ""); err != nil {
			ld.log.Error("model failed to load", "model", md.ID, "version", md.Active, "err", err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CancelLoads cancels the loads and probes in progress (shutdown); the
// loader stays usable until Close.
func (ld *loader) CancelLoads() { ld.cancel() }

// Close unloads every version.
func (ld *loader) Close() error {
	ld.cancel()
	close(ld.stop)
	ld.wg.Wait()
	ld.mu.Lock()
	ls := ld.loaded
	ld.loaded = map[string]*Loaded{}
	ld.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
	return nil
}
