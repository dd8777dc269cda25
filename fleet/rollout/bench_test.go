package rollout_test

import (
	"context"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/rollout"
	"github.com/edgefleet/edgefleet/fleet/store"
)

// BenchmarkTickIdle is one rollout tick over 5,000 devices whose jobs are
// all dispatched and nothing changed since the previous tick (the leader's
// steady state while a stage waits for its devices).
func BenchmarkTickIdle(b *testing.B) {
	const devices = 5000
	ctx := context.Background()
	s := store.NewMem()
	reg, tel, clock := fixture(b, s)
	m := newManager(b, s, reg, tel, &notifier{n: map[string]int{}}, clock)
	target := enrollFleet(b, reg, devices)
	if _, err := m.Create(ctx, rollout.Spec{ID: "r1", ModelID: "m", Version: "2", Target: target, Stages: []int{100}}); err != nil {
		b.Fatal(err)
	}
	if err := m.Tick(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clock.Add(time.Second)
		if err := m.Tick(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
