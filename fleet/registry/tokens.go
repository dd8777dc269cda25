package registry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/edgefleet/edgefleet/fleet/store"
)

// Tokens are the enrollment tokens.
type Tokens struct{ base }

// MinTokenLen is the shortest operator-chosen token secret (32 characters:
// 128 bits when hex, more otherwise).
const MinTokenLen = 32

// Token is an enrollment token. The secret itself is never stored, only its
// SHA-256.
type Token struct {
	ID        string            `json:"id"`
	Labels    map[string]string `json:"labels,omitempty"`
	ExpiresAt time.Time         `json:"expires_at,omitzero"`
	MaxUses   int               `json:"max_uses"`
	Uses      int               `json:"uses"`
	Created   time.Time         `json:"created"`
}

func tokenKey(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// Create stores a new enrollment token and returns its secret (shown
// once). maxUses 0 means unlimited; ttl 0 means no expiry.
func (r *Tokens) Create(ctx context.Context, labels map[string]string, maxUses int, ttl time.Duration) (string, Token, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", Token{}, fmt.Errorf("create token: %w", err)
	}
	secret := "et_" + hex.EncodeToString(b)
	t, err := r.put(ctx, secret, labels, maxUses, ttl)
	return secret, t, err
}

// Add stores an operator-chosen token secret (e.g. from a flag).
func (r *Tokens) Add(ctx context.Context, secret string, labels map[string]string, maxUses int, ttl time.Duration) (Token, error) {
	if len(secret) < MinTokenLen {
		return Token{}, fmt.Errorf("add token: secret is %d characters, want at least %d (e.g. openssl rand -hex 16)", len(secret), MinTokenLen)
	}
	return r.put(ctx, secret, labels, maxUses, ttl)
}

func (r *Tokens) put(ctx context.Context, secret string, labels map[string]string, maxUses int, ttl time.Duration) (Token, error) {
	t := Token{ID: tokenKey(secret)[:12], Labels: labels, MaxUses: maxUses, Created: r.now()}
	if ttl > 0 {
		t.ExpiresAt = t.Created.Add(ttl)
	}
	if err := r.s.Update(ctx, func(tx store.Tx) error { return putJSON(tx, bucketTokens, tokenKey(secret), t) }); err != nil {
		return Token{}, fmt.Errorf("store token: %w", err)
	}
	return t, nil
}
