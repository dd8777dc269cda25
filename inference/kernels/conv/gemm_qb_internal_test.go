package conv

import (
	"bytes"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"math/rand/v2"
	"testing"
)

// TestQBGemmMatchesPlain checks the byte GEMM, with the packing, bias
// corrections and row preparation of this architecture's flavor (unsigned
// or signed activations), against the plain GEMM on odd sizes, extreme
// values (the largest products and sums), uint8 filters whose offsets fit
// int8 or not, and zero-length rows.
func TestQBGemmMatchesPlain(t *testing.T) {
	if qbKernel32 == nil {
		t.Skip("this CPU has no byte GEMM (AVX-512 VNNI or arm64 dot product)")
	}
	r := rand.New(rand.NewPCG(11, 12))
	sizes := [][3]int{{1, 1, 1}, {3, 5, 7}, {8, 16, 4}, {9, 17, 27}, {13, 33, 131}, {1, 1000, 64}, {17, 48, 1000}, {7, 3, 0}, {24, 64, 960}, {5, 20, 17},
		// One row: the one-row kernels (four blocks, single blocks, odd and
		// even group counts).
		{1, 1001, 1280}, {1, 80, 4}, {1, 33, 12}, {1, 100, 131}, {1, 16, 0}}
	for _, sz := range sizes {
		m, n, k := sz[0], sz[1], sz[2]
		for _, extreme := range []bool{false, true} {
			for _, fit := range []bool{false, true} {
				a8 := make([]int8, m*k)
				u8 := make([]uint8, m*k)
				w8 := make([]int8, n*k)
				wu := make([]uint8, n*k)
				zw := int16(r.IntN(256))
				for i := range a8 {
					a8[i], u8[i] = int8(r.IntN(256)-128), uint8(r.IntN(256))
					if extreme {
						a8[i], u8[i] = -128, 255
					}
				}
				for i := range w8 {
					w8[i], wu[i] = int8(r.IntN(256)-128), uint8(r.IntN(256))
					if extreme {
						w8[i], wu[i], zw = -128, 0, 255
					}
				}
				if fit {
					// Filter values within 127 of their zero point.
					zw = 128
					for i := range wu {
						wu[i] = uint8(r.IntN(256))
						if extreme {
							wu[i] = 0
						}
					}
				}
				w16 := make([]int16, n*k)
				offsetWeights(w16, wu, zw)
				bias := make([]int32, n)
				for i := range bias {
					bias[i] = int32(r.IntN(2001) - 1000)
				}
				k4, np, mp := qbK4(k), qbNPad(n), qbRows(m)
				a := make([]uint8, mp*k4)
				wp := make([]int8, qbLen(n, k))
				bq := make([]int32, np)
				rowadd := make([]int32, mp)
				acc := make([]int32, mp*np)
				want := make([]int32, m*n)

				gemmInt(a8, w8, bias, want, m, n, k, n)
				for i := 0; i < m; i++ {
					for kk := 0; kk < k; kk++ {
						a[i*k4+kk] = uint8(a8[i*k+kk])
					}
				}
				copy(bq, bias)
				qbPackInt8(wp, bq, w8, n, k)
				qbPrepRows(a, k4, k, m, true, 0, rowadd)
				qbGemm(a, k4, wp, bq, rowadd, acc, m, np, np)
				compareQB(t, "int8", sz, acc, np, want, n)

				gemmInt(u8, w16, bias, want, m, n, k, n)
				clear(a)
				for i := 0; i < m; i++ {
					copy(a[i*k4:i*k4+k], u8[i*k:(i+1)*k])
				}
				copy(bq, bias)
				rowMul := qbPackUint8(wp, bq, w16, int32(zw), n, k)
				if fit && rowMul != 0 {
					t.Fatalf("%v: uint8 filters within 127 of their zero point still need row sums", sz)
				}
				clear(rowadd)
				qbPrepRows(a, k4, k, m, false, rowMul, rowadd)
				qbGemm(a, k4, wp, bq, rowadd, acc, m, np, np)
				compareQB(t, "uint8", sz, acc, np, want, n)
			}
		}
	}
}

func compareQB(t *testing.T, what string, sz [3]int, acc []int32, ldc int, want []int32, n int) {
	t.Helper()
	for i := range want {
		if got := acc[i/n*ldc+i%n]; got != want[i] {
			t.Fatalf("%s %v: row %d channel %d = %d, want %d", what, sz, i/n, i%n, got, want[i])
		}
	}
}

// TestQBRowSums checks the row sums of every length up to 200 (all the
// vector widths and tails) against a plain loop.
func TestQBRowSums(t *testing.T) {
	if qbRowSums == nil {
		t.Skip("this CPU has no byte GEMM")
	}
	r := rand.New(rand.NewPCG(13, 14))
	for k := 0; k <= 200; k++ {
		const m, lda = 3, 203
		a := make([]uint8, m*lda)
		for i := range a {
			a[i] = uint8(r.IntN(256))
			if k%7 == 0 {
				a[i] = 255
			}
		}
		got := make([]int32, m)
		qbRowSums(a, lda, k, m, got)
		for i := 0; i < m; i++ {
			var want int32
			for _, v := range a[i*lda : i*lda+k] {
				want += int32(v)
			}
			if got[i] != want {
				t.Fatalf("k %d row %d: sum %d, want %d", k, i, got[i], want)
			}
		}
	}
}

// TestIm2colRows compares im2colRows (running output position, whole
// filter rows copied at once, short copies as two words) with a plain
// element-by-element im2col for every block [r0, r1) of geometries with
// padding, strides, dilation, several images and filter rows of 3 to 24
// bytes.
func TestIm2colRows(t *testing.T) {
	for _, c := range []struct{ batch, inH, inW, inC, kh, kw, s, d, pad int }{
		{1, 9, 9, 3, 3, 3, 2, 1, 1},  // MobileNet's first layer: 9-byte filter rows
		{2, 7, 6, 3, 3, 3, 1, 1, 1},  // two images
		{1, 8, 8, 4, 3, 3, 2, 1, 0},  // 12-byte rows, no padding
		{1, 6, 7, 8, 2, 2, 1, 1, 1},  // 16-byte rows
		{1, 5, 5, 2, 3, 3, 1, 1, 1},  // 6-byte rows (plain copy)
		{2, 9, 8, 3, 3, 3, 1, 2, 2},  // dilation: per-tap copies
		{1, 6, 6, 8, 3, 3, 1, 1, 1},  // 24-byte rows
		{1, 4, 10, 5, 1, 3, 3, 1, 1}, // 1x3 filter, stride 3
	} {
		g := &geom{batch: c.batch, inH: c.inH, inW: c.inW, inC: c.inC, kh: c.kh, kw: c.kw, fc: c.inC, groups: 1,
			sh: c.s, sw: c.s, dh: c.d, dw: c.d, padT: c.pad, padL: c.pad}
		g.outH = (c.inH+2*c.pad-c.d*(c.kh-1)-1)/c.s + 1
		g.outW = (c.inW+2*c.pad-c.d*(c.kw-1)-1)/c.s + 1
		g.k = c.kh * c.kw * c.inC
		g.rows = c.batch * g.outH * g.outW
		ld := (g.k + 7) / 4 * 4
		x := make([]uint8, c.batch*c.inH*c.inW*c.inC)
		for i := range x {
			x[i] = uint8(i*7 + 1)
		}
		const pad = 0xEE
		want := make([]uint8, g.rows*ld)
		for r := range g.rows {
			b, oy, ox := r/(g.outH*g.outW), r/g.outW%g.outH, r%g.outW
			for ky := range c.kh {
				for kx := range c.kw {
					for ch := range c.inC {
						iy, ix := oy*c.s-c.pad+ky*c.d, ox*c.s-c.pad+kx*c.d
						v := uint8(pad)
						if iy >= 0 && iy < c.inH && ix >= 0 && ix < c.inW {
							v = x[((b*c.inH+iy)*c.inW+ix)*c.inC+ch]
						}
						want[r*ld+(ky*c.kw+kx)*c.inC+ch] = v
					}
				}
			}
		}
		for r0 := 0; r0 < g.rows; r0++ {
			for _, r1 := range []int{r0 + 1, min(g.rows, r0+5), g.rows} {
				got := make([]uint8, (r1-r0)*ld)
				for i := range got {
					got[i] = 0x55 // the tails must be cleared
				}
				im2colRows(g, x, got, r0, r1, pad, ld)
				if !bytes.Equal(got, want[r0*ld:r1*ld]) {
					t.Fatalf("%+v rows [%d, %d): im2colRows differs from the plain im2col", c, r0, r1)
				}
			}
		}
	}
}

// TestQBGemmRqMatchesSeparate checks the byte GEMM with the requantization
// fused in (qbGemmRq) against the byte GEMM followed by requantRow, byte
// for byte: rows that are not a multiple of the kernel's 8 (the rows past
// m must not be written), partial last blocks (masked stores of 1 to 31
// channels), column ranges from a later block on, row sums, single and
// double rounding with extreme multipliers and accumulators, and int8 and
// uint8 outputs (clamp bounds within the type).
func TestQBGemmRqMatchesSeparate(t *testing.T) {
	if qbKernelRq == nil || rqBlocks == nil {
		t.Skip("this CPU has no fused byte GEMM (AVX-512 VNNI)")
	}
	r := rand.New(rand.NewPCG(21, 22))
	sizes := [][3]int{{1, 1, 4}, {2, 16, 4}, {3, 5, 7}, {8, 16, 24}, {9, 17, 27}, {13, 33, 131}, {7, 24, 144}, {64, 144, 24}, {17, 48, 1000}, {5, 20, 17}, {11, 31, 8}, {16, 64, 96}, {49, 40, 160}}
	for trial, sz := range sizes {
		m, n, k := sz[0], sz[1], sz[2]
		for _, single := range []bool{false, true} {
			for _, u8 := range []bool{false, true} {
				rq := &requant{mult: make([]int32, n), shift: make([]int, n), left: make([]uint, n), right: make([]uint, n), single: single}
				for c := range n {
					rq.mult[c] = int32(1<<30 + r.IntN(1<<30))
					if c%5 == 0 {
						rq.mult[c] = 1<<31 - 1
					}
					rq.shift[c] = -r.IntN(12)
					if !single && c%3 == 0 && trial%2 == 0 { // odd trials: no left shift at all
						rq.shift[c] = r.IntN(3)
					}
					if rq.shift[c] > 0 {
						rq.left[c] = uint(rq.shift[c])
					} else {
						rq.right[c] = uint(-rq.shift[c])
					}
				}
				rq.outZP, rq.actMin, rq.actMax = int32(r.IntN(256)-128), -128, 127
				if u8 {
					rq.outZP, rq.actMin, rq.actMax = int32(r.IntN(256)), 0, 255
					if trial%2 == 0 {
						rq.actMin, rq.actMax = rq.outZP, min(255, rq.outZP+100) // a ReLU6-like clamp
					}
				}
				v := newRQVec(rq)
				if v == nil {
					t.Fatalf("%v: SIMD requantization refused", sz)
				}
				k4, np, mp := qbK4(k), qbNPad(n), qbRows(m)
				a := make([]uint8, mp*k4)
				for i := range a[:m*k4] {
					if i%k4 < k {
						a[i] = uint8(r.IntN(256))
					}
				}
				w := make([]int8, n*k)
				for i := range w {
					w[i] = int8(r.IntN(256) - 128)
				}
				wp := make([]int8, qbLen(n, k))
				packQB(wp, w, n, k, 0)
				bias := make([]int32, np)
				for i := range bias[:n] {
					bias[i] = int32(r.IntN(1<<20) - 1<<19)
				}
				rowadd := make([]int32, mp)
				for i := range rowadd[:m] {
					rowadd[i] = int32(r.IntN(1<<16) - 1<<15)
				}
				acc := make([]int32, mp*np)
				qbGemm(a, k4, wp, bias, rowadd, acc, m, np, np)
				const ldo = 3 // extra bytes per row: must stay untouched
				for _, j0 := range []int{0, 16, 32} {
					if j0 >= n {
						continue
					}
					want := make([]byte, (m+1)*(n+ldo))
					got := make([]byte, len(want))
					for i := range want {
						want[i], got[i] = 0xA5, 0xA5
					}
					for i := range m {
						row := want[i*(n+ldo)+j0 : i*(n+ldo)+n]
						if u8 {
							requantRow(rq, j0, acc[i*np+j0:i*np+n], row)
						} else {
							out := make([]int8, n-j0)
							requantRow(rq, j0, acc[i*np+j0:i*np+n], out)
							copy(row, int8Bytes(out))
						}
					}
					qbGemmRq(a, k4, wp, bias, rowadd, got, n+ldo, m, j0, np, n, rq, v)
					if !bytes.Equal(got, want) {
						for i := range got {
							if got[i] != want[i] {
								t.Fatalf("%v single %v uint8 %v from channel %d: byte %d (row %d, channel %d) = %#x, want %#x", sz, single, u8, j0, i, i/(n+ldo), i%(n+ldo), got[i], want[i])
							}
						}
					}
					// qbRowsRq: a last row alone after whole blocks on
					// the one-row kernel, the same bytes.
					d := &convData{geom: geom{outC: n}, kq4: k4, qb: wp, biasQB: bias, np: np, rq: rq, rv: v}
					rowsRq := make([]byte, m*n)
					if u8 {
						qbRowsRq(d, a, rowadd, make([]int32, mp*np), rowsRq, m, j0, np)
					} else {
						qbRowsRq(d, a, rowadd, make([]int32, mp*np), tensor.View[int8](rowsRq), m, j0, np)
					}
					for i := range m {
						if w, g := want[i*(n+ldo)+j0:i*(n+ldo)+n], rowsRq[i*n+j0:(i+1)*n]; !bytes.Equal(g, w) {
							t.Fatalf("%v single %v uint8 %v from channel %d: qbRowsRq row %d = %x, want %x", sz, single, u8, j0, i, g, w)
						}
					}
				}
			}
		}
	}
}

// TestIm2colRowsMatchesNaive compares im2colRows (with its run of
// interior pixels moved in 8-byte words) with a plain im2col over random
// geometries (batches, strides, dilations, paddings, filter rows of 1 to
// 24 bytes, so both paths and the borders between them run) and random
// row ranges.
func TestIm2colRowsMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	interior := 0
	for range 400 {
		g := geom{batch: 1 + r.IntN(2), inH: 1 + r.IntN(12), inW: 1 + r.IntN(14), inC: 1 + r.IntN(6),
			kh: 1 + r.IntN(4), kw: 1 + r.IntN(4), sh: 1 + r.IntN(3), sw: 1 + r.IntN(3), dh: 1 + r.IntN(2), dw: 1 + r.IntN(2), groups: 1}
		if r.IntN(3) > 0 {
			g.dw = 1
		}
		g.fc = g.inC
		g.padT, g.padL = r.IntN(g.kh), r.IntN(g.kw)
		g.outH = (g.inH+2*g.padT-(g.kh-1)*g.dh-1)/g.sh + 1
		g.outW = (g.inW+2*g.padL-(g.kw-1)*g.dw-1)/g.sw + 1
		if g.outH < 1 || g.outW < 1 {
			continue
		}
		g.k = g.kh * g.kw * g.fc
		g.rows = g.batch * g.outH * g.outW
		ld := qbK4(g.k)
		x := make([]uint8, g.batch*g.inH*g.inW*g.inC)
		for i := range x {
			x[i] = uint8(r.IntN(256))
		}
		const pad = 7
		r0 := r.IntN(g.rows)
		r1 := r0 + 1 + r.IntN(g.rows-r0)
		got := make([]uint8, (r1-r0)*ld)
		for i := range got {
			got[i] = 0xAA // the tails must be zeroed
		}
		im2colRows(&g, x, got, r0, r1, pad, ld)
		want := make([]uint8, (r1-r0)*ld)
		for row := r0; row < r1; row++ {
			b, rem := row/(g.outH*g.outW), row%(g.outH*g.outW)
			oy, ox := rem/g.outW, rem%g.outW
			j := (row - r0) * ld
			for ky := range g.kh {
				for kx := range g.kw {
					iy, ix := oy*g.sh-g.padT+ky*g.dh, ox*g.sw-g.padL+kx*g.dw
					for c := range g.fc {
						v := uint8(pad)
						if iy >= 0 && iy < g.inH && ix >= 0 && ix < g.inW {
							v = x[((b*g.inH+iy)*g.inW+ix)*g.inC+c]
						}
						want[j] = v
						j++
					}
				}
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("geometry %+v rows [%d,%d): im2col differs from the plain one", g, r0, r1)
		}
		if span := g.kw * g.fc; g.dw == 1 && span >= 8 && span <= 16 {
			interior++
		}
	}
	if interior < 40 {
		t.Fatalf("only %d geometries had 8- to 16-byte filter rows", interior)
	}
}
