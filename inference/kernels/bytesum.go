package kernels

import "encoding/binary"

// Sums of 8-bit rows eight channels at a time, for the poolings and
// means that add up many rows of channels (the global average pool at
// the end of most classifiers: a thousand channels over 7×7 pixels).
// Written by hand rather than with a vector library: the portable
// kernels have no vector types, and words of eight bytes in two sets of
// four 16-bit lanes (even and odd bytes) do eight additions per
// operation on every architecture.

// MaxWordRows is how many rows of bytes AddRowWords may add to the same
// words before FlushRowWords: 257 × 255 fits a 16-bit lane.
const MaxWordRows = 257

// AddRowWords adds the whole 8-byte words of row (each byte XORed with
// flip: 0x80 turns int8 into its value + 128) to the lane sums even and
// odd (one word each per 8 bytes of row; len(even) words are added).
func AddRowWords(even, odd []uint64, row []byte, flip byte) {
	const lanes = 0x00ff00ff00ff00ff
	f := uint64(flip) * 0x0101010101010101
	row = row[:8*len(even)]
	odd = odd[:len(even)]
	for k := range even {
		w := binary.LittleEndian.Uint64(row[8*k:]) ^ f
		even[k] += w & lanes
		odd[k] += w >> 8 & lanes
	}
}

// FlushRowWords adds the lane sums to acc (8 values per word, in byte
// order) and clears them.
func FlushRowWords(acc []int32, even, odd []uint64) {
	acc = acc[:8*len(even)]
	odd = odd[:len(even)]
	for k, e := range even {
		o := odd[k]
		a := acc[8*k : 8*k+8 : 8*k+8]
		a[0] += int32(e & 0xffff)
		a[1] += int32(o & 0xffff)
		a[2] += int32(e >> 16 & 0xffff)
		a[3] += int32(o >> 16 & 0xffff)
		a[4] += int32(e >> 32 & 0xffff)
		a[5] += int32(o >> 32 & 0xffff)
		a[6] += int32(e >> 48)
		a[7] += int32(o >> 48)
		even[k], odd[k] = 0, 0
	}
}
