// Package serving runs predictions for the agent: it loads model versions
// from the model store into a backend, keeps a per-version pool of
// interpreters fed by a bounded queue with dynamic micro-batching, and adds
// the prediction cache, shadow comparisons and A/B splitting on top.
package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgefleet/edgefleet/agent/engine"
	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/tensor"
)

// ErrQueueFull is returned when a version's bounded queue cannot take the
// request; the caller should retry later (HTTP 429 with Retry-After).
var ErrQueueFull = errors.New("prediction queue is full")

// ErrStopped is returned for work submitted to a version being unloaded.
var ErrStopped = errors.New("model version unloaded")

// Instance is one instance's input bytes, one slice per model input: the
// input without its batch dimension when the model has one (see
// Loaded.HasBatchDim), else the whole input tensor.
type Instance [][]byte

// Result is one instance's outputs: per output, its description without
// the batch dimension and its bytes.
type Result []engine.Tensor

// Limits configures a loaded version's pool and batching.
type Limits struct {
	// Threads is the number of goroutines each interpreter may use.
	Threads int
	// Pool is the largest number of interpreters (concurrent invocations)
	// of one version; MinPool the smallest (default 1). The pool grows
	// while instances wait and no interpreter is free, within the
	// manager's memory budget, and an interpreter idle for ShrinkAfter
	// (default 30 s) beyond MinPool is released.
	Pool, MinPool int
	ShrinkAfter   time.Duration
	// MaxBatch is the largest micro-batch (1 disables batching).
	MaxBatch int
	// MaxDelay is how long a worker waits for more instances to fill a
	// batch once it holds one.
	MaxDelay time.Duration
	// Queue is the hard bound of instances waiting for an interpreter
	// (default 1024).
	Queue int
	// LatencyBudget, when positive, lowers the queue bound to what the
	// pool can run within it at the measured per-instance latency: a
	// request beyond gets ErrQueueFull (429, Retry-After) instead of
	// waiting longer (default 0: only Queue).
	LatencyBudget time.Duration
	// ProbeTimeout bounds each invocation made while loading (latency and
	// batching probes; default 10 s): a model that does not finish is
	// loaded without batching and its requests are cut by their deadline.
	ProbeTimeout time.Duration
}

// DefaultProbeTimeout is Limits.ProbeTimeout's default.
const DefaultProbeTimeout = 10 * time.Second

func (l Limits) withDefaults() Limits {
	l.Threads = max(1, l.Threads)
	l.Pool = max(1, l.Pool)
	l.MinPool = min(l.Pool, max(1, l.MinPool))
	l.MaxBatch = max(1, l.MaxBatch)
	if l.Queue <= 0 {
		l.Queue = 1024
	}
	if l.ShrinkAfter <= 0 {
		l.ShrinkAfter = 30 * time.Second
	}
	if l.ProbeTimeout <= 0 {
		l.ProbeTimeout = DefaultProbeTimeout
	}
	return l
}

// ErrBatchTooLarge is returned for a request with more instances than the
// queue can ever hold (HTTP 413): retrying cannot help, splitting can.
var ErrBatchTooLarge = errors.New("batch larger than the queue")

// OverloadError is ErrQueueFull with the queue's state and the estimated
// wait until it has room.
type OverloadError struct {
	Waiting, Bound int
	Wait           time.Duration
}

// Error implements error.
func (e *OverloadError) Error() string {
	return fmt.Sprintf("%s: %d instances waiting, bound %d (about %s of work)", ErrQueueFull, e.Waiting, e.Bound, e.Wait.Round(time.Millisecond))
}

// Unwrap makes errors.Is(err, ErrQueueFull) true.
func (e *OverloadError) Unwrap() error { return ErrQueueFull }

// RetryAfter is how long a client should wait before retrying.
func (e *OverloadError) RetryAfter() time.Duration { return e.Wait }

// memBudget bounds the memory of all interpreters of a manager.
type memBudget struct {
	limit int64 // 0: unlimited
	used  atomic.Int64
}

func (b *memBudget) take(n int64) bool {
	if b == nil {
		return true
	}
	if v := b.used.Add(n); b.limit > 0 && v > b.limit {
		b.used.Add(-n)
		return false
	}
	return true
}

func (b *memBudget) give(n int64) {
	if b != nil {
		b.used.Add(-n)
	}
}

type job struct {
	ctx  context.Context
	in   Instance
	done chan jobResult
}

type jobResult struct {
	out Result
	err error
}

// Loaded is one model version loaded in a backend with its interpreter pool.
type Loaded struct {
	ID, Version, SHA256 string
	// Batchable reports that the batch dimension can be resized and a
	// batched run gives the same rows as single runs (probed at load).
	Batchable bool

	model    engine.Model
	inputs   []tensor.Info
	outputs  []tensor.Info
	hasBatch bool
	limits   Limits
	log      *slog.Logger

	queue   chan *job
	stop    chan struct{}
	wg      sync.WaitGroup
	pending atomic.Int64
	// inflight counts instances submitted and not yet answered.
	inflight atomic.Int64
	// rowNanos is an EWMA of the invocation time per row.
	rowNanos atomic.Int64
	closed   atomic.Bool
	// Batches counts invocations and BatchedRows the rows they ran.
	batches, batchedRows atomic.Int64

	// workers is the number of interpreters running, idle those waiting
	// for work; growing is set while one is being added.
	workers, idle atomic.Int32
	growing       atomic.Bool
	startMu       sync.Mutex
	sessionBytes  int64
	mem           *memBudget
	// lastUsed is the UnixNano of the last request (idle unloading).
	lastUsed atomic.Int64
	// closing is canceled by Close: running invocations end.
	closing context.Context
	abort   context.CancelFunc
}

// hasBatchDim reports whether every input and output has a leading
// dimension of 1 (rank >= 2), which the agent treats as the batch.
func hasBatchDim(in, out []tensor.Info) bool {
	for _, set := range [][]tensor.Info{in, out} {
		for _, t := range set {
			if len(t.Shape) < 2 || t.Shape[0] != 1 {
				return false
			}
		}
	}
	return len(in) > 0
}

// load prepares a version: it creates limits.MinPool sessions, measures
// the latency of one invocation, probes batching and starts the workers.
// Probes are bounded by limits.ProbeTimeout and by ctx.
func load(ctx context.Context, b engine.Backend, id, version, sha string, data []byte, limits Limits, log *slog.Logger) (*Loaded, error) {
	return loadWithBudget(ctx, b, id, version, sha, data, limits, nil, log)
}

func loadWithBudget(ctx context.Context, b engine.Backend, id, version, sha string, data []byte, limits Limits, mem *memBudget, log *slog.Logger) (*Loaded, error) {
	limits = limits.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := b.Load(ctx, data)
	if err != nil {
		return nil, fmt.Errorf("load %s@%s: %w", id, version, err)
	}
	l := &Loaded{ID: id, Version: version, SHA256: sha, model: m, inputs: m.Inputs(), outputs: m.Outputs(), limits: limits, log: log,
		queue: make(chan *job, limits.Queue), stop: make(chan struct{}), mem: mem}
	l.hasBatch = hasBatchDim(l.inputs, l.outputs)
	l.lastUsed.Store(time.Now().UnixNano())
	l.closing, l.abort = context.WithCancel(context.Background())
	var sessions []engine.Session
	fail := func(err error) (*Loaded, error) {
		for _, s := range sessions {
			s.Close()
		}
		mem.give(l.sessionBytes * int64(len(sessions)))
		m.Close()
		return nil, fmt.Errorf("load %s@%s: %w", id, version, err)
	}
	s, err := m.NewSession(ctx, limits.Threads)
	if err != nil {
		return fail(err)
	}
	sessions = append(sessions, s)
	pctx, cancel := context.WithTimeout(ctx, limits.ProbeTimeout)
	defer cancel()
	if d, err := l.probeLatency(pctx, s); err != nil {
		log.Warn("probe invocation failed: the model is served, its requests are bounded by their deadline", "model", id, "version", version, "timeout", limits.ProbeTimeout, "err", err)
	} else {
		l.rowNanos.Store(max(1, int64(d)))
		if l.hasBatch && limits.MaxBatch > 1 {
			l.Batchable = l.probeBatch(pctx, s)
		}
	}
	l.sessionBytes = sessionBytes(s, l.inputs, l.outputs)
	if !mem.take(l.sessionBytes) {
		return fail(fmt.Errorf("interpreter memory budget exhausted (%d of %d bytes used, one interpreter needs %d)", mem.used.Load(), mem.limit, l.sessionBytes))
	}
	for len(sessions) < limits.MinPool && mem.take(l.sessionBytes) {
		s, err := m.NewSession(ctx, limits.Threads)
		if err != nil {
			mem.give(l.sessionBytes)
			return fail(err)
		}
		sessions = append(sessions, s)
	}
	for _, s := range sessions {
		l.startWorker(s)
	}
	return l, nil
}

// sessionBytes is the memory of one interpreter: what it reports, at least
// its inputs and outputs.
func sessionBytes(s engine.Session, in, out []tensor.Info) int64 {
	var n int64
	for _, set := range [][]tensor.Info{in, out} {
		for _, t := range set {
			n += int64(tensor.NumElements(t.Shape) * max(1, t.Type.Size()))
		}
	}
	if r, ok := s.(engine.MemoryReporter); ok {
		n = max(n, r.MemoryBytes())
	}
	return n
}

// zeroRow is one instance of zeros (or, with rng, random values in [0,1)).
func (l *Loaded) row(rng *rand.Rand) (Instance, error) {
	var in Instance
	for _, info := range l.InstanceInputs() {
		t := &tensor.Tensor{Type: info.Type, Shape: info.Shape, Quant: info.Quant}
		t.Data = make([]byte, t.ByteSize())
		if rng != nil && t.Type.Size() > 0 {
			vals := make([]float64, t.NumElements())
			for i := range vals {
				vals[i] = rng.Float64()
			}
			if err := t.SetReal(vals); err != nil {
				return nil, err
			}
		}
		in = append(in, t.Data)
	}
	return in, nil
}

// probeLatency times one invocation of a zero instance (its batch size 1).
func (l *Loaded) probeLatency(ctx context.Context, s engine.Session) (time.Duration, error) {
	in, err := l.row(nil)
	if err != nil {
		return 0, err
	}
	batch := 0
	if l.hasBatch {
		batch = 1
	}
	t0 := time.Now()
	if _, err := s.Run(ctx, batch, in); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// probeBatch runs two different rows as a batch of 2 and one by one; the
// version is batchable when that works and the rows agree.
func (l *Loaded) probeBatch(ctx context.Context, s engine.Session) bool {
	rng := rand.New(rand.NewPCG(7, 9))
	rows := make([]Instance, 2)
	for r := range rows {
		in, err := l.row(rng)
		if err != nil {
			return false
		}
		rows[r] = in
	}
	defer s.Run(ctx, 1, rows[0]) // leave the session at batch 1
	var single []Result
	for _, r := range rows {
		out, err := s.Run(ctx, 1, r)
		if err != nil {
			return false
		}
		single = append(single, splitRows(out, 1)[0])
	}
	out, err := s.Run(ctx, 2, concat(rows))
	if err != nil {
		return false
	}
	for _, o := range out {
		if len(o.Info.Shape) == 0 || o.Info.Shape[0] != 2 {
			return false
		}
	}
	batched := splitRows(out, 2)
	for r := range rows {
		for i := range batched[r] {
			if !closeBytes(batched[r][i], single[r][i]) {
				return false
			}
		}
	}
	return true
}

func closeBytes(a, b engine.Tensor) bool {
	if len(a.Data) != len(b.Data) {
		return false
	}
	if a.Info.Type != tensor.Float32 {
		return string(a.Data) == string(b.Data)
	}
	x, y := tensor.View[float32](a.Data), tensor.View[float32](b.Data)
	for i := range x {
		if math.Abs(float64(x[i]-y[i])) > 1e-4*(1+math.Abs(float64(y[i]))) {
			return false
		}
	}
	return true
}

func concat(rows []Instance) [][]byte {
	out := make([][]byte, len(rows[0]))
	for i := range out {
		for _, r := range rows {
			out[i] = append(out[i], r[i]...)
		}
	}
	return out
}

// splitRows splits batched outputs into n per-row results (shape without
// the batch dimension).
func splitRows(out []engine.Tensor, n int) []Result {
	res := make([]Result, n)
	for _, o := range out {
		rowLen := len(o.Data) / n
		shape := o.Info.Shape
		if len(shape) > 0 {
			shape = shape[1:]
		}
		for r := 0; r < n; r++ {
			info := o.Info
			info.Shape = append([]int(nil), shape...)
			res[r] = append(res[r], engine.Tensor{Info: info, Data: o.Data[r*rowLen : (r+1)*rowLen]})
		}
	}
	return res
}

// startWorker runs a worker on session s.
func (l *Loaded) startWorker(s engine.Session) {
	l.workers.Add(1)
	l.wg.Add(1)
	go l.worker(s)
}

// grow adds an interpreter when instances wait and none is idle, the pool
// is below its maximum and the memory budget allows; one at a time.
func (l *Loaded) grow() {
	if l.closed.Load() || int(l.workers.Load()) >= l.limits.Pool || int64(l.idle.Load()) >= l.pending.Load() {
		return
	}
	if !l.growing.CompareAndSwap(false, true) {
		return
	}
	if !l.mem.take(l.sessionBytes) {
		l.growing.Store(false)
		return
	}
	go func() {
		s, err := l.model.NewSession(context.Background(), l.limits.Threads)
		if err != nil {
			l.mem.give(l.sessionBytes)
			l.growing.Store(false)
			l.log.Warn("grow interpreter pool", "model", l.ID, "version", l.Version, "err", err)
			return
		}
		l.startMu.Lock() // not while Close waits for the workers
		if l.closed.Load() {
			l.startMu.Unlock()
			s.Close()
			l.mem.give(l.sessionBytes)
			l.growing.Store(false)
			return
		}
		l.startWorker(s)
		l.startMu.Unlock()
		l.growing.Store(false)
		l.grow() // more may have queued meanwhile
	}()
}

// shrink reports whether an idle worker may exit (the pool stays at least
// MinPool); it counts the exit.
func (l *Loaded) shrink() bool {
	for {
		w := l.workers.Load()
		if int(w) <= l.limits.MinPool {
			return false
		}
		if l.workers.CompareAndSwap(w, w-1) {
			return true
		}
	}
}

func (l *Loaded) worker(s engine.Session) {
	defer l.wg.Done()
	defer l.mem.give(l.sessionBytes)
	defer s.Close()
	maxBatch := 1
	if l.Batchable {
		maxBatch = l.limits.MaxBatch
	}
	batch := make([]*job, 0, maxBatch)
	idle := time.NewTimer(l.limits.ShrinkAfter)
	defer idle.Stop()
	// freed marks the worker idle as soon as its results are computed,
	// before its callers are answered: a caller that sends again at once
	// must not see a busy pool and grow it.
	marked := false
	freed := func() { l.idle.Add(1); marked = true }
	for {
		batch = batch[:0]
		if !marked {
			l.idle.Add(1)
		}
		marked = false
		idle.Reset(l.limits.ShrinkAfter)
		select {
		case <-l.stop:
			l.idle.Add(-1)
			l.workers.Add(-1)
			l.drain(nil)
			return
		case <-idle.C:
			l.idle.Add(-1)
			if l.shrink() {
				return
			}
			continue
		case j := <-l.queue:
			l.idle.Add(-1)
			batch = append(batch, j)
		}
		if maxBatch > 1 {
			batch = l.fill(batch, maxBatch)
		}
		l.pending.Add(-int64(len(batch)))
		live := batch[:0]
		for _, j := range batch {
			if err := j.ctx.Err(); err != nil {
				j.done <- jobResult{err: err}
				continue
			}
			live = append(live, j)
		}
		if len(live) > 0 {
			l.run(s, live, freed)
		}
	}
}

// fill adds queued jobs to batch until it holds max or MaxDelay passes.
func (l *Loaded) fill(batch []*job, maxN int) []*job {
	for len(batch) < maxN { // take what is already queued
		select {
		case j := <-l.queue:
			batch = append(batch, j)
			continue
		default:
		}
		break
	}
	// Wait for more only when other instances are in flight (being run by
	// other workers): their callers are likely to send again soon. A lone
	// caller must not pay MaxDelay for a batch that cannot grow.
	if len(batch) >= maxN || l.limits.MaxDelay <= 0 || l.inflight.Load() <= int64(len(batch)) {
		return batch
	}
	// Waiting longer than a couple of row invocations cannot pay off: cap
	// the wait by the measured per-row cost (an EWMA), so a model whose
	// Invoke takes microseconds is not slowed by a millisecond delay.
	wait := l.limits.MaxDelay
	if row := time.Duration(l.rowNanos.Load()); row > 0 {
		wait = min(wait, 2*row)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for len(batch) < maxN {
		select {
		case j := <-l.queue:
			batch = append(batch, j)
		case <-t.C:
			return batch
		case <-l.stop:
			return batch
		}
	}
	return batch
}

func (l *Loaded) run(s engine.Session, jobs []*job, freed func()) {
	ctx := jobs[0].ctx
	if len(jobs) > 1 {
		// One canceled caller must not fail the others: the batch is
		// canceled when every caller is.
		var stop func()
		ctx, stop = allCanceled(jobs)
		defer stop()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(l.closing, cancel)()
	batch := 0
	if l.hasBatch {
		batch = len(jobs)
	}
	rows := make([]Instance, len(jobs))
	for i, j := range jobs {
		rows[i] = j.in
	}
	in := rows[0]
	if len(rows) > 1 {
		in = concat(rows)
	}
	t0 := time.Now()
	out, err := s.Run(ctx, batch, in)
	if err == nil {
		per := int64(time.Since(t0)) / int64(len(jobs))
		old := l.rowNanos.Load()
		if old == 0 {
			l.rowNanos.Store(per)
		} else {
			l.rowNanos.Store(old + (per-old)/8)
		}
	}
	l.batches.Add(1)
	l.batchedRows.Add(int64(len(jobs)))
	freed()
	if err != nil {
		for _, j := range jobs {
			j.done <- jobResult{err: err}
		}
		return
	}
	var res []Result
	if l.hasBatch {
		res = splitRows(out, len(jobs))
	} else {
		res = []Result{Result(out)}
	}
	for i, j := range jobs {
		j.done <- jobResult{out: res[i]}
	}
}

func (l *Loaded) drain(err error) {
	for {
		select {
		case j := <-l.queue:
			l.pending.Add(-1)
			j.done <- jobResult{err: ErrStopped}
		default:
			return
		}
	}
}

// allCanceled returns a context canceled once every job's context is.
func allCanceled(jobs []*job) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(jobs[0].ctx))
	var left atomic.Int32
	left.Store(int32(len(jobs)))
	stops := make([]func() bool, len(jobs))
	for i, j := range jobs {
		stops[i] = context.AfterFunc(j.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, s := range stops {
			s()
		}
		cancel()
	}
}

// QueueBound is the number of instances the queue takes now: Limits.Queue,
// lowered with a LatencyBudget to what the full pool runs within it at the
// measured per-instance latency (at least Pool).
func (l *Loaded) QueueBound() int {
	q := l.limits.Queue
	row := l.rowNanos.Load()
	if l.limits.LatencyBudget <= 0 || row <= 0 {
		return q
	}
	n := int64(l.limits.LatencyBudget) * int64(l.limits.Pool) / row
	return int(max(int64(min(l.limits.Pool, q)), min(int64(q), n)))
}

// wait estimates how long the queued instances take to run.
func (l *Loaded) wait(queued int64) time.Duration {
	return time.Duration(queued * l.rowNanos.Load() / int64(max(1, l.workers.Load())))
}

// Run predicts instances (in order) through the pool. It fails without
// running anything with ErrBatchTooLarge when they are more than the queue
// bound, and with an *OverloadError (ErrQueueFull) when the queue cannot
// take them now. It returns when ctx ends (the instances not yet run are
// skipped, a running invocation is canceled).
func (l *Loaded) Run(ctx context.Context, instances []Instance) ([]Result, error) {
	if l.closed.Load() {
		return nil, ErrStopped
	}
	l.lastUsed.Store(time.Now().UnixNano())
	for i, in := range instances {
		if err := l.checkInstance(in); err != nil {
			return nil, fmt.Errorf("instance %d: %w", i, err)
		}
	}
	n := int64(len(instances))
	bound := int64(l.QueueBound())
	if n > bound {
		return nil, fmt.Errorf("%w: %d instances, the queue of %s@%s takes at most %d (per-instance latency %s, latency budget %s): send at most %d per request",
			ErrBatchTooLarge, n, l.ID, l.Version, bound, time.Duration(l.rowNanos.Load()).Round(time.Microsecond), l.limits.LatencyBudget, bound)
	}
	if p := l.pending.Add(n); p > bound {
		l.pending.Add(-n)
		return nil, &OverloadError{Waiting: int(p - n), Bound: int(bound), Wait: l.wait(p)}
	}
	l.inflight.Add(n)
	defer l.inflight.Add(-n)
	jobs := make([]*job, len(instances))
	for i, in := range instances {
		jobs[i] = &job{ctx: ctx, in: in, done: make(chan jobResult, 1)}
		l.queue <- jobs[i] // capacity == Queue >= pending, never blocks
	}
	l.grow()
	out := make([]Result, len(instances))
	var firstErr error
	for i, j := range jobs {
		var r jobResult
		select {
		case r = <-j.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("instance %d: %w", i, ctx.Err())
		case <-l.stop:
			select {
			case r = <-j.done:
			case <-time.After(time.Second):
				r = jobResult{err: ErrStopped}
			}
		}
		if r.err != nil && firstErr == nil {
			firstErr = fmt.Errorf("instance %d: %w", i, r.err)
		}
		out[i] = r.out
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// checkInstance verifies the instance's byte sizes.
func (l *Loaded) checkInstance(in Instance) error {
	if len(in) != len(l.inputs) {
		return fmt.Errorf("%w: %d inputs given, the model has %d", engine.ErrBadInput, len(in), len(l.inputs))
	}
	for i, info := range l.InstanceInputs() {
		want := tensor.NumElements(info.Shape) * info.Type.Size()
		if len(in[i]) != want {
			return fmt.Errorf("%w: input %d (%q): expected %s%s (%d bytes), given %d bytes", engine.ErrBadInput, i, info.Name, info.Type, tensor.ShapeString(info.Shape), want, len(in[i]))
		}
	}
	return nil
}

// InstanceInputs describes the inputs of one instance: without the batch
// dimension when the model has one.
func (l *Loaded) InstanceInputs() []tensor.Info { return dropBatch(l.inputs, l.hasBatch) }

// InstanceOutputs describes the outputs of one instance.
func (l *Loaded) InstanceOutputs() []tensor.Info { return dropBatch(l.outputs, l.hasBatch) }

func dropBatch(in []tensor.Info, drop bool) []tensor.Info {
	out := make([]tensor.Info, len(in))
	for i, t := range in {
		out[i] = t
		out[i].Shape = append([]int(nil), t.Shape...)
		if drop {
			out[i].Shape = out[i].Shape[1:]
		}
	}
	return out
}

// Inputs describes the model's inputs as the file declares them.
func (l *Loaded) Inputs() []tensor.Info { return l.inputs }

// Outputs describes the model's outputs as the file declares them.
func (l *Loaded) Outputs() []tensor.Info { return l.outputs }

// HasBatchDim reports whether instances exclude a leading batch dimension.
func (l *Loaded) HasBatchDim() bool { return l.hasBatch }

// Metadata returns the model's TFLite metadata, or nil.
func (l *Loaded) Metadata() *inference.Metadata { return l.model.Metadata() }

// Interpreters returns the number of interpreters running and the memory
// they hold.
func (l *Loaded) Interpreters() (int, int64) {
	w := int64(l.workers.Load())
	return int(w), w * l.sessionBytes
}

// LastUsed is when the version last served a request (or was loaded).
func (l *Loaded) LastUsed() time.Time { return time.Unix(0, l.lastUsed.Load()) }

// InFlight returns the number of instances submitted and not yet answered.
func (l *Loaded) InFlight() int { return int(l.inflight.Load()) }

// QueueLen returns the number of instances waiting.
func (l *Loaded) QueueLen() int { return int(l.pending.Load()) }

// Limits returns the pool and batching limits in force.
func (l *Loaded) Limits() Limits { return l.limits }

// BatchStats returns the number of invocations and the rows they ran.
func (l *Loaded) BatchStats() (invocations, rows int64) {
	return l.batches.Load(), l.batchedRows.Load()
}

// Close stops the workers (queued work fails with ErrStopped) and closes
// the model.
func (l *Loaded) Close() error {
	l.startMu.Lock()
	if l.closed.Swap(true) {
		l.startMu.Unlock()
		return nil
	}
	l.abort()
	close(l.stop)
	l.startMu.Unlock()
	l.wg.Wait()
	l.drain(ErrStopped)
	return l.model.Close()
}
