// Package selfexec knows the running edge-agent binary: the platform it was
// built for, its real path on disk, and how to replace the process with a
// (new) binary at that path. Both `edge-agent update agent` (agent/update)
// and fleet-driven agent updates (agent/fleetlink) use it.
package selfexec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
)

// ErrRestartNeeded means this platform cannot exec a binary in place; the
// service manager must start the agent again.
var ErrRestartNeeded = errors.New("restart edge-agent to run the installed binary")

// Platform returns GOOS, GOARCH and GOARM of this binary (GOARM from the
// build settings, "7" if arm and unrecorded).
func Platform() (goos, goarch, goarm string) {
	goos, goarch = runtime.GOOS, runtime.GOARCH
	if goarch != "arm" {
		return goos, goarch, ""
	}
	goarm = "7"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "GOARM" && s.Value != "" {
				goarm, _, _ = strings.Cut(s.Value, ",") // "7,softfloat"
			}
		}
	}
	return goos, goarch, goarm
}

// PlatformName is "linux/amd64", or "linux/arm/v7" on arm: the form
// `fleetctl agents push --arch` takes.
func PlatformName(goos, goarch, goarm string) string {
	s := goos + "/" + goarch
	if goarm != "" {
		s += "/v" + goarm
	}
	return s
}

// Executable returns the path of this binary with symlinks resolved, so
// that a self-update replaces the real file, not a link to it.
func Executable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find executable: %w", err)
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	return exe, nil
}

// Reexec replaces this process with exe, keeping arguments and
// environment (Unix); it does not return when it succeeds. Files opened by
// Go are close-on-exec, so the new process finds the data dir's locks free.
// Elsewhere it returns an error wrapping ErrRestartNeeded.
func Reexec(exe string) error { return reexec(exe) }
