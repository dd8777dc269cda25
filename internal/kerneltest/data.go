package kerneltest

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"math/rand/v2"
)

// The generators below feed golden tests: the inputs they produce are
// stored next to TensorFlow Lite's outputs in testdata/golden, and the
// tests check that regenerating them gives the same bytes, so their
// sequences must never change.

// RNG returns a deterministic generator for test data.
func RNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }

// CaseRNG returns a generator seeded by a case name, so that each golden
// case's inputs do not depend on the other cases.
func CaseRNG(name string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return RNG(h.Sum64())
}

// AllBytes returns the 256 byte values in order (every int8 / uint8 input).
func AllBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// RandBytes returns n uniformly random bytes.
func RandBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return b
}

// RandInt8 returns n int8 values uniform in [lo, hi].
func RandInt8(r *rand.Rand, n, lo, hi int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(int8(lo + r.IntN(hi-lo+1)))
	}
	return b
}

// RandInt16 returns n little-endian int16 values uniform in [lo, hi].
func RandInt16(r *rand.Rand, n, lo, hi int) []byte {
	v := make([]int16, n)
	for i := range v {
		v[i] = int16(lo + r.IntN(hi-lo+1))
	}
	return I16(v...)
}

// RandInt32 returns n little-endian int32 values uniform in [lo, hi].
func RandInt32(r *rand.Rand, n, lo, hi int) []byte {
	b := make([]byte, 4*n)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(int32(lo+r.IntN(hi-lo+1))))
	}
	return b
}

// RandF32 returns n little-endian float32 values uniform in [lo, hi).
func RandF32(r *rand.Rand, n int, lo, hi float64) []byte {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(lo + r.Float64()*(hi-lo))
	}
	return F32(v...)
}

// Seq returns n bytes of a deterministic pseudo-random pattern (xorshift
// seeded by seed).
func Seq(n int, seed uint32) []byte {
	b := make([]byte, n)
	x := seed*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x >> 3)
	}
	return b
}

// SeqF returns n pseudo-random float32 values in [-4, 4), multiples of
// 1/32, derived from Seq.
func SeqF(n int, seed uint32) []float32 {
	r := Seq(n, seed)
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(int(r[i])-128) / 32
	}
	return v
}

// F32 returns v as little-endian float32 bytes.
func F32(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// F32s decodes little-endian float32 bytes.
func F32s(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// I8 returns v as bytes.
func I8(v ...int8) []byte {
	b := make([]byte, len(v))
	for i, x := range v {
		b[i] = byte(x)
	}
	return b
}

// I16 returns v as little-endian int16 bytes.
func I16(v ...int16) []byte {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(x))
	}
	return b
}

// I32 returns v as little-endian int32 bytes.
func I32(v ...int32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
	}
	return b
}

// I64 returns v as little-endian int64 bytes.
func I64(v ...int64) []byte {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(x))
	}
	return b
}
