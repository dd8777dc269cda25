package inference_test

import (
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/inference"
)

// TestInterpreterCloseStopsWorkers: WithThreads(3) starts two worker
// goroutines, Close ends them (polled with a generous deadline), and the
// closed interpreter still runs, on the calling goroutine.
func TestInterpreterCloseStopsWorkers(t *testing.T) {
	dir := filepath.Join(conformanceDir, "person_detect")
	m, err := inference.LoadFile(filepath.Join(dir, "model.tflite"))
	if err != nil {
		t.Fatal(err)
	}
	base := poolWorkers()
	ip, err := inference.NewInterpreter(m, inference.WithThreads(3))
	if err != nil {
		t.Fatal(err)
	}
	if n := poolWorkers(); n < 2 {
		t.Fatalf("%d pool workers with 3 threads, expected at least 2", n)
	}
	if err := ip.Invoke(); err != nil {
		t.Fatal(err)
	}
	if err := ip.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for poolWorkers() > base {
		if time.Now().After(deadline) {
			t.Fatalf("%d pool workers 30 s after Close, expected %d", poolWorkers(), base)
		}
		runtime.Gosched()
	}
	if err := ip.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	if err := ip.Invoke(); err != nil {
		t.Fatalf("Invoke after Close: %v", err)
	}
}

// poolWorkers counts the worker goroutines of pools, started or not yet
// scheduled (a goroutine that has not run yet shows only its entry).
func poolWorkers() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "created by github.com/edgefleet/edgefleet/inference/kernels.NewPool")
}
