//go:build goexperiment.simd && amd64 && !purego

package conv

import (
	"simd/archsimd"
	"testing"
)

// TestRequantAVX2Only runs the requantization check without AVX-512 (the
// path of AVX2-only CPUs): the 16-channel assembly chunks
// (requant16AVX2) with the Go kernel for the rest, and the Go kernel
// alone.
func TestRequantAVX2Only(t *testing.T) {
	if requantI8Kernel == nil {
		t.Skip("no AVX2")
	}
	saved, i8, u8 := hasAVX512, requantI8Kernel, requantU8Kernel
	defer func() { hasAVX512, requantI8Kernel, requantU8Kernel = saved, i8, u8 }()
	hasAVX512, requantI8Kernel, requantU8Kernel = false, requantBlocks[int8], requantBlocks[uint8]
	t.Run("chunks", checkRequantSIMD)
	requantI8Kernel, requantU8Kernel = requantAVX2[int8], requantAVX2[uint8]
	t.Run("go", checkRequantSIMD)
}

// TestQ16AVX2Kernel runs the GEMM check on the AVX2 kernel (the one of
// CPUs without AVX-512) whatever this CPU has.
func TestQ16AVX2Kernel(t *testing.T) {
	if requantI8Kernel == nil {
		t.Skip("no AVX2")
	}
	saved := qgemmKernel
	defer func() { qgemmKernel = saved }()
	qgemmKernel = qgemmAVX2
	checkQ16(t)
}

// TestSIMDKernelsSelected: on a CPU with AVX2 (and FMA) every SIMD kernel
// is installed, so the checks above cannot skip silently.
func TestSIMDKernelsSelected(t *testing.T) {
	if !archsimd.X86.AVX2() {
		t.Skip("CPU without AVX2")
	}
	if !useSIMD || qgemmKernel == nil || requantI8Kernel == nil || requantU8Kernel == nil || widenI8Kernel == nil || widenU8Kernel == nil {
		t.Fatal("AVX2 CPU but an integer SIMD kernel is not installed")
	}
	if archsimd.X86.FMA() && gemmF32Kernel == nil {
		t.Fatal("FMA CPU but the float SIMD GEMM is not installed")
	}
	avx512vnni := archsimd.X86.AVX512() && archsimd.X86.AVX512VNNI()
	if got, want := qbKernel32 != nil, avx512vnni || archsimd.X86.AVXVNNI(); got != want {
		t.Fatalf("byte GEMM installed = %v, CPU has AVX-512 VNNI or AVX-VNNI = %v", got, want)
	}
	if qbKernel32 != nil && !avx512vnni && qbKernelRq != nil {
		t.Fatal("AVX-VNNI byte GEMM with the AVX-512 fused requantization installed")
	}
	if dwPairI8 == nil || dwPairU8 == nil || dwPairRunI8 == nil || dwPairRunU8 == nil {
		t.Fatal("AVX2 CPU but the paired depthwise kernels are not installed")
	}
	if want := map[bool]int{true: 32, false: 16}[archsimd.X86.AVX512()]; dwPairWide != want {
		t.Fatalf("paired depthwise blocks of %d channels, expected %d on this CPU", dwPairWide, want)
	}
	if archsimd.X86.AVX512() && (dwPairI8 == nil || rqBlocks == nil) {
		t.Fatal("AVX-512 CPU but the paired depthwise or the AVX-512 requantization is not installed")
	}
}
