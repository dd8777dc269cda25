//go:build goexperiment.simd && arm64 && !purego

package conv

import (
	"simd/archsimd"
	"unsafe"
)

func init() {
	requantI8Kernel = requantBlocksNEON[int8]
	requantU8Kernel = requantBlocksNEON[uint8]
	rqBlocks = rqBlocksNEON
}

// requant16NEON requantizes whole 16-channel chunks (requant_arm64.s)
// with rqBlocksNEON's parameters.
//
//go:noescape
func requant16NEON(acc *int32, lda int, out *byte, ldo int, rows int, chunks int, p *int32, c *int32, mode int)

// rqBlocksNEON fills v.blk with requant16NEON's parameters: per whole
// chunk of 16 channels, three vectors of 16 int32 lanes: the multipliers,
// then for double rounding the left shifts and the negated right shifts,
// for single rounding the negated shifts past 31 and all ones where the
// shift is exactly 31.
func rqBlocksNEON(rq *requant, v *rqVec) {
	chunks := len(rq.mult) / 16
	v.blk = make([]int32, chunks*48)
	for c := range chunks * 16 {
		b := v.blk[c/16*48+c%16:]
		b[0] = rq.mult[c]
		switch {
		case !rq.single:
			b[16], b[32] = int32(v.left[c]), -int32(v.right[c])
		case v.total[c] == 31:
			b[16], b[32] = 0, -1
		default:
			b[16], b[32] = 31-int32(v.total[c]), 0
		}
	}
}

// requantBlocksNEON is requantNEON with whole 16-channel chunks (from a
// chunk boundary) done by requant16NEON.
func requantBlocksNEON[T int8 | uint8](rq *requant, v *rqVec, c0 int, acc []int32, lda int, out []T, ldo, n, rows int) {
	done := 0
	if chunks := n / 16; chunks > 0 && rows > 0 && c0%16 == 0 && (c0+n)/16*48 <= len(v.blk) {
		_ = acc[(rows-1)*lda+chunks*16-1]
		_ = out[(rows-1)*ldo+chunks*16-1]
		mode := 0
		if rq.single {
			mode = 1
		}
		consts := [3]int32{rq.outZP, rq.actMin, rq.actMax}
		requant16NEON(&acc[0], lda, (*byte)(unsafe.Pointer(&out[0])), ldo, rows, chunks, &v.blk[c0/16*48], &consts[0], mode)
		done = chunks * 16
	}
	if done < n {
		requantNEON(rq, v, c0+done, acc[done:], lda, out[done:], ldo, n-done, rows)
	}
}

// i32s views shift counts (at most 63) as int32 lanes.
func i32s(u []uint32) []int32 {
	return unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(u))), len(u))
}

// requantNEON is requantRowsV on 4 channels at a time, with the same
// integer steps as requantRow (so the same bytes): SMULL of the even and
// the odd channels to 64-bit products, SSHL by negative counts for the
// arithmetic shifts, XTN and ZIP1 back to 32-bit lanes in channel order.
func requantNEON[T int8 | uint8](rq *requant, v *rqVec, c0 int, acc []int32, lda int, out []T, ldo, n, rows int) {
	zp := archsimd.BroadcastInt32x4(rq.outZP)
	lo := archsimd.BroadcastInt32x4(rq.actMin)
	hi := archsimd.BroadcastInt32x4(rq.actMax)
	one := archsimd.BroadcastInt32x4(1)
	one64 := archsimd.BroadcastInt64x2(1)
	c30 := archsimd.BroadcastInt64x2(1 << 30)
	left, right, total := i32s(v.left), i32s(v.right), i32s(v.total)
	var tmp [4]int32
	for r := 0; r < rows; r++ {
		acc, out := acc[r*lda:r*lda+n], out[r*ldo:r*ldo+n]
		c := 0
		for ; c+4 <= n; c += 4 {
			a := archsimd.LoadInt32x4Array((*[4]int32)(acc[c:]))
			m := archsimd.LoadInt32x4Array((*[4]int32)(rq.mult[c0+c:]))
			if !rq.single {
				a = a.Shift(archsimd.LoadInt32x4Array((*[4]int32)(left[c0+c:])))
			}
			// Products of channels 0, 2 (even) and 1, 3 (odd).
			pe := a.ConcatEven(a).MulWidenLo(m.ConcatEven(m))
			po := a.ConcatOdd(a).MulWidenLo(m.ConcatOdd(m))
			if rq.single {
				t := archsimd.LoadInt32x4Array((*[4]int32)(total[c0+c:]))
				te, to := t.ConcatEven(t).ExtendLo2ToInt64(), t.ConcatOdd(t).ExtendLo2ToInt64()
				pe = pe.Add(one64.Shift(te.Sub(one64))).Shift(te.Neg())
				po = po.Add(one64.Shift(to.Sub(one64))).Shift(to.Neg())
			} else {
				pe = pe.Add(c30).ShiftAllRight(31)
				po = po.Add(c30).ShiftAllRight(31)
			}
			x := pe.TruncToInt32().InterleaveLo(po.TruncToInt32())
			if !rq.single {
				// RoundingDivideByPOT.
				rs := archsimd.LoadInt32x4Array((*[4]int32)(right[c0+c:]))
				mask := one.Shift(rs).Sub(one)
				th := mask.ShiftAllRight(1).Sub(x.ShiftAllRight(31))
				rem := x.And(mask)
				x = x.Shift(rs.Neg()).Sub(rem.Greater(th).ToInt32x4())
			}
			x.Add(zp).Max(lo).Min(hi).StoreArray(&tmp)
			o := out[c : c+4]
			o[0], o[1], o[2], o[3] = T(tmp[0]), T(tmp[1]), T(tmp[2]), T(tmp[3])
		}
		if c < n {
			requantRow(rq, c0+c, acc[c:], out[c:])
		}
	}
}
