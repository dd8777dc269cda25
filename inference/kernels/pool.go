package kernels

import (
	"runtime"
	"sync/atomic"
	"time"
)

// MinParallelMACs is the work (multiply-accumulates of the SIMD GEMM, or
// the same time of other kernels, see TapCost and ElementCost) below which
// a node runs on the calling goroutine alone: handing chunks to a worker
// costs a few microseconds when it is parked, about one when it is
// polling, a good part of what a node of this size takes on one core.
// Chosen with BenchmarkParallel and BenchmarkModelThreads (package
// inference) on the small conformance models (person_detect,
// mobilenet_v1_0.25_128_quant, micro_speech), which must not get slower
// with two threads.
const MinParallelMACs = 1_000_000

// MinParallelModelWork is the default Context.ModelSplitThreshold: the
// work per Invoke (same units as MinParallelMACs, summed over the nodes
// that can be split) below which an interpreter with several threads
// splits no node. Measured with BenchmarkModelThreads (package inference)
// on the shared 2-core amd64 machine: the small conformance models
// (person_detect 12.8M, mobilenet_v1_0.25_128_quant 23.7M) were 1-10 %
// slower on two threads even with both cores free, MobileNet v2 (457M)
// 1.3x faster; the bound sits between them (no conformance model lies
// in between to place it closer).
const MinParallelModelWork = 50_000_000

// Costs of one unit of other kernels' work in GEMM multiply-accumulates
// (measured single-threaded with BenchmarkNodeProfile on MobileNet v2,
// amd64 AVX-512: about 0.01 ns per GEMM MAC), so that Parallel compares
// like with like: a depthwise layer does a tenth of a pointwise layer's
// multiply-accumulates in the same time.
const (
	// TapCost is one multiply-accumulate of a depthwise convolution
	// (about 0.08 ns).
	TapCost = 8
	// ElementCost is one element of an elementwise op, a pooling window
	// tap or a quantization (table look-ups, requantization: about
	// 0.3-0.5 ns).
	ElementCost = 40
)

// An idle worker polls for the next job, yielding to other goroutines,
// for up to activeSpin while the interpreter is inside an Invoke
// (Pool.SetActive) and spinTime otherwise, then parks on a channel; the
// caller waiting for the workers' last chunks polls for up to waitTime,
// then parks. Polling saves the wake-up (several microseconds) when the
// next split node follows closely, but on a machine with more runnable
// threads than cores a polling thread takes CPU time from the thread
// doing the work (measured on the shared 2-core box: with millisecond
// polls two threads were 2-3x slower than one on MobileNet v2 under load,
// with these bounds about as fast or faster), so the bounds are short.
// Parking makes the Go runtime allocate parking records (sudogs) until its
// per-P caches hold enough of them; after that warm-up (about a hundred,
// again after a GC) Invoke allocates nothing.
const (
	spinTime   = 20 * time.Microsecond
	activeSpin = 50 * time.Microsecond
	waitTime   = 50 * time.Microsecond
)

// ChunkCaller calls a kernel's chunk function: fn and data are the values
// handed to Pool.Run. It exists so that kernels can pass typed functions
// without a closure (a zero-size generic type implements it).
type ChunkCaller interface {
	CallChunk(fn, data any, worker, lo, hi int)
}

// chunkCall is the ChunkCaller of Parallel.
type chunkCall[D any] struct{}

// CallChunk calls fn(data, worker, lo, hi).
func (chunkCall[D]) CallChunk(fn, data any, worker, lo, hi int) {
	fn.(func(*D, int, int, int))(data.(*D), worker, lo, hi)
}

// Parallel runs fn(d, worker, lo, hi) over [0, total), split into chunks
// of at least minChunk, on up to threads of ctx's workers. work is the
// node's multiply-accumulate count: below ctx.SplitThreshold (or with one
// thread) everything runs on the caller as fn(d, 0, 0, total). fn must be
// a plain function (not a closure) and d the node's prepared state, so
// that nothing allocates; worker indexes are in [0, threads).
func Parallel[D any](ctx *Context, threads int, work int64, total, minChunk int, d *D, fn func(d *D, worker, lo, hi int)) {
	chunks := 1
	minChunk = max(minChunk, 1)
	if ctx != nil {
		if r := ctx.region; r != nil {
			r.capture(fn, d, chunkCall[D]{}, work, threads, total, minChunk)
			return
		}
		ctx.work += work
	}
	if threads > 1 && ctx != nil && !ctx.solo && work >= ctx.SplitThreshold && total >= 2*minChunk {
		chunks = min(threads, total/minChunk)
	}
	if chunks <= 1 || ctx == nil || ctx.pool == nil {
		fn(d, 0, 0, total)
		return
	}
	ctx.pool.Run(chunks, total, minChunk, fn, d, chunkCall[D]{})
}

// Pool is a set of persistent worker goroutines that run the chunks of
// one node at a time for an interpreter (intra-op parallelism). Run does
// not allocate: workers poll briefly, then park on a channel between
// jobs. A Pool is used by one goroutine at a time; Close stops it.
//
// A job's range is cut into chunks, and the chunks into one contiguous
// part per worker, the same fraction of every job (partChunks): worker w
// claims its own part and runs it from the front, then takes chunks from
// the back of the others' parts; a part whose worker has not joined yet
// is claimed whole by a thread that is done and run from the front. So
// with every worker on time each one handles the same share of every
// node (the rows it wrote in one node are the rows it reads in the next:
// they stay in its core's cache), and a worker that is late (parked, or
// descheduled by a busy machine) costs nothing: the others run its part.
// The caller never waits for a worker that has not started: workers join
// a job when they see it (inside counts them) and Run waits only for
// chunks to finish, plus, at the start of the next job, for workers still
// leaving the previous one.
type Pool struct {
	helpers []*poolWorker
	// The job, written by Run while seq is odd (no worker inside).
	fn, data any
	call     ChunkCaller
	region   *Region // a region's job (fn nil), see runRegion
	total    int
	unit     int // minChunk
	units    int // ceil(total / unit)
	threads  int
	nChunks  int64
	parts    []part
	_        [64]byte
	seq      atomic.Uint64 // even: job published; odd: Run is writing one
	closed   atomic.Bool   // Close may run on a cleanup goroutine
	active   atomic.Bool   // inside an Invoke: workers poll longer
	_        [48]byte
	inside   atomic.Int32 // workers that joined the current job
	_        [60]byte
	finished atomic.Int64 // chunks done
	_        [56]byte
	waiting  atomic.Bool // the caller is parked on done
	done     chan struct{}
	timer    *time.Timer // bounds each park of the caller (see park)
}

// part is one worker's share of a job's chunks, [lo, hi) packed in one
// word (lo in the high half) so that the owner (from the front) and the
// others (from the back) take chunks with one compare-and-swap.
type part struct {
	v atomic.Uint64
	// claimed is the sequence number of the last job whose part a
	// thread took as its own (see Pool.chunks).
	claimed atomic.Uint64
	// ran counts the chunks the part's worker ran (any part's), for
	// profiles (Context.ChunksRun).
	ran atomic.Int64
	_   [40]byte
}

// claim makes the caller the owner of the part in job seq, unless another
// thread already is.
func (q *part) claim(seq uint64) bool {
	v := q.claimed.Load()
	return v != seq && q.claimed.CompareAndSwap(v, seq)
}

func (q *part) set(lo, hi int64) { q.v.Store(uint64(lo)<<32 | uint64(hi)) }

// front takes the first chunk left, if any.
func (q *part) front() (int64, bool) {
	for {
		v := q.v.Load()
		lo, hi := int64(v>>32), int64(v&0xffffffff)
		if lo >= hi {
			return 0, false
		}
		if q.v.CompareAndSwap(v, uint64(lo+1)<<32|uint64(hi)) {
			return lo, true
		}
	}
}

// back takes the last chunk left, if any.
func (q *part) back() (int64, bool) {
	for {
		v := q.v.Load()
		lo, hi := int64(v>>32), int64(v&0xffffffff)
		if lo >= hi {
			return 0, false
		}
		if q.v.CompareAndSwap(v, uint64(lo)<<32|uint64(hi-1)) {
			return hi - 1, true
		}
	}
}

type poolWorker struct {
	sleeping atomic.Bool
	wake     chan struct{}
	timer    *time.Timer // bounds each park (see poolWorker.park)
	_        [48]byte
}

// NewPool starts threads-1 worker goroutines (the caller of Run is the
// first worker). It returns nil for threads <= 1.
func NewPool(threads int) *Pool {
	p := newPool(threads)
	if p == nil {
		return nil
	}
	for i, h := range p.helpers {
		go p.work(h, i+1)
	}
	return p
}

// newPool returns a pool whose workers are not started yet (tests start
// them late, or never).
func newPool(threads int) *Pool {
	if threads <= 1 {
		return nil
	}
	p := &Pool{done: make(chan struct{}, 1), timer: stoppedTimer(), parts: make([]part, threads)}
	for range threads - 1 {
		p.helpers = append(p.helpers, &poolWorker{wake: make(chan struct{}, 1), timer: stoppedTimer()})
	}
	return p
}

// Threads returns the number of goroutines a job can use (helpers and the
// caller).
func (p *Pool) Threads() int {
	if p == nil {
		return 1
	}
	return len(p.helpers) + 1
}

// SetActive tells the workers whether an Invoke is running: while it is,
// idle workers poll for the next node longer before they park.
func (p *Pool) SetActive(on bool) {
	if p != nil {
		p.active.Store(on)
	}
}

// Close stops the workers. It is idempotent; after it, Run calls every
// chunk on the caller.
func (p *Pool) Close() {
	if p == nil || !p.closed.CompareAndSwap(false, true) {
		return
	}
	for _, h := range p.helpers {
		h.wakeUp()
	}
}

// ChunksRun returns how many chunks worker w (0 is the caller of Run)
// has run in split jobs so far, for profiles.
func (p *Pool) ChunksRun(w int) int64 {
	if p == nil || w < 0 || w >= len(p.parts) {
		return 0
	}
	return p.parts[w].ran.Load()
}

// wakeUp wakes the worker if it is parked (or about to park).
func (h *poolWorker) wakeUp() {
	if h.sleeping.Load() && h.sleeping.CompareAndSwap(true, false) {
		h.wake <- struct{}{}
	}
}

// chunksPerThread is how many chunks each thread's part of a job has (at
// most): enough for the others to even out a thread that is late or slowed
// down, few enough that each chunk is a long run of a kernel's inner loop.
// 8 rather than 4: the thread that finishes first waits for at most one
// chunk of the other; MobileNet v2 on two threads went 1.25-1.32x ->
// 1.33-1.36x in two A/B sessions (BenchmarkModelThreads, rounds with
// ceiling >= 1.88, alternating the two builds), with no measurable
// difference in a third.
const chunksPerThread = 8

// Run calls call.CallChunk(fn, data, worker, lo, hi) over [0, total) in
// chunks of at least minChunk (whole multiples of it but the last), on up
// to threads goroutines including the caller (worker 0), and returns when
// all chunks are done.
func (p *Pool) Run(threads, total, minChunk int, fn, data any, call ChunkCaller) {
	threads = min(threads, len(p.helpers)+1)
	if threads <= 1 || p.closed.Load() {
		call.CallChunk(fn, data, 0, 0, total)
		return
	}
	// Units of minChunk (kernels tile by it: no chunk but the last ends
	// in a partial tile), dealt out as evenly as whole units allow.
	minChunk = max(minChunk, 1)
	units := (total + minChunk - 1) / minChunk
	nChunks := min(chunksPerThread*threads, units)
	threads = min(threads, nChunks)
	if threads <= 1 {
		call.CallChunk(fn, data, 0, 0, total)
		return
	}
	seq := p.openJob()
	p.fn, p.data, p.call, p.region = fn, data, call, nil
	p.total, p.unit, p.units, p.threads, p.nChunks = total, minChunk, units, threads, int64(nChunks)
	for w := range threads {
		p.parts[w].set(partChunks(w, threads, nChunks))
	}
	p.parts[0].claimed.Store(seq + 1)
	p.startJob(seq, threads)
	p.chunks(0, seq+1)
	p.wait()
}

// openJob closes the previous job to late workers and waits for the ones
// inside to leave (they found its work all taken); the caller then writes
// the new job and starts it with startJob(seq) (seq is odd meanwhile).
func (p *Pool) openJob() (seq uint64) {
	seq = p.seq.Load() + 1
	p.seq.Store(seq)
	var start time.Time
	for i := 0; p.inside.Load() != 0; i++ {
		spinning(&start, i, time.Hour)
	}
	return seq
}

// startJob publishes the job written since openJob and wakes the workers
// of its threads.
func (p *Pool) startJob(seq uint64, threads int) {
	p.finished.Store(0)
	p.seq.Store(seq + 1)
	for _, h := range p.helpers[:threads-1] {
		h.wakeUp()
	}
}

// wait waits for the chunks other workers are running: it polls, then
// parks.
func (p *Pool) wait() {
	var start time.Time
	for i := 0; p.finished.Load() != p.nChunks; i++ {
		if spinning(&start, i, waitTime) {
			continue
		}
		p.waiting.Store(true)
		if p.finished.Load() == p.nChunks {
			if !p.waiting.CompareAndSwap(true, false) {
				<-p.done // the last worker is sending
			}
			break
		}
		if p.park() {
			break
		}
	}
}

// partChunks returns thread w's part of a job of n chunks: [lo, hi), the
// same fraction of every job (w/threads to (w+1)/threads).
func partChunks(w, threads, n int) (lo, hi int64) {
	return int64(w * n / threads), int64((w + 1) * n / threads)
}

// chunkBounds returns the range [lo, hi) of chunk i of n over total
// indexes in units of unit (units of them, the last one partial): whole
// units, as evenly spread as they allow, so a thread's chunks cover the
// same fraction of every node's range within a unit.
func chunkBounds(i, n, units, unit, total int) (lo, hi int) {
	return i * units / n * unit, min(total, (i+1)*units/n*unit)
}

// spinning is called on each iteration i of a polling loop: it yields to
// other goroutines now and then and reports whether the loop should keep
// polling (false after limit: park).
func spinning(start *time.Time, i int, limit time.Duration) bool {
	if i < spinFirst || i%32 != 31 {
		return true
	}
	runtime.Gosched()
	if start.IsZero() {
		*start = time.Now()
		return true
	}
	return time.Since(*start) < limit
}

// spinFirst is the number of polls (a few hundred nanoseconds) made
// before the first yield: a job that follows at once is taken without a
// trip through the scheduler.
const spinFirst = 256

// chunks runs the worker's own part of job seq (unless another thread
// claimed it first, see below), then helps with the others: a part no
// thread claimed yet (its worker has not joined) it claims and runs from
// the front, so the part's rows stay together on one core; of a part
// being run it takes chunks from the end. (Leaving a part's last one or
// two chunks to its owner, or all of them, for strict affinity, made
// MobileNet v2 on two threads 1.38-1.41x instead of 1.42-1.47x: the
// imbalance costs more than the lines that move.)
func (p *Pool) chunks(worker int, seq uint64) {
	n := int64(0)
	if own := &p.parts[worker]; worker == 0 || own.claim(seq) {
		n += p.front(worker, own)
	}
	for k := range p.threads {
		q := &p.parts[(worker+k)%p.threads]
		if q.claim(seq) {
			n += p.front(worker, q)
		}
		for {
			i, ok := q.back()
			if !ok {
				break
			}
			p.runChunk(worker, i)
			n++
		}
	}
	p.report(worker, n)
}

// front runs a part's chunks from the front until none are left and
// returns how many it ran.
func (p *Pool) front(worker int, q *part) int64 {
	n := int64(0)
	for {
		i, ok := q.front()
		if !ok {
			return n
		}
		p.runChunk(worker, i)
		n++
	}
}

// runChunk runs chunk i.
func (p *Pool) runChunk(worker int, i int64) {
	lo, hi := chunkBounds(int(i), int(p.nChunks), p.units, p.unit, p.total)
	p.call.CallChunk(p.fn, p.data, worker, lo, hi)
}

// report counts the n chunks a thread ran in the job, once when it has
// found none left (not per chunk: the shared counter's cache line moves
// between cores on every update, a few hundred nanoseconds each); the
// worker that completes the count wakes the caller if it parked.
func (p *Pool) report(worker int, n int64) {
	if n == 0 {
		return
	}
	p.parts[worker].ran.Add(n)
	if p.finished.Add(n) == p.nChunks && worker != 0 && p.waiting.CompareAndSwap(true, false) {
		p.done <- struct{}{}
	}
}

// work is a helper goroutine's loop.
func (p *Pool) work(h *poolWorker, worker int) {
	var last uint64
	for {
		seq := p.next(h, last)
		if seq == 0 {
			return // closed
		}
		last = seq
		p.inside.Add(1)
		if p.seq.Load() == seq && worker < p.threads {
			if p.region != nil {
				p.regionTasks(worker, seq)
			} else {
				p.chunks(worker, seq)
			}
		}
		p.inside.Add(-1)
	}
}

// next waits for a published job newer than last (polling, then parked)
// and returns its sequence number, or 0 once the pool is closed.
func (p *Pool) next(h *poolWorker, last uint64) uint64 {
	var start time.Time
	for i := 0; ; i++ {
		if p.closed.Load() {
			return 0
		}
		if seq := p.seq.Load(); seq != last && seq%2 == 0 {
			return seq
		}
		limit := spinTime
		if p.active.Load() {
			limit = activeSpin
		}
		if spinning(&start, i, limit) {
			continue
		}
		h.sleeping.Store(true)
		if seq := p.seq.Load(); (seq != last && seq%2 == 0) || p.closed.Load() {
			if !h.sleeping.CompareAndSwap(true, false) {
				<-h.wake // Run or Close is sending
			}
			continue
		}
		h.park()
		start, i = time.Time{}, 0
	}
}

// parkRecheck bounds how long a parked worker or caller sleeps before it
// looks at the shared state again. The flag-then-recheck handshake should
// never lose a wake-up, yet one was lost under qemu-aarch64 (a worker
// parked on a new job, the caller parked waiting for it: a deadlock), so
// a park never lasts forever: a missed wake-up costs at most this delay.
const parkRecheck = 20 * time.Millisecond

// stoppedTimer returns a timer for park (reused: Reset does not allocate).
func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// park waits for Run or Close to wake the worker (its sleeping flag set),
// at most parkRecheck; on a time-out it takes the flag back, or receives
// the wake-up a sender that already took it is sending.
func (h *poolWorker) park() {
	h.timer.Reset(parkRecheck)
	select {
	case <-h.wake:
	case <-h.timer.C:
		if !h.sleeping.CompareAndSwap(true, false) {
			<-h.wake
		}
	}
	h.timer.Stop()
}

// park waits for the last worker's signal (the waiting flag set), at most
// parkRecheck. It reports whether the chunks are done; false means the
// caller took the flag back and must look again.
func (p *Pool) park() bool {
	p.timer.Reset(parkRecheck)
	defer p.timer.Stop()
	select {
	case <-p.done:
		return true
	case <-p.timer.C:
		if !p.waiting.CompareAndSwap(true, false) {
			<-p.done // the last worker is sending
			return true
		}
		return p.finished.Load() == p.nChunks
	}
}
