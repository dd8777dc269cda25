package inference_test

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/inference"
)

// BenchmarkModel measures one single-threaded Invoke per conformance model
// (case_0 inputs). Compare with TensorFlow Lite: build/bench-reference.sh.
func BenchmarkModel(b *testing.B) {
	for _, cm := range conformanceModels(b) {
		b.Run(cm.meta.Name, func(b *testing.B) {
			ip := benchInterpreter(b, cm, 1)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				if err := ip.Invoke(); err != nil {
					b.Fatal(err)
				}
			}
			// Process CPU time per Invoke (one thread): steadier than wall
			// time on a shared machine, where the goroutine waits for a core.
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}

// BenchmarkModelThreads runs every conformance model on one and on two
// threads, alternating Invokes so both see the same machine load, and
// reports the fastest Invoke of each and their ratio (speedup, > 1 when
// two threads are faster). It also reports ceiling: how much faster two
// independent single-threaded interpreters finish one Invoke each on two
// goroutines than one interpreter finishes two (2 × the fastest single
// Invoke ÷ the fastest pair, both pairs started together). That is the most
// any split of one Invoke over two threads can gain on this machine: 2.0 on
// two idle physical cores, about 1.2 on two SMT siblings of one core or on
// cores shared with other processes. Run it with -benchtime 20x or more.
func BenchmarkModelThreads(b *testing.B) {
	for _, cm := range conformanceModels(b) {
		b.Run(cm.meta.Name, func(b *testing.B) {
			// ips[0] one thread, ips[1] two threads, ips[2] and ips[3] two
			// more one-thread interpreters for the ceiling pair (not the
			// measured ones: the pair would leave ips[0]'s activations in
			// cache for its next Invoke).
			var ips [4]*inference.Interpreter
			for k := range ips {
				ips[k] = benchInterpreter(b, cm, [4]int{1, 2, 1, 1}[k])
				if err := ips[k].Invoke(); err != nil { // warm-up
					b.Fatal(err)
				}
			}
			pair := newInvokePair(ips[2])
			defer pair.close()
			best := [3]time.Duration{math.MaxInt64, math.MaxInt64, math.MaxInt64}
			for i := 0; b.Loop(); i++ {
				// Each goes first every other round: the second runs with
				// the first's data in cache.
				for j := range 2 {
					k := j ^ i&1
					start := time.Now()
					if err := ips[k].Invoke(); err != nil {
						b.Fatal(err)
					}
					best[k] = min(best[k], time.Since(start))
				}
				d, err := pair.run(ips[3])
				if err != nil {
					b.Fatal(err)
				}
				best[2] = min(best[2], d)
			}
			b.ReportMetric(float64(best[0].Nanoseconds())/1e6, "min-ms-1thread")
			b.ReportMetric(float64(best[1].Nanoseconds())/1e6, "min-ms-2threads")
			b.ReportMetric(float64(best[0])/float64(best[1]), "speedup")
			b.ReportMetric(2*float64(best[0])/float64(best[2]), "ceiling")
		})
	}
}

// invokePair runs an interpreter's Invoke on a second goroutine while the
// caller runs another's: two independent Invokes at once.
type invokePair struct {
	ip    *inference.Interpreter
	start chan struct{}
	done  chan error
}

func newInvokePair(ip *inference.Interpreter) *invokePair {
	p := &invokePair{ip: ip, start: make(chan struct{}), done: make(chan error)}
	go func() {
		for range p.start {
			p.done <- p.ip.Invoke()
		}
	}()
	return p
}

// run starts the partner's Invoke, runs ip.Invoke on the caller and
// returns the time until both are done.
func (p *invokePair) run(ip *inference.Interpreter) (time.Duration, error) {
	start := time.Now()
	p.start <- struct{}{}
	err := ip.Invoke()
	if err2 := <-p.done; err == nil {
		err = err2
	}
	return time.Since(start), err
}

func (p *invokePair) close() { close(p.start) }

// TestInvokeDoesNotAllocate: steady-state Invoke allocates nothing on
// every conformance model.
func TestInvokeDoesNotAllocate(t *testing.T) {
	for _, cm := range conformanceModels(t) {
		// Two threads with every splittable node split (small models too): the worker pool
		// must not allocate either (no goroutine or closure per node).
		for _, threads := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/threads=%d", cm.meta.Name, threads), func(t *testing.T) {
				m, err := inference.LoadFile(filepath.Join(cm.dir, "model.tflite"))
				if err != nil {
					t.Fatal(err)
				}
				ip, err := inference.NewInterpreter(m, inference.WithThreads(threads), inference.WithSplitThreshold(0), inference.WithModelSplitThreshold(0))
				if err != nil {
					t.Fatal(err)
				}
				defer ip.Close()
				for i, in := range cm.meta.Cases[0].Inputs {
					if err := ip.SetInput(i, readFile(t, filepath.Join(cm.dir, in))); err != nil {
						t.Fatal(err)
					}
				}
				if err := ip.Invoke(); err != nil {
					t.Fatal(err)
				}
				runs := 5
				if testing.Short() {
					runs = 1
				}
				// With workers, the Go runtime allocates its parking records
				// (sudogs) until its per-P caches hold enough of them (a
				// hundred or so, again after each GC): measure again until
				// that warm-up is over. An allocation of the Invoke path
				// itself would show in every round.
				rounds := 1
				if threads > 1 {
					rounds = 40
				}
				var allocs float64
				for range rounds {
					if allocs = testing.AllocsPerRun(runs, func() {
						if err := ip.Invoke(); err != nil {
							t.Fatal(err)
						}
					}); allocs == 0 {
						break
					}
				}
				if allocs != 0 {
					t.Errorf("Invoke allocates %.1f times", allocs)
				}
			})
		}
	}
}

// TestConformanceThreads runs the first case of every conformance model
// on 3 threads (two workers besides the caller) with every splittable node
// split: the outputs must be the same bytes as TensorFlow Lite's (float
// within tolerance).
func TestConformanceThreads(t *testing.T) {
	for _, cm := range conformanceModels(t) {
		if cm.meta.Stateful {
			continue // cases depend on each other; TestConformance covers them
		}
		m, err := inference.LoadFile(filepath.Join(cm.dir, "model.tflite"))
		if err != nil {
			t.Fatal(err)
		}
		c := cm.meta.Cases[0]
		for _, threads := range []int{2, 3} {
			t.Run(fmt.Sprintf("%s/threads=%d", cm.meta.Name, threads), func(t *testing.T) {
				ip, err := inference.NewInterpreter(m, inference.WithThreads(threads), inference.WithSplitThreshold(0), inference.WithModelSplitThreshold(0))
				if err != nil {
					t.Fatal(err)
				}
				defer ip.Close()
				for i, in := range c.Inputs {
					if err := ip.SetInput(i, readFile(t, filepath.Join(cm.dir, in))); err != nil {
						t.Fatal(err)
					}
				}
				for range 2 { // the second Invoke reuses the parked workers
					if err := ip.Invoke(); err != nil {
						t.Fatal(err)
					}
					for i, exp := range c.Expected {
						compareOutput(t, ip.Output(i), readFile(t, filepath.Join(cm.dir, exp)))
					}
				}
			})
		}
	}
}

// TestInterpretersShareModel: two interpreters on one model run
// concurrently and agree.
func TestInterpretersShareModel(t *testing.T) {
	dir := filepath.Join(conformanceDir, "micro_speech_quantized")
	m, err := inference.LoadFile(filepath.Join(dir, "model.tflite"))
	if err != nil {
		t.Fatal(err)
	}
	input := readFile(t, filepath.Join(dir, "case_0", "input_0.bin"))
	want := readFile(t, filepath.Join(dir, "case_0", "expected_0.bin"))
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			ip, err := inference.NewInterpreter(m)
			if err == nil {
				for i := 0; i < 20 && err == nil; i++ {
					if err = ip.SetInput(0, input); err == nil {
						err = ip.Invoke()
					}
					if err == nil && string(ip.Output(0).Data) != string(want) {
						err = errMismatch
					}
				}
			}
			errs <- err
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

type mismatch struct{}

func (mismatch) Error() string { return "output differs from TensorFlow Lite" }

var errMismatch error = mismatch{}

// cpuTime is the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkModelThreadsGap is BenchmarkModelThreads for a server under
// steady load: between Invokes the caller works (busy, as a request
// handler decoding the next input would) for the given gap, so a worker
// that parks between Invokes wakes late into the next one. It reports
// the median Invoke on one and on two threads and their ratio. Run it
// with -benchtime 100x or more.
func BenchmarkModelThreadsGap(b *testing.B) {
	for _, cm := range conformanceModels(b) {
		if !strings.HasPrefix(cm.meta.Name, "mobilenet_v2") {
			continue
		}
		for _, gap := range []time.Duration{0, 50 * time.Microsecond, 300 * time.Microsecond, 2 * time.Millisecond} {
			b.Run(fmt.Sprintf("%s/gap=%v", cm.meta.Name, gap), func(b *testing.B) {
				ips := [2]*inference.Interpreter{benchInterpreter(b, cm, 1), benchInterpreter(b, cm, 2)}
				var times [2][]time.Duration
				for i := 0; b.Loop(); i++ {
					// Runs of 5 Invokes per interpreter, so that the
					// two-thread one sees Invokes spaced by the gap.
					k := i / 5 % 2
					for start := time.Now(); time.Since(start) < gap; {
					}
					start := time.Now()
					if err := ips[k].Invoke(); err != nil {
						b.Fatal(err)
					}
					if i%5 != 0 { // the first of a run follows the other interpreter
						times[k] = append(times[k], time.Since(start))
					}
				}
				med := func(d []time.Duration) float64 {
					if len(d) == 0 {
						return 0
					}
					slices.Sort(d)
					return float64(d[len(d)/2].Nanoseconds()) / 1e6
				}
				one, two := med(times[0]), med(times[1])
				b.ReportMetric(one, "p50-ms-1thread")
				b.ReportMetric(two, "p50-ms-2threads")
				if two > 0 {
					b.ReportMetric(one/two, "speedup")
				}
			})
		}
	}
}

// BenchmarkModelBands measures what bands (kernels.Region: consecutive
// convolutions run as one pool job) bring, as build/bench-reference.sh
// and edge-agent bench run Invokes: back to back. It alternates runs of
// 10 Invokes of three interpreters (one thread, two threads, two threads
// WithoutBands, the first Invoke of each run not counted) and reports
// their medians and the two speed-ups over one thread. Run it with
// -benchtime 300x or more. The busy variants run the same next to a
// process that keeps one CPU busy (two threads there get about 1.3 CPUs).
func BenchmarkModelBands(b *testing.B) {
	for _, busy := range []bool{false, true} {
		for _, cm := range conformanceModels(b) {
			if !strings.Contains(cm.meta.Name, "mobilenet_v2") {
				continue
			}
			name := cm.meta.Name
			if busy {
				name += "/busy"
			}
			b.Run(name, func(b *testing.B) {
				if busy {
					stop := busyProcess(b)
					defer stop()
				}
				benchBands(b, cm)
			})
		}
	}
}

// busyProcess starts a process that keeps one CPU busy (this test binary
// spinning in TestBusyHelper) until the returned function stops it: the
// machine of an edge device that runs other work besides inference.
func busyProcess(b *testing.B) (stop func()) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestBusyHelper$")
	cmd.Env = append(os.Environ(), "EDGEFLEET_BUSY_HELPER=1")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
}

// TestBusyHelper is busyProcess's CPU hog; without its environment
// variable it returns at once.
func TestBusyHelper(t *testing.T) {
	if os.Getenv("EDGEFLEET_BUSY_HELPER") != "1" {
		return
	}
	for deadline := time.Now().Add(10 * time.Minute); time.Now().Before(deadline); {
	}
}

// benchBands is BenchmarkModelBands for one model.
func benchBands(b *testing.B, cm confModel) {
	{
		{
			ips := [3]*inference.Interpreter{benchInterpreter(b, cm, 1), benchInterpreter(b, cm, 2), benchInterpreter(b, cm, 2, inference.WithoutBands())}
			var times [3][]time.Duration
			for i := 0; b.Loop(); i++ {
				k := i / 10 % 3
				start := time.Now()
				if err := ips[k].Invoke(); err != nil {
					b.Fatal(err)
				}
				if i%10 != 0 {
					times[k] = append(times[k], time.Since(start))
				}
			}
			var p50 [3]float64
			for k := range times {
				if len(times[k]) == 0 {
					return
				}
				slices.Sort(times[k])
				p50[k] = float64(times[k][len(times[k])/2].Nanoseconds()) / 1e6
			}
			b.ReportMetric(p50[0], "p50-ms-1thread")
			b.ReportMetric(p50[1], "p50-ms-2threads")
			b.ReportMetric(p50[2], "p50-ms-2threads-nobands")
			b.ReportMetric(p50[0]/p50[1], "speedup")
			b.ReportMetric(p50[0]/p50[2], "speedup-nobands")
		}
	}
}

// benchInterpreter loads a conformance model into an interpreter with
// the given threads and its first case's inputs set; Close runs when
// the benchmark ends.
func benchInterpreter(b *testing.B, cm confModel, threads int, opts ...inference.Option) *inference.Interpreter {
	b.Helper()
	m, err := inference.LoadFile(filepath.Join(cm.dir, "model.tflite"))
	if err != nil {
		b.Fatal(err)
	}
	ip, err := inference.NewInterpreter(m, append([]inference.Option{inference.WithThreads(threads)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ip.Close() })
	for i, in := range cm.meta.Cases[0].Inputs {
		if err := ip.SetInput(i, readFile(b, filepath.Join(cm.dir, in))); err != nil {
			b.Fatal(err)
		}
	}
	return ip
}
