package elementwise

import (
	"testing"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
	"github.com/edgefleet/edgefleet/quant"
)

// benchShape is a typical MobileNet residual ADD (1x56x56x24).
var benchShape = []int{1, 56, 56, 24}

func benchNode(b *testing.B, op schema.BuiltinOperator, in []*tensor.Tensor, o *tensor.Tensor) {
	b.Helper()
	k, _ := kernels.Lookup(schema.OperatorCode{Builtin: op, Version: 1})
	n := &kernels.Node{Op: op, Version: 1, Inputs: in, Outputs: []*tensor.Tensor{o}}
	if err := kerneltest.RunKernel(k, quant.RoundingTFLite, n); err != nil {
		b.Fatal(err)
	}
	ctx := kernels.NewContext(quant.RoundingTFLite, 1)
	b.SetBytes(int64(o.ByteSize()))
	b.ResetTimer()
	for b.Loop() {
		if err := k.Eval(ctx, n); err != nil {
			b.Fatal(err)
		}
	}
}

func benchValues(n int, mod int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = float64(i*37%mod - mod/2)
	}
	return v
}

func BenchmarkAddUint8(b *testing.B) {
	n := tensor.NumElements(benchShape)
	x := benchValues(n, 256)
	for i := range x {
		x[i] += 128
	}
	benchNode(b, schema.OpAdd, []*tensor.Tensor{mk(u8, benchShape, x, q(0.3, 120)), mk(u8, benchShape, x, q(0.2, 130))}, out(u8, q(0.4, 128)))
}

func BenchmarkAddInt8(b *testing.B) {
	n := tensor.NumElements(benchShape)
	x := benchValues(n, 256)
	benchNode(b, schema.OpAdd, []*tensor.Tensor{mk(i8, benchShape, x, q(0.3, -2)), mk(i8, benchShape, x, q(0.2, 5))}, out(i8, q(0.4, 0)))
}

func BenchmarkAddInt8Broadcast(b *testing.B) {
	n := tensor.NumElements(benchShape)
	benchNode(b, schema.OpAdd, []*tensor.Tensor{mk(i8, benchShape, benchValues(n, 256), q(0.3, -2)), mk(i8, []int{24}, benchValues(24, 256), q(0.2, 5))}, out(i8, q(0.4, 0)))
}

func BenchmarkAddFloat32(b *testing.B) {
	n := tensor.NumElements(benchShape)
	x := benchValues(n, 1000)
	benchNode(b, schema.OpAdd, []*tensor.Tensor{mk(f32, benchShape, x, nil), mk(f32, benchShape, x, nil)}, out(f32, nil))
}

func BenchmarkMulInt8(b *testing.B) {
	n := tensor.NumElements(benchShape)
	x := benchValues(n, 256)
	benchNode(b, schema.OpMul, []*tensor.Tensor{mk(i8, benchShape, x, q(0.3, -2)), mk(i8, benchShape, x, q(0.2, 5))}, out(i8, q(0.4, 0)))
}

func BenchmarkQuantizeFloat32ToInt8(b *testing.B) {
	n := tensor.NumElements(benchShape)
	benchNode(b, schema.OpQuantize, []*tensor.Tensor{mk(f32, benchShape, benchValues(n, 1000), nil)}, out(i8, q(4, -3)))
}

func BenchmarkRequantizeUint8ToInt8(b *testing.B) {
	n := tensor.NumElements(benchShape)
	x := benchValues(n, 256)
	for i := range x {
		x[i] += 128
	}
	benchNode(b, schema.OpQuantize, []*tensor.Tensor{mk(u8, benchShape, x, q(0.5, 128))}, out(i8, q(0.5, 0)))
}

func BenchmarkDequantizeInt8(b *testing.B) {
	n := tensor.NumElements(benchShape)
	benchNode(b, schema.OpDequantize, []*tensor.Tensor{mk(i8, benchShape, benchValues(n, 256), q(0.5, 3))}, out(f32, nil))
}

// TestThreadsMatchSingle: nodes split into element chunks on 3 threads
// (every node split) give the bytes of one thread: same-shape 8-bit ADD,
// requantization, and per-channel quantization (the channel of each
// element depends on its index, not its chunk's).
func TestThreadsMatchSingle(t *testing.T) {
	shape := []int{1, 13, 11, 37} // not a multiple of the 64-element chunks
	n := tensor.NumElements(shape)
	a, b := benchValues(n, 256), benchValues(n, 200)
	ua := make([]float64, n)
	for j := range ua {
		ua[j] = a[j] + 128
	}
	f := make([]float64, n)
	for j := range f {
		f[j] = a[j] / 50
	}
	scales := make([]float32, 11)
	zps := make([]int64, 11)
	for c := range scales {
		scales[c], zps[c] = 0.01*float32(c+1), int64(c-5)
	}
	perChannel := &tensor.Quantization{Scale: scales, ZeroPoint: zps, Dim: 2}
	cases := []struct {
		name   string
		op     schema.BuiltinOperator
		inputs func() []*tensor.Tensor
		out    func() *tensor.Tensor
	}{
		{"add int8", schema.OpAdd, func() []*tensor.Tensor {
			return []*tensor.Tensor{mk(i8, shape, a, q(0.3, -3)), mk(i8, shape, b, q(0.2, 4))}
		}, func() *tensor.Tensor { return out(i8, q(0.4, -3)) }},
		{"add uint8", schema.OpAdd, func() []*tensor.Tensor {
			return []*tensor.Tensor{mk(u8, shape, ua, q(0.3, 125)), mk(u8, shape, ua, q(0.2, 132))}
		}, func() *tensor.Tensor { return out(u8, q(0.4, 125)) }},
		{"requantize uint8 to int8", schema.OpQuantize, func() []*tensor.Tensor { return []*tensor.Tensor{mk(u8, shape, ua, q(0.3, 120))} }, func() *tensor.Tensor { return out(i8, q(0.35, -4)) }},
		{"quantize float per channel", schema.OpQuantize, func() []*tensor.Tensor { return []*tensor.Tensor{mk(f32, shape, f, nil)} }, func() *tensor.Tensor { return out(i8, perChannel) }},
		{"quantize float to int16", schema.OpQuantize, func() []*tensor.Tensor { return []*tensor.Tensor{mk(f32, shape, f, nil)} }, func() *tensor.Tensor { return out(tensor.Int16, q(0.001, 0)) }},
	}
	for _, c := range cases {
		var outs [2][]byte
		for i, threads := range []int{1, 3} {
			o := c.out()
			k, _ := kernels.Lookup(schema.OperatorCode{Builtin: c.op, Version: 1})
			node := &kernels.Node{Op: c.op, Version: 1, Inputs: c.inputs(), Outputs: []*tensor.Tensor{o}}
			ctx := kernels.NewContext(quant.RoundingTFLite, threads)
			ctx.SplitThreshold = 0
			ctx.Preparing = true
			if err := k.Prepare(ctx, node); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			ctx.Preparing = false
			o.Data = kernels.AlignedBytes(o.ByteSize())
			if err := k.Eval(ctx, node); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			ctx.Close()
			outs[i] = o.Data
		}
		if string(outs[0]) != string(outs[1]) {
			t.Errorf("%s: 3 threads differ from 1", c.name)
		}
	}
}
