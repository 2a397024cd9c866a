package scim

import (
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// logRequest writes the request's one line (see the package doc): debug,
// or error for a 5xx; and counts a failed authentication for the sampled
// line about it.
func (s *Server) logRequest(r *http.Request, dirID string, known bool, rec *recorder, d time.Duration) {
	level := slog.LevelDebug
	if rec.status >= 500 {
		level = slog.LevelError
	}
	if s.log.Enabled(r.Context(), level) {
		attrs := make([]slog.Attr, 0, 8)
		attrs = append(attrs, slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", rec.status), slog.Float64("duration", d.Seconds()), slog.String("request_id", rec.requestID))
		if known {
			attrs = append(attrs, slog.String("directory", dirID))
		}
		if rec.detail != "" {
			attrs = append(attrs, slog.String("detail", rec.detail))
		}
		s.log.LogAttrs(r.Context(), level, "scim request", attrs...)
	}
	if rec.status == http.StatusUnauthorized {
		s.authFailed(r, dirID, rec.requestID)
	}
}

// authFailureEvery is how often at most the line about failed
// authentication is logged per directory.
const authFailureEvery = time.Minute

// authSampler counts failed authentications per directory between the
// sampled lines about them.
type authSampler struct {
	mu     sync.Mutex
	bursts map[string]*authBurst
}

type authBurst struct {
	logged   time.Time // when the last line was logged
	failures int       // failures since, not yet in a line
}

// note counts one failure of key at now. It returns whether to log a line
// now, and how many failures the line covers (this one included).
func (a *authSampler) note(key string, now time.Time) (bool, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.bursts == nil {
		a.bursts = map[string]*authBurst{}
	}
	b := a.bursts[key]
	if b == nil {
		if len(a.bursts) >= 10000 {
			a.prune(now)
		}
		b = &authBurst{}
		a.bursts[key] = b
	}
	b.failures++
	if !b.logged.IsZero() && now.Sub(b.logged) < authFailureEvery {
		return false, 0
	}
	n := b.failures
	b.logged, b.failures = now, 0
	return true, n
}

// prune forgets directories with no line in the last period (their next
// failure logs at once anyway), keeping the map as small as the set of
// directories failing now.
func (a *authSampler) prune(now time.Time) {
	for k, b := range a.bursts {
		if now.Sub(b.logged) >= authFailureEvery {
			delete(a.bursts, k)
		}
	}
}

// authFailed logs, sampled, that requests failed to authenticate. The
// path's directory id is anyone's to send: failures for ids roster has not
// seen with a token share one sample, so that made-up ids cannot flood the
// log.
func (s *Server) authFailed(r *http.Request, dirID, requestID string) {
	key := ""
	if _, ok := s.dirs.Load(dirID); ok {
		key = dirID
	}
	logNow, n := s.auth.note(key, time.Now())
	if !logNow {
		return
	}
	attrs := []slog.Attr{slog.Int("failures", n), slog.String("period", authFailureEvery.String()),
		slog.String("request_id", requestID)}
	if key != "" {
		attrs = append(attrs, slog.String("directory", key))
	} else {
		attrs = append(attrs, slog.Bool("unknown_directory", true))
	}
	s.log.LogAttrs(r.Context(), slog.LevelWarn, "scim authentication failed", attrs...)
}

// requestID is the client's X-Request-Id when it is a plain token of at
// most 64 characters, else a new random one (for correlation, not a
// secret).
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 64 && strings.IndexFunc(id, notIDRune) < 0 {
		return id
	}
	return strconv.FormatUint(rand.Uint64(), 36)
}

func notIDRune(c rune) bool {
	return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':')
}

// redactQuery is the request's path and query for the request log, with
// the value of any query parameter that looks like a credential
// (access_token, token, secret, password, ...) replaced. Identity
// providers send credentials in the Authorization header, but a
// misconfigured one may put them in the URL.
func redactQuery(u *url.URL) string {
	if u.RawQuery == "" {
		return u.RequestURI()
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return u.EscapedPath() + "?[unparsable query]"
	}
	changed := false
	for k := range q {
		if sensitiveName(k) {
			q[k] = []string{"[REDACTED]"}
			changed = true
		}
	}
	if !changed {
		return u.RequestURI()
	}
	return u.EscapedPath() + "?" + q.Encode()
}

// sensitiveName says whether a key names a credential, as redact treats
// body keys.
func sensitiveName(k string) bool {
	lk := strings.ToLower(k)
	return strings.Contains(lk, "password") || strings.Contains(lk, "secret") || strings.HasSuffix(lk, "token") ||
		lk == "key" || strings.HasSuffix(lk, "_key") || strings.HasSuffix(lk, "apikey")
}
