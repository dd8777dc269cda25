//go:build goexperiment.simd && amd64 && !purego

#include "textflag.h"

// AVX-VNNI (VEX-encoded VPDPBUSD on 256-bit vectors) byte GEMM
// microkernels for x86 CPUs with AVX-VNNI but without AVX-512 (Intel
// Alder Lake and later client and Atom cores such as the N100): the same
// packed weights and results as vnni8x16/vnni8x32 (vnni_amd64.s), four
// rows at a time (16 ymm registers hold 4 rows x 16 channels of
// accumulators, two weight vectors and two broadcast rows). The Go
// assembler knows only the EVEX form of VPDPBUSD, so the instruction is
// spelled out in bytes (VEX.256.66.0F38.W0 50 /r; checked with objdump):
// DPBUSD_<acc>_<act> adds the dot products of the broadcast activation
// bytes in Y10 or Y11 with the weights in Y8 (even accumulators) or Y9
// (odd ones).

#define DPBUSD_Y0_Y10 BYTE $0xC4; BYTE $0xC2; BYTE $0x2D; BYTE $0x50; BYTE $0xC0
#define DPBUSD_Y1_Y10 BYTE $0xC4; BYTE $0xC2; BYTE $0x2D; BYTE $0x50; BYTE $0xC9
#define DPBUSD_Y2_Y11 BYTE $0xC4; BYTE $0xC2; BYTE $0x25; BYTE $0x50; BYTE $0xD0
#define DPBUSD_Y3_Y11 BYTE $0xC4; BYTE $0xC2; BYTE $0x25; BYTE $0x50; BYTE $0xD9
#define DPBUSD_Y4_Y10 BYTE $0xC4; BYTE $0xC2; BYTE $0x2D; BYTE $0x50; BYTE $0xE0
#define DPBUSD_Y5_Y10 BYTE $0xC4; BYTE $0xC2; BYTE $0x2D; BYTE $0x50; BYTE $0xE9
#define DPBUSD_Y6_Y11 BYTE $0xC4; BYTE $0xC2; BYTE $0x25; BYTE $0x50; BYTE $0xF0
#define DPBUSD_Y7_Y11 BYTE $0xC4; BYTE $0xC2; BYTE $0x25; BYTE $0x50; BYTE $0xF9

// STORE_ROW(acclo, acchi, r) writes row r: bias + rowadd[r] + acc.
#define STORE_ROW(LO, HI, OFF, ROW) \
	VPBROADCASTD OFF(R10), Y12 \
	VPADDD       Y12, LO, LO \
	VPADDD       Y12, HI, HI \
	VPADDD       Y14, LO, LO \
	VPADDD       Y15, HI, HI \
	VMOVDQU      LO, (ROW) \
	VMOVDQU      HI, 32(ROW)

// func avxvnni4x16(a *uint8, lda int, w *int8, kq int, out *int32, ldo int, bias *int32, rowadd *int32)
// Rows [0, 4) of one block of 16 channels; ldo in int32 elements.
TEXT ·avxvnni4x16(SB), NOSPLIT, $0-64
	MOVQ a+0(FP), SI
	MOVQ lda+8(FP), BX
	MOVQ w+16(FP), DI
	MOVQ kq+24(FP), CX
	LEAQ (BX)(BX*2), DX
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6
	VPXOR Y7, Y7, Y7
	TESTQ CX, CX
	JEQ   done

loop:
	VMOVDQU      (DI), Y8
	VMOVDQU      32(DI), Y9
	VPBROADCASTD (SI), Y10
	VPBROADCASTD (SI)(BX*1), Y11
	DPBUSD_Y0_Y10
	DPBUSD_Y1_Y10
	DPBUSD_Y2_Y11
	DPBUSD_Y3_Y11
	VPBROADCASTD (SI)(BX*2), Y10
	VPBROADCASTD (SI)(DX*1), Y11
	DPBUSD_Y4_Y10
	DPBUSD_Y5_Y10
	DPBUSD_Y6_Y11
	DPBUSD_Y7_Y11
	ADDQ $4, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  loop

done:
	MOVQ out+32(FP), AX
	MOVQ ldo+40(FP), R8
	SHLQ $2, R8
	MOVQ bias+48(FP), R9
	MOVQ rowadd+56(FP), R10
	VMOVDQU (R9), Y14
	VMOVDQU 32(R9), Y15
	STORE_ROW(Y0, Y1, 0, AX)
	ADDQ R8, AX
	STORE_ROW(Y2, Y3, 4, AX)
	ADDQ R8, AX
	STORE_ROW(Y4, Y5, 8, AX)
	ADDQ R8, AX
	STORE_ROW(Y6, Y7, 12, AX)
	VZEROUPPER
	RET
