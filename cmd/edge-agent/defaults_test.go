package main

import "testing"

// TestDefaultListen: edge-agent run serves on 127.0.0.1:8080 by default,
// distinct from fleet-server's 127.0.0.1:8070 so both run on one host.
func TestDefaultListen(t *testing.T) {
	if got := newRunCmd().Flags().Lookup("listen").DefValue; got != "127.0.0.1:8080" {
		t.Errorf("default --listen %s, want 127.0.0.1:8080", got)
	}
}
