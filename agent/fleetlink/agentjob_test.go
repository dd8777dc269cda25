package fleetlink

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/agent/daemon"
	"github.com/edgefleet/edgefleet/agent/enroll"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// TestConfirmAgentRestart: the restarted agent finishes the agent job it
// was restarted for: succeeded when it runs the job's version, rolled back
// when it does not (the update was undone at start-up); no record, nothing.
func TestConfirmAgentRestart(t *testing.T) {
	for _, c := range []struct {
		name, running string
		state         wire.JobState
		reason        string
	}{
		{"runs the new version", "2", wire.JobSucceeded, "edge-agent 2 running (was 1)"},
		{"update undone", "1", wire.JobRolledBack, `runs "1", not 2`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			l, err := New(Config{Enrollment: enroll.Enrollment{DeviceID: "d", BrokerURL: "mqtt://127.0.0.1:1"}, DataDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, enroll.Dir, agentRestartFile)
			if err := writeJSONFile(p, agentRestart{JobID: "a1-0001", Version: "2", From: "1"}); err != nil {
				t.Fatal(err)
			}
			confirmAgentRestart(l, dir, c.running) // not connected: journaled, sent on the next notify
			u, ok := l.journal["a1-0001"]
			if !ok || u.State != c.state || !strings.Contains(u.Reason, c.reason) {
				t.Fatalf("journal %+v, want %s with %q", l.journal, c.state, c.reason)
			}
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Fatalf("restart record kept: %v", err)
			}
			// The journal survives a restart of the link.
			l2, err := New(Config{Enrollment: enroll.Enrollment{DeviceID: "d", BrokerURL: "mqtt://127.0.0.1:1"}, DataDir: dir})
			if err != nil || l2.journal["a1-0001"].State != c.state {
				t.Fatalf("journal after restart: %+v %v", l2.journal, err)
			}
		})
	}
	// Control: no record, no job touched.
	dir := t.TempDir()
	l, _ := New(Config{Enrollment: enroll.Enrollment{DeviceID: "d", BrokerURL: "mqtt://127.0.0.1:1"}, DataDir: dir})
	confirmAgentRestart(l, dir, "2")
	if len(l.journal) != 0 {
		t.Fatalf("journal %+v without a restart record", l.journal)
	}
}

// TestAgentJobAlreadyRunning: a job for the version this agent runs
// succeeds at once and touches nothing; without a repository a job for
// another version is rejected with the reason.
func TestAgentJobAlreadyRunning(t *testing.T) {
	dir := t.TempDir()
	restarted := false
	h := &otaJobs{deps: daemon.FleetDeps{DataDir: dir, AgentVersion: "2"},
		self: agentSelf{exe: func() (string, error) { return filepath.Join(dir, "edge-agent"), nil },
			restart: func(string) error { restarted = true; return nil }}}
	if err := h.runAgent(context.Background(), wire.Job{JobID: "j", Kind: wire.JobAgent, Version: "2"}, func(int) {}); err != nil || restarted {
		t.Fatalf("same version: %v (restarted %v)", err, restarted)
	}
	err := h.runAgent(context.Background(), wire.Job{JobID: "j", Kind: wire.JobAgent, Version: "3"}, func(int) {})
	je, ok := err.(*wire.JobError)
	if !ok || je.State != wire.JobRejected || !strings.Contains(je.Reason, "no update repository") || restarted {
		t.Fatalf("no repository: %v", err)
	}
}

// TestDownloadLog: a line at the start, at every further 10% (or every 5s
// of a slow download) and at the end, with bytes/total and the rate.
func TestDownloadLog(t *testing.T) {
	var buf bytes.Buffer
	d := newDownloadLog(slog.New(slog.NewTextHandler(&buf, nil)))
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	d.now = func() time.Time { return now }
	d.begin("edge-agent 2 linux/arm64")
	total := int64(10 << 20)
	for done := int64(0); done <= total; done += 256 << 10 {
		now = now.Add(100 * time.Millisecond)
		d.progress(done, total)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 11 {
		t.Fatalf("%d lines, want 11 (start, 10%%..90%%, complete):\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[0], "download started") || !strings.Contains(lines[10], "download complete") ||
		!strings.Contains(lines[10], `progress="10.0/10.0 MiB"`) || !strings.Contains(lines[10], `rate="2.4 MiB/s"`) {
		t.Fatalf("first/last lines:\n%s\n%s", lines[0], lines[10])
	}
	// A slow download still logs every progressEvery.
	buf.Reset()
	d.begin("m@2 model.tflite")
	d.progress(0, total)
	for i := 0; i < 12; i++ {
		now = now.Add(time.Second)
		d.progress(int64(i+1)*1024, total)
	}
	if n := strings.Count(buf.String(), "download progress"); n != 2 {
		t.Fatalf("%d progress lines in 12 s of a slow download, want 2:\n%s", n, buf.String())
	}
}

// buildFakeAgent builds ota/selfupdate/testdata/fakeagent (reports healthy with its
// version, or exits at start with mode crash).
func buildFakeAgent(t *testing.T, dir, version, mode string) string {
	t.Helper()
	out := filepath.Join(dir, "fakeagent-"+version+mode)
	ld := "-X main.version=" + version
	if mode != "" {
		ld += " -X main.mode=" + mode
	}
	gobin := "go"
	if p, err := exec.LookPath("go"); err == nil {
		gobin = p
	} else {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(gobin, "build", "-o", out, "-ldflags", ld, "../../ota/selfupdate/testdata/fakeagent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build fakeagent: %v\n%s", err, b)
	}
	return out
}

// TestAgentJobRollbackToKeptBinary: a job back to the version kept at
// <binary>.old needs no repository: the kept binary is health-checked,
// put back and restarted into (here a fake restart), and the binaries swap
// places. A kept binary that no longer matches its record is not used.
func TestAgentJobRollbackToKeptBinary(t *testing.T) {
	dir := t.TempDir()
	v1, v2 := buildFakeAgent(t, dir, "1", ""), buildFakeAgent(t, dir, "2", "")
	b1, _ := os.ReadFile(v1)
	b2, _ := os.ReadFile(v2)
	data := filepath.Join(dir, "data")
	exe := filepath.Join(dir, "bin", "edge-agent")
	os.MkdirAll(filepath.Dir(exe), 0o755)
	os.WriteFile(exe, b2, 0o755)
	os.WriteFile(exe+".old", b1, 0o755)
	sum := sha256.Sum256(b1)
	if err := writeJSONFile(filepath.Join(data, enroll.Dir, agentPreviousFile), agentPrevious{Version: "1", SHA256: hex.EncodeToString(sum[:])}); err != nil {
		t.Fatal(err)
	}
	var restartedInto string
	h := &otaJobs{deps: daemon.FleetDeps{DataDir: data, AgentVersion: "2"}, downloads: newDownloadLog(nil),
		self: agentSelf{exe: func() (string, error) { return exe, nil }, probeTimeout: time.Minute,
			restart: func(p string) error { restartedInto = p; return nil }}}
	var steps []int
	if err := h.runAgent(context.Background(), wire.Job{JobID: "a1-0002", Kind: wire.JobAgent, Version: "1"}, func(p int) { steps = append(steps, p) }); err != nil {
		t.Fatalf("rollback to the kept binary: %v", err)
	}
	if restartedInto != exe {
		t.Fatalf("restarted into %q, want %s", restartedInto, exe)
	}
	if got, _ := os.ReadFile(exe); !bytes.Equal(got, b1) {
		t.Fatal("the binary is not version 1 after the rollback")
	}
	if got, _ := os.ReadFile(exe + ".old"); !bytes.Equal(got, b2) {
		t.Fatal("version 2 is not kept as .old")
	}
	var rec agentRestart
	if err := readJSONFile(filepath.Join(data, enroll.Dir, agentRestartFile), &rec); err != nil || rec.Version != "1" || rec.From != "2" || rec.JobID != "a1-0002" {
		t.Fatalf("restart record %+v %v", rec, err)
	}
	var prev agentPrevious
	if err := readJSONFile(filepath.Join(data, enroll.Dir, agentPreviousFile), &prev); err != nil || prev.Version != "2" {
		t.Fatalf("previous record %+v %v", prev, err)
	}
	if len(steps) == 0 || steps[len(steps)-1] != 90 {
		t.Fatalf("progress %v", steps)
	}

	// The kept binary changed since it was recorded: not trusted, and
	// without a repository the job is rejected; nothing is touched.
	os.WriteFile(exe+".old", append(b2, 0), 0o755)
	h.deps.AgentVersion = "1"
	err := h.runAgent(context.Background(), wire.Job{JobID: "a1-0003", Kind: wire.JobAgent, Version: "2"}, func(int) {})
	if je, ok := err.(*wire.JobError); !ok || je.State != wire.JobRejected {
		t.Fatalf("tampered kept binary: %v", err)
	}
	if got, _ := os.ReadFile(exe); !bytes.Equal(got, b1) {
		t.Fatal("the binary changed")
	}
}

// TestAgentJobProbeFails: a kept binary that exits at start fails the
// health check: the running binary is put back, the job ends rolled_back
// with the reason, and there is no restart.
func TestAgentJobProbeFails(t *testing.T) {
	dir := t.TempDir()
	bad, good := buildFakeAgent(t, dir, "1", "crash"), buildFakeAgent(t, dir, "2", "")
	bb, _ := os.ReadFile(bad)
	bg, _ := os.ReadFile(good)
	data := filepath.Join(dir, "data")
	exe := filepath.Join(dir, "edge-agent")
	os.WriteFile(exe, bg, 0o755)
	os.WriteFile(exe+".old", bb, 0o755)
	sum := sha256.Sum256(bb)
	writeJSONFile(filepath.Join(data, enroll.Dir, agentPreviousFile), agentPrevious{Version: "1", SHA256: hex.EncodeToString(sum[:])})
	restarted := false
	h := &otaJobs{deps: daemon.FleetDeps{DataDir: data, AgentVersion: "2"},
		self: agentSelf{exe: func() (string, error) { return exe, nil }, probeTimeout: time.Minute,
			restart: func(string) error { restarted = true; return nil }}}
	err := h.runAgent(context.Background(), wire.Job{JobID: "a1-0004", Kind: wire.JobAgent, Version: "1"}, func(int) {})
	je, ok := err.(*wire.JobError)
	if !ok || je.State != wire.JobRolledBack || !strings.Contains(je.Reason, "simulated start-up failure") || restarted {
		t.Fatalf("crashing binary: %v (restarted %v)", err, restarted)
	}
	if got, _ := os.ReadFile(exe); !bytes.Equal(got, bg) {
		t.Fatal("the running binary was not put back")
	}
	if _, err := os.Stat(filepath.Join(data, enroll.Dir, agentRestartFile)); !os.IsNotExist(err) {
		t.Fatalf("restart record written for a failed update: %v", err)
	}
}
