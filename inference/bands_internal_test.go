package inference

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/modelbuilder"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/quant"
)

// TestBandsCoverMobileNet: on two threads MobileNet v2's convolutions,
// depthwise convolutions and residual additions run as bands (regions),
// WithoutBands as single nodes, and both give the one-thread output byte
// for byte over several Invokes (the workers running, then parked).
func TestBandsCoverMobileNet(t *testing.T) {
	for _, model := range []string{"mobilenet_v2_1.0_224_quant", "tf2_mobilenet_v2_1.0_224_ptq"} {
		t.Run(model, func(t *testing.T) {
			dir := filepath.Join("../testdata/conformance", model)
			m, err := LoadFile(filepath.Join(dir, "model.tflite"))
			if err != nil {
				t.Fatal(err)
			}
			input, err := os.ReadFile(filepath.Join(dir, "case_0", "input_0.bin"))
			if err != nil {
				t.Fatal(err)
			}
			var want []byte
			for _, tc := range []struct {
				threads int
				opts    []Option
				banded  int // nodes in bands, at least
			}{{1, nil, 0}, {2, nil, 50}, {2, []Option{WithoutBands()}, 0}, {3, nil, 50}} {
				ip, err := NewInterpreter(m, append([]Option{WithThreads(tc.threads)}, tc.opts...)...)
				if err != nil {
					t.Fatal(err)
				}
				defer ip.Close()
				banded := 0
				for _, b := range ip.subgraphs[0].bands {
					banded += b.end - b.start
				}
				if banded < tc.banded || (tc.banded == 0 && banded != 0) {
					t.Fatalf("threads %d %d options: %d of %d nodes in bands, expected at least %d (0: none)", tc.threads, len(tc.opts), banded, len(ip.subgraphs[0].nodes), tc.banded)
				}
				if err := ip.SetInput(0, input); err != nil {
					t.Fatal(err)
				}
				sameEveryInvoke(t, ip, &want, fmt.Sprintf("threads %d %d options", tc.threads, len(tc.opts)))
			}
		})
	}
}

// TestBandTensorsDoNotShareMemory: in a band, nodes fewer than
// kernels.Window apart may run at the same time, so no two tensors they
// use may overlap in the arena (the planner widens their lifetimes);
// without bands the same plan does reuse memory between such nodes (the
// control: the check can fail).
func TestBandTensorsDoNotShareMemory(t *testing.T) {
	m, err := LoadFile(filepath.Join("../testdata/conformance/mobilenet_v2_1.0_224_quant", "model.tflite"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		opts     []Option
		overlaps bool
	}{{nil, false}, {[]Option{WithoutBands()}, true}} {
		ip, err := NewInterpreter(m, append([]Option{WithThreads(2)}, tc.opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		sg := ip.subgraphs[0]
		uses := func(i int) []*tensor.Tensor {
			kn := &sg.nodes[i].kn
			return append(append(append([]*tensor.Tensor{}, kn.Inputs...), kn.Outputs...), kn.Intermediates...)
		}
		overlaps := 0
		for i := range sg.nodes {
			for j := i; j < len(sg.nodes) && j-i < kernels.Window; j++ {
				if b := sg.bandOf(i); !tc.overlaps && (b == nil || j >= b.end) {
					continue
				}
				for _, a := range uses(i) {
					for _, c := range uses(j) {
						if a != c && arenaOverlap(sg.arena, a, c) {
							overlaps++
							if !tc.overlaps {
								t.Errorf("nodes %d and %d of one band: tensors %q and %q share memory", i, j, a.Name, c.Name)
							}
						}
					}
				}
			}
		}
		if tc.overlaps && overlaps == 0 {
			t.Fatal("without bands no tensors of nodes within the window share memory: the check shows nothing")
		}
		t.Logf("%d options: arena %d bytes, %d overlaps", len(tc.opts), ip.ArenaBytes(), overlaps)
		ip.Close()
	}
}

// arenaOverlap reports whether two arena tensors' bytes intersect.
func arenaOverlap(arena []byte, a, b *tensor.Tensor) bool {
	if a == nil || b == nil || a.Alloc != tensor.ArenaAlloc || b.Alloc != tensor.ArenaAlloc || len(a.Data) == 0 || len(b.Data) == 0 {
		return false
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(arena)))
	a0 := uintptr(unsafe.Pointer(unsafe.SliceData(a.Data))) - base
	b0 := uintptr(unsafe.Pointer(unsafe.SliceData(b.Data))) - base
	return a0 < b0+uintptr(len(b.Data)) && b0 < a0+uintptr(len(a.Data))
}

// TestBandsAfterResize: bands run the jobs captured on their first Invoke
// again; resizing the input (batch and image size) prepares the nodes
// again and the bands capture anew. On a synthetic int8 network (1×1,
// depthwise 3×3 stride 1 and 2, a residual ADD, a 3×3 convolution, a
// VALID depthwise) every shape's output on 2 and 3 threads is the
// one-thread output byte for byte, including batches whose parts cross
// the batch boundary.
func TestBandsAfterResize(t *testing.T) {
	m, err := Load(residualModel(t))
	if err != nil {
		t.Fatal(err)
	}
	var ips []*Interpreter
	for _, threads := range []int{1, 2, 3} {
		ip, err := NewInterpreter(m, WithThreads(threads), WithSplitThreshold(0), WithModelSplitThreshold(0))
		if err != nil {
			t.Fatal(err)
		}
		defer ip.Close()
		ips = append(ips, ip)
	}
	r := rand.New(rand.NewPCG(5, 5))
	for _, shape := range [][]int{{1, 20, 20, 8}, {2, 20, 20, 8}, {1, 13, 9, 8}, {3, 7, 7, 8}, {1, 20, 20, 8}} {
		input := make([]byte, shape[0]*shape[1]*shape[2]*shape[3])
		for i := range input {
			input[i] = byte(r.IntN(256))
		}
		var want []byte
		for k, ip := range ips {
			if err := ip.ResizeInput(0, shape); err != nil {
				t.Fatal(err)
			}
			if err := ip.AllocateTensors(); err != nil {
				t.Fatal(err)
			}
			if k > 0 && len(ip.subgraphs[0].bands) == 0 {
				t.Fatalf("%v on %d threads: no bands", shape, k+1)
			}
			if err := ip.SetInput(0, input); err != nil {
				t.Fatal(err)
			}
			if k == 0 {
				want = nil
			}
			sameEveryInvoke(t, ip, &want, fmt.Sprintf("%v on %d threads", shape, k+1))
		}
	}
}

// residualModel writes an int8 network shaped like MobileNet v2's blocks,
// with random weights.
func residualModel(t *testing.T) []byte {
	t.Helper()
	model, err := residualModelBytes()
	if err != nil {
		t.Fatal(err)
	}
	return model
}

// residualModelBytes is residualModel's model file (also FuzzLoad's seed).
func residualModelBytes() ([]byte, error) {
	return bandModel(bandParams{seed: 7, c: 8, e: 24, e2: 32, k: 3, dil: 1, stride: 2})
}

// bandParams shapes bandModel: input channels c, expansions e and e2, the
// 3×3-ish convolution's size k and the last depthwise convolution's
// dilation, the second depthwise convolution's stride.
type bandParams struct {
	seed                     uint64
	c, e, e2, k, dil, stride int
}

// bandModel writes an int8 network shaped like MobileNet v2's blocks
// (1×1 expansion, depthwise 3×3, 1×1 projection, residual ADD, a
// strided depthwise, a k×k convolution, a VALID dilated depthwise), with
// random weights.
func bandModel(p bandParams) ([]byte, error) {
	r := rand.New(rand.NewPCG(p.seed, 7))
	b := modelbuilder.New()
	q := func(scale float32, zp int64) *tensor.Quantization {
		return &tensor.Quantization{Scale: []float32{scale}, ZeroPoint: []int64{zp}}
	}
	act := func(name string, c int, scale float32, zp int64) int {
		return b.AddTensor(modelbuilder.Tensor{Name: name, Type: tensor.Int8, Shape: []int{1, 20, 20, c}, Quant: q(scale, zp)})
	}
	weights := func(shape []int, outC int, inScale float32) (int, int) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		w := make([]byte, n)
		for i := range w {
			w[i] = byte(int8(r.IntN(255) - 127))
		}
		bias := make([]byte, 4*outC)
		for i := range outC {
			binary.LittleEndian.PutUint32(bias[4*i:], uint32(int32(r.IntN(2001)-1000)))
		}
		wi := b.AddTensor(modelbuilder.Tensor{Name: "w", Type: tensor.Int8, Shape: shape, Data: w, Quant: q(0.02, 0)})
		bi := b.AddTensor(modelbuilder.Tensor{Name: "b", Type: tensor.Int32, Shape: []int{outC}, Data: bias, Quant: q(inScale*0.02, 0)})
		return wi, bi
	}
	conv := func(in int, inScale float32, k, outC, inC int, out int, stride int) {
		w, bi := weights([]int{outC, k, k, inC}, outC, inScale)
		b.AddOp(modelbuilder.Op{Builtin: schema.OpConv2D, Version: 3, Inputs: []int{in, w, bi}, Outputs: []int{out},
			Options: &schema.Conv2DOptions{Padding: schema.PaddingSame, StrideW: stride, StrideH: stride, Activation: quant.ActRelu6, DilationW: 1, DilationH: 1}})
	}
	dw := func(in int, inScale float32, c int, out int, stride, dil int, pad schema.Padding) {
		w, bi := weights([]int{1, 3, 3, c}, c, inScale)
		b.AddOp(modelbuilder.Op{Builtin: schema.OpDepthwiseConv2D, Version: 3, Inputs: []int{in, w, bi}, Outputs: []int{out},
			Options: &schema.DepthwiseConv2DOptions{Padding: pad, StrideW: stride, StrideH: stride, DepthMultiplier: 1, Activation: quant.ActRelu6, DilationW: dil, DilationH: dil}})
	}
	in := act("in", p.c, 0.05, 3)
	t1, t2, t3 := act("expand", p.e, 0.04, -5), act("dw", p.e, 0.03, -10), act("project", p.c, 0.05, 3)
	t4, t5, t6 := act("add", p.c, 0.07, 0), act("expand2", p.e2, 0.04, -7), act("dw2", p.e2, 0.03, -2)
	t7, t8 := act("conv3", 16, 0.06, 1), act("dw3", 16, 0.05, 4)
	conv(in, 0.05, 1, p.e, p.c, t1, 1)
	dw(t1, 0.04, p.e, t2, 1, 1, schema.PaddingSame)
	conv(t2, 0.03, 1, p.c, p.e, t3, 1)
	b.AddOp(modelbuilder.Op{Builtin: schema.OpAdd, Version: 2, Inputs: []int{in, t3}, Outputs: []int{t4}, Options: &schema.ActivationOptions{}})
	conv(t4, 0.07, 1, p.e2, p.c, t5, 1)
	dw(t5, 0.04, p.e2, t6, p.stride, 1, schema.PaddingSame)
	conv(t6, 0.03, p.k, 16, p.e2, t7, 1)
	dw(t7, 0.06, 16, t8, 1, p.dil, schema.PaddingValid)
	b.SetIO([]int{in}, []int{t8})
	return b.Bytes()
}

// FuzzBands builds band-shaped networks of fuzzed channel counts, kernel
// sizes, strides and dilations, runs them on fuzzed batches and image
// sizes with 1, 2 and 3 threads (every node split, bands on), and
// requires the same bytes from all three (or the same refusal: an image
// too small for the VALID convolution).
func FuzzBands(f *testing.F) {
	f.Add(uint64(7), uint8(8), uint8(24), uint8(32), uint8(3), uint8(1), uint8(2), uint8(1), uint8(20), uint8(20))
	f.Add(uint64(1), uint8(1), uint8(1), uint8(1), uint8(1), uint8(2), uint8(1), uint8(3), uint8(7), uint8(5))
	f.Add(uint64(2), uint8(16), uint8(64), uint8(96), uint8(2), uint8(2), uint8(2), uint8(2), uint8(14), uint8(9))
	f.Fuzz(func(t *testing.T, seed uint64, c, e, e2, k, dil, stride, batch, h, w uint8) {
		p := bandParams{seed: seed, c: 1 + int(c%40), e: 1 + int(e%64), e2: 1 + int(e2%96), k: 1 + int(k%3), dil: 1 + int(dil%2), stride: 1 + int(stride%2)}
		model, err := bandModel(p)
		if err != nil {
			t.Fatal(err)
		}
		m, err := Load(model)
		if err != nil {
			t.Fatal(err)
		}
		shape := []int{1 + int(batch%3), 1 + int(h%24), 1 + int(w%24), p.c}
		input := make([]byte, shape[0]*shape[1]*shape[2]*shape[3])
		r := rand.New(rand.NewPCG(seed, 9))
		for i := range input {
			input[i] = byte(r.IntN(256))
		}
		var want []byte
		var wantErr error
		for _, threads := range []int{1, 2, 3} {
			ip, err := NewInterpreter(m, WithThreads(threads), WithSplitThreshold(0), WithModelSplitThreshold(0))
			if err != nil {
				t.Fatal(err)
			}
			err = ip.ResizeInput(0, shape)
			if err == nil {
				err = ip.AllocateTensors()
			}
			if err == nil {
				err = ip.SetInput(0, input)
			}
			if err == nil {
				err = ip.Invoke()
			}
			var got []byte
			if err == nil {
				got = bytes.Clone(ip.Output(0).Data)
			}
			ip.Close()
			if threads == 1 {
				want, wantErr = got, err
				continue
			}
			if (err == nil) != (wantErr == nil) {
				t.Fatalf("%+v %v: one thread: %v; %d threads: %v", p, shape, wantErr, threads, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%+v %v: %d threads differ from one", p, shape, threads)
			}
		}
	})
}

// sameEveryInvoke invokes ip three times and requires output 0 to be
// *want every time (the first Invoke sets *want when it is nil).
func sameEveryInvoke(t *testing.T, ip *Interpreter, want *[]byte, what string) {
	t.Helper()
	for round := range 3 {
		if err := ip.Invoke(); err != nil {
			t.Fatalf("%s, Invoke %d: %v", what, round, err)
		}
		got := ip.Output(0).Data
		if *want == nil {
			*want = bytes.Clone(got)
		} else if !bytes.Equal(got, *want) {
			t.Fatalf("%s, Invoke %d: output differs from one thread's", what, round)
		}
	}
}
