package rollout_test

import (
	"context"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/fleet/rollout"
	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/fleet/telemetry"
)

// BenchmarkTickIdle is one rollout tick over 5,000 devices whose jobs are
// all dispatched and nothing changed since the previous tick (the leader's
// steady state while a stage waits for its devices).
func BenchmarkTickIdle(b *testing.B) {
	const devices = 5000
	ctx := context.Background()
	clock := &fakeClock{t: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}
	s := store.NewMem()
	reg := registry.New(s, clock)
	reg.Devices.SetPasswordAuth(true)
	tel, err := telemetry.Open(ctx, s, 24*time.Hour, clock, nil)
	if err != nil {
		b.Fatal(err)
	}
	m, err := rollout.NewManager(ctx, s, reg, tel, &notifier{n: map[string]int{}}, clock, nil)
	if err != nil {
		b.Fatal(err)
	}
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
