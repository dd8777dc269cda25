package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/apitype"
	"github.com/edgefleet/edgefleet/fleet/client"
	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/fleet/rollout"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// TestCheckAgentBinary: a file that is not a Go binary, or a Go binary that
// is not edge-agent, is refused with the reason (--force lets an operator
// override the build-info checks; a non-Go file then needs both --version
// and --arch).
func TestCheckAgentBinary(t *testing.T) {
	junk := filepath.Join(t.TempDir(), "junk")
	os.WriteFile(junk, []byte("#!/bin/sh\necho hi\n"), 0o755)
	self, err := os.Executable() // a Go binary: the test binary of package main
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		p     client.AgentPush
		force bool
		want  string
	}{
		{"not a Go binary", client.AgentPush{Path: junk, Version: "2", Platform: "linux/amd64"}, false, "not a Go executable"},
		{"not a Go binary, forced", client.AgentPush{Path: junk, Version: "2", Platform: "linux/amd64"}, true, ""},
		{"not a Go binary, forced without --arch", client.AgentPush{Path: junk, Version: "2"}, true, "not a Go executable"},
		{"not edge-agent", client.AgentPush{Path: self, Version: "2"}, false, "not edge-agent"},
		{"not edge-agent, forced", client.AgentPush{Path: self, Version: "2"}, true, ""},
		{"no version anywhere", client.AgentPush{Path: self}, true, "give --version"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := c.p
			err := checkAgentBinary(&p, c.force)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("%v, want %q", err, c.want)
			}
			if err == nil && p.Platform == "" {
				t.Fatal("platform not filled from the build information")
			}
		})
	}
}

// TestUploadProgressLines: without a terminal, one line per further 10% and
// one at the end, each with bytes/total.
func TestUploadProgressLines(t *testing.T) {
	var buf bytes.Buffer
	fn := uploadProgress(&buf, "upload edge-agent 2 linux/arm64", false)
	total := int64(4 << 20)
	for done := int64(32 << 10); done <= total; done += 32 << 10 {
		fn(done, total)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 11 || !strings.Contains(lines[10], "4.0/4.0 MiB (100%)") || !strings.Contains(lines[0], "upload edge-agent 2 linux/arm64: 0.0/4.0 MiB (0%)") {
		t.Fatalf("%d lines:\n%s", len(lines), buf.String())
	}
}

// TestRolloutCreateAgentFlags: --agent and --model exclude each other and
// one of them is needed.
func TestRolloutCreateAgentFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"rollout", "create", "--version", "2"}, "--model NAME"},
		{[]string{"rollout", "create", "--agent", "--model", "iris", "--version", "2"}, "not --model"},
	} {
		_, err := fleetctl(t, append([]string{"--server", "https://127.0.0.1:1", "--token", "x"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
}

// TestWatchAgentRollout: --watch of an agent rollout names it "edge-agent
// V", counts devices done/total, and says why it waits (the device's own
// words, then the fleet's).
func TestWatchAgentRollout(t *testing.T) {
	now := time.Date(2026, 12, 4, 5, 0, 0, 0, time.Local)
	r := &rollout.Rollout{
		Spec:  rollout.Spec{ID: "a1", Kind: rollout.KindAgent, Version: "2", Stages: []int{50, 100}},
		Phase: rollout.Running,
		Devices: map[string]*rollout.DeviceState{
			"dev-1": {JobState: wire.JobSucceeded, Reason: "edge-agent 2 running (was 1)"},
			"dev-2": {JobState: wire.JobInProgress, Reason: "device reported success; waiting for it to come back online running edge-agent 2", ConfirmBy: now.Add(time.Minute)},
		},
	}
	devs := map[string]apitype.DeviceView{
		"dev-1": {Device: registry.Device{ID: "dev-1", Presence: wire.Online, AgentVersion: "2"}},
		"dev-2": {Device: registry.Device{ID: "dev-2", Presence: wire.Online, AgentVersion: "1"}},
		"dev-3": {Device: registry.Device{ID: "dev-3", Presence: wire.Online, AgentVersion: "1"}},
	}
	line := watchLine(r, devs, now)
	for _, want := range []string{"devices 1/3", "waiting for dev-2 (job in_progress: device reported success; waiting for it to come back online running edge-agent 2, times out in 1m0s)"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
	r.Phase, r.Devices["dev-2"].JobState = rollout.Succeeded, wire.JobSucceeded
	out, _ := captureStdout(t, func() error { return finalState(r) })
	if !strings.Contains(out, "succeeded: edge-agent 2 on 2 devices") {
		t.Errorf("final line %q", out)
	}
}

func captureStdout(t *testing.T, fn func() error) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan []byte)
	go func() { b, _ := io.ReadAll(r); done <- b }()
	err = fn()
	w.Close()
	os.Stdout = old
	return string(<-done), err
}
