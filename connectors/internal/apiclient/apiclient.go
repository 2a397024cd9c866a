// Package apiclient is the HTTP client the directory-API connectors (Google
// Workspace, Microsoft Graph, Okta) share: a bounded number of requests in
// flight per poll, throttling answers (429, 503, and whatever a provider's
// Classify recognises) waited out as Retry-After says, other transient
// failures retried with capped exponential backoff and jitter, and counts of
// what a poll cost.
//
// It never turns a failure into an empty answer: a request that still fails
// after its retries returns an error, and the poll that made it changes
// nothing.
package apiclient

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for a Client's zero fields.
const (
	DefaultConcurrency = 4
	DefaultMaxAttempts = 6
	DefaultBaseBackoff = 500 * time.Millisecond
	DefaultMaxBackoff  = 30 * time.Second
	// DefaultMaxWait caps one Retry-After: a provider asking for longer than
	// this fails the poll, which the next scheduled poll retries.
	DefaultMaxWait = 2 * time.Minute
	// MaxBody bounds one response body; directory pages are far smaller.
	MaxBody = 64 << 20
)

// Verdict is what Classify says about an answer that is not 2xx.
type Verdict struct {
	// Retry asks for the request to be sent again.
	Retry bool
	// Throttled counts the answer as rate limiting.
	Throttled bool
	// Wait, when not zero, is how long to wait before retrying (overrides
	// Retry-After and the backoff).
	Wait time.Duration
}

// Client sends a connector's requests. The zero value of each field takes
// its default; HTTP must be set.
type Client struct {
	HTTP *http.Client
	// Concurrency bounds requests in flight through this client, so one huge
	// tenant cannot take every connection of the process.
	Concurrency int
	MaxAttempts int
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	MaxWait     time.Duration
	// Classify, when set, is asked first about every non-2xx answer; a
	// provider uses it for throttling that is not a 429 (Google's 403
	// rateLimitExceeded). The zero Verdict falls back to the defaults:
	// 429, 500, 502, 503 and 504 are retried, 429 and 503 count as throttling.
	Classify func(resp *http.Response, body []byte) (Verdict, bool)
	// Sleep waits; tests may replace it. It returns early with ctx's error.
	Sleep func(ctx context.Context, d time.Duration) error

	Stats Stats

	semOnce sync.Once
	sem     chan struct{}
}

// Stats counts what requests through a Client cost.
type Stats struct {
	Requests  atomic.Int64 // every attempt sent
	Retries   atomic.Int64 // attempts after the first
	Throttled atomic.Int64 // answers counted as throttling
	Errors    atomic.Int64 // requests that failed for good
}

// StatusError is a non-2xx answer that was not retried, or still failed
// after every retry.
type StatusError struct {
	Method string
	URL    string
	Status int
	Header http.Header
	Body   []byte
}

func (e *StatusError) Error() string {
	msg := bytes.TrimSpace(e.Body)
	if len(msg) > 300 {
		msg = append(msg[:300:300], "..."...)
	}
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.URL, e.Status, msg)
}

// Response is a 2xx answer with its body read.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends the request newReq makes (called once per attempt, so each
// attempt has a fresh body) and returns a 2xx answer, or an error:
// *StatusError for an answer, the transport's error otherwise.
func (c *Client) Do(ctx context.Context, newReq func(ctx context.Context) (*http.Request, error)) (*Response, error) {
	if err := c.acquire(ctx); err != nil {
		return nil, err
	}
	defer c.release()

	attempts := c.MaxAttempts
	if attempts <= 0 {
		attempts = DefaultMaxAttempts
	}
	var last error
	for attempt := 0; attempt < attempts; attempt++ {
		if attempt > 0 {
			c.Stats.Retries.Add(1)
		}
		req, err := newReq(ctx)
		if err != nil {
			return nil, fmt.Errorf("build request: %w", err)
		}
		c.Stats.Requests.Add(1)
		resp, err := c.HTTP.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if permanent(err) {
				c.Stats.Errors.Add(1)
				return nil, err
			}
			last = err
			if err := c.sleep(ctx, c.backoff(attempt)); err != nil {
				return nil, err
			}
			continue
		}
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
		resp.Body.Close()
		if rerr != nil {
			last = fmt.Errorf("%s %s: read body: %w", req.Method, req.URL.Redacted(), rerr)
			if err := c.sleep(ctx, c.backoff(attempt)); err != nil {
				return nil, err
			}
			continue
		}
		if len(body) > MaxBody {
			c.Stats.Errors.Add(1)
			return nil, fmt.Errorf("%s %s: answer larger than %d bytes", req.Method, req.URL.Redacted(), MaxBody)
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return &Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
		}
		serr := &StatusError{Method: req.Method, URL: req.URL.Redacted(), Status: resp.StatusCode, Header: resp.Header, Body: body}
		v := c.classify(resp, body)
		if v.Throttled {
			c.Stats.Throttled.Add(1)
		}
		if !v.Retry {
			c.Stats.Errors.Add(1)
			return nil, serr
		}
		last = serr
		wait := v.Wait
		if wait == 0 {
			wait = RetryAfter(resp.Header, time.Now())
		}
		if wait == 0 {
			wait = c.backoff(attempt)
		}
		if max := c.maxWait(); wait > max {
			c.Stats.Errors.Add(1)
			return nil, fmt.Errorf("%w (the provider asked to wait %s, more than %s)", serr, wait.Round(time.Second), max)
		}
		if attempt+1 < attempts {
			if err := c.sleep(ctx, wait); err != nil {
				return nil, err
			}
		}
	}
	c.Stats.Errors.Add(1)
	return nil, fmt.Errorf("after %d attempts: %w", attempts, last)
}

func (c *Client) classify(resp *http.Response, body []byte) Verdict {
	if c.Classify != nil {
		if v, ok := c.Classify(resp, body); ok {
			return v
		}
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return Verdict{Retry: true, Throttled: true}
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout:
		return Verdict{Retry: true}
	}
	return Verdict{}
}

// backoff is capped exponential backoff with full jitter: a random wait in
// [base·2^n / 2, base·2^n], at most MaxBackoff.
func (c *Client) backoff(attempt int) time.Duration {
	base, max := c.BaseBackoff, c.MaxBackoff
	if base <= 0 {
		base = DefaultBaseBackoff
	}
	if max <= 0 {
		max = DefaultMaxBackoff
	}
	d := base << min(attempt, 20)
	if d > max || d <= 0 {
		d = max
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func (c *Client) maxWait() time.Duration {
	if c.MaxWait > 0 {
		return c.MaxWait
	}
	return DefaultMaxWait
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if c.Sleep != nil {
		return c.Sleep(ctx, d)
	}
	return Sleep(ctx, d)
}

// Sleep waits d, or returns ctx's error as soon as ctx is done.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (c *Client) acquire(ctx context.Context) error {
	c.semOnce.Do(func() {
		n := c.Concurrency
		if n <= 0 {
			n = DefaultConcurrency
		}
		c.sem = make(chan struct{}, n)
	})
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Client) release() { <-c.sem }

// permanent reports transport errors that another attempt cannot mend: a
// host name that does not exist, or a server certificate that does not
// verify. Retrying them only keeps an admin waiting for the same answer.
func permanent(err error) bool {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return true
	}
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	return errors.As(err, &unknownCA) || errors.As(err, &hostErr) || errors.As(err, &invalid)
}

// RetryAfter reads a Retry-After header: seconds, or an HTTP date. Zero means
// none (or one in the past).
func RetryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(n * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// IsStatus reports whether err is a StatusError with that status.
func IsStatus(err error, status int) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status == status
}
