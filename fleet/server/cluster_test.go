package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/agent/enroll"
	"github.com/edgefleet/edgefleet/agent/fleetlink"
	"github.com/edgefleet/edgefleet/fleet/broker/mosquitto"
	"github.com/edgefleet/edgefleet/fleet/broker/natscluster/natstest"
	"github.com/edgefleet/edgefleet/fleet/brokerauth"
	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/fleet/rollout"
	"github.com/edgefleet/edgefleet/fleet/server"
	"github.com/edgefleet/edgefleet/fleet/store/postgres"
	"github.com/edgefleet/edgefleet/fleet/store/postgres/pgtest"
	"github.com/edgefleet/edgefleet/fleet/telemetry"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// replica is one fleet-server of the cluster test.
type replica struct {
	name    string
	srv     *server.Server
	cancel  context.CancelFunc
	runDone chan struct{}
	crashed bool
}

func withApp(dsn, app string) string {
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "application_name=" + app
}

// TestClusterFaults: two stateless fleet-server replicas on one PostgreSQL
// and a 3-node NATS cluster (JetStream + MQTT listeners); six devices (the
// real agent link, MQTT 3.1.1 over paho) spread over the three nodes. A
// canary rollout 34/67/100 % starts; after its first stage, NATS node n2 is
// shut down and the leading replica crashes (its PostgreSQL sessions are
// terminated, its NATS connection drops holding unacknowledged messages).
// The other replica takes the leadership over, the devices of n2 reconnect
// to other nodes, and the rollout finishes: every device ran the install
// job exactly once, every job succeeded, and the telemetry every device
// recorded is stored exactly once (rows per device = its acknowledged seq,
// all seqs 1..n present).
func TestClusterFaults(t *testing.T) {
	dsn := pgtest.Start(t)
	ctx, cancelAll := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancelAll()
	const serverPassword = "server-secret-0123456789abcdef"

	// The NATS nodes authenticate against the registry in the shared store.
	nodeStore, err := postgres.Open(ctx, withApp(dsn, "nats-auth"))
	if err != nil {
		t.Fatal(err)
	}
	defer nodeStore.Close()
	hash, err := mosquitto.HashPassword(serverPassword)
	if err != nil {
		t.Fatal(err)
	}
	cl := natstest.Start(t, 3, brokerauth.New(registry.New(nodeStore, nil).Devices, nil, hash))
	// The replicas' MQTT clients (publishing to devices) reach the nodes
	// through a failover address, as devices do.
	serverMQTT := natstest.Proxy(t, cl.MQTTAddrs(0)...)

	repo := t.TempDir() // the shared update repository
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.Default()
	}
	start := func(name string) *replica {
		cfg := server.Config{DataDir: t.TempDir(), RepoDir: repo, StoreURL: withApp(dsn, name), HTTPAddr: "127.0.0.1:0",
			InsecurePlaintext: true, BrokerURL: "mqtt://" + serverMQTT, BrokerPassword: serverPassword, ClientID: name,
			NATSURLs: cl.ClientURLs(), NATSAckWait: 2 * time.Second, TickInterval: 50 * time.Millisecond,
			Tokens: []string{testToken}, Logger: log.With("replica", name)}
		rctx, cancel := context.WithCancel(ctx)
		srv, err := server.Start(rctx, cfg)
		if err != nil {
			cancel()
			t.Fatalf("start replica %s: %v", name, err)
		}
		r := &replica{name: name, srv: srv, cancel: cancel, runDone: make(chan struct{})}
		go func() { srv.Run(rctx, nil); close(r.runDone) }()
		t.Cleanup(func() {
			if !r.crashed {
				r.cancel()
				<-r.runDone
				r.srv.Close()
			}
		})
		return r
	}
	a := start("fleet-a")
	b := start("fleet-b")
	if a.srv.CAFingerprint() != b.srv.CAFingerprint() {
		t.Fatalf("replicas have different fleet CAs: %s vs %s", a.srv.CAFingerprint(), b.srv.CAFingerprint())
	}

	// Devices: enrolled alternately through either replica; device i
	// prefers node i%3 (its failover address tries the others next).
	const n = 6
	var devs []*fakeDevice
	for i := 0; i < n; i++ {
		via := []*replica{a, b}[i%2]
		dir := t.TempDir()
		d := &fakeDevice{id: fmt.Sprintf("dev-%d", i), dir: dir, active: "1", wake: make(chan struct{})}
		if _, err := enroll.Enroll(ctx, via.srv.URL(), dir, wire.EnrollRequest{Token: testToken, DeviceID: d.id,
			Hardware: wire.Hardware{Arch: "amd64"}, Models: []wire.ModelStatus{{ID: "m", Active: "1"}}},
			enroll.EnrollOptions{InsecurePlaintext: true}); err != nil {
			t.Fatalf("enroll %s via %s: %v", d.id, via.name, err)
		}
		enr, err := enroll.LoadEnrollment(dir)
		if err != nil {
			t.Fatal(err)
		}
		if enr.SubscribeQoS == nil || *enr.SubscribeQoS != 0 {
			// QoS 1 subscriptions would each be a JetStream consumer.
			t.Fatalf("%s: enrollment through a NATS replica: subscribe QoS %v, want 0", d.id, enr.SubscribeQoS)
		}
		enr.BrokerURL = "mqtt://" + natstest.Proxy(t, cl.MQTTAddrs(i%3)...)
		d.link, err = fleetlink.New(fleetlink.Config{Enrollment: *enr, DataDir: dir, Telemetry: d, Jobs: d, Status: d,
			UploadInterval: 100 * time.Millisecond, AckTimeout: 2 * time.Second, StatusInterval: time.Second, MaxReconnectInterval: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		lctx, lcancel := context.WithCancel(ctx)
		d.cancel, d.done = lcancel, make(chan struct{})
		go func(d *fakeDevice) { d.link.Run(lctx); close(d.done) }(d)
		devs = append(devs, d)
	}
	defer func() {
		for _, d := range devs {
			d.cancel()
			<-d.done
		}
	}()
	waitFor := func(what string, timeout time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out after %v waiting for %s", timeout, what)
			}
			for _, d := range devs {
				d.record()
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	online := func(r *replica) int {
		ds, _ := r.srv.Registry().Devices.List(ctx, registry.Selector{})
		k := 0
		for _, d := range ds {
			if d.Presence == wire.Online {
				k++
			}
		}
		return k
	}
	waitFor("all devices online", 60*time.Second, func() bool { return online(b) == n })

	// Release version 2 into the shared repository; create the rollout on
	// the replica that does not lead (the leader picks it up from the store).
	name := "models/m/2/model.tflite"
	p := filepath.Join(repo, "targets", name)
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("model 2"), 0o644)
	if err := a.srv.Registry().Models.Put(ctx, registry.Model{ID: "m", Version: "2", Target: wire.Target{Name: name, Length: int64(len("model 2"))}}); err != nil {
		t.Fatal(err)
	}
	waitFor("a rollout leader", 30*time.Second, func() bool { return server.HoldsLeadership(a.srv) || server.HoldsLeadership(b.srv) })
	leader, standby := a, b
	if server.HoldsLeadership(b.srv) {
		leader, standby = b, a
	}
	gates := rollout.DefaultGates()
	gates.MinRequests = 0 // each replica's gates see only the telemetry it ingested itself (docs/scale-out.md)
	spec := rollout.Spec{ID: "r1", ModelID: "m", Version: "2", Target: wire.Target{Name: name, Length: int64(len("model 2"))}, Strategy: rollout.Canary, Stages: []int{34, 67, 100},
		Soak: 500 * time.Millisecond, DeviceDeadline: 90 * time.Second, Gates: gates}
	if _, err := standby.srv.Rollouts().Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	jobsDone := func(r *replica) int {
		k := 0
		for _, d := range devs {
			js, _ := r.srv.Registry().Jobs.List(ctx, d.id)
			for _, j := range js {
				if j.Job.RolloutID == "r1" && j.State == wire.JobSucceeded {
					k++
				}
			}
		}
		return k
	}
	waitFor("the first stage's jobs", 60*time.Second, func() bool { return jobsDone(standby) >= 2 })

	// Faults, mid-rollout: NATS node n2 goes down, then the leader crashes.
	doneAtKill := jobsDone(standby)
	cl.Kill(1)
	leader.cancel()
	<-leader.runDone
	leader.crashed = true
	terminated, err := server.CrashForTest(ctx, leader.srv, dsn, leader.name)
	if err != nil {
		t.Fatal(err)
	}
	waitFor("the standby to take the leadership over", 30*time.Second, func() bool { return server.HoldsLeadership(standby.srv) })

	var r *rollout.Rollout
	waitFor("the rollout to finish on the surviving replica", 150*time.Second, func() bool {
		r, _ = standby.srv.Rollouts().Get("r1")
		return r != nil && r.Phase.Final()
	})
	if r.Phase != rollout.Succeeded {
		t.Fatalf("rollout r1: %s (%s); events %+v", r.Phase, r.Reason, r.Events)
	}

	// Nothing lost, nothing duplicated.
	var jobsTotal, installs int
	for _, d := range devs {
		js, err := standby.srv.Registry().Jobs.List(ctx, d.id)
		if err != nil {
			t.Fatal(err)
		}
		var mine []string
		for _, j := range js {
			if j.Job.RolloutID == "r1" {
				mine = append(mine, string(j.State))
			}
		}
		if len(mine) != 1 || mine[0] != string(wire.JobSucceeded) {
			t.Errorf("%s: rollout jobs %v, want exactly one succeeded", d.id, mine)
		}
		jobsTotal += len(mine)
		d.mu.Lock()
		ran := 0
		for _, j := range d.jobs {
			if j == "install:2" {
				ran++
			}
		}
		active := d.active
		d.mu.Unlock()
		installs += ran
		if ran != 1 || active != "2" {
			t.Errorf("%s ran the install %d times (want 1), active %s", d.id, ran, active)
		}
	}
	// Telemetry: wait until every device's records so far are acknowledged,
	// then compare with the rows in the partitioned table.
	for _, d := range devs {
		d.record()
	}
	var recorded, stored int
	waitFor("telemetry acknowledged", 60*time.Second, func() bool {
		for _, d := range devs {
			d.mu.Lock()
			done := d.acked >= d.seq
			d.mu.Unlock()
			if !done {
				return false
			}
		}
		return true
	})
	for _, d := range devs {
		d.mu.Lock()
		seq := d.seq
		d.mu.Unlock()
		var rows, distinct int
		var maxSeq uint64
		err := nodeStore.Pool().QueryRow(ctx, `SELECT count(*), count(DISTINCT split_part(key, '/', 4)), coalesce(max(split_part(key, '/', 4)::numeric), 0)::bigint
			FROM edgefleet_telemetry WHERE split_part(key, '/', 2) = $1`, d.id).Scan(&rows, &distinct, &maxSeq)
		if err != nil {
			t.Fatal(err)
		}
		recorded += int(seq)
		stored += rows
		if rows != int(seq) || distinct != rows || maxSeq != seq {
			t.Errorf("%s recorded seqs 1..%d; stored %d rows, %d distinct seqs, max %d", d.id, seq, rows, distinct, maxSeq)
		}
	}
	if telemetry.RecordsBucket != postgres.TelemetryBucket {
		t.Fatal("telemetry is not in the partitioned table")
	}
	oldAgentEnrollment(t, standby.srv.URL())
	t.Logf("faults: NATS node n2 shut down and leader %s crashed (%d PostgreSQL sessions terminated) with %d of %d jobs done; "+
		"%s took over; rollout %s; jobs %d (installs run %d) for %d devices; telemetry recorded %d, stored %d",
		leader.name, terminated, doneAtKill, n, standby.name, r.Phase, jobsTotal, installs, n, recorded, stored)
}

// oldAgentEnrollment: an agent that does not list wire.FeatureSubscribeQoS
// (every agent before it existed) gets no subscribe_qos field, so its
// strict decoder accepts the answer; it keeps subscribing at QoS 1.
func oldAgentEnrollment(t *testing.T, url string) {
	t.Helper()
	body := `{"v":1,"token":"` + testToken + `","device_id":"old-agent","hardware":{"arch":"amd64"},"csr":""}`
	resp, err := http.Post(url+"/api/v1/enroll", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("old agent's enrollment: HTTP %d %s", resp.StatusCode, b)
	}
	r, err := wire.DecodeEnrollResponse(b)
	if err != nil {
		t.Fatalf("old agent's strict decoder: %v", err)
	}
	if r.SubscribeQoS != nil || strings.Contains(string(b), "subscribe_qos") {
		t.Fatalf("old agent got subscribe_qos: %s", b)
	}
}
