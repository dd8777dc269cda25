package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkJobQueue measures how fast one worker runs jobs (64 KiB request
// payloads, an instant run function) from a queue holding 50 or 500 jobs.
// Each round opens a fresh queue, fills it to the depth (untimed) and times
// the worker through the first min(depth, jobs left) of them; b.N counts
// jobs. It reports jobs/s: a queue whose cost per job grows with the number
// of queued or finished jobs shows a lower figure at 500. Use e.g.
// -benchtime 500x so the 500 case drains a full queue.
func BenchmarkJobQueue(b *testing.B) {
	payload := json.RawMessage(`{"instances":[[` + strings.Repeat("0.123456,", 64<<10/9) + `0]]}`)
	run := func(ctx context.Context, model string, req json.RawMessage) (json.RawMessage, error) {
		return json.RawMessage(`{"predictions":[[1]]}`), nil
	}
	for _, depth := range []int{50, 500} {
		b.Run(fmt.Sprintf("queued=%d", depth), func(b *testing.B) {
			b.StopTimer()
			var total time.Duration
			for done := 0; done < b.N; {
				q, err := Open(b.TempDir(), run, Options{Workers: 1, MaxPending: depth})
				if err != nil {
					b.Fatal(err)
				}
				ids := make([]string, depth)
				for k := range ids {
					j, err := q.Submit("m", payload, "")
					if err != nil {
						b.Fatal(err)
					}
					ids[k] = j.ID
				}
				n := min(depth, b.N-done)
				ctx, cancel := context.WithCancel(context.Background())
				b.StartTimer()
				start := time.Now()
				q.Start(ctx)
				for { // one worker runs jobs in id order: the n-th done means all n are
					j, err := q.Get(ids[n-1])
					if err != nil {
						b.Fatal(err)
					}
					if j.Status == Succeeded {
						break
					}
					time.Sleep(200 * time.Microsecond) // polling interval
				}
				total += time.Since(start)
				b.StopTimer()
				cancel()
				q.Close()
				done += n
			}
			b.ReportMetric(float64(b.N)/total.Seconds(), "jobs/s")
		})
	}
}
