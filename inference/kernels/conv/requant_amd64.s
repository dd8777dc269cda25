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
// on the same side, and the clamp bounds are inside that range. c holds
// the output zero point and clamp bounds; mode bit 0: single rounding;
// bit 1: uint8 output; bit 2: some left shift is not zero (double
// rounding). Each of the six combinations has its own loop (built from
// the macros below), so a row runs no test of the mode and no left shift
// of zero. Written in assembly for the same reason as requant16: the Go
// loop had no registers left for sixteen lanes' parameters and spent
// about a third of its instructions narrowing eight lanes at a time.
//
// Parameter offsets in a chunk's block (bytes; +32 for the high half):
// double rounding: left 0, mult 64, mult of the odd lanes 128, mask>>1
// 192, mask 256, right 320; single rounding: mult 0, mult of the odd
// lanes 64, rounding terms 128 (even lanes) and 192 (odd), shifts 256 and
// 320 (64-bit lanes).

// RQ2_LEFT shifts the row's sums (Y0, Y1) left by the left shifts.
#define RQ2_LEFT \
	VPSLLVD 0(DX), Y0, Y0 \
	VPSLLVD 32(DX), Y1, Y1

// RQ2_DOUBLE: SaturatingRoundingDoublingHighMul as (x·m + 2^30) >> 31 on
// the even and odd lanes' 64-bit products, then RoundingDivideByPOT: x >>
// right, plus one where (x & mask) + (x < 0 ? -1 : 0) > mask>>1.
#define RQ2_DOUBLE \
	VPMULDQ  64(DX), Y0, Y2 \
	VPMULDQ  96(DX), Y1, Y4 \
	VPSRLQ   $32, Y0, Y3 \
	VPSRLQ   $32, Y1, Y5 \
	VPMULDQ  128(DX), Y3, Y3 \
	VPMULDQ  160(DX), Y5, Y5 \
	VPADDQ   Y14, Y2, Y2 \
	VPADDQ   Y14, Y3, Y3 \
	VPADDQ   Y14, Y4, Y4 \
	VPADDQ   Y14, Y5, Y5 \
	VPSRLQ   $31, Y2, Y2 \
	VPSLLQ   $1, Y3, Y3 \
	VPSRLQ   $31, Y4, Y4 \
	VPSLLQ   $1, Y5, Y5 \
	VPBLENDD $0xAA, Y3, Y2, Y0 \
	VPBLENDD $0xAA, Y5, Y4, Y1 \
	VPSRAD   $31, Y0, Y2 \
	VPSRAD   $31, Y1, Y4 \
	VPAND    256(DX), Y0, Y3 \
	VPAND    288(DX), Y1, Y5 \
	VPADDD   Y2, Y3, Y3 \
	VPADDD   Y4, Y5, Y5 \
	VPCMPGTD 192(DX), Y3, Y3 \
	VPCMPGTD 224(DX), Y5, Y5 \
	VPSRAVD  320(DX), Y0, Y0 \
	VPSRAVD  352(DX), Y1, Y1 \
	VPSUBD   Y3, Y0, Y0 \
	VPSUBD   Y5, Y1, Y1

// RQ2_SIGNS sets Y6–Y9 to the sign bit shifted by each 64-bit lane's
// shift (single rounding, once per chunk).
#define RQ2_SIGNS \
	VPSRLVQ 256(DX), Y14, Y6 \
	VPSRLVQ 320(DX), Y14, Y7 \
	VPSRLVQ 288(DX), Y14, Y8 \
	VPSRLVQ 352(DX), Y14, Y9

// RQ2_SINGLE: (x·m + 2^(t-1)) >> t, arithmetic, on the even and odd
// lanes' 64-bit products: flip the sign bit, shift logically, subtract
// the shifted sign bit.
#define RQ2_SINGLE \
	VPMULDQ  0(DX), Y0, Y2 \
	VPMULDQ  32(DX), Y1, Y4 \
	VPSRLQ   $32, Y0, Y3 \
	VPSRLQ   $32, Y1, Y5 \
	VPMULDQ  64(DX), Y3, Y3 \
	VPMULDQ  96(DX), Y5, Y5 \
	VPADDQ   128(DX), Y2, Y2 \
	VPADDQ   160(DX), Y4, Y4 \
	VPADDQ   192(DX), Y3, Y3 \
	VPADDQ   224(DX), Y5, Y5 \
	VPXOR    Y14, Y2, Y2 \
	VPXOR    Y14, Y3, Y3 \
	VPXOR    Y14, Y4, Y4 \
	VPXOR    Y14, Y5, Y5 \
	VPSRLVQ  256(DX), Y2, Y2 \
	VPSRLVQ  320(DX), Y3, Y3 \
	VPSRLVQ  288(DX), Y4, Y4 \
	VPSRLVQ  352(DX), Y5, Y5 \
	VPSUBQ   Y6, Y2, Y2 \
	VPSUBQ   Y7, Y3, Y3 \
	VPSUBQ   Y8, Y4, Y4 \
	VPSUBQ   Y9, Y5, Y5 \
	VPSLLQ   $32, Y3, Y3 \
	VPSLLQ   $32, Y5, Y5 \
	VPBLENDD $0xAA, Y3, Y2, Y0 \
	VPBLENDD $0xAA, Y5, Y4, Y1

// RQ2_STORE adds the zero point, narrows the row's 16 lanes to bytes
// (PACK: VPACKSSWB or VPACKUSWB; [0-3 8-11 | 4-7 12-15] as int16 put in
// order by VPERMQ), clamps them (MAX, MIN: signed or unsigned byte
// min/max) and stores them.
#define RQ2_STORE(PACK, MAX, MIN) \
	VPADDD       Y13, Y0, Y0 \
	VPADDD       Y13, Y1, Y1 \
	VPACKSSDW    Y1, Y0, Y0 \
	VPERMQ       $0xD8, Y0, Y0 \
	VEXTRACTI128 $1, Y0, X1 \
	PACK         X1, X0, X0 \
	MAX          X11, X0, X0 \
	MIN          X12, X0, X0 \
	VMOVDQU      X0, (BX)

// RQ2_ROWS starts a chunk's rows (R13: its sums, BX: its bytes).
#define RQ2_ROWS \
	MOVQ SI, R13 \
	MOVQ DI, BX \
	MOVQ R10, CX

// RQ2_NEXT goes on with the next row (ROW), then the next chunk (CHUNK).
#define RQ2_NEXT(ROW, CHUNK) \
	ADDQ R8, R13 \
	ADDQ R9, BX \
	DECQ CX \
	JNE  ROW \
	ADDQ $64, SI \
	ADDQ $16, DI \
	ADDQ $384, DX \
	DECQ R11 \
	JNE  CHUNK \
	VZEROUPPER \
	RET

// RQ2_LOAD loads a row's 16 sums.
#define RQ2_LOAD \
	VMOVDQU (R13), Y0 \
	VMOVDQU 32(R13), Y1

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
	CMPQ R12, $0
	JEQ  v0
	CMPQ R12, $4
	JEQ  v4
	CMPQ R12, $2
	JEQ  v2
	CMPQ R12, $6
	JEQ  v6
	CMPQ R12, $1
	JEQ  v1
	CMPQ R12, $3
	JEQ  v3
	VZEROUPPER
	RET

// Mode 0: double rounding, int8.
v0:
	RQ2_ROWS

v0row:
	RQ2_LOAD
	RQ2_DOUBLE
	RQ2_STORE(VPACKSSWB, VPMAXSB, VPMINSB)
	RQ2_NEXT(v0row, v0)

// Mode 4: double rounding, left shifts, int8.
v4:
	RQ2_ROWS

v4row:
	RQ2_LOAD
	RQ2_LEFT
	RQ2_DOUBLE
	RQ2_STORE(VPACKSSWB, VPMAXSB, VPMINSB)
	RQ2_NEXT(v4row, v4)

// Mode 2: double rounding, uint8.
v2:
	RQ2_ROWS

v2row:
	RQ2_LOAD
	RQ2_DOUBLE
	RQ2_STORE(VPACKUSWB, VPMAXUB, VPMINUB)
	RQ2_NEXT(v2row, v2)

// Mode 6: double rounding, left shifts, uint8.
v6:
	RQ2_ROWS

v6row:
	RQ2_LOAD
	RQ2_LEFT
	RQ2_DOUBLE
	RQ2_STORE(VPACKUSWB, VPMAXUB, VPMINUB)
	RQ2_NEXT(v6row, v6)

// Mode 1: single rounding, int8.
v1:
	RQ2_SIGNS
	RQ2_ROWS

v1row:
	RQ2_LOAD
	RQ2_SINGLE
	RQ2_STORE(VPACKSSWB, VPMAXSB, VPMINSB)
	RQ2_NEXT(v1row, v1)

// Mode 3: single rounding, uint8.
v3:
	RQ2_SIGNS
	RQ2_ROWS

v3row:
	RQ2_LOAD
	RQ2_SINGLE
	RQ2_STORE(VPACKUSWB, VPMAXUB, VPMINUB)
	RQ2_NEXT(v3row, v3)
