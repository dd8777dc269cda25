package kernels

import (
	"runtime"
	"sync/atomic"
	"time"
)

// MinParallelMACs is the work (multiply-accumulates, or comparable element
// operations) below which a node runs on the calling goroutine alone:
// waking a parked worker costs microseconds, a good part of what a node of
// this size takes on one core with the SIMD kernels. Chosen with
// BenchmarkParallel and BenchmarkModelThreads (package inference) on the
// small conformance models (person_detect, mobilenet_v1_0.25_128_quant,
// micro_speech), which must not get slower with two threads.
const MinParallelMACs = 1_000_000

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
	if threads > 1 && ctx != nil && work >= ctx.SplitThreshold && total >= 2*minChunk {
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
// not allocate: workers spin briefly, then park on a channel between
// jobs. A Pool is used by one goroutine at a time; Close stops it.
type Pool struct {
	helpers []*poolWorker
	// The job, written by Run before it publishes a new sequence number.
	fn, data any
	call     ChunkCaller
	total    int
	step     int
	nChunks  int64
	_        [64]byte
	next     atomic.Int64 // next chunk to take
	_        [56]byte
	pending  atomic.Int32 // helpers still working on the job
	waiting  atomic.Bool  // the caller is parked on done
	active   atomic.Bool  // inside an Invoke: workers poll longer
	closed   atomic.Bool  // Close may run on a cleanup goroutine
	done     chan struct{}
	timer    *time.Timer // bounds each park of the caller (see park)
	seq      uint32
}

type poolWorker struct {
	seq      atomic.Uint32 // job sequence to run; stopSeq stops the worker
	sleeping atomic.Bool
	wake     chan struct{}
	timer    *time.Timer // bounds each park (see poolWorker.park)
	_        [40]byte
}

// stopSeq tells a worker to exit.
const stopSeq = ^uint32(0)

// NewPool starts threads-1 worker goroutines (the caller of Run is the
// first worker). It returns nil for threads <= 1.
func NewPool(threads int) *Pool {
	if threads <= 1 {
		return nil
	}
	p := &Pool{done: make(chan struct{}, 1), timer: stoppedTimer()}
	for i := 1; i < threads; i++ {
		h := &poolWorker{wake: make(chan struct{}, 1), timer: stoppedTimer()}
		p.helpers = append(p.helpers, h)
		go p.work(h, i)
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
		h.seq.Store(stopSeq)
		if h.sleeping.CompareAndSwap(true, false) {
			h.wake <- struct{}{}
		}
	}
}

// Run calls call.CallChunk(fn, data, worker, lo, hi) over [0, total) in
// chunks of at least minChunk, on up to threads goroutines including the
// caller (worker 0), and returns when all chunks are done. The range is
// cut into a few chunks per thread, taken in turn, so that a thread slowed
// down by other processes does not hold the others up.
func (p *Pool) Run(threads, total, minChunk int, fn, data any, call ChunkCaller) {
	threads = min(threads, len(p.helpers)+1)
	if threads <= 1 || p.closed.Load() {
		call.CallChunk(fn, data, 0, 0, total)
		return
	}
	minChunk = max(minChunk, 1)
	nChunks := min(4*threads, max(1, total/minChunk))
	// Whole multiples of minChunk (kernels tile by it), so no chunk but
	// the last ends in a partial tile.
	step := ((total+nChunks-1)/nChunks + minChunk - 1) / minChunk * minChunk
	p.fn, p.data, p.call = fn, data, call
	p.total, p.step, p.nChunks = total, step, int64((total+step-1)/step)
	p.next.Store(0)
	helpers := threads - 1
	p.pending.Store(int32(helpers))
	p.seq++
	if p.seq == stopSeq {
		p.seq = 1
	}
	for _, h := range p.helpers[:helpers] {
		h.seq.Store(p.seq)
		if h.sleeping.Load() && h.sleeping.CompareAndSwap(true, false) {
			h.wake <- struct{}{}
		}
	}
	p.chunks(0)
	// Wait for the helpers: spin, then park.
	var start time.Time
	for i := 0; p.pending.Load() != 0; i++ {
		if spinning(&start, i, waitTime) {
			continue
		}
		p.waiting.Store(true)
		if p.pending.Load() == 0 {
			if !p.waiting.CompareAndSwap(true, false) {
				<-p.done // the last helper is sending
			}
			break
		}
		if p.park() {
			break
		}
	}
	p.fn, p.data, p.call = nil, nil, nil
}

// spinning is called on each iteration i of a polling loop: it yields to
// other goroutines now and then and reports whether the loop should keep
// polling (false after limit: park).
func spinning(start *time.Time, i int, limit time.Duration) bool {
	if i%32 != 31 {
		return true
	}
	runtime.Gosched()
	if start.IsZero() {
		*start = time.Now()
		return true
	}
	return time.Since(*start) < limit
}

// chunks takes chunks until none are left.
func (p *Pool) chunks(worker int) {
	for {
		i := p.next.Add(1) - 1
		if i >= p.nChunks {
			return
		}
		lo := int(i) * p.step
		p.call.CallChunk(p.fn, p.data, worker, lo, min(lo+p.step, p.total))
	}
}

// work is a helper goroutine's loop.
func (p *Pool) work(h *poolWorker, worker int) {
	var last uint32
	for {
		seq := h.seq.Load()
		var start time.Time
		for i := 0; seq == last; i++ {
			limit := spinTime
			if p.active.Load() {
				limit = activeSpin
			}
			if spinning(&start, i, limit) {
				seq = h.seq.Load()
				continue
			}
			h.sleeping.Store(true)
			if seq = h.seq.Load(); seq != last {
				if !h.sleeping.CompareAndSwap(true, false) {
					<-h.wake // Run or Close is sending
				}
				break
			}
			h.park()
			seq = h.seq.Load()
			start = time.Time{}
		}
		if seq == stopSeq {
			return
		}
		last = seq
		p.chunks(worker)
		if p.pending.Add(-1) == 0 && p.waiting.CompareAndSwap(true, false) {
			p.done <- struct{}{}
		}
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

// park waits for the last helper's signal (the waiting flag set), at most
// parkRecheck. It reports whether the helpers are done; false means the
// caller took the flag back and must look at pending again.
func (p *Pool) park() bool {
	p.timer.Reset(parkRecheck)
	defer p.timer.Stop()
	select {
	case <-p.done:
		return true
	case <-p.timer.C:
		if !p.waiting.CompareAndSwap(true, false) {
			<-p.done // the last helper is sending
			return true
		}
		return p.pending.Load() == 0
	}
}
