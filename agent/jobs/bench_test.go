package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkJobQueue measures how fast one worker drains jobs (64 KiB
// request payloads, an instant run function) while 50 or 500 jobs are
// queued: each iteration fills the queue to the depth and times until all
// are finished. It reports jobs/s; a queue whose cost per job grows with
// the number of queued or finished jobs shows a lower figure at 500.
func BenchmarkJobQueue(b *testing.B) {
	payload := json.RawMessage(`{"instances":[[` + strings.Repeat("0.123456,", 64<<10/9) + `0]]}`)
	run := func(ctx context.Context, model string, req json.RawMessage) (json.RawMessage, error) {
		return json.RawMessage(`{"predictions":[[1]]}`), nil
	}
	for _, depth := range []int{50, 500} {
		b.Run(fmt.Sprintf("queued=%d", depth), func(b *testing.B) {
			var total time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
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
				ctx, cancel := context.WithCancel(context.Background())
				b.StartTimer()
				start := time.Now()
				q.Start(ctx)
				for {
					j, err := q.Get(ids[depth-1])
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
			}
			b.ReportMetric(float64(depth*b.N)/total.Seconds(), "jobs/s")
		})
	}
}
