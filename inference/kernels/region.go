package kernels

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Banded is implemented by the prepared state (Node.Data) of kernels whose
// nodes can run inside a Region: each Eval hands Parallel one job, and a
// chunk [lo, hi) of that job reads and writes only the element spans the
// methods report.
type Banded interface {
	// Bandable reports whether the node's Eval on a context with threads
	// threads hands Parallel exactly one job, does no other work on
	// tensor data (it only sets up views and scratch), sets up the same
	// job on every Invoke until the node is prepared again (a Region
	// runs the captured job again without the Eval), and whose chunk
	// function accepts every worker index below threads and keeps no
	// state between chunks in the worker's scratch.
	Bandable(n *Node, threads int) bool
	// InputSpan returns the elements [from, to) of input i's data that
	// chunk [lo, hi) of the job reads (from >= to: none).
	InputSpan(i, lo, hi int) (from, to int)
	// OutputSpan returns the elements [from, to) of output 0's data that
	// chunk [lo, hi) writes.
	OutputSpan(lo, hi int) (from, to int)
}

// CanBand reports whether n can run inside a Region on threads threads.
func CanBand(n *Node, threads int) bool {
	b, ok := n.Data.(Banded)
	return ok && threads > 1 && len(n.Outputs) == 1 && b.Bandable(n, threads)
}

// A Region is a run of consecutive nodes that a Pool runs as one job
// (Context.BeginRegion, EndRegion), to spare the hand-off every split
// node costs otherwise (two trips of a cache line between cores, about
// 1 µs each on the 2-core VM, and the wait for the slower thread; see
// docs/runtime.md).
//
// Every node's range is cut into the same number of parts,
// PartsPerThread per thread, the same fraction of each node (part w of a
// 1×1 convolution's output is part w of the next node's input). A task,
// part w of node j, waits only for the tasks of earlier nodes that write
// what it reads (a depthwise convolution's rows next to a part's edge),
// for part w of node j-1, and, so that the threads never drift more than
// Window nodes apart, for every part of node j-Window. Each thread runs
// its own parts node after node (see partOf for the order); a task it
// needs that no thread has taken yet (its owner is late, parked or a
// part behind) it takes and runs itself, and when its own parts are done
// it takes the last node of each part not yet taken (with everything
// before it still free): a late worker holds nothing up and joins at the
// first task still free, and a thread that is ahead takes work from one
// that is behind a part at a time.
//
// The interpreter keeps the tensors of nodes fewer than Window apart in
// separate memory (they may be in use at the same time).
type Region struct {
	bands []Banded
	// producer[j][i] is the index in the region of the node that writes
	// node j's input i, -1 when it comes from outside.
	producer [][]int
	threads  int
	parts    int // threads * PartsPerThread
	// claimStride is the words of claims per thread.
	claimStride int
	jobs        []regionJob // captured by Parallel between Begin and End
	cur         int         // node being captured
	err         error
	// captured: the jobs of the last capture are complete and can run
	// again (see Captured); work is what they handed Parallel.
	captured bool
	work     int64
	// stop ends the current run early (RunRegion); stopped records it.
	stop    <-chan struct{}
	stopped atomic.Bool
	// Dependencies, for the captured jobs' shapes (key): task j*parts+w
	// waits for deps[depStart[j*parts+w]:depStart[j*parts+w+1]].
	depStart []int
	deps     []regionDep
	key      []int
	// claims[claimIndex(j, w)] is the last run in which a thread took
	// task (j, w): each thread's own tasks' words lie together, apart
	// from the other threads', so taking its own task costs a thread no
	// line from another core (a compare-and-swap on a line another core
	// read stalls for the round trip: ≈ 0.2 µs a task, measured). done[t]
	// is the last run in which task t finished, one line each (the
	// other threads read them).
	claims []atomic.Uint64
	done   []regionFlag
}

// claimIndex returns task (j, w)'s word in claims: the block of part w's
// thread, node-major, each block padded to whole lines.
func (r *Region) claimIndex(j, w int) int {
	t := w / PartsPerThread
	return t*r.claimStride + j*PartsPerThread + w%PartsPerThread
}

// BandRows is the granularity, in rows of the output's last dimension
// (pixels), of the ranges that the nodes split along rows hand Parallel
// (the byte GEMM's row block, the depthwise tile): kernels that may split
// anywhere use multiples of it too, so that in a Region their parts line
// up with their neighbours'.
const BandRows = 8

// PartsPerThread is how many parts of each node a Region gives each
// thread. Two rather than one: a thread runs its part away from its
// neighbour's first, so a depthwise convolution's part next to the
// boundary waits for the neighbour's rows only if that neighbour is more
// than a part behind, and a thread that is behind has a whole part the
// other can take.
const PartsPerThread = 2

// Window bounds how far apart (in nodes) the tasks a Region runs at the
// same time can be: a task of node j starts only once every part of node
// j-Window is done. Memory planning keeps the tensors of nodes within
// Window-1 of each other apart.
const Window = 4

type regionJob struct {
	fn, data    any
	call        ChunkCaller
	total, unit int
	captured    bool
	units       int
}

// bounds returns part w of parts of the job.
func (j *regionJob) bounds(w, parts int) (int, int) {
	return chunkBounds(w, parts, j.units, j.unit, j.total)
}

// stallSleep is how long a thread waiting for another's task sleeps
// between looks once it has polled for waitTime.
const stallSleep = 20 * time.Microsecond

type regionDep struct{ node, part int }

type regionFlag struct {
	v atomic.Uint64
	_ [56]byte
}

// NewRegion returns a region over nodes (consecutive, each CanBand with
// threads) whose parts run on threads threads.
func NewRegion(nodes []*Node, threads int) *Region {
	r := &Region{threads: threads, parts: threads * PartsPerThread, jobs: make([]regionJob, len(nodes)), producer: make([][]int, len(nodes))}
	for j, n := range nodes {
		r.bands = append(r.bands, n.Data.(Banded))
		r.producer[j] = make([]int, len(n.Inputs))
		for i, t := range n.Inputs {
			r.producer[j][i] = -1
			for p := j - 1; p >= 0 && t != nil; p-- {
				if nodes[p].Outputs[0] == t {
					r.producer[j][i] = p
					break
				}
			}
		}
	}
	r.claimStride = (len(nodes)*PartsPerThread+7)&^7 + 8
	r.claims = make([]atomic.Uint64, threads*r.claimStride)
	r.done = make([]regionFlag, len(nodes)*r.parts)
	r.depStart = make([]int, len(nodes)*r.parts+1)
	return r
}

// BeginRegion starts capturing r's nodes: until EndRegion, Parallel does
// not run the job each Eval hands it but records it for node j of r,
// where j counts the RegionNode calls. Only an Invoke that splits nodes
// (Splitting) may use regions.
func (c *Context) BeginRegion(r *Region) {
	for j := range r.jobs {
		r.jobs[j].captured = false
	}
	r.cur, r.err, r.captured, r.work = -1, nil, false, 0
	c.region = r
}

// Captured reports whether r holds the jobs of a complete capture, which
// RunRegion can run again without the Evals: a Banded node's Eval sets
// up the same job on every Invoke until the node is prepared again, and
// the interpreter makes new regions whenever it prepares.
func (r *Region) Captured() bool { return r.captured }

// RegionNode tells the context that the next Eval is the region's next
// node.
func (c *Context) RegionNode() { c.region.cur++ }

// EndRegion stops capturing; when complete is set (every Eval succeeded)
// the captured jobs become r's, for RunRegion. A node whose Eval handed
// Parallel no job (an empty output) runs nothing. It returns the error
// of a node that broke the Banded contract.
func (c *Context) EndRegion(complete bool) error {
	r := c.region
	c.region = nil
	if !complete {
		return nil
	}
	if r.err != nil {
		return r.err
	}
	r.captured = true
	return nil
}

// RunRegion runs the jobs r captured last (Captured must be true): on
// the pool's threads, or in order on the caller without one. Once stop
// is closed (a context's Done channel; nil: never) no further task
// starts and RunRegion returns false as soon as the running ones end:
// a long region honours a deadline like single nodes do between them.
func (c *Context) RunRegion(r *Region, stop <-chan struct{}) bool {
	c.work += r.work
	r.stop = stop
	r.stopped.Store(false)
	if c.pool == nil || c.pool.closed.Load() || c.pool.Threads() < r.threads {
		for j := range r.jobs {
			if r.halted() {
				return false
			}
			if job := &r.jobs[j]; job.captured {
				job.call.CallChunk(job.fn, job.data, 0, 0, job.total)
			}
		}
		return true
	}
	r.layout()
	c.pool.runRegion(r)
	return !r.stopped.Load()
}

// halted reports whether the run was stopped: stop closed (seen by any
// thread; the first sets stopped for the others).
func (r *Region) halted() bool {
	if r.stopped.Load() {
		return true
	}
	select {
	case <-r.stop:
		r.stopped.Store(true)
		return true
	default:
		return false
	}
}

// Splitting reports whether the current Invoke splits nodes across
// threads (more than one thread, and the model is not too small; see
// ModelSplitThreshold): only then do regions pay.
func (c *Context) Splitting() bool { return c.pool != nil && !c.solo && c.Threads > 1 }

// capture records the job Parallel was handed for the node being
// captured.
func (r *Region) capture(fn, data any, call ChunkCaller, work int64, threads, total, unit int) {
	if r.cur < 0 || r.cur >= len(r.jobs) || r.jobs[r.cur].captured {
		r.err = fmt.Errorf("region node %d handed Parallel a second job (kernels.Banded contract)", r.cur)
		return
	}
	if threads < r.threads {
		r.err = fmt.Errorf("region node %d allows %d threads, the region runs %d (kernels.Banded contract)", r.cur, threads, r.threads)
		return
	}
	r.work += work
	j := &r.jobs[r.cur]
	j.fn, j.data, j.call, j.total, j.unit, j.captured = fn, data, call, total, unit, true
}

// layout sets every job's units and, when the jobs' shapes changed since
// the last run, recomputes the dependencies between tasks.
func (r *Region) layout() {
	same := len(r.key) == 2*len(r.jobs)
	for j := range r.jobs {
		job := &r.jobs[j]
		if !job.captured {
			job.total, job.unit = 0, 1
		}
		job.units = (job.total + job.unit - 1) / job.unit
		if same && (r.key[2*j] != job.total || r.key[2*j+1] != job.unit) {
			same = false
		}
	}
	if same {
		return
	}
	r.key = r.key[:0]
	for j := range r.jobs {
		r.key = append(r.key, r.jobs[j].total, r.jobs[j].unit)
	}
	parts := r.parts
	// known[t*parts+w2]: the last node of part w2 that is done whenever
	// task t starts (through its dependencies, transitively), -1 none.
	known := make([]int, len(r.jobs)*parts*parts)
	r.deps = r.deps[:0]
	for j := range r.jobs {
		for w := range parts {
			t := j*parts + w
			r.depStart[t] = len(r.deps)
			first := len(r.deps)
			add := func(p, w2 int) {
				if !hasDep(r.deps[first:], p, w2) {
					r.deps = append(r.deps, regionDep{p, w2})
				}
			}
			if j > 0 {
				add(j-1, w)
			}
			if lo, hi := r.jobs[j].bounds(w, parts); lo < hi {
				for i, p := range r.producer[j] {
					if p < 0 {
						continue
					}
					from, to := r.bands[j].InputSpan(i, lo, hi)
					for w2 := range parts {
						plo, phi := r.jobs[p].bounds(w2, parts)
						if plo >= phi {
							continue
						}
						if a, b := r.bands[p].OutputSpan(plo, phi); a < to && from < b {
							add(p, w2)
						}
					}
				}
			}
			kn := known[t*parts : (t+1)*parts]
			for w2 := range kn {
				kn[w2] = -1
			}
			fold := func(d regionDep) {
				kn[d.part] = max(kn[d.part], d.node)
				for w2, v := range known[(d.node*parts+d.part)*parts:][:parts] {
					kn[w2] = max(kn[w2], v)
				}
			}
			for _, d := range r.deps[first:] {
				fold(d)
			}
			if j >= Window {
				for w2 := range parts {
					if kn[w2] < j-Window {
						add(j-Window, w2)
						fold(regionDep{j - Window, w2})
					}
				}
			}
		}
	}
	r.depStart[len(r.jobs)*parts] = len(r.deps)
}

func hasDep(deps []regionDep, node, part int) bool {
	for _, d := range deps {
		if d.node == node && d.part == part {
			return true
		}
	}
	return false
}

// partOf returns the k-th part thread runs of each node: a thread owns
// PartsPerThread neighbouring parts (the same share of every node) and
// runs first the one away from the next thread's (the last thread: away
// from the previous thread's), so the part that reads rows the
// neighbour writes comes second, by when the neighbour has written them.
func (r *Region) partOf(thread, k int) int {
	if thread == r.threads-1 {
		k = PartsPerThread - 1 - k
	}
	return thread*PartsPerThread + k
}

// runRegion runs a region's captured jobs: like Run, with tasks instead
// of chunks (see Region).
func (p *Pool) runRegion(r *Region) {
	seq := p.openJob()
	p.fn, p.data, p.call, p.region = nil, nil, nil, r
	p.threads, p.nChunks = r.threads, int64(len(r.jobs)*r.parts)
	p.startJob(seq, r.threads)
	p.regionTasks(0, seq+1)
	p.wait()
}

// regionTasks is a thread's share of a region run: its own part's tasks
// still free, node by node, then the last task of every part (and so
// whatever that part still has free).
func (p *Pool) regionTasks(thread int, seq uint64) {
	r := p.region
	n := int64(0)
	if thread < r.threads {
		for j := range r.jobs {
			for k := range PartsPerThread {
				n += p.task(r, thread, seq, j, r.partOf(thread, k))
			}
		}
	}
	for w := range r.parts {
		n += p.task(r, thread, seq, len(r.jobs)-1, w)
	}
	p.report(thread, n)
}

// task takes task (node j, part w) if it is free and runs it once its
// dependencies are done, taking those that are free too; it returns how
// many tasks it ran. A thread waits only for tasks of nodes before the
// ones it has taken and not finished, so no two threads wait for each
// other.
func (p *Pool) task(r *Region, thread int, seq uint64, j, w int) int64 {
	t := j*r.parts + w
	c := &r.claims[r.claimIndex(j, w)]
	if v := c.Load(); v >= seq || !c.CompareAndSwap(v, seq) {
		return 0
	}
	n := int64(1)
	for _, d := range r.deps[r.depStart[t]:r.depStart[t+1]] {
		g := &r.done[d.node*r.parts+d.part].v
		var start time.Time
		taken := false // once taken in this run, a task stays taken
		for i := 0; g.Load() != seq; i++ {
			if !taken {
				if r.claims[r.claimIndex(d.node, d.part)].Load() < seq {
					n += p.task(r, thread, seq, d.node, d.part)
					continue
				}
				taken = true
			}
			if !spinning(&start, i, waitTime) {
				// Its thread has been at it for a while: on a busy
				// machine it may have lost its core. Sleep, so that
				// this core can run it (polling kept it off: two
				// threads ran MobileNet v2 2.2× slower than one next to
				// one busy process).
				time.Sleep(stallSleep)
			}
		}
	}
	job := &r.jobs[j]
	if lo, hi := job.bounds(w, r.parts); lo < hi && !r.halted() {
		job.call.CallChunk(job.fn, job.data, thread, lo, hi)
	}
	r.done[t].v.Store(seq)
	return n
}
