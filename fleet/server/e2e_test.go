package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/agent/enroll"
	"github.com/edgefleet/edgefleet/agent/fleetlink"
	"github.com/edgefleet/edgefleet/fleet/broker/brokertest"
	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/fleet/rollout"
	"github.com/edgefleet/edgefleet/fleet/server"
	"github.com/edgefleet/edgefleet/internal/waitfor"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// fakeDevice is an agent stand-in behind a real fleetlink.Link: its
// telemetry source is an in-memory buffer with sequence numbers, its job
// handler switches active versions, and version "bad" fails its golden check.
type fakeDevice struct {
	id   string
	dir  string // the agent's data dir
	mu   sync.Mutex
	recs []wire.TelemetryRecord
	seq  uint64
	wake chan struct{}

	active, previous, shadow string
	acked                    uint64
	jobs                     []string
	link                     *fleetlink.Link
	cancel                   context.CancelFunc
	done                     chan struct{}
}

func (d *fakeDevice) Read(after uint64, limit int) ([]wire.TelemetryRecord, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []wire.TelemetryRecord
	for _, r := range d.recs {
		if r.Seq > after && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (d *fakeDevice) Ack(upTo uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	kept := d.recs[:0]
	for _, r := range d.recs {
		if r.Seq > upTo {
			kept = append(kept, r)
		}
	}
	d.recs, d.acked = kept, upTo
	return nil
}

func (d *fakeDevice) Dropped() (uint64, error) { return 0, nil }

func (d *fakeDevice) Notify() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.wake
}

// record appends one telemetry record per running version.
func (d *fakeDevice) record() {
	d.mu.Lock()
	defer d.mu.Unlock()
	add := func(v string, role wire.Role) {
		d.seq++
		p95 := 10.0
		if v == "slow" {
			p95 = 80
		}
		d.recs = append(d.recs, wire.TelemetryRecord{Seq: d.seq, Time: time.Now().UTC(), ModelID: "m", Version: v, Role: role,
			Requests: 40, Errors: 0, LatencyP50Ms: p95 / 2, LatencyP95Ms: p95, LatencyP99Ms: p95 * 1.2, ShadowCompared: 40, ShadowAgreed: 40, Monitoring: monitoringFor(v)})
	}
	if d.active != "" {
		add(d.active, wire.RolePrimary)
	}
	if d.shadow != "" {
		add(d.shadow, wire.RoleShadow)
	}
	close(d.wake)
	d.wake = make(chan struct{})
}

func (d *fakeDevice) HandleJob(ctx context.Context, j wire.Job, progress func(int)) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.jobs = append(d.jobs, j.Kind.String()+":"+j.Version)
	progress(50)
	switch j.Kind {
	case wire.JobInstall:
		if j.Version == "bad" {
			return &wire.JobError{State: wire.JobRolledBack, Reason: "golden output mismatch: rolled back to " + d.active}
		}
		d.previous, d.active = d.active, j.Version
	case wire.JobShadow:
		d.shadow = j.Version
	case wire.JobRollback:
		d.shadow = ""
		if j.Version != d.active {
			d.previous, d.active = d.active, j.Version
		}
	default:
		return &wire.JobError{State: wire.JobRejected, Reason: "unsupported job kind " + string(j.Kind)}
	}
	return nil
}

func (d *fakeDevice) Status(ctx context.Context) wire.Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	return wire.Status{AgentVersion: "test", Hardware: &wire.Hardware{Arch: "amd64", CPUFeatures: []string{"avx2"}},
		Models: []wire.ModelStatus{{ID: "m", Active: d.active, Previous: d.previous, Shadow: d.shadow}}}
}

type env struct {
	t     *testing.T
	srv   *server.Server
	devs  []*fakeDevice
	ctx   context.Context
	token string
	repo  string
	data  string
	// insecure: the server runs with --insecure-plaintext.
	insecure bool
}

// testToken is the operator-chosen enrollment token of the test servers.
const testToken = "enroll-secret-0123456789abcdef-0123456789"

// pin is how devices trust the test server: its CA fingerprint (or
// nothing over plaintext).
func (e *env) pin() enroll.EnrollOptions {
	if e.insecure {
		return enroll.EnrollOptions{InsecurePlaintext: true}
	}
	return enroll.EnrollOptions{CAFingerprint: e.srv.CAFingerprint()}
}

// client is an HTTPS client trusting the fleet CA.
func (e *env) client() *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(e.srv.CAPEM())
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// api calls the API with the generated admin token.
func (e *env) api(method, path string, body string) (*http.Response, error) {
	tok, err := os.ReadFile(e.srv.AdminTokenFile())
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(method, e.srv.URL()+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	req.Header.Set("Content-Type", "application/json")
	return e.client().Do(req)
}

func startServer(t *testing.T, cfg server.Config) *env {
	ctx, cancel := context.WithCancel(context.Background())
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.HTTPAddr = "127.0.0.1:0"
	if cfg.BrokerURL == "" {
		cfg.EmbeddedAddr = "127.0.0.1:0"
	}
	cfg.TickInterval = 50 * time.Millisecond
	cfg.Tokens = []string{testToken}
	srv, err := server.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	runDone := make(chan struct{})
	go func() { srv.Run(ctx, nil); close(runDone) }()
	e := &env{t: t, srv: srv, ctx: ctx, token: testToken, data: cfg.DataDir, repo: filepath.Join(cfg.DataDir, "repo"), insecure: cfg.InsecurePlaintext}
	t.Cleanup(func() {
		e.stopLinks()
		cancel()
		<-runDone
		srv.Close()
	})
	return e
}

func (e *env) enroll(n int) {
	for i := 0; i < n; i++ {
		dir := e.t.TempDir()
		d := &fakeDevice{id: fmt.Sprintf("dev-%d", i), dir: dir, active: "1", wake: make(chan struct{})}
		enr, err := enroll.Enroll(e.ctx, e.srv.URL(), dir, wire.EnrollRequest{Token: e.token, DeviceID: d.id,
			Hardware: wire.Hardware{Arch: "amd64"}, Labels: map[string]string{"ring": fmt.Sprint(i % 2)}, Models: []wire.ModelStatus{{ID: "m", Active: "1"}}}, e.pin())
		if err != nil {
			e.t.Fatal(err)
		}
		loaded, err := enroll.LoadEnrollment(dir)
		if err != nil || loaded.Password != enr.Password || loaded.BrokerURL != enr.BrokerURL || len(loaded.CommandKey) == 0 {
			e.t.Fatalf("enrollment not persisted: %v", err)
		}
		if loaded.SubscribeQoS != nil {
			// Only a NATS cluster asks for QoS 0 (TestClusterFaults).
			e.t.Fatalf("enrollment with one node asks for subscribe QoS %d, want none (QoS 1)", *loaded.SubscribeQoS)
		}
		d.link, err = fleetlink.New(fleetlink.Config{Enrollment: *loaded, DataDir: dir, Telemetry: d, Jobs: d, Status: d,
			UploadInterval: 100 * time.Millisecond, AckTimeout: 2 * time.Second, StatusInterval: time.Second, MaxReconnectInterval: time.Second})
		if err != nil {
			e.t.Fatal(err)
		}
		e.devs = append(e.devs, d)
	}
}

func (e *env) stopLinks() {
	for _, d := range e.devs {
		if d.cancel != nil {
			d.cancel()
			<-d.done
			d.cancel = nil
		}
	}
}

func (e *env) startLinks() {
	for _, d := range e.devs {
		ctx, cancel := context.WithCancel(e.ctx)
		d.cancel, d.done = cancel, make(chan struct{})
		go func(d *fakeDevice) { d.link.Run(ctx); close(d.done) }(d)
	}
}

func (e *env) waitFor(what string, timeout time.Duration, cond func() bool) {
	e.t.Helper()
	// timeout says how soon it should happen; on a loaded CI machine it
	// may take longer, so the test fails only after waitfor.Bound (a
	// 10-second wait for "device offline" once failed under load).
	timeout = max(timeout, waitfor.Bound)
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		for _, d := range e.devs {
			d.record()
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *env) release(version string) {
	name := "models/m/" + version + "/model.tflite"
	p := filepath.Join(e.repo, "targets", name)
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("model "+version), 0o644)
	if err := e.srv.Registry().Models.Put(e.ctx, registry.Model{ID: "m", Version: version, Target: wire.Target{Name: name, Length: int64(len("model " + version))}}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) online() int {
	ds, _ := e.srv.Registry().Devices.List(e.ctx, registry.Selector{})
	n := 0
	for _, d := range ds {
		if d.Presence == wire.Online {
			n++
		}
	}
	return n
}

func gates() rollout.Gates {
	g := rollout.DefaultGates()
	g.MinRequests = 40
	return g
}

func (e *env) runRollout(spec rollout.Spec, want rollout.Phase) *rollout.Rollout {
	e.t.Helper()
	if _, err := e.srv.Rollouts().Create(e.ctx, spec); err != nil {
		e.t.Fatal(err)
	}
	var r *rollout.Rollout
	e.waitFor("rollout "+spec.ID+" to finish", 40*time.Second, func() bool {
		r, _ = e.srv.Rollouts().Get(spec.ID)
		return r.Phase.Final()
	})
	if r.Phase != want {
		e.t.Fatalf("rollout %s: %s (%s), want %s; events %+v", spec.ID, r.Phase, r.Reason, want, r.Events)
	}
	return r
}

func (e *env) actives() map[string]int {
	out := map[string]int{}
	ds, _ := e.srv.Registry().Devices.List(e.ctx, registry.Selector{})
	for _, d := range ds {
		out[d.ActiveVersion("m")]++
	}
	return out
}

// scenario drives the full fleet story through real MQTT: enrollment,
// presence, exactly-once telemetry, a healthy canary, a shadow evaluation,
// a bad release stopped by its install gate, a latency regression rolled
// back by the p95 gate, and Last Will / orderly offline.
func scenario(t *testing.T, e *env) {
	e.startLinks()
	e.waitFor("all devices online", 20*time.Second, func() bool { return e.online() == len(e.devs) })

	// Telemetry: everything recorded reaches the server exactly once.
	e.waitFor("telemetry acked", 10*time.Second, func() bool {
		for _, d := range e.devs {
			d.mu.Lock()
			n := len(d.recs)
			d.mu.Unlock()
			if n > 2 {
				return false
			}
		}
		return true
	})

	spec := func(id, version string, strategy rollout.Strategy) rollout.Spec {
		return rollout.Spec{ID: id, ModelID: "m", Version: version, Target: wire.Target{Name: "models/m/" + version + "/model.tflite", Length: 1},
			Strategy: strategy, Stages: []int{20, 60, 100}, Soak: 500 * time.Millisecond, DeviceDeadline: 10 * time.Second,
			BaselineWindow: time.Minute, Gates: gates()}
	}
	e.release("2")
	e.runRollout(spec("canary-v2", "2", rollout.Canary), rollout.Succeeded)
	if a := e.actives(); a["2"] != len(e.devs) {
		t.Fatalf("after canary v2: active versions %v", a)
	}

	e.release("3")
	e.runRollout(spec("shadow-v3", "3", rollout.Shadow), rollout.Succeeded)
	if a := e.actives(); a["3"] != len(e.devs) {
		t.Fatalf("after shadow v3: active versions %v", a)
	}

	// A release whose golden check fails on the device stops at stage 1.
	e.release("bad")
	r := e.runRollout(spec("bad", "bad", rollout.Canary), rollout.RolledBack)
	if !strings.Contains(r.Reason, "install failures") {
		t.Fatalf("bad release reason %q", r.Reason)
	}
	if a := e.actives(); a["3"] != len(e.devs) {
		t.Fatalf("after bad release: active versions %v", a)
	}

	// A latency regression passes install but fails the p95 gate; the
	// touched devices are rolled back to 3.
	e.release("slow")
	r = e.runRollout(spec("slow", "slow", rollout.Canary), rollout.RolledBack)
	if !strings.Contains(r.Reason, "p95 latency") {
		t.Fatalf("slow release reason %q", r.Reason)
	}
	e.waitFor("devices back on 3", 10*time.Second, func() bool { return e.actives()["3"] == len(e.devs) })

	// Server-side telemetry has no duplicates: per device, the stored
	// records are exactly 1..high-water.
	for _, d := range e.devs {
		recs := e.srv.Telemetry().Records(telemetryQuery(d.id))
		for i, r := range recs {
			if r.Seq != uint64(i+1) {
				t.Fatalf("%s: record %d has seq %d (lost or duplicated)", d.id, i, r.Seq)
			}
		}
	}

	// Orderly shutdown of one link publishes offline.
	d := e.devs[0]
	d.cancel()
	<-d.done
	d.cancel = nil
	e.waitFor("device offline", 10*time.Second, func() bool {
		dev, _ := e.srv.Registry().Devices.Get(e.ctx, d.id)
		return dev.Presence == wire.Offline
	})
}

func TestFleetEmbeddedBroker(t *testing.T) {
	e := startServer(t, server.Config{})
	e.enroll(5)
	// API sanity: devices listed, console served, metrics exported.
	if !strings.HasPrefix(e.srv.URL(), "https://") || !strings.HasPrefix(e.srv.BrokerURL(), "mqtts://") {
		t.Fatalf("not TLS by default: %s %s", e.srv.URL(), e.srv.BrokerURL())
	}
	for _, path := range []string{"/api/v1/devices", "/", "/app.js", "/metrics"} {
		resp, err := e.api("GET", path, "")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", path, err, resp)
		}
		resp.Body.Close()
	}
	scenario(t, e)
}

// TestFleetMosquitto runs the same scenario with fleet-server connected to
// a real Mosquitto configured from the files fleet-server writes.
func TestFleetMosquitto(t *testing.T) {
	mdir := t.TempDir()
	port := brokertest.FreePort(t)
	// Mosquitto authenticates devices by password (--broker-password-auth),
	// over TLS with the CA and broker certificate fleet-server writes.
	e := startServer(t, server.Config{BrokerURL: fmt.Sprintf("mqtts://127.0.0.1:%d", port), BrokerPassword: "server-secret", MosquittoDir: mdir,
		BrokerPasswordAuth: true})
	e.enroll(5)
	conf, _ := os.ReadFile(filepath.Join(mdir, "mosquitto.conf"))
	if os.Geteuid() == 0 {
		conf = append(conf, "user root\n"...)
	}
	os.WriteFile(filepath.Join(mdir, "mosquitto.conf"), conf, 0o600)
	passwd, _ := os.ReadFile(filepath.Join(mdir, "passwd"))
	if n := strings.Count(string(passwd), "\n"); n != 6 {
		t.Fatalf("passwd has %d users, want server + 5 devices:\n%s", n, passwd)
	}
	cmd := exec.Command(brokertest.MosquittoPath, "-c", filepath.Join(mdir, "mosquitto.conf"))
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if t.Failed() {
			t.Logf("mosquitto output:\n%s", out.String())
		}
	})
	scenario(t, e)
	e.stopLinks()
}
