package serving

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/edgefleet/edgefleet/agent/modelstore"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// Route is the traffic policy of one model: a shadow version and an A/B
// candidate with its percentage.
type Route struct {
	Shadow           string `json:"shadow,omitempty"`
	Candidate        string `json:"candidate,omitempty"`
	CandidatePercent int    `json:"candidate_percent,omitempty"`
}

// router holds each model's traffic policy: it picks the version that
// serves a request (pinned, A/B candidate or active) and runs the shadow
// version on a copy of the primary's traffic, in the background, through a
// bounded queue (beyond it shadow work is dropped, the primary never
// slowed). It keeps the loader from unloading the versions it routes to.
type router struct {
	ld    *loader
	store *modelstore.Store
	obs   *observer

	mu            sync.Mutex
	routes        map[string]Route
	shadowDropped uint64

	shadowQ chan shadowJob
	stop    chan struct{}
	wg      sync.WaitGroup
}

type shadowJob struct {
	id, version string
	from        string // the primary's version
	in          []Instance
	primary     []Result
}

// newRouter returns a router over ld's versions with a shadow queue of
// queue comparisons; it follows the store's changes (versions no longer
// active, shadow or candidate are unloaded).
func newRouter(ld *loader, store *modelstore.Store, obs *observer, queue int) *router {
	r := &router{ld: ld, store: store, obs: obs, routes: map[string]Route{},
		shadowQ: make(chan shadowJob, queue), stop: make(chan struct{})}
	r.wg.Add(1)
	go r.shadowWorker()
	store.OnChange(r.changed)
	return r
}

// changed is called by the store when a model's versions change: versions
// no longer active, shadow or candidate are unloaded after UnloadDelay.
func (r *router) changed(id string) {
	active, _ := r.store.ActiveVersion(context.Background(), id)
	rt := r.route(id)
	r.ld.Retain(id, func(v string) bool { return v == active || v == rt.Shadow || v == rt.Candidate })
}

func (r *router) route(id string) Route {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.routes[id]
}

// SetShadow makes version of model id run in shadow of the active version
// ("" stops shadowing). The version must be installed and load.
func (r *router) SetShadow(ctx context.Context, id, version string) error {
	if version != "" {
		if _, err := r.ld.Get(ctx, id, version); err != nil {
			return fmt.Errorf("shadow %s@%s: %w", id, version, err)
		}
	}
	r.mu.Lock()
	rt := r.routes[id]
	rt.Shadow = version
	r.routes[id] = rt
	r.mu.Unlock()
	r.changed(id)
	return nil
}

// SetAB sends percent % of model id's unpinned traffic to candidate,
// sticky by request key ("" or percent 0 stops the split).
func (r *router) SetAB(ctx context.Context, id, candidate string, percent int) error {
	if percent < 0 || percent > 100 {
		return fmt.Errorf("a/b %s: percent %d out of range 0..100", id, percent)
	}
	if candidate != "" && percent > 0 {
		if _, err := r.ld.Get(ctx, id, candidate); err != nil {
			return fmt.Errorf("a/b %s@%s: %w", id, candidate, err)
		}
	} else {
		candidate, percent = "", 0
	}
	r.mu.Lock()
	rt := r.routes[id]
	rt.Candidate, rt.CandidatePercent = candidate, percent
	r.routes[id] = rt
	r.mu.Unlock()
	r.changed(id)
	return nil
}

// Routes returns the traffic policy of every model that has one.
func (r *router) Routes() map[string]Route {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]Route{}
	for k, v := range r.routes {
		if v != (Route{}) {
			out[k] = v
		}
	}
	return out
}

// Resolve picks the version that serves a request for id: version when
// pinned, else the A/B candidate for its share of keys (sticky by key; a
// random draw when key is ""), else the active version.
func (r *router) Resolve(ctx context.Context, id, version, stickyKey string) (*Loaded, wire.Role, error) {
	if version != "" {
		l, err := r.ld.Get(ctx, id, version)
		return l, wire.RolePrimary, err
	}
	rt := r.route(id)
	if rt.Candidate != "" && rt.CandidatePercent > 0 && bucket(stickyKey) < rt.CandidatePercent {
		if l, err := r.ld.Get(ctx, id, rt.Candidate); err == nil {
			return l, wire.RoleCandidate, nil
		}
	}
	l, err := r.ld.Get(ctx, id, "")
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

// Mirror hands a primary request and its results to the shadow version of
// l's model, if it has one; when the shadow queue is full the comparison
// is dropped (ShadowDropped).
func (r *router) Mirror(l *Loaded, in []Instance, out []Result) {
	shadow := r.route(l.ID).Shadow
	if shadow == "" || shadow == l.Version {
		return
	}
	select {
	case r.shadowQ <- shadowJob{id: l.ID, version: shadow, from: l.Version, in: in, primary: out}:
	default:
		r.mu.Lock()
		r.shadowDropped++
		r.mu.Unlock()
	}
}

// ShadowDropped returns the shadow comparisons dropped because the shadow
// queue was full.
func (r *router) ShadowDropped() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.shadowDropped
}

func (r *router) shadowWorker() {
	defer r.wg.Done()
	for {
		select {
		case <-r.stop:
			return
		case j := <-r.shadowQ:
			r.runShadow(j)
		}
	}
}

func (r *router) runShadow(j shadowJob) {
	ctx := context.Background()
	l, err := r.ld.Get(ctx, j.id, j.version)
	if err != nil {
		return
	}
	primary, err := r.ld.Get(ctx, j.id, j.from)
	if err != nil {
		return
	}
	in := j.in
	if primary != l {
		if in, err = Convert(primary, l, j.in); err != nil {
			r.obs.Request(l, wire.RoleShadow, 0, len(j.in), "invalid_input")
			return
		}
	}
	start := time.Now()
	res, err := l.Run(ctx, in)
	r.obs.Request(l, wire.RoleShadow, time.Since(start), len(j.in), ErrorCode(err))
	if err != nil {
		return
	}
	for i := range res {
		agree, diff := Compare(l, j.primary[i], res[i])
		r.obs.shadow(j.id, j.version, agree, diff)
	}
}

// Close stops the shadow worker (comparisons still queued are dropped).
func (r *router) Close() {
	close(r.stop)
	r.wg.Wait()
}
