package inference

import (
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/inference/tensor"
)

var profileModel = flag.String("profile-model", "mobilenet_v2_1.0_224_quant", "conformance model BenchmarkNodeProfile times node by node")

// BenchmarkNodeProfile times every node of one conformance model
// (-profile-model) on one and on two threads, alternating Invokes, and
// logs (with -v) the fastest Eval of each node on each, their ratio and
// the sums: where the two-thread time goes. Run it with -benchtime 50x.
func BenchmarkNodeProfile(b *testing.B) {
	dir := filepath.Join("../testdata/conformance", *profileModel)
	m, err := LoadFile(filepath.Join(dir, "model.tflite"))
	if err != nil {
		b.Fatal(err)
	}
	var ips [2]*Interpreter
	for k := range ips {
		ip, err := NewInterpreter(m, WithThreads(k+1))
		if err != nil {
			b.Fatal(err)
		}
		defer ip.Close()
		for i := range ip.NumInputs() {
			data, err := os.ReadFile(filepath.Join(dir, "case_0", fmt.Sprintf("input_%d.bin", i)))
			if err != nil {
				b.Fatal(err)
			}
			if err := ip.SetInput(i, data); err != nil {
				b.Fatal(err)
			}
		}
		ips[k] = ip
	}
	nodes := ips[0].subgraphs[0].nodes
	best := make([][2]time.Duration, len(nodes))
	for i := range best {
		best[i] = [2]time.Duration{math.MaxInt64, math.MaxInt64}
	}
	share := make([][2]int64, len(nodes))
	for b.Loop() {
		for k, ip := range ips {
			ip.ctx.SetActive(true)
			for i, n := range ip.subgraphs[0].nodes {
				c0, c1 := ip.ctx.ChunksRun(0), ip.ctx.ChunksRun(1)
				start := time.Now()
				if err := n.kernel.Eval(ip.ctx, &n.kn); err != nil {
					b.Fatal(err)
				}
				best[i][k] = min(best[i][k], time.Since(start))
				if k == 1 {
					share[i][0] += ip.ctx.ChunksRun(0) - c0
					share[i][1] += ip.ctx.ChunksRun(1) - c1
				}
			}
			ip.ctx.SetActive(false)
		}
	}
	var sum [2]time.Duration
	var sb strings.Builder
	fmt.Fprintf(&sb, "%4s %-18s %-16s %9s %9s %6s\n", "node", "op", "output", "1t µs", "2t µs", "ratio")
	for i, n := range nodes {
		sum[0] += best[i][0]
		sum[1] += best[i][1]
		fmt.Fprintf(&sb, "%4d %-18s %-16s %9.1f %9.1f %6.2f %d/%d\n", i, n.kn.Name(), shapeOf(n.kn.Outputs[0]),
			float64(best[i][0].Nanoseconds())/1e3, float64(best[i][1].Nanoseconds())/1e3, float64(best[i][0])/float64(best[i][1]), share[i][0], share[i][1])
	}
	fmt.Fprintf(&sb, "sum of fastest: 1 thread %.3f ms, 2 threads %.3f ms, ratio %.2f\n",
		float64(sum[0].Nanoseconds())/1e6, float64(sum[1].Nanoseconds())/1e6, float64(sum[0])/float64(sum[1]))
	b.Log("\n" + sb.String())
	b.ReportMetric(float64(sum[0])/float64(sum[1]), "speedup")
}

func shapeOf(t *tensor.Tensor) string {
	if t == nil {
		return "-"
	}
	return tensor.ShapeString(t.Shape)
}
