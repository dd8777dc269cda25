package serving

import (
	"context"
	"encoding/binary"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/edgefleet/edgefleet/agent/engine"
	"github.com/edgefleet/edgefleet/agent/telemetry"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/wire"
)

func f32bytes(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// TestTop1AndFeaturesMatchReal: the allocation-free readers used for
// telemetry agree with Real (the codec's dequantization) for float and
// quantized tensors, refuse what Real cannot read, and allocate nothing.
func TestTop1AndFeaturesMatchReal(t *testing.T) {
	q := &tensor.Quantization{Scale: []float32{0.5}, ZeroPoint: []int64{-3}}
	tests := []struct {
		name  string
		info  tensor.Info
		data  []byte
		class int
	}{
		{"float32", tensor.Info{Type: tensor.Float32, Shape: []int{4}}, f32bytes(0.1, 0.7, -2, 0.2), 1},
		{"float32 NaN first", tensor.Info{Type: tensor.Float32, Shape: []int{3}}, f32bytes(float32(math.NaN()), 0.3, 0.2), 1},
		{"uint8 quantized", tensor.Info{Type: tensor.Uint8, Shape: []int{3}, Quant: q}, []byte{10, 250, 3}, 1},
		{"int8 quantized", tensor.Info{Type: tensor.Int8, Shape: []int{3}, Quant: q}, []byte{0x80, 0x10, 0x7f}, 2},
		{"int16", tensor.Info{Type: tensor.Int16, Shape: []int{2}}, []byte{0xff, 0xff, 0x02, 0x00}, 1},
	}
	for _, tc := range tests {
		want, err := Real(tc.info, tc.data)
		if err != nil {
			t.Fatal(err)
		}
		cl, score, ok := top1(&tc.info, tc.data)
		if !ok || cl != tc.class || score != want[tc.class] {
			t.Errorf("%s: top1 = %d %v %v, want %d %v", tc.name, cl, score, ok, tc.class, want[tc.class])
		}
		var buf [8]float64
		n := featureValues(buf[:], &tc.info, tc.data)
		if n != len(want) {
			t.Fatalf("%s: %d features, want %d", tc.name, n, len(want))
		}
		for i := range want {
			if buf[i] != want[i] && !(math.IsNaN(buf[i]) && math.IsNaN(want[i])) {
				t.Errorf("%s: feature %d = %v, want %v", tc.name, i, buf[i], want[i])
			}
		}
		if a := testing.AllocsPerRun(50, func() { top1(&tc.info, tc.data); featureValues(buf[:], &tc.info, tc.data) }); a != 0 {
			t.Errorf("%s: %v allocations per instance", tc.name, a)
		}
	}
	// Not a classification, short data, per-channel quantization: no top-1.
	for _, info := range []tensor.Info{
		{Type: tensor.Float32, Shape: []int{1}},
		{Type: tensor.Float32, Shape: []int{2, 2}},
		{Type: tensor.Float32, Shape: []int{8}},
		{Type: tensor.Uint8, Shape: []int{4}, Quant: &tensor.Quantization{Scale: []float32{1, 2}, ZeroPoint: []int64{0, 0}}},
	} {
		if _, _, ok := top1(&info, f32bytes(1, 2, 3, 4)); ok {
			t.Errorf("top1 of %+v accepted", info)
		}
	}
	var buf [4]float64
	info := tensor.Info{Type: tensor.Float32, Shape: []int{10}}
	if n := featureValues(buf[:], &info, f32bytes(1, 2, 3)); n != 3 {
		t.Fatalf("short data: %d features, want the 3 present", n)
	}
}

// TestPredictFillsMonitoring: predictions through the Manager (the real
// iris model) fill the record's class and confidence histograms and the
// input feature summaries.
func TestPredictFillsMonitoring(t *testing.T) {
	s, dir := newStore(t)
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "models", "iris.tflite"))
	if err != nil {
		t.Fatal(err)
	}
	installBytes(t, s, dir, "iris", "1", data)
	coll := telemetry.NewCollector(nil)
	m := NewManager(engine.Native{}, s, coll, Config{}, slog.New(slog.DiscardHandler))
	defer m.Close()
	l, err := m.Get(context.Background(), "iris", "")
	if err != nil {
		t.Fatal(err)
	}
	ins := []Instance{{f32bytes(5.1, 3.5, 1.4, 0.2)}, {f32bytes(6.7, 3.0, 5.2, 2.3)}}
	if _, err := m.Predict(context.Background(), l, wire.RolePrimary, ins); err != nil {
		t.Fatal(err)
	}
	recs := coll.Flush()
	if len(recs) != 1 || recs[0].Monitoring == nil {
		t.Fatalf("records %+v", recs)
	}
	mon := recs[0].Monitoring
	var conf uint64
	for _, c := range mon.Confidence {
		conf += c
	}
	if mon.Predictions != 2 || len(mon.Classes) != 2 || conf != 2 || len(mon.Features) != 4 ||
		math.Abs(mon.Features[0].Mean-5.9) > 1e-6 || math.Abs(mon.Features[3].Max-2.3) > 1e-6 {
		t.Fatalf("monitoring %+v", mon)
	}
}
