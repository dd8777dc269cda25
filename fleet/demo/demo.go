// Package demo drives `make demo`: it builds (or takes) the edge-agent,
// fleet-server and fleetctl binaries, starts fleet-server with its embedded
// broker and several edge-agent processes on loopback, each with its own
// data dir, sends them prediction traffic, and walks through a release
// story — v1 rolled out to every device, v2 by canary with health gates, a
// bad v3 (its golden output does not match on the devices) that the gates
// stop and roll back, and a v4 with a latency regression caught by the p95
// gate — printing progress and the console URL. Every process it starts is
// stopped before it returns.
package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/edgefleet/edgefleet/fleet/apitype"
	"github.com/edgefleet/edgefleet/fleet/client"
	"github.com/edgefleet/edgefleet/fleet/pki"
	"github.com/edgefleet/edgefleet/fleet/rollout"
	"github.com/edgefleet/edgefleet/fleet/server"
)

// Options configures Run.
type Options struct {
	// Root is the repository root (for go build and testdata).
	Root string
	// BinDir holds prebuilt binaries; empty builds them into WorkDir.
	BinDir string
	// WorkDir holds data dirs and logs (a temp dir if empty; removed unless Keep).
	WorkDir string
	Keep    bool
	// Devices is the number of edge-agent processes (at least 5).
	Devices int
	// Model is the .tflite released as every version.
	Model string
	// SlowModel is released as v4: a heavier model under the same id whose
	// latency regression the p95 gate must catch ("" generates one with
	// WriteSlowModel).
	SlowModel string
	// SkipSlow skips the v4 latency-regression step.
	SkipSlow bool
	// Hold keeps everything running after the story until ctx ends, so the
	// console can be browsed.
	Hold bool
	Out  io.Writer
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

type demo struct {
	o     Options
	bin   string
	procs []*proc
	api   *client.Client
	http  string
	mqtt  string
	// caFingerprint pins the fleet CA at enrollment.
	caFingerprint string
	agents        []string // agent base URLs
	start         time.Time
	sent          atomic.Int64
	failed        atomic.Int64
	notFound      atomic.Int64
}

func (d *demo) logf(format string, a ...any) {
	fmt.Fprintf(d.o.Out, "[%5.1fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, a...))
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Run runs the demo.
func Run(ctx context.Context, o Options) (err error) {
	if o.Devices < 5 {
		o.Devices = 5
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	d := &demo{o: o, start: time.Now()}
	if o.WorkDir == "" {
		if o.WorkDir, err = os.MkdirTemp("", "edgefleet-demo-"); err != nil {
			return err
		}
		if !o.Keep {
			defer os.RemoveAll(o.WorkDir)
		}
		d.o.WorkDir = o.WorkDir
	}
	defer d.stopAll()
	if err := d.build(ctx); err != nil {
		return err
	}
	if err := d.startServer(ctx); err != nil {
		return err
	}
	if err := d.startAgents(ctx); err != nil {
		return err
	}
	trafficCtx, stopTraffic := context.WithCancel(ctx)
	defer stopTraffic()
	go d.traffic(trafficCtx)
	if err := d.story(ctx); err != nil {
		return err
	}
	d.logf("prediction traffic: %d requests, %d answered 404 before v1 was installed, %d other failures",
		d.sent.Load(), d.notFound.Load(), d.failed.Load())
	if o.Hold {
		d.logf("holding; console at %s/ (token: %s) — Ctrl-C to stop", d.http, filepath.Join(d.o.WorkDir, adminTokenFile))
		<-ctx.Done()
	}
	d.logf("stopping %d processes", len(d.procs))
	return nil
}

func (d *demo) build(ctx context.Context) error {
	if d.o.BinDir != "" {
		d.bin = d.o.BinDir
		return nil
	}
	d.bin = filepath.Join(d.o.WorkDir, "bin")
	d.logf("building edge-agent, fleet-server, fleetctl")
	for _, name := range []string{"edge-agent", "fleet-server", "fleetctl"} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(d.bin, name), "./cmd/"+name)
		cmd.Dir = d.o.Root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v\n%s", name, err, out)
		}
	}
	return nil
}

func (d *demo) spawn(name string, env []string, args ...string) (*proc, error) {
	logf, err := os.Create(filepath.Join(d.o.WorkDir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(d.bin, args[0]), args[1:]...)
	cmd.Dir = d.o.WorkDir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); logf.Close(); close(p.done) }()
	d.procs = append(d.procs, p)
	return p, nil
}

// stopAll sends SIGTERM to every child, then SIGKILL after 5 s.
func (d *demo) stopAll() {
	for _, p := range d.procs {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.After(5 * time.Second)
	for _, p := range d.procs {
		select {
		case <-p.done:
		case <-deadline:
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
	d.procs = nil
}

func (d *demo) fleetctl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(d.bin, "fleetctl"), append([]string{"--server", d.http, "--token-file", adminTokenFile, "--ca-file", caFile}, args...)...)
	cmd.Dir = d.o.WorkDir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("fleetctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// waitHTTP waits until url answers; with caPath, over HTTPS verified with
// the fleet CA in caPath (which fleet-server writes at first start).
func waitHTTP(ctx context.Context, url, caPath string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var resp *http.Response
		hc := &http.Client{Timeout: 5 * time.Second}
		var err error
		if caPath != "" {
			var caPEM []byte
			if caPEM, err = os.ReadFile(caPath); err == nil {
				pool := x509.NewCertPool()
				pool.AppendCertsFromPEM(caPEM)
				hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
			}
		}
		if err == nil {
			resp, err = hc.Get(url)
		}
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not up after %s: %v", url, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// token is the demo's enrollment token: random per run, 128 bits (the
// server refuses shorter ones).
var token = func() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return "demo-" + hex.EncodeToString(b)
}()

// caFile is the fleet CA fleet-server generates at first start (relative
// to the work dir); the demo pins it like a real operator would.
var caFile = filepath.Join("server", server.PKIDir, pki.CACertFile)

// adminTokenFile is the admin API token fleet-server writes at first start
// (relative to the work dir).
var adminTokenFile = filepath.Join("server", server.AdminTokenFileName)

func (d *demo) startServer(ctx context.Context) error {
	httpAddr, err := freeAddr()
	if err != nil {
		return err
	}
	mqttAddr, err := freeAddr()
	if err != nil {
		return err
	}
	d.http, d.mqtt = "https://"+httpAddr, "mqtts://"+mqttAddr
	if _, err := d.fleetctlNoServer(ctx, "keys", "init", "--keys-dir", "keys", "--repo-dir", "server/repo"); err != nil {
		return err
	}
	if _, err := d.spawn("fleet-server", nil, "fleet-server", "--data-dir", "server", "--listen", httpAddr, "--mqtt-listen", mqttAddr,
		"--enroll-token", token, "--tick", "250ms", "--keys-dir", "keys"); err != nil {
		return err
	}
	if err := waitHTTP(ctx, d.http+"/api/v1/devices", filepath.Join(d.o.WorkDir, caFile), 15*time.Second); err != nil {
		return err
	}
	caPEM, err := os.ReadFile(filepath.Join(d.o.WorkDir, caFile))
	if err != nil {
		return fmt.Errorf("fleet CA: %w", err)
	}
	ca, err := pki.ParseCertPEM(caPEM)
	if err != nil {
		return fmt.Errorf("fleet CA: %w", err)
	}
	d.caFingerprint = pki.Fingerprint(ca)
	// Auth is on: the demo operates with the admin token the server
	// generated into its data dir.
	admin, err := client.ReadTokenFile(filepath.Join(d.o.WorkDir, adminTokenFile))
	if err != nil {
		return fmt.Errorf("fleet-server's admin token: %w", err)
	}
	d.api = client.New(d.http, admin)
	if err := d.api.UseCA(caPEM); err != nil {
		return err
	}
	d.logf("fleet-server up over TLS: API and console %s/  broker %s  CA %s", d.http, d.mqtt, d.caFingerprint)
	return nil
}

func (d *demo) fleetctlNoServer(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(d.bin, "fleetctl"), args...)
	cmd.Dir = d.o.WorkDir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("fleetctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (d *demo) startAgents(ctx context.Context) error {
	for i := 0; i < d.o.Devices; i++ {
		id := fmt.Sprintf("edge-%02d", i+1)
		dir := filepath.Join("agents", id)
		ring := "canary"
		if i >= 2 {
			ring = "main"
		}
		cmd := exec.CommandContext(ctx, filepath.Join(d.bin, "edge-agent"), "enroll", "--server", d.http, "--token", token,
			"--ca-fingerprint", d.caFingerprint,
			"--data-dir", dir, "--device-id", id, "--label", "ring="+ring+",site=demo")
		cmd.Dir = d.o.WorkDir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("enroll %s: %v\n%s", id, err, out)
		}
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		// No broker flag: the enrollment holds the mqtts:// address, the
		// pinned CA and the device certificate.
		if _, err := d.spawn(id, []string{"EDGE_TELEMETRY_INTERVAL=1s"},
			"edge-agent", "run", "--data-dir", dir, "--listen", addr); err != nil {
			return err
		}
		d.agents = append(d.agents, "http://"+addr)
	}
	for _, a := range d.agents {
		if err := waitHTTP(ctx, a+"/v2/health/live", "", 20*time.Second); err != nil {
			return err
		}
	}
	return d.waitOnline(ctx, 20*time.Second)
}

func (d *demo) waitOnline(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ds, err := d.api.Devices(ctx, "")
		online := 0
		for _, x := range ds {
			if x.Presence == "online" {
				online++
			}
		}
		if err == nil && online == d.o.Devices {
			d.logf("%d edge-agents enrolled and online (each its own process and data dir)", online)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d devices online after %s (see %s/*.log): %v", online, d.o.Devices, timeout, d.o.WorkDir, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// traffic sends predictions to every agent (~25 req/s each).
func (d *demo) traffic(ctx context.Context) {
	var wg sync.WaitGroup
	hc := &http.Client{Timeout: 5 * time.Second}
	for _, a := range d.agents {
		wg.Add(1)
		go func(base string) {
			defer wg.Done()
			t := time.NewTicker(40 * time.Millisecond)
			defer t.Stop()
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				body := fmt.Sprintf(`{"instances":[[%g]]}`, float64(i%60)/10)
				resp, err := hc.Post(base+"/api/v1/models/demo/predict", "application/json", bytes.NewBufferString(body))
				d.sent.Add(1)
				if err != nil {
					d.failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == http.StatusNotFound:
					d.notFound.Add(1) // before v1 is installed on that device
				case resp.StatusCode != http.StatusOK:
					d.failed.Add(1)
				}
			}
		}(a)
	}
	wg.Wait()
}

func (d *demo) push(ctx context.Context, model, version string, extra ...string) error {
	args := append([]string{"models", "push", model, "--id", "demo", "--version", version, "--keys-dir", "keys", "--repo-dir", "server/repo"}, extra...)
	out, err := d.fleetctl(ctx, args...)
	if err != nil {
		return err
	}
	d.logf("fleetctl models push → %s", strings.TrimSpace(strings.SplitN(out, "\n", 2)[0]))
	return nil
}

func (d *demo) roll(ctx context.Context, req apitype.RolloutRequest, want rollout.Phase, timeout time.Duration) (*rollout.Rollout, error) {
	r, err := d.api.CreateRollout(ctx, req)
	if err != nil {
		return nil, err
	}
	d.logf("rollout %s: %s of demo@%s, stages %v, soak %s", r.Spec.ID, r.Spec.Strategy, r.Spec.Version, r.Spec.Stages, r.Spec.Soak)
	last := ""
	deadline := time.Now().Add(timeout)
	for {
		r, err = d.api.Rollout(ctx, req.ID)
		if err != nil {
			return nil, err
		}
		assigned, done := len(r.Devices), 0
		for _, x := range r.Devices {
			if x.JobState == "succeeded" {
				done++
			}
		}
		line := fmt.Sprintf("  %s stage %d/%d (%d%%): %d/%d devices on it, new p95 %.3fms / baseline %.3fms over %d req",
			r.Phase, r.Stage+1, len(r.Spec.Stages), r.Spec.Stages[r.Stage], done, assigned, r.New.P95, r.Baseline.P95, r.New.Requests)
		key := fmt.Sprint(r.Phase, r.Stage, done, assigned)
		if key != last {
			d.logf("%s", line)
			last = key
		}
		if r.Phase.Final() {
			break
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("rollout %s still %s after %s", req.ID, r.Phase, timeout)
		}
		time.Sleep(300 * time.Millisecond)
	}
	for _, g := range r.Gates {
		if g.Evaluated && !g.OK {
			d.logf("  gate %s FAILED: %.4g (threshold %.4g)", g.Name, g.Value, g.Threshold)
		}
	}
	d.logf("  → %s: %s", r.Phase, r.Reason)
	if r.Phase != want {
		return r, fmt.Errorf("rollout %s ended %s (%s), expected %s", req.ID, r.Phase, r.Reason, want)
	}
	return r, nil
}

func (d *demo) versions(ctx context.Context) string {
	ds, err := d.api.Devices(ctx, "")
	if err != nil {
		return err.Error()
	}
	count := map[string]int{}
	for _, x := range ds {
		v := "none"
		for _, m := range x.Models {
			if m.ID == "demo" && m.Active != "" {
				v = m.Active
			}
		}
		count[v]++
	}
	return fmt.Sprint(count)
}

func (d *demo) story(ctx context.Context) error {
	gates := rollout.DefaultGates()
	gates.MinRequests = 60
	gates.MaxP95Ratio = 3
	gates.MinP95DeltaMs = 0.5 // the demo model answers in ~0.2 ms: ignore sub-ms noise
	if err := d.push(ctx, d.o.Model, "1"); err != nil {
		return err
	}
	if _, err := d.roll(ctx, apitype.RolloutRequest{ID: "v1-all", ModelID: "demo", Version: "1", Strategy: rollout.BlueGreen,
		Soak: "2s", DeviceDeadline: "30s", Gates: &gates}, rollout.Succeeded, 60*time.Second); err != nil {
		return err
	}
	d.logf("active versions: %s", d.versions(ctx))

	if err := d.push(ctx, d.o.Model, "2"); err != nil {
		return err
	}
	if _, err := d.roll(ctx, apitype.RolloutRequest{ID: "v2-canary", ModelID: "demo", Version: "2", Strategy: rollout.Canary,
		Stages: []int{20, 60, 100}, Soak: "3s", DeviceDeadline: "30s", Gates: &gates}, rollout.Succeeded, 60*time.Second); err != nil {
		return err
	}
	d.logf("active versions: %s", d.versions(ctx))

	if err := d.push(ctx, d.o.Model, "3", "--corrupt-golden"); err != nil {
		return err
	}
	d.logf("v3 is signed with a golden output the runtime will not reproduce (a broken build)")
	if _, err := d.roll(ctx, apitype.RolloutRequest{ID: "v3-canary", ModelID: "demo", Version: "3", Strategy: rollout.Canary,
		Stages: []int{20, 60, 100}, Soak: "3s", DeviceDeadline: "30s", Gates: &gates}, rollout.RolledBack, 60*time.Second); err != nil {
		return err
	}
	d.logf("active versions: %s", d.versions(ctx))

	if !d.o.SkipSlow {
		if d.o.SlowModel == "" {
			d.o.SlowModel = filepath.Join(d.o.WorkDir, "slow.tflite")
			if err := WriteSlowModel(d.o.SlowModel, 512, 8); err != nil {
				return err
			}
		}
		if err := d.push(ctx, d.o.SlowModel, "4"); err != nil {
			return err
		}
		d.logf("v4 passes its golden check but is much slower (latency regression)")
		if _, err := d.roll(ctx, apitype.RolloutRequest{ID: "v4-canary", ModelID: "demo", Version: "4", Strategy: rollout.Canary,
			Stages: []int{20, 60, 100}, Soak: "4s", DeviceDeadline: "30s", BaselineWindow: "30s", Gates: &gates}, rollout.RolledBack, 60*time.Second); err != nil {
			return err
		}
		if err := d.waitVersions(ctx, "2", 15*time.Second); err != nil {
			return err
		}
		d.logf("active versions: %s", d.versions(ctx))
	}
	d.logf("console: %s/  (devices, models, rollouts with gates, latency and error-rate charts); sign in with the token in %s", d.http, filepath.Join(d.o.WorkDir, adminTokenFile))
	return nil
}

func (d *demo) waitVersions(ctx context.Context, v string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if d.versions(ctx) == fmt.Sprintf("map[%s:%d]", v, d.o.Devices) {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return errors.New("devices did not all return to v" + v + ": " + d.versions(ctx))
}
