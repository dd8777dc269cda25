package detection_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/kerneltest"
)

// ssdSpec is shaped like SSD MobileNet's postprocess: 1917 anchors, 90
// classes plus background.
func ssdSpec(regular bool) spec {
	r := rand.New(rand.NewPCG(5, 5))
	return spec{boxes: 1917, classes: 90, bg: 1, encType: tensor.Float32, clsType: tensor.Float32, anchorType: tensor.Float32,
		anchors: randomAnchors(r, 1917), maxDet: 10, maxCls: 1, perClass: 100, regular: regular, scoreThr: 0.3, iouThr: 0.6}
}

func ssdInterp(tb testing.TB, regular bool) *inference.Interpreter {
	s := ssdSpec(regular)
	m, err := inference.Load(s.model(tb))
	if err != nil {
		tb.Fatal(err)
	}
	ip, err := inference.NewInterpreter(m)
	if err != nil {
		tb.Fatal(err)
	}
	r := rand.New(rand.NewPCG(6, 6))
	ins := randomInputs(r, s)
	// Realistic class scores: mostly near zero, a few confident ones.
	sc := make([]float32, s.boxes*(s.classes+s.bg))
	for i := range sc {
		sc[i] = float32(math.Pow(r.Float64(), 12))
	}
	ins[1] = kerneltest.F32(sc...)
	for i, b := range ins {
		if err := ip.SetInput(i, b); err != nil {
			tb.Fatal(err)
		}
	}
	return ip
}

func TestNoAllocs(t *testing.T) {
	for _, regular := range []bool{false, true} {
		ip := ssdInterp(t, regular)
		if err := ip.Invoke(); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(5, func() {
			if err := ip.Invoke(); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("regular %v: %v allocations per Invoke", regular, n)
		}
	}
}

func BenchmarkFastNMS(b *testing.B) {
	ip := ssdInterp(b, false)
	b.ReportAllocs()
	for b.Loop() {
		if err := ip.Invoke(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRegularNMS(b *testing.B) {
	ip := ssdInterp(b, true)
	b.ReportAllocs()
	for b.Loop() {
		if err := ip.Invoke(); err != nil {
			b.Fatal(err)
		}
	}
}
