package mosquitto

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// hashIterations is the PBKDF2 iteration count of new hashes. Mosquitto reads
// the count from each hash, so it may be raised without breaking old ones.
const hashIterations = 1000

// HashPassword returns password hashed in Mosquitto's "$7$" format:
// $7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512>. It is written by
// hand because no maintained Go library produces Mosquitto's format.
func HashPassword(password string) (string, error) {
	salt := make([]byte, 12)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: read salt: %w", err)
	}
	key, err := pbkdf2.Key(sha512.New, password, salt, hashIterations, sha512.Size)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return fmt.Sprintf("$7$%d$%s$%s", hashIterations, base64.StdEncoding.EncodeToString(salt), base64.StdEncoding.EncodeToString(key)), nil
}

// VerifyPassword reports whether password matches a "$7$" hash. Malformed
// hashes never match.
func VerifyPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 5 || parts[0] != "" || parts[1] != "7" {
		return false
	}
	iter, err := strconv.Atoi(parts[2])
	if err != nil || iter < 1 || iter > 1_000_000 {
		return false
	}
	salt, err1 := base64.StdEncoding.DecodeString(parts[3])
	want, err2 := base64.StdEncoding.DecodeString(parts[4])
	if err1 != nil || err2 != nil || len(want) != sha512.Size {
		return false
	}
	got, err := pbkdf2.Key(sha512.New, password, salt, iter, sha512.Size)
	return err == nil && hmac.Equal(got, want)
}

// NewPassword returns a random 24-byte password, base64url encoded.
func NewPassword() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("new password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
