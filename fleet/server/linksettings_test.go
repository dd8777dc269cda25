package server_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/agent/enroll"
	"github.com/edgefleet/edgefleet/agent/fleetlink"
	"github.com/edgefleet/edgefleet/fleet/broker/mosquitto"
	"github.com/edgefleet/edgefleet/fleet/broker/natscluster/natstest"
	"github.com/edgefleet/edgefleet/fleet/brokerauth"
	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/fleet/server"
	"github.com/edgefleet/edgefleet/fleet/store/postgres"
	"github.com/edgefleet/edgefleet/fleet/store/postgres/pgtest"
	"github.com/edgefleet/edgefleet/internal/waitfor"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// runLink runs a device's fleet link from its enrollment file until the
// test ends.
func runLink(t *testing.T, dir string) *fleetlink.Link {
	t.Helper()
	l, _ := runLinkPredict(t, dir, nil)
	return l
}

// runLinkPredict is runLink with a prediction hook; stop ends the link
// (an orderly shutdown: offline status published).
func runLinkPredict(t *testing.T, dir string, predict fleetlink.PredictFunc) (l *fleetlink.Link, stop func()) {
	t.Helper()
	enr, err := enroll.LoadEnrollment(dir)
	if err != nil {
		t.Fatal(err)
	}
	l, err = fleetlink.New(fleetlink.Config{Enrollment: *enr, DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		AckTimeout: 2 * time.Second, MaxReconnectInterval: time.Second, Predict: predict})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return l, stop
}

// setEnrolledQoS rewrites the device's enrollment file as an enrollment
// at another time would have left it (nil: no subscribe_qos, QoS 1).
func setEnrolledQoS(t *testing.T, dir string, qos *int) {
	t.Helper()
	enr, err := enroll.LoadEnrollment(dir)
	if err != nil {
		t.Fatal(err)
	}
	enr.SubscribeQoS = qos
	if err := enroll.SaveEnrollment(dir, enr); err != nil {
		t.Fatal(err)
	}
}

// startNATSReplica starts a fleet-server replica in NATS mode (a real
// NATS node and PostgreSQL) with the given remote predict timeout.
func startNATSReplica(t *testing.T, ctx context.Context, predictTimeout time.Duration) *server.Server {
	t.Helper()
	dsn := pgtest.Start(t)
	const serverPassword = "server-secret-0123456789abcdef"
	nodeStore, err := postgres.Open(ctx, withApp(dsn, "nats-auth"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nodeStore.Close() })
	hash, err := mosquitto.HashPassword(serverPassword)
	if err != nil {
		t.Fatal(err)
	}
	cl := natstest.Start(t, 1, brokerauth.New(registry.New(nodeStore, nil).Devices, nil, hash))
	cfg := server.Config{DataDir: t.TempDir(), RepoDir: t.TempDir(), StoreURL: withApp(dsn, "fleet-a"), HTTPAddr: "127.0.0.1:0",
		InsecurePlaintext: true, BrokerURL: cl.Nodes[0].MQTTURL(), BrokerPassword: serverPassword, ClientID: "fleet-a",
		NATSURLs: cl.ClientURLs(), TickInterval: 50 * time.Millisecond, Tokens: []string{testToken}, PredictTimeout: predictTimeout,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if testing.Verbose() {
		cfg.Logger = slog.Default()
	}
	rctx, rcancel := context.WithCancel(ctx)
	srv, err := server.Start(rctx, cfg)
	if err != nil {
		rcancel()
		t.Fatal(err)
	}
	runDone := make(chan struct{})
	go func() { srv.Run(rctx, nil); close(runDone) }()
	t.Cleanup(func() { rcancel(); <-runDone; srv.Close() })
	return srv
}

// TestLinkSettingsNATSFleet: a device enrolled before its fleet moved to
// a NATS cluster (no subscribe_qos in its enrollment: QoS 1, a JetStream
// consumer per topic) connects to a fleet-server replica on NATS: the
// signed link settings answering its jobs/get make it subscribe again at
// QoS 0, and its enrollment file says 0 from then on.
func TestLinkSettingsNATSFleet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := startNATSReplica(t, ctx, 0)

	dir := t.TempDir()
	if _, err := enroll.Enroll(ctx, srv.URL(), dir, wire.EnrollRequest{Token: testToken, DeviceID: "dev-early", Hardware: wire.Hardware{Arch: "amd64"}},
		enroll.EnrollOptions{InsecurePlaintext: true}); err != nil {
		t.Fatal(err)
	}
	setEnrolledQoS(t, dir, nil) // enrolled before the move
	l := runLink(t, dir)
	waitfor.Until(t, "link online", l.Online)
	waitfor.Until(t, "subscribed again at the fleet's QoS", func() bool { return l.Resubscribes() == 1 })
	if q := l.SubscribeQoS(); q != 0 {
		t.Fatalf("subscribe QoS %d on a NATS fleet, want 0", q)
	}
	enr, err := enroll.LoadEnrollment(dir)
	if err != nil {
		t.Fatal(err)
	}
	if enr.SubscribeQoS == nil || *enr.SubscribeQoS != 0 {
		t.Fatalf("enrollment file subscribe_qos %v, want 0", enr.SubscribeQoS)
	}
	if n, _ := l.Refused(); n != 0 {
		t.Fatalf("%d commands refused: the server's link settings must verify", n)
	}
}

// TestLinkSettingsEmbeddedFleet: the reverse move — a device whose
// enrollment says QoS 0 (enrolled while the fleet was on NATS) connects to
// a fleet on the embedded broker, which keeps QoS 1 messages for offline
// sessions: it returns to QoS 1. Control: a device already at QoS 1 does
// not subscribe again.
func TestLinkSettingsEmbeddedFleet(t *testing.T) {
	e := startServer(t, server.Config{})
	e.enroll(2)
	zero := 0
	setEnrolledQoS(t, e.devs[0].dir, &zero)
	moved, ctrl := runLink(t, e.devs[0].dir), runLink(t, e.devs[1].dir)
	waitfor.Until(t, "links online", func() bool { return moved.Online() && ctrl.Online() })
	waitfor.Until(t, "moved device subscribed again", func() bool { return moved.Resubscribes() == 1 })
	if q := moved.SubscribeQoS(); q != 1 {
		t.Fatalf("subscribe QoS %d on the embedded broker, want 1", q)
	}
	// The control's jobs/get was answered with the same settings: its
	// enrollment file is untouched and it never resubscribed.
	waitfor.Until(t, "control's link settings", func() bool { return ctrl.LinkSettingsVerified() >= 1 })
	if ctrl.Resubscribes() != 0 || ctrl.SubscribeQoS() != 1 {
		t.Fatalf("control resubscribed %d times, QoS %d", ctrl.Resubscribes(), ctrl.SubscribeQoS())
	}
}
