package broker_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/broker"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// TestOnSubscribedReportsGrantedFilters: a device's SUBSCRIBE is reported
// once the broker granted it (before its SUBACK, so the report is there
// when the client sees the SUBACK) with only the granted filters — not
// another device's topic the ACL refused; a SUBSCRIBE with nothing
// granted and the server's own subscriptions are not reported.
func TestOnSubscribedReportsGrantedFilters(t *testing.T) {
	var mu sync.Mutex
	var events []broker.SubscribeEvent
	e, _ := startLimited(t, broker.EmbeddedConfig{OnSubscribed: func(ev broker.SubscribeEvent) {
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	}}, "a", "b")
	got := func() []broker.SubscribeEvent {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(events)
	}
	srv, err := connect(t, e.URL(), connOpts{id: "fleet-server", user: "fleet-server", pass: "server-pw"})
	if err != nil {
		t.Fatal(err)
	}
	if tok := srv.Subscribe(wire.PredictResponseFilter, 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	a, err := connect(t, e.URL(), connOpts{id: "a", user: "a", pass: "pw-a"})
	if err != nil {
		t.Fatal(err)
	}
	if tok := a.Subscribe(wire.PredictRequestTopic("b"), 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if evs := got(); len(evs) != 0 {
		t.Fatalf("reported %+v, want nothing (server subscription, a refused filter)", evs)
	}
	subs := map[string]byte{wire.PredictRequestTopic("a"): 1, wire.JobsNotifyTopic("a"): 1, wire.PredictRequestTopic("b"): 1}
	if tok := a.SubscribeMultiple(subs, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	evs := got()
	if len(evs) != 1 {
		t.Fatalf("%d events after the SUBACK, want 1: %+v", len(evs), evs)
	}
	ev := evs[0]
	slices.Sort(ev.Filters)
	want := []string{wire.JobsNotifyTopic("a"), wire.PredictRequestTopic("a")}
	if ev.Principal.DeviceID != "a" || ev.ClientID != "a" || ev.Remote == "" || ev.Time.IsZero() || !slices.Equal(ev.Filters, want) {
		t.Fatalf("event %+v, want device a, its remote address and filters %v", ev, want)
	}
}
