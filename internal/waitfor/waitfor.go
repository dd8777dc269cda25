// Package waitfor lets tests wait for a state instead of a duration: they
// poll a condition until it holds, so a slow or busy machine only makes
// them slower, never wrong.
package waitfor

import (
	"testing"
	"time"
)

// Bound turns a condition that never comes true into a failure instead of
// a hang; it is generous because CI machines may be slow and busy.
const Bound = 60 * time.Second

// Until polls cond every 2 ms until it holds, failing t (naming what it
// waited for) when Bound passes first.
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
