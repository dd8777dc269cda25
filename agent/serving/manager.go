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
	"github.com/edgefleet/edgefleet/fleet/wire"
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

// Manager serves predictions from the store's model versions: a Loader
// loads them, a Router picks the version of each request and mirrors
// traffic to shadows, an Observer records telemetry, and an optional Cache
// answers repeated instances. It is safe for concurrent use.
type Manager struct {
	*Loader
	*Router
	obs   *Observer
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
	obs := NewObserver(coll)
	ld := NewLoader(b, store, obs, cfg, log)
	m := &Manager{Loader: ld, Router: NewRouter(ld, store, obs, cfg.ShadowQueue), obs: obs, store: store}
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
		m.Mirror(l, instances, out)
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
		out[i] = ModelStatus{Model: md, Route: m.route(md.ID), Loaded: m.loadedStatus(md.ID)}
		sort.Slice(out[i].Loaded, func(a, b int) bool { return out[i].Loaded[a].Version < out[i].Loaded[b].Version })
	}
	return out, nil
}

// Close stops the shadow worker and unloads every version.
func (m *Manager) Close() error {
	m.CancelLoads()
	m.Router.Close()
	return m.Loader.Close()
}
