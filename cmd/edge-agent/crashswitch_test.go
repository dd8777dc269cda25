package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCrashSwitchNotInReleaseBuild: the test-only crash switch is compiled
// only with its build tag; a release build (this test binary is built
// without the tag) has no way to fail on purpose.
func TestCrashSwitchNotInReleaseBuild(t *testing.T) {
	if beforeRun != nil {
		t.Fatal("beforeRun is set in a build without -tags edgeagent_crashswitch")
	}
	list := func(tags ...string) string {
		args := append([]string{"list"}, tags...)
		args = append(args, "-f", "{{join .GoFiles \" \"}}", ".")
		out, err := exec.Command("go", args...).Output()
		if err != nil {
			t.Fatalf("go list %v: %v", tags, err)
		}
		return string(out)
	}
	if files := list(); strings.Contains(files, "crashswitch.go") {
		t.Errorf("release build compiles crashswitch.go: %s", files)
	}
	if files := list("-tags", "edgeagent_crashswitch"); !strings.Contains(files, "crashswitch.go") {
		t.Errorf("the test build does not compile crashswitch.go: %s", files)
	}
}
