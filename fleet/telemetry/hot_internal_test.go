package telemetry

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"
	"time"
	"unsafe"

	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// TestHotRecordCompact: a hot record is HotRecordBytes and holds no
// pointer, string, slice or map (the collector never scans the window).
func TestHotRecordCompact(t *testing.T) {
	if got := unsafe.Sizeof(hotRec{}); got != HotRecordBytes {
		t.Fatalf("hotRec is %d bytes, want HotRecordBytes = %d", got, HotRecordBytes)
	}
	var check func(reflect.Type)
	check = func(ty reflect.Type) {
		for i := range ty.NumField() {
			f := ty.Field(i)
			switch f.Type.Kind() {
			case reflect.Struct:
				check(f.Type)
			case reflect.Uint64, reflect.Int64, reflect.Int32, reflect.Uint32, reflect.Float64:
			default:
				t.Errorf("hotRec field %s is a %s, want fixed-size numbers only", f.Name, f.Type)
			}
		}
	}
	check(reflect.TypeOf(hotRec{}))
}

// TestHotSymbolsFollowTheWindow: the interned device ids, stages and
// model/version/role keys are those of the records in the window: when
// records leave it (by age, or beyond MaxHot, oldest first) their strings
// leave the tables, and freed ids are reused.
func TestHotSymbolsFollowTheWindow(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	tel, err := OpenWith(ctx, store.NewMem(), Options{HotWindow: 10 * time.Minute, MaxHot: 500, Clock: clock.Func(func() time.Time { return now })})
	if err != nil {
		t.Fatal(err)
	}
	ingest := func(devs, from int, version string) {
		for d := range devs {
			dev := fmt.Sprintf("dev-%d", from+d)
			r := wire.TelemetryRecord{Seq: 1, Time: now, ModelID: "m", Version: version, Requests: 1}
			if _, _, err := tel.Ingest(ctx, &wire.TelemetryBatch{V: 1, DeviceID: dev, Records: []wire.TelemetryRecord{r}}, func(wire.TelemetryRecord) string { return "r-" + dev }); err != nil {
				t.Fatal(err)
			}
		}
	}
	sizes := func() (hot, strs, keys, slots int) {
		tel.mu.RLock()
		defer tel.mu.RUnlock()
		return tel.hot.len(), len(tel.strs.ids), len(tel.keys.ids), len(tel.strs.vals)
	}
	ingest(300, 0, "1")
	if hot, strs, keys, _ := sizes(); hot != 300 || strs != 600 || keys != 1 {
		t.Fatalf("after 300 devices: %d hot, %d strings, %d keys; want 300, 600 (300 devices, 300 stages), 1", hot, strs, keys)
	}
	// MaxHot: 300 more records push the 100 oldest out, with their strings.
	ingest(300, 300, "2")
	if hot, strs, keys, _ := sizes(); hot != 500 || strs != 1000 || keys != 2 {
		t.Fatalf("beyond MaxHot: %d hot, %d strings, %d keys; want 500, 1000, 2", hot, strs, keys)
	}
	// Age: everything leaves; new devices reuse the freed ids.
	now = now.Add(11 * time.Minute)
	ingest(10, 1000, "3")
	hot, strs, keys, slots := sizes()
	if hot != 10 || strs != 20 || keys != 1 {
		t.Fatalf("after the window passed: %d hot, %d strings, %d keys; want 10, 20, 1", hot, strs, keys)
	}
	if slots > 1002 {
		t.Fatalf("string table has %d slots, want freed ids reused (at most 1002: the window of 500 plus the batch being ingested, before the trim)", slots)
	}
	if got := tel.Records(Query{}); len(got) != 10 || got[0].DeviceID != "dev-1000" || got[0].Stage != "r-dev-1000" || got[0].Version != "3" {
		t.Fatalf("records after reuse: %+v", got)
	}
}

// TestHotWindowChunks: the chunked window keeps the order of a flat
// sorted slice (equal times in arrival order) through random inserts —
// appends, inserts into full and partial chunks, before the first record
// — and front drops, with no empty or oversized chunk; seek and
// countBefore agree with the flat slice. Chunks of 4 records make every
// path frequent.
func TestHotWindowChunks(t *testing.T) {
	defer func(n int) { hotChunkLen = n }(hotChunkLen)
	hotChunkLen = 4
	rng := rand.New(rand.NewPCG(1, 2))
	var w hotWindow
	var flat []hotRec
	seq := uint64(0)
	base := int64(1_700_000_000)
	for step := range 5000 {
		switch r := rng.IntN(10); {
		case r < 8: // mostly near the end, sometimes far back
			sec := base + int64(step/4) - int64(rng.IntN(3))
			if r == 0 {
				sec -= int64(rng.IntN(200))
			}
			seq++
			h := hotRec{seq: seq, sec: sec, nsec: int32(rng.IntN(2))}
			w.insert(h)
			j := sort.Search(len(flat), func(k int) bool { return h.before(&flat[k]) })
			flat = append(flat, hotRec{})
			copy(flat[j+1:], flat[j:])
			flat[j] = h
		default:
			k := rng.IntN(6)
			released := 0
			w.dropFront(k, func(*hotRec) { released++ })
			if want := min(k, len(flat)); released != want {
				t.Fatalf("step %d: dropFront(%d) released %d, want %d", step, k, released, want)
			}
			flat = flat[min(k, len(flat)):]
		}
		if w.len() != len(flat) {
			t.Fatalf("step %d: len %d, want %d", step, w.len(), len(flat))
		}
		var got []uint64
		for i, c := range w.chunks {
			if len(c) == 0 || len(c) > hotChunkLen {
				t.Fatalf("step %d: chunk %d has %d records", step, i, len(c))
			}
		}
		w.each(0, 0, func(h *hotRec) { got = append(got, h.seq) })
		for i := range flat {
			if got[i] != flat[i].seq {
				t.Fatalf("step %d: record %d is seq %d, want %d", step, i, got[i], flat[i].seq)
			}
		}
		at := time.Unix(base+int64(step/4)-int64(rng.IntN(50)), int64(rng.IntN(2)))
		want := sort.Search(len(flat), func(k int) bool { return !beforeTime(&flat[k], at) })
		if n := w.countBefore(at); n != want {
			t.Fatalf("step %d: countBefore = %d, want %d", step, n, want)
		}
	}
	// Mostly in-order arrivals leave the chunks nearly full.
	if n := len(w.chunks); n > 2*len(flat)/hotChunkLen+2 {
		t.Fatalf("%d chunks for %d records of at most %d", n, len(flat), hotChunkLen)
	}
}
