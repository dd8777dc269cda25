package telemetry_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/fleet/telemetry"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// TestHotHealthAggregatesInPlace: a device-filtered Health (the rollout
// gates ask several per tick) equals the aggregate of the matching raw
// records, and no longer copies them: it used to build a slice of every
// match (208 B each, up to the whole 15-minute hot window) per query.
// Control: Records, which returns the matches, does allocate their copy.
func TestHotHealthAggregatesInPlace(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	tel := openTel(t, store.NewMem(), &now, telemetry.Options{Retention: 24 * time.Hour})
	devs := map[string]bool{}
	const devices, perDevice = 200, 20
	for d := range devices {
		id := fmt.Sprintf("d%03d", d)
		devs[id] = d%2 == 0
		var recs []wire.TelemetryRecord
		for i := 1; i <= perDevice; i++ {
			recs = append(recs, rec(uint64(i), now.Add(time.Duration(i-perDevice)*time.Second), "1", 10, uint64(d%3), float64(d%7)))
		}
		if _, _, err := tel.Ingest(ctx, &wire.TelemetryBatch{V: 1, DeviceID: id, Records: recs}, nil); err != nil {
			t.Fatal(err)
		}
	}
	even := map[string]bool{}
	for id, ok := range devs {
		if ok {
			even[id] = true
		}
	}
	q := telemetry.Query{ModelID: "m", Version: "1", Devices: even, Since: now.Add(-time.Hour)}
	matches := tel.Records(q)
	if len(matches) != devices/2*perDevice {
		t.Fatalf("%d matching records, want %d", len(matches), devices/2*perDevice)
	}
	want := telemetry.Aggregate(matches)
	if got := tel.Health(q); got != want {
		t.Fatalf("Health %+v, want the aggregate of the matches %+v", got, want)
	}
	copyBytes := uint64(len(matches)) * 208
	health := allocated(func() { tel.Health(q) })
	records := allocated(func() { tel.Records(q) })
	t.Logf("bytes allocated: Health %d, Records %d (%d matches)", health, records, len(matches))
	if health > copyBytes/4 || records < copyBytes {
		t.Fatalf("Health allocated %d bytes, Records %d: want Health under a quarter of a copy of the %d matches (%d B), Records at least one copy",
			health, records, len(matches), copyBytes)
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
