//go:build goexperiment.simd && amd64 && !purego

#include "textflag.h"

// Paired depthwise kernel for whole blocks of 32 channels of one pixel
// (see depthwise_pair.go and dwPairRunAVX512): for block b and tap pair p,
// the 32 input bytes of taps 2p and 2p+1 are extended to int16, the two
// taps interleaved word by word (VPUNPCKLWD/VPUNPCKHWD) and multiplied
// with the packed filter pair by VPMADDWD, so each int32 lane adds
// x0*w0 + x1*w1 exactly; the lanes are then put back in channel order
// (VPERMI2D with dwUnpair0/1) and the bias added. Written in assembly
// because the same loop in simd/archsimd compiled to about seventy
// instructions per pair (slice bounds checks and spills around eight
// vector instructions): the Go wrapper checks every bound once per call.
//
// rows points at 2*np slice headers (24 bytes each); tap t of pixel i of
// the npix pixels reads rows[t].ptr + shift + i*step + 32*b, and its nb
// blocks of accumulators follow those of pixel i-1 in acc. wp holds np*64
// int16 per block; with tail 1 a block of 16 channels follows the whole
// blocks of each pixel (np*32 int16 in wp, see BLOCK16).

// PAIRLOOP accumulates a block's tap pairs: for each of the R12 pairs
// (tap rows from R11, byte offset R9, packed filters from R10), the two
// taps' input bytes extended to int16 in A and B, interleaved (LO, HI),
// multiplied pair-wise and added to S0 and S1; HALF is the offset of the
// high interleave half's filters, STEP a pair's filter bytes. Z or Y
// registers make the 512- or 256-bit form.
#define PAIRLOOP(PAIR, EXTEND, A, B, LO, HI, S0, S1, HALF, STEP) \
	MOVQ   R11, R14 \
	MOVQ   R12, CX \
PAIR: \
	MOVQ   (R14), R8 \
	MOVQ   24(R14), DX \
	EXTEND (R8)(R9*1), A \
	EXTEND (DX)(R9*1), B \
	VPUNPCKLWD B, A, LO \
	VPUNPCKHWD B, A, HI \
	VPMADDWD (R10), LO, LO \
	VPMADDWD HALF(R10), HI, HI \
	VPADDD LO, S0, S0 \
	VPADDD HI, S1, S1 \
	ADDQ   $48, R14 \
	ADDQ   $STEP, R10 \
	DECQ   CX \
	JNZ    PAIR

// BLOCK16 computes one block of 16 channels of a pixel on 256-bit
// vectors (VEX encodings only, so AVX2 CPUs run it): the pair loop
// (PAIR its label), the two lanes' halves put back in channel order with
// VPERM2I128 (the low interleave half holds channels 0-3 and 8-11, the
// high half 4-7 and 12-15), the bias added, 16 int32 stored; DI, SI, R10
// and R9 advance past the block. R11 rows, R12 pairs, R9 the byte offset.
#define BLOCK16(EXTEND, PAIR) \
	VPXOR  Y0, Y0, Y0 \
	VPXOR  Y1, Y1, Y1 \
	PAIRLOOP(PAIR, EXTEND, Y2, Y3, Y4, Y5, Y0, Y1, 32, 64) \
	VPERM2I128 $0x20, Y1, Y0, Y6 \
	VPERM2I128 $0x31, Y1, Y0, Y7 \
	VPADDD (SI), Y6, Y6 \
	VPADDD 32(SI), Y7, Y7 \
	VMOVDQU Y6, (DI) \
	VMOVDQU Y7, 32(DI) \
	ADDQ   $64, DI \
	ADDQ   $64, SI \
	ADDQ   $16, R9

#define DWPAIR(NAME, EXTEND, PIXEL, BLOCK, PAIR, TAIL, TPAIR, NEXT, DONE) \
TEXT NAME(SB), NOSPLIT, $0-96 \
	MOVQ acc+0(FP), DI \
	MOVQ rows+16(FP), R11 \
	MOVQ shift+24(FP), R15 \
	MOVQ np+40(FP), R12 \
	MOVQ idx0+56(FP), AX \
	MOVQ idx1+64(FP), BX \
	VMOVDQU32 (AX), Z30 \
	VMOVDQU32 (BX), Z31 \
	MOVQ npix+72(FP), AX \
	MOVQ nb+48(FP), BX \
	TESTQ AX, AX \
	JEQ   DONE \
PIXEL: \
	MOVQ bias+8(FP), SI \
	MOVQ wp+32(FP), R10 \
	MOVQ R15, R9 \
	MOVQ BX, R13 \
	TESTQ R13, R13 \
	JEQ   TAIL \
BLOCK: \
	VPXORD Z0, Z0, Z0 \
	VPXORD Z1, Z1, Z1 \
	PAIRLOOP(PAIR, EXTEND, Z2, Z3, Z4, Z5, Z0, Z1, 64, 128) \
	VMOVDQU32 Z30, Z6 \
	VMOVDQU32 Z31, Z7 \
	VPERMI2D Z1, Z0, Z6 \
	VPERMI2D Z1, Z0, Z7 \
	VPADDD (SI), Z6, Z6 \
	VPADDD 64(SI), Z7, Z7 \
	VMOVDQU32 Z6, (DI) \
	VMOVDQU32 Z7, 64(DI) \
	ADDQ   $128, DI \
	ADDQ   $128, SI \
	ADDQ   $32, R9 \
	DECQ   R13 \
	JNZ    BLOCK \
TAIL: \
	MOVQ   tail+88(FP), R13 \
	TESTQ  R13, R13 \
	JEQ    NEXT \
	BLOCK16(EXTEND, TPAIR) \
NEXT: \
	ADDQ   step+80(FP), R15 \
	DECQ   AX \
	JNZ    PIXEL \
DONE: \
	VZEROUPPER \
	RET

// func dwPair32I8(acc *int32, bias *int32, rows *[]byte, shift int, wp *int16, np int, nb int, idx0, idx1 *[16]uint32, npix, step, tail int)
DWPAIR(·dwPair32I8, VPMOVSXBW, i8pixel, i8block, i8pair, i8tail, i8tpair, i8next, i8done)

// func dwPair32U8(acc *int32, bias *int32, rows *[]byte, shift int, wp *int16, np int, nb int, idx0, idx1 *[16]uint32, npix, step, tail int)
DWPAIR(·dwPair32U8, VPMOVZXBW, u8pixel, u8block, u8pair, u8tail, u8tpair, u8next, u8done)

// The AVX2 form (CPUs without AVX-512): blocks of 16 channels on 256-bit
// vectors, packed by packDWPairs with dwPairWide 16 (two 128-bit lanes:
// the low interleave half holds channels 0-3 and 8-11, the high half 4-7
// and 12-15, put back in order with VPERM2I128). Same arguments as
// dwPair32I8 without the permutation tables; nb counts 16-channel blocks.
#define DWPAIR16(NAME, EXTEND, PIXEL, BLOCK, PAIR, DONE) \
TEXT NAME(SB), NOSPLIT, $0-72 \
	MOVQ acc+0(FP), DI \
	MOVQ rows+16(FP), R11 \
	MOVQ shift+24(FP), R15 \
	MOVQ np+40(FP), R12 \
	MOVQ npix+56(FP), AX \
	MOVQ nb+48(FP), BX \
	TESTQ AX, AX \
	JEQ   DONE \
	TESTQ BX, BX \
	JEQ   DONE \
PIXEL: \
	MOVQ bias+8(FP), SI \
	MOVQ wp+32(FP), R10 \
	MOVQ R15, R9 \
	MOVQ BX, R13 \
BLOCK: \
	BLOCK16(EXTEND, PAIR) \
	DECQ   R13 \
	JNZ    BLOCK \
	ADDQ   step+64(FP), R15 \
	DECQ   AX \
	JNZ    PIXEL \
DONE: \
	VZEROUPPER \
	RET

// func dwPair16I8(acc *int32, bias *int32, rows *[]byte, shift int, wp *int16, np int, nb int, npix, step int)
DWPAIR16(·dwPair16I8, VPMOVSXBW, a2i8pixel, a2i8block, a2i8pair, a2i8done)

// func dwPair16U8(acc *int32, bias *int32, rows *[]byte, shift int, wp *int16, np int, nb int, npix, step int)
DWPAIR16(·dwPair16U8, VPMOVZXBW, a2u8pixel, a2u8block, a2u8pair, a2u8done)
