package conv

// DisableByteGemm makes convolutions prepared until restore is called use
// the 16-bit SIMD GEMM (the path of CPUs without AVX-512 VNNI).
func DisableByteGemm() (restore func()) {
	k32, k16 := qbKernel32, qbKernel16
	qbKernel32, qbKernel16 = nil, nil
	return func() { qbKernel32, qbKernel16 = k32, k16 }
}
