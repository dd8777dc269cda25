package resize_test

import (
	"fmt"
	"testing"

	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
)

// TestGolden compares both resize ops with the real TensorFlow Lite on
// small tensors, for every dtype and option combination, including the
// uint8 8x half-pixel fixed-point path and the uint8 nearest Q16 path.
func TestGolden(t *testing.T) {
	type tc struct {
		op          schema.BuiltinOperator
		typ         tensor.DType
		in          []int
		oh, ow      int
		align, half bool
	}
	var cases []tc
	for _, op := range []schema.BuiltinOperator{schema.OpResizeBilinear, schema.OpResizeNearestNeighbor} {
		for _, typ := range []tensor.DType{tensor.Float32, tensor.Uint8, tensor.Int8, tensor.Int16} {
			for _, m := range [][3]bool{{false, false}, {true, false}, {false, true}} {
				cases = append(cases,
					tc{op: op, typ: typ, in: []int{1, 3, 4, 2}, oh: 5, ow: 7, align: m[0], half: m[1]},
					tc{op: op, typ: typ, in: []int{2, 6, 5, 1}, oh: 4, ow: 3, align: m[0], half: m[1]},
					tc{op: op, typ: typ, in: []int{1, 2, 3, 3}, oh: 4, ow: 6, align: m[0], half: m[1]},
				)
			}
			if op == schema.OpResizeNearestNeighbor {
				cases = append(cases, tc{op: op, typ: typ, in: []int{1, 3, 7, 1}, oh: 10, ow: 9, align: true, half: true})
			}
		}
	}
	// uint8 8x upsample with half_pixel_centers and depth 8: TFLite's
	// fixed-point path.
	cases = append(cases,
		tc{op: schema.OpResizeBilinear, typ: tensor.Uint8, in: []int{1, 2, 3, 8}, oh: 16, ow: 24, half: true},
		tc{op: schema.OpResizeBilinear, typ: tensor.Uint8, in: []int{1, 2, 2, 16}, oh: 16, ow: 16, half: true},
		tc{op: schema.OpResizeBilinear, typ: tensor.Uint8, in: []int{1, 2, 3, 8}, oh: 8, ow: 12, half: true},
		// Ratios where the uint8 nearest kernel's Q16 index could differ
		// from a float floor.
		tc{op: schema.OpResizeNearestNeighbor, typ: tensor.Uint8, in: []int{1, 3, 5, 1}, oh: 7, ow: 13},
		tc{op: schema.OpResizeNearestNeighbor, typ: tensor.Uint8, in: []int{1, 7, 6, 1}, oh: 3, ow: 17},
		tc{op: schema.OpResizeNearestNeighbor, typ: tensor.Uint8, in: []int{1, 10, 9, 1}, oh: 30, ow: 27},
		tc{op: schema.OpResizeBilinear, typ: tensor.Int8, in: []int{1, 1, 1, 2}, oh: 65, ow: 3, half: true},
	)
	for i, c := range cases {
		name := fmt.Sprintf("%s_%s_%d", map[schema.BuiltinOperator]string{schema.OpResizeBilinear: "bilinear", schema.OpResizeNearestNeighbor: "nearest"}[c.op], c.typ, i)
		t.Run(name, func(t *testing.T) {
			n := tensor.NumElements(c.in)
			var data []byte
			var q *tensor.Quantization
			switch c.typ {
			case tensor.Float32:
				data = kerneltest.F32(kerneltest.SeqF(n, uint32(i))...)
			case tensor.Int16:
				raw := kerneltest.Seq(2*n, uint32(i))
				v := make([]int16, n)
				for k := range v {
					v[k] = int16(uint16(raw[2*k]) | uint16(raw[2*k+1])<<8)
				}
				data = kerneltest.I16(v...)
				q = kerneltest.Q(0.01, 0)
			default:
				data = kerneltest.Seq(n, uint32(i))
				q = kerneltest.Q(0.05, 3)
			}
			size := kerneltest.GoldenTensor{Type: tensor.Int32, Shape: []int{2}, Data: kerneltest.I32(int32(c.oh), int32(c.ow)), Const: true}
			kerneltest.GoldenOp(t, name, c.op, &schema.ResizeOptions{AlignCorners: c.align, HalfPixelCenters: c.half},
				[]kerneltest.GoldenTensor{{Type: c.typ, Shape: c.in, Data: data, Quant: q}, size},
				[]kerneltest.GoldenTensor{{Type: c.typ, Shape: []int{c.in[0], c.oh, c.ow, c.in[3]}, Quant: q}})
		})
	}
}
