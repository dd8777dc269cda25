package inference

import (
	"fmt"
	"testing"
)

// TestPlaceCentred: the two-thread arena plan keeps tensors that live at
// the same time apart, puts the middle of every tensor (rounded down to
// 64 bytes) on its lane's centre, so that the first half of every tensor
// of a lane lies below one address and the second half above it, and
// uses no more lanes than tensors alive at once.
func TestPlaceCentred(t *testing.T) {
	chain := func(sizes ...int64) []span { // a chain of nodes: tensor i is used by nodes i-1 and i
		s := make([]span, len(sizes))
		for i, sz := range sizes {
			s[i] = span{first: i - 1, last: i, size: sz, name: fmt.Sprint(i)}
		}
		return s
	}
	residual := chain(401408, 1204224, 1204224, 401408, 401408, 2408448, 64)
	residual = append(residual, span{first: 3, last: 6, size: 401408, name: "skip"}) // a long-lived skip tensor
	for _, tc := range []struct {
		name  string
		spans []span
		lanes int
	}{
		{"chain", chain(150528, 401408, 1204224, 301056, 100352, 64), 2},
		{"residual", residual, 3},
		{"io", []span{{-1, 5, 4096, "in"}, {-1, 5, 128, "out"}, {0, 1, 640, "a"}, {1, 2, 704, "b"}}, 4},
		{"one", []span{{0, 0, 64, "x"}}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			offs, total := placeCentred(tc.spans)
			centres := map[int64]bool{}
			for i, a := range tc.spans {
				if offs[i] < 0 || offs[i]+a.size > total || offs[i]%arenaAlign != 0 {
					t.Fatalf("%s at [%d,%d) outside [0,%d) or not aligned", a.name, offs[i], offs[i]+a.size, total)
				}
				mid := offs[i] + a.size/2&^(arenaAlign-1)
				centres[mid] = true
				for j, b := range tc.spans[:i] {
					lives := a.first <= b.last && b.first <= a.last
					mem := offs[i] < offs[j]+b.size && offs[j] < offs[i]+a.size
					if lives && mem {
						t.Fatalf("%s and %s live at the same time and overlap in memory", a.name, b.name)
					}
					if midB := offs[j] + b.size/2&^(arenaAlign-1); midB == mid && lives {
						t.Fatalf("%s and %s share a centre but live at the same time", a.name, b.name)
					}
				}
			}
			if len(centres) != tc.lanes {
				t.Fatalf("%d lanes (centres), expected %d", len(centres), tc.lanes)
			}
		})
	}
}
