package batch

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/agent/predict"
)

// echo is a Predictor that returns each instance as its prediction (the
// predictor seam's second side is the real API server, exercised in the
// daemon tests); it fails after failAfter calls to simulate a crash.
type echo struct {
	calls     atomic.Int32
	failAfter int32
}

func (e *echo) Predict(ctx context.Context, model string, req predict.Request, partial bool) (*predict.Response, error) {
	if e.failAfter > 0 && e.calls.Add(1) > e.failAfter {
		return nil, errors.New("crash")
	}
	resp := &predict.Response{ModelVersion: "1", Predictions: make([]any, len(req.Instances)), Errors: make([]*predict.Error, len(req.Instances))}
	for i, in := range req.Instances {
		if string(in) == `"bad"` {
			resp.Errors[i] = &predict.Error{Code: "invalid_input", Message: "bad"}
			continue
		}
		var v any
		json.Unmarshal(in, &v)
		resp.Predictions[i] = v
	}
	return resp, nil
}

func readLines(t *testing.T, path string) []Line {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Line
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("bad output line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

func writeNDJSON(t *testing.T, n int) string {
	p := filepath.Join(t.TempDir(), "in.ndjson")
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i == 5 {
			b.WriteString("\"bad\"\n\n")
			continue
		}
		fmt.Fprintf(&b, "[%d]\n", i)
	}
	os.WriteFile(p, []byte(b.String()), 0o644)
	return p
}

func checkExactlyOnce(t *testing.T, lines []Line, n int) {
	t.Helper()
	if len(lines) != n {
		t.Fatalf("%d output lines, want %d", len(lines), n)
	}
	for i, l := range lines {
		if l.Index != i {
			t.Fatalf("line %d has index %d", i, l.Index)
		}
	}
}

func TestRunNDJSON(t *testing.T) {
	in := writeNDJSON(t, 20)
	out := filepath.Join(t.TempDir(), "out.ndjson")
	var last [2]int
	cp, err := Run(context.Background(), &echo{}, Spec{Model: "m", Input: in, Output: out, Chunk: 6, Progress: func(d, tot int) { last = [2]int{d, tot} }})
	if err != nil {
		t.Fatal(err)
	}
	if !cp.Finished || cp.Done != 20 || last != [2]int{20, 20} {
		t.Fatalf("checkpoint %+v progress %v", cp, last)
	}
	lines := readLines(t, out)
	checkExactlyOnce(t, lines, 20)
	if lines[5].Error == nil || lines[5].Error.Code != "invalid_input" || lines[6].Prediction == nil || lines[6].Input != "in.ndjson:8" {
		t.Fatalf("lines 5,6 = %+v %+v", lines[5], lines[6])
	}
}

// TestResumeAfterCrash: a run that dies mid-way (and left a partial line
// after its last checkpoint) resumes without losing or duplicating records.
func TestResumeAfterCrash(t *testing.T) {
	in := writeNDJSON(t, 50)
	out := filepath.Join(t.TempDir(), "out.ndjson")
	_, err := Run(context.Background(), &echo{failAfter: 3}, Spec{Model: "m", Input: in, Output: out, Chunk: 7})
	if err == nil {
		t.Fatal("crashing predictor: no error")
	}
	cp, _ := ReadCheckpoint(out)
	if cp.Done != 21 || cp.Finished {
		t.Fatalf("checkpoint after crash: %+v", cp)
	}
	f, _ := os.OpenFile(out, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"index":21,"input":"partial`) // torn write after the checkpoint
	f.Close()
	cp, err = Run(context.Background(), &echo{}, Spec{Model: "m", Input: in, Output: out, Chunk: 7})
	if err != nil || !cp.Finished {
		t.Fatalf("resume: %+v, %v", cp, err)
	}
	checkExactlyOnce(t, readLines(t, out), 50)
	// A finished run starts over.
	if _, err := Run(context.Background(), &echo{}, Spec{Model: "m", Input: in, Output: out}); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, readLines(t, out), 50)
}

func TestRunDirectory(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "b.json"), []byte(`[2]`), 0o644)
	os.WriteFile(filepath.Join(dir, "a.json"), []byte(`[1]`), 0o644)
	os.WriteFile(filepath.Join(dir, "c.bin"), []byte{1, 2}, 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte(`skip`), 0o644)
	out := filepath.Join(t.TempDir(), "out.ndjson")
	if _, err := Run(context.Background(), &echo{}, Spec{Model: "m", Input: dir, Output: out}); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, out)
	if len(lines) != 3 || lines[0].Input != "a.json" || lines[1].Input != "b.json" || lines[2].Input != "c.bin" {
		t.Fatalf("lines = %+v", lines)
	}
	if m, ok := lines[2].Prediction.(map[string]any); !ok || m["b64"] != "AQI=" {
		t.Fatalf(".bin record = %+v", lines[2].Prediction)
	}
}

func TestScheduleValidation(t *testing.T) {
	if _, err := NewScheduler(&echo{}, []Scheduled{{Name: "x", Cron: "not cron"}}, nil); err == nil {
		t.Fatal("bad cron accepted")
	}
}

// TestSchedulerResumesUnfinished: Start resumes a run whose checkpoint is
// not finished, without waiting for the next tick.
func TestSchedulerResumesUnfinished(t *testing.T) {
	in := writeNDJSON(t, 30)
	out := filepath.Join(t.TempDir(), "out.ndjson")
	Run(context.Background(), &echo{failAfter: 1}, Spec{Model: "m", Input: in, Output: out, Chunk: 10})
	s, err := NewScheduler(&echo{}, []Scheduled{{Name: "nightly", Cron: "0 3 * * *", Spec: Spec{Model: "m", Input: in, Output: out, Chunk: 10}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.Start(ctx)
	for i := 0; i < 500; i++ {
		if cp, _ := ReadCheckpoint(out); cp.Finished {
			checkExactlyOnce(t, readLines(t, out), 30)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("interrupted scheduled run was not resumed")
}
