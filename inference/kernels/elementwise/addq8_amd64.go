//go:build goexperiment.simd && amd64 && !purego

package elementwise

import "simd/archsimd"

// addQ8I8 and addQ8U8 are the AVX-512 8-bit ADD/SUB (addq8_amd64.s):
// n/16*16 elements of a and b into o with the parameters of addQ8Params.
//
//go:noescape
func addQ8I8(a, b, o *byte, n int, p *[19]int32)

//go:noescape
func addQ8U8(a, b, o *byte, n int, p *[19]int32)

func init() {
	if archsimd.X86.AVX512() {
		addQ8Kernel = addQ8AVX512
	}
}

// addQ8AVX512 runs the assembly over the whole 16-element groups of o
// and returns how many elements it did.
func addQ8AVX512(d *arithData, a, b, o []byte) int {
	n := len(o) &^ 15
	if n == 0 {
		return 0
	}
	a, b = a[:n], b[:n]
	if d.signed {
		addQ8I8(&a[0], &b[0], &o[0], n, &d.vecParams)
	} else {
		addQ8U8(&a[0], &b[0], &o[0], n, &d.vecParams)
	}
	return n
}
