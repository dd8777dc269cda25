package main

import "testing"

// TestDefaultServerIsFleetServer: without --server or EDGEFLEET_SERVER,
// fleetctl talks to fleet-server's default address (127.0.0.1:8070), not to
// an edge-agent on 127.0.0.1:8080; the variable overrides it.
func TestDefaultServerIsFleetServer(t *testing.T) {
	t.Setenv("EDGEFLEET_SERVER", "")
	if got := newRootCmd().PersistentFlags().Lookup("server").DefValue; got != "https://127.0.0.1:8070" {
		t.Errorf("default --server %s, want https://127.0.0.1:8070", got)
	}
	t.Setenv("EDGEFLEET_SERVER", "https://fleet.example:9000")
	if got := newRootCmd().PersistentFlags().Lookup("server").DefValue; got != "https://fleet.example:9000" {
		t.Errorf("EDGEFLEET_SERVER: default --server %s", got)
	}
}
