package inference

import (
	"bytes"
	"encoding/binary"
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
				for round := range 3 {
					if err := ip.Invoke(); err != nil {
						t.Fatal(err)
					}
					got := ip.Output(0).Data
					if want == nil {
						want = bytes.Clone(got)
					} else if !bytes.Equal(got, want) {
						t.Fatalf("threads %d %d options round %d: output differs from one thread's", tc.threads, len(tc.opts), round)
					}
				}
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
			for round := range 3 {
				if err := ip.Invoke(); err != nil {
					t.Fatal(err)
				}
				got := ip.Output(0).Data
				if k == 0 && round == 0 {
					want = bytes.Clone(got)
				} else if !bytes.Equal(got, want) {
					t.Fatalf("%v on %d threads, Invoke %d: output differs from one thread's", shape, k+1, round)
				}
			}
		}
	}
}

// residualModel writes an int8 network shaped like MobileNet v2's blocks,
// with random weights.
func residualModel(t *testing.T) []byte {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 7))
	b := modelbuilder.New()
	q := func(scale float32, zp int64) *tensor.Quantization {
		return &tensor.Quantization{Scale: []float32{scale}, ZeroPoint: []int64{zp}}
	}
	act := func(name string, c int, scale float32, zp int64) int {
		return b.AddTensor(modelbuilder.Tensor{Name: name, Type: tensor.Int8, Shape: []int{1, 20, 20, c}, Quant: q(scale, zp)})
	}
	weights := func(shape []int, inScale float32) (int, int) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		w := make([]byte, n)
		for i := range w {
			w[i] = byte(int8(r.IntN(255) - 127))
		}
		outC := shape[0]
		if shape[0] == 1 {
			outC = shape[3] // depthwise [1, kh, kw, channels]
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
		w, bi := weights([]int{outC, k, k, inC}, inScale)
		b.AddOp(modelbuilder.Op{Builtin: schema.OpConv2D, Version: 3, Inputs: []int{in, w, bi}, Outputs: []int{out},
			Options: &schema.Conv2DOptions{Padding: schema.PaddingSame, StrideW: stride, StrideH: stride, Activation: quant.ActRelu6, DilationW: 1, DilationH: 1}})
	}
	dw := func(in int, inScale float32, c int, out int, stride int, pad schema.Padding) {
		w, bi := weights([]int{1, 3, 3, c}, inScale)
		b.AddOp(modelbuilder.Op{Builtin: schema.OpDepthwiseConv2D, Version: 3, Inputs: []int{in, w, bi}, Outputs: []int{out},
			Options: &schema.DepthwiseConv2DOptions{Padding: pad, StrideW: stride, StrideH: stride, DepthMultiplier: 1, Activation: quant.ActRelu6, DilationW: 1, DilationH: 1}})
	}
	in := act("in", 8, 0.05, 3)
	t1, t2, t3 := act("expand", 24, 0.04, -5), act("dw", 24, 0.03, -10), act("project", 8, 0.05, 3)
	t4, t5, t6 := act("add", 8, 0.07, 0), act("expand2", 32, 0.04, -7), act("dw2", 32, 0.03, -2)
	t7, t8 := act("conv3", 16, 0.06, 1), act("dw3", 16, 0.05, 4)
	conv(in, 0.05, 1, 24, 8, t1, 1)
	dw(t1, 0.04, 24, t2, 1, schema.PaddingSame)
	conv(t2, 0.03, 1, 8, 24, t3, 1)
	b.AddOp(modelbuilder.Op{Builtin: schema.OpAdd, Version: 2, Inputs: []int{in, t3}, Outputs: []int{t4}, Options: &schema.ActivationOptions{}})
	conv(t4, 0.07, 1, 32, 8, t5, 1)
	dw(t5, 0.04, 32, t6, 2, schema.PaddingSame)
	conv(t6, 0.03, 3, 16, 32, t7, 1)
	dw(t7, 0.06, 16, t8, 1, schema.PaddingValid)
	b.SetIO([]int{in}, []int{t8})
	model, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return model
}
