//go:build goexperiment.simd && arm64 && !purego

#include "textflag.h"

// The Go assembler has no SQRDMULH, SQDMULH or SRSHL (register form):
// each is a WORD holding its encoding (4S arrangement; Vd, Vn, Vm).
#define SQRDMULH(d, n, m) WORD $(0x6EA0B400 | ((m)<<16) | ((n)<<5) | (d))
#define SQDMULH(d, n, m) WORD $(0x4EA0B400 | ((m)<<16) | ((n)<<5) | (d))
#define SRSHL(d, n, m) WORD $(0x4EA05400 | ((m)<<16) | ((n)<<5) | (d))

// func requant16NEON(acc *int32, lda int, out *byte, ldo int, rows int, chunks int, p *int32, c *int32, mode int)
//
// Requantization of rows x (16*chunks) accumulators (row strides lda
// int32 values and ldo bytes), 16 channels at a time, with the NEON
// instructions TFLite's own arithmetic was modelled on: p holds three
// 16-lane parameter vectors per chunk (see rqBlocksNEON), c the output
// zero point and clamp bounds; mode bit 0: single rounding.
//
// Double rounding (parameters: multiplier, left shift, -right shift):
// SSHL by the left shift (x·2^left, wrapping); SQRDMULH is
// SaturatingRoundingDoublingHighMul exactly; RoundingDivideByPOT is SRSHL
// by -right (adds 2^(right-1), shifts arithmetically: ties upwards) after
// subtracting one from negative values when right > 0 (SQADD of
// (x & -right) >> 31: ties of negative values then go down, away from
// zero, as the scalar code rounds them).
//
// Single rounding (parameters: multiplier, -(total-31), and all ones
// where total is 31): (x·m + 2^(t-1)) >> t is SQRDMULH for t = 31 and
// SRSHL(SQDMULH(x, m), 31-t) otherwise (floor(x·m / 2^31), then a
// rounding shift by the rest: the two floors nest into one), the lanes
// picked with BIF.
//
// Then the zero point, the clamp, and three narrowing steps (XTN; the
// values are within the byte range, so truncation is exact): 16 bytes
// stored per row. V0–V11 hold the chunk's parameters, V12–V14 zero point
// and bounds, V16–V19 a row's sums, V20–V27 temporaries.
TEXT ·requant16NEON(SB), NOSPLIT, $0-72
	MOVD acc+0(FP), R0
	MOVD lda+8(FP), R1
	LSL  $2, R1, R1
	MOVD out+16(FP), R2
	MOVD ldo+24(FP), R3
	MOVD rows+32(FP), R4
	MOVD chunks+40(FP), R5
	MOVD p+48(FP), R6
	MOVD c+56(FP), R7
	MOVD mode+64(FP), R8
	VLD1R.P 4(R7), [V12.S4]
	VLD1R.P 4(R7), [V13.S4]
	VLD1R (R7), [V14.S4]

chunk:
	VLD1.P 64(R6), [V0.S4, V1.S4, V2.S4, V3.S4]
	VLD1.P 64(R6), [V4.S4, V5.S4, V6.S4, V7.S4]
	VLD1.P 64(R6), [V8.S4, V9.S4, V10.S4, V11.S4]
	MOVD R0, R9
	MOVD R2, R10
	MOVD R4, R11

row:
	VLD1 (R9), [V16.S4, V17.S4, V18.S4, V19.S4]
	ADD  R1, R9, R9
	TBNZ $0, R8, single
	VSSHL V4.S4, V16.S4, V16.S4
	VSSHL V5.S4, V17.S4, V17.S4
	VSSHL V6.S4, V18.S4, V18.S4
	VSSHL V7.S4, V19.S4, V19.S4
	SQRDMULH(16, 16, 0)
	SQRDMULH(17, 17, 1)
	SQRDMULH(18, 18, 2)
	SQRDMULH(19, 19, 3)
	VAND  V8.B16, V16.B16, V20.B16
	VAND  V9.B16, V17.B16, V21.B16
	VAND  V10.B16, V18.B16, V22.B16
	VAND  V11.B16, V19.B16, V23.B16
	VSSHR $31, V20.S4, V20.S4
	VSSHR $31, V21.S4, V21.S4
	VSSHR $31, V22.S4, V22.S4
	VSSHR $31, V23.S4, V23.S4
	VSQADD V20.S4, V16.S4, V16.S4
	VSQADD V21.S4, V17.S4, V17.S4
	VSQADD V22.S4, V18.S4, V18.S4
	VSQADD V23.S4, V19.S4, V19.S4
	SRSHL(16, 16, 8)
	SRSHL(17, 17, 9)
	SRSHL(18, 18, 10)
	SRSHL(19, 19, 11)
	B    narrow

single:
	SQDMULH(20, 16, 0)
	SQDMULH(21, 17, 1)
	SQDMULH(22, 18, 2)
	SQDMULH(23, 19, 3)
	SQRDMULH(16, 16, 0)
	SQRDMULH(17, 17, 1)
	SQRDMULH(18, 18, 2)
	SQRDMULH(19, 19, 3)
	SRSHL(20, 20, 4)
	SRSHL(21, 21, 5)
	SRSHL(22, 22, 6)
	SRSHL(23, 23, 7)
	VBIF  V8.B16, V20.B16, V16.B16
	VBIF  V9.B16, V21.B16, V17.B16
	VBIF  V10.B16, V22.B16, V18.B16
	VBIF  V11.B16, V23.B16, V19.B16

narrow:
	VADD  V12.S4, V16.S4, V16.S4
	VADD  V12.S4, V17.S4, V17.S4
	VADD  V12.S4, V18.S4, V18.S4
	VADD  V12.S4, V19.S4, V19.S4
	VSMAX V13.S4, V16.S4, V16.S4
	VSMAX V13.S4, V17.S4, V17.S4
	VSMAX V13.S4, V18.S4, V18.S4
	VSMAX V13.S4, V19.S4, V19.S4
	VSMIN V14.S4, V16.S4, V16.S4
	VSMIN V14.S4, V17.S4, V17.S4
	VSMIN V14.S4, V18.S4, V18.S4
	VSMIN V14.S4, V19.S4, V19.S4
	VXTN  V16.S4, V20.H4
	VXTN2 V17.S4, V20.H8
	VXTN  V18.S4, V21.H4
	VXTN2 V19.S4, V21.H8
	VXTN  V20.H8, V22.B8
	VXTN2 V21.H8, V22.B16
	VST1  [V22.B16], (R10)
	ADD   R3, R10, R10
	SUBS  $1, R11, R11
	BNE   row
	ADD   $64, R0, R0
	ADD   $16, R2, R2
	SUBS  $1, R5, R5
	BNE   chunk
	RET
