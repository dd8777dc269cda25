package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/fleet/store/postgres/pgserver"
	"github.com/edgefleet/edgefleet/fleet/store/postgres/pgtest"
)

// hangGuard is how long a test waits for an Update that should fail
// within its batch timeout (1 s here) before calling it
// hung: generous for a slow CI machine, far below "until the connection
// breaks" (never, on a stopped server).
const hangGuard = time.Minute

// updateWithin runs Update and returns its error, or fails the test if it
// has not returned after hangGuard.
func updateWithin(t *testing.T, s *Store, fn func(store.Tx) error) error {
	t.Helper()
	res := make(chan error, 1)
	go func() { res <- s.Update(context.Background(), fn) }()
	select {
	case err := <-res:
		return err
	case <-time.After(hangGuard):
		t.Fatalf("Update still blocked after %s: no batch timeout", hangGuard)
		return nil
	}
}

func put(bucket, key string) func(store.Tx) error {
	return func(tx store.Tx) error { return tx.Put(bucket, key, []byte("v")) }
}

// TestBatchTimeout: an Update against a database that does not answer —
// the server and its backends stopped (SIGSTOP), or a row lock another
// session holds — fails with ErrBatchTimeout, naming the timeout, instead
// of waiting for the connection to break; other Updates go on (the locked
// case: the session whose statement the timeout cut gives up the writer
// lock while the other session still holds the row); once the database answers again, Updates succeed. Control:
// the same store, with the same 1 s timeout, commits while the database
// answers.
func TestBatchTimeout(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// hang makes the database stop answering for a write of g/k and
		// returns what ends the hang.
		hang func(t *testing.T, srv *pgserver.Server, s *Store) (end func())
		// other is an Update that must succeed while the hang lasts (nil:
		// none can, the whole server is stopped).
		other func(store.Tx) error
	}{
		{name: "server stopped", hang: func(t *testing.T, srv *pgserver.Server, _ *Store) func() {
			return pgtest.Suspend(t, srv)
		}},
		{name: "row locked by another transaction", other: put("g", "other"),
			hang: func(t *testing.T, srv *pgserver.Server, _ *Store) func() {
				conn, err := pgx.Connect(ctx, srv.DSN)
				if err != nil {
					t.Fatal(err)
				}
				tx, err := conn.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tx.Exec(ctx, `SELECT 1 FROM edgefleet_kv WHERE bucket = 'g' AND key = 'k' FOR UPDATE`); err != nil {
					t.Fatal(err)
				}
				return func() { tx.Rollback(ctx); conn.Close(ctx) }
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := pgtest.StartServer(t)
			s, err := Open(ctx, srv.DSN+"&"+BatchTimeoutParam+"=1s")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := updateWithin(t, s, put("g", "k")); err != nil {
				t.Fatalf("control, database answering: %v", err)
			}
			end := tc.hang(t, srv, s)
			start := time.Now()
			err = updateWithin(t, s, put("g", "k"))
			took := time.Since(start)
			if !errors.Is(err, ErrBatchTimeout) || !strings.Contains(err.Error(), "within 1s") {
				t.Fatalf("Update on a hung database: %v (after %s); want ErrBatchTimeout naming 1s", err, took)
			}
			t.Logf("failed after %s: %v", took.Round(time.Millisecond), err)
			if tc.other != nil {
				if err := updateWithin(t, s, tc.other); err != nil {
					t.Errorf("another row while the first is locked: %v", err)
				}
			}
			end()
			if err := updateWithin(t, s, put("g", "k")); err != nil {
				t.Errorf("after the hang ended: %v", err)
			}
		})
	}
}

// TestBatchTimeoutParam: the DSN's batch_timeout sets the timeout (not
// sent to the server as a setting); a bad value is a clear error; none
// gives the default.
func TestBatchTimeoutParam(t *testing.T) {
	dsn := pgtest.Start(t)
	ctx := context.Background()
	for _, tc := range []struct {
		param string
		want  time.Duration
		err   string
	}{
		{param: "", want: DefaultBatchTimeout},
		{param: "&batch_timeout=250ms", want: 250 * time.Millisecond},
		{param: "&batch_timeout=3s&pool_max_conns=4", want: 3 * time.Second},
		{param: "&batch_timeout=soon", err: `batch_timeout="soon": want a positive duration`},
		{param: "&batch_timeout=-1s", err: `batch_timeout="-1s": want a positive duration`},
	} {
		t.Run(tc.param, func(t *testing.T) {
			s, err := Open(ctx, dsn+tc.param)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Open: %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.batchTimeout != tc.want {
				t.Errorf("batch timeout %s, want %s", s.batchTimeout, tc.want)
			}
			if err := s.Update(ctx, put("g", "p")); err != nil {
				t.Errorf("Update: %v", err)
			}
		})
	}
}
