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
	// Line 0: what a polling worker reads first. state is the job's
	// sequence number (even: published; odd: Run is writing one) times
	// 2^16 plus the number of workers inside the job (joined with a
	// compare-and-swap on the published number, so none joins while Run
	// writes): one line carries the job's publication, the workers'
	// entry and exit, and the job's function (Run writes it there, a
	// worker reads it with the number).
	state    atomic.Uint64
	fn, data any
	call     ChunkCaller
	_        [8]byte
	// Line 1: the rest of the job, written by Run while the number is odd
	// and no worker is inside.
	total   int
	unit    int // minChunk
	units   int // ceil(total / unit)
	threads int32
	nChunks int32
	target  int64 // finished once the job's chunks are done
	parts   []part
	// Line 2: rarely written.
	helpers []*poolWorker
	ran     []counter   // chunks each thread ran (Context.ChunksRun)
	closed  atomic.Bool // Close may run on a cleanup goroutine
	active  atomic.Bool // inside an Invoke: workers poll longer
	_       [8]byte
	// Line 3.
	finished atomic.Int64 // chunks done, over all jobs (not reset per job)
	_        [56]byte
	// Line 4: the caller's.
	waiting atomic.Bool // the caller is parked on done
	done    chan struct{}
	timer   *time.Timer // bounds each park of the caller (see park)
	_       [40]byte
}

// Fields of Pool.state.
const (
	seqShift   = 16
	insideMask = 1<<seqShift - 1
)

// part is one worker's share of a job's chunks in one word, so that the
// owner (from the front) and the others (from the back) take chunks with
// one compare-and-swap: the job's sequence number (low 32 bits) in the
// high half, then a claimed bit (a thread took the part as its own, see
// Pool.chunks), lo (15 bits) and hi (16 bits) of the chunks left. A word
// whose sequence number is not the current job's stands for the part's
// whole range, unclaimed: Run writes no part (each write would move the
// part's line to the caller's core, only for the worker to move it back).
// The caller looks at every part of every job, so a used part's number is
// never more than one job old (a stale one cannot come round to the
// current one), and Run marks the parts a job does not use with an odd
// number, which no job has.
type part struct {
	v atomic.Uint64
	_ [56]byte
}

const (
	partClaimed = 1 << 31
	// maxChunks bounds a job's chunks so that lo and hi fit their fields.
	maxChunks = 1<<15 - 1
)

// partWord packs a part's state in job seq.
func partWord(seq uint64, claimed bool, lo, hi int64) uint64 {
	w := uint64(uint32(seq))<<32 | uint64(lo)<<16 | uint64(hi)
	if claimed {
		w |= partClaimed
	}
	return w
}

// load returns part w's state in job seq (its whole range, unclaimed, if
// no thread has touched it in this job yet) and the word it read.
func (p *Pool) load(w int, seq uint64) (v uint64, claimed bool, lo, hi int64) {
	v = p.parts[w].v.Load()
	if uint32(v>>32) != uint32(seq) {
		lo, hi = partChunks(w, int(p.threads), int(p.nChunks))
		return v, false, lo, hi
	}
	return v, v&partClaimed != 0, int64(v>>16) & 0x7fff, int64(v & 0xffff)
}

// claim makes the caller the owner of part w in job seq, unless another
// thread already is, and takes its first chunk left (ok false: claimed by
// another thread, or none left).
func (p *Pool) claim(w int, seq uint64) (int64, bool) {
	for {
		v, claimed, lo, hi := p.load(w, seq)
		if claimed {
			return 0, false
		}
		next := min(lo+1, hi)
		if p.parts[w].v.CompareAndSwap(v, partWord(seq, true, next, hi)) {
			return lo, lo < hi
		}
	}
}

// takeFront takes the first chunk left of part w, if any.
func (p *Pool) takeFront(w int, seq uint64) (int64, bool) {
	for {
		v, claimed, lo, hi := p.load(w, seq)
		if lo >= hi {
			return 0, false
		}
		if p.parts[w].v.CompareAndSwap(v, partWord(seq, claimed, lo+1, hi)) {
			return lo, true
		}
	}
}

// takeBack takes the last chunk left of part w, if any.
func (p *Pool) takeBack(w int, seq uint64) (int64, bool) {
	for {
		v, claimed, lo, hi := p.load(w, seq)
		if lo >= hi {
			return 0, false
		}
		if p.parts[w].v.CompareAndSwap(v, partWord(seq, claimed, lo, hi-1)) {
			return hi - 1, true
		}
	}
}

// counter is a per-thread count on its own cache line.
type counter struct {
	atomic.Int64
	_ [56]byte
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
	p := &Pool{done: make(chan struct{}, 1), timer: stoppedTimer(), parts: make([]part, threads), ran: make([]counter, threads)}
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
// idle workers poll for the next node longer before they park. Turning it
// on also wakes parked workers, so that they are up (waking one takes tens
// of microseconds) by the time the first split node starts, not partway
// through it.
func (p *Pool) SetActive(on bool) {
	if p == nil {
		return
	}
	p.active.Store(on)
	if on {
		for _, h := range p.helpers {
			h.wakeUp()
		}
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
	return p.ran[w].Load()
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
	nChunks := min(chunksPerThread*threads, units, maxChunks)
	threads = min(threads, nChunks)
	if threads <= 1 {
		call.CallChunk(fn, data, 0, 0, total)
		return
	}
	// Close the previous job to late workers, wait for the ones inside to
	// leave (they found its chunks all taken), then write the new one.
	st := p.state.Add(1 << seqShift)
	seq := st >> seqShift
	var start time.Time
	for i := 0; st&insideMask != 0; i++ {
		spinning(&start, i, time.Hour)
		st = p.state.Load()
	}
	p.fn, p.data, p.call = fn, data, call
	p.total, p.unit, p.units, p.threads, p.nChunks = total, minChunk, units, int32(threads), int32(nChunks)
	p.target += int64(nChunks)
	for w := threads; w < len(p.parts); w++ {
		// Parts this job does not use get an odd (no job's) number, so
		// that no later job takes them for its own, however many jobs
		// pass before one uses them again.
		p.parts[w].v.Store(partWord(seq, false, 0, 0))
	}
	p.state.Store((seq + 1) << seqShift)
	for _, h := range p.helpers[:threads-1] {
		h.wakeUp()
	}
	p.chunks(0, seq+1)
	// Wait for chunks other workers are running: poll, then park.
	start = time.Time{}
	for i := 0; p.finished.Load() != p.target; i++ {
		if spinning(&start, i, waitTime) {
			continue
		}
		p.waiting.Store(true)
		if p.finished.Load() == p.target {
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
	threads := int(p.threads)
	for k := range threads {
		w := (worker + k) % threads
		if i, ok := p.claim(w, seq); ok {
			p.runChunk(worker, i)
			n += 1 + p.front(worker, w, seq)
		}
		for {
			i, ok := p.takeBack(w, seq)
			if !ok {
				break
			}
			p.runChunk(worker, i)
			n++
		}
	}
	p.report(worker, n)
}

// front runs part w's chunks from the front until none are left and
// returns how many it ran.
func (p *Pool) front(worker, w int, seq uint64) int64 {
	n := int64(0)
	for {
		i, ok := p.takeFront(w, seq)
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
	p.ran[worker].Add(n)
	if p.finished.Add(n) == p.target && worker != 0 && p.waiting.CompareAndSwap(true, false) {
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
		if !p.join(seq) {
			continue // Run is writing the next job
		}
		if worker < int(p.threads) {
			p.chunks(worker, seq)
		}
		p.state.Add(^uint64(0)) // leave: inside - 1
	}
}

// join counts the worker inside job seq, unless Run has closed it.
func (p *Pool) join(seq uint64) bool {
	for {
		st := p.state.Load()
		if st>>seqShift != seq {
			return false
		}
		if p.state.CompareAndSwap(st, st+1) {
			return true
		}
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
		if seq := p.state.Load() >> seqShift; seq != last && seq%2 == 0 {
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
		if seq := p.state.Load() >> seqShift; (seq != last && seq%2 == 0) || p.closed.Load() {
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
		return p.finished.Load() == p.target
	}
}
