package pgserver

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestSettingsEnv: EDGEFLEET_PG_SETTINGS reaches the server (here
// pg_stat_statements, loaded at start and usable); a malformed entry is a
// clear error; control: without it the server has its defaults.
func TestSettingsEnv(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		env, want, err string
	}{
		{env: "", want: ""},
		{env: "shared_preload_libraries=pg_stat_statements  work_mem=8MB", want: "pg_stat_statements"},
		{env: "work_mem", err: `"work_mem": want space-separated name=value`},
		{env: "=1", err: `"=1": want space-separated name=value`},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv(SettingsEnv, tc.env)
			s, err := Run(ctx, t.TempDir())
			if errors.Is(err, ErrNoBinaries) && os.Getenv("CI") == "" {
				t.Skip(err.Error())
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					if s != nil {
						s.Stop()
					}
					t.Fatalf("Run: %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Stop()
			conn, err := pgx.Connect(ctx, s.DSN)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			var got string
			if err := conn.QueryRow(ctx, `SHOW shared_preload_libraries`).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("shared_preload_libraries = %q, want %q", got, tc.want)
			}
			if tc.want != "" {
				if _, err := conn.Exec(ctx, `CREATE EXTENSION pg_stat_statements`); err != nil {
					t.Fatal(err)
				}
				var n int
				if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_statements`).Scan(&n); err != nil {
					t.Fatalf("pg_stat_statements: %v", err)
				}
			}
		})
	}
}
