package telemetry

import (
	"context"
	"log/slog"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// MaxFeatures bounds the input features whose mean and std are tracked per
// model version (the first MaxFeatures real values of the first input).
const MaxFeatures = 64

// latencyBounds are the upper bounds (ms) of the windowed latency histogram
// used for the percentiles in records: log-spaced from 10 µs to ~100 s.
var latencyBounds = func() []float64 {
	var b []float64
	for v := 0.01; v < 1e5; v *= 1.15 {
		b = append(b, v)
	}
	return b
}()

// Key names one model version in one role.
type Key struct {
	Model   string
	Version string
	Role    wire.Role
}

// window accumulates one period of one Key.
type window struct {
	requests, errors, instances uint64
	errorsByCode                map[string]uint64
	latency                     []uint64 // counts per latencyBounds bucket (+1 overflow)
	classes                     map[int]uint64
	predictions                 uint64
	confidence                  [wire.ConfidenceBuckets]uint64
	featN                       uint64
	featMean, featM2            []float64
	// feat summarizes the first wire.MaxFeatures features over their
	// finite values for the fleet (wire.Monitoring); nfeat are in use.
	feat                        [wire.MaxFeatures]featStat
	nfeat                       int
	cacheHits, cacheMisses      uint64
	shadowCompared, shadowAgree uint64
	shadowMaxDiff               float64
}

// featStat is one feature's running summary: Welford mean and M2, min,
// max and the mergeable sketch.
type featStat struct {
	n        uint64
	mean, m2 float64
	lo, hi   float64
	sketch   wire.Sketch
}

func (f *featStat) add(v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	f.n++
	d := v - f.mean
	f.mean += d / float64(f.n)
	f.m2 += d * (v - f.mean)
	if f.n == 1 || v < f.lo {
		f.lo = v
	}
	if f.n == 1 || v > f.hi {
		f.hi = v
	}
	f.sketch.Add(v)
}

func newWindow() *window {
	return &window{errorsByCode: map[string]uint64{}, latency: make([]uint64, len(latencyBounds)+1), classes: map[int]uint64{}}
}

// Collector records per model version telemetry into Prometheus metrics
// (cumulative) and into windows that Flush turns into ring records. It is
// safe for concurrent use.
type Collector struct {
	reg *prometheus.Registry

	latency    *prometheus.HistogramVec
	requests   *prometheus.CounterVec
	instances  *prometheus.CounterVec
	errs       *prometheus.CounterVec
	classes    *prometheus.CounterVec
	confidence *prometheus.HistogramVec
	featMean   *prometheus.GaugeVec
	featStd    *prometheus.GaugeVec
	queue      *prometheus.GaugeVec
	cache      *prometheus.CounterVec
	shadow     *prometheus.CounterVec
	shadowDiff *prometheus.GaugeVec
	ringDrops  prometheus.GaugeFunc
	interps    *prometheus.GaugeVec
	interpMem  *prometheus.GaugeVec
	unloads    *prometheus.CounterVec
	shed       *prometheus.CounterVec
	lost       prometheus.Counter
	device     *prometheus.GaugeVec

	mu        sync.Mutex
	windows   map[Key]*window
	queueLen  map[Key]func() int
	pools     map[Key]func() (int, int64)
	memory    func() (used, limit int64)
	lastFlush time.Time
	lastCPU   float64
	now       func() time.Time
	proc      *Proc
}

// NewCollector creates a collector with its own Prometheus registry (which
// also holds the Go and process collectors: CPU seconds and RSS).
func NewCollector(clk clock.Clock) *Collector {
	now := clock.Or(clk).Now
	reg := prometheus.NewRegistry()
	lbl := []string{"model", "version", "role"}
	c := &Collector{
		reg: reg,
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "edge_agent_request_duration_seconds", Help: "Prediction request latency inside the agent.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}, lbl),
		requests:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edge_agent_requests_total", Help: "Prediction requests."}, lbl),
		instances: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edge_agent_instances_total", Help: "Predicted instances (throughput)."}, lbl),
		errs:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edge_agent_errors_total", Help: "Failed requests by error code."}, append(lbl, "code")),
		classes:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edge_agent_predicted_class_total", Help: "Top-1 predicted class counts."}, append(lbl, "class")),
		confidence: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "edge_agent_confidence", Help: "Top-1 score of predictions.", Buckets: []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1},
		}, lbl),
		featMean:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "edge_agent_input_feature_mean", Help: "Mean of input feature values over the current period (drift)."}, append(lbl, "feature")),
		featStd:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "edge_agent_input_feature_std", Help: "Std of input feature values over the current period (drift)."}, append(lbl, "feature")),
		queue:      prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "edge_agent_queue_length", Help: "Instances waiting for an interpreter."}, []string{"model", "version"}),
		cache:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edge_agent_cache_lookups_total", Help: "Prediction cache lookups by result (hit, miss)."}, []string{"model", "version", "result"}),
		shadow:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edge_agent_shadow_comparisons_total", Help: "Shadow comparisons by top-1 agreement."}, []string{"model", "version", "agree"}),
		shadowDiff: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "edge_agent_shadow_max_abs_diff", Help: "Largest output difference between shadow and primary in the current period."}, []string{"model", "version"}),
		interps:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "edge_agent_interpreters", Help: "Interpreters in the pool of a model version (auto-scaled between min and max)."}, []string{"model", "version"}),
		interpMem:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "edge_agent_interpreter_memory_bytes", Help: "Memory held by the interpreters of a model version."}, []string{"model", "version"}),
		unloads:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edge_agent_model_unloads_total", Help: "Model versions unloaded, by reason (idle, replaced)."}, []string{"model", "version", "reason"}),
		shed:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edge_agent_shed_requests_total", Help: "Requests refused to protect the agent, by reason (rate_limit, request_memory, queue_full, batch_too_large)."}, []string{"reason"}),
		device: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "edge_agent_device", Help: "Device resources at the last telemetry period (from /proc): memory total and available bytes, CPU busy percent over the period, 1-minute load."},
			[]string{"resource"}),
		lost:     prometheus.NewCounter(prometheus.CounterOpts{Name: "edge_agent_telemetry_lost_records_total", Help: "Telemetry records that could not be stored (also counted in the ring's dropped count)."}),
		pools:    map[Key]func() (int, int64){},
		windows:  map[Key]*window{},
		queueLen: map[Key]func() int{},
		now:      now,
		proc:     &Proc{Root: "/proc"},
	}
	c.lastFlush = now()
	c.lastCPU = cpuSeconds()
	reg.MustRegister(c.latency, c.requests, c.instances, c.errs, c.classes, c.confidence, c.featMean, c.featStd, c.queue, c.cache, c.shadow, c.shadowDiff,
		c.interps, c.interpMem, c.unloads, c.shed, c.lost, c.device,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edge_agent_interpreter_memory_budget_used_bytes", Help: "Memory held by all interpreters (against serving.memory_budget)."}, func() float64 {
			c.mu.Lock()
			fn := c.memory
			c.mu.Unlock()
			if fn == nil {
				return 0
			}
			used, _ := fn()
			return float64(used)
		}),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return c
}

// SetProcRoot makes the collector read process and device resources from
// another /proc tree (tests use a fake one).
func (c *Collector) SetProcRoot(root string) {
	c.mu.Lock()
	c.proc = &Proc{Root: root}
	c.mu.Unlock()
}

// Registry returns the Prometheus registry to serve on /metrics.
func (c *Collector) Registry() *prometheus.Registry { return c.reg }

// RegisterRing exports the ring's pending and dropped counts as metrics.
func (c *Collector) RegisterRing(r *Ring) {
	c.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edge_agent_telemetry_pending_records", Help: "Telemetry records not yet acknowledged by the fleet."}, func() float64 {
			st, _ := r.Stats()
			return float64(st.Pending)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edge_agent_telemetry_dropped_records", Help: "Telemetry records dropped because the ring was full."}, func() float64 {
			st, _ := r.Stats()
			return float64(st.Dropped)
		}))
}

func (c *Collector) win(k Key) *window {
	w := c.windows[k]
	if w == nil {
		w = newWindow()
		c.windows[k] = w
	}
	return w
}

func roleOf(k Key) string {
	if k.Role == "" {
		return string(wire.RolePrimary)
	}
	return string(k.Role)
}

// Request records one finished request of k with instances instances; code
// is "" on success or the error code.
func (c *Collector) Request(k Key, d time.Duration, instances int, code string) {
	r := roleOf(k)
	c.requests.WithLabelValues(k.Model, k.Version, r).Inc()
	if code != "" {
		c.errs.WithLabelValues(k.Model, k.Version, r, code).Inc()
	} else {
		c.latency.WithLabelValues(k.Model, k.Version, r).Observe(d.Seconds())
		c.instances.WithLabelValues(k.Model, k.Version, r).Add(float64(instances))
	}
	ms := float64(d) / float64(time.Millisecond)
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.win(k)
	w.requests++
	if code != "" {
		w.errors++
		w.errorsByCode[code]++
		return
	}
	w.instances += uint64(instances)
	w.latency[sort.SearchFloat64s(latencyBounds, ms)]++
}

// MetricClasses bounds the class label of edge_agent_predicted_class_total:
// classes 0..MetricClasses-1 get their own series, every other class (a
// 1000-class model's tail, or a negative index) counts under "other", so
// a model cannot grow the metrics without bound. The telemetry record's
// class histogram has its own bound (wire.MaxClasses).
const MetricClasses = 100

// classLabels are the label strings of the bounded classes, made once so a
// prediction does not format one.
var classLabels = func() (l [MetricClasses]string) {
	for i := range l {
		l[i] = strconv.Itoa(i)
	}
	return l
}()

func classLabel(class int) string {
	if class < 0 || class >= MetricClasses {
		return "other"
	}
	return classLabels[class]
}

// Prediction records the top-1 class and score of one predicted instance.
func (c *Collector) Prediction(k Key, class int, score float64) {
	r := roleOf(k)
	c.classes.WithLabelValues(k.Model, k.Version, r, classLabel(class)).Inc()
	finite := !math.IsNaN(score) && !math.IsInf(score, 0)
	if finite {
		c.confidence.WithLabelValues(k.Model, k.Version, r).Observe(score)
	}
	c.mu.Lock()
	w := c.win(k)
	w.classes[class]++
	w.predictions++
	if b, ok := wire.ConfidenceBucket(score); ok {
		w.confidence[b]++
	}
	c.mu.Unlock()
}

// Features records the real input values of one instance (first input);
// only the first MaxFeatures values are tracked.
func (c *Collector) Features(k Key, values []float64) {
	if len(values) > MaxFeatures {
		values = values[:MaxFeatures]
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.win(k)
	if len(w.featMean) < len(values) {
		w.featMean = append(w.featMean, make([]float64, len(values)-len(w.featMean))...)
		w.featM2 = append(w.featM2, make([]float64, len(values)-len(w.featM2))...)
	}
	w.featN++
	n := float64(w.featN)
	for i, v := range values { // Welford's online mean and variance
		d := v - w.featMean[i]
		w.featMean[i] += d / n
		w.featM2[i] += d * (v - w.featMean[i])
	}
	w.nfeat = max(w.nfeat, min(len(values), wire.MaxFeatures))
	for i, v := range values[:min(len(values), wire.MaxFeatures)] {
		w.feat[i].add(v)
	}
}

// Cache records a prediction cache lookup.
func (c *Collector) Cache(model, version string, hit bool) {
	res := "miss"
	if hit {
		res = "hit"
	}
	c.cache.WithLabelValues(model, version, res).Inc()
	c.mu.Lock()
	w := c.win(Key{Model: model, Version: version, Role: wire.RolePrimary})
	if hit {
		w.cacheHits++
	} else {
		w.cacheMisses++
	}
	c.mu.Unlock()
}

// Shadow records one comparison of a shadow version against the primary.
func (c *Collector) Shadow(model, version string, agree bool, maxAbsDiff float64) {
	c.shadow.WithLabelValues(model, version, strconv.FormatBool(agree)).Inc()
	c.mu.Lock()
	w := c.win(Key{Model: model, Version: version, Role: wire.RoleShadow})
	w.shadowCompared++
	if agree {
		w.shadowAgree++
	}
	if maxAbsDiff > w.shadowMaxDiff {
		w.shadowMaxDiff = maxAbsDiff
		c.shadowDiff.WithLabelValues(model, version).Set(maxAbsDiff)
	}
	c.mu.Unlock()
}

// TrackQueue registers a function reporting the queue length of a model
// version; nil unregisters it.
func (c *Collector) TrackQueue(model, version string, fn func() int) {
	k := Key{Model: model, Version: version}
	c.mu.Lock()
	defer c.mu.Unlock()
	if fn == nil {
		delete(c.queueLen, k)
		c.queue.DeleteLabelValues(model, version)
		return
	}
	c.queueLen[k] = fn
}

// TrackInterpreters registers a function reporting the interpreters of a
// model version and their memory; nil unregisters it.
func (c *Collector) TrackInterpreters(model, version string, fn func() (int, int64)) {
	k := Key{Model: model, Version: version}
	c.mu.Lock()
	defer c.mu.Unlock()
	if fn == nil {
		delete(c.pools, k)
		c.interps.DeleteLabelValues(model, version)
		c.interpMem.DeleteLabelValues(model, version)
		return
	}
	c.pools[k] = fn
}

// TrackMemory registers the function reporting the interpreters' memory
// and its budget.
func (c *Collector) TrackMemory(fn func() (used, limit int64)) {
	c.mu.Lock()
	c.memory = fn
	c.mu.Unlock()
}

// Unloaded counts a model version unloaded for reason.
func (c *Collector) Unloaded(model, version, reason string) {
	c.unloads.WithLabelValues(model, version, reason).Inc()
}

// Shed counts a request refused to protect the agent.
func (c *Collector) Shed(reason string) { c.shed.WithLabelValues(reason).Inc() }

// Describe refreshes the gauges computed on demand (queue length, feature
// statistics); the HTTP /metrics handler calls it before each scrape.
func (c *Collector) Describe() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, fn := range c.queueLen {
		c.queue.WithLabelValues(k.Model, k.Version).Set(float64(fn()))
	}
	for k, fn := range c.pools {
		n, mem := fn()
		c.interps.WithLabelValues(k.Model, k.Version).Set(float64(n))
		c.interpMem.WithLabelValues(k.Model, k.Version).Set(float64(mem))
	}
	for k, w := range c.windows {
		mean, std := w.features()
		for i := range mean {
			f := strconv.Itoa(i)
			c.featMean.WithLabelValues(k.Model, k.Version, roleOf(k), f).Set(mean[i])
			c.featStd.WithLabelValues(k.Model, k.Version, roleOf(k), f).Set(std[i])
		}
	}
}

func (w *window) features() (mean, std []float64) {
	if w.featN == 0 {
		return nil, nil
	}
	mean = append([]float64(nil), w.featMean...)
	std = make([]float64, len(mean))
	for i := range std {
		std[i] = math.Sqrt(w.featM2[i] / float64(w.featN))
	}
	return mean, std
}

// monitoring returns the window's distributions for the fleet, always
// within the wire bounds (the fleet refuses a batch with an invalid
// record): at most wire.MaxClasses classes (the most frequent, the rest in
// ClassOther), finite feature statistics.
func (w *window) monitoring(res *wire.Resources) *wire.Monitoring {
	m := &wire.Monitoring{Predictions: w.predictions, Resources: res}
	if w.predictions > 0 {
		cs := make([]wire.ClassCount, 0, min(len(w.classes), 4*wire.MaxClasses))
		for cl, n := range w.classes {
			if cl < 0 || cl > wire.MaxIndex {
				m.ClassOther += n
				continue
			}
			cs = append(cs, wire.ClassCount{Class: cl, Count: n})
		}
		sort.Slice(cs, func(i, j int) bool {
			if cs[i].Count != cs[j].Count {
				return cs[i].Count > cs[j].Count
			}
			return cs[i].Class < cs[j].Class
		})
		if len(cs) > wire.MaxClasses {
			for _, c := range cs[wire.MaxClasses:] {
				m.ClassOther += c.Count
			}
			cs = cs[:wire.MaxClasses]
		}
		sort.Slice(cs, func(i, j int) bool { return cs[i].Class < cs[j].Class })
		m.Classes = cs
		m.Confidence = append([]uint64(nil), w.confidence[:]...)
	}
	for i := range w.feat[:w.nfeat] {
		f := &w.feat[i]
		if f.n == 0 {
			continue
		}
		std := math.Sqrt(f.m2 / float64(f.n))
		if math.IsNaN(f.mean) || math.IsInf(f.mean, 0) || math.IsNaN(std) || math.IsInf(std, 0) {
			continue // values near ±MaxFloat64 overflow the sums
		}
		s := f.sketch
		s.Counts = append([]uint64(nil), s.Counts...)
		m.Features = append(m.Features, wire.FeatureSummary{Index: i, Count: f.n, Mean: f.mean, Std: std, Min: f.lo, Max: f.hi, Sketch: s})
	}
	if m.Validate() != nil {
		m.Features = nil
		if m.Validate() != nil {
			return nil
		}
	}
	if m.Predictions == 0 && len(m.Features) == 0 && m.Resources == nil {
		return nil
	}
	return m
}

func (w *window) percentile(p float64) float64 {
	var total uint64
	for _, n := range w.latency {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(p * float64(total)))
	var acc uint64
	for i, n := range w.latency {
		acc += n
		if acc >= rank {
			if i < len(latencyBounds) {
				return latencyBounds[i]
			}
			return latencyBounds[len(latencyBounds)-1]
		}
	}
	return 0
}

// Flush closes the current period: it returns one record per model version
// and role that saw traffic, and starts a new period.
func (c *Collector) Flush() []Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	period := now.Sub(c.lastFlush).Seconds()
	c.lastFlush = now
	cpu := cpuSeconds()
	cpuDelta := cpu - c.lastCPU
	c.lastCPU = cpu
	rss := rssBytes()
	res, err := c.proc.Sample()
	if err != nil {
		res = nil // not Linux, or /proc unreadable: records go without resources
	} else {
		c.device.WithLabelValues("memory_total_bytes").Set(float64(res.DeviceMemTotalBytes))
		c.device.WithLabelValues("memory_available_bytes").Set(float64(res.DeviceMemAvailableBytes))
		c.device.WithLabelValues("cpu_percent").Set(res.DeviceCPUPercent)
		c.device.WithLabelValues("load1").Set(res.Load1)
	}
	var out []Record
	for k, w := range c.windows {
		if w.requests == 0 && w.shadowCompared == 0 && w.cacheHits == 0 {
			continue
		}
		r := Record{TelemetryRecord: wire.TelemetryRecord{
			Time: now.UTC(), ModelID: k.Model, Version: k.Version, Role: wire.Role(roleOf(k)),
			Requests: w.requests, Errors: w.errors,
			LatencyP50Ms: w.percentile(0.50), LatencyP95Ms: w.percentile(0.95), LatencyP99Ms: w.percentile(0.99),
			ShadowCompared: w.shadowCompared, ShadowAgreed: w.shadowAgree,
		},
			Instances: w.instances, PeriodSec: period, ShadowMaxAbsDiff: w.shadowMaxDiff,
			CacheHits: w.cacheHits, CacheMisses: w.cacheMisses, CPUSeconds: cpuDelta, RSSBytes: rss,
		}
		if period > 0 {
			r.ThroughputPerSec = float64(w.instances) / period
		}
		if len(w.errorsByCode) > 0 {
			r.ErrorsByCode = w.errorsByCode
		}
		if len(w.classes) > 0 {
			r.Classes = map[string]uint64{}
			for cl, n := range w.classes {
				r.Classes[strconv.Itoa(cl)] = n
			}
			r.Confidence = make([]uint64, 10) // the local record keeps ten buckets of 0.1
			for i, n := range w.confidence {
				r.Confidence[i*10/wire.ConfidenceBuckets] += n
			}
		}
		r.Monitoring = w.monitoring(res)
		r.FeatureMean, r.FeatureStd = w.features()
		if fn := c.queueLen[Key{Model: k.Model, Version: k.Version}]; fn != nil {
			r.QueueLength = fn()
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return a.ModelID+"@"+a.Version+"/"+string(a.Role) < b.ModelID+"@"+b.Version+"/"+string(b.Role)
	})
	c.windows = map[Key]*window{}
	return out
}

// Snapshot returns what Flush would return without starting a new period.
func (c *Collector) Snapshot() []Record {
	c.mu.Lock()
	saved, last, lastCPU, proc := map[Key]*window{}, c.lastFlush, c.lastCPU, *c.proc
	for k, w := range c.windows {
		cp := *w
		saved[k] = &cp
	}
	c.mu.Unlock()
	recs := c.Flush()
	c.mu.Lock()
	for k, w := range saved { // put back (merging nothing: Flush emptied it)
		if _, ok := c.windows[k]; !ok {
			c.windows[k] = w
		}
	}
	c.lastFlush, c.lastCPU = last, lastCPU
	*c.proc = proc // the next Flush measures CPU over the whole period
	c.mu.Unlock()
	return recs
}

// Sink stores telemetry records: the Ring. CountLost is told about every
// record that could not be stored, so that no loss is silent.
type Sink interface {
	Append(Record) (uint64, error)
	CountLost(n uint64)
}

// Run appends a record batch to sink every interval until ctx ends, then
// flushes once more. A record that cannot be stored (disk full, I/O error)
// is counted as lost in the sink's dropped count and in
// edge_agent_telemetry_lost_records_total.
func (c *Collector) Run(ctx context.Context, sink Sink, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c.FlushTo(sink, log)
			return
		case <-t.C:
			c.FlushTo(sink, log)
		}
	}
}

// FlushTo closes the current period and appends its records to sink,
// counting those it fails to store; it returns how many were lost.
func (c *Collector) FlushTo(sink Sink, log *slog.Logger) int {
	lost := 0
	for _, r := range c.Flush() {
		if _, err := sink.Append(r); err != nil {
			lost++
			c.lost.Inc()
			sink.CountLost(1)
			if log != nil {
				log.Error("telemetry: record lost (counted in dropped)", "model", r.ModelID, "version", r.Version, "err", err)
			}
		}
	}
	return lost
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// rssBytes reads the resident set size from /proc/self/statm (Linux); 0
// elsewhere.
func rssBytes() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}
