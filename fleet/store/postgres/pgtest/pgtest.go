// Package pgtest starts a real PostgreSQL server for tests: Debian's
// postgresql package, a fresh cluster in a temp dir, a free loopback port,
// run as the unprivileged "postgres" user when the test runs as root.
package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/store/postgres"
)

// Start runs a real PostgreSQL server (Debian's postgresql package)
// in a temp dir on a free loopback port, as the unprivileged "postgres" user
// when the test runs as root, and returns its DSN. It skips only when the
// binaries are absent and CI is not set.
func Start(t testing.TB) string {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("PostgreSQL binaries not found under /usr/lib/postgresql (run build/setup-deps.sh)")
		}
		t.Skip("PostgreSQL binaries absent (/usr/lib/postgresql/*/bin); run build/setup-deps.sh")
	}
	bin := filepath.Dir(bins[len(bins)-1])
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	var wrap []string
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs the unprivileged postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		// The temp dir and its parent (t.TempDir's per-test dir, mode 0700)
		// must be reachable by that user.
		os.Chmod(filepath.Dir(dir), 0o755)
		os.Chmod(dir, 0o755)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		wrap = []string{"setpriv", "--reuid=" + u.Uid, "--regid=" + u.Gid, "--init-groups", "--"}
	}
	run := func(name string, args ...string) *exec.Cmd {
		full := append(append([]string{}, wrap...), append([]string{filepath.Join(bin, name)}, args...)...)
		return exec.Command(full[0], full[1:]...)
	}
	if out, err := run("initdb", "-D", data, "-U", "fleet", "--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := run("postgres", "-D", data, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-k", dir, "-c", "fsync=off")
	logf, _ := os.Create(filepath.Join(dir, "postgres.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			cmd.Process.Signal(os.Interrupt) // fast shutdown
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				<-done
			}
			logf.Close()
		})
	})
	dsn := fmt.Sprintf("postgres://fleet@127.0.0.1:%d/postgres?sslmode=disable", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := postgres.Open(ctx, dsn)
		cancel()
		if err == nil {
			s.Close()
			return dsn
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
			t.Fatalf("postgres not ready after 60 s: %v\n%s", err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
