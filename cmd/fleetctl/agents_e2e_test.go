package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/apitype"
	"github.com/edgefleet/edgefleet/fleet/client"
	"github.com/edgefleet/edgefleet/fleet/pki"
	"github.com/edgefleet/edgefleet/fleet/rollout"
	"github.com/edgefleet/edgefleet/fleet/server"
	"github.com/edgefleet/edgefleet/internal/wire"
	"github.com/edgefleet/edgefleet/ota/release"
	"github.com/edgefleet/edgefleet/ota/selfupdate"
)

// buildBin builds ./cmd/<pkg> into dir/name with ldflags, CGO-free as shipped.
func buildBin(dir, pkg, name, ldflags, tags string) (string, error) {
	out := filepath.Join(dir, name)
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if p, err := exec.LookPath("go"); err == nil {
		gobin = p
	}
	args := []string{"build", "-o", out, "-ldflags", ldflags}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.Command(gobin, append(args, "../../"+pkg)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s %s: %v\n%s", pkg, ldflags, err, b)
	}
	return out, nil
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// syncBuffer is a bytes.Buffer safe for a child's output and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startProc starts a child process that is stopped (SIGTERM, then killed)
// when the test ends.
func startProc(t *testing.T, env []string, log *syncBuffer, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	p := &proc{Cmd: cmd, done: done}
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return p
}

// proc is a started child process.
type proc struct {
	*exec.Cmd
	done chan struct{}
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitFor polls cond (observable state: the API, files) until it holds.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last state: %s", limit, what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "EDGE_") || strings.HasPrefix(kv, "EDGEFLEET_") || strings.HasPrefix(kv, selfupdate.HealthMarkerEnv+"=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// TestAgentUpdateEndToEnd runs real processes: fleet-server (embedded
// broker, TLS) and an enrolled edge-agent built as version 1. fleetctl
// pushes edge-agent 2 and rolls it out: the agent process downloads it
// through TUF, health-checks it, re-executes itself as version 2 (same
// process id, new binary on disk) and reports it; the rollout succeeds.
// Then edge-agent 3, a build that exits at start-up, is pushed and rolled
// out: the device's health check fails, the device puts version 2 back and
// keeps running it, its job ends rolled_back with the reason, and the
// rollout rolls back.
func TestAgentUpdateEndToEnd(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the agent re-exec and the builds below are for Linux")
	}
	dir := t.TempDir()
	bins := filepath.Join(dir, "builds")
	os.MkdirAll(bins, 0o755)
	var wg sync.WaitGroup
	var agent1, agent2, agent3, fleetServer string
	errs := make([]error, 4)
	for i, b := range []struct {
		out                *string
		pkg, name, l, tags string
	}{
		{&agent1, "cmd/edge-agent", "edge-agent-1", "-X main.version=1", ""},
		{&agent2, "cmd/edge-agent", "edge-agent-2", "-X main.version=2", ""},
		{&agent3, "cmd/edge-agent", "edge-agent-3", "-X main.version=3", "edgeagent_crashswitch"},
		{&fleetServer, "cmd/fleet-server", "fleet-server", "", ""},
	} {
		i := i
		wg.Add(1)
		go func() { defer wg.Done(); *b.out, errs[i] = buildBin(bins, b.pkg, b.name, b.l, b.tags) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	// fleet-server with signing keys, its embedded broker over TLS.
	keys, data := filepath.Join(dir, "fleet-keys"), filepath.Join(dir, "fleet-data")
	if err := release.NewRepo(keys, filepath.Join(data, "repo")).Init(release.KeyOptions{}); err != nil {
		t.Fatal(err)
	}
	httpAddr, mqttAddr := freeAddr(t), freeAddr(t)
	secret := "enroll-" + strings.Repeat("7f3a", 8)
	srvLog := &syncBuffer{}
	srv := startProc(t, childEnv(), srvLog, fleetServer, "--data-dir", data, "--keys-dir", keys, "--listen", httpAddr,
		"--mqtt-listen", mqttAddr, "--enroll-token", secret, "--tick", "200ms")
	caFile := filepath.Join(data, server.PKIDir, pki.CACertFile)
	tokenFile := filepath.Join(data, server.AdminTokenFileName)
	url := "https://" + httpAddr
	var c *client.Client
	waitFor(t, "fleet-server to answer", 2*time.Minute, func() (bool, string) {
		if srv.exited() {
			t.Fatalf("fleet-server exited: %s", srvLog)
		}
		ca, err1 := os.ReadFile(caFile)
		tok, err2 := client.ReadTokenFile(tokenFile)
		if err1 != nil || err2 != nil {
			return false, fmt.Sprintf("ca %v token %v; log: %s", err1, err2, srvLog)
		}
		c = client.New(url, tok)
		if err := c.UseCA(ca); err != nil {
			t.Fatal(err)
		}
		_, err := c.Whoami(context.Background())
		return err == nil, fmt.Sprint(err)
	})
	for _, k := range []string{"FLEET_TOKEN", "EDGEFLEET_TOKEN"} {
		t.Setenv(k, "")
	}
	t.Setenv("FLEET_TOKEN_FILE", tokenFile)
	t.Setenv("FLEET_CA_FILE", caFile)
	ctl := func(args ...string) string {
		t.Helper()
		out, err := fleetctl(t, append([]string{"--server", url}, args...)...)
		if err != nil {
			t.Fatalf("fleetctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	// The device: edge-agent 1 installed in its own bin dir, enrolled.
	dev := filepath.Join(dir, "device")
	exe := filepath.Join(dev, "bin", "edge-agent")
	os.MkdirAll(filepath.Dir(exe), 0o755)
	b1, _ := os.ReadFile(agent1)
	if err := os.WriteFile(exe, b1, 0o755); err != nil {
		t.Fatal(err)
	}
	agentData := filepath.Join(dev, "data")
	if out, err := exec.Command(exe, "enroll", "--server", url, "--token", secret, "--ca-file", caFile,
		"--data-dir", agentData, "--device-id", "dev-1").CombinedOutput(); err != nil {
		t.Fatalf("enroll: %v\n%s", err, out)
	}
	agentLog := &syncBuffer{}
	proc := startProc(t, childEnv(), agentLog, exe, "run", "--data-dir", agentData, "--listen", freeAddr(t), "--unix-socket=")
	device := func() apitype.DeviceView {
		d, err := c.Device(context.Background(), "dev-1")
		if err != nil {
			return apitype.DeviceView{}
		}
		return d
	}
	alive := func() {
		t.Helper()
		if proc.exited() {
			t.Fatalf("the agent process exited: %v\n%s", proc.ProcessState, agentLog)
		}
	}
	waitFor(t, "dev-1 online as edge-agent 1", 2*time.Minute, func() (bool, string) {
		alive()
		d := device()
		return d.Presence == wire.Online && d.AgentVersion == "1", fmt.Sprintf("%s %q; agent log: %s", d.Presence, d.AgentVersion, agentLog)
	})

	// Push edge-agent 2; it is listed for this platform.
	plat := runtime.GOOS + "/" + runtime.GOARCH
	out := ctl("--json", "agents", "push", agent2, "--version", "2", "--arch", plat, "--progress")
	var rel apitype.AgentRelease
	if err := json.Unmarshal([]byte(out), &rel); err != nil || rel.Version != "2" || rel.Platform != plat {
		t.Fatalf("agents push: %v %s", err, out)
	}
	if out := ctl("agents", "list"); !strings.Contains(out, plat) || !strings.Contains(out, " 2 ") {
		t.Fatalf("agents list: %s", out)
	}

	// Roll it out: the process re-executes as version 2.
	pid := proc.Process.Pid
	ctl("--json", "rollout", "create", "--agent", "--version", "2", "--id", "agent2", "--stages", "100", "--soak", "0s", "--device-deadline", "3m")
	final := func(id string) *rollout.Rollout {
		var r *rollout.Rollout
		waitFor(t, "rollout "+id+" to finish", 4*time.Minute, func() (bool, string) {
			alive()
			var err error
			r, err = c.Rollout(context.Background(), id)
			if err != nil {
				return false, err.Error()
			}
			b, _ := json.Marshal(r.Devices)
			if r.Phase == rollout.Paused {
				t.Fatalf("rollout %s paused: %s; devices %s; agent log: %s", id, r.Reason, b, agentLog)
			}
			if r.Phase.Final() {
				t.Logf("rollout %s: %s in %s (%s)", id, r.Phase, r.Finished.Sub(r.Created).Round(time.Millisecond), r.Reason)
			}
			return r.Phase.Final(), fmt.Sprintf("%s %s devices %s; agent log: %s", r.Phase, r.Reason, b, agentLog)
		})
		return r
	}
	r := final("agent2")
	if r.Phase != rollout.Succeeded {
		t.Fatalf("agent rollout of 2: %s (%s); devices %+v; agent log: %s", r.Phase, r.Reason, r.Devices["dev-1"], agentLog)
	}
	d := device()
	if d.AgentVersion != "2" || d.Presence != wire.Online {
		t.Fatalf("after the rollout dev-1 reports %q %s", d.AgentVersion, d.Presence)
	}
	alive()
	if proc.Process.Pid != pid {
		t.Fatalf("the agent process changed from pid %d to %d", pid, proc.Process.Pid)
	}
	// The process runs the file now at exe: a process that had not
	// re-executed would still run the replaced file, shown "(deleted)".
	if running, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err != nil || running != exe {
		t.Fatalf("pid %d runs %q (%v), want the new %s", pid, running, err, exe)
	}
	if !sameBytes(t, exe, agent2) || !sameBytes(t, exe+".old", agent1) {
		t.Fatal("the binary on disk is not edge-agent 2 (with 1 kept as .old)")
	}
	if v, err := exec.Command(exe, "--version").Output(); err != nil || !strings.Contains(string(v), "2") {
		t.Fatalf("installed binary --version: %q %v", v, err)
	}
	logs := agentLog.String()
	for _, want := range []string{"download complete", "edge-agent 2 " + plat, "rate=", "restarting as it", "agent update finished"} {
		if !strings.Contains(logs, want) {
			t.Errorf("agent log lacks %q:\n%s", want, logs)
		}
	}

	// edge-agent 3 exits at start-up: the device's health check fails, it
	// keeps running 2, the job is rolled back with the reason, and so is
	// the rollout.
	ctl("agents", "push", agent3, "--version", "3", "--arch", plat)
	ctl("--json", "rollout", "create", "--agent", "--version", "3", "--id", "agent3", "--stages", "100", "--soak", "0s", "--device-deadline", "3m")
	r = final("agent3")
	if r.Phase != rollout.RolledBack || !strings.Contains(r.Reason, "install failures") {
		t.Fatalf("agent rollout of 3: %s (%s)", r.Phase, r.Reason)
	}
	ds := r.Devices["dev-1"]
	if ds == nil || ds.JobState != wire.JobRolledBack || !strings.Contains(ds.Reason, "unhealthy") || !strings.Contains(ds.Reason, "simulated start-up failure") {
		t.Fatalf("dev-1 in the rollout of 3: %+v", ds)
	}
	d = device()
	if d.AgentVersion != "2" || d.Presence != wire.Online {
		t.Fatalf("after the failed update dev-1 reports %q %s", d.AgentVersion, d.Presence)
	}
	if !sameBytes(t, exe, agent2) {
		t.Fatal("edge-agent 2 is not back on disk")
	}
	alive()
	if out := ctl("agents", "list"); !strings.Contains(out, " 3 ") {
		t.Fatalf("agents list: %s", out)
	}
}

func sameBytes(t *testing.T, a, b string) bool {
	t.Helper()
	x, err1 := os.ReadFile(a)
	y, err2 := os.ReadFile(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}
