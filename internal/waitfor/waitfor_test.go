package waitfor

import (
	"sync/atomic"
	"testing"
)

// TestUntil: Until returns once the condition holds (after several polls).
func TestUntil(t *testing.T) {
	var n atomic.Int32
	Until(t, "three polls", func() bool { return n.Add(1) >= 3 })
	if got := n.Load(); got != 3 {
		t.Fatalf("polled %d times, want 3", got)
	}
}
