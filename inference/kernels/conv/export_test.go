package conv

// DisableByteGemm makes convolutions prepared until restore is called use
// the 16-bit SIMD GEMM (the path of CPUs without AVX-512 VNNI).
func DisableByteGemm() (restore func()) {
	k32, k16 := qbKernel32, qbKernel16
	qbKernel32, qbKernel16 = nil, nil
	return func() { qbKernel32, qbKernel16 = k32, k16 }
}

// DisableFusedRequant makes the byte GEMM store int32 sums and requantize
// them separately (qbGemm, then requantRowsV) until restore is called.
func DisableFusedRequant() (restore func()) {
	k := qbKernelRq
	qbKernelRq = nil
	return func() { qbKernelRq = k }
}
