package telemetry

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/wire"
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
		return len(tel.hot), len(tel.strs.ids), len(tel.keys.ids), len(tel.strs.vals)
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
