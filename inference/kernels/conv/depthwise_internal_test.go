package conv

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/quant"
)

// dwCase is one DEPTHWISE_CONV_2D geometry for the vector/portable
// comparison.
type dwCase struct {
	dt                 tensor.DType
	batch, h, w, c     int
	kh, kw             int
	stride, dil        int
	pad                schema.Padding
	inZP, wZP, perChan bool
	mult               int // depth multiplier (0: 1)
}

func (tc dwCase) String() string {
	return fmt.Sprintf("%s_b%d_%dx%dx%d_k%dx%d_s%d_d%d_pad%d_zp%v%v_pc%v_m%d", tc.dt, tc.batch, tc.h, tc.w, tc.c, tc.kh, tc.kw, tc.stride, tc.dil, tc.pad, tc.inZP, tc.wZP, tc.perChan, tc.mult)
}

// build returns a prepared node with random full-range data (seeded).
func (tc dwCase) build(t *testing.T, seed uint64, threads int) (*kernels.Context, *kernels.Node) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	mult := max(tc.mult, 1)
	outC := tc.c * mult
	mk := func(dt tensor.DType, shape []int, q *tensor.Quantization, constant bool) *tensor.Tensor {
		x := &tensor.Tensor{Name: "t", Type: dt, Shape: shape, Quant: q}
		x.Data = kernels.AlignedBytes(x.ByteSize())
		switch dt {
		case tensor.Float32:
			f := x.Float32s()
			for i := range f {
				f[i] = r.Float32()*4 - 2
			}
		case tensor.Int32:
			v := x.Int32s()
			for i := range v {
				v[i] = r.Int32N(40001) - 20000
			}
		default:
			for i := range x.Data {
				x.Data[i] = byte(r.UintN(256))
			}
		}
		if constant {
			x.Alloc, x.KnownAtPrepare = tensor.ConstantAlloc, true
		}
		return x
	}
	q := func(scale float32, zp int64) *tensor.Quantization {
		if tc.dt == tensor.Float32 {
			return nil
		}
		return &tensor.Quantization{Scale: []float32{scale}, ZeroPoint: []int64{zp}}
	}
	inZP, wZP := int64(0), int64(0)
	if tc.inZP {
		inZP = map[tensor.DType]int64{tensor.Int8: -128, tensor.Uint8: 255}[tc.dt]
		if r.IntN(2) == 0 {
			inZP = map[tensor.DType]int64{tensor.Int8: 127, tensor.Uint8: 0}[tc.dt]
		}
	}
	if tc.wZP && tc.dt == tensor.Uint8 {
		wZP = 255 // filter values minus their zero point reach -255
	}
	wq := q(0.01, wZP)
	if tc.perChan && tc.dt == tensor.Int8 {
		wq = &tensor.Quantization{Dim: 3}
		for c := 0; c < outC; c++ {
			wq.Scale = append(wq.Scale, 0.002+0.01*r.Float32())
			wq.ZeroPoint = append(wq.ZeroPoint, 0)
		}
	}
	biasT := tensor.Int32
	if tc.dt == tensor.Float32 {
		biasT = tensor.Float32
	}
	in := mk(tc.dt, []int{tc.batch, tc.h, tc.w, tc.c}, q(0.05, inZP), false)
	filter := mk(tc.dt, []int{1, tc.kh, tc.kw, outC}, wq, true)
	bias := mk(biasT, []int{outC}, nil, true)
	out := &tensor.Tensor{Name: "out", Type: tc.dt, Quant: q(0.3, 3)}
	opts := &schema.DepthwiseConv2DOptions{Padding: tc.pad, StrideW: tc.stride, StrideH: tc.stride, DilationW: tc.dil, DilationH: tc.dil, DepthMultiplier: mult, Activation: quant.ActRelu6}
	ctx := kernels.NewContext(quant.RoundingTFLite, threads)
	ctx.SplitThreshold = 0
	n := &kernels.Node{Op: schema.OpDepthwiseConv2D, Version: 1, Options: opts, Inputs: []*tensor.Tensor{in, filter, bias}, Outputs: []*tensor.Tensor{out}}
	ctx.Preparing = true
	if err := prepareDepthwise(ctx, n); err != nil {
		t.Fatal(err)
	}
	ctx.Preparing = false
	out.Data = kernels.AlignedBytes(out.ByteSize())
	return ctx, n
}

func dwCases() []dwCase {
	var cases []dwCase
	for _, dt := range []tensor.DType{tensor.Int8, tensor.Uint8, tensor.Float32} {
		for _, c := range []int{1, 8, 15, 16, 17, 24, 32, 40, 56, 96} {
			cases = append(cases,
				dwCase{dt: dt, batch: 1, h: 7, w: 9, c: c, kh: 3, kw: 3, stride: 1, dil: 1, pad: schema.PaddingSame, inZP: true, wZP: true},
				dwCase{dt: dt, batch: 2, h: 8, w: 6, c: c, kh: 3, kw: 3, stride: 2, dil: 1, pad: schema.PaddingSame, perChan: true},
				dwCase{dt: dt, batch: 1, h: 9, w: 9, c: c, kh: 5, kw: 3, stride: 1, dil: 2, pad: schema.PaddingValid, inZP: true},
				dwCase{dt: dt, batch: 1, h: 5, w: 5, c: c, kh: 1, kw: 1, stride: 1, dil: 1, pad: schema.PaddingValid, wZP: true},
			)
		}
	}
	// Wide enough for long runs of interior pixels in one row, past a
	// tile of accumulators, on the whole-32-channel-block assembly path.
	for _, dt := range []tensor.DType{tensor.Int8, tensor.Uint8} {
		cases = append(cases,
			dwCase{dt: dt, batch: 1, h: 20, w: 37, c: 64, kh: 3, kw: 3, stride: 1, dil: 1, pad: schema.PaddingSame, inZP: true, perChan: true},
			dwCase{dt: dt, batch: 2, h: 21, w: 30, c: 128, kh: 3, kw: 3, stride: 2, dil: 1, pad: schema.PaddingSame, wZP: true},
			dwCase{dt: dt, batch: 1, h: 16, w: 40, c: 32, kh: 5, kw: 5, stride: 1, dil: 1, pad: schema.PaddingValid, inZP: true},
			dwCase{dt: dt, batch: 1, h: 19, w: 22, c: 144, kh: 3, kw: 3, stride: 1, dil: 1, pad: schema.PaddingSame, perChan: true},
			dwCase{dt: dt, batch: 1, h: 17, w: 26, c: 48, kh: 3, kw: 3, stride: 2, dil: 1, pad: schema.PaddingSame, inZP: true},
			dwCase{dt: dt, batch: 1, h: 12, w: 30, c: 16, kh: 3, kw: 3, stride: 2, dil: 1, pad: schema.PaddingValid, wZP: true},
		)
	}
	for _, dt := range []tensor.DType{tensor.Int8, tensor.Uint8} {
		for _, cm := range [][2]int{{1, 8}, {1, 3}, {2, 8}, {3, 2}, {5, 7}} {
			cases = append(cases,
				dwCase{dt: dt, batch: 1, h: 9, w: 8, c: cm[0], mult: cm[1], kh: 3, kw: 3, stride: 2, dil: 1, pad: schema.PaddingSame, inZP: true, wZP: true, perChan: true},
				dwCase{dt: dt, batch: 2, h: 6, w: 7, c: cm[0], mult: cm[1], kh: 3, kw: 2, stride: 1, dil: 2, pad: schema.PaddingValid},
			)
		}
	}
	return cases
}

// TestDepthwiseVectorMatchesPortable runs every case with the
// architecture's vector kernels and with the portable loops (the function
// variables cleared) and requires the same bytes (float32: values within
// 1e-5, as the compiler may fuse the portable loop's multiply-adds on
// arm64). Under
// -tags purego or without GOEXPERIMENT=simd both runs are portable.
func TestDepthwiseVectorMatchesPortable(t *testing.T) {
	if dwPixelI8 == nil {
		t.Log("no vector depthwise kernels in this build: comparing the portable path with itself")
	}
	for i, tc := range dwCases() {
		t.Run(tc.String(), func(t *testing.T) {
			for _, threads := range []int{1, 2} {
				ctx, n := tc.build(t, uint64(i), threads)
				if err := evalDepthwise(ctx, n); err != nil {
					t.Fatal(err)
				}
				vec := append([]byte(nil), n.Outputs[0].Data...)
				i8, u8, f32 := dwPixelI8, dwPixelU8, dwPixelF32
				dwPixelI8, dwPixelU8, dwPixelF32 = nil, nil, nil
				d := n.Data.(*dwData)
				rv, pw, mv, cv := d.rv, d.pairW, d.multVec, d.conv
				// Scalar requantization, no paired taps, no expanded rows,
				// no byte GEMM.
				d.rv, d.pairW, d.multVec, d.conv = nil, nil, false, nil
				clear(n.Outputs[0].Data)
				err := evalDepthwise(ctx, n)
				dwPixelI8, dwPixelU8, dwPixelF32 = i8, u8, f32
				d.rv, d.pairW, d.multVec, d.conv = rv, pw, mv, cv
				ctx.Close()
				if err != nil {
					t.Fatal(err)
				}
				port := n.Outputs[0].Data
				if tc.dt != tensor.Float32 {
					if string(vec) != string(port) {
						t.Fatalf("threads %d: vector and portable outputs differ", threads)
					}
					continue
				}
				a, b := tensor.View[float32](vec), tensor.View[float32](port)
				for k := range a {
					if d := math.Abs(float64(a[k] - b[k])); d > 1e-5*math.Max(1, math.Abs(float64(b[k]))) {
						t.Fatalf("threads %d: element %d: vector %v, portable %v", threads, k, a[k], b[k])
					}
				}
			}
		})
	}
}

// BenchmarkDepthwise measures MobileNet v2's largest depthwise layers
// (uint8 and int8, 3x3) on the vector and portable paths.
func BenchmarkDepthwise(b *testing.B) {
	for _, tc := range []dwCase{
		{dt: tensor.Uint8, batch: 1, h: 112, w: 112, c: 96, kh: 3, kw: 3, stride: 2, dil: 1, pad: schema.PaddingSame, inZP: true},
		{dt: tensor.Int8, batch: 1, h: 56, w: 56, c: 144, kh: 3, kw: 3, stride: 1, dil: 1, pad: schema.PaddingSame, perChan: true},
		{dt: tensor.Float32, batch: 1, h: 56, w: 56, c: 144, kh: 3, kw: 3, stride: 1, dil: 1, pad: schema.PaddingSame},
	} {
		for _, vector := range []bool{true, false} {
			b.Run(fmt.Sprintf("%s/vector=%v", tc.dt, vector), func(b *testing.B) {
				t := &testing.T{}
				ctx, n := tc.build(t, 1, 1)
				defer ctx.Close()
				i8, u8, f32 := dwPixelI8, dwPixelU8, dwPixelF32
				if !vector {
					dwPixelI8, dwPixelU8, dwPixelF32 = nil, nil, nil
					n.Data.(*dwData).rv = nil
				}
				defer func() { dwPixelI8, dwPixelU8, dwPixelF32 = i8, u8, f32 }()
				cpu0 := cpuTime()
				for b.Loop() {
					if err := evalDepthwise(ctx, n); err != nil {
						b.Fatal(err)
					}
				}
				// CPU time is steadier than wall time on a shared machine.
				b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
			})
		}
	}
}

// cpuTime is the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestPerWorkerSeparate checks that perWorker's slices (the depthwise
// tap rows and offsets, the channel-split flags) keep every two workers'
// values at least a cache line apart, whatever the element size, and
// that a slice cannot grow into the next worker's.
func TestPerWorkerSeparate(t *testing.T) {
	check := func(name string, workers, n, size int, addr func(w, i int) uintptr, capOf func(w int) int) {
		t.Helper()
		for w := 0; w+1 < workers; w++ {
			end := addr(w, n-1) + uintptr(size)
			next := addr(w+1, 0)
			if next < end+64 {
				t.Errorf("%s workers %d n %d: worker %d ends at %#x, worker %d starts at %#x (< 64 bytes apart)", name, workers, n, w, end, w+1, next)
			}
			if c := capOf(w); c != n {
				t.Errorf("%s: worker %d capacity %d, want %d", name, w, c, n)
			}
		}
	}
	for _, workers := range []int{1, 2, 3, 8} {
		for _, n := range []int{1, 5, 10, 18, 64} {
			s8 := perWorker[[]byte](workers, n)
			check("[]byte", workers, n, int(unsafe.Sizeof(s8[0][0])), func(w, i int) uintptr { return uintptr(unsafe.Pointer(&s8[w][i])) }, func(w int) int { return cap(s8[w]) })
			si := perWorker[int](workers, n)
			check("int", workers, n, int(unsafe.Sizeof(si[0][0])), func(w, i int) uintptr { return uintptr(unsafe.Pointer(&si[w][i])) }, func(w int) int { return cap(si[w]) })
			su := perWorker[uint32](workers, n)
			check("uint32", workers, n, 4, func(w, i int) uintptr { return uintptr(unsafe.Pointer(&su[w][i])) }, func(w int) int { return cap(su[w]) })
		}
	}
}

// dwExtremeCases are the geometries of TestDepthwisePixelKernelsExact:
// 8-bit channel counts around the vector kernels' blocks (8, 16, 32 and
// their sums, and counts with a scalar remainder), strides 1 and 2, SAME
// and VALID padding (edge and interior pixels), dilation, batch 2, and
// depth multipliers (the expanded-row path).
func dwExtremeCases() []dwCase {
	var cases []dwCase
	for _, dt := range []tensor.DType{tensor.Int8, tensor.Uint8} {
		for _, c := range []int{8, 16, 17, 24, 32, 40, 48, 64, 144} {
			cases = append(cases,
				dwCase{dt: dt, batch: 2, h: 6, w: 7, c: c, kh: 3, kw: 3, stride: 1, dil: 1, pad: schema.PaddingSame},
				dwCase{dt: dt, batch: 1, h: 7, w: 8, c: c, kh: 3, kw: 3, stride: 2, dil: 1, pad: schema.PaddingSame, perChan: true},
				dwCase{dt: dt, batch: 2, h: 8, w: 7, c: c, kh: 3, kw: 3, stride: 2, dil: 1, pad: schema.PaddingValid},
				dwCase{dt: dt, batch: 1, h: 9, w: 8, c: c, kh: 5, kw: 3, stride: 1, dil: 2, pad: schema.PaddingValid},
			)
		}
		for _, cm := range [][2]int{{2, 8}, {3, 16}, {1, 48}} {
			cases = append(cases, dwCase{dt: dt, batch: 2, h: 6, w: 6, c: cm[0], mult: cm[1], kh: 3, kw: 3, stride: 1, dil: 1, pad: schema.PaddingSame})
		}
	}
	return cases
}

// dwPixelChecked wraps a vector pixel kernel (dwPixelI8/dwPixelU8): every
// call's accumulators are compared with the scalar loop's wrapping int32
// sums, the channels past the returned count must be left alone, and
// calls and channels count what the kernel did.
func dwPixelChecked[T int8 | uint8](t *testing.T, kernel func(acc, bias []int32, x []T, w []int32, xo, wo []int, off int32) int, calls, channels *atomic.Int64) func(acc, bias []int32, x []T, w []int32, xo, wo []int, off int32) int {
	return func(acc, bias []int32, x []T, w []int32, xo, wo []int, off int32) int {
		before := append([]int32(nil), acc...)
		done := kernel(acc, bias, x, w, xo, wo, off)
		if done < 0 || done > len(acc) {
			t.Errorf("pixel kernel did %d of %d channels", done, len(acc))
			return 0
		}
		for c := range done {
			a := bias[c]
			for k := range xo {
				a += (int32(x[xo[k]+c]) + off) * w[wo[k]+c]
			}
			if acc[c] != a {
				t.Errorf("channel %d of %d (%d taps, offset %d): vector sum %d, scalar %d", c, len(acc), len(xo), off, acc[c], a)
				break
			}
		}
		for c := done; c < len(acc); c++ {
			if acc[c] != before[c] {
				t.Errorf("pixel kernel returned %d but wrote channel %d", done, c)
				break
			}
		}
		calls.Add(1)
		channels.Add(int64(done))
		return done
	}
}

// TestDepthwisePixelKernelsExact runs the vector pixel kernels on
// extreme 8-bit data: inputs at their type's ends (0/255, -128/127:
// mixed, or all at one end), input zero points at the ends, filter values
// at the ends (uint8 filters with zero point 0 or 255, so values minus
// the zero point reach +-255), and biases near the int32 limits so the
// sums wrap. Each kernel call is checked against the scalar sums
// (dwPixelChecked: exact accumulators, which the saturated output bytes
// would hide), and the outputs against the portable loops'.
func TestDepthwisePixelKernelsExact(t *testing.T) {
	if dwPixelI8 == nil || dwPixelU8 == nil {
		t.Skip("no vector 8-bit depthwise kernels in this build")
	}
	ends := map[tensor.DType][2]byte{tensor.Int8: {0x80, 0x7f}, tensor.Uint8: {0, 255}}
	for i, tc := range dwExtremeCases() {
		t.Run(tc.String(), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(i), 11))
			// fill sets b to the type's ends: mixed (pattern 0), all
			// low (1) or all high (2).
			fill := func(b []byte, pattern int) {
				for k := range b {
					switch pattern {
					case 0:
						b[k] = ends[tc.dt][r.IntN(2)]
					default:
						b[k] = ends[tc.dt][pattern-1]
					}
				}
			}
			for _, threads := range []int{1, 2} {
				ctx, n := tc.build(t, uint64(i), threads)
				in, filter, bias := n.Inputs[0], n.Inputs[1], n.Input(2)
				fill(in.Data, (i+threads)%3)
				fill(filter.Data, (i/3+threads)%3)
				in.Quant.ZeroPoint[0] = map[tensor.DType][2]int64{tensor.Int8: {-128, 127}, tensor.Uint8: {0, 255}}[tc.dt][(i+threads)%2]
				if tc.dt == tensor.Uint8 {
					filter.Quant.ZeroPoint[0] = []int64{0, 255}[(i/2+threads)%2]
				}
				for k, v := range []int32{math.MaxInt32, math.MinInt32, math.MaxInt32 - 70000, math.MinInt32 + 70000} {
					bs := bias.Int32s()
					bs[(k*7)%len(bs)] = v
				}
				// Prepare again: the filter, zero points and bias are
				// packed there.
				ctx.Preparing = true
				if err := prepareDepthwise(ctx, n); err != nil {
					t.Fatal(err)
				}
				ctx.Preparing = false
				var calls, channels atomic.Int64
				i8, u8 := dwPixelI8, dwPixelU8
				dwPixelI8 = dwPixelChecked(t, i8, &calls, &channels)
				dwPixelU8 = dwPixelChecked(t, u8, &calls, &channels)
				err := evalDepthwise(ctx, n)
				dwPixelI8, dwPixelU8 = i8, u8
				if err != nil {
					t.Fatal(err)
				}
				vec := append([]byte(nil), n.Outputs[0].Data...)
				d := n.Data.(*dwData)
				if calls.Load() == 0 && d.pairW == nil && d.conv == nil {
					t.Errorf("threads %d: the vector pixel kernel was not called", threads)
				}
				if d.pairW == nil && d.conv == nil && d.outC >= 8 && channels.Load() == 0 {
					t.Errorf("threads %d: the vector pixel kernel did no channels", threads)
				}
				dwPixelI8, dwPixelU8 = nil, nil
				rv, pw, mv, cv := d.rv, d.pairW, d.multVec, d.conv
				d.rv, d.pairW, d.multVec, d.conv = nil, nil, false, nil
				clear(n.Outputs[0].Data)
				err = evalDepthwise(ctx, n)
				dwPixelI8, dwPixelU8 = i8, u8
				d.rv, d.pairW, d.multVec, d.conv = rv, pw, mv, cv
				ctx.Close()
				if err != nil {
					t.Fatal(err)
				}
				if string(vec) != string(n.Outputs[0].Data) {
					t.Fatalf("threads %d: vector and portable outputs differ", threads)
				}
			}
		})
	}
}
