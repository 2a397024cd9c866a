package webhooks

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Event is one event of a team's feed, as the caller reads it from the
// store.
type Event struct {
	// ID is the feed's event id: the endpoint's cursor after delivery,
	// and the webhook-id header, the same on every attempt.
	ID string
	// Type is matched against Endpoint.EventTypes.
	Type string
	// Body is the event's JSON exactly as the feed shows it
	// ({"id", "type", "occurred_at", "data"}), sent byte for byte. The
	// caller renders it with the feed's own code, so the two never drift.
	Body []byte
}

// Endpoint is a webhook endpoint: where to send, what, signed with which
// secrets, and how far it got.
type Endpoint struct {
	ID     string
	TeamID string // whose feed it follows; passed through to the EventSource
	URL    string
	// EventTypes selects the events sent: exact types ("member.added") or
	// a prefix ending in ".*" ("member.*"). Empty means all.
	EventTypes []string
	Keys       Keys
	State      State
}

// Wants reports whether the endpoint receives events of type typ.
func (e *Endpoint) Wants(typ string) bool {
	if len(e.EventTypes) == 0 {
		return true
	}
	for _, t := range e.EventTypes {
		if t == typ || t == "*" {
			return true
		}
		if p, ok := strings.CutSuffix(t, "*"); ok && strings.HasSuffix(p, ".") && strings.HasPrefix(typ, p) {
			return true
		}
	}
	return false
}

// LogValue logs what identifies the endpoint and never its secrets.
func (e Endpoint) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", e.ID),
		slog.String("team_id", e.TeamID),
		slog.String("url", redactURL(e.URL)),
		slog.String("state", string(e.State.Status)),
		slog.String("cursor", e.State.Cursor),
	)
}

// Outcome classifies an attempt.
type Outcome int

const (
	// Retry: the attempt failed (non-2xx, timeout, connection error,
	// refused address); try again later.
	Retry Outcome = iota
	// Delivered: the receiver answered 2xx; the cursor moves past the
	// event.
	Delivered
	// Gone: the receiver answered 410 Gone; the endpoint is disabled at
	// once.
	Gone
)

func (o Outcome) String() string {
	switch o {
	case Delivered:
		return "delivered"
	case Gone:
		return "gone"
	default:
		return "retry"
	}
}

// Attempt is the record of one request, as the delivery log keeps it.
type Attempt struct {
	EventID  string
	At       time.Time     // when the request started (the webhook-timestamp)
	Duration time.Duration // until the response was read, or the failure
	// StatusCode is the HTTP status; 0 when no response came.
	StatusCode int
	// Response is the start of the response body, at most
	// Options.MaxResponseBytes, cut at a UTF-8 boundary.
	Response  string
	Truncated bool // the body was longer than Response
	// Error is a short reason when the outcome is not Delivered. It never
	// holds a secret, and URLs in it lose their query and credentials.
	Error   string
	Outcome Outcome
	// RetryAfter is the receiver's Retry-After, when it gave one.
	RetryAfter time.Duration
}

// End is when the attempt finished.
func (a *Attempt) End() time.Time { return a.At.Add(a.Duration) }

// Defaults for Options.
const (
	DefaultTimeout          = 10 * time.Second
	DefaultMaxResponseBytes = 4 << 10
)

// Options configure a Client.
type Options struct {
	// AllowPrivateNetworks lets deliveries reach loopback, private
	// (RFC 1918, fc00::/7), link-local and CGNAT addresses: the operator
	// setting webhooks.allow_private_networks. Cloud metadata,
	// unspecified, multicast and reserved addresses stay refused.
	AllowPrivateNetworks bool
	// Timeout bounds one attempt, connect to last byte read; default 10 s.
	Timeout time.Duration
	// MaxResponseBytes is how much of a response body is kept; default
	// 4 KiB.
	MaxResponseBytes int
	// Resolver resolves names; nil is net.DefaultResolver. Tests use it
	// to make a name resolve where they like.
	Resolver *net.Resolver
	// TLSConfig, when set, replaces the default TLS settings (tests use it
	// to trust their own CA).
	TLSConfig *tls.Config
	// Now is the clock for timestamps; nil is time.Now.
	Now func() time.Time
	// UserAgent is sent with every request; default "roster-webhooks".
	UserAgent string
}

// Client sends signed deliveries. It never uses a proxy (the guard must
// see the receiver's own address) and never follows redirects. It is safe
// for concurrent use.
type Client struct {
	opts Options
	http *http.Client
}

// NewClient returns a Client with opts, defaults filled in.
func NewClient(opts Options) *Client {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "roster-webhooks"
	}
	dialer := &net.Dialer{
		Timeout:  opts.Timeout,
		Resolver: opts.Resolver,
		Control:  guardControl(opts.AllowPrivateNetworks),
	}
	tr := &http.Transport{
		// No proxy: the guard must judge the receiver's own address, not
		// a proxy's.
		Proxy:                  nil,
		MaxResponseHeaderBytes: 64 << 10,
		DialContext:            dialer.DialContext,
		TLSClientConfig:        opts.TLSConfig,
		TLSHandshakeTimeout:    opts.Timeout,
		ResponseHeaderTimeout:  opts.Timeout,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        90 * time.Second,
	}
	return &Client{
		opts: opts,
		http: &http.Client{
			Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
}

// Close drops idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Deliver makes one attempt to send ev to ep, signed with ep.Keys, and
// classifies the answer. It never returns an error: every failure is an
// Attempt with Outcome Retry (or Gone) and a short Error. A ctx canceled
// mid-attempt is a Retry too; the caller checks ctx.Err() to tell a
// shutdown from a failing receiver.
func (c *Client) Deliver(ctx context.Context, ep *Endpoint, ev Event) Attempt {
	a := Attempt{EventID: ev.ID, At: c.opts.Now()}
	start := time.Now()
	c.send(ctx, ep, ev, &a)
	a.Duration = time.Since(start)
	return a
}

func (c *Client) send(ctx context.Context, ep *Endpoint, ev Event, a *Attempt) {
	fail := func(format string, args ...any) {
		a.Outcome = Retry
		a.Error = shorten(fmt.Sprintf(format, args...), 300)
	}
	if err := ValidateURL(ep.URL, c.opts.AllowPrivateNetworks); err != nil {
		fail("%s", strings.TrimPrefix(err.Error(), ErrBadURL.Error()+": "))
		return
	}
	sig, err := ep.Keys.Sign(ev.ID, a.At, ev.Body)
	if err != nil {
		fail("%v", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(ev.Body))
	if err != nil {
		fail("build request: %v", err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", c.opts.UserAgent)
	req.Header.Set("webhook-id", ev.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(a.At.Unix(), 10))
	req.Header.Set("webhook-signature", sig)

	resp, err := c.http.Do(req)
	if err != nil {
		fail("%s", c.describe(ctx, err))
		return
	}
	defer resp.Body.Close()
	a.StatusCode = resp.StatusCode
	body, truncated, readErr := readLimited(resp.Body, c.opts.MaxResponseBytes)
	a.Response, a.Truncated = body, truncated
	a.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), a.At)

	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		// A receiver that answered 2xx has the event, even if its body
		// broke off afterwards.
		a.Outcome = Delivered
	case code == http.StatusGone:
		a.Outcome = Gone
		a.Error = "HTTP 410 Gone: the receiver asked to stop; endpoint disabled"
	case code >= 300 && code < 400:
		if loc := resp.Header.Get("Location"); loc != "" {
			fail("HTTP %d: redirects are not followed (Location: %s); point the endpoint at the final URL", code, redactURL(loc))
		} else {
			fail("HTTP %d: redirects are not followed", code)
		}
	default:
		fail("HTTP %d", code)
	}
	if readErr != nil && a.Outcome != Delivered {
		a.Error = shorten(a.Error+"; reading the body: "+c.describe(ctx, readErr), 300)
	}
}

// describe turns a transport error into a short reason without the URL
// (which may carry a token in its query).
func (c *Client) describe(ctx context.Context, err error) string {
	var refusedErr *RefusedAddressError
	if errors.As(err, &refusedErr) {
		return "refused: " + refusedErr.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Sprintf("timeout after %s", c.opts.Timeout)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Sprintf("timeout after %s", c.opts.Timeout)
	}
	if errors.Is(err, context.Canceled) {
		return "canceled"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the receiver closed the connection without a full answer"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		if dnsErr.IsNotFound {
			return "DNS: no such host " + dnsErr.Name
		}
		return "DNS: " + dnsErr.Error()
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		inner := opErr.Err
		var se *os.SyscallError
		if errors.As(inner, &se) {
			inner = se.Err
		}
		verb := map[string]string{"dial": "connect to", "read": "read from", "write": "write to"}[opErr.Op]
		if verb == "" {
			verb = opErr.Op
		}
		if opErr.Addr == nil {
			return fmt.Sprintf("%s: %v", verb, inner)
		}
		return fmt.Sprintf("%s %v: %v", verb, opErr.Addr, inner)
	}
	return err.Error()
}

// readLimited reads up to limit bytes of r and reports whether more
// followed. A cut multi-byte character is dropped and other invalid UTF-8
// replaced, so the result stores and shows as text. A little more is
// drained so the connection can be reused.
func readLimited(r io.Reader, limit int) (string, bool, error) {
	buf, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	truncated := len(buf) > limit
	if truncated {
		buf = buf[:limit]
		_, _ = io.CopyN(io.Discard, r, 64<<10)
		for i := len(buf) - 1; i >= 0 && i >= len(buf)-utf8.UTFMax; i-- {
			if utf8.RuneStart(buf[i]) {
				if !utf8.FullRune(buf[i:]) {
					buf = buf[:i]
				}
				break
			}
		}
	}
	s := string(buf)
	if !utf8.ValidString(s) {
		s = shorten(strings.ToValidUTF8(s, "\uFFFD"), limit)
	}
	return s, truncated, err
}

// retryAfter reads a Retry-After header (seconds or an HTTP date).
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// redactURL drops credentials and the query: a receiver URL may carry a
// token there.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "..."
	}
	u.Fragment = ""
	return shorten(u.String(), 200)
}

// shorten cuts s to at most n bytes, on a rune boundary.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
