//go:build goexperiment.simd && amd64 && !purego

#include "textflag.h"

// func q16AVX2x4(a *int16, lda int, w *int16, kp2 int, out *int32, ldo int, bias *int32)
//
// Four rows by sixteen channels of the 16-bit GEMM (see qgemmAVX2): for
// each of the kp2 pairs of reduction steps, each row's two int16 inputs
// are broadcast as one 32-bit word and multiplied with the sixteen
// channels' packed pair (VPMADDWD: x0*w0 + x1*w1 per int32 lane, exact
// for these operands, |x|, |w| ≤ 255) and added to that row's two
// accumulators (wrapping int32, as the scalar loop). The bias is added
// and the 4×16 sums stored at out, rows ldo int32 apart. lda is the row
// stride of a in bytes. Written in assembly because the simd/archsimd
// loop compiled to about fifty instructions per step around its twelve
// vector ones (bounds checks and spills of the eight accumulators): the
// Go wrapper checks every bound once per call.
TEXT ·q16AVX2x4(SB), NOSPLIT, $0-56
	MOVQ a+0(FP), SI
	MOVQ lda+8(FP), R8
	MOVQ w+16(FP), DI
	MOVQ kp2+24(FP), CX
	MOVQ out+32(FP), DX
	MOVQ ldo+40(FP), R10
	MOVQ bias+48(FP), BX
	LEAQ (R8)(R8*2), R9
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6
	VPXOR Y7, Y7, Y7

step:
	VMOVDQU (DI), Y12
	VMOVDQU 32(DI), Y13
	VPBROADCASTD (SI), Y14
	VPMADDWD Y12, Y14, Y15
	VPADDD Y15, Y0, Y0
	VPMADDWD Y13, Y14, Y14
	VPADDD Y14, Y1, Y1
	VPBROADCASTD (SI)(R8*1), Y14
	VPMADDWD Y12, Y14, Y15
	VPADDD Y15, Y2, Y2
	VPMADDWD Y13, Y14, Y14
	VPADDD Y14, Y3, Y3
	VPBROADCASTD (SI)(R8*2), Y14
	VPMADDWD Y12, Y14, Y15
	VPADDD Y15, Y4, Y4
	VPMADDWD Y13, Y14, Y14
	VPADDD Y14, Y5, Y5
	VPBROADCASTD (SI)(R9*1), Y14
	VPMADDWD Y12, Y14, Y15
	VPADDD Y15, Y6, Y6
	VPMADDWD Y13, Y14, Y14
	VPADDD Y14, Y7, Y7
	ADDQ $4, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  step

	VMOVDQU (BX), Y12
	VMOVDQU 32(BX), Y13
	SHLQ $2, R10
	VPADDD Y12, Y0, Y0
	VPADDD Y13, Y1, Y1
	VMOVDQU Y0, (DX)
	VMOVDQU Y1, 32(DX)
	ADDQ R10, DX
	VPADDD Y12, Y2, Y2
	VPADDD Y13, Y3, Y3
	VMOVDQU Y2, (DX)
	VMOVDQU Y3, 32(DX)
	ADDQ R10, DX
	VPADDD Y12, Y4, Y4
	VPADDD Y13, Y5, Y5
	VMOVDQU Y4, (DX)
	VMOVDQU Y5, 32(DX)
	ADDQ R10, DX
	VPADDD Y12, Y6, Y6
	VPADDD Y13, Y7, Y7
	VMOVDQU Y6, (DX)
	VMOVDQU Y7, 32(DX)
	VZEROUPPER
	RET
