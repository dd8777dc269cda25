package ptq

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/tensor"
)

// FuzzQuantize feeds arbitrary model bytes through calibration and
// quantization: bad models must give errors, never panics, and whatever
// Quantize returns must load.
func FuzzQuantize(f *testing.F) {
	// Seeds: the small conformance models (each run calibrates and
	// quantizes three times, so the CNNs would make fuzzing crawl).
	for _, name := range []string{"iris", "sin_model", "fizzbuzz_model", "hello_world_float"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "conformance", name, "model.tflite"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := inference.Load(data)
		if err != nil {
			return
		}
		// Keep each run cheap: small tensors, few ops.
		for _, sg := range m.Schema().Subgraphs {
			if len(sg.Operators) > 32 {
				return
			}
			for _, st := range sg.Tensors {
				if tensor.NumElements(st.Shape) > 1<<12 {
					return
				}
			}
		}
		ranges, err := calibrate(data, RandomSamples(m.Inputs(), m.Metadata(), 2, 1), inference.WithMaxMemory(1<<22))
		if err != nil {
			return
		}
		for _, io := range []tensor.DType{tensor.Int8, tensor.Uint8, tensor.Float32} {
			q, err := Quantize(data, ranges, Options{IO: io})
			if err != nil {
				continue
			}
			if _, err := inference.Load(q); err != nil {
				t.Fatalf("Quantize returned a model that does not load: %v", err)
			}
		}
	})
}
