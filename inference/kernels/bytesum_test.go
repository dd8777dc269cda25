package kernels_test

import (
	"math/rand/v2"
	"testing"

	"github.com/edgefleet/edgefleet/inference/kernels"
)

// TestRowWordsMatchPlainSums: rows added word by word (with the int8
// flip, up to MaxWordRows rows between flushes, and flushed twice into
// the same sums) equal plain per-byte sums, for extreme and random bytes.
func TestRowWordsMatchPlainSums(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, fill := range []string{"max", "min", "random"} {
		for _, flip := range []byte{0, 0x80} {
			const words = 5
			rows := 2 * kernels.MaxWordRows
			data := make([]byte, rows*8*words)
			for i := range data {
				switch fill {
				case "max":
					data[i] = 0xff ^ flip // 255 after the flip
				case "min":
					data[i] = flip
				default:
					data[i] = byte(r.IntN(256))
				}
			}
			acc := make([]int32, 8*words)
			even, odd := make([]uint64, words), make([]uint64, words)
			for row := range rows {
				kernels.AddRowWords(even, odd, data[row*8*words:(row+1)*8*words], flip)
				if row%kernels.MaxWordRows == kernels.MaxWordRows-1 {
					kernels.FlushRowWords(acc, even, odd)
				}
			}
			for c := range acc {
				var want int32
				for row := range rows {
					want += int32(data[row*8*words+c] ^ flip)
				}
				if acc[c] != want {
					t.Fatalf("%s flip %#x: channel %d = %d, expected %d", fill, flip, c, acc[c], want)
				}
			}
		}
	}
}
