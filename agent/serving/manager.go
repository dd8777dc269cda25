package serving

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgefleet/edgefleet/agent/engine"
	"github.com/edgefleet/edgefleet/agent/modelstore"
	"github.com/edgefleet/edgefleet/agent/telemetry"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/ota"
	"github.com/edgefleet/edgefleet/wire"
)

// Errors the API maps to 404.
var (
	ErrModelNotFound   = errors.New("model not found")
	ErrVersionNotFound = errors.New("model version not found")
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

// ErrModelUnavailable is wrapped by Get errors for a version that failed
// to load (HTTP 503 with the reason). The failure is remembered: the file
// is not parsed again until the model's versions change.
var ErrModelUnavailable = errors.New("model unavailable")

// Route is the traffic policy of one model: a shadow version and an A/B
// candidate with its percentage.
type Route struct {
	Shadow           string `json:"shadow,omitempty"`
	Candidate        string `json:"candidate,omitempty"`
	CandidatePercent int    `json:"candidate_percent,omitempty"`
}

// Manager loads model versions from the store on demand and predicts with
// them. It is safe for concurrent use.
type Manager struct {
	backend engine.Backend
	store   *modelstore.Store
	coll    *telemetry.Collector
	cfg     Config
	log     *slog.Logger
	cache   *Cache

	mu      sync.Mutex
	loaded  map[string]*Loaded
	loading map[string]*loadCall
	failed  map[string]error
	routes  map[string]Route
	mem     *memBudget
	ctx     context.Context
	cancel  context.CancelFunc
	// loads counts backend loads (tests: a failed model is parsed once).
	loads atomic.Int64

	shadowQ       chan shadowJob
	shadowDropped uint64
	stop          chan struct{}
	wg            sync.WaitGroup
}

type loadCall struct {
	done chan struct{}
	l    *Loaded
	err  error
}

type shadowJob struct {
	id, version string
	from        string // the primary's version
	in          []Instance
	primary     []Result
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
	m := &Manager{backend: b, store: store, coll: coll, cfg: cfg, log: log,
		loaded: map[string]*Loaded{}, loading: map[string]*loadCall{}, failed: map[string]error{}, routes: map[string]Route{},
		mem:     &memBudget{limit: cfg.MemoryBudget},
		shadowQ: make(chan shadowJob, cfg.ShadowQueue), stop: make(chan struct{})}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	if cfg.CacheEntries > 0 {
		m.cache = NewCache(cfg.CacheEntries, cfg.CacheTTL, nil)
	}
	if coll != nil {
		coll.TrackMemory(func() (int64, int64) { return m.mem.used.Load(), m.mem.limit })
	}
	m.wg.Add(1)
	go m.shadowWorker()
	if cfg.IdleUnload > 0 {
		m.wg.Add(1)
		go m.unloadIdle()
	}
	store.OnChange(m.changed)
	return m
}

// Backend returns the manager's backend.
func (m *Manager) Backend() engine.Backend { return m.backend }

// Store returns the model store.
func (m *Manager) Store() *modelstore.Store { return m.store }

// Collector returns the telemetry collector (may be nil).
func (m *Manager) Collector() *telemetry.Collector { return m.coll }

func key(id, version string) string { return id + "@" + version }

// Get returns model id at version (the active version when version is ""),
// loading it if needed.
func (m *Manager) Get(ctx context.Context, id, version string) (*Loaded, error) {
	if version == "" {
		v, err := m.store.ActiveVersion(ctx, id)
		if err != nil {
			if errors.Is(err, ota.ErrNotFound) {
				if _, gerr := m.store.Get(ctx, id); gerr != nil {
					return nil, fmt.Errorf("%w: %q", ErrModelNotFound, id)
				}
				return nil, fmt.Errorf("%w: model %q has no active version", ErrVersionNotFound, id)
			}
			return nil, err
		}
		version = v
	}
	k := key(id, version)
	m.mu.Lock()
	if l := m.loaded[k]; l != nil {
		m.mu.Unlock()
		return l, nil
	}
	if err := m.failed[k]; err != nil {
		m.mu.Unlock()
		return nil, err
	}
	if c := m.loading[k]; c != nil {
		m.mu.Unlock()
		select {
		case <-c.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return c.l, c.err
	}
	c := &loadCall{done: make(chan struct{})}
	m.loading[k] = c
	m.mu.Unlock()

	c.l, c.err = m.load(ctx, id, version)
	m.mu.Lock()
	delete(m.loading, k)
	if c.err == nil {
		m.loaded[k] = c.l
		if m.coll != nil {
			m.coll.TrackQueue(id, version, c.l.QueueLen)
			m.coll.TrackInterpreters(id, version, c.l.Interpreters)
		}
	} else if errors.Is(c.err, ErrModelUnavailable) {
		m.failed[k] = c.err
	}
	m.mu.Unlock()
	close(c.done)
	return c.l, c.err
}

func (m *Manager) load(ctx context.Context, id, version string) (*Loaded, error) {
	rec, err := m.store.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("%w: %q", ErrModelNotFound, id)
	}
	v, ok := rec.Version(version)
	if !ok {
		return nil, fmt.Errorf("%w: %s@%s", ErrVersionNotFound, id, version)
	}
	path, err := m.store.ModelPath(ctx, id, version)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s@%s: %w", ErrModelUnavailable, id, version, err)
	}
	start := time.Now()
	m.loads.Add(1)
	// A load is shared by every caller waiting for it: it is not canceled
	// with the first caller, only when the manager closes; its probes are
	// bounded by Limits.ProbeTimeout.
	l, err := loadWithBudget(m.ctx, m.backend, id, version, v.SHA256, data, m.cfg.Limits, m.mem, m.log)
	if err != nil {
		if m.ctx.Err() != nil {
			return nil, fmt.Errorf("load %s@%s: %w", id, version, ErrStopped)
		}
		return nil, fmt.Errorf("%w: %w", ErrModelUnavailable, err)
	}
	m.log.Info("model loaded", "model", id, "version", version, "backend", m.backend.Name(), "batchable", l.Batchable,
		"pool", l.limits.Pool, "elapsed", time.Since(start).Round(time.Millisecond))
	return l, nil
}

// changed is called by the store when a model's versions change: versions
// no longer active, shadow or candidate are unloaded after UnloadDelay.
func (m *Manager) changed(id string) {
	active, _ := m.store.ActiveVersion(context.Background(), id)
	m.mu.Lock()
	for k := range m.failed {
		if strings.HasPrefix(k, id+"@") {
			delete(m.failed, k)
		}
	}
	r := m.routes[id]
	var drop []*Loaded
	for k, l := range m.loaded {
		if l.ID != id || l.Version == active || l.Version == r.Shadow || l.Version == r.Candidate {
			continue
		}
		delete(m.loaded, k)
		drop = append(drop, l)
	}
	m.mu.Unlock()
	for _, l := range drop {
		m.untrack(l, "replaced")
		time.AfterFunc(m.cfg.UnloadDelay, func() { l.Close() })
	}
}

func (m *Manager) untrack(l *Loaded, reason string) {
	if m.coll != nil {
		m.coll.TrackQueue(l.ID, l.Version, nil)
		m.coll.TrackInterpreters(l.ID, l.Version, nil)
		m.coll.Unloaded(l.ID, l.Version, reason)
	}
}

// unloadIdle unloads versions idle for IdleUnload (checked every quarter
// of it, at most every 30 s). A request racing with the unload gets
// ErrStopped at worst; the next one loads the version again.
func (m *Manager) unloadIdle() {
	defer m.wg.Done()
	t := time.NewTicker(min(30*time.Second, max(time.Millisecond, m.cfg.IdleUnload/4)))
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		var drop []*Loaded
		m.mu.Lock()
		for k, l := range m.loaded {
			if time.Since(l.LastUsed()) >= m.cfg.IdleUnload && l.QueueLen() == 0 && l.inflight.Load() == 0 {
				delete(m.loaded, k)
				drop = append(drop, l)
			}
		}
		m.mu.Unlock()
		for _, l := range drop {
			m.log.Info("model unloaded: idle", "model", l.ID, "version", l.Version, "idle_for", m.cfg.IdleUnload)
			m.untrack(l, "idle")
			l.Close()
		}
	}
}

// CountShed records a request refused to protect the agent (reason:
// rate_limit, request_memory, queue_full, batch_too_large).
func (m *Manager) CountShed(reason string) {
	if m.coll != nil {
		m.coll.Shed(reason)
	}
}

// Loads returns how many times a model file was handed to the backend.
func (m *Manager) Loads() int64 { return m.loads.Load() }

// SetShadow makes version of model id run in shadow of the active version
// ("" stops shadowing). The version must be installed and load.
func (m *Manager) SetShadow(ctx context.Context, id, version string) error {
	if version != "" {
		if _, err := m.Get(ctx, id, version); err != nil {
			return fmt.Errorf("shadow %s@%s: %w", id, version, err)
		}
	}
	m.mu.Lock()
	r := m.routes[id]
	r.Shadow = version
	m.routes[id] = r
	m.mu.Unlock()
	m.changed(id)
	return nil
}

// SetAB sends percent % of model id's unpinned traffic to candidate,
// sticky by request key ("" or percent 0 stops the split).
func (m *Manager) SetAB(ctx context.Context, id, candidate string, percent int) error {
	if percent < 0 || percent > 100 {
		return fmt.Errorf("a/b %s: percent %d out of range 0..100", id, percent)
	}
	if candidate != "" && percent > 0 {
		if _, err := m.Get(ctx, id, candidate); err != nil {
			return fmt.Errorf("a/b %s@%s: %w", id, candidate, err)
		}
	} else {
		candidate, percent = "", 0
	}
	m.mu.Lock()
	r := m.routes[id]
	r.Candidate, r.CandidatePercent = candidate, percent
	m.routes[id] = r
	m.mu.Unlock()
	m.changed(id)
	return nil
}

// Routes returns the traffic policy of every model that has one.
func (m *Manager) Routes() map[string]Route {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]Route{}
	for k, v := range m.routes {
		if v != (Route{}) {
			out[k] = v
		}
	}
	return out
}

// Resolve picks the version that serves a request for id: version when
// pinned, else the A/B candidate for its share of keys (sticky by key; a
// random draw when key is ""), else the active version.
func (m *Manager) Resolve(ctx context.Context, id, version, stickyKey string) (*Loaded, wire.Role, error) {
	if version != "" {
		l, err := m.Get(ctx, id, version)
		return l, wire.RolePrimary, err
	}
	m.mu.Lock()
	r := m.routes[id]
	m.mu.Unlock()
	if r.Candidate != "" && r.CandidatePercent > 0 && bucket(stickyKey) < r.CandidatePercent {
		if l, err := m.Get(ctx, id, r.Candidate); err == nil {
			return l, wire.RoleCandidate, nil
		}
	}
	l, err := m.Get(ctx, id, "")
	return l, wire.RolePrimary, err
}

// bucket maps a key to 0..99 (FNV-1a), or a random bucket for "".
func bucket(k string) int {
	if k == "" {
		return rand.IntN(100)
	}
	h := fnv.New32a()
	h.Write([]byte(k))
	return int(h.Sum32() % 100)
}

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
			if m.coll != nil {
				m.coll.Cache(l.ID, l.Version, ok)
			}
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
			m.Observe(l, role, time.Since(start), len(instances), ErrorCode(err))
			switch {
			case errors.Is(err, ErrQueueFull):
				m.CountShed("queue_full")
			case errors.Is(err, ErrBatchTooLarge):
				m.CountShed("batch_too_large")
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
	m.Observe(l, role, time.Since(start), len(instances), "")
	if m.coll != nil {
		// Top-1 class, score and the tracked input prefix are read straight
		// from the tensor bytes (monitor.go): nothing is allocated per
		// instance.
		k := telemetry.Key{Model: l.ID, Version: l.Version, Role: role}
		// The model's own input info: with or without the batch dimension
		// it has the same element count, and featureValues also stops at
		// the instance's bytes.
		ins := l.inputs
		var buf [telemetry.MaxFeatures]float64
		for i, r := range out {
			if len(r) > 0 {
				if cl, score, ok := top1(&r[0].Info, r[0].Data); ok {
					m.coll.Prediction(k, cl, score)
				}
			}
			if len(ins) > 0 && len(instances[i]) > 0 {
				if n := featureValues(buf[:], &ins[0], instances[i][0]); n > 0 {
					m.coll.Features(k, buf[:n])
				}
			}
		}
	}
	if role == wire.RolePrimary {
		m.mu.Lock()
		shadow := m.routes[l.ID].Shadow
		m.mu.Unlock()
		if shadow != "" && shadow != l.Version {
			select {
			case m.shadowQ <- shadowJob{id: l.ID, version: shadow, from: l.Version, in: instances, primary: out}:
			default:
				m.mu.Lock()
				m.shadowDropped++
				m.mu.Unlock()
			}
		}
	}
	return out, nil
}

// Observe records one request's telemetry (code "" on success).
func (m *Manager) Observe(l *Loaded, role wire.Role, d time.Duration, instances int, code string) {
	if m.coll != nil {
		m.coll.Request(telemetry.Key{Model: l.ID, Version: l.Version, Role: role}, d, instances, code)
	}
}

// ShadowDropped returns the shadow comparisons dropped because the shadow
// queue was full.
func (m *Manager) ShadowDropped() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.shadowDropped
}

func (m *Manager) shadowWorker() {
	defer m.wg.Done()
	for {
		select {
		case <-m.stop:
			return
		case j := <-m.shadowQ:
			m.runShadow(j)
		}
	}
}

func (m *Manager) runShadow(j shadowJob) {
	ctx := context.Background()
	l, err := m.Get(ctx, j.id, j.version)
	if err != nil {
		return
	}
	primary, err := m.Get(ctx, j.id, j.from)
	if err != nil {
		return
	}
	in := j.in
	if primary != l {
		if in, err = Convert(primary, l, j.in); err != nil {
			m.Observe(l, wire.RoleShadow, 0, len(j.in), "invalid_input")
			return
		}
	}
	start := time.Now()
	res, err := l.Run(ctx, in)
	m.Observe(l, wire.RoleShadow, time.Since(start), len(j.in), ErrorCode(err))
	if err != nil {
		return
	}
	for i := range res {
		agree, diff := Compare(l, j.primary[i], res[i])
		if m.coll != nil {
			m.coll.Shadow(j.id, j.version, agree, diff)
		}
	}
}

// Compare reports whether two results agree on the top-1 class of the first
// output (or, for non-classification outputs, differ by at most 5 % of the
// primary's largest magnitude, at least 0.05) and the largest absolute
// difference over all outputs' real values.
func Compare(l *Loaded, a, b Result) (bool, float64) {
	var scale float64 = 1
	var maxDiff float64
	for i := range a {
		if i >= len(b) {
			return false, math.Inf(1)
		}
		x, err1 := Real(a[i].Info, a[i].Data)
		y, err2 := Real(b[i].Info, b[i].Data)
		if err1 != nil || err2 != nil || len(x) != len(y) {
			return false, math.Inf(1)
		}
		for k := range x {
			maxDiff = max(maxDiff, math.Abs(x[k]-y[k]))
			scale = max(scale, math.Abs(x[k]))
		}
	}
	pa, err1 := Format(l, a[:1], 0)
	pb, err2 := Format(l, b[:1], 0)
	if err1 != nil || err2 != nil {
		return false, maxDiff
	}
	if pa.Class >= 0 {
		return pa.Class == pb.Class, maxDiff
	}
	return maxDiff <= 0.05*scale, maxDiff
}

// ErrorCode maps an error to the API error code ("" for nil).
func ErrorCode(err error) string {
	var ie *InputError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ie), errors.Is(err, engine.ErrBadInput):
		return "invalid_input"
	case errors.Is(err, ErrQueueFull):
		return "overloaded"
	case errors.Is(err, ErrBatchTooLarge):
		return "batch_too_large"
	case errors.Is(err, ErrModelUnavailable):
		return "model_unavailable"
	case errors.Is(err, ErrModelNotFound):
		return "model_not_found"
	case errors.Is(err, ErrVersionNotFound):
		return "version_not_found"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, ErrStopped):
		return "unavailable"
	case errors.Is(err, engine.ErrUnsupportedModel):
		return "unsupported_model"
	}
	return "internal"
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
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]ModelStatus, len(models))
	for i, md := range models {
		out[i] = ModelStatus{Model: md, Route: m.routes[md.ID]}
		for _, l := range m.loaded {
			if l.ID == md.ID {
				out[i].Loaded = append(out[i].Loaded, VersionStatus{Version: l.Version, Batchable: l.Batchable, Queue: l.QueueLen(), QueueBound: l.QueueBound(), Interpreters: int(l.workers.Load())})
			}
		}
		sort.Slice(out[i].Loaded, func(a, b int) bool { return out[i].Loaded[a].Version < out[i].Loaded[b].Version })
	}
	return out, nil
}

// WarmUp loads the active version of every model; failures are logged and
// returned joined (the agent still serves the models that load).
func (m *Manager) WarmUp(ctx context.Context) error {
	models, err := m.store.List(ctx)
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
		if _, err := m.Get(ctx, md.ID, ""); err != nil {
			m.log.Error("model failed to load", "model", md.ID, "version", md.Active, "err", err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CancelLoads cancels the loads and probes in progress (shutdown); the
// manager stays usable until Close.
func (m *Manager) CancelLoads() { m.cancel() }

// Close unloads every version.
func (m *Manager) Close() error {
	m.cancel()
	close(m.stop)
	m.wg.Wait()
	m.mu.Lock()
	ls := m.loaded
	m.loaded = map[string]*Loaded{}
	m.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
	return nil
}

// Convert re-encodes instances of model version from for version to: raw
// bytes are dequantized with from's inputs and quantized with to's (the
// shapes must match), so a shadow or candidate with another input type
// sees the same real values.
func Convert(from, to *Loaded, in []Instance) ([]Instance, error) {
	fi, ti := from.InstanceInputs(), to.InstanceInputs()
	if len(fi) != len(ti) {
		return nil, fmt.Errorf("%w: %s@%s has %d inputs, %s@%s has %d", engine.ErrBadInput, from.ID, from.Version, len(fi), to.ID, to.Version, len(ti))
	}
	same := true
	for i := range fi {
		if !tensor.SameShape(fi[i].Shape, ti[i].Shape) {
			return nil, fmt.Errorf("%w: input %d has shape %s in %s and %s in %s", engine.ErrBadInput, i, tensor.ShapeString(fi[i].Shape), from.Version, tensor.ShapeString(ti[i].Shape), to.Version)
		}
		same = same && fi[i].Type == ti[i].Type && quantEqual(fi[i].Quant, ti[i].Quant)
	}
	if same {
		return in, nil
	}
	out := make([]Instance, len(in))
	for k, inst := range in {
		out[k] = make(Instance, len(inst))
		for i := range inst {
			vals, err := Real(fi[i], inst[i])
			if err != nil {
				return nil, err
			}
			if out[k][i], err = Quantize(ti[i], vals); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func quantEqual(a, b *tensor.Quantization) bool {
	if a == nil || b == nil {
		return a == b
	}
	if len(a.Scale) != len(b.Scale) || len(a.ZeroPoint) != len(b.ZeroPoint) {
		return false
	}
	for i := range a.Scale {
		if a.Scale[i] != b.Scale[i] {
			return false
		}
	}
	for i := range a.ZeroPoint {
		if a.ZeroPoint[i] != b.ZeroPoint[i] {
			return false
		}
	}
	return true
}
