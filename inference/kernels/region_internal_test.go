package kernels

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/edgefleet/edgefleet/inference/tensor"
)

// stencil is a Banded test node over flat int64 arrays: out[k] is the
// sum of in0[k-halo .. k+halo] (clipped), plus in1[k] when it has a
// second input, plus k. Chunks record what a task saw when it started, so
// the test can check the order the Region promises.
type stencil struct {
	in0, in1, out []int64
	halo          int
	// node index in the chain, and the chain's per-node counters of
	// finished chunks (shared by all nodes of the chain).
	node     int
	finished []atomic.Int64
	expect   []int64       // per node: chunks it has (non-empty parts)
	early    *atomic.Int64 // tasks that started before node-Window was done
	maxW     *atomic.Int64 // largest worker index seen
}

func (s *stencil) Bandable(*Node, int) bool { return true }

func (s *stencil) InputSpan(i, lo, hi int) (int, int) {
	if i == 1 {
		return lo, hi
	}
	return max(0, lo-s.halo), min(len(s.in0), hi+s.halo)
}

func (s *stencil) OutputSpan(lo, hi int) (int, int) { return lo, hi }

func stencilChunk(s *stencil, w, lo, hi int) {
	if s.node >= Window && s.finished[s.node-Window].Load() != s.expect[s.node-Window] {
		s.early.Add(1)
	}
	for cur := s.maxW.Load(); int64(w) > cur && !s.maxW.CompareAndSwap(cur, int64(w)); cur = s.maxW.Load() {
	}
	for k := lo; k < hi; k++ {
		v := int64(k)
		for x := max(0, k-s.halo); x < min(len(s.in0), k+s.halo+1); x++ {
			v += s.in0[x]
		}
		if s.in1 != nil {
			v += s.in1[k]
		}
		s.out[k] = v
	}
	s.finished[s.node].Add(1)
}

// stencilChain builds nodes whose node j reads node j-1's output (with
// halo halos[j]) and, every third node, node j-3's output too.
type stencilChain struct {
	nodes    []*Node
	data     []*stencil
	input    []int64
	finished []atomic.Int64
	expect   []int64
	early    atomic.Int64
	maxW     atomic.Int64
}

func newStencilChain(total, threads int, halos []int) *stencilChain {
	c := &stencilChain{input: make([]int64, total), finished: make([]atomic.Int64, len(halos)), expect: make([]int64, len(halos))}
	for k := range c.input {
		c.input[k] = int64(k*7919%1000) - 500
	}
	tensors := []*tensor.Tensor{{Name: "input"}}
	bufs := [][]int64{c.input}
	for j, h := range halos {
		out := &tensor.Tensor{Name: fmt.Sprintf("t%d", j+1)}
		s := &stencil{in0: bufs[j], out: make([]int64, total), halo: h, node: j, finished: c.finished, expect: c.expect, early: &c.early, maxW: &c.maxW}
		n := &Node{Index: j, Inputs: []*tensor.Tensor{tensors[j]}, Outputs: []*tensor.Tensor{out}, Data: s}
		if j >= 3 && j%3 == 0 {
			s.in1 = bufs[j-2]
			n.Inputs = append(n.Inputs, tensors[j-2])
		}
		tensors, bufs = append(tensors, out), append(bufs, s.out)
		c.nodes, c.data = append(c.nodes, n), append(c.data, s)
	}
	return c
}

// run runs the chain as a region on ctx; skip leaves that node's Eval
// without a job (an empty output).
func (c *stencilChain) run(t *testing.T, ctx *Context, r *Region, unit int, skip int) {
	t.Helper()
	units := (len(c.input) + unit - 1) / unit
	for j := range c.finished {
		c.finished[j].Store(0)
		c.expect[j] = 0
		for w := range r.parts {
			if lo, hi := chunkBounds(w, r.parts, units, unit, len(c.input)); lo < hi && j != skip {
				c.expect[j]++
			}
		}
	}
	ctx.BeginRegion(r)
	for j, s := range c.data {
		ctx.RegionNode()
		if j != skip {
			Parallel(ctx, ctx.Threads, 1<<40, len(s.out), unit, s, stencilChunk)
		}
	}
	if err := ctx.EndRegion(true); err != nil {
		t.Fatal(err)
	}
	if !ctx.RunRegion(r, nil) {
		t.Fatal("RunRegion stopped without a stop channel")
	}
}

func testContext(p *Pool, threads int) *Context {
	return &Context{Threads: threads, threads: threads, pool: p, lastWork: -1}
}

// TestRegionMatchesSequential: a chain of nodes with halos (none, one
// element, more than a part) and a skip connection gives the same values
// as running it in order, on 2-4 threads, with workers that are running,
// that never start (the caller takes every task) and that start late;
// no task starts before every part of the node Window before it is done
// (what memory planning relies on), and every worker index is below the
// thread count.
func TestRegionMatchesSequential(t *testing.T) {
	halos := []int{0, 1, 0, 2, 700, 0, 1, 0, 3, 0}
	for _, threads := range []int{2, 3, 4} {
		for _, tc := range []struct {
			name        string
			total, unit int
			skip        int
		}{{"even", 4096, 16, -1}, {"ragged", 1001, 8, -1}, {"fewer units than threads", 3, 2, -1}, {"node without a job", 2048, 1, 5}} {
			for _, start := range []string{"never", "late", "running"} {
				t.Run(fmt.Sprintf("threads=%d/%s/workers %s", threads, tc.name, start), func(t *testing.T) {
					c := newStencilChain(tc.total, threads, halos)
					p := newPool(threads)
					defer p.Close()
					if start == "running" {
						for i, h := range p.helpers {
							go p.work(h, i+1)
						}
					}
					ctx := testContext(p, threads)
					r := NewRegion(c.nodes, threads)
					for round := range 30 {
						if start == "late" && round == 3 {
							for i, h := range p.helpers {
								go p.work(h, i+1)
							}
						}
						for _, s := range c.data {
							clear(s.out)
						}
						c.run(t, ctx, r, tc.unit, tc.skip)
						want := c.wantSkipping(tc.skip)
						for j, s := range c.data {
							if j == tc.skip {
								continue
							}
							for k := range s.out {
								if s.out[k] != want[j][k] {
									t.Fatalf("round %d node %d element %d = %d, expected %d", round, j, k, s.out[k], want[j][k])
								}
							}
						}
						if n := c.early.Load(); n != 0 {
							t.Fatalf("round %d: %d tasks started before every part of the node %d before them was done", round, n, Window)
						}
						if w := c.maxW.Load(); w >= int64(threads) {
							t.Fatalf("worker index %d with %d threads", w, threads)
						}
					}
				})
			}
		}
	}
}

// wantSkipping computes the chain in order on one goroutine, node skip
// computing nothing (its output stays zero, as the test clears it).
func (c *stencilChain) wantSkipping(skip int) [][]int64 {
	var outs [][]int64
	prev := func(j int) []int64 {
		if j < 0 {
			return c.input
		}
		return outs[j]
	}
	for j, s := range c.data {
		if j == skip {
			outs = append(outs, make([]int64, len(s.out)))
			continue
		}
		out := make([]int64, len(s.out))
		in0 := prev(j - 1)
		for k := range out {
			v := int64(k)
			for x := max(0, k-s.halo); x < min(len(in0), k+s.halo+1); x++ {
				v += in0[x]
			}
			if s.in1 != nil {
				v += prev(j - 3)[k]
			}
			out[k] = v
		}
		outs = append(outs, out)
	}
	return outs
}

// stopChunk is a stencil node's chunk that closes stop (once) before its
// work: a deadline passing in the middle of a region.
type stopStencil struct {
	stencil
	once sync.Once
	stop chan struct{}
}

func stopChunk(s *stopStencil, w, lo, hi int) {
	s.once.Do(func() { close(s.stop) })
	stencilChunk(&s.stencil, w, lo, hi)
}

// TestRegionStops: a stop channel closed while a region runs (here by a
// chunk of node 3) lets no task start afterwards: RunRegion returns false
// and no node Window or more after node 3 ran a chunk (every task there
// waits for all of node 3); with no pool the nodes after it do not run.
// The control: without the stop, every node runs.
func TestRegionStops(t *testing.T) {
	const stopAt = 3
	halos := []int{0, 1, 0, 1, 0, 1, 0, 1, 0, 1}
	for _, pooled := range []bool{true, false} {
		for _, closeIt := range []bool{true, false} {
			c := newStencilChain(2048, 2, halos)
			var p *Pool
			if pooled {
				p = NewPool(2)
				defer p.Close()
			}
			ctx := testContext(p, 2)
			r := NewRegion(c.nodes, 2)
			st := &stopStencil{stencil: *c.data[stopAt], stop: make(chan struct{})}
			if !closeIt {
				st.once.Do(func() {})
			}
			ctx.BeginRegion(r)
			for j, s := range c.data {
				ctx.RegionNode()
				if j == stopAt {
					Parallel(ctx, 2, 1<<40, len(s.out), 16, st, stopChunk)
				} else {
					Parallel(ctx, 2, 1<<40, len(s.out), 16, s, stencilChunk)
				}
			}
			if err := ctx.EndRegion(true); err != nil {
				t.Fatal(err)
			}
			if done := ctx.RunRegion(r, st.stop); done == closeIt {
				t.Fatalf("pool %v, stop closed %v: RunRegion returned %v", pooled, closeIt, done)
			}
			for j := range c.data {
				ran := c.finished[j].Load()
				switch {
				case !closeIt && ran == 0:
					t.Fatalf("pool %v, no stop: node %d ran no chunk", pooled, j)
				case closeIt && pooled && j >= stopAt+Window && ran != 0:
					t.Fatalf("pool %v: node %d ran %d chunks after the stop", pooled, j, ran)
				case closeIt && !pooled && j > stopAt && ran != 0:
					t.Fatalf("no pool: node %d ran after the stop", j)
				}
			}
		}
	}
}

// TestRegionSecondJobIsAnError: a node that hands Parallel two jobs breaks
// the Banded contract; EndRegion reports it instead of running anything.
func TestRegionSecondJobIsAnError(t *testing.T) {
	c := newStencilChain(64, 2, []int{0, 1})
	p := newPool(2)
	defer p.Close()
	ctx := testContext(p, 2)
	r := NewRegion(c.nodes, 2)
	ctx.BeginRegion(r)
	ctx.RegionNode()
	Parallel(ctx, 2, 1, 64, 1, c.data[0], stencilChunk)
	Parallel(ctx, 2, 1, 64, 1, c.data[0], stencilChunk)
	if err := ctx.EndRegion(true); err == nil {
		t.Fatal("EndRegion accepted two jobs from one node")
	}
	for _, v := range c.data[0].out {
		if v != 0 {
			t.Fatal("a job ran although the region was refused")
		}
	}
}

// TestRegionDoesNotAllocate: after the first run (which lays the
// dependencies out), running a region allocates nothing.
func TestRegionDoesNotAllocate(t *testing.T) {
	c := newStencilChain(4096, 2, []int{0, 1, 0, 2, 0})
	p := NewPool(2)
	defer p.Close()
	ctx := testContext(p, 2)
	r := NewRegion(c.nodes, 2)
	c.run(t, ctx, r, 16, -1)
	if n := testing.AllocsPerRun(50, func() { c.run(t, ctx, r, 16, -1) }); n > 0.5 {
		t.Fatalf("%.1f allocations per region run", n)
	}
}
