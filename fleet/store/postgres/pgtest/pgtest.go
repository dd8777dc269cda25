// Package pgtest starts a real PostgreSQL server (pgserver) for a test.
package pgtest

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/edgefleet/edgefleet/fleet/store/postgres/pgserver"
)

// Start runs a real PostgreSQL server (Run) in a temp dir for the test,
// stopped at its cleanup, and returns its DSN. It skips only when the
// binaries are absent and CI is not set.
func Start(t testing.TB) string {
	t.Helper()
	s, err := pgserver.Run(context.Background(), t.TempDir())
	if errors.Is(err, pgserver.ErrNoBinaries) && os.Getenv("CI") == "" {
		t.Skip(err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s.DSN
}
