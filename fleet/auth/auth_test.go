package auth_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/auth"
	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/fleet/store/boltstore"
)

type testClock struct{ t time.Time }

func (c *testClock) Now() time.Time { return c.t }

func stores(t *testing.T) map[string]store.Store {
	b, err := boltstore.Open(filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return map[string]store.Store{"mem": store.NewMem(), "bolt": b}
}

func TestTokens(t *testing.T) {
	ctx := context.Background()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			c := &testClock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			ts := auth.NewTokens(s, c)
			secret, tok, err := ts.Create(ctx, "ci", auth.Operator, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ts.Authenticate(ctx, secret)
			if err != nil || got.ID != tok.ID || got.Scope != auth.Operator || got.Hash != "" {
				t.Fatalf("authenticate = %+v, %v", got, err)
			}
			// Wrong secret with the right id, unknown id, malformed.
			id, sec, _ := auth.ParseToken(secret)
			wrong := "eft_" + id + "_" + strings.Repeat("A", len(sec))
			if _, err := ts.Authenticate(ctx, wrong); !errors.Is(err, auth.ErrUnknown) {
				t.Fatalf("wrong secret: %v", err)
			}
			if _, err := ts.Authenticate(ctx, "eft_0000000000000000_"+sec); !errors.Is(err, auth.ErrUnknown) {
				t.Fatalf("unknown id: %v", err)
			}
			if _, err := ts.Authenticate(ctx, "Bearer "+secret); !errors.Is(err, auth.ErrInvalid) {
				t.Fatalf("malformed: %v", err)
			}
			// Nothing stored reveals the secret.
			list, _ := ts.List(ctx)
			if len(list) != 1 || list[0].Hash != "" || strings.Contains(fmt.Sprint(list), sec) {
				t.Fatalf("list = %+v", list)
			}
			// Expiry.
			c.t = c.t.Add(2 * time.Hour)
			if _, err := ts.Authenticate(ctx, secret); !errors.Is(err, auth.ErrExpired) {
				t.Fatalf("expired: %v", err)
			}
			// Revocation (control: a second token still works).
			s2, tok2, _ := ts.Create(ctx, "viewer", auth.Viewer, 0)
			if _, err := ts.Authenticate(ctx, s2); err != nil {
				t.Fatal(err)
			}
			if _, err := ts.Revoke(ctx, tok2.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := ts.Authenticate(ctx, s2); !errors.Is(err, auth.ErrRevoked) {
				t.Fatalf("revoked: %v", err)
			}
			if _, err := ts.Revoke(ctx, "nope"); !errors.Is(err, auth.ErrNotFound) {
				t.Fatalf("revoke unknown: %v", err)
			}
			if _, _, err := ts.Create(ctx, "x", "root", 0); err == nil {
				t.Fatal("bad scope accepted")
			}
			if _, _, err := ts.Create(ctx, "bad name", auth.Viewer, 0); err == nil {
				t.Fatal("bad name accepted")
			}
		})
	}
}

func TestScopes(t *testing.T) {
	for _, c := range []struct {
		have, need auth.Scope
		ok         bool
	}{
		{auth.Admin, auth.Admin, true}, {auth.Admin, auth.Viewer, true}, {auth.Operator, auth.Operator, true},
		{auth.Operator, auth.Admin, false}, {auth.Viewer, auth.Operator, false}, {auth.Viewer, auth.Viewer, true},
		{"", auth.Viewer, false}, {"root", auth.Viewer, false},
	} {
		if got := c.have.Allows(c.need); got != c.ok {
			t.Errorf("%q allows %q = %v", c.have, c.need, got)
		}
	}
}

func TestCheckSecret(t *testing.T) {
	if err := auth.CheckSecret("token", "short-secret"); err == nil {
		t.Fatal("short secret accepted")
	}
	if err := auth.CheckSecret("token", strings.Repeat("ab", 20)); err == nil {
		t.Fatal("low-entropy secret accepted")
	}
	if err := auth.CheckSecret("token", "0f3c9a1b7d2e4f60a8b9c1d2e3f40516"); err != nil {
		t.Fatal(err)
	}
}

func TestAuditRetentionAndPaging(t *testing.T) {
	ctx := context.Background()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			c := &testClock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			a := auth.NewAudit(s, 10, c)
			for i := 0; i < 25; i++ {
				c.t = c.t.Add(time.Second)
				actor := "a"
				if i%2 == 1 {
					actor = "b"
				}
				if _, err := a.Append(ctx, auth.Entry{Actor: actor, Method: "POST", Route: "/api/v1/x", Status: 200}); err != nil {
					t.Fatal(err)
				}
			}
			all, next, err := a.Query(ctx, auth.Filter{Limit: 100})
			if err != nil || len(all) != 10 || next != 0 || all[0].Seq != 25 || all[9].Seq != 16 {
				t.Fatalf("retention: %d entries, next %d, %v", len(all), next, err)
			}
			page, next, _ := a.Query(ctx, auth.Filter{Limit: 4})
			if len(page) != 4 || page[0].Seq != 25 || next != 22 {
				t.Fatalf("page 1: %+v next %d", page, next)
			}
			page, _, _ = a.Query(ctx, auth.Filter{Limit: 4, Before: next})
			if len(page) != 4 || page[0].Seq != 21 {
				t.Fatalf("page 2: %+v", page)
			}
			bs, _, _ := a.Query(ctx, auth.Filter{Actor: "b"})
			for _, e := range bs {
				if e.Actor != "b" {
					t.Fatalf("filter: %+v", e)
				}
			}
			if len(bs) != 5 {
				t.Fatalf("actor b: %d entries", len(bs))
			}
			recent, _, _ := a.Query(ctx, auth.Filter{Since: c.t.Add(-5 * time.Second)})
			if len(recent) != 6 || recent[5].Seq != 20 {
				t.Fatalf("since: %+v", recent)
			}
		})
	}
}

func FuzzParseToken(f *testing.F) {
	f.Add("eft_0011223344556677_" + strings.Repeat("A", 43))
	f.Add("eft__")
	f.Add("Bearer x")
	f.Add("eft_zz11223344556677_" + strings.Repeat("A", 43))
	f.Fuzz(func(t *testing.T, s string) {
		id, secret, err := auth.ParseToken(s)
		if err == nil && "eft_"+id+"_"+secret != s {
			t.Fatalf("parse %q = %q %q", s, id, secret)
		}
	})
}
