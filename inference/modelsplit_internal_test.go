package inference

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestModelSplitThreshold: an interpreter with two threads measures on its
// first Invoke how much work its nodes hand the pool; a model below the
// bound then splits no node (its workers run no chunk) and a large one
// keeps splitting, and both give the one-thread result byte for byte.
// Turning the bound off (WithModelSplitThreshold(0)) splits the small
// model's large nodes again (the control: without the bound it splits).
func TestModelSplitThreshold(t *testing.T) {
	for _, tc := range []struct {
		model   string
		opts    []Option
		split   bool // nodes still split after the first Invoke
		atMost  int64
		atLeast int64
	}{
		{model: "person_detect", split: false, atMost: 20_000_000},
		{model: "mobilenet_v1_0.25_128_quant", split: false, atMost: 30_000_000},
		{model: "micro_speech_quantized", split: false, atMost: 5_000_000},
		{model: "mobilenet_v2_1.0_224_quant", split: true, atLeast: 200_000_000},
		{model: "person_detect", opts: []Option{WithModelSplitThreshold(0)}, split: true},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.model, len(tc.opts)), func(t *testing.T) {
			dir := filepath.Join("../testdata/conformance", tc.model)
			m, err := LoadFile(filepath.Join(dir, "model.tflite"))
			if err != nil {
				t.Fatal(err)
			}
			var outs [2][]byte
			var ips [2]*Interpreter
			for k := range 2 {
				ip, err := NewInterpreter(m, append([]Option{WithThreads(k + 1)}, tc.opts...)...)
				if err != nil {
					t.Fatal(err)
				}
				defer ip.Close()
				for i := range ip.NumInputs() {
					data, err := os.ReadFile(filepath.Join(dir, "case_0", fmt.Sprintf("input_%d.bin", i)))
					if err != nil {
						t.Fatal(err)
					}
					if err := ip.SetInput(i, data); err != nil {
						t.Fatal(err)
					}
				}
				if err := ip.Invoke(); err != nil {
					t.Fatal(err)
				}
				ips[k] = ip
			}
			work := ips[1].ctx.InvokeWork()
			t.Logf("%s: %d units of splittable work per Invoke (bound %d)", tc.model, work, ips[1].ctx.ModelSplitThreshold)
			if tc.atMost > 0 && work > tc.atMost || work < tc.atLeast {
				t.Errorf("work per Invoke %d, expected in [%d, %d]", work, tc.atLeast, tc.atMost)
			}
			if w0 := ips[0].ctx.InvokeWork(); w0 != work {
				t.Errorf("one thread counted %d units, two threads %d", w0, work)
			}
			before := ips[1].ctx.ChunksRun(0) + ips[1].ctx.ChunksRun(1)
			for k, ip := range ips {
				if err := ip.Invoke(); err != nil {
					t.Fatal(err)
				}
				out := ip.Output(0)
				outs[k] = bytes.Clone(out.Data)
			}
			chunks := ips[1].ctx.ChunksRun(0) + ips[1].ctx.ChunksRun(1) - before
			if got := chunks > 0; got != tc.split {
				t.Errorf("second Invoke ran %d chunks in the pool, expected splitting %v", chunks, tc.split)
			}
			if !bytes.Equal(outs[0], outs[1]) {
				t.Error("two threads differ from one")
			}
		})
	}
}
