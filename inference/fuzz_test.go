package inference_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/inference"
)

// FuzzLoad feeds arbitrary bytes through parsing, op checks and a full
// prepare (shape inference and memory planning) and one Invoke: none may
// panic or hang, and the memory bound holds. A model that runs is run
// again on two threads with every node split (bands included), which
// must give the same bytes.
func FuzzLoad(f *testing.F) {
	residual, err := inference.ResidualModel()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(residual)
	for _, name := range []string{"hello_world_int8", "hello_world_float", "iris", "sin_model", "fizzbuzz_model", "micro_speech_quantized", "keyword_scrambled"} {
		b, err := os.ReadFile("../testdata/conformance/" + name + "/model.tflite")
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
		ip, err := inference.NewInterpreter(m, inference.WithMaxMemory(64<<20))
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if ip.InvokeContext(ctx) != nil {
			return
		}
		two, err := inference.NewInterpreter(m, inference.WithMaxMemory(64<<20), inference.WithThreads(2), inference.WithSplitThreshold(0), inference.WithModelSplitThreshold(0))
		if err != nil {
			t.Fatalf("one thread prepared the model, two threads: %v", err)
		}
		defer two.Close()
		for i := range ip.NumInputs() {
			if err := two.SetInput(i, ip.Input(i).Data); err != nil {
				t.Fatalf("input %d: %v", i, err)
			}
		}
		if err := two.InvokeContext(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			t.Fatalf("one thread ran the model, two threads: %v", err)
		}
		for i := range ip.NumOutputs() {
			if a, b := ip.Output(i), two.Output(i); string(a.Data) != string(b.Data) {
				t.Fatalf("output %d (%s %v) differs on two threads", i, a.Type, a.Shape)
			}
		}
	})
}
