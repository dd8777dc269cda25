//go:build goexperiment.simd && arm64 && !purego

package conv

import (
	"testing"

	"golang.org/x/sys/cpu"
)

// TestSIMDKernelsSelected: on arm64 the NEON kernels are always installed,
// and the dot-product byte GEMM exactly when the CPU has SDOT (qemu
// -cpu max has it, cortex-a53 not), so the GEMM checks cannot skip
// silently.
func TestSIMDKernelsSelected(t *testing.T) {
	if !useSIMD || qgemmKernel == nil || gemmF32Kernel == nil {
		t.Fatal("NEON GEMM kernels are not installed")
	}
	if got := qbKernel32 != nil; got != cpu.ARM64.HasASIMDDP {
		t.Fatalf("byte GEMM installed = %v, CPU has the dot product = %v", got, cpu.ARM64.HasASIMDDP)
	}
}
