//go:build goexperiment.simd && amd64 && !purego

#include "textflag.h"

// func requant16(acc *int32, lda int, out *byte, ldo int, rows int, chunks int, p *int32, c *int32, mode int)
//
// AVX-512 requantization of rows x (16*chunks) accumulators (row strides
// lda int32 values and ldo bytes), 16 channels at a time; p holds six
// 16-lane parameter vectors per chunk (see rqVec.blk), c the output zero
// point and clamp bounds. mode bit 0: single rounding; bit 1: uint8 output.
TEXT ·requant16(SB), NOSPLIT, $0-72
	MOVQ acc+0(FP), SI
	MOVQ lda+8(FP), R8
	SHLQ $2, R8
	MOVQ out+16(FP), DI
	MOVQ ldo+24(FP), R9
	MOVQ rows+32(FP), R10
	MOVQ chunks+40(FP), R11
	MOVQ p+48(FP), DX
	MOVQ c+56(FP), AX
	MOVQ mode+64(FP), R12
	VPBROADCASTD 0(AX), Z20
	VPBROADCASTD 4(AX), Z21
	VPBROADCASTD 8(AX), Z22
	MOVL $0xAAAA, BX
	KMOVW BX, K1
	MOVQ $0x40000000, BX
	VPBROADCASTQ BX, Z23
	MOVL $1, BX
	VPBROADCASTD BX, Z24

chunk:
	VMOVDQU32 0(DX), Z10
	VMOVDQU32 64(DX), Z11
	VMOVDQU32 128(DX), Z12
	VMOVDQU32 192(DX), Z13
	VMOVDQU32 256(DX), Z14
	VMOVDQU32 320(DX), Z15
	MOVQ SI, R13
	MOVQ DI, BX
	MOVQ R10, CX

row:
	VMOVDQU32 (R13), Z0
	TESTQ $1, R12
	JNE   single
	// Double rounding: Z10 left, Z11 mult, Z12 mult of the odd lanes,
	// Z13 mask>>1, Z14 mask, Z15 right.
	VPSLLVD   Z10, Z0, Z0
	VPMULDQ   Z11, Z0, Z1
	VPSRLQ    $32, Z0, Z2
	VPMULDQ   Z12, Z2, Z2
	VPADDQ    Z23, Z1, Z1
	VPADDQ    Z23, Z2, Z2
	VPSRLQ    $31, Z1, Z1
	VPSLLQ    $1, Z2, Z2
	VPBLENDMD Z2, Z1, K1, Z0
	// RoundingDivideByPOT: (x >> right) + (x&mask > mask>>1 + (x<0)).
	VPSRAD    $31, Z0, Z3
	VPSUBD    Z3, Z13, Z3
	VPANDD    Z14, Z0, Z4
	VPSRAVD   Z15, Z0, Z0
	VPCMPGTD  Z3, Z4, K2
	VPADDD    Z24, Z0, K2, Z0
	JMP       store

single:
	// Single rounding: Z10 mult, Z11 mult of the odd lanes, Z12/Z13
	// rounding terms (even/odd lanes, 64-bit), Z14/Z15 shifts.
	VPMULDQ   Z10, Z0, Z1
	VPSRLQ    $32, Z0, Z2
	VPMULDQ   Z11, Z2, Z2
	VPADDQ    Z12, Z1, Z1
	VPADDQ    Z13, Z2, Z2
	VPSRAVQ   Z14, Z1, Z1
	VPSRAVQ   Z15, Z2, Z2
	VPSLLQ    $32, Z2, Z2
	VPBLENDMD Z2, Z1, K1, Z0

store:
	VPADDD  Z20, Z0, Z0
	VPMAXSD Z21, Z0, Z0
	VPMINSD Z22, Z0, Z0
	TESTQ   $2, R12
	JNE     unsigned
	VPMOVSDB Z0, (BX)
	JMP     next

unsigned:
	VPMOVUSDB Z0, (BX)

next:
	ADDQ R8, R13
	ADDQ R9, BX
	DECQ CX
	JNE  row
	ADDQ $64, SI
	ADDQ $16, DI
	ADDQ $384, DX
	DECQ R11
	JNE  chunk
	VZEROUPPER
	RET
