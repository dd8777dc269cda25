package fleetlink

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/agent/daemon"
	"github.com/edgefleet/edgefleet/fleet/wire"
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
			l, err := New(Config{Enrollment: Enrollment{DeviceID: "d", BrokerURL: "mqtt://127.0.0.1:1"}, DataDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, Dir, agentRestartFile)
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
			l2, err := New(Config{Enrollment: Enrollment{DeviceID: "d", BrokerURL: "mqtt://127.0.0.1:1"}, DataDir: dir})
			if err != nil || l2.journal["a1-0001"].State != c.state {
				t.Fatalf("journal after restart: %+v %v", l2.journal, err)
			}
		})
	}
	// Control: no record, no job touched.
	dir := t.TempDir()
	l, _ := New(Config{Enrollment: Enrollment{DeviceID: "d", BrokerURL: "mqtt://127.0.0.1:1"}, DataDir: dir})
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
