package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/edgefleet/edgefleet/fleet/store"
)

// rowTracer records the rows each SELECT returned (its command tag).
type rowTracer struct {
	mu   sync.Mutex
	rows map[string]int64 // statement → rows returned, summed
}

type traceKey struct{}

func (r *rowTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, traceKey{}, d.SQL)
}

func (r *rowTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	sql, _ := ctx.Value(traceKey{}).(string)
	if !d.CommandTag.Select() {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows[sql] += d.CommandTag.RowsAffected()
}

func (r *rowTracer) total() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for _, v := range r.rows {
		n += v
	}
	return n
}

func (r *rowTracer) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.rows)
}

// TestListReadsOnlyThePrefix: List (a device's jobs) reads from PostgreSQL
// only the rows with the prefix — not every row after it to the end of the
// bucket — in the key-value table and in the telemetry table, including
// prefixes ending in a multi-byte rune. Control: ListFrom still reads to
// the end.
func TestListReadsOnlyThePrefix(t *testing.T) {
	ctx := context.Background()
	tr := &rowTracer{rows: map[string]int64{}}
	s, _ := openTraced(t, tr)
	var err error
	const devices, jobs = 200, 3
	telKey := func(i, j int) string {
		return fmt.Sprintf("%020d/dev-%03d/%d", 1_700_000_000_000_000_000+int64(i*10+j), i, j)
	}
	err = s.Update(ctx, func(tx store.Tx) error {
		for i := range devices {
			for j := range jobs {
				for _, k := range []string{fmt.Sprintf("dev-%03d/job-%d", i, j), fmt.Sprintf("é%03d€/%d", i, j)} {
					if err := tx.Put("jobs", k, []byte("v")); err != nil {
						return err
					}
				}
				if err := tx.Put(TelemetryBucket, telKey(i, j), []byte("r")); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, bucket, prefix string
		from                 bool
		want, maxRead        int64
	}{
		{name: "first device's jobs", bucket: "jobs", prefix: "dev-000/", want: jobs, maxRead: jobs},
		{name: "middle device's jobs", bucket: "jobs", prefix: "dev-100/", want: jobs, maxRead: jobs},
		{name: "multi-byte prefix", bucket: "jobs", prefix: "é100€/", want: jobs, maxRead: jobs},
		{name: "prefix ending in a multi-byte rune", bucket: "jobs", prefix: "é100€", want: jobs, maxRead: jobs},
		{name: "telemetry prefix", bucket: TelemetryBucket, prefix: fmt.Sprintf("%020d", int64(1_700_000_000_000_000_000+1000))[:19], want: jobs, maxRead: jobs},
		{name: "control: ListFrom reads to the end", bucket: "jobs", prefix: "dev-100/", from: true,
			want: devices*jobs*2 - 100*jobs, maxRead: devices*jobs*2 - 100*jobs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr.reset()
			var got int64
			err := s.View(ctx, func(tx store.Tx) error {
				fn := func(k string, _ []byte) error {
					if !tc.from && !strings.HasPrefix(k, tc.prefix) {
						return fmt.Errorf("key %q without the prefix %q", k, tc.prefix)
					}
					got++
					return nil
				}
				if tc.from {
					return tx.ListFrom(tc.bucket, tc.prefix, fn)
				}
				return tx.List(tc.bucket, tc.prefix, fn)
			})
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("listed %d keys, want %d", got, tc.want)
			}
			if read := tr.total(); read > tc.maxRead {
				t.Errorf("PostgreSQL returned %d rows for %d keys (want at most %d): %v", read, got, tc.maxRead, tr.rows)
			}
		})
	}
}

// TestPrefixEnd: the successor bound of List's scan.
func TestPrefixEnd(t *testing.T) {
	for _, tc := range []struct {
		prefix, want string
		ok           bool
	}{
		{"dev-1/", "dev-10", true},
		{"a", "b", true},
		{"\x7f", "\u0080", true},
		{"é", "ê", true},
		{"x\U0010FFFF", "y", true},
		{"x\U0010FFFF\U0010FFFF", "y", true},
		{"x\ud7ff", "x\ue000", true},
		{"", "", false},
		{"\U0010FFFF", "", false},
		{"x\xff", "", false},
	} {
		end, ok := prefixEnd(tc.prefix)
		if end != tc.want || ok != tc.ok {
			t.Errorf("prefixEnd(%q) = %q, %v; want %q, %v", tc.prefix, end, ok, tc.want, tc.ok)
		}
		if ok && !(tc.prefix < end) {
			t.Errorf("prefixEnd(%q) = %q is not above the prefix", tc.prefix, end)
		}
	}
}
