package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/edgefleet/edgefleet/fleet/ingest"
)

// TestBackpressureNoDrops: with workers held, a full queue blocks Submit
// (the control: Submit returns at once while there is room) and, once
// released, every message is handled exactly once — none dropped.
func TestBackpressureNoDrops(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	seen := map[string]int{}
	p := ingest.New(ingest.Config{Queue: 4, Workers: 2}, func(ctx context.Context, m ingest.Message) error {
		<-release
		mu.Lock()
		seen[m.Topic]++
		mu.Unlock()
		return nil
	})
	ctx := context.Background()
	// 2 messages held by workers + 4 queued fit without blocking.
	for i := range 6 {
		if err := p.Submit(ctx, ingest.Message{Topic: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// The next one must block: a canceled context proves it did not drop.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	for p.Len() < 4 { // the workers took 2 and hold them
		runtime.Gosched()
	}
	if err := p.Submit(cctx, ingest.Message{Topic: "x"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("submit to a full queue = %v, want it to block until the context ends", err)
	}
	done := make(chan struct{})
	go func() {
		for i := 6; i < 100; i++ {
			if err := p.Submit(ctx, ingest.Message{Topic: fmt.Sprint(i)}); err != nil {
				t.Error(err)
			}
		}
		close(done)
	}()
	close(release)
	<-done
	p.Close()
	if len(seen) != 100 {
		t.Fatalf("handled %d distinct messages, want 100", len(seen))
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("message %s handled %d times", k, n)
		}
	}
	if err := p.Submit(ctx, ingest.Message{Topic: "late"}); !errors.Is(err, ingest.ErrClosed) {
		t.Fatalf("submit after close = %v, want ErrClosed", err)
	}
}

// TestCoalesceByKey: a queued message is replaced by a newer one with the
// same key (the newest telemetry batch of a device supersedes the older
// ones); the control, another key, queues normally; a message already being
// handled is not replaced.
func TestCoalesceByKey(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var got []string
	p := ingest.New(ingest.Config{Queue: 100, Workers: 1}, func(ctx context.Context, m ingest.Message) error {
		<-release
		mu.Lock()
		got = append(got, string(m.Payload))
		mu.Unlock()
		return nil
	})
	ctx := context.Background()
	p.Submit(ctx, ingest.Message{Topic: "t", Key: "d1", Payload: []byte("d1-a")})
	for p.Len() != 0 { // the worker holds d1-a
		runtime.Gosched()
	}
	p.Submit(ctx, ingest.Message{Topic: "t", Key: "d1", Payload: []byte("d1-b")})
	p.Submit(ctx, ingest.Message{Topic: "t", Key: "d2", Payload: []byte("d2-a")})
	p.Submit(ctx, ingest.Message{Topic: "t", Key: "d1", Payload: []byte("d1-c")})
	p.Submit(ctx, ingest.Message{Topic: "t", Payload: []byte("nokey")})
	if n := p.Len(); n != 3 {
		t.Fatalf("queue holds %d messages, want 3 (d1-c replaced d1-b)", n)
	}
	close(release)
	p.Close()
	if fmt.Sprint(got) != "[d1-a d1-c d2-a nokey]" {
		t.Fatalf("handled %v, want [d1-a d1-c d2-a nokey]", got)
	}
}

// TestByteBound: a queue over its byte budget blocks further submits.
func TestByteBound(t *testing.T) {
	release := make(chan struct{})
	p := ingest.New(ingest.Config{Queue: 100, MaxBytes: 10, Workers: 1}, func(ctx context.Context, m ingest.Message) error { <-release; return nil })
	ctx := context.Background()
	p.Submit(ctx, ingest.Message{Payload: make([]byte, 8)})
	for p.Len() != 0 {
		runtime.Gosched()
	}
	if err := p.Submit(ctx, ingest.Message{Payload: make([]byte, 8)}); err != nil { // control: fits
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := p.Submit(cctx, ingest.Message{Payload: make([]byte, 8)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("submit over the byte budget = %v, want it to block", err)
	}
	close(release)
	p.Close()
}
