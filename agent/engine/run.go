package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/edgefleet/edgefleet/inference/tensor"
)

// Describer is implemented by models that can say what runs them (the
// TensorFlow Lite backend: its delegate, or that the delegate rejected the
// model).
type Describer interface {
	Delegate() string
}

// Describe names what runs m: "native", "tflite", "tflite+xnnpack", ...
func Describe(m Model) string {
	if d, ok := m.(Describer); ok {
		del := d.Delegate()
		if rest, ok := strings.CutPrefix(del, "none"); ok {
			return "tflite" + rest // "tflite (xnnpack rejected the model)"
		}
		return "tflite+" + del
	}
	return "native"
}

// RunOnce loads a model on b, runs it once on inputs (one per model input,
// raw bytes) with threads threads and returns the outputs and what ran it
// (Describe). It is edge-agent infer --backend.
func RunOnce(ctx context.Context, b Backend, data []byte, inputs [][]byte, threads int) ([]Tensor, string, error) {
	m, err := b.Load(ctx, data)
	if err != nil {
		return nil, "", err
	}
	defer m.Close()
	s, err := m.NewSession(ctx, threads)
	if err != nil {
		return nil, "", err
	}
	defer s.Close()
	out, err := s.Run(ctx, 0, inputs)
	return out, Describe(m), err
}

// BenchResult is the latency of one model on one backend.
type BenchResult struct {
	// Engine is what ran the model (Describe).
	Engine string `json:"engine"`
	// Threads, Warmup and Repeat are the settings; Repeat runs were timed.
	Threads int `json:"threads"`
	Warmup  int `json:"warmup"`
	Repeat  int `json:"repeat"`
	// P50, P90 and Min are latencies of one Run in milliseconds.
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	Min float64 `json:"min_ms"`
}

// Bench measures Session.Run of a model on b with seeded pseudo-random
// inputs: warmup untimed runs, then repeat timed ones. It is edge-agent
// bench --backend, which compares the pure-Go runtime with TensorFlow Lite
// and its delegates on the same inputs and the same code path as serving.
func Bench(ctx context.Context, b Backend, data []byte, threads, warmup, repeat int) (BenchResult, error) {
	if repeat < 1 {
		return BenchResult{}, fmt.Errorf("bench: repeat %d, want at least 1", repeat)
	}
	m, err := b.Load(ctx, data)
	if err != nil {
		return BenchResult{}, err
	}
	defer m.Close()
	s, err := m.NewSession(ctx, threads)
	if err != nil {
		return BenchResult{}, err
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	var inputs [][]byte
	for _, in := range m.Inputs() {
		buf := make([]byte, in.Type.Size()*max(1, numElements(in.Shape)))
		for i := range buf {
			buf[i] = byte(rng.UintN(256))
		}
		inputs = append(inputs, buf)
	}
	// Float inputs get small finite values instead of random bit patterns.
	for i, in := range m.Inputs() {
		if in.Type == tensor.Float32 {
			for k := 0; k+3 < len(inputs[i]); k += 4 {
				inputs[i][k], inputs[i][k+1], inputs[i][k+2], inputs[i][k+3] = 0, 0, 0x80, 0x3f // 1.0
			}
		}
	}
	times := make([]float64, 0, repeat)
	for i := 0; i < warmup+repeat; i++ {
		start := time.Now()
		if _, err := s.Run(ctx, 0, inputs); err != nil {
			return BenchResult{}, err
		}
		if i >= warmup {
			times = append(times, float64(time.Since(start).Nanoseconds())/1e6)
		}
	}
	slices.Sort(times)
	return BenchResult{Engine: Describe(m), Threads: threads, Warmup: warmup, Repeat: repeat,
		P50: times[len(times)/2], P90: times[(len(times)*9)/10], Min: times[0]}, nil
}

func numElements(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= max(0, d)
	}
	return n
}
