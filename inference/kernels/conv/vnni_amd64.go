//go:build goexperiment.simd && amd64 && !purego

package conv

import (
	"simd/archsimd"
	"unsafe"
)

// vnni8x32 and vnni8x16 are the AVX-512 VNNI microkernels (vnni_amd64.s);
// see qbKernel32.
//
//go:noescape
func vnni8x32(a *uint8, lda int, w *int8, kq int, out *int32, ldo int, bias *int32, rowadd *int32)

//go:noescape
func vnni8x16(a *uint8, lda int, w *int8, kq int, out *int32, ldo int, bias *int32, rowadd *int32)

func init() {
	if archsimd.X86.AVX512() && archsimd.X86.AVX512VNNI() {
		qbKernel32, qbKernel16 = vnni8x32, vnni8x16
		qbFlip, qbRowSums = flipAVX512, rowSumsAVX512
	}
}

// flipAVX512 is qbFlip: x ^= 0x80, 64 bytes at a time.
func flipAVX512(b []uint8) {
	s := archsimd.BroadcastUint8x64(0x80)
	i := 0
	for ; i+64 <= len(b); i += 64 {
		archsimd.LoadUint8x64Array((*[64]uint8)(b[i:])).Xor(s).StoreArray((*[64]uint8)(b[i:]))
	}
	for ; i+8 <= len(b); i += 8 {
		p := (*uint64)(unsafe.Pointer(&b[i]))
		*p ^= 0x8080808080808080
	}
	for ; i < len(b); i++ {
		b[i] ^= 0x80
	}
}

// rowSumsAVX512 is qbRowSums with VPSADBW (sums of 8 bytes into 64-bit
// lanes).
func rowSumsAVX512(a []uint8, lda, k, m int, out []int32) {
	var zero archsimd.Uint8x64
	for i := 0; i < m; i++ {
		row := a[i*lda : i*lda+k]
		var acc archsimd.Uint64x8
		j := 0
		for ; j+64 <= len(row); j += 64 {
			acc = acc.Add(archsimd.LoadUint8x64Array((*[64]uint8)(row[j:])).SumOf8AbsDiff(zero))
		}
		var lanes [8]uint64
		acc.StoreArray(&lanes)
		s := lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5] + lanes[6] + lanes[7]
		for ; j < len(row); j++ {
			s += uint64(row[j])
		}
		out[i] = int32(s)
	}
}
