package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/fleet/server"
)

// TestFlagsRefuseWeakSetups: a short --enroll-token and --insecure-no-auth
// on a non-loopback address are refused at start.
func TestFlagsRefuseWeakSetups(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--enroll-token", "demo-enroll-token"}, "--enroll-token is 17 characters, want at least 32"},
		{[]string{"--enroll-token", strings.Repeat("ab", 20)}, "distinct characters"},
		{[]string{"--insecure-no-auth", "--listen", "0.0.0.0:0"}, "not loopback"},
	} {
		cmd := newRootCmd()
		cmd.SetArgs(append([]string{"--data-dir", t.TempDir(), "--mqtt-listen", "127.0.0.1:0"}, tc.args...))
		err := cmd.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}

// TestPortTakenFailsFast: a taken --listen or --mqtt-listen address stops
// the server before anything starts, naming the flag; the control, free
// addresses, passes the check.
func TestPortTakenFailsFast(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	taken := busy.Addr().String()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", taken, "--mqtt-listen", "127.0.0.1:0"}, "--listen " + taken + " is not available"},
		{[]string{"--listen", "127.0.0.1:0", "--mqtt-listen", taken}, "--mqtt-listen " + taken + " is not available"},
	} {
		dir := t.TempDir()
		cmd := newRootCmd()
		cmd.SetArgs(append([]string{"--data-dir", dir}, tc.args...))
		err := cmd.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error containing %q", tc.args, err, tc.want)
		}
		if _, err := os.Stat(filepath.Join(dir, "admin.token")); err == nil {
			t.Errorf("%v: the server started (admin.token written) before the port check", tc.args)
		}
	}
	if err := checkPorts(server.Config{HTTPAddr: "127.0.0.1:0", EmbeddedAddr: "127.0.0.1:0"}); err != nil {
		t.Errorf("free ports refused: %v", err)
	}
}

// TestDefaultPorts: fleet-server's default listen address differs from
// edge-agent's 127.0.0.1:8080.
func TestDefaultPorts(t *testing.T) {
	if got := newRootCmd().Flags().Lookup("listen").DefValue; got != "127.0.0.1:8070" {
		t.Errorf("default --listen %s, want 127.0.0.1:8070", got)
	}
}

// TestGCPercentDefault: without GOGC in the environment fleet-server sets
// its garbage collector target to defaultGCPercent; an operator's GOGC
// (control) is left alone.
func TestGCPercentDefault(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for _, tc := range []struct {
		env  string
		want int
	}{{"", defaultGCPercent}, {"150", 100}} {
		debug.SetGCPercent(100)
		pct, set := tuneGC(func(k string) string {
			if k == "GOGC" {
				return tc.env
			}
			return ""
		})
		if got := debug.SetGCPercent(100); got != tc.want || set != (tc.env == "") || (set && pct != tc.want) {
			t.Errorf("GOGC=%q: percent in effect %d (reported %d, set %v), want %d", tc.env, got, pct, set, tc.want)
		}
	}
}
