//go:build goexperiment.simd && arm64 && !purego

package conv

import (
	"fmt"
	"math"
	"math/rand/v2"
	"syscall"
	"testing"
	"unsafe"
)

// guardedBytes returns n bytes that end right before an inaccessible
// page, so a kernel reading past them faults, and a function unmapping
// them.
func guardedBytes(t *testing.T, n int) ([]byte, func()) {
	t.Helper()
	page := syscall.Getpagesize()
	size := (n+page-1)/page*page + page
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mprotect(mem[size-page:], syscall.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	return mem[size-page-n : size-page : size-page], func() { syscall.Munmap(mem) }
}

// dwPixelOffsets are input offsets for TestDepthwisePixelNEON: the
// 8-bit zero points' range, the bounds of the int16 path (dwOff16Max)
// and past them (left to the scalar loop), up to the int32 limits.
var dwPixelOffsets = []int32{0, 1, -1, 127, -127, 128, -128, 255, -255,
	dwOff16Max, -dwOff16Max, dwOff16Max + 1, -dwOff16Max - 1, 40000, -40000,
	math.MaxInt32, math.MinInt32}

// TestDepthwisePixelNEON calls dwPixelNEON directly with random tap
// offsets, every channel count from 1 to 200 (blocks of 32, 16 and 8
// and remainders), extreme inputs, filter values and offsets, and
// compares its accumulators with the scalar loop's wrapping int32 sums.
// It also checks the channel count it returns (multiples of 8, or 16 on
// the int32 fallback), that it writes nothing past them nor past acc,
// and, with the input ending at an inaccessible page, that it reads
// nothing past the last tap's channels.
func TestDepthwisePixelNEON(t *testing.T) {
	t.Run("int8", func(t *testing.T) { testDWPixelNEON[int8](t, []int8{-128, 127}) })
	t.Run("uint8", func(t *testing.T) { testDWPixelNEON[uint8](t, []uint8{0, 255}) })
}

func testDWPixelNEON[T int8 | uint8](t *testing.T, ends []T) {
	r := rand.New(rand.NewPCG(3, 5))
	const maxTaps, maxC = 12, 200
	xb, unmap := guardedBytes(t, 4096)
	defer unmap()
	x := unsafe.Slice((*T)(unsafe.Pointer(&xb[0])), len(xb))
	w := make([]int32, maxTaps*maxC)
	bias := make([]int32, maxC)
	accBuf := make([]int32, maxC+8)
	for n := 1; n <= maxC; n++ {
		for rep := 0; rep < 3; rep++ {
			// Data: inputs at the ends (mixed, all low, all high) or
			// random; filters small (|w| <= 255, as packed), at the
			// int32 ends, or random full-range; biases near the limits.
			mode := (n + rep) % 4
			for i := range x {
				switch mode {
				case 0:
					x[i] = ends[r.IntN(2)]
				case 1, 2:
					x[i] = ends[mode-1]
				default:
					x[i] = T(r.Uint32())
				}
			}
			for i := range w {
				switch (n + 2*rep) % 3 {
				case 0:
					w[i] = []int32{-255, 255, -128, 127}[r.IntN(4)]
				case 1:
					w[i] = []int32{math.MinInt32, math.MaxInt32, -1}[r.IntN(3)]
				default:
					w[i] = int32(r.Uint32())
				}
			}
			for i := range bias {
				bias[i] = []int32{math.MinInt32, math.MaxInt32, int32(r.Uint32())}[r.IntN(3)]
			}
			taps := r.IntN(maxTaps + 1)
			xo, wo := make([]int, taps), make([]int, taps)
			for k := range xo {
				xo[k] = r.IntN(len(x) - n + 1)
				wo[k] = r.IntN(maxTaps) * maxC
			}
			if taps > 0 && rep == 0 {
				xo[taps-1] = len(x) - n // the last channel at the guard page
			}
			off := dwPixelOffsets[(n*3+rep)%len(dwPixelOffsets)]
			const guard = 0x5a5a5a5a
			for i := range accBuf {
				accBuf[i] = guard
			}
			acc := accBuf[:n]
			done := dwPixelNEON(acc, bias, x, w, xo, wo, off)
			want := n &^ 7
			if off < -dwOff16Max || off > dwOff16Max {
				want = 0
			}
			if taps == 0 {
				want = 0
			}
			if done != want {
				t.Fatalf("n %d, %d taps, offset %d: did %d channels, want %d", n, taps, off, done, want)
			}
			for c := range done {
				a := bias[c]
				for k := range xo {
					a += (int32(x[xo[k]+c]) + off) * w[wo[k]+c]
				}
				if acc[c] != a {
					t.Fatalf("n %d, %d taps, offset %d, mode %d: channel %d: got %d, want %d", n, taps, off, mode, c, acc[c], a)
				}
			}
			for c := done; c < len(accBuf); c++ {
				if accBuf[c] != guard {
					t.Fatalf("n %d, %d taps, offset %d: did %d channels but wrote element %d", n, taps, off, done, c)
				}
			}
		}
	}
}

// BenchmarkDepthwisePixelNEON times one interior 3x3 pixel of c channels
// on dwPixelNEON.
func BenchmarkDepthwisePixelNEON(b *testing.B) {
	for _, c := range []int{32, 96, 144} {
		const taps = 9
		x := make([]uint8, 3*3*c)
		w := make([]int32, taps*c)
		bias, acc := make([]int32, c), make([]int32, c)
		xo, wo := make([]int, taps), make([]int, taps)
		for t := range taps {
			xo[t], wo[t] = t*c, t*c
		}
		for i := range x {
			x[i] = uint8(i * 7)
		}
		for i := range w {
			w[i] = int32(i%511) - 255
		}
		b.Run(fmt.Sprintf("c%d", c), func(b *testing.B) {
			for b.Loop() {
				dwPixelNEON(acc, bias, x, w, xo, wo, -128)
			}
		})
	}
}
