//go:build goexperiment.simd && amd64 && !purego

#include "textflag.h"

// vnniRq8 is vnni8x32 / vnni8x16 (vnni_amd64.s) with the requantization
// of requant16 (requant_amd64.s) fused in: the 8 rows x 16 or 32 channel
// sums never leave the registers; each is requantized and stored as
// bytes (the first rows rows only, the channels of mask only).
//
// func vnniRq8(a *uint8, lda int, w *int8, kq int, out *byte, ldo int, bias *int32, rowadd *int32, p *int32, c *int32, mode int, rows int, mask int, nb int)
//
// nb is the number of 16-channel blocks (1 or 2: w and w+kq*64); p holds
// requant16's six parameter vectors per block (384 bytes each), c the
// output zero point and clamp bounds; mode bit 0 selects single rounding.
// The clamp bounds lie within the output type's range, so a truncating
// narrow (VPMOVDB) stores int8 and uint8 alike. Row r's sums for block
// b are in Z(2r+b) (block 1's are moved down for the second pass).
TEXT ·vnniRq8(SB), NOSPLIT, $0-112
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
	JEQ   epilogue
	MOVQ  nb+104(FP), AX
	CMPQ  AX, $1
	JEQ   loop16

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
	JMP          epilogue

loop16:
	VMOVDQU32    (DI), Z16
	VPBROADCASTD (SI), Z18
	VPBROADCASTD (SI)(BX*1), Z19
	VPBROADCASTD (SI)(BX*2), Z20
	VPBROADCASTD (SI)(DX*1), Z21
	VPDPBUSD     Z16, Z18, Z0
	VPDPBUSD     Z16, Z19, Z2
	VPDPBUSD     Z16, Z20, Z4
	VPDPBUSD     Z16, Z21, Z6
	VPBROADCASTD (R9), Z18
	VPBROADCASTD (R9)(BX*1), Z19
	VPBROADCASTD (R9)(BX*2), Z20
	VPBROADCASTD (R9)(DX*1), Z21
	VPDPBUSD     Z16, Z18, Z8
	VPDPBUSD     Z16, Z19, Z10
	VPDPBUSD     Z16, Z20, Z12
	VPDPBUSD     Z16, Z21, Z14
	ADDQ         $4, SI
	ADDQ         $4, R9
	ADDQ         $64, DI
	DECQ         CX
	JNE          loop16

epilogue:
	MOVQ out+32(FP), DI
	MOVQ ldo+40(FP), R9
	MOVQ bias+48(FP), AX
	MOVQ p+64(FP), DX
	MOVQ c+72(FP), R10
	MOVQ mode+80(FP), R12
	MOVQ mask+96(FP), R13
	MOVQ nb+104(FP), R11
	VPBROADCASTD 0(R10), Z20
	VPBROADCASTD 4(R10), Z21
	VPBROADCASTD 8(R10), Z22
	MOVL $0xAAAA, BX
	KMOVW BX, K1
	MOVQ $0x40000000, BX
	VPBROADCASTQ BX, Z23
	MOVL $1, BX
	VPBROADCASTD BX, Z24

// Bias and row sum, then (after the rounding) zero point, clamp and a
// masked narrowing store; the last row of the call leaves the block.
#define PRE(za) \
	VPBROADCASTD (CX), Z19; \
	VPADDD       (AX), za, za; \
	VPADDD       Z19, za, za

#define STORE(za) \
	VPADDD  Z20, za, za; \
	VPMAXSD Z21, za, za; \
	VPMINSD Z22, za, za; \
	VPMOVDB za, K3, (BX); \
	ADDQ    R9, BX; \
	ADDQ    $4, CX; \
	DECQ    R8; \
	JEQ     blockdone

// Double rounding (see requant16): Z25 left, Z26 mult, Z27 mult of the
// odd lanes, Z28 mask>>1, Z29 mask, Z30 right.
#define ROWD(za) \
	PRE(za); \
	VPSLLVD   Z25, za, za; \
	VPMULDQ   Z26, za, Z16; \
	VPSRLQ    $32, za, Z17; \
	VPMULDQ   Z27, Z17, Z17; \
	VPADDQ    Z23, Z16, Z16; \
	VPADDQ    Z23, Z17, Z17; \
	VPSRLQ    $31, Z16, Z16; \
	VPSLLQ    $1, Z17, Z17; \
	VPBLENDMD Z17, Z16, K1, za; \
	VPSRAD    $31, za, Z18; \
	VPSUBD    Z18, Z28, Z18; \
	VPANDD    Z29, za, Z19; \
	VPSRAVD   Z30, za, za; \
	VPCMPGTD  Z18, Z19, K2; \
	VPADDD    Z24, za, K2, za; \
	STORE(za)

// Single rounding: Z25 mult, Z26 mult of the odd lanes, Z27/Z28
// rounding terms (even/odd lanes, 64-bit), Z29/Z30 shifts.
#define ROWS(za) \
	PRE(za); \
	VPMULDQ   Z25, za, Z16; \
	VPSRLQ    $32, za, Z17; \
	VPMULDQ   Z26, Z17, Z17; \
	VPADDQ    Z27, Z16, Z16; \
	VPADDQ    Z28, Z17, Z17; \
	VPSRAVQ   Z29, Z16, Z16; \
	VPSRAVQ   Z30, Z17, Z17; \
	VPSLLQ    $32, Z17, Z17; \
	VPBLENDMD Z17, Z16, K1, za; \
	STORE(za)

block:
	KMOVW     R13, K3
	VMOVDQU32 0(DX), Z25
	VMOVDQU32 64(DX), Z26
	VMOVDQU32 128(DX), Z27
	VMOVDQU32 192(DX), Z28
	VMOVDQU32 256(DX), Z29
	VMOVDQU32 320(DX), Z30
	MOVQ      DI, BX
	MOVQ      rowadd+56(FP), CX
	MOVQ      rows+88(FP), R8
	TESTQ     $1, R12
	JNE       single
	ROWD(Z0)
	ROWD(Z2)
	ROWD(Z4)
	ROWD(Z6)
	ROWD(Z8)
	ROWD(Z10)
	ROWD(Z12)
	ROWD(Z14)
	JMP       blockdone

single:
	ROWS(Z0)
	ROWS(Z2)
	ROWS(Z4)
	ROWS(Z6)
	ROWS(Z8)
	ROWS(Z10)
	ROWS(Z12)
	ROWS(Z14)

blockdone:
	DECQ      R11
	JEQ       ret
	VMOVDQA64 Z1, Z0
	VMOVDQA64 Z3, Z2
	VMOVDQA64 Z5, Z4
	VMOVDQA64 Z7, Z6
	VMOVDQA64 Z9, Z8
	VMOVDQA64 Z11, Z10
	VMOVDQA64 Z13, Z12
	VMOVDQA64 Z15, Z14
	ADDQ      $16, DI
	ADDQ      $64, AX
	ADDQ      $384, DX
	SHRQ      $16, R13
	JMP       block

ret:
	VZEROUPPER
	RET
