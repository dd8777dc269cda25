//go:build goexperiment.simd && arm64 && !purego

package conv

import "testing"

// TestSIMDKernelsSelected: on arm64 the NEON kernels are always installed,
// so the GEMM checks cannot skip silently.
func TestSIMDKernelsSelected(t *testing.T) {
	if !useSIMD || qgemmKernel == nil || gemmF32Kernel == nil {
		t.Fatal("NEON GEMM kernels are not installed")
	}
}
