package layout_test

import (
	"testing"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
	"github.com/edgefleet/edgefleet/quant"
)

// byteReader hands out fuzz bytes as small signed ints.
type byteReader struct {
	b []byte
	i int
}

func (r *byteReader) next() int {
	if r.i >= len(r.b) {
		return 0
	}
	v := int(int8(r.b[r.i]))
	r.i++
	return v
}

// FuzzShapeOps feeds untrusted shape-defining values (as a model file
// could hold them) to the layout ops: Prepare may reject them, but nothing
// may panic, and whatever Prepare accepts Eval must handle.
func FuzzShapeOps(f *testing.F) {
	f.Add([]byte{0, 3, 2, 3, 4, 1, 0, 0, 3, 2, 4, 1, 1, 1})
	f.Add([]byte{1, 2, 3, 4, 2, 0, 0xff, 1, 2})
	f.Add([]byte{2, 4, 1, 2, 3, 4, 1, 0, 2, 1, 3, 0, 0, 1})
	f.Add([]byte{3, 2, 5, 2, 7, 0xfe, 3})
	f.Add([]byte{4, 3, 2, 2, 2, 0xff, 2, 5, 1})
	f.Add([]byte{5, 2, 3, 3, 2, 1, 0xff})
	f.Add([]byte{6, 2, 4, 6, 2, 3, 1})
	f.Add([]byte{7, 3, 1, 4, 2, 2, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &byteReader{b: data}
		op := r.next() & 15
		rank := r.next()&3 + 1
		shape := make([]int, rank)
		for i := range shape {
			shape[i] = r.next() & 7
		}
		vals := func(n int) []float64 {
			v := make([]float64, n)
			for i := range v {
				v[i] = float64(r.next())
			}
			return v
		}
		in := kerneltest.New(tensor.Float32, shape, make([]float64, tensor.NumElements(shape)), nil)
		vec := func(n int) *tensor.Tensor { return kerneltest.New(tensor.Int32, []int{n}, vals(n), nil) }
		var (
			bop    schema.BuiltinOperator
			opts   any
			inputs []*tensor.Tensor
			outs   = 1
		)
		switch op {
		case 0:
			bop = schema.OpStridedSlice
			n := r.next()&3 + 1
			opts = &schema.StridedSliceOptions{BeginMask: int32(r.next()), EndMask: int32(r.next()), EllipsisMask: int32(r.next()),
				NewAxisMask: int32(r.next()), ShrinkAxisMask: int32(r.next()), Offset: r.next()&1 == 1}
			inputs = []*tensor.Tensor{in, vec(n), vec(n), vec(n)}
		case 1:
			bop = schema.OpReshape
			inputs = []*tensor.Tensor{in, vec(r.next()&3 + 1)}
		case 2:
			bop = schema.OpSlice
			inputs = []*tensor.Tensor{in, vec(rank), vec(rank)}
		case 3:
			bop = schema.OpGather
			opts = &schema.GatherOptions{Axis: r.next(), BatchDims: r.next()}
			inputs = []*tensor.Tensor{in, vec(r.next() & 3)}
		case 4:
			bop = schema.OpGatherND
			n := r.next()&3 + 1
			inputs = []*tensor.Tensor{in, kerneltest.New(tensor.Int32, []int{2, n}, vals(2*n), nil)}
		case 5:
			bop = schema.OpPad
			inputs = []*tensor.Tensor{in, kerneltest.New(tensor.Int32, []int{rank, 2}, vals(2*rank), nil)}
		case 6:
			bop = schema.OpTile
			inputs = []*tensor.Tensor{in, vec(rank)}
		case 7:
			bop = schema.OpTranspose
			inputs = []*tensor.Tensor{in, vec(rank)}
		case 8:
			bop = schema.OpSplitV
			outs = r.next()&3 + 1
			inputs = []*tensor.Tensor{in, vec(outs), kerneltest.New(tensor.Int32, []int{}, vals(1), nil)}
		case 9:
			bop = schema.OpSqueeze
			opts = &schema.SqueezeOptions{SqueezeDims: []int{r.next(), r.next()}}
			inputs = []*tensor.Tensor{in}
		case 10:
			bop = schema.OpExpandDims
			inputs = []*tensor.Tensor{in, vec(1)}
		case 11:
			bop = schema.OpSplit
			outs = r.next()&3 + 1
			inputs = []*tensor.Tensor{kerneltest.New(tensor.Int32, []int{}, vals(1), nil), in}
		case 12:
			bop = schema.OpUnpack
			opts = &schema.UnpackOptions{Axis: r.next()}
			outs = r.next()&3 + 1
			inputs = []*tensor.Tensor{in}
		case 13:
			bop = schema.OpSpaceToDepth
			opts = &schema.BlockOptions{BlockSize: r.next()}
			inputs = []*tensor.Tensor{in}
		case 14:
			bop = schema.OpPack
			opts = &schema.PackOptions{ValuesCount: 2, Axis: r.next()}
			inputs = []*tensor.Tensor{in, in}
		default:
			bop = schema.OpFill
			inputs = []*tensor.Tensor{vec(rank), kerneltest.New(tensor.Float32, []int{}, []float64{1}, nil)}
		}
		if r.next()&1 == 1 {
			// Make the shape-defining input a run-time value.
			kerneltest.Runtime(inputs[len(inputs)-1])
		}
		kern, _ := kernels.Lookup(schema.OperatorCode{Builtin: bop, Version: 1})
		var outputs []*tensor.Tensor
		for i := 0; i < outs; i++ {
			outputs = append(outputs, &tensor.Tensor{Name: "out", Type: tensor.Float32})
		}
		n := &kernels.Node{Op: bop, Version: 1, Options: opts, Inputs: inputs, Outputs: outputs}
		runBounded(kern, n)
	})
}

// runBounded prepares and evaluates n like the interpreter, with a small
// memory bound so that hostile shapes fail instead of exhausting memory.
func runBounded(kern kernels.Kernel, n *kernels.Node) {
	ctx := kernels.NewContext(quant.RoundingTFLite, 1)
	ctx.SetMaxTensorBytes(1 << 20)
	ctx.Preparing = true
	if err := kern.Prepare(ctx, n); err != nil {
		return
	}
	dynamic := false
	for _, o := range n.Outputs {
		switch o.Alloc {
		case tensor.DynamicAlloc:
			dynamic = true
		case tensor.ArenaAlloc:
			o.Data = kernels.AlignedBytes(o.ByteSize())
		}
	}
	if dynamic {
		ctx.InEval = true
		if err := kern.Prepare(ctx, n); err != nil {
			return
		}
		ctx.Preparing = false
		for _, o := range n.Outputs {
			if o.Alloc == tensor.DynamicAlloc {
				if err := ctx.ResizeOutput(o, o.Shape); err != nil {
					return
				}
			}
		}
	}
	ctx.Preparing = false
	_ = kern.Eval(ctx, n)
}
