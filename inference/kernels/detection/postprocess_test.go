package detection_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/flexbuf"
	"github.com/edgefleet/edgefleet/inference/modelbuilder"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
	"github.com/edgefleet/edgefleet/internal/kerneltest/singleop"
)

type spec struct {
	boxes, classes, bg           int
	encType, clsType, anchorType tensor.DType
	encQ, clsQ, anchorQ          *tensor.Quantization
	anchors                      []byte
	maxDet, maxCls, perClass     int
	regular                      bool
	scoreThr, iouThr             float32
	noPerClass                   bool
}

func (s spec) options(t testing.TB) []byte {
	es := []flexbuf.Entry{
		{Key: "max_detections", Value: s.maxDet}, {Key: "max_classes_per_detection", Value: s.maxCls},
		{Key: "use_regular_nms", Value: s.regular},
		{Key: "nms_score_threshold", Value: s.scoreThr}, {Key: "nms_iou_threshold", Value: s.iouThr},
		{Key: "num_classes", Value: s.classes},
		{Key: "y_scale", Value: float32(10)}, {Key: "x_scale", Value: float32(10)},
		{Key: "h_scale", Value: float32(5)}, {Key: "w_scale", Value: float32(5)},
	}
	if !s.noPerClass {
		es = append(es, flexbuf.Entry{Key: "detections_per_class", Value: s.perClass})
	}
	b, err := flexbuf.BuildMap(4, es...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (s spec) model(t testing.TB) []byte {
	t.Helper()
	b := modelbuilder.New()
	n := s.maxDet * s.maxCls
	enc := b.AddTensor(modelbuilder.Tensor{Name: "enc", Type: s.encType, Shape: []int{1, s.boxes, 4}, Quant: s.encQ})
	cls := b.AddTensor(modelbuilder.Tensor{Name: "cls", Type: s.clsType, Shape: []int{1, s.boxes, s.classes + s.bg}, Quant: s.clsQ})
	anc := b.AddTensor(modelbuilder.Tensor{Name: "anchors", Type: s.anchorType, Shape: []int{s.boxes, 4}, Quant: s.anchorQ, Data: s.anchors})
	ob := b.AddTensor(modelbuilder.Tensor{Name: "boxes", Type: tensor.Float32, Shape: []int{1, n, 4}})
	oc := b.AddTensor(modelbuilder.Tensor{Name: "classes", Type: tensor.Float32, Shape: []int{1, n}})
	os := b.AddTensor(modelbuilder.Tensor{Name: "scores", Type: tensor.Float32, Shape: []int{1, n}})
	on := b.AddTensor(modelbuilder.Tensor{Name: "num", Type: tensor.Float32, Shape: []int{1}})
	b.AddOp(modelbuilder.Op{Builtin: schema.OpCustom, Custom: "TFLite_Detection_PostProcess", Version: 1,
		Inputs: []int{enc, cls, anc}, Outputs: []int{ob, oc, os, on}, CustomOptions: s.options(t)})
	b.SetIO([]int{enc, cls}, []int{ob, oc, os, on})
	m, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func expectFloats(t *testing.T, what string, got []byte, want []float32) {
	t.Helper()
	g := kerneltest.F32s(got)
	if len(g) != len(want) {
		t.Fatalf("%s: %d values, want %d: %v", what, len(g), len(want), g)
	}
	var m float64
	for _, v := range want {
		m = max(m, math.Abs(float64(v)))
	}
	for i := range want {
		if math.Abs(float64(g[i]-want[i])) > 1e-5*max(m, 1e-6) {
			t.Fatalf("%s: value %d = %v, want %v\n got %v\nwant %v", what, i, g[i], want[i], g, want)
		}
	}
}

// TestHand: three boxes decode to the same square (IoU 1), so NMS keeps
// only the best-scoring box; a fourth box lies elsewhere.
func TestHand(t *testing.T) {
	anchors := kerneltest.F32(0.5, 0.5, 1, 1, 0.5, 0.5, 1, 1, 0.5, 0.5, 1, 1, 2.5, 2.5, 1, 1)
	s := spec{boxes: 4, classes: 2, bg: 1, encType: tensor.Float32, clsType: tensor.Float32, anchorType: tensor.Float32,
		anchors: anchors, maxDet: 3, maxCls: 1, perClass: 10, scoreThr: 0.1, iouThr: 0.5}
	enc := kerneltest.F32(make([]float32, 16)...)
	// Columns: background, class 0, class 1.
	cls := kerneltest.F32(
		0.9, 0.2, 0.3,
		0.9, 0.7, 0.1,
		0.9, 0.4, 0.6,
		0.9, 0.05, 0.5)
	out := singleop.Run(t, s.model(t), [][]byte{enc, cls})
	// Fast NMS: max scores 0.3, 0.7, 0.6, 0.5 -> box 1 (class 0), box 3
	// (class 1); boxes 0 and 2 overlap box 1 completely.
	expectFloats(t, "fast boxes", out[0], []float32{0, 0, 1, 1, 2, 2, 3, 3, 0, 0, 0, 0})
	expectFloats(t, "fast classes", out[1], []float32{0, 1, 0})
	expectFloats(t, "fast scores", out[2], []float32{0.7, 0.5, 0})
	expectFloats(t, "fast num", out[3], []float32{2})

	// Regular NMS: class 0 keeps box 1 (0.7); class 1 keeps box 2 (0.6)
	// and box 3 (0.5); best three overall.
	s.regular = true
	out = singleop.Run(t, s.model(t), [][]byte{enc, cls})
	expectFloats(t, "regular boxes", out[0], []float32{0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3})
	expectFloats(t, "regular classes", out[1], []float32{0, 1, 1})
	expectFloats(t, "regular scores", out[2], []float32{0.7, 0.6, 0.5})
	expectFloats(t, "regular num", out[3], []float32{3})

	// Two classes per detection (fast NMS), no background column.
	s = spec{boxes: 4, classes: 2, bg: 0, encType: tensor.Float32, clsType: tensor.Float32, anchorType: tensor.Float32,
		anchors: anchors, maxDet: 2, maxCls: 2, perClass: 10, scoreThr: 0.1, iouThr: 0.5}
	cls = kerneltest.F32(0.2, 0.3, 0.7, 0.1, 0.4, 0.6, 0.05, 0.5)
	out = singleop.Run(t, s.model(t), [][]byte{enc, cls})
	expectFloats(t, "multi classes", out[1], []float32{0, 1, 1, 0})
	expectFloats(t, "multi scores", out[2], []float32{0.7, 0.1, 0.5, 0.05})
	expectFloats(t, "multi num", out[3], []float32{2})
}

func quantize(r *rand.Rand, n int, signed bool) []byte {
	b := make([]byte, n)
	for i := range b {
		if signed {
			b[i] = byte(int8(r.IntN(256) - 128))
		} else {
			b[i] = byte(r.IntN(256))
		}
	}
	return b
}

// randomInputs makes box encodings that keep boxes near their anchors and
// scores in [0, 1].
func randomInputs(r *rand.Rand, s spec) [][]byte {
	nc := s.classes + s.bg
	var enc, cls []byte
	switch s.encType {
	case tensor.Float32:
		v := make([]float32, 4*s.boxes)
		for i := range v {
			v[i] = float32(r.Float64()*4 - 2)
		}
		enc = kerneltest.F32(v...)
	default:
		enc = quantize(r, 4*s.boxes, s.encType == tensor.Int8)
	}
	switch s.clsType {
	case tensor.Float32:
		v := make([]float32, s.boxes*nc)
		for i := range v {
			// Coarse values make ties, as quantized models have.
			v[i] = float32(r.IntN(20)) / 20
		}
		cls = kerneltest.F32(v...)
	default:
		cls = quantize(r, s.boxes*nc, s.clsType == tensor.Int8)
	}
	return [][]byte{enc, cls}
}

func randomAnchors(r *rand.Rand, boxes int) []byte {
	v := make([]float32, 4*boxes)
	for i := 0; i < boxes; i++ {
		v[4*i] = float32(r.Float64())
		v[4*i+1] = float32(r.Float64())
		v[4*i+2] = float32(0.1 + 0.4*r.Float64())
		v[4*i+3] = float32(0.1 + 0.4*r.Float64())
	}
	return kerneltest.F32(v...)
}

func TestGolden(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	const boxes = 24
	anchors := randomAnchors(r, boxes)
	qAnchors := quantize(r, 4*boxes, false)
	for seed, tc := range []struct {
		name string
		s    spec
	}{
		{"fast_float", spec{classes: 3, bg: 1, maxDet: 5, maxCls: 1, perClass: 100, scoreThr: 0.2, iouThr: 0.4}},
		{"fast_float_multiclass", spec{classes: 3, bg: 1, maxDet: 4, maxCls: 2, perClass: 100, scoreThr: 0.1, iouThr: 0.5}},
		{"regular_float", spec{classes: 3, bg: 1, maxDet: 6, maxCls: 1, perClass: 3, regular: true, scoreThr: 0.2, iouThr: 0.4}},
		{"regular_float_nobg", spec{classes: 4, bg: 0, maxDet: 8, maxCls: 1, regular: true, noPerClass: true, scoreThr: 0.3, iouThr: 0.6}},
		{"fast_uint8", spec{classes: 3, bg: 1, maxDet: 5, maxCls: 1, perClass: 100, scoreThr: 0.3, iouThr: 0.5,
			encType: tensor.Uint8, clsType: tensor.Uint8, anchorType: tensor.Uint8,
			encQ: kerneltest.Q(0.05, 128), clsQ: kerneltest.Q(1.0/256, 0), anchorQ: kerneltest.Q(0.004, 0)}},
		{"regular_uint8", spec{classes: 3, bg: 1, maxDet: 5, maxCls: 1, perClass: 2, regular: true, scoreThr: 0.3, iouThr: 0.5,
			encType: tensor.Uint8, clsType: tensor.Uint8, anchorType: tensor.Uint8,
			encQ: kerneltest.Q(0.05, 128), clsQ: kerneltest.Q(1.0/256, 0), anchorQ: kerneltest.Q(0.004, 0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.s
			s.boxes = boxes
			if s.encType == tensor.Float32 && s.encQ == nil {
				s.clsType, s.anchorType = tensor.Float32, tensor.Float32
			}
			if s.anchorType == tensor.Float32 {
				s.anchors = anchors
			} else {
				s.anchors = qAnchors
			}
			ins := randomInputs(rand.New(rand.NewPCG(uint64(seed), 11)), s)
			model := s.model(t)
			want := kerneltest.Golden(t, "postprocess_"+tc.name, model, ins)
			got := singleop.Run(t, model, ins)
			for i := range want {
				expectFloats(t, "output", got[i], kerneltest.F32s(want[i]))
			}
		})
	}
}

func TestErrors(t *testing.T) {
	anchors := kerneltest.F32(0.5, 0.5, 1, 1)
	base := spec{boxes: 1, classes: 1, bg: 1, encType: tensor.Float32, clsType: tensor.Float32, anchorType: tensor.Float32,
		anchors: anchors, maxDet: 1, maxCls: 1, perClass: 1, scoreThr: 0.1, iouThr: 0.5}
	for name, mod := range map[string]func(*spec){
		"iou 0":          func(s *spec) { s.iouThr = 0 },
		"iou above 1":    func(s *spec) { s.iouThr = 1.5 },
		"zero classes":   func(s *spec) { s.maxCls = 0 },
		"two background": func(s *spec) { s.bg = 2 },
		"per class 0":    func(s *spec) { s.regular = true; s.perClass = 0 },
	} {
		s := base
		mod(&s)
		m, err := inference.Load(s.model(t))
		if err == nil {
			_, err = inference.NewInterpreter(m)
		}
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func FuzzCustomOptions(f *testing.F) {
	s := spec{boxes: 2, classes: 1, bg: 1, encType: tensor.Float32, clsType: tensor.Float32, anchorType: tensor.Float32,
		anchors: kerneltest.F32(0.5, 0.5, 1, 1, 0.2, 0.2, 0.5, 0.5), maxDet: 2, maxCls: 1, perClass: 1, scoreThr: 0.1, iouThr: 0.5}
	f.Add(s.options(&testing.T{}))
	f.Fuzz(func(t *testing.T, opts []byte) {
		b := modelbuilder.New()
		enc := b.AddTensor(modelbuilder.Tensor{Name: "enc", Type: tensor.Float32, Shape: []int{1, 2, 4}})
		cls := b.AddTensor(modelbuilder.Tensor{Name: "cls", Type: tensor.Float32, Shape: []int{1, 2, 2}})
		anc := b.AddTensor(modelbuilder.Tensor{Name: "anchors", Type: tensor.Float32, Shape: []int{2, 4}, Data: s.anchors})
		outs := []int{
			b.AddTensor(modelbuilder.Tensor{Name: "b", Type: tensor.Float32, Shape: []int{1, 1, 4}}),
			b.AddTensor(modelbuilder.Tensor{Name: "c", Type: tensor.Float32, Shape: []int{1, 1}}),
			b.AddTensor(modelbuilder.Tensor{Name: "s", Type: tensor.Float32, Shape: []int{1, 1}}),
			b.AddTensor(modelbuilder.Tensor{Name: "n", Type: tensor.Float32, Shape: []int{1}}),
		}
		b.AddOp(modelbuilder.Op{Builtin: schema.OpCustom, Custom: "TFLite_Detection_PostProcess", Inputs: []int{enc, cls, anc}, Outputs: outs, CustomOptions: opts})
		b.SetIO([]int{enc, cls}, outs)
		model, err := b.Bytes()
		if err != nil {
			return
		}
		m, err := inference.Load(model)
		if err != nil {
			return
		}
		ip, err := inference.NewInterpreter(m, inference.WithMaxMemory(1<<24))
		if err != nil {
			return
		}
		ip.SetInput(0, kerneltest.F32(0, 0, 0, 0, 1, 1, 1, 1))
		ip.SetInput(1, kerneltest.F32(0.1, 0.9, 0.2, 0.8))
		ip.Invoke()
	})
}

// TestInt8MatchesFloat: int8 inputs (which newer TFLite versions accept;
// the reference build rejects them) must give the same detections as the
// float inputs they dequantize to.
func TestInt8MatchesFloat(t *testing.T) {
	r := rand.New(rand.NewPCG(99, 1))
	const boxes = 12
	encQ, clsQ, ancQ := kerneltest.Q(0.05, 3), kerneltest.Q(1.0/256, -128), kerneltest.Q(0.004, -128)
	qa := quantize(r, 4*boxes, true)
	for _, regular := range []bool{false, true} {
		s := spec{boxes: boxes, classes: 3, bg: 1, maxDet: 4, maxCls: 2, perClass: 3, regular: regular, scoreThr: 0.3, iouThr: 0.5,
			encType: tensor.Int8, clsType: tensor.Int8, anchorType: tensor.Int8, encQ: encQ, clsQ: clsQ, anchorQ: ancQ, anchors: qa}
		ins := randomInputs(r, s)
		got := singleop.Run(t, s.model(t), ins)
		deq := func(b []byte, q *tensor.Quantization) []byte {
			v := make([]float32, len(b))
			for i, x := range b {
				v[i] = (float32(int8(x)) - float32(q.ZeroPoint[0])) * q.Scale[0]
			}
			return kerneltest.F32(v...)
		}
		f := s
		f.encType, f.clsType, f.anchorType = tensor.Float32, tensor.Float32, tensor.Float32
		f.encQ, f.clsQ, f.anchorQ = nil, nil, nil
		f.anchors = deq(qa, ancQ)
		want := singleop.Run(t, f.model(t), [][]byte{deq(ins[0], encQ), deq(ins[1], clsQ)})
		for i := range want {
			expectFloats(t, "output", got[i], kerneltest.F32s(want[i]))
		}
		if kerneltest.F32s(got[3])[0] == 0 {
			t.Fatal("no detections: the test checks nothing")
		}
	}
}
