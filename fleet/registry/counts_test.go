package registry_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// TestCountsDecodeOnlyPresence: Counts and EachPresence report what List
// reports (enrolled, online, last seen) while decoding only the presence
// of each record: a label named "presence" does not fool them, and they
// allocate a fraction of what List allocates (the /metrics recount and the
// liveness sweep ran a full List of 10,000 devices every 15 and 30 s).
// List itself decodes into one slice sized from the previous listing.
func TestCountsDecodeOnlyPresence(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			r := registry.New(s, clock.Func(func() time.Time { return now }))
			r.Devices.SetPasswordAuth(true)
			tok, _, err := r.Tokens.Create(ctx, nil, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			const n = 300
			for i := range n {
				id := fmt.Sprintf("d%03d", i)
				req := &wire.EnrollRequest{V: 1, Token: tok, DeviceID: id, Hardware: wire.Hardware{Arch: "arm64", CPUs: 4},
					Labels: map[string]string{"presence": "online", "site": "lab"},
					Models: []wire.ModelStatus{{ID: "m", Active: "1", Installed: []string{"1"}}}}
				if _, err := r.Devices.Enroll(ctx, req, registry.Proof{}); err != nil {
					t.Fatal(err)
				}
				if i%3 == 0 {
					err := r.Devices.Update(ctx, id, func(d *registry.Device) error {
						d.Presence, d.LastSeen = wire.Online, now.Add(time.Duration(i)*time.Second)
						return nil
					})
					if err != nil {
						t.Fatal(err)
					}
				}
			}
			c, err := r.Devices.Counts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if c != (registry.DeviceCounts{Enrolled: n, Online: n / 3}) {
				t.Fatalf("counts %+v, want %d enrolled, %d online", c, n, n/3)
			}
			// Control: List agrees record by record.
			all, err := r.Devices.List(ctx, registry.Selector{})
			if err != nil {
				t.Fatal(err)
			}
			i := 0
			err = r.Devices.EachPresence(ctx, func(id string, p wire.Presence, lastSeen time.Time) {
				if d := all[i]; d.ID != id || d.Presence != p || !d.LastSeen.Equal(lastSeen) {
					t.Errorf("record %d: %s %s %v, List has %s %s %v", i, id, p, lastSeen, d.ID, d.Presence, d.LastSeen)
				}
				i++
			})
			if err != nil || i != n {
				t.Fatalf("EachPresence visited %d of %d: %v", i, n, err)
			}
			// Per device: the store's copy of the record (≈ 400 B here) plus,
			// for List, the decoded record. List used to decode into a
			// growing slice and copy into a second one (≈ 4,000 B per
			// device); Counts decodes nothing but the presence.
			counts := allocated(func() { r.Devices.Counts(ctx) }) / n
			list := allocated(func() { r.Devices.List(ctx, registry.Selector{}) }) / n
			t.Logf("bytes allocated per device: Counts %d, List %d", counts, list)
			if counts > 700 || list > 2500 {
				t.Fatalf("per device Counts allocated %d bytes (want ≤ 700), List %d (want ≤ 2,500)", counts, list)
			}
		})
	}
}

// allocated returns the bytes fn allocates on the heap.
func allocated(fn func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	fn()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}
