package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// TestPprofLoopbackOnly: the unauthenticated profiling endpoints of
// nats-node --pprof-listen refuse any address but loopback; on loopback
// they serve.
func TestPprofLoopbackOnly(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, tc := range []struct{ addr, wantErr string }{
		{"0.0.0.0:0", "only a loopback address"},
		{":0", "only a loopback address"},
		{"[::]:0", "only a loopback address"},
		{"192.0.2.1:6060", "only a loopback address"},
		{"example.com:6060", "only a loopback address"},
		{"127.0.0.1", "want host:port"},
	} {
		if _, err := servePprof(ctx, tc.addr, log); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%q: error %v, want containing %q", tc.addr, err, tc.wantErr)
		}
	}
	addr, err := servePprof(ctx, "127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("control: /debug/pprof/ on loopback: HTTP %d", resp.StatusCode)
	}
}
