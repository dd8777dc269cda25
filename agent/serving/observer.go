package serving

import (
	"time"

	"github.com/edgefleet/edgefleet/agent/telemetry"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// observer turns what serving does into telemetry: requests and their
// outcome, shed requests, cache hits, the monitored prediction and input
// features of each instance, shadow comparisons, and which versions are
// loaded. A nil collector makes every method a no-op.
type observer struct {
	coll *telemetry.Collector
}

// newObserver returns an observer recording into coll (nil: nothing).
func newObserver(coll *telemetry.Collector) *observer { return &observer{coll: coll} }

// Request records one request's telemetry (code "" on success, else
// ErrorCode of its error).
func (o *observer) Request(l *Loaded, role wire.Role, d time.Duration, instances int, code string) {
	if o.coll != nil {
		o.coll.Request(telemetry.Key{Model: l.ID, Version: l.Version, Role: role}, d, instances, code)
	}
}

// Shed records a request refused to protect the agent (reason:
// rate_limit, request_memory, queue_full, batch_too_large).
func (o *observer) Shed(reason string) {
	if o.coll != nil {
		o.coll.Shed(reason)
	}
}

// cache records one prediction-cache lookup.
func (o *observer) cache(l *Loaded, hit bool) {
	if o.coll != nil {
		o.coll.Cache(l.ID, l.Version, hit)
	}
}

// predictions records the monitored values of a request's instances:
// top-1 class and score of each result and the tracked input prefix, read
// straight from the tensor bytes (monitor.go): nothing is allocated per
// instance.
func (o *observer) predictions(l *Loaded, role wire.Role, instances []Instance, out []Result) {
	if o.coll == nil {
		return
	}
	k := telemetry.Key{Model: l.ID, Version: l.Version, Role: role}
	// The model's own input info: with or without the batch dimension it
	// has the same element count, and featureValues also stops at the
	// instance's bytes.
	ins := l.inputs
	var buf [telemetry.MaxFeatures]float64
	for i, r := range out {
		if len(r) > 0 {
			if cl, score, ok := top1(&r[0].Info, r[0].Data); ok {
				o.coll.Prediction(k, cl, score)
			}
		}
		if len(ins) > 0 && len(instances[i]) > 0 {
			if n := featureValues(buf[:], &ins[0], instances[i][0]); n > 0 {
				o.coll.Features(k, buf[:n])
			}
		}
	}
}

// shadow records one shadow comparison.
func (o *observer) shadow(id, version string, agree bool, diff float64) {
	if o.coll != nil {
		o.coll.Shadow(id, version, agree, diff)
	}
}

// loaded tracks the queue and pool of a version that was loaded.
func (o *observer) loaded(l *Loaded) {
	if o.coll != nil {
		o.coll.TrackQueue(l.ID, l.Version, l.QueueLen)
		o.coll.TrackInterpreters(l.ID, l.Version, l.Interpreters)
	}
}

// unloaded stops tracking a version and records why it was unloaded.
func (o *observer) unloaded(l *Loaded, reason string) {
	if o.coll != nil {
		o.coll.TrackQueue(l.ID, l.Version, nil)
		o.coll.TrackInterpreters(l.ID, l.Version, nil)
		o.coll.Unloaded(l.ID, l.Version, reason)
	}
}

// memory tracks the interpreters' memory against its budget.
func (o *observer) memory(m *memBudget) {
	if o.coll != nil {
		o.coll.TrackMemory(func() (int64, int64) { return m.used.Load(), m.limit })
	}
}
