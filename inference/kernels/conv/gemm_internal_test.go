package conv

import (
	"math/rand/v2"
	"testing"
)

// TestGemmPackedMatchesPlain checks the channel-pair packed GEMM against
// the plain one on odd sizes, extreme values and negative sums.
func TestGemmPackedMatchesPlain(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, sz := range [][3]int{{1, 1, 1}, {3, 5, 7}, {2, 4, 16}, {5, 3, 1000}, {4, 9, 131}} {
		m, n, k := sz[0], sz[1], sz[2]
		a := make([]int8, m*k)
		w := make([]int8, n*k)
		for i := range a {
			a[i] = int8(r.IntN(256) - 128)
		}
		for i := range w {
			w[i] = int8(r.IntN(256) - 128)
		}
		if k == 1000 {
			for i := range a {
				a[i] = -128
			}
			for i := range w {
				w[i] = -128
			}
		}
		bias := make([]int32, n)
		for i := range bias {
			bias[i] = int32(r.IntN(2001) - 1000)
		}
		want := make([]int32, m*n)
		got := make([]int32, m*n)
		wp := make([]int64, (n+1)/2*k)
		packPairs(wp, w, n, k)
		gemmInt(a, w, bias, want, m, n, k, n)
		gemmPacked(a, wp, bias, got, m, n, k, n)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%v: element %d = %d, want %d", sz, i, got[i], want[i])
			}
		}
	}
}

// BenchmarkGemmInt8 compares the plain and packed 8-bit GEMMs on a
// 64x128x128 block (one conv tile).
func BenchmarkGemmInt8(b *testing.B) {
	m, n, k := 64, 128, 128
	a := make([]int8, m*k)
	w := make([]int8, n*k)
	for i := range a {
		a[i] = int8(i * 7)
	}
	for i := range w {
		w[i] = int8(i * 13)
	}
	bias := make([]int32, n)
	acc := make([]int32, m*n)
	wp := make([]int64, (n+1)/2*k)
	packPairs(wp, w, n, k)
	b.Run("plain", func(b *testing.B) {
		for b.Loop() {
			gemmInt(a, w, bias, acc, m, n, k, n)
		}
		b.ReportMetric(float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
	})
	b.Run("packed", func(b *testing.B) {
		for b.Loop() {
			gemmPacked(a, wp, bias, acc, m, n, k, n)
		}
		b.ReportMetric(float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
	})
}

// TestQ16GemmMatchesPlain checks the SIMD GEMM (when this build and CPU
// have one) against the scalar one on odd sizes, extreme values, int8 and
// uint8 activations (the latter with zero-point offset weights).
func TestQ16GemmMatchesPlain(t *testing.T) {
	if qgemmKernel == nil {
		t.Skip("no SIMD GEMM in this build")
	}
	r := rand.New(rand.NewPCG(9, 10))
	sizes := [][3]int{{1, 1, 1}, {3, 5, 7}, {4, 16, 2}, {5, 17, 27}, {9, 33, 131}, {1, 1000, 64}, {8, 48, 1000}, {7, 3, 0}}
	for _, sz := range sizes {
		m, n, k := sz[0], sz[1], sz[2]
		for _, extreme := range []bool{false, true} {
			a8 := make([]int8, m*k)
			u8 := make([]uint8, m*k)
			w8 := make([]int8, n*k)
			w16 := make([]int16, n*k)
			for i := range a8 {
				a8[i], u8[i] = int8(r.IntN(256)-128), uint8(r.IntN(256))
				if extreme {
					a8[i], u8[i] = -128, 255
				}
			}
			for i := range w8 {
				w8[i], w16[i] = int8(r.IntN(256)-128), int16(r.IntN(511)-255)
				if extreme {
					w8[i], w16[i] = -128, -255
				}
			}
			bias := make([]int32, n)
			for i := range bias {
				bias[i] = int32(r.IntN(2001) - 1000)
			}
			kp := q16Even(k)
			a16 := make([]int16, m*kp)
			wp := make([]int16, q16Len(n, k))
			want := make([]int32, m*n)
			got := make([]int32, m*n)

			gemmInt(a8, w8, bias, want, m, n, k, n)
			widenRows(a16, a8, m, k, k)
			packQ16(wp, w8, n, k)
			q16Gemm(a16, kp, wp, bias, got, m, n, n)
			compareInt32(t, "int8", sz, got, want)

			gemmInt(u8, w16, bias, want, m, n, k, n)
			widenRows(a16, u8, m, k, k)
			packQ16(wp, w16, n, k)
			q16Gemm(a16, kp, wp, bias, got, m, n, n)
			compareInt32(t, "uint8", sz, got, want)
		}
	}
}

func compareInt32(t *testing.T, what string, sz [3]int, got, want []int32) {
	t.Helper()
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s %v: element %d = %d, want %d", what, sz, i, got[i], want[i])
		}
	}
}
