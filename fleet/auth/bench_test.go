package auth_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/edgefleet/edgefleet/fleet/auth"
	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/fleet/store/boltstore"
)

func benchStore(b *testing.B) store.Store {
	s, err := boltstore.Open(filepath.Join(b.TempDir(), "a.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkAuthenticate is the per-request cost of checking a token
// against the bbolt store (lookup by id, SHA-256, constant-time compare).
func BenchmarkAuthenticate(b *testing.B) {
	ts := auth.NewTokens(benchStore(b), nil)
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		ts.Create(ctx, "t", auth.Viewer, 0)
	}
	secret, _, _ := ts.Create(ctx, "me", auth.Operator, 0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := ts.Authenticate(ctx, secret); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuditAppend is the per-mutating-call cost of the audit record
// (one bbolt write transaction with fsync, retention pruning included).
func BenchmarkAuditAppend(b *testing.B) {
	a := auth.NewAudit(benchStore(b), 1000, nil)
	ctx := context.Background()
	e := auth.Entry{Actor: "0011223344556677", Name: "ci", Method: "POST", Route: "/api/v1/rollouts", Path: "/api/v1/rollouts", Status: 200, Client: "127.0.0.1:5555"}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := a.Append(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
}
