package postgres_test

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

	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/fleet/store/postgres"
	"github.com/edgefleet/edgefleet/fleet/store/storetest"
)

// startPostgres runs a real PostgreSQL server (Debian's postgresql package)
// in a temp dir on a free loopback port, as the unprivileged "postgres" user
// when the test runs as root, and returns its DSN. It skips only when the
// binaries are absent and CI is not set.
func startPostgres(t *testing.T) string {
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
		// The temp dir's parents must be reachable by that user.
		for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
			if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 && d == dir {
				os.Chmod(d, 0o755)
			}
			if d == filepath.Dir(dir) {
				os.Chmod(d, 0o755)
			}
		}
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

func TestPostgresConformance(t *testing.T) {
	dsn := startPostgres(t)
	n := 0
	storetest.Run(t, func(t *testing.T) store.Store {
		// A fresh, empty store per subtest: its own database.
		n++
		ctx := context.Background()
		admin, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		db := fmt.Sprintf("t%d", n)
		if _, err := admin.Pool().Exec(ctx, "CREATE DATABASE "+db); err != nil {
			t.Fatal(err)
		}
		admin.Close()
		s, err := postgres.Open(ctx, dsn[:len(dsn)-len("postgres?sslmode=disable")]+db+"?sslmode=disable")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestPostgresConcurrentUpdates: serializable read-modify-write counters
// from many goroutines lose no increment (conflicts are retried).
func TestPostgresConcurrentUpdates(t *testing.T) {
	dsn := startPostgres(t)
	ctx := context.Background()
	s, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				err := s.Update(ctx, func(tx store.Tx) error {
					n := 0
					if v, err := tx.Get("c", "n"); err == nil {
						n, _ = strconv.Atoi(string(v))
					}
					return tx.Put("c", "n", []byte(strconv.Itoa(n+1)))
				})
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	s.View(ctx, func(tx store.Tx) error {
		v, err := tx.Get("c", "n")
		if err != nil || string(v) != "80" {
			t.Errorf("counter = %q, %v; want 80", v, err)
		}
		return nil
	})
}

// TestLeaderElection: of two replicas only one leads; the standby takes
// over when the leader's session dies (backend terminated, as when its
// process is killed) — the control is that it did not lead before.
func TestLeaderElection(t *testing.T) {
	dsn := startPostgres(t)
	ctx := context.Background()
	a, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	la, lb := postgres.NewLeader(a, 42), postgres.NewLeader(b, 42)
	defer la.Resign(ctx) // before the pools close: a held lock keeps a connection
	defer lb.Resign(ctx)
	if ok, err := la.Leading(ctx); !ok || err != nil {
		t.Fatalf("a: leading %v, %v; want the lock", ok, err)
	}
	if ok, err := lb.Leading(ctx); ok || err != nil {
		t.Fatalf("b: leading %v, %v while a holds the lock", ok, err)
	}
	if ok, _ := la.Leading(ctx); !ok {
		t.Fatal("a lost the lock without reason")
	}
	if _, err := b.Pool().Exec(ctx, `SELECT pg_terminate_backend($1)`, int64(la.BackendPID())); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := lb.Leading(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b never took over after a's session died")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ok, _ := la.Leading(ctx); ok {
		t.Fatal("a still believes it leads after its session died")
	}
	lb.Resign(ctx)
	if ok, _ := la.Leading(ctx); !ok {
		t.Fatal("a did not take the lock back after b resigned")
	}
}
