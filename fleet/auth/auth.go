// Package auth is fleet-server's operator authentication: scoped API
// tokens (admin, operator, viewer) stored hashed in the server's store,
// revocable and optionally expiring, plus the audit log of mutating calls.
//
// A token is "eft_<id>_<secret>": the id (64 random bits, hex) names the
// stored record, the secret (256 random bits, base64url) is checked against
// its stored SHA-256 in constant time. A plain SHA-256 is enough because
// the secret is high-entropy and server-generated; nothing guessable is ever
// hashed.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/internal/clock"
)

// Scope is what a token may do. Scopes are ordered: admin includes
// operator, operator includes viewer.
type Scope string

// Scopes.
const (
	// Viewer reads everything except secrets-adjacent data (tokens, audit,
	// broker files).
	Viewer Scope = "viewer"
	// Operator also manages models, groups, rollouts and device operations.
	Operator Scope = "operator"
	// Admin also manages API and enrollment tokens, broker configuration,
	// device deletion/reset and reads the audit log.
	Admin Scope = "admin"
)

func (s Scope) rank() int {
	switch s {
	case Viewer:
		return 1
	case Operator:
		return 2
	case Admin:
		return 3
	}
	return 0
}

// Allows reports whether a token of scope s may call a route needing need.
func (s Scope) Allows(need Scope) bool { return s.rank() > 0 && s.rank() >= need.rank() }

// ParseScope validates a scope name.
func ParseScope(v string) (Scope, error) {
	s := Scope(v)
	if s.rank() == 0 {
		return "", fmt.Errorf("scope %q: want admin, operator or viewer", v)
	}
	return s, nil
}

// Errors of Authenticate; callers answer 401 for all of them.
var (
	ErrUnknown = errors.New("unknown token")
	ErrRevoked = errors.New("token revoked")
	ErrExpired = errors.New("token expired")
	ErrInvalid = errors.New("malformed token")
)

// ErrNotFound is returned by Revoke for an unknown id.
var ErrNotFound = errors.New("token not found")

// Token is a stored API token (never its secret).
type Token struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Scope     Scope     `json:"scope"`
	Created   time.Time `json:"created"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	// Hash is the hex SHA-256 of the secret part.
	Hash string `json:"hash,omitempty"`
}

// Active reports whether t is neither revoked nor expired at now.
func (t Token) Active(now time.Time) bool {
	return t.RevokedAt.IsZero() && (t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt))
}

const (
	bucketTokens = "auth_tokens"
	prefix       = "eft_"
	idBytes      = 8
	secretBytes  = 32
	maxNameLen   = 64
)

// MinSecretLen is the shortest operator-chosen secret (enrollment tokens,
// --admin-token) accepted: 32 characters, i.e. at least 128 bits when the
// characters are random hex.
const MinSecretLen = 32

// CheckSecret refuses operator-chosen secrets that are too short or
// obviously low-entropy.
func CheckSecret(what, s string) error {
	if len(s) < MinSecretLen {
		return fmt.Errorf("%s is %d characters, want at least %d random characters (128 bits); generate one with: openssl rand -hex 16", what, len(s), MinSecretLen)
	}
	distinct := map[rune]bool{}
	for _, r := range s {
		distinct[r] = true
	}
	if len(distinct) < 8 {
		return fmt.Errorf("%s uses only %d distinct characters; use a random secret (openssl rand -hex 16)", what, len(distinct))
	}
	return nil
}

// Tokens stores API tokens in a store.Store.
type Tokens struct {
	s   store.Store
	now func() time.Time
}

// NewTokens returns the token store over s; c supplies the time (the system
// clock if nil).
func NewTokens(s store.Store, c clock.Clock) *Tokens {
	return &Tokens{s: s, now: clock.Or(c).Now}
}

func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]*$`)

// Create makes a new token and returns its full secret (shown once) and
// record. ttl 0 means no expiry.
func (t *Tokens) Create(ctx context.Context, name string, scope Scope, ttl time.Duration) (string, Token, error) {
	if _, err := ParseScope(string(scope)); err != nil {
		return "", Token{}, fmt.Errorf("create token: %w", err)
	}
	if len(name) > maxNameLen || !nameRE.MatchString(name) {
		return "", Token{}, fmt.Errorf("create token: name %q: want 1-%d letters, digits, . _ @ -", name, maxNameLen)
	}
	if ttl < 0 {
		return "", Token{}, fmt.Errorf("create token: negative ttl %s", ttl)
	}
	idb := make([]byte, idBytes)
	sec := make([]byte, secretBytes)
	if _, err := rand.Read(idb); err != nil {
		return "", Token{}, fmt.Errorf("create token: %w", err)
	}
	if _, err := rand.Read(sec); err != nil {
		return "", Token{}, fmt.Errorf("create token: %w", err)
	}
	id := hex.EncodeToString(idb)
	secret := base64.RawURLEncoding.EncodeToString(sec)
	tok := Token{ID: id, Name: name, Scope: scope, Created: t.now().UTC(), Hash: hashSecret(secret)}
	if ttl > 0 {
		tok.ExpiresAt = tok.Created.Add(ttl)
	}
	err := t.s.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.Get(bucketTokens, id); err == nil {
			return fmt.Errorf("token id %s collides", id)
		}
		return put(tx, tok)
	})
	if err != nil {
		return "", Token{}, fmt.Errorf("create token: %w", err)
	}
	tok.Hash = ""
	return prefix + id + "_" + secret, tok, nil
}

func put(tx store.Tx, tok Token) error {
	b, err := json.Marshal(tok)
	if err != nil {
		return err
	}
	return tx.Put(bucketTokens, tok.ID, b)
}

func get(tx store.Tx, id string) (Token, error) {
	b, err := tx.Get(bucketTokens, id)
	if err != nil {
		return Token{}, err
	}
	var tok Token
	if err := json.Unmarshal(b, &tok); err != nil {
		return Token{}, fmt.Errorf("decode token %s: %w", id, err)
	}
	return tok, nil
}

// ParseToken splits "eft_<id>_<secret>" into id and secret.
func ParseToken(s string) (id, secret string, err error) {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return "", "", fmt.Errorf("%w: want eft_<id>_<secret>", ErrInvalid)
	}
	id, secret, ok = strings.Cut(rest, "_")
	if !ok || len(id) != 2*idBytes || len(secret) != base64.RawURLEncoding.EncodedLen(secretBytes) {
		return "", "", fmt.Errorf("%w: want eft_<16 hex>_<43 base64url>", ErrInvalid)
	}
	if _, err := hex.DecodeString(id); err != nil {
		return "", "", fmt.Errorf("%w: id is not hex", ErrInvalid)
	}
	return id, secret, nil
}

// Authenticate returns the active token whose secret is s.
func (t *Tokens) Authenticate(ctx context.Context, s string) (Token, error) {
	id, secret, err := ParseToken(s)
	if err != nil {
		return Token{}, err
	}
	var tok Token
	err = t.s.View(ctx, func(tx store.Tx) error {
		var err error
		tok, err = get(tx, id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		// Same work as a hit, so timing does not tell ids apart.
		subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(hashSecret("")))
		return Token{}, ErrUnknown
	}
	if err != nil {
		return Token{}, fmt.Errorf("authenticate: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(tok.Hash)) != 1 {
		return Token{}, ErrUnknown
	}
	if !tok.RevokedAt.IsZero() {
		return Token{}, ErrRevoked
	}
	if !tok.Active(t.now()) {
		return Token{}, ErrExpired
	}
	tok.Hash = ""
	return tok, nil
}

// Revoke marks the token revoked (it stays listed). Revoking twice is not
// an error.
func (t *Tokens) Revoke(ctx context.Context, id string) (Token, error) {
	var tok Token
	err := t.s.Update(ctx, func(tx store.Tx) error {
		var err error
		if tok, err = get(tx, id); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("token %s: %w", id, ErrNotFound)
			}
			return err
		}
		if tok.RevokedAt.IsZero() {
			tok.RevokedAt = t.now().UTC()
		}
		return put(tx, tok)
	})
	tok.Hash = ""
	return tok, err
}

// List returns all tokens (without hashes), in id order.
func (t *Tokens) List(ctx context.Context) ([]Token, error) {
	out := []Token{}
	err := t.s.View(ctx, func(tx store.Tx) error {
		return tx.List(bucketTokens, "", func(_ string, b []byte) error {
			var tok Token
			if err := json.Unmarshal(b, &tok); err != nil {
				return fmt.Errorf("decode token: %w", err)
			}
			tok.Hash = ""
			out = append(out, tok)
			return nil
		})
	})
	return out, err
}

// Count returns how many tokens (active or not) exist.
func (t *Tokens) Count(ctx context.Context) (int, error) {
	n := 0
	err := t.s.View(ctx, func(tx store.Tx) error {
		return tx.List(bucketTokens, "", func(string, []byte) error { n++; return nil })
	})
	return n, err
}
