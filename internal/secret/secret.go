// Package secret makes and checks bearer tokens. Tokens are stored only as
// SHA-256 hashes and compared in constant time.
package secret

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
)

// NewToken returns a fresh random token with a readable prefix, such as
// "rst_scim_…". 32 random bytes: guessing is hopeless, so a fast hash is
// enough at rest.
func NewToken(prefix string) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("secret: crypto/rand failed: " + err.Error())
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// Hash returns the hex SHA-256 of a token, the form kept at rest.
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Matches reports whether token hashes to storedHash, in constant time.
func Matches(token, storedHash string) bool {
	got := Hash(token)
	return subtle.ConstantTimeCompare([]byte(got), []byte(storedHash)) == 1 && storedHash != ""
}

// MatchesAny reports whether token hashes to any of the stored hashes,
// comparing with every one of them (no early exit).
func MatchesAny(token string, storedHashes []string) bool {
	got := []byte(Hash(token))
	ok := 0
	for _, h := range storedHashes {
		ok |= subtle.ConstantTimeCompare(got, []byte(h))
	}
	return ok == 1
}
