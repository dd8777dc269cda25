package kernels_test

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/quant"
)

// cover counts, per index, how often a chunk covered it, and records the
// workers that ran chunks.
type cover struct {
	hits    []atomic.Int32
	workers [8]atomic.Int32
	bad     atomic.Int32 // worker index out of range
	threads int
}

func coverChunk(c *cover, w, lo, hi int) {
	if w < 0 || w >= c.threads {
		c.bad.Add(1)
		return
	}
	c.workers[w].Add(1)
	for i := lo; i < hi; i++ {
		c.hits[i].Add(1)
	}
}

func TestParallelCoversEveryIndexOnce(t *testing.T) {
	for _, threads := range []int{1, 2, 3, 4} {
		ctx := kernels.NewContext(quant.RoundingTFLite, threads)
		for _, total := range []int{0, 1, 2, 7, 64, 1000, 1001} {
			for _, minChunk := range []int{0, 1, 5, 300} {
				c := &cover{hits: make([]atomic.Int32, total), threads: threads}
				for range 3 { // reuse the parked workers
					kernels.Parallel(ctx, threads, kernels.MinParallelMACs, total, minChunk, c, coverChunk)
				}
				for i := range c.hits {
					if n := c.hits[i].Load(); n != 3 {
						t.Fatalf("threads %d total %d minChunk %d: index %d covered %d times in 3 runs", threads, total, minChunk, i, n)
					}
				}
				if c.bad.Load() != 0 {
					t.Fatalf("threads %d: worker index out of [0, %d)", threads, threads)
				}
			}
		}
		ctx.Close()
	}
}

func TestParallelSplitsOnlyLargeWork(t *testing.T) {
	ctx := kernels.NewContext(quant.RoundingTFLite, 2)
	defer ctx.Close()
	// Below the threshold: one call on the caller, worker 0, whole range.
	var calls, lo0, hi0 int
	type rec struct{ calls, lo, hi *int }
	r := &rec{&calls, &lo0, &hi0}
	kernels.Parallel(ctx, 2, kernels.MinParallelMACs-1, 1000, 1, r, func(r *rec, w, lo, hi int) {
		*r.calls++
		*r.lo, *r.hi = lo, hi
	})
	if calls != 1 || lo0 != 0 || hi0 != 1000 {
		t.Fatalf("small node: %d calls, last [%d,%d), expected one call over [0,1000)", calls, lo0, hi0)
	}
	// At the threshold: split into several chunks (control).
	c := &cover{hits: make([]atomic.Int32, 1000), threads: 2}
	kernels.Parallel(ctx, 2, kernels.MinParallelMACs, 1000, 1, c, coverChunk)
	if n := c.workers[0].Load() + c.workers[1].Load(); n < 2 {
		t.Fatalf("large node ran as %d chunk(s), expected a split", n)
	}
}

func TestParallelDoesNotAllocate(t *testing.T) {
	ctx := kernels.NewContext(quant.RoundingTFLite, 3)
	defer ctx.Close()
	c := &cover{hits: make([]atomic.Int32, 4096), threads: 3}
	kernels.Parallel(ctx, 3, 1<<30, 4096, 16, c, coverChunk)
	if a := testing.AllocsPerRun(50, func() {
		kernels.Parallel(ctx, 3, 1<<30, 4096, 16, c, coverChunk)
	}); a != 0 {
		t.Fatalf("Parallel allocates %.1f times per call", a)
	}
}

// TestPoolCloseStopsWorkers: Close ends the worker goroutines, and a
// context that is dropped has them ended by the garbage collector. Worker
// goroutines are counted by their creator, so that goroutines of earlier
// tests that are still on their way out do not blur the count.
func TestPoolCloseStopsWorkers(t *testing.T) {
	waitWorkers := func(want int, what string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for poolWorkers() > want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d pool workers, expected at most %d", what, poolWorkers(), want)
			}
			runtime.GC()
			runtime.Gosched()
			time.Sleep(time.Millisecond)
		}
	}
	waitWorkers(0, "before the test")
	ctx := kernels.NewContext(quant.RoundingTFLite, 4)
	if n := poolWorkers(); n != 3 {
		t.Fatalf("4 threads: %d pool workers, expected 3", n)
	}
	c := &cover{hits: make([]atomic.Int32, 100), threads: 4}
	kernels.Parallel(ctx, 4, 1<<30, 100, 1, c, coverChunk)
	ctx.Close()
	ctx.Close() // idempotent
	waitWorkers(0, "after Close")
	// Still usable, on the caller alone.
	kernels.Parallel(ctx, 4, 1<<30, 100, 1, c, coverChunk)
	if c.hits[99].Load() != 2 {
		t.Fatal("Parallel after Close did not run the range")
	}

	func() {
		ctx := kernels.NewContext(quant.RoundingTFLite, 3)
		kernels.Parallel(ctx, 3, 1<<30, 100, 1, c, coverChunk)
	}()
	waitWorkers(0, "after dropping a context")
}

// poolWorkers counts the worker goroutines of pools, started or not yet
// scheduled (a goroutine that has not run yet shows only its creator).
func poolWorkers() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "created by github.com/edgefleet/edgefleet/inference/kernels.NewPool")
}

// spinWork is a chunk function that costs about one nanosecond per index
// and records which worker ran how much.
type spinWork struct {
	sink    [8]uint64
	perWork [8]atomic.Int64
}

func spinChunk(s *spinWork, w, lo, hi int) {
	x := uint64(lo)
	for i := lo; i < hi; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	s.sink[w] += x
	s.perWork[w].Add(int64(hi - lo))
}

// BenchmarkParallel measures a node of n units (about 1 ns each) on 1 and
// 2 threads: the ratio shows from what size splitting pays
// (kernels.MinParallelMACs).
func BenchmarkParallel(b *testing.B) {
	for _, n := range []int{2_000, 10_000, 50_000, 200_000, 1_000_000} {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("units=%d/threads=%d", n, threads), func(b *testing.B) {
				ctx := kernels.NewContext(quant.RoundingTFLite, threads)
				ctx.SplitThreshold = 0
				defer ctx.Close()
				s := &spinWork{}
				for b.Loop() {
					kernels.Parallel(ctx, threads, int64(n), n, 64, s, spinChunk)
				}
				if threads > 1 {
					b.ReportMetric(float64(s.perWork[1].Load())/float64(s.perWork[0].Load()+s.perWork[1].Load()), "helper-share")
				}
			})
		}
	}
}

// BenchmarkCoreRoundTrip measures what every split node pays at least
// twice (the job reaching the worker, the last chunk's report reaching
// the caller): one cache line going from one core to the other and back,
// two goroutines taking turns incrementing a counter. On two cores
// sharing a cache this is tens to a few hundred nanoseconds; on the
// shared 2-core CI VM it measured 1-2.5 µs per round trip, which bounds
// what splitting MobileNet v2's ≈ 60 nodes can gain there (see
// docs/runtime.md).
func BenchmarkCoreRoundTrip(b *testing.B) {
	if runtime.GOMAXPROCS(0) < 2 {
		b.Skip("needs two cores")
	}
	var ping, pong struct {
		v atomic.Int64
		_ [56]byte
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := int64(1); ; i++ {
			for ping.v.Load() != i {
				if ping.v.Load() < 0 {
					return
				}
			}
			pong.v.Store(i)
		}
	}()
	i := int64(0)
	for b.Loop() {
		i++
		ping.v.Store(i)
		for pong.v.Load() != i {
		}
	}
	ping.v.Store(-1)
	<-done
}
