package serving

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"time"

	"github.com/edgefleet/edgefleet/agent/engine"
	"github.com/edgefleet/edgefleet/agent/modelstore"
	"github.com/edgefleet/edgefleet/agent/telemetry"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// Config configures a Manager.
type Config struct {
	Limits Limits
	// CacheEntries > 0 enables the prediction cache with that bound.
	CacheEntries int
	CacheTTL     time.Duration
	// ShadowQueue bounds the shadow comparisons waiting (default 64);
	// beyond it shadow work is dropped, never the primary slowed.
	ShadowQueue int
	// UnloadDelay is how long a replaced version stays loaded for requests
	// in flight (default 10 s).
	UnloadDelay time.Duration
	// MemoryBudget bounds the memory of all interpreters (tensor arenas);
	// pools do not grow beyond it and a version that does not fit fails to
	// load (0: unbounded).
	MemoryBudget int64
	// IdleUnload unloads a version that served no request for that long;
	// it is loaded again on demand (0: never).
	IdleUnload time.Duration
}

// Manager serves predictions from the store's model versions. It is made
// of three parts with one job each: a loader (loader.go) loads versions on
// demand within the memory budget and unloads replaced and idle ones; a
// router (router.go) picks the version of each request (pinned, A/B
// candidate, active) and mirrors primary traffic to the shadow; an observer
// (observer.go) records telemetry. An optional Cache answers repeated
// instances. It is safe for concurrent use.
type Manager struct {
	ld    *loader
	rt    *router
	obs   *observer
	store *modelstore.Store
	cache *Cache
}

// NewManager creates a manager. coll may be nil (no telemetry).
func NewManager(b engine.Backend, store *modelstore.Store, coll *telemetry.Collector, cfg Config, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.Default()
	}
	if cfg.ShadowQueue <= 0 {
		cfg.ShadowQueue = 64
	}
	if cfg.UnloadDelay <= 0 {
		cfg.UnloadDelay = 10 * time.Second
	}
	obs := newObserver(coll)
	ld := newLoader(b, store, obs, cfg, log)
	m := &Manager{ld: ld, rt: newRouter(ld, store, obs, cfg.ShadowQueue), obs: obs, store: store}
	if cfg.CacheEntries > 0 {
		m.cache = NewCache(cfg.CacheEntries, cfg.CacheTTL, nil)
	}
	return m
}

// Observe records the telemetry of a request that failed before it reached
// Predict (code: ErrorCode of its error).
func (m *Manager) Observe(l *Loaded, role wire.Role, d time.Duration, instances int, code string) {
	m.obs.Request(l, role, d, instances, code)
}

// CountShed records a request refused to protect the agent (reason:
// rate_limit, request_memory, queue_full, batch_too_large).
func (m *Manager) CountShed(reason string) { m.obs.Shed(reason) }

// Model returns the store's record of model id (the store's error, which
// wraps ota.ErrNotFound, if it has none).
func (m *Manager) Model(ctx context.Context, id string) (modelstore.Model, error) {
	return m.store.Get(ctx, id)
}

// Models lists the store's models.
func (m *Manager) Models(ctx context.Context) ([]modelstore.Model, error) { return m.store.List(ctx) }

// Predict runs instances on l, through the cache when enabled, records
// telemetry and hands the request to the shadow version if there is one.
func (m *Manager) Predict(ctx context.Context, l *Loaded, role wire.Role, instances []Instance) ([]Result, error) {
	start := time.Now()
	out := make([]Result, len(instances))
	var missIdx []int
	var missIn []Instance
	var keys []CacheKey
	if m.cache != nil {
		keys = make([]CacheKey, len(instances))
		for i, in := range instances {
			keys[i] = MakeCacheKey(l.SHA256, in)
			r, ok := m.cache.Get(keys[i])
			m.obs.cache(l, ok)
			if ok {
				out[i] = r
				continue
			}
			missIdx = append(missIdx, i)
			missIn = append(missIn, in)
		}
	} else {
		missIn = instances
		for i := range instances {
			missIdx = append(missIdx, i)
		}
	}
	if len(missIn) > 0 {
		res, err := l.Run(ctx, missIn)
		if err != nil {
			m.obs.Request(l, role, time.Since(start), len(instances), ErrorCode(err))
			switch {
			case errors.Is(err, ErrQueueFull):
				m.obs.Shed("queue_full")
			case errors.Is(err, ErrBatchTooLarge):
				m.obs.Shed("batch_too_large")
			}
			return nil, err
		}
		for j, i := range missIdx {
			out[i] = res[j]
			if m.cache != nil {
				m.cache.Put(keys[i], res[j])
			}
		}
	}
	m.obs.Request(l, role, time.Since(start), len(instances), "")
	m.obs.predictions(l, role, instances, out)
	if role == wire.RolePrimary {
		m.rt.Mirror(l, instances, out)
	}
	return out, nil
}

// VersionStatus describes one loaded version.
type VersionStatus struct {
	Version   string `json:"version"`
	Batchable bool   `json:"batchable"`
	Queue     int    `json:"queue"`
	// QueueBound is the queue's current bound, Interpreters the pool size.
	QueueBound   int `json:"queue_bound"`
	Interpreters int `json:"interpreters"`
}

// ModelStatus describes one model for status and health reports.
type ModelStatus struct {
	modelstore.Model
	Route  Route           `json:"route"`
	Loaded []VersionStatus `json:"loaded"`
}

// Status lists every model in the store with its route and loaded versions.
func (m *Manager) Status(ctx context.Context) ([]ModelStatus, error) {
	models, err := m.store.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ModelStatus, len(models))
	for i, md := range models {
		out[i] = ModelStatus{Model: md, Route: m.rt.route(md.ID), Loaded: m.ld.loadedStatus(md.ID)}
		sort.Slice(out[i].Loaded, func(a, b int) bool { return out[i].Loaded[a].Version < out[i].Loaded[b].Version })
	}
	return out, nil
}

// Get returns model id at version (the active version when version is ""),
// loading it if needed.
func (m *Manager) Get(ctx context.Context, id, version string) (*Loaded, error) {
	return m.ld.Get(ctx, id, version)
}

// Resolve picks the version that serves a request for id: version when
// pinned, else the A/B candidate for its share of keys (sticky by key; a
// random draw when key is ""), else the active version.
func (m *Manager) Resolve(ctx context.Context, id, version, stickyKey string) (*Loaded, wire.Role, error) {
	return m.rt.Resolve(ctx, id, version, stickyKey)
}

// SetShadow makes version of model id run in shadow of the active version
// ("" stops shadowing). The version must be installed and load.
func (m *Manager) SetShadow(ctx context.Context, id, version string) error {
	return m.rt.SetShadow(ctx, id, version)
}

// SetAB sends percent % of model id's unpinned traffic to candidate,
// sticky by request key ("" or percent 0 stops the split).
func (m *Manager) SetAB(ctx context.Context, id, candidate string, percent int) error {
	return m.rt.SetAB(ctx, id, candidate, percent)
}

// Routes returns the traffic policy of every model that has one.
func (m *Manager) Routes() map[string]Route { return m.rt.Routes() }

// ShadowDropped returns the shadow comparisons dropped because the shadow
// queue was full.
func (m *Manager) ShadowDropped() uint64 { return m.rt.ShadowDropped() }

// Loads returns how many times a model file was handed to the backend.
func (m *Manager) Loads() int64 { return m.ld.Loads() }

// BackendName names the backend versions are loaded into.
func (m *Manager) BackendName() string { return m.ld.BackendName() }

// WarmUp loads the active version of every model; failures are logged and
// returned joined (the agent still serves the models that load).
func (m *Manager) WarmUp(ctx context.Context) error { return m.ld.WarmUp(ctx) }

// CancelLoads cancels the loads and probes in progress (shutdown); the
// manager stays usable until Close.
func (m *Manager) CancelLoads() { m.ld.CancelLoads() }

// Close stops the shadow worker and unloads every version.
func (m *Manager) Close() error {
	m.ld.CancelLoads()
	m.rt.Close()
	return m.ld.Close()
}
