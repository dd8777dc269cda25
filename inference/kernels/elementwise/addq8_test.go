package elementwise

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/edgefleet/edgefleet/quant"
)

// TestAddQ8KernelMatchesTable runs the vector 8-bit ADD/SUB over every
// pair of input bytes (all 65,536, several times over so that each lands
// in every lane) for random scales, zero points, activations and both
// signednesses, and requires the bytes of the table (quantElem, the
// scalar arithmetic). Without the vector kernel (other CPUs, purego)
// there is nothing to compare and the test says so.
func TestAddQ8KernelMatchesTable(t *testing.T) {
	if addQ8Kernel == nil {
		t.Skip("no vector 8-bit ADD kernel on this CPU or build: the table path is the only one")
	}
	r := rand.New(rand.NewPCG(10, 20))
	// Fixed corner cases first: equal scales, very different scales, an
	// output scale so small the output multiplier leaves the range the
	// kernel takes (then vec stays off and the table runs).
	scales := [][3]float64{{0.02, 0.02, 0.04}, {0.5, 0.001, 0.3}, {0.001, 0.5, 0.0004}, {1, 1, 1e-7}}
	for range 40 {
		scales = append(scales, [3]float64{r.Float64()*0.2 + 1e-4, r.Float64()*0.2 + 1e-4, r.Float64()*0.3 + 1e-4})
	}
	tested := 0
	for i, sc := range scales {
		for _, signed := range []bool{false, true} {
			for _, op := range []arithOp{opAdd, opSub} {
				d := &arithData{op: op, q: qAddSub, leftShift: 20}
				lo, hi := int32(0), int32(255)
				if signed {
					lo, hi = -128, 127
				}
				d.zp1, d.zp2, d.zpOut = lo+r.Int32N(256), lo+r.Int32N(256), lo+r.Int32N(256)
				d.lo, d.hi = lo, hi
				if i%3 == 1 { // a fused RELU6-like clamp
					d.lo, d.hi = d.zpOut, min(hi, d.zpOut+r.Int32N(100))
				}
				twiceMax := 2 * max(sc[0], sc[1])
				d.m1, d.s1 = quant.QuantizeMultiplier(sc[0] / twiceMax)
				d.m2, d.s2 = quant.QuantizeMultiplier(sc[1] / twiceMax)
				d.mOut, d.sOut = quant.QuantizeMultiplier(twiceMax / (float64(1<<20) * sc[2]))
				d.buildPair(signed)
				d.addQ8Params(signed)
				if !d.vec {
					if sc[2] > 1e-6 {
						t.Fatalf("scales %v: vector kernel not used", sc)
					}
					continue
				}
				tested++
				// Every pair, rotated by a few offsets so each pair meets
				// each of the 16 lanes.
				const n = 1<<16 + 48
				a, b, o := make([]byte, n), make([]byte, n), make([]byte, n)
				for rot := 0; rot < 16; rot += 5 {
					for k := range a {
						p := (k + rot) & 0xffff
						a[k], b[k] = byte(p>>8), byte(p)
					}
					done := addQ8Kernel(d, a, b, o)
					if done != n&^15 {
						t.Fatalf("kernel did %d of %d elements", done, n)
					}
					for k := range done {
						if want := d.pair[int(a[k])<<8|int(b[k])]; o[k] != want {
							t.Fatalf("%s", fmt.Sprintf("scales %v signed %v op %d zp %d/%d/%d clamp [%d,%d]: inputs %d,%d: kernel %d, table %d",
								sc, signed, op, d.zp1, d.zp2, d.zpOut, d.lo, d.hi, a[k], b[k], o[k], want))
						}
					}
				}
			}
		}
	}
	if tested < 100 {
		t.Fatalf("only %d parameter sets ran on the vector kernel", tested)
	}
}
