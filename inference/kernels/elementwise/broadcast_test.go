package elementwise

import (
	"math/rand/v2"
	"testing"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
	"github.com/edgefleet/edgefleet/quant"
)

// naiveIndex maps an output index to the flat index of an input of shape
// in broadcast to out.
func naiveIndex(out, in []int, flat int) int {
	idx := 0
	stride := 1
	for d := len(out) - 1; d >= 0; d-- {
		c := flat % out[d]
		flat /= out[d]
		j := len(in) - len(out) + d
		if j < 0 {
			continue
		}
		if in[j] != 1 {
			idx += c * stride
		}
		stride *= in[j]
	}
	return idx
}

// checkBroadcast compares the iterator with naive index arithmetic for
// three inputs.
func checkBroadcast(t *testing.T, shapes [3][]int) {
	out, err := broadcastShape(shapes[0], shapes[1])
	if err == nil {
		out, err = broadcastShape(out, shapes[2])
	}
	if err != nil {
		return
	}
	bc, err := newBcast(out, shapes[0], shapes[1], shapes[2])
	if err != nil {
		return
	}
	size := tensor.NumElements(out)
	seen := make([]bool, size)
	check := func(o int, off [3]int) {
		if o < 0 || o >= size || seen[o] {
			t.Fatalf("shapes %v -> %v: output %d visited twice or out of range", shapes, out, o)
		}
		seen[o] = true
		for k := 0; k < 3; k++ {
			if want := naiveIndex(out, shapes[k], o); off[k] != want {
				t.Fatalf("shapes %v -> %v: output %d input %d index %d, want %d", shapes, out, o, k, off[k], want)
			}
		}
	}
	if bc.flat {
		for o := 0; o < size; o++ {
			check(o, [3]int{o, o, o})
		}
	} else {
		bc.each(func(r run) {
			off := r.off
			for i := 0; i < r.n; i++ {
				check(r.o+i, off)
				for k := range off {
					off[k] += r.step[k]
				}
			}
		})
	}
	for o, s := range seen {
		if !s {
			t.Fatalf("shapes %v -> %v: output %d never visited", shapes, out, o)
		}
	}
}

func TestBroadcastIterator(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for iter := 0; iter < 3000; iter++ {
		rank := r.IntN(7)
		base := make([]int, rank)
		for i := range base {
			base[i] = r.IntN(4) // includes 0-sized dimensions
		}
		var shapes [3][]int
		for k := range shapes {
			s := append([]int(nil), base[r.IntN(rank+1):]...)
			for i := range s {
				if r.IntN(2) == 0 {
					s[i] = 1
				}
			}
			shapes[k] = s
		}
		checkBroadcast(t, shapes)
	}
}

// FuzzBroadcast checks the iterator against naive indexing on arbitrary
// shapes: it must never panic and must visit every output once with the
// right input indices.
func FuzzBroadcast(f *testing.F) {
	f.Add([]byte{2, 3, 1, 4, 0, 2, 1, 3})
	f.Add([]byte{1, 1, 1, 2, 2, 2, 0, 0, 5})
	f.Fuzz(func(t *testing.T, b []byte) {
		var shapes [3][]int
		k := 0
		for _, v := range b {
			if v == 0xff {
				k++
				if k == 3 {
					break
				}
				continue
			}
			if len(shapes[k]) < 8 {
				shapes[k] = append(shapes[k], int(v%5))
			}
		}
		checkBroadcast(t, shapes)
	})
}

// TestEvalAllocs asserts that Eval does not allocate on the hot paths.
func TestEvalAllocs(t *testing.T) {
	cases := []struct {
		name string
		op   schema.BuiltinOperator
		in   []*tensor.Tensor
		out  *tensor.Tensor
	}{
		{"add u8 broadcast", schema.OpAdd, []*tensor.Tensor{mk(u8, []int{2, 8, 8, 4}, make([]float64, 512), q(0.5, 128)), mk(u8, []int{4}, make([]float64, 4), q(0.25, 100))}, out(u8, q(1, 128))},
		{"add i8", schema.OpAdd, []*tensor.Tensor{mk(i8, []int{64}, make([]float64, 64), q(0.5, 1)), mk(i8, []int{64}, make([]float64, 64), q(0.25, -3))}, out(i8, q(1, 0))},
		{"mul f32 broadcast", schema.OpMul, []*tensor.Tensor{mk(f32, []int{4, 1, 8}, make([]float64, 32), nil), mk(f32, []int{3, 1}, make([]float64, 3), nil)}, out(f32, nil)},
		{"less i8", schema.OpLess, []*tensor.Tensor{mk(i8, []int{4, 8}, make([]float64, 32), q(0.5, 1)), mk(i8, []int{8}, make([]float64, 8), q(0.25, -3))}, out(bl, nil)},
		{"select", schema.OpSelectV2, []*tensor.Tensor{mk(bl, []int{4, 1}, make([]float64, 4), nil), mk(f32, []int{8}, make([]float64, 8), nil), mk(f32, []int{4, 8}, make([]float64, 32), nil)}, out(f32, nil)},
		{"quantize", schema.OpQuantize, []*tensor.Tensor{mk(f32, []int{64}, make([]float64, 64), nil)}, out(i8, q(0.1, 3))},
		{"requantize", schema.OpQuantize, []*tensor.Tensor{mk(u8, []int{64}, make([]float64, 64), q(0.1, 128))}, out(i8, q(0.1, 0))},
		{"prelu", schema.OpPrelu, []*tensor.Tensor{mk(i8, []int{4, 8}, make([]float64, 32), q(0.5, 1)), mk(i8, []int{8}, make([]float64, 8), q(0.25, -3))}, out(i8, q(1, 0))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, _ := kernels.Lookup(schema.OperatorCode{Builtin: c.op, Version: 1})
			n := &kernels.Node{Op: c.op, Version: 1, Inputs: c.in, Outputs: []*tensor.Tensor{c.out}}
			if err := kerneltest.RunKernel(k, quant.RoundingTFLite, n); err != nil {
				t.Fatal(err)
			}
			ctx := kernels.NewContext(quant.RoundingTFLite, 1)
			allocs := testing.AllocsPerRun(20, func() {
				if err := k.Eval(ctx, n); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Fatalf("Eval allocates %v times per run", allocs)
			}
		})
	}
}
