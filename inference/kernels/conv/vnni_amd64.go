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

// vnni1x64 and vnni1x16 are the one-row kernels; see qbGemv64.
//
//go:noescape
func vnni1x64(a *uint8, w *int8, kq int, out *int32, bias *int32, add int32)

//go:noescape
func vnni1x16(a *uint8, w *int8, kq int, out *int32, bias *int32, add int32)

// vnniRq8 is the microkernel with the requantization fused in
// (vnnirq_amd64.s); see qbKernelRq.
//
//go:noescape
func vnniRq8(a *uint8, lda int, w *int8, kq int, out *byte, ldo int, bias *int32, rowadd *int32, p *int32, c *int32, mode int, rows int, mask int, nb int)

func init() {
	if archsimd.X86.AVX512() && archsimd.X86.AVX512VNNI() {
		qbKernelRq = vnniRq8
		qbKernel32, qbKernel16 = vnni8x32, vnni8x16
		qbGemv64, qbGemv16 = vnni1x64, vnni1x16
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
	flipWords(b[i:])
}

// rowSumsAVX512 is qbRowSums with VPSADBW (sums of 8 bytes into 64-bit
// lanes), 64 bytes at a time, then addRowTails.
func rowSumsAVX512(a []uint8, lda, k, m int, out []int32) {
	var z64 archsimd.Uint8x64
	j0 := k &^ 63
	for i := 0; i < m; i++ {
		row := a[i*lda : i*lda+j0]
		var acc archsimd.Uint64x8
		for j := 0; j+64 <= len(row); j += 64 {
			acc = acc.Add(archsimd.LoadUint8x64Array((*[64]uint8)(row[j:])).SumOf8AbsDiff(z64))
		}
		h := acc.GetLo().Add(acc.GetHi())
		l := h.GetLo().Add(h.GetHi())
		out[i] = int32(l.GetElem(0) + l.GetElem(1))
	}
	addRowTails(a, lda, j0, k, m, out)
}

// rowSumsAVX2 is qbRowSums with VPSADBW on 32 bytes at a time, then
// addRowTails (MobileNet-style networks have many rows of 16, 24 or 144
// channels: the tail used to add them one byte at a time).
func rowSumsAVX2(a []uint8, lda, k, m int, out []int32) {
	var z32 archsimd.Uint8x32
	j0 := k &^ 31
	for i := range m {
		row := a[i*lda : i*lda+j0]
		var acc archsimd.Uint64x4
		for j := 0; j+32 <= len(row); j += 32 {
			acc = acc.Add(archsimd.LoadUint8x32Array((*[32]uint8)(row[j:])).SumOf8AbsDiff(z32))
		}
		h := acc.GetLo().Add(acc.GetHi())
		out[i] = int32(h.GetElem(0) + h.GetElem(1))
	}
	addRowTails(a, lda, j0, k, m, out)
}

// addRowTails adds the bytes [j0, k) of each of m rows (fewer than 64) to
// out: 32, 16 and 8 at a time with VPSADBW, then the last ones.
func addRowTails(a []uint8, lda, j0, k, m int, out []int32) {
	if j0 >= k {
		return
	}
	var z32 archsimd.Uint8x32
	var z16 archsimd.Uint8x16
	for i := range m {
		row := a[i*lda+j0 : i*lda+k]
		var s uint64
		j := 0
		if j+32 <= len(row) {
			h := archsimd.LoadUint8x32Array((*[32]uint8)(row[j:])).SumOf8AbsDiff(z32)
			l := h.GetLo().Add(h.GetHi())
			s += l.GetElem(0) + l.GetElem(1)
			j += 32
		}
		if j+16 <= len(row) {
			l := archsimd.LoadUint8x16Array((*[16]uint8)(row[j:])).SumOf8AbsDiff(z16)
			s += l.GetElem(0) + l.GetElem(1)
			j += 16
		}
		if j+8 <= len(row) {
			s += load8(row[j:]).AsUint8x16().SumOf8AbsDiff(z16).GetElem(0)
			j += 8
		}
		for ; j < len(row); j++ {
			s += uint64(row[j])
		}
		out[i] += int32(s)
	}
}

// avxvnni4x16 is the AVX-VNNI microkernel (avxvnni_amd64.s): rows [0, 4)
// of one block of 16 channels, as vnni8x16 computes rows [0, 8).
//
//go:noescape
func avxvnni4x16(a *uint8, lda int, w *int8, kq int, out *int32, ldo int, bias *int32, rowadd *int32)

// avxvnni8x16 is qbKernel16 on AVX-VNNI: two calls of four rows.
func avxvnni8x16(a *uint8, lda int, w *int8, kq int, out *int32, ldo int, bias *int32, rowadd *int32) {
	avxvnni4x16(a, lda, w, kq, out, ldo, bias, rowadd)
	avxvnni4x16((*uint8)(unsafe.Add(unsafe.Pointer(a), 4*lda)), lda, w, kq,
		(*int32)(unsafe.Add(unsafe.Pointer(out), 16*ldo)), ldo, bias, (*int32)(unsafe.Add(unsafe.Pointer(rowadd), 16)))
}

// avxvnni8x32 is qbKernel32 on AVX-VNNI: the two blocks (w and
// w+kq*64) one after the other.
func avxvnni8x32(a *uint8, lda int, w *int8, kq int, out *int32, ldo int, bias *int32, rowadd *int32) {
	avxvnni8x16(a, lda, w, kq, out, ldo, bias, rowadd)
	avxvnni8x16(a, lda, (*int8)(unsafe.Add(unsafe.Pointer(w), kq*64)), kq,
		(*int32)(unsafe.Add(unsafe.Pointer(out), 64)), ldo, (*int32)(unsafe.Add(unsafe.Pointer(bias), 64)), rowadd)
}

// flipWords is qbFlip eight bytes at a time (no AVX-512).
func flipWords(b []uint8) {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		p := (*uint64)(unsafe.Pointer(&b[i]))
		*p ^= 0x8080808080808080
	}
	for ; i < len(b); i++ {
		b[i] ^= 0x80
	}
}

func init() {
	if qbKernel32 == nil && archsimd.X86.AVX2() && archsimd.X86.AVXVNNI() {
		qbKernel32, qbKernel16 = avxvnni8x32, avxvnni8x16
		qbFlip, qbRowSums = flipWords, rowSumsAVX2
	}
}
