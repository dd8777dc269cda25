package conv_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/kernels/conv"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
	"github.com/edgefleet/edgefleet/quant"
)

// prepared is one node ready for repeated Eval (as the interpreter runs it).
type prepared struct {
	k   kernels.Kernel
	ctx *kernels.Context
	n   *kernels.Node
	mac int64
}

func tensorOf(dt tensor.DType, shape []int, q *tensor.Quantization, data []byte, constant bool) *tensor.Tensor {
	t := &tensor.Tensor{Name: "t", Type: dt, Shape: shape, Quant: q}
	t.Data = kernels.AlignedBytes(t.ByteSize())
	copy(t.Data, data)
	if constant {
		t.KnownAtPrepare, t.Alloc = true, tensor.ConstantAlloc
	}
	return t
}

func prepare(tb testing.TB, threads int, op schema.BuiltinOperator, opts any, inputs []*tensor.Tensor, out *tensor.Tensor) *prepared {
	tb.Helper()
	k, ok := kernels.Lookup(schema.OperatorCode{Builtin: op, Version: 1})
	if !ok {
		tb.Fatalf("no kernel for %s", op)
	}
	ctx := kernels.NewContext(quant.RoundingTFLite, threads)
	ctx.SplitThreshold = 0 // split even the small test nodes across threads
	n := &kernels.Node{Op: op, Version: 1, Options: opts, Inputs: inputs, Outputs: []*tensor.Tensor{out}}
	ctx.Preparing = true
	if err := k.Prepare(ctx, n); err != nil {
		tb.Fatal(err)
	}
	ctx.Preparing = false
	out.Data = kernels.AlignedBytes(out.ByteSize())
	return &prepared{k: k, ctx: ctx, n: n}
}

func (p *prepared) eval(tb testing.TB) {
	if err := p.k.Eval(p.ctx, p.n); err != nil {
		tb.Fatal(err)
	}
}

// convBench builds a CONV_2D or DEPTHWISE_CONV_2D node of the given
// geometry and dtype with random data.
func convBench(tb testing.TB, threads int, depthwise bool, dt tensor.DType, h, w, ic, oc, k, stride int) *prepared {
	r := rand.New(rand.NewPCG(1, 2))
	wShape := []int{oc, k, k, ic}
	dim := 0
	if depthwise {
		wShape, dim = []int{1, k, k, oc}, 3
	}
	kk := k * k * ic
	if depthwise {
		kk = k * k
	}
	d := makeQuant(r, dt, h*w*ic, tensor.NumElements(wShape), oc, kk, dim, dt == tensor.Int8 || dt == tensor.Int16, false)
	in := tensorOf(dt, []int{1, h, w, ic}, d.inQ, d.inData, false)
	wt := tensorOf(d.wType, wShape, d.wQ, d.wData, true)
	bias := tensorOf(d.biasType, []int{oc}, d.bQ, d.bias, true)
	oh, ow := (h+stride-1)/stride, (w+stride-1)/stride
	out := &tensor.Tensor{Name: "out", Type: dt, Shape: []int{1, oh, ow, oc}, Quant: d.outQ}
	var p *prepared
	if depthwise {
		p = prepare(tb, threads, schema.OpDepthwiseConv2D, &schema.DepthwiseConv2DOptions{Padding: schema.PaddingSame, StrideW: stride, StrideH: stride, DilationW: 1, DilationH: 1, Activation: quant.ActRelu6}, []*tensor.Tensor{in, wt, bias}, out)
		p.mac = int64(oh * ow * oc * k * k)
	} else {
		p = prepare(tb, threads, schema.OpConv2D, &schema.Conv2DOptions{Padding: schema.PaddingSame, StrideW: stride, StrideH: stride, DilationW: 1, DilationH: 1, Activation: quant.ActRelu6}, []*tensor.Tensor{in, wt, bias}, out)
		p.mac = int64(oh * ow * oc * k * k * ic)
	}
	return p
}

func fcBench(tb testing.TB, threads int, dt tensor.DType, rows, depth, units int) *prepared {
	r := rand.New(rand.NewPCG(3, 4))
	d := makeQuant(r, dt, rows*depth, units*depth, units, depth, 0, false, false)
	in := tensorOf(dt, []int{rows, depth}, d.inQ, d.inData, false)
	wt := tensorOf(d.wType, []int{units, depth}, d.wQ, d.wData, true)
	bias := tensorOf(d.biasType, []int{units}, d.bQ, d.bias, true)
	out := &tensor.Tensor{Name: "out", Type: dt, Shape: []int{rows, units}, Quant: d.outQ}
	p := prepare(tb, threads, schema.OpFullyConnected, &schema.FullyConnectedOptions{}, []*tensor.Tensor{in, wt, bias}, out)
	p.mac = int64(rows * depth * units)
	return p
}

func runBench(b *testing.B, p *prepared) {
	b.ReportAllocs()
	p.eval(b)
	b.ResetTimer()
	for b.Loop() {
		p.eval(b)
	}
	b.ReportMetric(float64(p.mac)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
}

// MobileNet-like layers: the 3x3 stride-2 stem at 224, a 3x3 conv, a 1x1
// (pointwise, no im2col) conv, depthwise 3x3 at 112 and a classifier FC.
func BenchmarkConv2DInt8_224(b *testing.B) {
	runBench(b, convBench(b, 1, false, tensor.Int8, 224, 224, 3, 32, 3, 2))
}
func BenchmarkConv2DInt8_3x3_56(b *testing.B) {
	runBench(b, convBench(b, 1, false, tensor.Int8, 56, 56, 64, 64, 3, 1))
}
func BenchmarkConv2DInt8_1x1_56(b *testing.B) {
	runBench(b, convBench(b, 1, false, tensor.Int8, 56, 56, 128, 128, 1, 1))
}
func BenchmarkConv2DInt8_1x1_56_Threads2(b *testing.B) {
	runBench(b, convBench(b, 2, false, tensor.Int8, 56, 56, 128, 128, 1, 1))
}
func BenchmarkConv2DUint8_1x1_56(b *testing.B) {
	runBench(b, convBench(b, 1, false, tensor.Uint8, 56, 56, 128, 128, 1, 1))
}
func BenchmarkConv2DFloat_1x1_56(b *testing.B) {
	runBench(b, convBench(b, 1, false, tensor.Float32, 56, 56, 128, 128, 1, 1))
}
func BenchmarkDepthwiseInt8_112(b *testing.B) {
	runBench(b, convBench(b, 1, true, tensor.Int8, 112, 112, 32, 32, 3, 1))
}
func BenchmarkDepthwiseUint8_112(b *testing.B) {
	runBench(b, convBench(b, 1, true, tensor.Uint8, 112, 112, 32, 32, 3, 1))
}
func BenchmarkDepthwiseFloat_112(b *testing.B) {
	runBench(b, convBench(b, 1, true, tensor.Float32, 112, 112, 32, 32, 3, 1))
}
func BenchmarkFullyConnectedInt8_1024x1000(b *testing.B) {
	runBench(b, fcBench(b, 1, tensor.Int8, 1, 1024, 1000))
}
func BenchmarkFullyConnectedFloat_1024x1000(b *testing.B) {
	runBench(b, fcBench(b, 1, tensor.Float32, 1, 1024, 1000))
}

// TestEvalAllocationFree asserts that single-threaded Eval of every kernel
// path allocates nothing.
func TestEvalAllocationFree(t *testing.T) {
	cases := map[string]*prepared{
		"conv int8":       convBench(t, 1, false, tensor.Int8, 9, 9, 3, 8, 3, 2),
		"conv int8 1x1":   convBench(t, 1, false, tensor.Int8, 9, 9, 8, 8, 1, 1),
		"conv uint8":      convBench(t, 1, false, tensor.Uint8, 9, 9, 3, 8, 3, 1),
		"conv int16":      convBench(t, 1, false, tensor.Int16, 9, 9, 3, 8, 3, 1),
		"conv float":      convBench(t, 1, false, tensor.Float32, 9, 9, 3, 8, 3, 1),
		"depthwise int8":  convBench(t, 1, true, tensor.Int8, 9, 9, 8, 8, 3, 1),
		"depthwise uint8": convBench(t, 1, true, tensor.Uint8, 9, 9, 8, 8, 3, 2),
		"depthwise int16": convBench(t, 1, true, tensor.Int16, 9, 9, 8, 8, 3, 1),
		"depthwise float": convBench(t, 1, true, tensor.Float32, 9, 9, 8, 16, 3, 1),
		"fc int8":         fcBench(t, 1, tensor.Int8, 2, 30, 20),
		"fc uint8":        fcBench(t, 1, tensor.Uint8, 2, 30, 20),
		"fc int16":        fcBench(t, 1, tensor.Int16, 2, 30, 20),
		"fc float":        fcBench(t, 1, tensor.Float32, 2, 30, 20),
		"bmm int8":        bmmNode(t, tensor.Int8, tensor.Int8),
		"bmm int16":       bmmNode(t, tensor.Int16, tensor.Int16),
		"bmm float":       bmmNode(t, tensor.Float32, tensor.Float32),
		"bmm hybrid":      bmmNode(t, tensor.Float32, tensor.Int8),
		"tconv int8":      tconvNode(t, tensor.Int8),
		"tconv float":     tconvNode(t, tensor.Float32),
	}
	for name, p := range cases {
		p.eval(t)
		if a := testing.AllocsPerRun(20, func() { p.eval(t) }); a != 0 {
			t.Errorf("%s: %v allocations per Eval, want 0", name, a)
		}
	}
}

func bmmNode(tb testing.TB, lt, rt tensor.DType) *prepared {
	qOf := func(dt tensor.DType) *tensor.Quantization {
		if dt == tensor.Float32 {
			return nil
		}
		return kerneltest.Q(0.05, 0)
	}
	r := rand.New(rand.NewPCG(5, 6))
	l := tensorOf(lt, []int{2, 3, 8}, qOf(lt), kerneltest.RandInt8(r, 2*3*8*4, -5, 5), false)
	rr := tensorOf(rt, []int{8, 4}, qOf(rt), kerneltest.RandInt8(r, 8*4*4, -5, 5), rt == tensor.Int8 && lt == tensor.Float32)
	out := &tensor.Tensor{Name: "out", Type: lt, Shape: []int{2, 3, 4}, Quant: qOf(lt)}
	return prepare(tb, 1, schema.OpBatchMatMul, &schema.BatchMatMulOptions{AdjX: false, AdjY: false}, []*tensor.Tensor{l, rr}, out)
}

func tconvNode(tb testing.TB, dt tensor.DType) *prepared {
	var qi, qw *tensor.Quantization
	bt := tensor.Float32
	if dt != tensor.Float32 {
		qi, qw, bt = kerneltest.Q(0.05, 1), kerneltest.Q(0.02, 0), tensor.Int32
	}
	r := rand.New(rand.NewPCG(7, 8))
	shape := tensorOf(tensor.Int32, []int{4}, nil, kerneltest.I32(1, 6, 6, 3), true)
	w := tensorOf(dt, []int{3, 3, 3, 2}, qw, kerneltest.RandInt8(r, 3*3*3*2*4, -5, 5), true)
	in := tensorOf(dt, []int{1, 3, 3, 2}, qi, kerneltest.RandInt8(r, 3*3*2*4, -5, 5), false)
	bias := tensorOf(bt, []int{3}, nil, kerneltest.RandInt8(r, 12, 0, 3), true)
	out := &tensor.Tensor{Name: "out", Type: dt, Shape: []int{1, 6, 6, 3}, Quant: kerneltest.Q(0.1, 0)}
	if dt == tensor.Float32 {
		out.Quant = nil
	}
	return prepare(tb, 1, schema.OpTransposeConv, &schema.TransposeConvOptions{Padding: schema.PaddingSame, StrideW: 2, StrideH: 2}, []*tensor.Tensor{shape, w, in, bias}, out)
}

// TestThreadsMatchSingle checks that splitting work across goroutines
// gives the same bytes as one thread, on sizes large enough to split.
func TestThreadsMatchSingle(t *testing.T) {
	build := map[string]func(threads int) *prepared{
		"conv int8":      func(th int) *prepared { return convBench(t, th, false, tensor.Int8, 17, 15, 6, 20, 3, 1) },
		"conv uint8 1x1": func(th int) *prepared { return convBench(t, th, false, tensor.Uint8, 17, 15, 16, 12, 1, 1) },
		// Few rows: split along output channels (qbChanSplit).
		"conv int8 7x7 1x1":    func(th int) *prepared { return convBench(t, th, false, tensor.Int8, 7, 7, 40, 150, 1, 1) },
		"conv uint8 7x7 1x1":   func(th int) *prepared { return convBench(t, th, false, tensor.Uint8, 7, 7, 40, 150, 1, 1) },
		"conv int8 one pixel":  func(th int) *prepared { return convBench(t, th, false, tensor.Int8, 1, 1, 72, 101, 1, 1) },
		"conv uint8 5x5 3x3":   func(th int) *prepared { return convBench(t, th, false, tensor.Uint8, 5, 5, 7, 90, 3, 1) },
		"conv int8 9x9 3x3 s2": func(th int) *prepared { return convBench(t, th, false, tensor.Int8, 9, 9, 5, 66, 3, 2) },
		"conv float":           func(th int) *prepared { return convBench(t, th, false, tensor.Float32, 17, 15, 6, 20, 3, 2) },
		"depthwise int8":       func(th int) *prepared { return convBench(t, th, true, tensor.Int8, 17, 15, 12, 12, 3, 1) },
		"depthwise float":      func(th int) *prepared { return convBench(t, th, true, tensor.Float32, 17, 15, 12, 24, 3, 1) },
		"fc int8":              func(th int) *prepared { return fcBench(t, th, tensor.Int8, 3, 40, 70) },
		"fc float":             func(th int) *prepared { return fcBench(t, th, tensor.Float32, 3, 40, 70) },
		"tconv int8":           func(th int) *prepared { return tconvWide(t, th, tensor.Int8) },
		"tconv float":          func(th int) *prepared { return tconvWide(t, th, tensor.Float32) },
	}
	for name, mk := range build {
		one, three := mk(1), mk(3)
		one.eval(t)
		three.eval(t)
		a, b := one.n.Outputs[0].Data, three.n.Outputs[0].Data
		if string(a) != string(b) {
			t.Errorf("%s: 3 threads differ from 1", name)
		}
	}
}

func tconvWide(tb testing.TB, threads int, dt tensor.DType) *prepared {
	var qi, qw, qo *tensor.Quantization
	bt := tensor.Float32
	if dt != tensor.Float32 {
		qi, qw, qo, bt = kerneltest.Q(0.05, 1), kerneltest.Q(0.02, 0), kerneltest.Q(0.1, 0), tensor.Int32
	}
	r := rand.New(rand.NewPCG(9, 10))
	oc := 30
	shape := tensorOf(tensor.Int32, []int{4}, nil, kerneltest.I32(1, 8, 8, int32(oc)), true)
	w := tensorOf(dt, []int{oc, 3, 3, 2}, qw, kerneltest.RandInt8(r, oc*3*3*2*4, -5, 5), true)
	in := tensorOf(dt, []int{1, 4, 4, 2}, qi, kerneltest.RandInt8(r, 4*4*2*4, -5, 5), false)
	if dt == tensor.Float32 {
		w = tensorOf(dt, []int{oc, 3, 3, 2}, nil, kerneltest.RandF32(r, oc*3*3*2, -1, 1), true)
		in = tensorOf(dt, []int{1, 4, 4, 2}, nil, kerneltest.RandF32(r, 4*4*2, -1, 1), false)
	}
	bias := tensorOf(bt, []int{oc}, nil, kerneltest.RandInt8(r, oc*4, 0, 3), true)
	out := &tensor.Tensor{Name: "out", Type: dt, Shape: []int{1, 8, 8, oc}, Quant: qo}
	return prepare(tb, threads, schema.OpTransposeConv, &schema.TransposeConvOptions{Padding: schema.PaddingSame, StrideW: 2, StrideH: 2}, []*tensor.Tensor{shape, w, in, bias}, out)
}

// MobileNet v2's expansion layer at 56x56 (1x1, 24 -> 144 channels,
// uint8) and its first layer (3x3 stride 2 on RGB), on one and two
// threads: what splitting them gains alone.
func BenchmarkConv2DUint8_Expand56(b *testing.B) {
	for _, threads := range []int{1, 2} {
		b.Run(map[int]string{1: "threads=1", 2: "threads=2"}[threads], func(b *testing.B) {
			runBench(b, convBench(b, threads, false, tensor.Uint8, 56, 56, 24, 144, 1, 1))
		})
	}
}
func BenchmarkConv2DUint8_Stem224(b *testing.B) {
	for _, threads := range []int{1, 2} {
		b.Run(map[int]string{1: "threads=1", 2: "threads=2"}[threads], func(b *testing.B) {
			runBench(b, convBench(b, threads, false, tensor.Uint8, 224, 224, 3, 32, 3, 2))
		})
	}
}

// BenchmarkThreadShare runs MobileNet v2-like layers (uint8) repeatedly
// on one and two threads and reports the fastest Eval (min-us) and the
// share of the chunks the second thread ran (worker-share): a layer the
// second thread cannot help with shows a share well under 0.5 even when
// it polls for the job (back-to-back Evals). The pair variant is the
// layer's ceiling: two independent one-thread copies on two goroutines.
func BenchmarkThreadShare(b *testing.B) {
	layers := []struct {
		name                string
		depthwise           bool
		h, w, ic, oc, k, st int
	}{
		{"expand56", false, 56, 56, 24, 144, 1, 1},
		{"project56", false, 56, 56, 144, 24, 1, 1},
		{"depthwise56", true, 56, 56, 144, 144, 3, 1},
		{"expand28", false, 28, 28, 32, 192, 1, 1},
		{"expand7", false, 7, 7, 160, 960, 1, 1},
		{"project7", false, 7, 7, 960, 160, 1, 1},
		{"head7", false, 7, 7, 320, 1280, 1, 1},
	}
	for _, l := range layers {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads=%d", l.name, threads), func(b *testing.B) {
				p := convBench(b, threads, l.depthwise, tensor.Uint8, l.h, l.w, l.ic, l.oc, l.k, l.st)
				p.eval(b)
				c0, c1 := p.ctx.ChunksRun(0), p.ctx.ChunksRun(1)
				best := time.Duration(math.MaxInt64)
				for b.Loop() {
					start := time.Now()
					p.eval(b)
					best = min(best, time.Since(start))
				}
				b.ReportMetric(float64(best.Nanoseconds())/1e3, "min-us")
				if n := p.ctx.ChunksRun(0) - c0 + p.ctx.ChunksRun(1) - c1; n > 0 {
					b.ReportMetric(float64(p.ctx.ChunksRun(1)-c1)/float64(n), "worker-share")
				}
			})
		}
		// The layer's ceiling: two one-thread copies on two goroutines,
		// each Eval once per round; min-us is the fastest round, so
		// twice the one-thread min-us over it is what two cores gain
		// on this layer with no data shared between them. The partner
		// polls for its turn (a parked goroutine takes tens of
		// microseconds to wake, as long as a layer).
		b.Run(l.name+"/pair", func(b *testing.B) {
			p := convBench(b, 1, l.depthwise, tensor.Uint8, l.h, l.w, l.ic, l.oc, l.k, l.st)
			q := convBench(b, 1, l.depthwise, tensor.Uint8, l.h, l.w, l.ic, l.oc, l.k, l.st)
			p.eval(b)
			q.eval(b)
			var turn, done atomic.Int64
			go func() {
				for i := int64(1); ; i++ {
					for t := turn.Load(); t < i; t = turn.Load() {
						if t < 0 {
							return
						}
						runtime.Gosched()
					}
					q.eval(b)
					done.Store(i)
				}
			}()
			defer turn.Store(-1 << 62)
			best := time.Duration(math.MaxInt64)
			for i := int64(1); b.Loop(); i++ {
				t := time.Now()
				turn.Store(i)
				p.eval(b)
				for done.Load() < i {
					runtime.Gosched()
				}
				best = min(best, time.Since(t))
			}
			b.ReportMetric(float64(best.Nanoseconds())/1e3, "min-us")
		})
	}
}

// BenchmarkMobileNetGemmPaths runs the two MobileNet v2 conformance
// models on one and two threads with the byte GEMM (AVX-512 VNNI or
// AVX-VNNI, NEON dot product) and with the 16-bit GEMM that x86 CPUs
// without any VNNI (AMD Zen 2/3, older Intel) and arm64 CPUs without the
// dot product (Cortex-A72: Raspberry Pi 4) use. Run it with
// GODEBUG=cpu.avx512f=off as well to see an AVX2 machine.
func BenchmarkMobileNetGemmPaths(b *testing.B) {
	for _, name := range []string{"mobilenet_v2_1.0_224_quant", "tf2_mobilenet_v2_1.0_224_ptq"} {
		for _, path := range []string{"byte", "16bit", "byte/2threads", "16bit/2threads"} {
			b.Run(name+"/"+path, func(b *testing.B) {
				if strings.HasPrefix(path, "16bit") {
					defer conv.DisableByteGemm()()
				}
				threads := 1
				if strings.HasSuffix(path, "2threads") {
					threads = 2
				}
				ip := conformanceInterpreter(b, name, threads)
				if err := ip.Invoke(); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for b.Loop() {
					if err := ip.Invoke(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// conformanceInterpreter loads testdata/conformance/<name> on threads
// threads with its first case's inputs set.
func conformanceInterpreter(b *testing.B, name string, threads int) *inference.Interpreter {
	b.Helper()
	dir := filepath.Join("..", "..", "..", "testdata", "conformance", name)
	m, err := inference.LoadFile(filepath.Join(dir, "model.tflite"))
	if err != nil {
		b.Fatal(err)
	}
	ip, err := inference.NewInterpreter(m, inference.WithThreads(threads))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ip.Close() })
	for i := range ip.NumInputs() {
		data, err := os.ReadFile(filepath.Join(dir, "case_0", fmt.Sprintf("input_%d.bin", i)))
		if err != nil {
			b.Fatal(err)
		}
		if err := ip.SetInput(i, data); err != nil {
			b.Fatal(err)
		}
	}
	return ip
}
