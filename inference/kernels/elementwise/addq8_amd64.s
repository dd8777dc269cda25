//go:build goexperiment.simd && amd64 && !purego

#include "textflag.h"

// 8-bit quantized ADD/SUB of two equally shaped tensors, 16 elements per
// step, in TFLite's integer arithmetic (arithData.quantElem, qAddSub):
//
//	s1  = RDBPOT(SRDHM((x-zp1) << ls, m1), e1)
//	s2  = RDBPOT(SRDHM((y-zp2) << ls, m2), e2)
//	out = clamp(RDBPOT(SRDHM(s1 ± s2, mo), eo) + zpo, lo, hi)
//
// SRDHM(a, m) is gemmlowp's SaturatingRoundingDoublingHighMul: with the
// 64-bit product p = a*m, (p + nudge) / 2^31 truncated, nudge 2^30 for
// p >= 0 and 1-2^30 otherwise, which equals (p + 2^30) >> 31 with an
// arithmetic shift for every p (for p < 0 the truncation adds 2^31-1);
// it saturates only for a = m = -2^31, which the caller rules out (|a| <
// 2^29). Even lanes multiply in place (VPMULDQ), odd lanes after a shift
// by 32; the odd results are taken from bits 31..62 of p+2^30 shifted
// left by one, so they land in the high halves and one blend joins both.
// RDBPOT(x, e) is RoundingDivideByPOT: x >> e, plus one when the
// remainder x & (2^e-1) exceeds (2^e-1) >> 1, plus one more for x < 0.
// Written in assembly: the LUT it replaces (a 64 KiB table indexed by
// both bytes) costs an L2 access per element.
//
// p points at the parameters, int32 each: -zp1, -zp2, ls, m1, m2, mo,
// mask1, mask2, masko, thr1, thr2, thro, e1, e2, eo, zpo, lo, hi, sub.

#define SRDHM(A, M, T, OUT) \
	VPMULDQ M, A, OUT \
	VPSRLQ  $32, A, T \
	VPMULDQ M, T, T \
	VPADDQ  Z11, OUT, OUT \
	VPADDQ  Z11, T, T \
	VPSRAQ  $31, OUT, OUT \
	VPSLLQ  $1, T, T \
	VPBLENDMD T, OUT, K1, OUT

#define RDBPOT(X, MASK, THR, CNT, T1, T2) \
	VPANDD   MASK, X, T1 \
	VPSRAD   $31, X, T2 \
	VPSUBD   T2, THR, T2 \
	VPSRAD   CNT, X, X \
	VPCMPGTD T2, T1, K2 \
	VPADDD   Z10, X, K2, X

#define ADDQ8(NAME, EXTEND, LOOP, DONE) \
TEXT NAME(SB), NOSPLIT, $0-40 \
	MOVQ a+0(FP), SI \
	MOVQ b+8(FP), DX \
	MOVQ o+16(FP), DI \
	MOVQ n+24(FP), CX \
	MOVQ p+32(FP), AX \
	VPBROADCASTD 0(AX), Z16 \
	VPBROADCASTD 4(AX), Z17 \
	VMOVD        8(AX), X18 \
	VPBROADCASTD 12(AX), Z19 \
	VPBROADCASTD 16(AX), Z20 \
	VPBROADCASTD 20(AX), Z21 \
	VPBROADCASTD 24(AX), Z22 \
	VPBROADCASTD 28(AX), Z23 \
	VPBROADCASTD 32(AX), Z24 \
	VPBROADCASTD 36(AX), Z25 \
	VPBROADCASTD 40(AX), Z26 \
	VPBROADCASTD 44(AX), Z27 \
	VMOVD        48(AX), X28 \
	VMOVD        52(AX), X29 \
	VMOVD        56(AX), X30 \
	VPBROADCASTD 60(AX), Z31 \
	VPBROADCASTD 64(AX), Z14 \
	VPBROADCASTD 68(AX), Z15 \
	MOVL         72(AX), R8 \
	MOVQ         $0x40000000, BX \
	VPBROADCASTQ BX, Z11 \
	MOVL         $1, BX \
	VPBROADCASTD BX, Z10 \
	MOVW         $0xaaaa, BX \
	KMOVW        BX, K1 \
	SHRQ         $4, CX \
	JEQ          DONE \
LOOP: \
	EXTEND (SI), Z0 \
	EXTEND (DX), Z1 \
	VPADDD Z16, Z0, Z0 \
	VPADDD Z17, Z1, Z1 \
	VPSLLD X18, Z0, Z0 \
	VPSLLD X18, Z1, Z1 \
	SRDHM(Z0, Z19, Z2, Z3) \
	SRDHM(Z1, Z20, Z4, Z5) \
	RDBPOT(Z3, Z22, Z25, X28, Z6, Z7) \
	RDBPOT(Z5, Z23, Z26, X29, Z8, Z9) \
	VPADDD Z5, Z3, Z0 \
	VPSUBD Z5, Z3, Z1 \
	TESTL  R8, R8 \
	JEQ    2(PC) \
	VMOVDQA64 Z1, Z0 \
	SRDHM(Z0, Z21, Z2, Z3) \
	RDBPOT(Z3, Z24, Z27, X30, Z6, Z7) \
	VPADDD Z31, Z3, Z3 \
	VPMAXSD Z14, Z3, Z3 \
	VPMINSD Z15, Z3, Z3 \
	VPMOVDB Z3, (DI) \
	ADDQ $16, SI \
	ADDQ $16, DX \
	ADDQ $16, DI \
	DECQ CX \
	JNZ  LOOP \
DONE: \
	VZEROUPPER \
	RET

// func addQ8I8(a, b, o *byte, n int, p *[19]int32)
ADDQ8(·addQ8I8, VPMOVSXBD, i8loop, i8done)

// func addQ8U8(a, b, o *byte, n int, p *[19]int32)
ADDQ8(·addQ8U8, VPMOVZXBD, u8loop, u8done)
