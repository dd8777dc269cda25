package main

import (
	"context"
	"strings"
	"testing"
)

// TestFlagsRefuseWeakSetups: a short --enroll-token and --insecure-no-auth
// on a non-loopback address are refused at start.
func TestFlagsRefuseWeakSetups(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--enroll-token", "demo-enroll-token"}, "--enroll-token is 17 characters, want at least 32"},
		{[]string{"--enroll-token", strings.Repeat("ab", 20)}, "distinct characters"},
		{[]string{"--insecure-no-auth", "--listen", "0.0.0.0:0"}, "not loopback"},
	} {
		cmd := newRootCmd()
		cmd.SetArgs(append([]string{"--data-dir", t.TempDir(), "--mqtt-listen", "127.0.0.1:0"}, tc.args...))
		err := cmd.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}
