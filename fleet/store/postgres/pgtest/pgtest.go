// Package pgtest starts a real PostgreSQL server (pgserver) for a test.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/edgefleet/edgefleet/fleet/store/postgres/pgserver"
)

// Start runs a real PostgreSQL server (Run) in a temp dir for the test,
// stopped at its cleanup, and returns its DSN. It skips only when the
// binaries are absent and CI is not set.
func Start(t testing.TB) string {
	t.Helper()
	return StartServer(t).DSN
}

// StartServer is Start returning the server itself (its postmaster PID,
// for tests that make it hang with Suspend).
func StartServer(t testing.TB) *pgserver.Server {
	t.Helper()
	s, err := pgserver.Run(context.Background(), t.TempDir())
	if errors.Is(err, pgserver.ErrNoBinaries) && os.Getenv("CI") == "" {
		t.Skip(err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Suspend stops the server and every backend process with SIGSTOP (a hung
// database: connections stay open, nothing answers) and returns the
// function that resumes them, also run at the test's cleanup.
func Suspend(t testing.TB, s *pgserver.Server) (resume func()) {
	t.Helper()
	pids := append([]int{s.PID}, children(s.PID)...)
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatalf("suspend postgres process %d: %v", pid, err)
		}
	}
	var once sync.Once
	resume = func() {
		once.Do(func() {
			for _, pid := range pids {
				syscall.Kill(pid, syscall.SIGCONT)
			}
		})
	}
	t.Cleanup(resume)
	return resume
}

// children lists the processes whose parent is pid (/proc).
func children(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, p)
		}
	}
	return out
}
