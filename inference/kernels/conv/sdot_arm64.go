//go:build goexperiment.simd && arm64 && !purego

package conv

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/cpu"
)

//go:generate go run gen_sdot.go

// sdot4x16 is the arm64 dot-product microkernel (sdot_arm64.s): 4 rows x
// 16 channels with SDOT (signed bytes), see qbKernel32.
//
//go:noescape
func sdot4x16(a *uint8, lda int, w *int8, kq int, out *int32, ldo int, bias *int32, rowadd *int32)

func init() {
	if cpu.ARM64.HasASIMDDP {
		qbKernel32, qbKernel16 = sdot8x32, sdot8x16
		qbFlip, qbRowSums = flipWords, rowSumsWords
		qbSigned = true
	}
}

// sdot8x16 is qbKernel16 as two 4-row calls.
func sdot8x16(a *uint8, lda int, w *int8, kq int, out *int32, ldo int, bias *int32, rowadd *int32) {
	sdot4x16(a, lda, w, kq, out, ldo, bias, rowadd)
	sdot4x16((*uint8)(unsafe.Add(unsafe.Pointer(a), 4*lda)), lda, w, kq, (*int32)(unsafe.Add(unsafe.Pointer(out), 16*ldo)), ldo, bias, (*int32)(unsafe.Add(unsafe.Pointer(rowadd), 16)))
}

// sdot8x32 is qbKernel32 as two 16-channel blocks.
func sdot8x32(a *uint8, lda int, w *int8, kq int, out *int32, ldo int, bias *int32, rowadd *int32) {
	sdot8x16(a, lda, w, kq, out, ldo, bias, rowadd)
	sdot8x16(a, lda, (*int8)(unsafe.Add(unsafe.Pointer(w), 64*kq)), kq, (*int32)(unsafe.Add(unsafe.Pointer(out), 64)), ldo, (*int32)(unsafe.Add(unsafe.Pointer(bias), 64)), rowadd)
}

// flipWords is qbFlip eight bytes at a time.
func flipWords(b []uint8) {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^0x8080808080808080)
	}
	for ; i < len(b); i++ {
		b[i] ^= 0x80
	}
}

// rowSumsWords is qbRowSums eight bytes at a time: each 16-bit lane of a
// word accumulates two bytes per step (at most 510), folded every 128
// steps before it could overflow.
func rowSumsWords(a []uint8, lda, k, m int, out []int32) {
	for i := 0; i < m; i++ {
		row := a[i*lda : i*lda+k]
		var s uint64
		j := 0
		for j+8 <= len(row) {
			// Sum up to 128 words in 16-bit lanes (255*2*128 < 65536),
			// then fold the four lanes.
			var lanes uint64
			for n := 0; n < 128 && j+8 <= len(row); n++ {
				w := binary.LittleEndian.Uint64(row[j:])
				lanes += w&0x00FF00FF00FF00FF + (w>>8)&0x00FF00FF00FF00FF
				j += 8
			}
			s += lanes&0xFFFF + (lanes>>16)&0xFFFF + (lanes>>32)&0xFFFF + lanes>>48
		}
		for ; j < len(row); j++ {
			s += uint64(row[j])
		}
		out[i] = int32(s)
	}
}
