//go:build goexperiment.simd && amd64 && !purego

#include "textflag.h"

// AVX-512 VNNI microkernels for the byte GEMM (see gemm_qb.go). Each
// computes 8 rows of out = bias + rowadd[row] + sum_q dot4(a, w), where a
// row holds kq groups of 4 unsigned bytes and the weights are packed in
// blocks of 16 channels x kq groups of 4 signed bytes (64 bytes per group).
// VPDPBUSD adds the four u8*s8 products of each group to the int32 lane
// without saturation (wrapping like the scalar int32 sums).

// func vnni8x32(a *uint8, lda int, w *int8, kq int, out *int32, ldo int, bias *int32, rowadd *int32)
// Two blocks: w and w+kq*64. ldo is in int32 elements.
TEXT ·vnni8x32(SB), NOSPLIT, $0-64
	MOVQ a+0(FP), SI
	MOVQ lda+8(FP), BX
	MOVQ w+16(FP), DI
	MOVQ kq+24(FP), CX
	MOVQ CX, R8
	SHLQ $6, R8
	ADDQ DI, R8
	LEAQ (BX)(BX*2), DX
	LEAQ (SI)(BX*4), R9
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	TESTQ CX, CX
	JEQ   done32

loop32:
	VMOVDQU32    (DI), Z16
	VMOVDQU32    (R8), Z17
	VPBROADCASTD (SI), Z18
	VPBROADCASTD (SI)(BX*1), Z19
	VPDPBUSD     Z16, Z18, Z0
	VPDPBUSD     Z17, Z18, Z1
	VPDPBUSD     Z16, Z19, Z2
	VPDPBUSD     Z17, Z19, Z3
	VPBROADCASTD (SI)(BX*2), Z18
	VPBROADCASTD (SI)(DX*1), Z19
	VPDPBUSD     Z16, Z18, Z4
	VPDPBUSD     Z17, Z18, Z5
	VPDPBUSD     Z16, Z19, Z6
	VPDPBUSD     Z17, Z19, Z7
	VPBROADCASTD (R9), Z18
	VPBROADCASTD (R9)(BX*1), Z19
	VPDPBUSD     Z16, Z18, Z8
	VPDPBUSD     Z17, Z18, Z9
	VPDPBUSD     Z16, Z19, Z10
	VPDPBUSD     Z17, Z19, Z11
	VPBROADCASTD (R9)(BX*2), Z18
	VPBROADCASTD (R9)(DX*1), Z19
	VPDPBUSD     Z16, Z18, Z12
	VPDPBUSD     Z17, Z18, Z13
	VPDPBUSD     Z16, Z19, Z14
	VPDPBUSD     Z17, Z19, Z15
	ADDQ         $4, SI
	ADDQ         $4, R9
	ADDQ         $64, DI
	ADDQ         $64, R8
	DECQ         CX
	JNE          loop32

done32:
	MOVQ out+32(FP), DI
	MOVQ ldo+40(FP), BX
	SHLQ $2, BX
	MOVQ bias+48(FP), AX
	MOVQ rowadd+56(FP), CX
	VMOVDQU32 (AX), Z16
	VMOVDQU32 64(AX), Z17

#define STORE2(r, za, zb) \
	VPBROADCASTD (r*4)(CX), Z18; \
	VPADDD  Z16, za, za; \
	VPADDD  Z17, zb, zb; \
	VPADDD  Z18, za, za; \
	VPADDD  Z18, zb, zb; \
	VMOVDQU32 za, (DI); \
	VMOVDQU32 zb, 64(DI); \
	ADDQ BX, DI

	STORE2(0, Z0, Z1)
	STORE2(1, Z2, Z3)
	STORE2(2, Z4, Z5)
	STORE2(3, Z6, Z7)
	STORE2(4, Z8, Z9)
	STORE2(5, Z10, Z11)
	STORE2(6, Z12, Z13)
	STORE2(7, Z14, Z15)
	VZEROUPPER
	RET

// func vnni8x16(a *uint8, lda int, w *int8, kq int, out *int32, ldo int, bias *int32, rowadd *int32)
TEXT ·vnni8x16(SB), NOSPLIT, $0-64
	MOVQ a+0(FP), SI
	MOVQ lda+8(FP), BX
	MOVQ w+16(FP), DI
	MOVQ kq+24(FP), CX
	LEAQ (BX)(BX*2), DX
	LEAQ (SI)(BX*4), R9
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	TESTQ CX, CX
	JEQ   done16

loop16:
	VMOVDQU32    (DI), Z16
	VPBROADCASTD (SI), Z18
	VPBROADCASTD (SI)(BX*1), Z19
	VPBROADCASTD (SI)(BX*2), Z20
	VPBROADCASTD (SI)(DX*1), Z21
	VPDPBUSD     Z16, Z18, Z0
	VPDPBUSD     Z16, Z19, Z1
	VPDPBUSD     Z16, Z20, Z2
	VPDPBUSD     Z16, Z21, Z3
	VPBROADCASTD (R9), Z18
	VPBROADCASTD (R9)(BX*1), Z19
	VPBROADCASTD (R9)(BX*2), Z20
	VPBROADCASTD (R9)(DX*1), Z21
	VPDPBUSD     Z16, Z18, Z4
	VPDPBUSD     Z16, Z19, Z5
	VPDPBUSD     Z16, Z20, Z6
	VPDPBUSD     Z16, Z21, Z7
	ADDQ         $4, SI
	ADDQ         $4, R9
	ADDQ         $64, DI
	DECQ         CX
	JNE          loop16

done16:
	MOVQ out+32(FP), DI
	MOVQ ldo+40(FP), BX
	SHLQ $2, BX
	MOVQ bias+48(FP), AX
	MOVQ rowadd+56(FP), CX
	VMOVDQU32 (AX), Z16

#define STORE1(r, za) \
	VPBROADCASTD (r*4)(CX), Z18; \
	VPADDD  Z16, za, za; \
	VPADDD  Z18, za, za; \
	VMOVDQU32 za, (DI); \
	ADDQ BX, DI

	STORE1(0, Z0)
	STORE1(1, Z1)
	STORE1(2, Z2)
	STORE1(3, Z3)
	STORE1(4, Z4)
	STORE1(5, Z5)
	STORE1(6, Z6)
	STORE1(7, Z7)
	VZEROUPPER
	RET
