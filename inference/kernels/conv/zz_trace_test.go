package conv_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/tensor"
)

func TestZZTrace(t *testing.T) {
	for _, l := range []struct {
		name   string
		ic, oc int
	}{{"expand56", 24, 144}, {"project56", 144, 24}, {"expand56", 24, 144}} {
		p := convBench(t, 2, false, tensor.Uint8, 56, 56, l.ic, l.oc, 1, 1)
		for range 200 {
			p.eval(t)
		}
		best := time.Hour
		var bestEv []kernels.TraceEv
		var bestStart time.Time
		for range 300 {
			kernels.TraceN.Store(0)
			kernels.TraceOn = true
			st := time.Now()
			p.eval(t)
			d := time.Since(st)
			kernels.TraceOn = false
			if d < best {
				best, bestStart = d, st
				bestEv = append(bestEv[:0], kernels.Trace[:kernels.TraceN.Load()]...)
			}
		}
		_ = bestEv
		var sum [2]time.Duration
		var cnt [2]int
		for range 300 {
			kernels.TraceN.Store(0)
			kernels.TraceOn = true
			p.eval(t)
			kernels.TraceOn = false
			for _, e := range kernels.Trace[:kernels.TraceN.Load()] {
				sum[e.W] += e.T1.Sub(e.T0)
				cnt[e.W]++
			}
		}
		fmt.Println(l.name, "best", best, "mean chunk w0", sum[0]/time.Duration(max(1, cnt[0])), cnt[0], "w1", sum[1]/time.Duration(max(1, cnt[1])), cnt[1])
		fmt.Println(l.name, "best trace:")
		for _, e := range bestEv {
			fmt.Printf("  w%d chunk %2d  %6.1f .. %6.1f us (%5.1f)\n", e.W, e.I, float64(e.T0.Sub(bestStart).Nanoseconds())/1e3, float64(e.T1.Sub(bestStart).Nanoseconds())/1e3, float64(e.T1.Sub(e.T0).Nanoseconds())/1e3)
		}
	}
}
