package serving

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/agent/engine"
	"github.com/edgefleet/edgefleet/agent/modelstore"
	"github.com/edgefleet/edgefleet/agent/serving/servingtest"
	"github.com/edgefleet/edgefleet/agent/telemetry"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/waitfor"
	"github.com/edgefleet/edgefleet/ota"
)

// loadWhile loads servingtest.WhileModel(stop).
func loadWhile(t *testing.T, stop int32, limits Limits, mem *memBudget) *Loaded {
	t.Helper()
	data, err := servingtest.WhileModel(stop)
	if err != nil {
		t.Fatal(err)
	}
	l, err := loadWithBudget(context.Background(), engine.Native{}, "loop", "1", "sha", data, limits, mem, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// hang starts a Run that never ends until its context is canceled.
func hang(t *testing.T, l *Loaded) (cancel func(), done <-chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() {
		_, err := l.Run(ctx, []Instance{{servingtest.I32(6)}})
		ch <- err
	}()
	return cancel, ch
}

func TestQueueBoundFromLatency(t *testing.T) {
	l := loadWhile(t, 5, Limits{Pool: 2, Queue: 1024, LatencyBudget: time.Second}, nil)
	if l.rowNanos.Load() <= 0 {
		t.Fatal("load did not measure the latency")
	}
	for _, c := range []struct {
		row  time.Duration
		want int
	}{{250 * time.Millisecond, 8}, {time.Millisecond, 1024}, {10 * time.Second, 2}, {100 * time.Millisecond, 20}} {
		l.rowNanos.Store(int64(c.row))
		if got := l.QueueBound(); got != c.want {
			t.Errorf("latency %s, budget 1s, pool 2: bound %d, want %d", c.row, got, c.want)
		}
	}
	l.limits.LatencyBudget = 0
	if got := l.QueueBound(); got != 1024 {
		t.Errorf("without budget: bound %d, want 1024", got)
	}
}

// TestShedsWithRetryAfter: with the interpreter busy and the queue at its
// latency-derived bound, a request is refused at once with the estimated
// wait instead of waiting; a request larger than the bound is told the
// limit; queued work finishes once the interpreter is free.
func TestShedsWithRetryAfter(t *testing.T) {
	l := loadWhile(t, 5, Limits{Pool: 1, MaxBatch: 1, Queue: 1024, LatencyBudget: time.Second}, nil)
	l.rowNanos.Store(int64(250 * time.Millisecond)) // bound 4
	cancel, hung := hang(t, l)
	waitfor.Until(t, "the hanging run to start", func() bool { return l.inflight.Load() == 1 && l.QueueLen() == 0 })
	var wg sync.WaitGroup
	results := make([]error, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := l.Run(context.Background(), []Instance{{servingtest.I32(0)}})
			if err == nil && tensor.View[int32](out[0][0].Data)[0] != 5 {
				err = errors.New("wrong result")
			}
			results[i] = err
		}()
	}
	waitfor.Until(t, "4 queued", func() bool { return l.QueueLen() == 4 })
	_, err := l.Run(context.Background(), []Instance{{servingtest.I32(0)}})
	var oe *OverloadError
	if !errors.As(err, &oe) || !errors.Is(err, ErrQueueFull) || oe.Bound != 4 || oe.RetryAfter() < time.Second {
		t.Fatalf("5th request: %v, want an OverloadError with bound 4 and a wait >= 1s", err)
	}
	five := []Instance{{servingtest.I32(0)}, {servingtest.I32(0)}, {servingtest.I32(0)}, {servingtest.I32(0)}, {servingtest.I32(0)}}
	if _, err := l.Run(context.Background(), five); !errors.Is(err, ErrBatchTooLarge) || !strings.Contains(err.Error(), "at most 4") {
		t.Fatalf("batch of 5: %v", err)
	}
	cancel()
	if err := <-hung; !errors.Is(err, context.Canceled) {
		t.Fatalf("hanging run: %v", err)
	}
	wg.Wait()
	for i, err := range results {
		if err != nil {
			t.Errorf("queued request %d: %v", i, err)
		}
	}
}

// TestDeadlineCancelsInvoke: a request's deadline ends its never-ending
// invocation (the only interpreter is free again afterwards).
func TestDeadlineCancelsInvoke(t *testing.T) {
	l := loadWhile(t, 5, Limits{Pool: 1, MaxBatch: 1}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := l.Run(ctx, []Instance{{servingtest.I32(6)}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("never-ending run: %v", err)
	}
	waitfor.Until(t, "the interpreter to be free", func() bool { return l.idle.Load() == 1 })
	if out, err := l.Run(context.Background(), []Instance{{servingtest.I32(3)}}); err != nil || tensor.View[int32](out[0][0].Data)[0] != 5 {
		t.Fatalf("next run: %v", err)
	}
}

// TestProbeTimeout: a model whose probe never ends still loads (bounded by
// ProbeTimeout), without batching, and serves inputs that do end.
func TestProbeTimeout(t *testing.T) {
	done := make(chan *Loaded, 1)
	go func() {
		done <- loadWhile(t, -1, Limits{Pool: 1, MaxBatch: 8, ProbeTimeout: 50 * time.Millisecond}, nil)
	}()
	var l *Loaded
	select {
	case l = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("load blocked by a never-ending probe")
	}
	if l.Batchable || l.rowNanos.Load() != 0 {
		t.Fatalf("batchable %v latency %d after a failed probe", l.Batchable, l.rowNanos.Load())
	}
	if out, err := l.Run(context.Background(), []Instance{{servingtest.I32(-3)}}); err != nil || tensor.View[int32](out[0][0].Data)[0] != -1 {
		t.Fatalf("run: %v", err)
	}
}

// TestPoolAutoScaling: the pool grows to Pool while work waits, within the
// memory budget, and shrinks back to MinPool when idle.
func TestPoolAutoScaling(t *testing.T) {
	l := loadWhile(t, 5, Limits{Pool: 3, MinPool: 1, MaxBatch: 1, ShrinkAfter: 20 * time.Millisecond}, nil)
	if n, _ := l.Interpreters(); n != 1 {
		t.Fatalf("started with %d interpreters, want MinPool 1", n)
	}
	var cancels []func()
	var hung []<-chan error
	for range 3 {
		c, d := hang(t, l)
		cancels, hung = append(cancels, c), append(hung, d)
	}
	waitfor.Until(t, "3 interpreters", func() bool { n, _ := l.Interpreters(); return n == 3 && l.inflight.Load() == 3 && l.QueueLen() == 0 })
	for i, c := range cancels {
		c()
		<-hung[i]
	}
	waitfor.Until(t, "shrink to 1", func() bool { n, _ := l.Interpreters(); return n == 1 })

	// Memory budget: room for two interpreters only.
	per := l.sessionBytes
	mem := &memBudget{limit: 2 * per}
	l2 := loadWhile(t, 5, Limits{Pool: 3, MinPool: 1, MaxBatch: 1}, mem)
	cancels, hung = nil, nil
	for range 3 {
		c, d := hang(t, l2)
		cancels, hung = append(cancels, c), append(hung, d)
	}
	waitfor.Until(t, "2 running, 1 queued", func() bool { return l2.inflight.Load() == 3 && l2.QueueLen() == 1 && !l2.growing.Load() })
	if n, _ := l2.Interpreters(); n != 2 || mem.used.Load() != 2*per {
		t.Fatalf("%d interpreters, %d bytes used, budget %d", n, mem.used.Load(), mem.limit)
	}
	for i, c := range cancels {
		c()
		<-hung[i]
	}
}

func newStore(t *testing.T) (*modelstore.Store, string) {
	dir := t.TempDir()
	s, err := modelstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func installBytes(t *testing.T, s *modelstore.Store, dir, id, version string, data []byte) {
	t.Helper()
	p := filepath.Join(dir, id+version+".tflite")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Install(ctx, id, version, p, ota.ArtifactInfo{Source: p}); err != nil {
		t.Fatal(err)
	}
	if err := s.Activate(ctx, id, version); err != nil {
		t.Fatal(err)
	}
}

// TestFailedLoadParsedOnce: a model that fails to load answers
// ErrModelUnavailable with the reason, without being parsed again, until
// its versions change.
func TestFailedLoadParsedOnce(t *testing.T) {
	s, dir := newStore(t)
	installBytes(t, s, dir, "bad", "1", []byte("definitely not a tflite file"))
	m := NewManager(engine.Native{}, s, nil, Config{}, slog.New(slog.DiscardHandler))
	defer m.Close()
	for i := range 3 {
		_, err := m.Get(context.Background(), "bad", "")
		if !errors.Is(err, ErrModelUnavailable) || !strings.Contains(err.Error(), "bad@1") {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if n := m.Loads(); n != 1 {
		t.Fatalf("the bad file was parsed %d times", n)
	}
	good, _ := servingtest.WhileModel(5)
	installBytes(t, s, dir, "bad", "2", good)
	if _, err := m.Get(context.Background(), "bad", ""); err != nil {
		t.Fatalf("after a new version: %v", err)
	}
}

// TestIdleUnload: a version idle for IdleUnload is unloaded (metrics say
// so) and loaded again on the next request.
func TestIdleUnload(t *testing.T) {
	s, dir := newStore(t)
	data, _ := servingtest.WhileModel(5)
	installBytes(t, s, dir, "loop", "1", data)
	coll := telemetry.NewCollector(nil)
	m := NewManager(engine.Native{}, s, coll, Config{IdleUnload: 30 * time.Millisecond}, slog.New(slog.DiscardHandler))
	defer m.Close()
	if _, err := m.Get(context.Background(), "loop", ""); err != nil {
		t.Fatal(err)
	}
	loaded := func() int {
		st, _ := m.Status(context.Background())
		return len(st[0].Loaded)
	}
	waitfor.Until(t, "idle unload", func() bool { return loaded() == 0 })
	if v := metric(t, coll, "edge_agent_model_unloads_total", "reason", "idle"); v != 1 {
		t.Fatalf("edge_agent_model_unloads_total{reason=idle} = %v", v)
	}
	if _, err := m.Get(context.Background(), "loop", ""); err != nil || loaded() != 1 {
		t.Fatalf("reload: %v", err)
	}
}

// metric returns the value of the sample of name with label k=v.
func metric(t *testing.T, coll *telemetry.Collector, name, k, v string) float64 {
	t.Helper()
	coll.Describe()
	mfs, err := coll.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					if c := m.GetCounter(); c != nil {
						return c.GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

// TestBatchCanceledWhenAllCallersAre: a micro-batch keeps running while
// one of its callers remains, and is canceled once all are gone (it used
// to ignore cancellation entirely).
func TestBatchCanceledWhenAllCallersAre(t *testing.T) {
	c1, cancel1 := context.WithCancel(context.Background())
	c2, cancel2 := context.WithCancel(context.Background())
	ctx, stop := allCanceled([]*job{{ctx: c1}, {ctx: c2}})
	defer stop()
	cancel1()
	select {
	case <-ctx.Done():
		t.Fatal("batch canceled while a caller waits")
	default:
	}
	cancel2()
	select {
	case <-ctx.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("batch not canceled after every caller left")
	}
}

// TestFirstCallerDoesNotRunTheLoad: the first caller asking for a version
// starts its load but waits only as long as its own context: a readiness
// probe that asks first, for a model whose probe never ends, answers
// within its deadline; the load goes on for later callers and ends when
// the manager closes. Control: a model that loads is returned.
func TestFirstCallerDoesNotRunTheLoad(t *testing.T) {
	s, dir := newStore(t)
	never, err := servingtest.NeverEndingModel()
	if err != nil {
		t.Fatal(err)
	}
	installBytes(t, s, dir, "loop", "1", never)
	good, _ := servingtest.WhileModel(5)
	installBytes(t, s, dir, "ok", "1", good)
	m := NewManager(engine.Native{}, s, nil, Config{Limits: Limits{ProbeTimeout: time.Hour}}, slog.New(slog.DiscardHandler))
	closed := make(chan struct{})
	defer func() { <-closed }()
	defer func() { go func() { m.Close(); close(closed) }() }()

	for i := range 2 { // the first caller starts the load, the second joins it
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_, err := m.Get(ctx, "loop", "")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("caller %d of the never-ending model: %v, want its own deadline", i, err)
		}
	}
	if n := m.Loads(); n != 1 {
		t.Fatalf("the model was handed to the backend %d times, want 1 shared load", n)
	}
	if _, err := m.Get(context.Background(), "ok", ""); err != nil {
		t.Fatalf("control: %v", err)
	}
}
