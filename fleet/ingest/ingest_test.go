package ingest_test

import (
	"context"
	"errors"
	"fmt"
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
	for p.Len() < 4 {
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
