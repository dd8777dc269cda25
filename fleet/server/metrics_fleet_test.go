package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/fleet/rollout"
	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/fleet/telemetry"
	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// viewCounter counts read transactions on a real store.
type viewCounter struct {
	store.Store
	views atomic.Int64
}

func (v *viewCounter) View(ctx context.Context, fn func(store.Tx) error) error {
	v.views.Add(1)
	return v.Store.View(ctx, fn)
}

// gaugeServer is the part of a Server the fleet gauges use: n enrolled
// devices (every third online) in an in-memory store.
func gaugeServer(tb testing.TB, n int) (*Server, *viewCounter) {
	tb.Helper()
	ctx := context.Background()
	vc := &viewCounter{Store: store.NewMem()}
	s := &Server{prom: prometheus.NewRegistry(), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	s.reg = registry.New(vc, nil)
	s.reg.Devices.SetPasswordAuth(true)
	tel, err := telemetry.Open(ctx, vc, time.Hour, nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if s.mgr, err = rollout.NewManager(ctx, vc, s.reg, tel, nil, clock.Real{}, nil); err != nil {
		tb.Fatal(err)
	}
	tok, _, err := s.reg.Tokens.Create(ctx, nil, 0, 0)
	if err != nil {
		tb.Fatal(err)
	}
	for i := range n {
		id := fmt.Sprintf("d%05d", i)
		if _, err := s.reg.Devices.Enroll(ctx, &wire.EnrollRequest{V: 1, Token: tok, DeviceID: id, Labels: map[string]string{"site": "a"},
			Models: []wire.ModelStatus{{ID: "m", Active: "1", Installed: []string{"1"}}}}, registry.Proof{}); err != nil {
			tb.Fatal(err)
		}
		if i%3 == 0 {
			s.reg.Devices.Update(ctx, id, func(d *registry.Device) error { d.Presence = wire.Online; return nil })
		}
	}
	s.prom.MustRegister(s.fleetCollectors()...)
	return s, vc
}

// TestScrapeReadsNoDevices: a /metrics scrape reports the device counts
// without reading the store (it used to decode every device twice per
// scrape); a recount updates them.
func TestScrapeReadsNoDevices(t *testing.T) {
	s, vc := gaugeServer(t, 30)
	if err := s.refreshGauges(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := vc.views.Load()
	for _, tc := range []struct {
		name string
		want float64
	}{{"edgefleet_devices", 30}, {"edgefleet_devices_online", 10}, {"edgefleet_rollouts_active", 0}} {
		if got := gaugeValue(t, s, tc.name); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, got, tc.want)
		}
	}
	if _, err := s.prom.Gather(); err != nil {
		t.Fatal(err)
	}
	if n := vc.views.Load() - before; n != 0 {
		t.Fatalf("a scrape ran %d store reads, want 0", n)
	}
	// A device goes offline: the next recount shows it (control: the
	// counts do follow the registry).
	s.reg.Devices.Update(context.Background(), "d00000", func(d *registry.Device) error { d.Presence = wire.Offline; return nil })
	if err := s.refreshGauges(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := gaugeValue(t, s, "edgefleet_devices_online"); got != 9 {
		t.Fatalf("online after a recount = %v, want 9", got)
	}
}

func gaugeValue(t testing.TB, s *Server, name string) float64 {
	t.Helper()
	mfs, err := s.prom.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// BenchmarkFleetGauges at 10,000 devices: "scrape" is what a /metrics
// scrape now costs for the fleet gauges; "recount" is the background
// recount every 15 s (one pass; before, every scrape did two such passes
// plus a JSON copy of every rollout).
func BenchmarkFleetGauges(b *testing.B) {
	s, _ := gaugeServer(b, 10000)
	ctx := context.Background()
	b.Run("scrape", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.prom.Gather(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("recount", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := s.refreshGauges(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
