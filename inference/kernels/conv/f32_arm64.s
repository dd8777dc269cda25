//go:build goexperiment.simd && arm64 && !purego

#include "textflag.h"

// F32_ROW accumulates one row's products for one reduction step: X holds
// the row's input value (four times), A0–A3 its accumulators of the 16
// channels, V16–V19 the step's packed filter values.
#define F32_ROW(X, A0, A1, A2, A3) \
	VFMLA V16.S4, X.S4, A0.S4 \
	VFMLA V17.S4, X.S4, A1.S4 \
	VFMLA V18.S4, X.S4, A2.S4 \
	VFMLA V19.S4, X.S4, A3.S4

// F32_STORE clamps one row's 16 sums to [V20, V21] (FMAX/FMIN keep NaN,
// as clampF does) and stores them at R6.
#define F32_STORE(A0, A1, A2, A3) \
	VFMAX V20.S4, A0.S4, A0.S4 \
	VFMAX V20.S4, A1.S4, A1.S4 \
	VFMAX V20.S4, A2.S4, A2.S4 \
	VFMAX V20.S4, A3.S4, A3.S4 \
	VFMIN V21.S4, A0.S4, A0.S4 \
	VFMIN V21.S4, A1.S4, A1.S4 \
	VFMIN V21.S4, A2.S4, A2.S4 \
	VFMIN V21.S4, A3.S4, A3.S4 \
	VST1  [A0.S4, A1.S4, A2.S4, A3.S4], (R6)

// func f32NEON4x16(a *float32, lda int, w *float32, k int, out *float32, ldo int, bias *float32, lohi *[2]float32)
//
// Four rows by sixteen channels of gemmF32NEON: each row's sums start at
// the bias and add a · w with one FMLA per step and 4 channels, in
// reduction order, exactly as the Go loop does (so the results are the
// same bytes whichever rows a block holds), then are clamped to lohi and
// stored at out, rows ldo floats apart. lda is the row stride of a in
// floats, k ≥ 1. Written in assembly because the simd/archsimd loop
// broadcast each input through a vector move and an element insert and
// rechecked bounds every step: 33 instructions for 8 FMLA (2 rows), here
// 23 for 16 (4 rows, loop included). V0–V15 hold the accumulators (row r in V4r…V4r+3),
// V16–V19 the step's filters, V22–V25 the rows' inputs.
TEXT ·f32NEON4x16(SB), NOSPLIT, $0-64
	MOVD a+0(FP), R0
	MOVD lda+8(FP), R10
	LSL  $2, R10, R10
	ADD  R10, R0, R1
	ADD  R10, R1, R2
	ADD  R10, R2, R3
	MOVD w+16(FP), R4
	MOVD k+24(FP), R5
	MOVD out+32(FP), R6
	MOVD ldo+40(FP), R7
	LSL  $2, R7, R7
	MOVD bias+48(FP), R8
	MOVD lohi+56(FP), R9
	VLD1 (R8), [V0.S4, V1.S4, V2.S4, V3.S4]
	VLD1 (R8), [V4.S4, V5.S4, V6.S4, V7.S4]
	VLD1 (R8), [V8.S4, V9.S4, V10.S4, V11.S4]
	VLD1 (R8), [V12.S4, V13.S4, V14.S4, V15.S4]

step:
	VLD1.P  64(R4), [V16.S4, V17.S4, V18.S4, V19.S4]
	VLD1R.P 4(R0), [V22.S4]
	VLD1R.P 4(R1), [V23.S4]
	VLD1R.P 4(R2), [V24.S4]
	VLD1R.P 4(R3), [V25.S4]
	F32_ROW(V22, V0, V1, V2, V3)
	F32_ROW(V23, V4, V5, V6, V7)
	F32_ROW(V24, V8, V9, V10, V11)
	F32_ROW(V25, V12, V13, V14, V15)
	SUBS $1, R5, R5
	BNE  step

	VLD1R.P 4(R9), [V20.S4]
	VLD1R   (R9), [V21.S4]
	F32_STORE(V0, V1, V2, V3)
	ADD  R7, R6, R6
	F32_STORE(V4, V5, V6, V7)
	ADD  R7, R6, R6
	F32_STORE(V8, V9, V10, V11)
	ADD  R7, R6, R6
	F32_STORE(V12, V13, V14, V15)
	RET
