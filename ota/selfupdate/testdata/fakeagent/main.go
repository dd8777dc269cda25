// Command fakeagent stands in for edge-agent in the self-update tests: it
// prints its version with --version and otherwise reports healthy through
// selfupdate.ReportHealthy and idles. Built with -ldflags "-X main.mode=crash" it
// exits with status 3 at start, like a broken release.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/edgefleet/edgefleet/ota/selfupdate"
)

var (
	version = "dev"
	mode    = "ok"
)

func main() {
	if mode == "crash" {
		fmt.Fprintln(os.Stderr, "fakeagent: simulated start-up failure")
		os.Exit(3)
	}
	if len(os.Args) > 1 && os.Args[1] == "--version" {
		fmt.Println(version)
		return
	}
	if err := selfupdate.ReportHealthy(version); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	time.Sleep(time.Minute)
}
