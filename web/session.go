package web

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/roster-dev/roster/store"
)

// Session lifetimes: a session ends after IdleTimeout without a request
// (sliding) and at the latest MaxAge after sign-in.
const (
	DefaultIdleTimeout = 30 * time.Minute
	DefaultMaxAge      = 12 * time.Hour
	// touchEvery bounds the writes that slide a session: last-seen moves
	// at most once a minute per session, so the idle limit is exact to a
	// minute.
	touchEvery = time.Minute
)

// Cookie names.
const (
	sessionCookie = "roster_session"
	// signinCookie carries the sign-in form's CSRF token (double submit):
	// before sign-in there is no session to hold one.
	signinCookie = "roster_signin"
)

// Sessions is what the page keeps in the store.
type Sessions interface {
	CreateWebSession(ctx context.Context, ws *store.WebSession) error
	GetWebSession(ctx context.Context, idHash string, now time.Time) (*store.WebSession, error)
	TouchWebSession(ctx context.Context, idHash string, seen, expires time.Time) error
	SetWebSessionFlash(ctx context.Context, idHash, flash string) error
	DeleteWebSession(ctx context.Context, idHash string) error
	DeleteWebSessionsOfToken(ctx context.Context, tokenID string) error
	DeleteExpiredWebSessions(ctx context.Context, now time.Time) error
}

// session is a signed-in request's session.
type session struct {
	Principal Principal
	CSRF      string
	idHash    string
	cookie    string // the cookie's value: the key of the flash
	flash     string
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashID(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// secure says whether cookies get the Secure attribute.
func (h *Handler) secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") || strings.HasPrefix(h.PublicURL, "https://")
}

func (h *Handler) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: h.secure(r),
	})
}

// startSession stores a new session for p and sets its cookie.
func (h *Handler) startSession(w http.ResponseWriter, r *http.Request, p Principal) error {
	raw, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode principal: %w", err)
	}
	id, now := randomToken(), h.now()
	ws := &store.WebSession{
		IDHash: hashID(id), Principal: string(raw), TokenID: p.TokenID, CSRF: randomToken(),
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(h.idle()),
	}
	if err := h.sessions.CreateWebSession(r.Context(), ws); err != nil {
		return err
	}
	h.setCookie(w, r, sessionCookie, id, 0)
	return nil
}

func (h *Handler) idle() time.Duration {
	if h.IdleTimeout > 0 {
		return h.IdleTimeout
	}
	return DefaultIdleTimeout
}

func (h *Handler) maxAge() time.Duration {
	if h.MaxAge > 0 {
		return h.MaxAge
	}
	return DefaultMaxAge
}

// errNoSession: the request has no live session.
var errNoSession = errors.New("no session")

// loadSession finds the request's session, slides its expiry, and checks
// that its token still exists.
func (h *Handler) loadSession(r *http.Request) (*session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, errNoSession
	}
	now := h.now()
	ws, err := h.sessions.GetWebSession(r.Context(), hashID(c.Value), now)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, err
	}
	var p Principal
	if err := json.Unmarshal([]byte(ws.Principal), &p); err != nil {
		return nil, fmt.Errorf("decode session principal: %w", err)
	}
	ok, err := h.backend.Valid(r.Context(), p)
	if err != nil {
		return nil, err
	}
	if !ok {
		// The token was deleted: the session ends with it.
		_ = h.sessions.DeleteWebSession(r.Context(), ws.IDHash)
		return nil, errNoSession
	}
	if now.Sub(ws.LastSeenAt) >= touchEvery {
		exp := now.Add(h.idle())
		if hard := ws.CreatedAt.Add(h.maxAge()); exp.After(hard) {
			exp = hard
		}
		if err := h.sessions.TouchWebSession(r.Context(), ws.IDHash, now, exp); err != nil {
			return nil, err
		}
	}
	return &session{Principal: p, CSRF: ws.CSRF, idHash: ws.IDHash, cookie: c.Value, flash: ws.Flash}, nil
}

// endSession deletes the session and its cookie.
func (h *Handler) endSession(w http.ResponseWriter, r *http.Request, s *session) error {
	h.setCookie(w, r, sessionCookie, "", -1)
	if s == nil {
		return nil
	}
	return h.sessions.DeleteWebSession(r.Context(), s.idHash)
}

// csrfOK checks a form's csrf field against want, in constant time.
func csrfOK(r *http.Request, want string) bool {
	got := r.PostFormValue("csrf")
	return want != "" && got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// flash is what the next page shows once.
type flash struct {
	// Kind says which page shows it: "scim-token", "webhook-secret",
	// "admin-token", "preview", "test".
	Kind  string          `json:"kind"`
	For   string          `json:"for"` // the directory, webhook or token it belongs to
	Value string          `json:"value,omitempty"`
	Extra string          `json:"extra,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// flashKey derives the flash's key from the cookie value, which the store
// never sees: a stored flash is unreadable without the browser's cookie.
func flashKey(cookie string) []byte {
	sum := sha256.Sum256([]byte("roster web flash\x00" + cookie))
	return sum[:]
}

func seal(cookie string, f flash) (string, error) {
	raw, err := json.Marshal(f)
	if err != nil {
		return "", err
	}
	block, err := aes.NewCipher(flashKey(cookie))
	if err != nil {
		return "", err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.RawStdEncoding.EncodeToString(gcm.Seal(nonce, nonce, raw, nil)), nil
}

func unseal(cookie, sealed string) (flash, bool) {
	var f flash
	b, err := base64.RawStdEncoding.DecodeString(sealed)
	if err != nil {
		return f, false
	}
	block, err := aes.NewCipher(flashKey(cookie))
	if err != nil {
		return f, false
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil || len(b) < gcm.NonceSize() {
		return f, false
	}
	raw, err := gcm.Open(nil, b[:gcm.NonceSize()], b[gcm.NonceSize():], nil)
	if err != nil || json.Unmarshal(raw, &f) != nil {
		return f, false
	}
	return f, true
}

// setFlash stores what the next page shows once.
func (h *Handler) setFlash(r *http.Request, s *session, f flash) error {
	sealed, err := seal(s.cookie, f)
	if err != nil {
		return fmt.Errorf("seal flash: %w", err)
	}
	return h.sessions.SetWebSessionFlash(r.Context(), s.idHash, sealed)
}

// takeFlash returns the session's flash when it is of kind and for id, and
// clears it: it is shown once.
func (h *Handler) takeFlash(r *http.Request, s *session, kind, id string) (flash, bool) {
	if s.flash == "" {
		return flash{}, false
	}
	f, ok := unseal(s.cookie, s.flash)
	if !ok || f.Kind != kind || f.For != id {
		return flash{}, false
	}
	if err := h.sessions.SetWebSessionFlash(r.Context(), s.idHash, ""); err != nil {
		h.log().Warn("clear web flash", "err", err)
	}
	s.flash = ""
	return f, true
}
