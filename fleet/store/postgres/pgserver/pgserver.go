// Package pgserver starts a throwaway PostgreSQL server for tests and load
// runs: Debian's postgresql package, a fresh cluster in a directory, a free
// loopback port, run as the unprivileged "postgres" user when the caller runs
// as root. It links no database driver (readiness is pg_isready), so
// commands such as fleetctl simulate can use it without the store engines.
package pgserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrNoBinaries reports that Debian's PostgreSQL binaries are not installed.
var ErrNoBinaries = errors.New("PostgreSQL binaries not found under /usr/lib/postgresql (run build/setup-deps.sh)")

// SettingsEnv names the environment variable with extra server settings,
// space-separated name=value (each passed as postgres -c name=value), e.g.
// EDGEFLEET_PG_SETTINGS=shared_preload_libraries=pg_stat_statements to
// profile a load run's statements (CREATE EXTENSION pg_stat_statements,
// then SELECT ... FROM pg_stat_statements).
const SettingsEnv = "EDGEFLEET_PG_SETTINGS"

// Server is a running throwaway PostgreSQL server.
type Server struct {
	// DSN connects as the superuser "fleet" to database "postgres".
	DSN string
	// PID is the postmaster's process id.
	PID  int
	cmd  *exec.Cmd
	logf *os.File
	once sync.Once
}

// Run initialises a cluster in dir (which must exist and be empty, or
// not exist), starts PostgreSQL on a free loopback port with fsync off
// (throwaway data) and waits until it accepts connections. Its log is
// dir/postgres.log. Stop it with Stop.
func Run(ctx context.Context, dir string) (*Server, error) {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		return nil, ErrNoBinaries
	}
	bin := filepath.Dir(bins[len(bins)-1])
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("postgres dir: %w", err)
	}
	data := filepath.Join(dir, "data")
	var wrap []string
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the unprivileged postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		// The dir and its parent (e.g. t.TempDir's per-test dir, mode
		// 0700) must be reachable by that user.
		os.Chmod(filepath.Dir(dir), 0o755)
		os.Chmod(dir, 0o755)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, fmt.Errorf("postgres dir: %w", err)
		}
		wrap = []string{"setpriv", "--reuid=" + u.Uid, "--regid=" + u.Gid, "--init-groups", "--"}
	}
	run := func(name string, args ...string) *exec.Cmd {
		full := append(append([]string{}, wrap...), append([]string{filepath.Join(bin, name)}, args...)...)
		return exec.Command(full[0], full[1:]...)
	}
	if out, err := run("initdb", "-D", data, "-U", "fleet", "--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("postgres port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	args := []string{"-D", data, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-k", dir, "-c", "fsync=off", "-c", "max_connections=200"}
	for _, kv := range strings.Fields(os.Getenv(SettingsEnv)) {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return nil, fmt.Errorf("%s: %q: want space-separated name=value PostgreSQL settings", SettingsEnv, kv)
		}
		args = append(args, "-c", kv)
	}
	s := &Server{}
	s.cmd = run("postgres", args...)
	s.logf, _ = os.Create(filepath.Join(dir, "postgres.log"))
	s.cmd.Stdout, s.cmd.Stderr = s.logf, s.logf
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	s.PID = s.cmd.Process.Pid
	s.DSN = fmt.Sprintf("postgres://fleet@127.0.0.1:%d/postgres?sslmode=disable", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		// pg_isready exits 0 once the server accepts connections.
		octx, cancel := context.WithTimeout(ctx, 5*time.Second)
		out, err := exec.CommandContext(octx, filepath.Join(bin, "pg_isready"), "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "fleet", "-d", "postgres").CombinedOutput()
		cancel()
		if err == nil {
			return s, nil
		}
		err = fmt.Errorf("%w: %s", err, out)
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.Stop()
			b, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
			return nil, fmt.Errorf("postgres not ready after 60 s: %w\n%s", err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop shuts the server down (fast shutdown, killed after 30 s).
func (s *Server) Stop() {
	s.once.Do(func() {
		s.cmd.Process.Signal(os.Interrupt) // fast shutdown
		done := make(chan struct{})
		go func() { s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			s.cmd.Process.Kill()
			<-done
		}
		s.logf.Close()
	})
}
