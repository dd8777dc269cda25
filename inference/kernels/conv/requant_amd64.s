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

// func requant16AVX2(acc *int32, lda int, out *byte, ldo int, rows int, chunks int, p *int32, c *int32, mode int)
//
// requant16 on AVX2: the same arithmetic and parameter blocks (p, six
// 16-lane vectors per chunk, read as memory operands, two 8-lane halves
// each), 8 lanes per instruction. AVX2 has no 64-bit arithmetic shift, so
// single rounding shifts logically with the sign bit flipped and
// subtracts the shifted sign bit (Y6–Y9 hold it per chunk). The 16 sums
// of a row plus the zero point (in int32, wrapping as the scalar code
// does) are narrowed together: VPACKSSDW to int16, VPACKUSWB/VPACKSSWB to
// bytes, then clamped with byte min/max. That equals clamping in int32:
// each saturation keeps a value that is out of the byte range out of it
// on the same side, and the clamp bounds are inside that range. c holds the
// output zero point and clamp bounds; mode bit 0: single rounding; bit 1:
// uint8 output. Written in assembly for the same reason as requant16: the
// Go loop had no registers left for sixteen lanes' parameters and spent
// about a third of its instructions narrowing eight lanes at a time.
TEXT ·requant16AVX2(SB), NOSPLIT, $0-72
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
	// Y13: the zero point in 8 dwords; X11, X12: the clamp bounds in 16
	// bytes; Y14: 2^30 per 64-bit lane (double rounding) or the sign bit
	// (single rounding).
	VPBROADCASTD 0(AX), Y13
	VPBROADCASTB 4(AX), X11
	VPBROADCASTB 8(AX), X12
	MOVQ $0x40000000, BX
	TESTQ $1, R12
	JEQ  consts
	MOVQ $0x8000000000000000, BX

consts:
	MOVQ BX, X14
	VPBROADCASTQ X14, Y14

chunk:
	TESTQ $1, R12
	JEQ  rows
	// Single rounding: the sign bit shifted by each lane's shift.
	VPSRLVQ 256(DX), Y14, Y6
	VPSRLVQ 320(DX), Y14, Y7
	VPSRLVQ 288(DX), Y14, Y8
	VPSRLVQ 352(DX), Y14, Y9

rows:
	MOVQ SI, R13
	MOVQ DI, BX
	MOVQ R10, CX

row:
	VMOVDQU (R13), Y0
	VMOVDQU 32(R13), Y1
	TESTQ $1, R12
	JNE   single
	// Double rounding: left at 0, mult at 64, mult of the odd lanes at
	// 128, mask>>1 at 192, mask at 256, right at 320 (bytes, +32 for
	// the high half).
	VPSLLVD  0(DX), Y0, Y0
	VPSLLVD  32(DX), Y1, Y1
	VPMULDQ  64(DX), Y0, Y2
	VPMULDQ  96(DX), Y1, Y4
	VPSRLQ   $32, Y0, Y3
	VPSRLQ   $32, Y1, Y5
	VPMULDQ  128(DX), Y3, Y3
	VPMULDQ  160(DX), Y5, Y5
	VPADDQ   Y14, Y2, Y2
	VPADDQ   Y14, Y3, Y3
	VPADDQ   Y14, Y4, Y4
	VPADDQ   Y14, Y5, Y5
	VPSRLQ   $31, Y2, Y2
	VPSLLQ   $1, Y3, Y3
	VPSRLQ   $31, Y4, Y4
	VPSLLQ   $1, Y5, Y5
	VPBLENDD $0xAA, Y3, Y2, Y0
	VPBLENDD $0xAA, Y5, Y4, Y1
	// RoundingDivideByPOT: x>>right, plus one where (x&mask) + (x<0 ?
	// -1 : 0) > mask>>1.
	VPSRAD   $31, Y0, Y2
	VPSRAD   $31, Y1, Y4
	VPAND    256(DX), Y0, Y3
	VPAND    288(DX), Y1, Y5
	VPADDD   Y2, Y3, Y3
	VPADDD   Y4, Y5, Y5
	VPCMPGTD 192(DX), Y3, Y3
	VPCMPGTD 224(DX), Y5, Y5
	VPSRAVD  320(DX), Y0, Y0
	VPSRAVD  352(DX), Y1, Y1
	VPSUBD   Y3, Y0, Y0
	VPSUBD   Y5, Y1, Y1
	JMP      narrow

single:
	// Single rounding: mult at 0, mult of the odd lanes at 64, rounding
	// terms at 128 (even lanes) and 192 (odd), shifts at 256 and 320
	// (64-bit lanes; +32 for the high half).
	VPMULDQ  0(DX), Y0, Y2
	VPMULDQ  32(DX), Y1, Y4
	VPSRLQ   $32, Y0, Y3
	VPSRLQ   $32, Y1, Y5
	VPMULDQ  64(DX), Y3, Y3
	VPMULDQ  96(DX), Y5, Y5
	VPADDQ   128(DX), Y2, Y2
	VPADDQ   160(DX), Y4, Y4
	VPADDQ   192(DX), Y3, Y3
	VPADDQ   224(DX), Y5, Y5
	VPXOR    Y14, Y2, Y2
	VPXOR    Y14, Y3, Y3
	VPXOR    Y14, Y4, Y4
	VPXOR    Y14, Y5, Y5
	VPSRLVQ  256(DX), Y2, Y2
	VPSRLVQ  320(DX), Y3, Y3
	VPSRLVQ  288(DX), Y4, Y4
	VPSRLVQ  352(DX), Y5, Y5
	VPSUBQ   Y6, Y2, Y2
	VPSUBQ   Y7, Y3, Y3
	VPSUBQ   Y8, Y4, Y4
	VPSUBQ   Y9, Y5, Y5
	VPSLLQ   $32, Y3, Y3
	VPSLLQ   $32, Y5, Y5
	VPBLENDD $0xAA, Y3, Y2, Y0
	VPBLENDD $0xAA, Y5, Y4, Y1

narrow:
	// Plus the zero point (int32, wrapping like the scalar code), then
	// [0-3 8-11 | 4-7 12-15] as int16 and put in order.
	VPADDD       Y13, Y0, Y0
	VPADDD       Y13, Y1, Y1
	VPACKSSDW    Y1, Y0, Y0
	VPERMQ       $0xD8, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	TESTQ        $2, R12
	JNE          unsigned
	VPACKSSWB    X1, X0, X0
	VPMAXSB      X11, X0, X0
	VPMINSB      X12, X0, X0
	JMP          store

unsigned:
	VPACKUSWB X1, X0, X0
	VPMAXUB   X11, X0, X0
	VPMINUB   X12, X0, X0

store:
	VMOVDQU X0, (BX)
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
