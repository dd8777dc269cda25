package batch

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/agent/predict"
)

const killEnv = "BATCH_KILL_CHILD"

// slowEcho is echo with a delay per request, so kills land mid-run.
type slowEcho struct{ echo }

func (s *slowEcho) Predict(ctx context.Context, model string, req predict.Request, partial bool) (*predict.Response, error) {
	time.Sleep(5 * time.Millisecond)
	return s.echo.Predict(ctx, model, req, partial)
}

// TestBatchChild is the child of TestKillDuringBatch.
func TestBatchChild(t *testing.T) {
	args := os.Getenv(killEnv)
	if args == "" {
		t.Skip("child process of TestKillDuringBatch only")
	}
	in, out, _ := strings.Cut(args, "|")
	if _, err := Run(context.Background(), &slowEcho{}, Spec{Model: "m", Input: in, Output: out, Chunk: 4}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}

// TestKillDuringBatch SIGKILLs a child process running a batch, restarting
// it each time, until the run finishes: the output holds every record
// exactly once, in order. The kill points are progress-driven, not timed:
// each restart is killed once its checkpoint shows a seeded number of
// further records done, so the number of kills and where they land do not
// depend on how fast the machine starts or runs the child.
func TestKillDuringBatch(t *testing.T) {
	if os.Getenv(killEnv) != "" {
		t.Skip("in child")
	}
	const n = 400
	in := writeNDJSON(t, n)
	out := filepath.Join(t.TempDir(), "out.ndjson")
	rng := rand.New(rand.NewPCG(3, 4))
	kills, lastDone := 0, 0
	for attempt := 0; attempt < 200; attempt++ {
		// Kill this run after 8..40 more records (2..10 chunks of 4).
		target := lastDone + 8 + rng.IntN(33)
		cmd := exec.Command(os.Args[0], "-test.run=^TestBatchChild$")
		cmd.Env = append(os.Environ(), killEnv+"="+in+"|"+out)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		err, exited := waitProgress(t, out, target, done)
		if exited {
			if err != nil {
				t.Fatalf("child failed: %v", err)
			}
			cp, err := ReadCheckpoint(out)
			if err != nil || !cp.Finished {
				t.Fatalf("child exited without finishing: %+v %v", cp, err)
			}
			checkExactlyOnce(t, readLines(t, out), n)
			// Every run before the last was killed after at least 8 new
			// records, so a 400-record run needs at least 9 of them.
			if kills < 9 {
				t.Fatalf("only %d kills before the run finished: the test proves little", kills)
			}
			t.Logf("finished after %d kills", kills)
			return
		}
		cmd.Process.Kill()
		<-done
		kills++
		cp, err := ReadCheckpoint(out)
		if err != nil {
			t.Fatalf("kill %d: checkpoint unreadable: %v", kills, err)
		}
		if cp.Done < target {
			t.Fatalf("kill %d: checkpoint went back to %d records, saw %d", kills, cp.Done, target)
		}
		lastDone = cp.Done
	}
	t.Fatal("batch never finished after 200 restarts")
}

// waitProgress polls out's checkpoint until it shows at least target
// records done (exited=false) or the child exits (exited=true, with its
// error). A child making no progress for a minute fails the test.
func waitProgress(t *testing.T, out string, target int, done <-chan error) (error, bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			return err, true
		default:
		}
		if cp, err := ReadCheckpoint(out); err == nil && cp.Done >= target {
			return nil, false
		}
		time.Sleep(2 * time.Millisecond) // polling interval, not synchronisation
	}
	t.Fatalf("child made no progress to %d records within a minute", target)
	return nil, false
}
