package webhooks

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// SecretPrefix starts every signing secret, as Standard Webhooks names it.
const SecretPrefix = "whsec_"

// Standard Webhooks asks for keys of 24 to 64 bytes; roster makes 32.
const (
	minKeyBytes = 24
	maxKeyBytes = 64
	newKeyBytes = 32
)

// RotationOverlap is how long the previous secret keeps signing after a
// rotation, so receivers can switch to the new one without a gap.
const RotationOverlap = 24 * time.Hour

// redacted is what a Secret prints as everywhere but Reveal.
const redacted = SecretPrefix + "[redacted]"

// Secret is an endpoint's signing secret: "whsec_" and the base64 of the
// HMAC key. It prints, logs and marshals as "whsec_[redacted]"; only
// Reveal gives the real value, for the one answer that shows it and for the
// store. The zero Secret is "no secret".
type Secret struct {
	key []byte
}

// NewSecret returns a fresh secret of 32 random bytes.
func NewSecret() Secret {
	key := make([]byte, newKeyBytes)
	// crypto/rand.Read never fails: on a broken system it crashes the
	// program instead of returning predictable bytes.
	_, _ = rand.Read(key)
	return Secret{key: key}
}

// ErrBadSecret is returned by ParseSecret; its messages never quote the
// secret.
var ErrBadSecret = errors.New("bad webhook secret")

// ParseSecret reads a secret in its "whsec_<base64>" form, as Reveal wrote
// it.
func ParseSecret(s string) (Secret, error) {
	b64, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return Secret{}, fmt.Errorf("%w: it must start with %q", ErrBadSecret, SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		// The decoder's error names only a byte offset, but keep even that
		// out: an offset into a secret is a hint about it.
		return Secret{}, fmt.Errorf("%w: the part after %q is not standard base64", ErrBadSecret, SecretPrefix)
	}
	if len(key) < minKeyBytes || len(key) > maxKeyBytes {
		return Secret{}, fmt.Errorf("%w: the key must be %d to %d bytes, got %d", ErrBadSecret, minKeyBytes, maxKeyBytes, len(key))
	}
	return Secret{key: key}, nil
}

// Reveal returns the secret in its "whsec_<base64>" form. Call it only to
// show the secret once or to store it.
func (s Secret) Reveal() string {
	if s.IsZero() {
		return ""
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(s.key)
}

// IsZero reports whether s holds no key.
func (s Secret) IsZero() bool { return len(s.key) == 0 }

// Equal reports whether two secrets hold the same key.
func (s Secret) Equal(o Secret) bool { return string(s.key) == string(o.key) }

// String returns "whsec_[redacted]" (or "" for the zero Secret), so that
// fmt's %v, %s and %q never print the key.
func (s Secret) String() string {
	if s.IsZero() {
		return ""
	}
	return redacted
}

// GoString keeps %#v from printing the key.
func (s Secret) GoString() string { return "webhooks.Secret(" + s.String() + ")" }

// LogValue keeps slog from printing the key.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText keeps encoding/json and friends from printing the key.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Keys are the secrets an endpoint signs with: the current one, and after
// a rotation the previous one until PreviousUntil. Only two are ever
// valid: rotating again within RotationOverlap drops the oldest at once.
type Keys struct {
	Current       Secret
	Previous      Secret    // zero when there was no rotation
	PreviousUntil time.Time // the previous secret signs while the timestamp is before this
}

// Rotate returns keys with a fresh current secret; the one it replaces
// keeps signing until now + RotationOverlap.
func (k Keys) Rotate(now time.Time) Keys {
	return Keys{Current: NewSecret(), Previous: k.Current, PreviousUntil: now.Add(RotationOverlap)}
}

// valid returns the secrets that sign a message stamped at ts, current
// first.
func (k Keys) valid(ts time.Time) []Secret {
	out := make([]Secret, 0, 2)
	if !k.Current.IsZero() {
		out = append(out, k.Current)
	}
	if !k.Previous.IsZero() && ts.Before(k.PreviousUntil) && !k.Previous.Equal(k.Current) {
		out = append(out, k.Previous)
	}
	return out
}

// ErrNoSecret is returned by Sign when no secret is valid.
var ErrNoSecret = errors.New("endpoint has no signing secret")

// Sign returns the webhook-signature header for a message: "v1,<base64
// HMAC-SHA256 of id.timestamp.body>" per valid secret, space-separated.
// The HMAC is the Standard Webhooks reference library's.
func (k Keys) Sign(msgID string, ts time.Time, body []byte) (string, error) {
	secrets := k.valid(ts)
	if len(secrets) == 0 {
		return "", ErrNoSecret
	}
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		wh, err := standardwebhooks.NewWebhookRaw(s.key)
		if err != nil {
			return "", fmt.Errorf("sign: %w", err)
		}
		sig, err := wh.Sign(msgID, ts, body)
		if err != nil {
			return "", fmt.Errorf("sign: %w", err)
		}
		sigs = append(sigs, sig)
	}
	return strings.Join(sigs, " "), nil
}

// LogValue names which secrets exist without printing any.
func (k Keys) LogValue() slog.Value {
	attrs := []slog.Attr{slog.Bool("current", !k.Current.IsZero())}
	if !k.Previous.IsZero() {
		attrs = append(attrs, slog.Time("previous_until", k.PreviousUntil))
	}
	return slog.GroupValue(attrs...)
}
