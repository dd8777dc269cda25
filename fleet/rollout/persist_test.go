package rollout_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/fleet/rollout"
	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/fleet/telemetry"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// countingStore wraps a real store and counts the rows and bytes written
// to the rollout buckets, and the rows read from them.
type countingStore struct {
	store.Store
	mu          sync.Mutex
	rows, bytes int
	read        int
}

func (c *countingStore) View(ctx context.Context, fn func(store.Tx) error) error {
	return c.Store.View(ctx, func(tx store.Tx) error { return fn(&countingTx{Tx: tx, s: c}) })
}

func (t *countingTx) List(bucket, prefix string, fn func(key string, value []byte) error) error {
	return t.Tx.List(bucket, prefix, func(k string, v []byte) error {
		if bucket == "rollouts" || bucket == "rollout-devices" {
			t.s.mu.Lock()
			t.s.read++
			t.s.mu.Unlock()
		}
		return fn(k, v)
	})
}

func (c *countingStore) takeRead() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.read
	c.read = 0
	return n
}

type countingTx struct {
	store.Tx
	s *countingStore
}

func (c *countingStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	return c.Store.Update(ctx, func(tx store.Tx) error { return fn(&countingTx{Tx: tx, s: c}) })
}

func (t *countingTx) Put(bucket, key string, value []byte) error {
	if bucket == "rollouts" || bucket == "rollout-devices" {
		t.s.mu.Lock()
		t.s.rows++
		t.s.bytes += len(key) + len(value)
		t.s.mu.Unlock()
	}
	return t.Tx.Put(bucket, key, value)
}

func (c *countingStore) take() (rows, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rows, bytes, c.rows, c.bytes = c.rows, c.bytes, 0, 0
	return rows, bytes
}

// enrollFleet enrolls n online devices d0000… running model m version 1
// and registers version 2, whose target it returns.
func enrollFleet(t testing.TB, reg *registry.Registry, n int) wire.Target {
	t.Helper()
	ctx := context.Background()
	tok, _, _ := reg.Tokens.Create(ctx, nil, 0, 0)
	for i := range n {
		id := fmt.Sprintf("d%04d", i)
		if _, err := reg.Devices.Enroll(ctx, &wire.EnrollRequest{V: 1, Token: tok, DeviceID: id, Models: []wire.ModelStatus{{ID: "m", Active: "1"}}}, registry.Proof{}); err != nil {
			t.Fatal(err)
		}
		reg.Devices.Update(ctx, id, func(d *registry.Device) error { d.Presence = wire.Online; return nil })
	}
	target := wire.Target{Name: "models/m/2/model.tflite", Length: 1, SHA256: "00"}
	if err := reg.Models.Put(ctx, registry.Model{ID: "m", Version: "2", Target: target}); err != nil {
		t.Fatal(err)
	}
	return target
}

// TestTickWritesOnlyChanges: once a 1,000-device stage is dispatched, a
// tick after one device's job update writes that device's row (and at
// most the header), not the whole rollout; the stored rollout reloads
// equal to the one in memory. The control: the dispatching tick wrote a
// row per device.
func TestTickWritesOnlyChanges(t *testing.T) {
	const devices = 1000
	ctx := context.Background()
	cs := &countingStore{Store: store.NewMem()}
	reg, tel, clock := fixture(t, cs)
	m := newManager(t, cs, reg, tel, &notifier{n: map[string]int{}}, clock)
	target := enrollFleet(t, reg, devices)
	cs.take()
	if _, err := m.Create(ctx, rollout.Spec{ID: "r1", ModelID: "m", Version: "2", Target: target, Stages: []int{100}}); err != nil {
		t.Fatal(err)
	}
	if err := m.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	fullRows, fullBytes := cs.take()
	if fullRows < devices {
		t.Fatalf("dispatching %d devices wrote %d rows, want one per device (control)", devices, fullRows)
	}
	// One device installs the version.
	jobs, err := reg.Jobs.List(ctx, "d0007")
	if err != nil || len(jobs) != 1 {
		t.Fatalf("jobs of d0007: %v %v", jobs, err)
	}
	reg.Jobs.Update(ctx, "d0007", jobs[0].JobID, wire.JobInProgress, "")
	reg.Jobs.Update(ctx, "d0007", jobs[0].JobID, wire.JobSucceeded, "")
	reg.Devices.Update(ctx, "d0007", func(d *registry.Device) error {
		d.Models = []wire.ModelStatus{{ID: "m", Active: "2", Installed: []string{"1", "2"}}}
		return nil
	})
	clock.Add(time.Second)
	if err := m.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	rows, bytes := cs.take()
	r, _ := m.Get("r1")
	if r.Devices["d0007"].JobState != wire.JobSucceeded {
		t.Fatalf("d0007's state %q after its update, want succeeded", r.Devices["d0007"].JobState)
	}
	t.Logf("dispatching tick: %d rows, %d bytes; tick after one job update: %d rows, %d bytes", fullRows, fullBytes, rows, bytes)
	if rows == 0 || rows > 2 || bytes > fullBytes/50 {
		t.Fatalf("a tick after one device's update wrote %d rows, %d bytes (whole rollout: %d rows, %d bytes): want that device's row and at most the header", rows, bytes, fullRows, fullBytes)
	}
	// A tick with nothing new writes nothing.
	clock.Add(time.Second)
	if err := m.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if rows, bytes := cs.take(); rows != 0 {
		t.Fatalf("an idle tick wrote %d rows, %d bytes", rows, bytes)
	}
	// What is stored is what is in memory.
	m2 := newManager(t, cs, reg, tel, nil, clock)
	got, ok := m2.Get("r1")
	if !ok || !reflect.DeepEqual(got, r) {
		t.Fatalf("reloaded rollout differs from memory:\n got %+v\nwant %+v", got, r)
	}
}

// TestLoadOneRowFormat: a rollout stored by an older server as one row
// with its devices loads with them and is rewritten as header + rows.
func TestLoadOneRowFormat(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{t: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}
	s := store.NewMem()
	reg := registry.New(s, clock)
	tel, err := telemetry.Open(ctx, s, 24*time.Hour, clock, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := `{"spec":{"id":"r0","model_id":"m","version":"2","strategy":"canary","stages":[100]},"phase":"running","stage":0,` +
		`"created":"2026-11-25T08:00:00Z","stage_started":"2026-11-25T08:00:00Z","next_job":2,` +
		`"devices":{"a":{"stage":0,"baseline":"1","job_id":"r0-0000","job_state":"succeeded"},"b":{"stage":0,"job_id":"r0-0001","job_state":"pending"}}}`
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.Put("rollouts", "r0", []byte(old)) }); err != nil {
		t.Fatal(err)
	}
	for round := range 2 { // the second load reads the rewritten rows
		m := newManager(t, s, reg, tel, nil, clock)
		r, ok := m.Get("r0")
		if !ok || len(r.Devices) != 2 || r.Devices["a"].JobState != wire.JobSucceeded || r.Devices["b"].JobID != "r0-0001" || r.NextJob != 2 {
			t.Fatalf("load %d: %+v", round, r)
		}
	}
	var header []byte
	s.View(ctx, func(tx store.Tx) error { header, err = tx.Get("rollouts", "r0"); return err })
	if strings.Contains(string(header), `"a":`) {
		t.Fatalf("header still holds the devices after the rewrite: %s", header)
	}
}

// TestReloadIfChanged: two managers on one store, as two replicas on one
// PostgreSQL database. A manager whose rollouts nobody else changed reads
// no rollout row to learn it (not even after its own writes); a change by
// the other one is seen on its next ReloadIfChanged. The control: a full
// Reload reads every row.
func TestReloadIfChanged(t *testing.T) {
	ctx := context.Background()
	cs := &countingStore{Store: store.NewMem()}
	reg, tel, clock := fixture(t, cs)
	target := enrollFleet(t, reg, 50)
	a := newManager(t, cs, reg, tel, &notifier{n: map[string]int{}}, clock)
	b := newManager(t, cs, reg, tel, &notifier{n: map[string]int{}}, clock)
	reload := func(m *rollout.Manager, name string, want bool) {
		t.Helper()
		cs.takeRead()
		got, err := m.ReloadIfChanged(ctx)
		if err != nil {
			t.Fatal(err)
		}
		read := cs.takeRead()
		if got != want {
			t.Fatalf("%s: ReloadIfChanged reloaded=%v, want %v", name, got, want)
		}
		if !got && read != 0 {
			t.Fatalf("%s: an unchanged store cost %d rollout rows read, want 0", name, read)
		}
	}
	reload(a, "a, nothing stored", false)
	if _, err := a.Create(ctx, rollout.Spec{ID: "r1", ModelID: "m", Version: "2", Target: target, Stages: []int{100}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Tick(ctx); err != nil { // dispatches: a writes 50 device rows
		t.Fatal(err)
	}
	reload(a, "a after its own writes", false)
	if _, ok := b.Get("r1"); ok {
		t.Fatal("b sees r1 before reloading")
	}
	reload(b, "b after a's writes", true)
	if r, ok := b.Get("r1"); !ok || len(r.Devices) != 50 {
		t.Fatalf("b after reload: %+v, %v; want r1 with 50 devices", r, ok)
	}
	reload(b, "b again", false)
	if _, err := b.Command(ctx, "r1", rollout.Pause); err != nil {
		t.Fatal(err)
	}
	reload(b, "b after its own command", false)
	reload(a, "a after b's command", true)
	if r, _ := a.Get("r1"); r.Phase != rollout.Paused {
		t.Fatalf("a sees phase %q after b paused r1", r.Phase)
	}
	// Control: a full reload reads the header and every device row.
	cs.takeRead()
	if err := a.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if read := cs.takeRead(); read < 51 {
		t.Fatalf("a full reload read %d rollout rows, want ≥ 51 (control)", read)
	}
}

// TestTickDecodesOnlyChanges: once a tick has read the fleet, a tick with
// nothing changed decodes no device and no job record (it used to decode
// every device and every job, twice for the jobs); one device's presence
// change and one job's update are decoded (one record each) and seen: the
// control.
func TestTickDecodesOnlyChanges(t *testing.T) {
	const devices = 300
	ctx := context.Background()
	s := store.NewMem()
	reg, tel, clock := fixture(t, s)
	m := newManager(t, s, reg, tel, &notifier{n: map[string]int{}}, clock)
	target := enrollFleet(t, reg, devices)
	if _, err := m.Create(ctx, rollout.Spec{ID: "r1", ModelID: "m", Version: "2", Target: target, Stages: []int{100}}); err != nil {
		t.Fatal(err)
	}
	decoded := func() (devs, jobs int64) { return reg.Devices.DecodedBriefs(), reg.Jobs.DecodedBriefs() }
	tick := func(name string, wantDevs, wantJobs int64) {
		t.Helper()
		d0, j0 := decoded()
		clock.Add(time.Second)
		if err := m.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		d1, j1 := decoded()
		if d1-d0 != wantDevs || j1-j0 != wantJobs {
			t.Fatalf("%s: decoded %d device and %d job records, want %d and %d", name, d1-d0, j1-j0, wantDevs, wantJobs)
		}
	}
	tick("first tick after the dispatch (the jobs are new)", 0, devices)
	tick("nothing changed", 0, 0)
	jobs, err := reg.Jobs.List(ctx, "d0007")
	if err != nil || len(jobs) != 1 {
		t.Fatalf("jobs of d0007: %v %v", jobs, err)
	}
	if _, _, err := reg.Jobs.Update(ctx, "d0007", jobs[0].JobID, wire.JobInProgress, ""); err != nil {
		t.Fatal(err)
	}
	if err := reg.Devices.Update(ctx, "d0011", func(d *registry.Device) error { d.Presence = wire.Offline; return nil }); err != nil {
		t.Fatal(err)
	}
	tick("control: one job updated, one device went offline", 1, 1)
	r, _ := m.Get("r1")
	if got := r.Devices["d0007"].JobState; got != wire.JobInProgress {
		t.Fatalf("d0007's job state %q after its update, want in_progress", got)
	}
	tick("nothing changed again", 0, 0)
}

// TestReloadDecodesOnlyChangedRows: a replica reloading after another one
// wrote decodes only the rollout device rows that changed (one device's
// job update: one row), and ends with the same rollout as the writer. The
// control: its first load decoded every row.
func TestReloadDecodesOnlyChangedRows(t *testing.T) {
	const devices = 200
	ctx := context.Background()
	s := store.NewMem()
	reg, tel, clock := fixture(t, s)
	target := enrollFleet(t, reg, devices)
	a := newManager(t, s, reg, tel, &notifier{n: map[string]int{}}, clock)
	b := newManager(t, s, reg, tel, nil, clock)
	if _, err := a.Create(ctx, rollout.Spec{ID: "r1", ModelID: "m", Version: "2", Target: target, Stages: []int{100}}); err != nil {
		t.Fatal(err)
	}
	reload := func(name string, want int64) {
		t.Helper()
		before := b.RowsDecoded()
		if ok, err := b.ReloadIfChanged(ctx); err != nil || !ok {
			t.Fatalf("%s: reloaded %v, %v; want a reload", name, ok, err)
		}
		if got := b.RowsDecoded() - before; got != want {
			t.Fatalf("%s: b decoded %d rollout device rows, want %d", name, got, want)
		}
		ra, _ := a.Get("r1")
		rb, _ := b.Get("r1")
		if !reflect.DeepEqual(ra, rb) {
			t.Fatalf("%s: b's rollout differs from a's:\n b %+v\n a %+v", name, rb, ra)
		}
	}
	reload("control: b's first load of the dispatched rollout", devices)
	jobs, err := reg.Jobs.List(ctx, "d0007")
	if err != nil || len(jobs) != 1 {
		t.Fatalf("jobs of d0007: %v %v", jobs, err)
	}
	if _, _, err := reg.Jobs.Update(ctx, "d0007", jobs[0].JobID, wire.JobInProgress, ""); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Second)
	if err := a.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if r, _ := a.Get("r1"); r.Devices["d0007"].JobState != wire.JobInProgress {
		t.Fatalf("a: d0007 is %q, want in_progress", r.Devices["d0007"].JobState)
	}
	reload("after one device's row changed", 1)
}
