package conv

import (
	"math"
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
	checkQ16(t)
}

func checkQ16(t *testing.T) {
	t.Helper()
	r := rand.New(rand.NewPCG(9, 10))
	sizes := [][3]int{{1, 1, 1}, {3, 5, 7}, {4, 16, 2}, {5, 17, 27}, {9, 33, 131}, {1, 1000, 64}, {8, 48, 1000}, {7, 3, 0}, {6, 20, 9}, {7, 32, 3}, {12, 16, 64}}
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

// TestRequantSIMDMatchesScalar checks the SIMD requantization against
// requantRow for single and double rounding, extreme accumulators and
// shifts, int8 and uint8 outputs.
func TestRequantSIMDMatchesScalar(t *testing.T) {
	if requantI8Kernel == nil {
		t.Skip("no SIMD requantization in this build")
	}
	checkRequantSIMD(t)
}

func checkRequantSIMD(t *testing.T) {
	t.Helper()
	r := rand.New(rand.NewPCG(11, 12))
	const n = 37
	for trial := 0; trial < 200; trial++ {
		rq := &requant{mult: make([]int32, n), shift: make([]int, n), left: make([]uint, n), right: make([]uint, n)}
		rq.single = trial%2 == 0
		for c := range n {
			rq.mult[c] = int32(1<<30 + r.IntN(1<<30))
			if trial%7 == 0 {
				rq.mult[c] = 1<<31 - 1
			}
			rq.shift[c] = -r.IntN(20)
			if !rq.single && trial%4 != 1 && r.IntN(4) == 0 { // trials 1, 5, ...: no left shift at all
				rq.shift[c] = r.IntN(4)
			}
			if rq.shift[c] > 0 {
				rq.left[c] = uint(rq.shift[c])
			} else {
				rq.right[c] = uint(-rq.shift[c])
			}
		}
		rq.outZP = int32(r.IntN(256) - 128)
		rq.actMin, rq.actMax = -128, 127
		if trial%3 == 1 { // a fused activation: bounds inside the range
			rq.actMin = int32(r.IntN(128) - 128)
			rq.actMax = rq.actMin + int32(r.IntN(int(128-rq.actMin)))
		}
		v := newRQVec(rq)
		if v == nil {
			t.Fatalf("trial %d: SIMD requantization refused", trial)
		}
		acc := make([]int32, n)
		for i := range acc {
			switch r.IntN(4) {
			case 0:
				acc[i] = int32(r.Uint32())
			case 1:
				acc[i] = []int32{-1 << 31, 1<<31 - 1, 0, -1, 1}[r.IntN(5)]
			default:
				acc[i] = int32(r.IntN(1<<20) - 1<<19)
			}
		}
		want, got := make([]int8, n), make([]int8, n)
		requantRow(rq, 0, acc, want)
		requantRowV(rq, v, 0, acc, got)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("trial %d (single %v): channel %d acc %d mult %d shift %d: got %d, want %d", trial, rq.single, i, acc[i], rq.mult[i], rq.shift[i], got[i], want[i])
			}
		}
		// Three rows with strides: channels 2..n-1 of each.
		const rows, lda, ldo = 3, n + 5, n + 2
		acc3 := make([]int32, rows*lda)
		for i := range acc3 {
			acc3[i] = acc[i%n] + int32(i)
		}
		want3, got3 := make([]int8, rows*ldo), make([]int8, rows*ldo)
		for row := 0; row < rows; row++ {
			requantRow(rq, 2, acc3[row*lda+2:row*lda+n], want3[row*ldo:row*ldo+n-2])
		}
		requantRowsV(rq, v, 2, acc3[2:], lda, got3, ldo, n-2, rows)
		if string(int8Bytes(got3)) != string(int8Bytes(want3)) {
			t.Fatalf("trial %d: rows: got %v, want %v", trial, got3, want3)
		}
		// The same from channel 0 (whole 16-channel chunks on AVX-512).
		for row := 0; row < rows; row++ {
			requantRow(rq, 0, acc3[row*lda:row*lda+n], want3[row*ldo:row*ldo+n])
		}
		requantRowsV(rq, v, 0, acc3, lda, got3, ldo, n, rows)
		if string(int8Bytes(got3)) != string(int8Bytes(want3)) {
			t.Fatalf("trial %d: rows from 0: got %v, want %v", trial, got3, want3)
		}
		rq.outZP, rq.actMin, rq.actMax = int32(r.IntN(256)), 0, 255
		if trial%3 == 1 {
			rq.actMin = int32(r.IntN(128))
			rq.actMax = rq.actMin + int32(r.IntN(int(256-rq.actMin)))
		}
		wantU3, gotU3 := make([]uint8, rows*ldo), make([]uint8, rows*ldo)
		for row := 0; row < rows; row++ {
			requantRow(rq, 0, acc3[row*lda:row*lda+n], wantU3[row*ldo:row*ldo+n])
		}
		requantRowsV(rq, v, 0, acc3, lda, gotU3, ldo, n, rows)
		if string(gotU3) != string(wantU3) {
			t.Fatalf("trial %d: uint8 rows from 0: got %v, want %v", trial, gotU3, wantU3)
		}
		wantU, gotU := make([]uint8, n-3), make([]uint8, n-3)
		requantRow(rq, 3, acc[3:], wantU)
		requantRowV(rq, v, 3, acc[3:], gotU)
		for i := range wantU {
			if gotU[i] != wantU[i] {
				t.Fatalf("trial %d uint8: channel %d: got %d, want %d", trial, i+3, gotU[i], wantU[i])
			}
		}
	}
}

// TestF32GemmMatchesPlain checks the SIMD float GEMM against gemmFloat
// within float rounding, and that NaN and infinities clamp the same way.
func TestF32GemmMatchesPlain(t *testing.T) {
	if gemmF32Kernel == nil {
		t.Skip("no SIMD float GEMM in this build")
	}
	r := rand.New(rand.NewPCG(13, 14))
	for _, sz := range [][3]int{{1, 1, 1}, {3, 5, 7}, {4, 16, 2}, {5, 17, 27}, {9, 33, 131}, {1, 1000, 64}, {7, 3, 0}} {
		m, n, k := sz[0], sz[1], sz[2]
		a := make([]float32, m*k)
		w := make([]float32, n*k)
		for i := range a {
			a[i] = r.Float32()*2 - 1
		}
		for i := range w {
			w[i] = r.Float32()*2 - 1
		}
		bias := make([]float32, n)
		for i := range bias {
			bias[i] = r.Float32() - 0.5
		}
		if m*k > 2 {
			a[0], a[1] = float32(math.NaN()), float32(math.Inf(1))
		}
		wp := make([]float32, f32Len(n, k))
		packF32(wp, w, n, k)
		for _, act := range [][2]float32{{-math.MaxFloat32, math.MaxFloat32}, {0, 6}} {
			want := make([]float32, m*n)
			got := make([]float32, m*n)
			gemmFloat(a, w, bias, want, m, n, k, n, act[0], act[1])
			gemmF32Kernel(a, k, wp, bias, got, m, n, n, act[0], act[1])
			for i := range want {
				g, wv := float64(got[i]), float64(want[i])
				if math.IsNaN(wv) != math.IsNaN(g) || (!math.IsNaN(wv) && math.Abs(g-wv) > 1e-5*(1+math.Abs(wv)) && g != wv) {
					t.Fatalf("%v act %v: element %d = %g, want %g", sz, act, i, g, wv)
				}
			}
		}
	}
}

// TestF32GemmRowsIndependent: the SIMD float GEMM gives every row the
// same bits whether it runs in a block of rows (the microkernels of 2, 3
// or 4 rows) or alone, so splitting a layer's rows over threads cannot
// change a result.
func TestF32GemmRowsIndependent(t *testing.T) {
	if gemmF32Kernel == nil {
		t.Skip("no SIMD float GEMM in this build")
	}
	r := rand.New(rand.NewPCG(15, 16))
	for _, sz := range [][3]int{{4, 16, 3}, {5, 16, 1}, {9, 32, 27}, {12, 48, 64}, {7, 40, 9}, {13, 20, 100}} {
		m, n, k := sz[0], sz[1], sz[2]
		a := make([]float32, m*k)
		for i := range a {
			a[i] = r.Float32()*2 - 1
		}
		w := make([]float32, n*k)
		for i := range w {
			w[i] = r.Float32()*2 - 1
		}
		bias := make([]float32, n)
		for i := range bias {
			bias[i] = r.Float32() - 0.5
		}
		wp := make([]float32, f32Len(n, k))
		packF32(wp, w, n, k)
		all := make([]float32, m*n)
		gemmF32Kernel(a, k, wp, bias, all, m, n, n, -math.MaxFloat32, math.MaxFloat32)
		one := make([]float32, n)
		for i := range m {
			gemmF32Kernel(a[i*k:(i+1)*k], k, wp, bias, one, 1, n, n, -math.MaxFloat32, math.MaxFloat32)
			for c := range one {
				if math.Float32bits(one[c]) != math.Float32bits(all[i*n+c]) {
					t.Fatalf("%v: row %d channel %d: %g alone, %g in a block", sz, i, c, one[c], all[i*n+c])
				}
			}
		}
	}
}

func int8Bytes(v []int8) []byte {
	b := make([]byte, len(v))
	for i, x := range v {
		b[i] = byte(x)
	}
	return b
}
