package okta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/roster-dev/roster/connectors/internal/apiclient"
)

// APIError is an answer from Okta that a poll cannot get past, with what to
// do about it. It never holds a credential.
type APIError struct {
	Status  int    // HTTP status
	Code    string // Okta errorCode (E0000006) or OAuth error (invalid_scope)
	Summary string // Okta's errorSummary or error_description
	Request string // method and path, without the query
	Fix     string
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("okta: %s: HTTP %d", e.Request, e.Status)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Summary != "" {
		msg += " " + e.Summary
	}
	if e.Fix != "" {
		msg += ": " + e.Fix
	}
	return msg
}

// oktaError is Okta's error object.
type oktaError struct {
	ErrorCode    string `json:"errorCode"`
	ErrorSummary string `json:"errorSummary"`
	ErrorCauses  []struct {
		ErrorSummary string `json:"errorSummary"`
	} `json:"errorCauses"`
}

// classify tells apiclient how to treat Okta's throttling: 429 E0000047
// comes with X-Rate-Limit-Reset (and no Retry-After), so wait until the
// window resets by the server's clock.
func classify(resp *http.Response, _ []byte) (apiclient.Verdict, bool) {
	if resp.StatusCode != http.StatusTooManyRequests {
		return apiclient.Verdict{}, false
	}
	if apiclient.RetryAfter(resp.Header, time.Now()) > 0 {
		return apiclient.Verdict{Retry: true, Throttled: true}, true
	}
	wait := untilReset(resp.Header)
	if wait <= 0 {
		wait = time.Second
	}
	return apiclient.Verdict{Retry: true, Throttled: true, Wait: wait}, true
}

// untilReset is X-Rate-Limit-Reset minus the answer's Date: how long the
// current window lasts, by the server's clock.
func untilReset(h http.Header) time.Duration {
	reset, err := strconv.ParseInt(h.Get("X-Rate-Limit-Reset"), 10, 64)
	if err != nil {
		return 0
	}
	date, err := http.ParseTime(h.Get("Date"))
	if err != nil {
		date = time.Now()
	}
	return time.Unix(reset, 0).Sub(date)
}

// pacer slows requests down before Okta's rate limit is reached. Okta's
// limits are per endpoint bucket and org-wide, shared with every other app
// and token of the org: a poll that spends a bucket to zero makes other
// integrations fail. So when an answer says a bucket has no more than a
// tenth of its limit left, requests to it wait until its window resets.
type pacer struct {
	next  http.RoundTripper
	sleep func(ctx context.Context, d time.Duration) error
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	waits   int64
}

type bucket struct {
	limit, remaining int
	resetAt          time.Time // by the local clock
}

func (p *pacer) RoundTrip(req *http.Request) (*http.Response, error) {
	key := bucketKey(req.URL.Path)
	if d := p.reserve(key); d > 0 {
		if err := p.sleep(req.Context(), d); err != nil {
			return nil, err
		}
	}
	resp, err := p.next.RoundTrip(req)
	if err == nil {
		p.observe(key, resp.Header)
	}
	return resp, err
}

// headroom is the part of a bucket left to the org's other clients.
func headroom(limit int) int { return max(1, limit/10) }

func (p *pacer) reserve(key string) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.buckets[key]
	if b == nil {
		return 0
	}
	now := p.now()
	if !now.Before(b.resetAt) {
		delete(p.buckets, key)
		return 0
	}
	if b.remaining <= headroom(b.limit) {
		p.waits++
		return b.resetAt.Sub(now)
	}
	b.remaining-- // this request, before its answer says so
	return 0
}

func (p *pacer) observe(key string, h http.Header) {
	limit, err1 := strconv.Atoi(h.Get("X-Rate-Limit-Limit"))
	remaining, err2 := strconv.Atoi(h.Get("X-Rate-Limit-Remaining"))
	if err1 != nil || err2 != nil || limit <= 0 {
		return
	}
	in := untilReset(h)
	if in < 0 {
		in = 0
	}
	resetAt := p.now().Add(in)
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.buckets[key]
	if b != nil && absDuration(b.resetAt.Sub(resetAt)) < time.Second {
		// Same window: answers arrive out of order; the lowest count is
		// the latest.
		b.remaining = min(b.remaining, remaining)
		b.limit = limit
		return
	}
	p.buckets[key] = &bucket{limit: limit, remaining: remaining, resetAt: resetAt}
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

var idSegment = regexp.MustCompile(`^0[0-9a-z]{2}[0-9A-Za-z]{10,}$`)

// bucketKey names a rate-limit bucket by its path with object ids replaced:
// /api/v1/groups/00g1.../users -> /api/v1/groups/*/users.
func bucketKey(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i, s := range segs {
		if idSegment.MatchString(s) {
			segs[i] = "*"
		}
	}
	return "/" + strings.Join(segs, "/")
}

// get sends one GET and returns its answer. A 401 is retried once with a
// fresh token: Okta answers transient 401s, and an access token can expire
// or be revoked between two requests.
func (s *Source) get(ctx context.Context, rawURL string) (*apiclient.Response, error) {
	for attempt := 0; ; attempt++ {
		auth, err := s.auth.header(ctx)
		if err != nil {
			return nil, err
		}
		resp, err := s.api.Do(ctx, func(ctx context.Context) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
			if err != nil {
				return nil, err
			}
			req.Header.Set("Accept", "application/json")
			// Documented for the users APIs: leave the credentials object and
			// its links out of the answer, which makes pages smaller.
			req.Header.Set("Content-Type", `application/json; okta-response="omitCredentials,omitCredentialsLinks,omitTransitioningToStatus"`)
			req.Header.Set("Authorization", auth)
			req.Header.Set("User-Agent", "roster-okta-connector")
			return req, nil
		})
		if err == nil {
			s.noteDate(resp.Header)
			return resp, nil
		}
		if attempt == 0 && apiclient.IsStatus(err, http.StatusUnauthorized) {
			s.log.Warn("okta: 401; retrying once with a fresh token", "path", pathOf(rawURL))
			s.auth.refresh()
			continue
		}
		return nil, s.explain(err, rawURL)
	}
}

func pathOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "?"
	}
	return u.Path
}

// explain turns a failed request into an error naming the fix.
func (s *Source) explain(err error, rawURL string) error {
	var se *apiclient.StatusError
	if !errors.As(err, &se) {
		return fmt.Errorf("okta: GET %s: %w", pathOf(rawURL), err)
	}
	var oe oktaError
	_ = json.Unmarshal(se.Body, &oe)
	e := &APIError{Status: se.Status, Code: oe.ErrorCode, Summary: oe.ErrorSummary, Request: "GET " + pathOf(rawURL)}
	if e.Code == "" && e.Summary == "" {
		e.Summary = http.StatusText(se.Status)
	}
	kind := resourceOf(pathOf(rawURL))
	switch se.Status {
	case http.StatusUnauthorized:
		if s.auth.kind() == "api_token" {
			e.Fix = "Okta rejected api_token (revoked, expired after 30 days unused, or from another org): create a new API token (Security > API > Tokens) as an admin who can read users and groups, and set api_token"
		} else {
			e.Fix = "Okta rejected the service app's access token even after a fresh one: check that the app is active and that org_url is the org the app belongs to"
		}
	case http.StatusForbidden:
		if scope := insufficientScope(se.Header); scope != "" {
			e.Fix = fmt.Sprintf("the access token lacks the scope %s: grant it to the service app (Applications > the app > Okta API Scopes)", scope)
		} else if s.auth.kind() == "api_token" {
			e.Fix = fmt.Sprintf("the admin who created api_token may not read %s: create the token as an admin with the Read-only Administrator role (or a custom role that can view users, groups%s and the System Log)", kind, appsClause(s.cfg.AppID))
		} else {
			e.Fix = fmt.Sprintf("the service app's admin role may not read %s: assign it the Read-only Administrator role (Applications > the app > Admin roles), and grant the scopes %s", kind, joinScopes(s.scopes()))
		}
	case http.StatusNotFound:
		switch kind {
		case "applications":
			e.Fix = fmt.Sprintf("app_id %q: no such application in this org; copy the id (0oa...) from the app's address in the Admin Console", s.cfg.AppID)
		case "groups":
			e.Fix = "group_ids: a listed group does not exist in this org; copy each id (00g...) from the group's address in the Admin Console"
		}
	case http.StatusTooManyRequests:
		e.Fix = "Okta's rate limit for this endpoint stayed used up (it is shared by every app of the org); the next scheduled poll tries again, or give roster's app a larger share of the rate limit"
	}
	return e
}

func appsClause(appID string) string {
	if appID != "" {
		return ", applications"
	}
	return ""
}

func resourceOf(path string) string {
	switch {
	case strings.HasPrefix(path, "/api/v1/apps"):
		return "applications"
	case strings.HasPrefix(path, "/api/v1/groups"):
		return "groups"
	case strings.HasPrefix(path, "/api/v1/logs"):
		return "the System Log"
	}
	return "users"
}

var scopeParam = regexp.MustCompile(`scope="([^"]*)"`)

// insufficientScope returns the scope a Bearer token lacked, from Okta's
// WWW-Authenticate header, or "".
func insufficientScope(h http.Header) string {
	v := h.Get("WWW-Authenticate")
	if !strings.Contains(v, "insufficient_scope") {
		return ""
	}
	if m := scopeParam.FindStringSubmatch(v); m != nil && m[1] != "" {
		return m[1]
	}
	return "for this endpoint"
}

// nextLink returns the rel="next" link of an answer, or "". A link to
// another host is refused: the token is only ever sent to org_url.
func (s *Source) nextLink(h http.Header) (string, error) {
	for _, v := range h.Values("Link") {
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimSpace(part)
			if !strings.HasPrefix(part, "<") {
				continue
			}
			end := strings.Index(part, ">")
			if end < 0 {
				continue
			}
			target, params := part[1:end], part[end+1:]
			if !strings.Contains(params, `rel="next"`) && !strings.Contains(params, "rel=next") {
				continue
			}
			u, err := url.Parse(target)
			if err != nil {
				return "", fmt.Errorf("okta: unreadable next link")
			}
			if !strings.EqualFold(u.Scheme, s.org.Scheme) || !strings.EqualFold(u.Host, s.org.Host) {
				return "", fmt.Errorf("okta: next link points to %s, not org_url %s; refusing to follow it", u.Host, s.org.Host)
			}
			return u.String(), nil
		}
	}
	return "", nil
}
