package jobs

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const diskFullEnv = "JOBS_DISKFULL_DIR"

// logCapture is a slog handler that forwards error messages to a channel.
type logCapture struct{ msgs chan string }

func (h logCapture) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h logCapture) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.msgs <- r.Message:
	default:
	}
	return nil
}
func (h logCapture) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h logCapture) WithGroup(string) slog.Handler      { return h }

// waitLog waits for n error messages containing substr.
func waitLog(t *testing.T, msgs chan string, substr string, n int) {
	t.Helper()
	deadline := time.After(time.Minute)
	for n > 0 {
		select {
		case m := <-msgs:
			if strings.Contains(m, substr) {
				n--
			}
		case <-deadline:
			t.Fatalf("no log %q within a minute", substr)
		}
	}
}

// setFileLimit sets this process's RLIMIT_FSIZE soft limit: every write
// past byte n of any file fails with EFBIG, as on a full disk.
func setFileLimit(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	lim.Cur = n
	if n > lim.Max {
		lim.Cur = lim.Max
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
}

// TestDiskFullChild is the child of TestDiskFull: it runs in its own
// process because it lowers RLIMIT_FSIZE.
func TestDiskFullChild(t *testing.T) {
	dir := os.Getenv(diskFullEnv)
	if dir == "" {
		t.Skip("child process of TestDiskFull only")
	}
	signal.Ignore(syscall.SIGXFSZ) // writes fail with EFBIG instead of killing us
	var runs atomic.Int32
	big := json.RawMessage(`"` + strings.Repeat("x", 64<<10) + `"`)
	run := func(ctx context.Context, model string, req json.RawMessage) (json.RawMessage, error) {
		runs.Add(1)
		if model == "fill-disk" {
			setFileLimit(t, 1) // the disk fills while the job runs
			return big, nil
		}
		return req, nil
	}
	msgs := make(chan string, 1000)
	opt := Options{Workers: 1, StorageBackoff: 5 * time.Millisecond, Log: slog.New(logCapture{msgs})}
	q, err := Open(dir, run, opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := q.Submit("m", json.RawMessage(`[1]`), "")
	if err != nil {
		t.Fatal(err)
	}

	// 1. The disk is full with a job queued: claiming fails, the worker
	// backs off and never runs the job it could not mark running.
	setFileLimit(t, 1)
	q.Start(ctx)
	waitLog(t, msgs, "", 2) // two failed storage attempts
	if n := runs.Load(); n != 0 {
		t.Fatalf("job ran %d time(s) although claiming it failed", n)
	}
	if j, err := q.Get(a.ID); err != nil || j.Status != Queued {
		t.Fatalf("job after failed claims: %+v %v, want queued", j, err)
	}
	if _, err := q.Submit("m", json.RawMessage(`[2]`), ""); err == nil {
		t.Fatal("submit succeeded on a full disk")
	}
	setFileLimit(t, ^uint64(0))
	ja := waitFor(t, q, a.ID, func(j Job) bool { return j.Status == Succeeded })
	if ja.Attempts != 1 || runs.Load() != 1 || string(ja.Result) != `[1]` {
		t.Fatalf("after the disk freed: %+v, %d runs", ja, runs.Load())
	}

	for len(msgs) > 0 { // errors logged before the disk freed
		<-msgs
	}

	// 2. The disk fills while a job runs: its result cannot be written.
	// The job is reported finished (from memory), not left running, and
	// no other job starts until the result is written.
	b, err := q.Submit("fill-disk", json.RawMessage(`[3]`), "")
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, msgs, "", 1)
	jb, err := q.Get(b.ID)
	if err != nil || jb.Status != Succeeded || len(jb.Result) != len(big) {
		t.Fatalf("job whose result write failed: status %q, %d result bytes, %v; want succeeded with the result", jb.Status, len(jb.Result), err)
	}
	waitLog(t, msgs, "", 2) // the worker retries the write, backing off
	if n := runs.Load(); n != 2 {
		t.Fatalf("%d runs, want 2", n)
	}
	setFileLimit(t, ^uint64(0))
	cancel()
	if err := q.Close(); err != nil {
		t.Fatalf("close after the disk freed: %v", err)
	}
	// After a restart the result is on disk and nothing runs again.
	q, err = Open(dir, run, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	jb, err = q.Get(b.ID)
	if err != nil || jb.Status != Succeeded || len(jb.Result) != len(big) || jb.Attempts != 1 {
		t.Fatalf("after restart: status %q attempts %d, %d result bytes, %v", jb.Status, jb.Attempts, len(jb.Result), err)
	}
	if q.pending != 0 {
		t.Fatalf("%d jobs pending after restart, want 0", q.pending)
	}
}

// TestDiskFull runs TestDiskFullChild in a child process whose file size
// limit (RLIMIT_FSIZE) makes every database write fail with EFBIG, like a
// full disk, then lifts it.
func TestDiskFull(t *testing.T) {
	if os.Getenv(diskFullEnv) != "" {
		t.Skip("in child")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDiskFullChild$", "-test.v")
	cmd.Env = append(os.Environ(), diskFullEnv+"="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestDiskFullChild") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
