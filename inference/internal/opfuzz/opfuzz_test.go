package opfuzz

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/inference"
)

// maxMemory is the interpreter's activation bound in these tests.
const maxMemory = 64 << 20

// allocBound is the most one case may allocate in total (model bytes,
// loading, planning, packed weights, scratch): a few times the bound.
const allocBound = 4*maxMemory + 64<<20

// watchdog is how long one case may take before it counts as a hang (the
// Invoke itself gets a 2 s deadline; the rest is slack for a loaded
// machine and for Load and prepare, which take no context).
const watchdog = 30 * time.Second

// result is what running one case produced.
type result struct {
	stage string
	err   error
	panic any
	stack []byte
}

// run loads, prepares and invokes c. It returns what happened and, for a
// panic, a hang or allocation beyond allocBound, a failure message and the
// function the failure happened in. Errors are fine.
func run(c Case) (r result, failure, where string) {
	done := make(chan result, 1)
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	go func() {
		var r result
		defer func() {
			if p := recover(); p != nil {
				r.panic = p
				r.stack = debug.Stack()
			}
			done <- r
		}()
		r.stage = "load"
		m, err := inference.Load(c.Model)
		if err != nil {
			r.err = err
			return
		}
		r.stage = "prepare"
		ip, err := inference.NewInterpreter(m, inference.WithMaxMemory(maxMemory))
		if err != nil {
			r.err = err
			return
		}
		k := 0
		for _, in := range ip.Inputs() {
			for i := range in.Data {
				if len(c.Fill) > 0 {
					in.Data[i] = c.Fill[k%len(c.Fill)]
				}
				k++
			}
		}
		r.stage = "invoke"
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		r.err = ip.InvokeContext(ctx)
		if r.err == nil {
			// A second Invoke must work too (steady state, state kept).
			r.stage = "invoke 2"
			r.err = ip.InvokeContext(ctx)
		}
		if r.err == nil && c.Resize != nil && ip.NumInputs() > 0 {
			r.stage = "resize"
			if r.err = ip.ResizeInput(0, c.Resize); r.err == nil {
				r.stage = "invoke after resize"
				r.err = ip.InvokeContext(ctx)
			}
		}
	}()
	select {
	case r = <-done:
	case <-time.After(watchdog):
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		return r, fmt.Sprintf("%s: hang (no result after %v)\n%s", c.Desc, watchdog, buf), "hang " + c.Op.String()
	}
	if r.panic != nil {
		return r, fmt.Sprintf("%s: panic during %s: %v\n%s", c.Desc, r.stage, r.panic, r.stack), topFrame(r.stack)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > allocBound {
		return r, fmt.Sprintf("%s: allocated %d bytes (bound %d), stage %s, err %v", c.Desc, d, allocBound, r.stage, r.err), "alloc " + c.Op.String()
	}
	return r, "", ""
}

// topFrame returns the innermost project function of a panic's stack
// under inference/ (outside this package), such as "inference/kernels/conv.requantRow64".
func topFrame(stack []byte) string {
	const mod = "github.com/edgefleet/edgefleet/"
	for _, line := range strings.Split(string(stack), "\n") {
		if !strings.HasPrefix(line, mod+"inference/") || strings.HasPrefix(line, mod+"inference/internal/opfuzz") {
			continue
		}
		f := strings.TrimPrefix(line, mod)
		if i := strings.LastIndex(f, "("); i > 0 {
			f = f[:i]
		}
		return f
	}
	return "unknown"
}

// openFindings maps the function a known panic happens in to its entry in
// FINDINGS.md. They are in packages whose owners are still writing them;
// TestRandomOpModelsNeverPanic logs these instead of failing, and an entry
// must go as soon as its fix lands (FuzzOps still fails on them).
var openFindings = map[string]string{}

// FuzzOps builds single-op models of every registered kernel from the fuzz
// input (see Generate) and runs them through Load, NewInterpreter and
// Invoke: any of them may fail, none may panic, hang or allocate without
// bound. With OPFUZZ_IGNORE_OPEN=1 the failures listed in openFindings
// are skipped, so a fuzzing session can look for new ones.
func FuzzOps(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 2))
	ops := Ops()
	for i := range ops {
		// One seed per op: the first byte picks the op.
		b := make([]byte, 96)
		for k := range b {
			b[k] = byte(rng.Uint32())
		}
		b[0] = byte(i)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Generate(data)
		if err != nil {
			return // the builder refused the combination
		}
		if _, failure, where := run(c); failure != "" {
			if _, open := openFindings[where]; open && os.Getenv("OPFUZZ_IGNORE_OPEN") != "" {
				t.Skip("open finding", openFindings[where])
			}
			t.Fatal(failure)
		}
	})
}

// TestRandomOpModelsNeverPanic runs a fixed set of generated cases (the
// same on every run) so CI exercises the generator without -fuzz.
func TestRandomOpModelsNeverPanic(t *testing.T) {
	n := 20000
	if testing.Short() {
		n = 2000
	}
	rng := rand.New(rand.NewPCG(7, 11))
	ops := Ops()
	stages := map[string]int{}
	seen := map[string]bool{}
	perOp := map[string]int{}
	// A fixed count and seed, no time budget: every run checks the same
	// cases whatever the machine's speed (20000 take ~4 s on one core).
	ran := 0
	for i := 0; i < n; i++ {
		b := make([]byte, 64+rng.IntN(192))
		for k := 0; k+8 <= len(b); k += 8 {
			binary.LittleEndian.PutUint64(b[k:], rng.Uint64())
		}
		b[0] = byte(i % len(ops)) // every op in turn
		b[1] = byte(i / len(ops) % 256)
		c, err := Generate(b)
		if err != nil {
			continue
		}
		ran++
		r, failure, where := run(c)
		if failure != "" {
			if seen[where] {
				continue
			}
			seen[where] = true
			if f, ok := openFindings[where]; ok {
				t.Logf("open finding %s (%s): %s\nfuzz input: %q", f, where, strings.SplitN(failure, "\n", 2)[0], b)
				continue
			}
			t.Errorf("in %s: %s\nfuzz input: %q", where, failure, b)
			continue
		}
		key := r.stage
		if r.err == nil {
			key = "ok"
		}
		stages[key]++
		if r.err == nil {
			perOp[c.Op.String()]++
		}
	}
	t.Logf("%d of %d inputs built a model; outcomes: %v", ran, n, stages)
	if ran < n/2 {
		t.Errorf("only %d of %d inputs built a model: the generator refuses too much", ran, n)
	}
	if stages["ok"] == 0 {
		t.Errorf("no generated model ran: the generator is too hostile to reach Eval (%v)", stages)
	}
	t.Logf("ops that ran at least once: %d of %d; %s", len(perOp), len(ops), fmt.Sprint(perOp))
}
