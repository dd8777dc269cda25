package kernels

import (
	"sync"
	"testing"
)

// record notes, per index, how often and by which worker it was run, and
// the order of the chunks.
type record struct {
	mu     sync.Mutex
	hits   []int
	worker []int
	starts []int
}

func recordChunk(r *record, w, lo, hi int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.starts = append(r.starts, lo)
	for i := lo; i < hi; i++ {
		r.hits[i]++
		r.worker[i] = w
	}
}

func runRecorded(p *Pool, threads, total, minChunk int) *record {
	r := &record{hits: make([]int, total), worker: make([]int, total)}
	p.Run(threads, total, minChunk, recordChunk, r, chunkCall[record]{})
	return r
}

// TestLateWorkerPartRunsOnCaller: a worker that has not started (here:
// never started) holds nothing up; the caller claims its whole part and
// runs it front to back after its own (not chunk by chunk from the end,
// which would leave the part's rows to whichever thread comes first). Once the worker runs, jobs still cover every index
// once.
func TestLateWorkerPartRunsOnCaller(t *testing.T) {
	for _, threads := range []int{2, 3, 4} {
		p := newPool(threads)
		for _, tc := range []struct{ total, minChunk int }{{1000, 1}, {1001, 8}, {64, 16}, {5, 1}} {
			r := runRecorded(p, threads, tc.total, tc.minChunk)
			for i := range tc.total {
				if r.hits[i] != 1 || r.worker[i] != 0 {
					t.Fatalf("threads %d total %d: index %d run %d times, last by worker %d; expected once by the caller", threads, tc.total, i, r.hits[i], r.worker[i])
				}
			}
			// Each part front to back: the chunk starts go down only
			// where the caller moves on to another part.
			downs := 0
			for k := 1; k < len(r.starts); k++ {
				if r.starts[k] < r.starts[k-1] {
					downs++
				}
			}
			if downs > threads-1 {
				t.Fatalf("threads %d total %d: chunks started at %v, expected whole parts, each from the front", threads, tc.total, r.starts)
			}
		}
		// Start the workers late: every index still runs exactly once.
		for i, h := range p.helpers {
			go p.work(h, i+1)
		}
		for range 20 {
			r := runRecorded(p, threads, 4096, 16)
			for i, n := range r.hits {
				if n != 1 {
					t.Fatalf("threads %d with workers: index %d run %d times", threads, i, n)
				}
			}
		}
		p.Close()
	}
}

// TestPartsAreAffine: each thread's part of a job is one contiguous range,
// the parts cover the job exactly once, and thread w's part starts at the
// same fraction w/threads of every job (within a unit, so that in
// consecutive nodes split along the same rows a thread reads what it
// wrote).
func TestPartsAreAffine(t *testing.T) {
	for _, threads := range []int{2, 3, 4, 8} {
		for _, total := range []int{1, 7, 100, 3136, 12544, 1001} {
			for _, unit := range []int{1, 4, 8, 64} {
				units := (total + unit - 1) / unit
				n := min(chunksPerThread*threads, units)
				if n < threads {
					continue // Run does not split (or uses fewer threads)
				}
				next := 0
				for w := range threads {
					clo, chi := partChunks(w, threads, n)
					if chi <= clo {
						t.Fatalf("threads %d total %d unit %d: thread %d has no chunk", threads, total, unit, w)
					}
					for i := clo; i < chi; i++ {
						lo, hi := chunkBounds(int(i), n, units, unit, total)
						if lo != next || hi <= lo {
							t.Fatalf("threads %d total %d unit %d: chunk %d is [%d,%d), expected it to start at %d", threads, total, unit, i, lo, hi, next)
						}
						if i == clo {
							if want := w * total / threads; lo < want-unit || lo > want+unit {
								t.Fatalf("threads %d total %d unit %d: thread %d starts at %d, expected %d within a unit", threads, total, unit, w, lo, want)
							}
						}
						next = hi
					}
				}
				if next != total {
					t.Fatalf("threads %d total %d unit %d: parts end at %d", threads, total, unit, next)
				}
			}
		}
	}
}
