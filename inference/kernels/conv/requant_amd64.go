//go:build goexperiment.simd && amd64 && !purego

package conv

import "unsafe"

// requant16 is the AVX-512 requantization of whole 16-channel chunks
// (requant_amd64.s).
//
//go:noescape
func requant16(acc *int32, lda int, out *byte, ldo int, rows int, chunks int, p *int32, c *int32, mode int)

// requant16AVX2 is requant16 on AVX2 (requant_amd64.s): the same
// parameter blocks and results; mode bit 2 (4) tells that some left
// shift is not zero (double rounding).
//
//go:noescape
func requant16AVX2(acc *int32, lda int, out *byte, ldo int, rows int, chunks int, p *int32, c *int32, mode int)

// rqBlocks16 fills v.blk with requant16's parameter vectors: per chunk
// of 16 channels, six vectors of 16 int32 lanes. A last partial chunk is
// included (for vnniRq8's masked stores), its lanes past the channels
// zero (single rounding: a shift of 31 with its rounding term) so they
// compute harmless values that are never stored; requant16 itself runs
// on whole chunks only.
func rqBlocks16(rq *requant, v *rqVec) {
	n := len(rq.mult)
	chunks := (n + 15) / 16
	v.blk = make([]int32, chunks*96)
	mult := func(c int) int32 {
		if c < n {
			return rq.mult[c]
		}
		return 0
	}
	for ch := 0; ch < chunks; ch++ {
		b := v.blk[ch*96 : (ch+1)*96]
		for l := 0; l < 16; l++ {
			c := ch*16 + l
			odd := mult(c | 1)
			if rq.single {
				t := uint64(31)
				if c < n {
					t = uint64(v.total[c])
				}
				b[l] = mult(c)
				if l%2 == 0 {
					b[16+l] = odd
				}
				// 64-bit lanes: even channels in Z12/Z14, odd in Z13/Z15.
				lane := l / 2
				rnd := int64(1) << (t - 1)
				if l%2 == 0 {
					*(*int64)(unsafe.Pointer(&b[32+2*lane])) = rnd
					*(*uint64)(unsafe.Pointer(&b[64+2*lane])) = t
				} else {
					*(*int64)(unsafe.Pointer(&b[48+2*lane])) = rnd
					*(*uint64)(unsafe.Pointer(&b[80+2*lane])) = t
				}
				continue
			}
			if c >= n {
				continue
			}
			mask := int32(1)<<v.right[c] - 1
			b[l] = int32(v.left[c])
			b[16+l] = rq.mult[c]
			if l%2 == 0 {
				b[32+l] = odd
			}
			b[48+l] = mask >> 1
			b[64+l] = mask
			b[80+l] = int32(v.right[c])
		}
	}
}

// requantBlocks is requantAVX2 with whole 16-channel chunks (from a chunk
// boundary) done in assembly: requant16 with AVX-512 (hasAVX512),
// requant16AVX2 without.
func requantBlocks[T int8 | uint8](rq *requant, v *rqVec, c0 int, acc []int32, lda int, out []T, ldo, n, rows int) {
	done := 0
	if chunks := n / 16; chunks > 0 && rows > 0 && c0%16 == 0 && v.blk != nil {
		_ = acc[(rows-1)*lda+chunks*16-1]
		_ = out[(rows-1)*ldo+chunks*16-1]
		mode := 0
		if rq.single {
			mode |= 1
		}
		if k := 255; T(k) > 0 {
			mode |= 2
		}
		consts := [3]int32{rq.outZP, rq.actMin, rq.actMax}
		if hasAVX512 {
			requant16(&acc[0], lda, (*byte)(unsafe.Pointer(&out[0])), ldo, rows, chunks, &v.blk[c0/16*96], &consts[0], mode)
		} else {
			if !rq.single && v.hasLeft {
				mode |= 4
			}
			requant16AVX2(&acc[0], lda, (*byte)(unsafe.Pointer(&out[0])), ldo, rows, chunks, &v.blk[c0/16*96], &consts[0], mode)
		}
		done = chunks * 16
	}
	if done < n {
		requantAVX2(rq, v, c0+done, acc[done:], lda, out[done:], ldo, n-done, rows)
	}
}
