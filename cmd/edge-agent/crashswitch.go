//go:build edgeagent_crashswitch

package main

import (
	"fmt"
	"os"
)

// A TEST-ONLY build of edge-agent (go build -tags edgeagent_crashswitch)
// exits with status 3 at the start of `edge-agent run`, like a broken
// release, so the self-update tests (agent/update, cmd/fleetctl) can show
// it is rolled back. Release builds do not contain this file: nothing in
// them can make the agent fail on purpose.
func init() {
	beforeRun = func() {
		fmt.Fprintln(os.Stderr, "edge-agent: simulated start-up failure (test build: -tags edgeagent_crashswitch)")
		os.Exit(3)
	}
}
