package conv_test

import (
	"testing"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
	"github.com/edgefleet/edgefleet/quant"
)

// FuzzKernels builds nodes of every op of this package with shapes,
// options, dtypes and quantization drawn from the fuzz input: Prepare may
// reject them, but whatever it accepts, Eval must run without panicking.
func FuzzKernels(f *testing.F) {
	f.Add([]byte{0, 1, 5, 5, 3, 4, 3, 3, 1, 1, 1, 1, 0, 0, 1})
	f.Add([]byte{1, 2, 7, 6, 2, 4, 3, 2, 2, 1, 2, 1, 1, 1, 0})
	f.Add([]byte{2, 1, 3, 4, 8, 5, 1, 1, 1, 1, 1, 1, 0, 2, 1})
	f.Add([]byte{3, 1, 3, 3, 2, 3, 3, 3, 2, 2, 1, 1, 1, 3, 0})
	f.Add([]byte{4, 2, 3, 4, 5, 3, 1, 1, 1, 1, 1, 1, 0, 1, 1})
	f.Add([]byte{0, 1, 9, 9, 4, 2, 1, 1, 2, 2, 1, 1, 0, 3, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		at := func(i int) int {
			if i < len(data) {
				return int(data[i])
			}
			return 0
		}
		small := func(i, n int) int { return at(i) % n }
		op := []schema.BuiltinOperator{schema.OpConv2D, schema.OpDepthwiseConv2D, schema.OpFullyConnected, schema.OpTransposeConv, schema.OpBatchMatMul}[small(0, 5)]
		dtypes := []tensor.DType{tensor.Float32, tensor.Int8, tensor.Uint8, tensor.Int16}
		dt := dtypes[small(13, 4)]
		perChannel := small(14, 2) == 1
		b, h, w, c := small(1, 3), small(2, 10), small(3, 10), small(4, 9)
		oc, kh, kw := small(5, 9), small(6, 5), small(7, 5)
		sh, sw, dh, dw := small(8, 4), small(9, 4), small(10, 3), small(11, 3)
		pad := schema.Padding(small(12, 3))
		act := quant.Activation(small(15, 4))
		filterType := dt
		if dt == tensor.Int16 {
			filterType = tensor.Int8
		}
		biasType := tensor.Int32
		switch dt {
		case tensor.Float32:
			biasType = tensor.Float32
		case tensor.Int16:
			biasType = tensor.Int64
		}
		qOf := func(n, dim int) *tensor.Quantization {
			if dt == tensor.Float32 {
				return nil
			}
			if perChannel && n > 0 {
				s := make([]float32, n)
				for i := range s {
					s[i] = 0.01 * float32(i+1)
				}
				return &tensor.Quantization{Scale: s, ZeroPoint: make([]int64, n), Dim: dim}
			}
			zp := int64(0)
			if dt == tensor.Uint8 {
				zp = 128
			} else if dt == tensor.Int8 {
				zp = -3
			}
			return kerneltest.Q(0.05, zp)
		}
		mk := func(dt tensor.DType, shape []int, q *tensor.Quantization) *tensor.Tensor {
			n := tensor.NumElements(shape)
			v := make([]float64, n)
			for i := range v {
				v[i] = float64(at(16+i%8)%7) - 3
				if dt == tensor.Uint8 {
					v[i] += 128
				}
			}
			return kerneltest.New(dt, shape, v, q)
		}
		out := kerneltest.New(dt, nil, nil, kerneltest.Q(0.1, 0))
		if dt == tensor.Float32 {
			out.Quant = nil
		}
		var inputs []*tensor.Tensor
		var opts any
		switch op {
		case schema.OpConv2D:
			inputs = []*tensor.Tensor{mk(dt, []int{b, h, w, c}, qOf(1, 0)), mk(filterType, []int{oc, kh, kw, max(c/2, 1)}, qOf(oc, 0)), mk(biasType, []int{oc}, nil)}
			opts = &schema.Conv2DOptions{Padding: pad, StrideH: sh, StrideW: sw, DilationH: dh, DilationW: dw, Activation: act}
		case schema.OpDepthwiseConv2D:
			inputs = []*tensor.Tensor{mk(dt, []int{b, h, w, c}, qOf(1, 0)), mk(filterType, []int{1, kh, kw, oc}, qOf(oc, 3)), mk(biasType, []int{oc}, nil)}
			opts = &schema.DepthwiseConv2DOptions{Padding: pad, StrideH: sh, StrideW: sw, DilationH: dh, DilationW: dw, Activation: act, DepthMultiplier: small(16, 3)}
		case schema.OpFullyConnected:
			inputs = []*tensor.Tensor{mk(dt, []int{b, h, c}, qOf(1, 0)), mk(filterType, []int{oc, c}, qOf(oc, 0)), mk(biasType, []int{oc}, nil)}
			opts = &schema.FullyConnectedOptions{Activation: act, KeepNumDims: sh == 1, AsymmetricQuantizeInputs: sw == 1}
		case schema.OpTransposeConv:
			shape := kerneltest.New(tensor.Int32, []int{4}, []float64{float64(b), float64(h), float64(w), float64(oc)}, nil)
			inputs = []*tensor.Tensor{shape, mk(filterType, []int{oc, kh, kw, c}, qOf(oc, 0)), mk(dt, []int{b, small(17, 5), small(18, 5), c}, qOf(1, 0)), mk(biasType, []int{oc}, nil)}
			opts = &schema.TransposeConvOptions{Padding: pad, StrideH: sh, StrideW: sw}
		case schema.OpBatchMatMul:
			inputs = []*tensor.Tensor{mk(dt, []int{b, h, c}, qOf(1, 0)), mk(dt, []int{small(16, 3), c, w}, qOf(1, 0))}
			opts = &schema.BatchMatMulOptions{AdjX: sh == 1, AdjY: sw == 1}
		}
		k, ok := kernels.Lookup(schema.OperatorCode{Builtin: op, Version: 1})
		if !ok {
			t.Fatalf("no kernel for %s", op)
		}
		_ = kerneltest.RunKernel(k, quant.RoundingTFLite, &kernels.Node{Op: op, Version: 1, Options: opts, Inputs: inputs, Outputs: []*tensor.Tensor{out}})
	})
}
