// Package benchmark measures a model's Invoke latency and allocations on
// the pure-Go runtime: the engine behind `edge-agent bench`.
package benchmark

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sort"
	"time"

	"github.com/edgefleet/edgefleet/inference"
)

// Options configures a run.
type Options struct {
	Threads int
	Repeat  int
	Warmup  int
}

// Result holds latency percentiles in milliseconds and allocations per
// Invoke.
type Result struct {
	Model           string  `json:"model"`
	Threads         int     `json:"threads"`
	Repeat          int     `json:"repeat"`
	P50             float64 `json:"p50_ms"`
	P90             float64 `json:"p90_ms"`
	P99             float64 `json:"p99_ms"`
	Min             float64 `json:"min_ms"`
	Mean            float64 `json:"mean_ms"`
	AllocsPerInvoke float64 `json:"allocs_per_invoke"`
	BytesPerInvoke  float64 `json:"bytes_per_invoke"`
	ArenaBytes      int     `json:"arena_bytes"`
}

// Run invokes m repeatedly on random inputs and reports latency.
func Run(ctx context.Context, m *inference.Model, o Options) (*Result, error) {
	if o.Threads < 1 {
		o.Threads = 1
	}
	if o.Repeat < 1 {
		o.Repeat = 50
	}
	if o.Warmup < 0 {
		o.Warmup = 0
	}
	ip, err := inference.NewInterpreter(m, inference.WithThreads(o.Threads))
	if err != nil {
		return nil, err
	}
	defer ip.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, in := range ip.Inputs() {
		for i := range in.Data {
			in.Data[i] = byte(rng.UintN(256))
		}
		if in.Type.String() == "float32" {
			f := in.Float32s()
			for i := range f {
				f[i] = rng.Float32()*2 - 1
			}
		}
	}
	for i := 0; i < o.Warmup; i++ {
		if err := ip.InvokeContext(ctx); err != nil {
			return nil, fmt.Errorf("warm-up invoke: %w", err)
		}
	}
	lat := make([]float64, o.Repeat)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range lat {
		start := time.Now()
		if err := ip.InvokeContext(ctx); err != nil {
			return nil, fmt.Errorf("invoke %d: %w", i, err)
		}
		lat[i] = float64(time.Since(start).Nanoseconds()) / 1e6
	}
	runtime.ReadMemStats(&after)
	r := &Result{Threads: o.Threads, Repeat: o.Repeat, ArenaBytes: ip.ArenaBytes()}
	r.AllocsPerInvoke = float64(after.Mallocs-before.Mallocs) / float64(o.Repeat)
	r.BytesPerInvoke = float64(after.TotalAlloc-before.TotalAlloc) / float64(o.Repeat)
	sum := 0.0
	for _, v := range lat {
		sum += v
	}
	r.Mean = sum / float64(len(lat))
	sort.Float64s(lat)
	r.Min = lat[0]
	r.P50 = Percentile(lat, 50)
	r.P90 = Percentile(lat, 90)
	r.P99 = Percentile(lat, 99)
	return r, nil
}

// Percentile returns the p-th percentile of sorted values (nearest rank).
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	k := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(k, len(sorted)-1))]
}
