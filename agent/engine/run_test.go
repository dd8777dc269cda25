package engine_test

import (
	"context"
	"os"
	"testing"

	"github.com/edgefleet/edgefleet/agent/engine"
)

func TestRunOnceAndBenchNative(t *testing.T) {
	data, err := os.ReadFile("../../testdata/models/iris.tflite")
	if err != nil {
		t.Fatal(err)
	}
	out, what, err := engine.RunOnce(context.Background(), engine.Native{}, data, [][]byte{make([]byte, 16)}, 1)
	if err != nil || what != "native" || len(out) != 1 || len(out[0].Data) != 12 {
		t.Fatalf("RunOnce = %v, %q, %v", out, what, err)
	}
	if _, _, err := engine.RunOnce(context.Background(), engine.Native{}, data, [][]byte{make([]byte, 15)}, 1); err == nil {
		t.Error("short input accepted")
	}
	r, err := engine.Bench(context.Background(), engine.Native{}, data, 1, 1, 5)
	if err != nil || r.Engine != "native" || r.Repeat != 5 || r.Min <= 0 || r.Min > r.P50 || r.P50 > r.P90 {
		t.Fatalf("Bench = %+v, %v", r, err)
	}
	if _, err := engine.Bench(context.Background(), engine.Native{}, data, 1, 0, 0); err == nil {
		t.Error("repeat 0 accepted")
	}
	if _, err := engine.Bench(context.Background(), engine.Native{}, []byte("not a model"), 1, 0, 1); err == nil {
		t.Error("garbage model benchmarked")
	}
}
