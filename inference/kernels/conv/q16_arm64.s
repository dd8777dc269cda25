//go:build goexperiment.simd && arm64 && !purego

#include "textflag.h"

// func q16NEON3x16(a *int16, lda int, w *int16, kp2 int, out *int32, ldo int, bias *int32)
//
// Three rows by sixteen channels of the 16-bit GEMM (see qgemmNEON): for
// each of the kp2 pairs of reduction steps, each row's two int16 inputs
// are loaded as one 32-bit word repeated four times (LD1R), and
// multiplied with the block's packed pairs (four vectors of four channels
// × two steps) by SMLAL/SMLAL2, which widen to int32 and accumulate
// (wrapping, as the scalar loop; each product is exact, |x|, |w| ≤ 255).
// The two steps' products stay in separate lanes until one ADDP per four
// channels at the end; then the bias is added and the 3×16 sums stored at
// out, rows ldo int32 apart. lda is the row stride of a in bytes, kp2 ≥ 1.
// Written in assembly because the simd/archsimd loop compiled to about
// sixty-eight instructions per pair of steps for two rows (the pair
// broadcast went through the stack, the high halves were moved out before
// each SMULL, and there is no multiply-accumulate): here it is thirty for
// three rows. V0–V23 hold the accumulators (row r in V8r…V8r+7: low and
// high halves of the four weight vectors), V24–V27 the weights, V28–V30
// the rows' pairs.
// ROW_MLA accumulates one row's products: X holds its pair of inputs
// (four times), L0…H3 its accumulators (low and high halves of the four
// weight vectors V24–V27).
#define ROW_MLA(X, L0, H0, L1, H1, L2, H2, L3, H3) \
	VSMLAL  V24.H4, X.H4, L0.S4 \
	VSMLAL2 V24.H8, X.H8, H0.S4 \
	VSMLAL  V25.H4, X.H4, L1.S4 \
	VSMLAL2 V25.H8, X.H8, H1.S4 \
	VSMLAL  V26.H4, X.H4, L2.S4 \
	VSMLAL2 V26.H8, X.H8, H2.S4 \
	VSMLAL  V27.H4, X.H4, L3.S4 \
	VSMLAL2 V27.H8, X.H8, H3.S4

// ROW_STORE adds each channel's two lanes (ADDP) and the bias (V24–V27)
// and stores the row's 16 sums at R7.
#define ROW_STORE(L0, H0, L1, H1, L2, H2, L3, H3) \
	VADDP H0.S4, L0.S4, L0.S4 \
	VADDP H1.S4, L1.S4, L1.S4 \
	VADDP H2.S4, L2.S4, L2.S4 \
	VADDP H3.S4, L3.S4, L3.S4 \
	VADD  V24.S4, L0.S4, V28.S4 \
	VADD  V25.S4, L1.S4, V29.S4 \
	VADD  V26.S4, L2.S4, V30.S4 \
	VADD  V27.S4, L3.S4, V31.S4 \
	VST1  [V28.S4, V29.S4, V30.S4, V31.S4], (R7)

TEXT ·q16NEON3x16(SB), NOSPLIT, $0-56
	MOVD a+0(FP), R3
	MOVD lda+8(FP), R2
	ADD  R2, R3, R4
	ADD  R2, R4, R5
	MOVD w+16(FP), R1
	MOVD kp2+24(FP), R6
	MOVD out+32(FP), R7
	MOVD ldo+40(FP), R8
	MOVD bias+48(FP), R9
	LSL  $2, R8, R8
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16
	VEOR V4.B16, V4.B16, V4.B16
	VEOR V5.B16, V5.B16, V5.B16
	VEOR V6.B16, V6.B16, V6.B16
	VEOR V7.B16, V7.B16, V7.B16
	VEOR V8.B16, V8.B16, V8.B16
	VEOR V9.B16, V9.B16, V9.B16
	VEOR V10.B16, V10.B16, V10.B16
	VEOR V11.B16, V11.B16, V11.B16
	VEOR V12.B16, V12.B16, V12.B16
	VEOR V13.B16, V13.B16, V13.B16
	VEOR V14.B16, V14.B16, V14.B16
	VEOR V15.B16, V15.B16, V15.B16
	VEOR V16.B16, V16.B16, V16.B16
	VEOR V17.B16, V17.B16, V17.B16
	VEOR V18.B16, V18.B16, V18.B16
	VEOR V19.B16, V19.B16, V19.B16
	VEOR V20.B16, V20.B16, V20.B16
	VEOR V21.B16, V21.B16, V21.B16
	VEOR V22.B16, V22.B16, V22.B16
	VEOR V23.B16, V23.B16, V23.B16

step:
	VLD1.P  64(R1), [V24.H8, V25.H8, V26.H8, V27.H8]
	VLD1R.P 4(R3), [V28.S4]
	VLD1R.P 4(R4), [V29.S4]
	VLD1R.P 4(R5), [V30.S4]
	ROW_MLA(V28, V0, V1, V2, V3, V4, V5, V6, V7)
	ROW_MLA(V29, V8, V9, V10, V11, V12, V13, V14, V15)
	ROW_MLA(V30, V16, V17, V18, V19, V20, V21, V22, V23)
	SUBS $1, R6, R6
	BNE  step

	VLD1 (R9), [V24.S4, V25.S4, V26.S4, V27.S4]
	ROW_STORE(V0, V1, V2, V3, V4, V5, V6, V7)
	ADD  R8, R7, R7
	ROW_STORE(V8, V9, V10, V11, V12, V13, V14, V15)
	ADD  R8, R7, R7
	ROW_STORE(V16, V17, V18, V19, V20, V21, V22, V23)
	RET
