package server_test

import (
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgefleet/edgefleet/agent/enroll"
	"github.com/edgefleet/edgefleet/fleet/server"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// TestPresenceFromBrokerEvents: with the embedded broker a device's
// presence follows its connection: online when it connects although it
// never publishes a status, offline after a clean disconnect (which sends
// no Last Will) — and a stale "offline" status published while it is
// connected does not make it look offline.
func TestPresenceFromBrokerEvents(t *testing.T) {
	clk := &testClock{t: time.Now()}
	e := startServer(t, server.Config{InsecurePlaintext: true, Clock: clk})
	enr, err := enroll.Enroll(e.ctx, e.srv.URL(), t.TempDir(), wire.EnrollRequest{Token: e.token, DeviceID: "quiet"}, e.pin())
	if err != nil {
		t.Fatal(err)
	}
	presence := func() wire.Presence {
		d, err := e.srv.Registry().Devices.Get(e.ctx, "quiet")
		if err != nil {
			t.Fatal(err)
		}
		return d.Presence
	}
	if p := presence(); p != wire.Offline {
		t.Fatalf("presence after enrollment %q, want offline", p)
	}
	opts := paho.NewClientOptions().AddBroker(strings.Replace(enr.BrokerURL, "mqtt://", "tcp://", 1)).
		SetClientID("quiet").SetUsername(enr.Username).SetPassword(enr.Password).
		SetCleanSession(false).SetAutoReconnect(false).SetConnectTimeout(10 * time.Second)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	e.waitFor("online from the connect event", 10*time.Second, func() bool { return presence() == wire.Online })

	off, err := wire.Encode(wire.Status{V: wire.Version, DeviceID: "quiet", State: wire.Offline})
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour) // the handled status stamps LastSeen with the new time
	if tok := c.Publish(wire.StatusTopic("quiet"), 1, false, off); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	e.waitFor("the stale status handled", 10*time.Second, func() bool {
		d, _ := e.srv.Registry().Devices.Get(e.ctx, "quiet")
		return d.LastSeen.Equal(clk.Now())
	})
	if p := presence(); p != wire.Online {
		t.Fatalf("connected device shown %q after a stale offline status", p)
	}

	c.Disconnect(100) // clean: the broker sends no Last Will
	e.waitFor("offline from the disconnect event", 10*time.Second, func() bool { return presence() == wire.Offline })
}
