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

// One-row kernels (the byte GEMV of layers with a single output pixel):
// out[j] = bias[j] + add + sum_q dot4(a[4q:4q+4], block j/16 group q).

// func vnni1x64(a *uint8, w *int8, kq int, out *int32, bias *int32, add int32)
// Four blocks: w, w+kq*64, w+2*kq*64, w+3*kq*64.
TEXT ·vnni1x64(SB), NOSPLIT, $0-44
	MOVQ a+0(FP), SI
	MOVQ w+8(FP), DI
	MOVQ kq+16(FP), CX
	MOVQ CX, DX
	SHLQ $6, DX
	LEAQ (DI)(DX*1), R8
	LEAQ (R8)(DX*1), R9
	LEAQ (R9)(DX*1), R10
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	MOVQ CX, R11
	SHRQ $1, R11
	JEQ  tail64

loop64:
	VPBROADCASTD (SI), Z16
	VPBROADCASTD 4(SI), Z17
	VPDPBUSD     (DI), Z16, Z0
	VPDPBUSD     (R8), Z16, Z1
	VPDPBUSD     (R9), Z16, Z2
	VPDPBUSD     (R10), Z16, Z3
	VPDPBUSD     64(DI), Z17, Z4
	VPDPBUSD     64(R8), Z17, Z5
	VPDPBUSD     64(R9), Z17, Z6
	VPDPBUSD     64(R10), Z17, Z7
	ADDQ         $8, SI
	ADDQ         $128, DI
	ADDQ         $128, R8
	ADDQ         $128, R9
	ADDQ         $128, R10
	DECQ         R11
	JNE          loop64

tail64:
	TESTQ $1, CX
	JEQ   done64
	VPBROADCASTD (SI), Z16
	VPDPBUSD     (DI), Z16, Z0
	VPDPBUSD     (R8), Z16, Z1
	VPDPBUSD     (R9), Z16, Z2
	VPDPBUSD     (R10), Z16, Z3

done64:
	MOVQ         out+24(FP), DI
	MOVQ         bias+32(FP), AX
	MOVL         add+40(FP), DX
	VPBROADCASTD DX, Z18
	VPADDD       Z4, Z0, Z0
	VPADDD       Z5, Z1, Z1
	VPADDD       Z6, Z2, Z2
	VPADDD       Z7, Z3, Z3
	VPADDD       (AX), Z0, Z0
	VPADDD       64(AX), Z1, Z1
	VPADDD       128(AX), Z2, Z2
	VPADDD       192(AX), Z3, Z3
	VPADDD       Z18, Z0, Z0
	VPADDD       Z18, Z1, Z1
	VPADDD       Z18, Z2, Z2
	VPADDD       Z18, Z3, Z3
	VMOVDQU32    Z0, (DI)
	VMOVDQU32    Z1, 64(DI)
	VMOVDQU32    Z2, 128(DI)
	VMOVDQU32    Z3, 192(DI)
	VZEROUPPER
	RET

// func vnni1x16(a *uint8, w *int8, kq int, out *int32, bias *int32, add int32)
TEXT ·vnni1x16(SB), NOSPLIT, $0-44
	MOVQ a+0(FP), SI
	MOVQ w+8(FP), DI
	MOVQ kq+16(FP), CX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	MOVQ CX, R11
	SHRQ $2, R11
	JEQ  tail16

loop1x16:
	VPBROADCASTD (SI), Z16
	VPBROADCASTD 4(SI), Z17
	VPBROADCASTD 8(SI), Z18
	VPBROADCASTD 12(SI), Z19
	VPDPBUSD     (DI), Z16, Z0
	VPDPBUSD     64(DI), Z17, Z1
	VPDPBUSD     128(DI), Z18, Z2
	VPDPBUSD     192(DI), Z19, Z3
	ADDQ         $16, SI
	ADDQ         $256, DI
	DECQ         R11
	JNE          loop1x16

tail16:
	ANDQ $3, CX
	JEQ  done1x16

tailloop16:
	VPBROADCASTD (SI), Z16
	VPDPBUSD     (DI), Z16, Z0
	ADDQ         $4, SI
	ADDQ         $64, DI
	DECQ         CX
	JNE          tailloop16

done1x16:
	MOVQ         out+24(FP), DI
	MOVQ         bias+32(FP), AX
	MOVL         add+40(FP), DX
	VPBROADCASTD DX, Z18
	VPADDD       Z1, Z0, Z0
	VPADDD       Z3, Z2, Z2
	VPADDD       Z2, Z0, Z0
	VPADDD       (AX), Z0, Z0
	VPADDD       Z18, Z0, Z0
	VMOVDQU32    Z0, (DI)
	VZEROUPPER
	RET
