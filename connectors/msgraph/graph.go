package msgraph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/roster-dev/roster/connectors"
	"github.com/roster-dev/roster/connectors/internal/apiclient"
)

// Graph's documented limits.
const (
	// batchSize is the most requests one $batch may hold.
	batchSize = 20
	// memberPage is the largest $top for a group's members.
	memberPage = 999
	// checkChunk is the most group ids one checkMemberGroups may name.
	checkChunk = 20
)

// Options tune how a source talks to Graph; the zero value is right for
// production. Tests set Sleep and short backoffs.
type Options struct {
	// HTTPClient carries the requests; default a client with a 60 s
	// timeout and the default transport.
	HTTPClient *http.Client
	// Concurrency bounds Graph requests in flight for one poll (default
	// apiclient.DefaultConcurrency).
	Concurrency int
	MaxAttempts int
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	MaxWait     time.Duration
	// Sleep waits between retries; it returns early with ctx's error.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Source reads one Entra tenant. It implements connectors.Source,
// connectors.DeltaSource, connectors.Checker and connectors.Meter.
type Source struct {
	cfg      Config
	log      *slog.Logger
	api      *apiclient.Client // Graph
	tokAPI   *apiclient.Client // the token endpoint
	tokens   *tokenSource
	root     *url.URL // graph_url
	base     string   // graph_url + "/v1.0"
	groupIDs []string // lower-cased, sorted
	sleepFn  func(ctx context.Context, d time.Duration) error
	attempts int
	maxWait  time.Duration
	conc     int // batches in flight at once

	pages, items, throttled, retries atomic.Int64
}

var (
	_ connectors.DeltaSource = (*Source)(nil)
	_ connectors.Checker     = (*Source)(nil)
	_ connectors.Meter       = (*Source)(nil)
)

// Open validates cfg and makes a source. It does not call Graph.
func Open(_ context.Context, cfg *Config, log *slog.Logger, opts Options) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	var cert *certificate
	if cfg.ClientCertificatePEM != "" {
		c, err := parseCertificate(cfg.ClientCertificatePEM, cfg.ClientKeyPEM)
		if err != nil {
			return nil, err
		}
		cert = c
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	root, err := url.Parse(cfg.graphURL())
	if err != nil {
		return nil, fmt.Errorf("graph_url: %w", err)
	}
	s := &Source{
		cfg:      *cfg,
		log:      log,
		root:     root,
		base:     cfg.graphURL() + "/v1.0",
		sleepFn:  opts.Sleep,
		attempts: opts.MaxAttempts,
	}
	if s.attempts <= 0 {
		s.attempts = apiclient.DefaultMaxAttempts
	}
	if s.conc = opts.Concurrency; s.conc <= 0 {
		s.conc = apiclient.DefaultConcurrency
	}
	if s.maxWait = opts.MaxWait; s.maxWait <= 0 {
		s.maxWait = apiclient.DefaultMaxWait
	}
	for _, g := range cfg.GroupIDs {
		s.groupIDs = append(s.groupIDs, strings.ToLower(strings.TrimSpace(g)))
	}
	sort.Strings(s.groupIDs)
	s.api = &apiclient.Client{
		HTTP: hc, Concurrency: opts.Concurrency, MaxAttempts: opts.MaxAttempts,
		BaseBackoff: opts.BaseBackoff, MaxBackoff: opts.MaxBackoff, MaxWait: opts.MaxWait,
		Sleep: opts.Sleep, Classify: s.classify,
	}
	// The token endpoint has a client of its own: a Graph request that
	// holds a slot while it waits for a token must not wait for a slot.
	s.tokAPI = &apiclient.Client{
		HTTP: hc, Concurrency: 1, MaxAttempts: opts.MaxAttempts,
		BaseBackoff: opts.BaseBackoff, MaxBackoff: opts.MaxBackoff, MaxWait: opts.MaxWait,
		Sleep: opts.Sleep,
	}
	s.tokens = newTokenSource(cfg, cert, &http.Client{Transport: apiclient.Transport{Client: s.tokAPI}})
	return s, nil
}

// Usage says what the source's requests cost so far: Graph and token
// requests, and the requests inside $batch answers that were throttled
// and sent again.
func (s *Source) Usage() connectors.Usage {
	return connectors.Usage{
		Requests:  s.api.Stats.Requests.Load() + s.tokAPI.Stats.Requests.Load(),
		Pages:     s.pages.Load(),
		Items:     s.items.Load(),
		Throttled: s.api.Stats.Throttled.Load() + s.tokAPI.Stats.Throttled.Load() + s.throttled.Load(),
		Retries:   s.api.Stats.Retries.Load() + s.tokAPI.Stats.Retries.Load() + s.retries.Load(),
	}
}

// classify retries a 401 with a fresh token when the refused token came
// from the cache (it can be revoked before it expires); a token this
// source just got and Graph still refuses is a real failure. Everything
// else takes apiclient's defaults.
func (s *Source) classify(resp *http.Response, _ []byte) (apiclient.Verdict, bool) {
	if resp.StatusCode != http.StatusUnauthorized || resp.Request == nil {
		return apiclient.Verdict{}, false
	}
	used := strings.TrimPrefix(resp.Request.Header.Get("Authorization"), "Bearer ")
	if used == "" || s.tokens.fetchedHere(used) {
		return apiclient.Verdict{}, true
	}
	s.tokens.drop(used)
	return apiclient.Verdict{Retry: true, Wait: time.Millisecond}, true
}

func (s *Source) sleep(ctx context.Context, d time.Duration) error {
	if s.sleepFn != nil {
		return s.sleepFn(ctx, d)
	}
	return apiclient.Sleep(ctx, d)
}

// GraphError is an answer from Graph that was not a success.
type GraphError struct {
	Method  string
	Path    string
	Status  int
	Code    string
	Message string
	// Inner holds the codes of nested innerError objects.
	Inner []string
	// GaveUp is set when the request was retried and still failed.
	GaveUp bool
}

func (e *GraphError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: HTTP %d", e.Method, e.Path, e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		msg := e.Message
		if len(msg) > 300 {
			msg = msg[:300] + "..."
		}
		b.WriteString(": " + msg)
	}
	if e.GaveUp {
		b.WriteString(" (still failing after retries)")
	}
	return b.String()
}

// HasCode reports whether the error or one of its inner errors has code.
func (e *GraphError) HasCode(code string) bool {
	if strings.EqualFold(e.Code, code) {
		return true
	}
	for _, c := range e.Inner {
		if strings.EqualFold(c, code) {
			return true
		}
	}
	return false
}

func parseGraphError(method, path string, status int, body []byte) *GraphError {
	ge := &GraphError{Method: method, Path: path, Status: status}
	var env struct {
		Error map[string]json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &env) != nil || env.Error == nil {
		ge.Message = strings.TrimSpace(string(body))
		return ge
	}
	obj := env.Error
	_ = json.Unmarshal(obj["code"], &ge.Code)
	_ = json.Unmarshal(obj["message"], &ge.Message)
	for depth := 0; depth < 8; depth++ {
		raw := obj["innerError"]
		if raw == nil {
			raw = obj["innererror"]
		}
		var inner map[string]json.RawMessage
		if raw == nil || json.Unmarshal(raw, &inner) != nil {
			break
		}
		var code string
		if json.Unmarshal(inner["code"], &code) == nil && code != "" {
			ge.Inner = append(ge.Inner, code)
		}
		obj = inner
	}
	return ge
}

// isResync reports whether Graph says a delta link can no longer be used.
func isResync(err error) bool {
	var ge *GraphError
	if !errors.As(err, &ge) {
		return false
	}
	return ge.Status == http.StatusGone || ge.HasCode("syncStateNotFound") || ge.HasCode("resyncRequired")
}

// link turns a nextLink, a deltaLink or a cursor's link into a URL under
// graph_url. Only the path and query are taken from it, so neither a
// proxy's rewritten host nor a tampered cursor can send the token
// elsewhere.
func (s *Source) link(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("link %q: not a URL", raw)
	}
	p := u.EscapedPath()
	i := strings.Index(p, "/v1.0/")
	if i < 0 {
		return "", fmt.Errorf("link %q: not a Graph v1.0 link", raw)
	}
	out := s.base + p[i+len("/v1.0"):]
	if u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	return out, nil
}

// relative is a link relative to the API version, as $batch wants it.
func (s *Source) relative(raw string) (string, error) {
	abs, err := s.link(raw)
	if err != nil {
		return "", err
	}
	return strings.TrimPrefix(abs, s.base), nil
}

// do sends one request to Graph.
func (s *Source) do(ctx context.Context, method, rawURL string, body []byte, header http.Header) (*apiclient.Response, error) {
	path := rawURL
	if u, err := url.Parse(rawURL); err == nil {
		path = u.Path
	}
	resp, err := s.api.Do(ctx, func(ctx context.Context) (*http.Request, error) {
		tok, err := s.tokens.Token(ctx)
		if err != nil {
			return nil, err
		}
		var rd *bytes.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		var req *http.Request
		if rd != nil {
			req, err = http.NewRequestWithContext(ctx, method, rawURL, rd)
		} else {
			req, err = http.NewRequestWithContext(ctx, method, rawURL, nil)
		}
		if err != nil {
			return nil, err
		}
		for k, vs := range header {
			req.Header[k] = vs
		}
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("Accept", "application/json")
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		return req, nil
	})
	if err != nil {
		var ae *AuthError
		if errors.As(err, &ae) {
			return nil, ae
		}
		var se *apiclient.StatusError
		if errors.As(err, &se) {
			ge := parseGraphError(method, path, se.Status, se.Body)
			ge.GaveUp = err != error(se)
			return nil, ge
		}
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return resp, nil
}

// page is one page of a Graph collection.
type page struct {
	Value     []json.RawMessage `json:"value"`
	NextLink  string            `json:"@odata.nextLink"`
	DeltaLink string            `json:"@odata.deltaLink"`
}

// readDelta reads one delta round from start to its deltaLink, handing
// every entry to fn in the order Graph gave them. Graph's delta pages have
// no size a client can ask for, and a page may be empty while more
// follow, so a page is never judged by its size here.
func (s *Source) readDelta(ctx context.Context, start string, fn func(json.RawMessage) error) (string, error) {
	next := start
	for {
		resp, err := s.do(ctx, http.MethodGet, next, nil, nil)
		if err != nil {
			return "", err
		}
		var pg page
		if err := json.Unmarshal(resp.Body, &pg); err != nil {
			return "", fmt.Errorf("GET %s: unreadable page: %w", pathOf(next), err)
		}
		s.pages.Add(1)
		for _, v := range pg.Value {
			if err := fn(v); err != nil {
				return "", err
			}
		}
		switch {
		case pg.NextLink != "":
			n, err := s.link(pg.NextLink)
			if err != nil {
				return "", err
			}
			if n == next {
				return "", fmt.Errorf("GET %s: the next link points at the same page", pathOf(next))
			}
			next = n
		case pg.DeltaLink != "":
			return s.link(pg.DeltaLink)
		default:
			return "", fmt.Errorf("GET %s: a delta page with neither @odata.nextLink nor @odata.deltaLink; the round is incomplete", pathOf(next))
		}
	}
}

func pathOf(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Path
	}
	return raw
}

// job is one request inside a $batch. A list job follows its nextLinks
// (in later batches) and collects every page's values.
type job struct {
	key    string
	method string
	url    string // relative to /v1.0
	body   any
	list   bool
	top    int // the page size asked, for the short-page check
}

// result is what a job got.
type result struct {
	status int
	body   json.RawMessage
	values []json.RawMessage
	err    *GraphError
}

type batchResponse struct {
	Responses []struct {
		ID      string            `json:"id"`
		Status  int               `json:"status"`
		Headers map[string]string `json:"headers"`
		Body    json.RawMessage   `json:"body"`
	} `json:"responses"`
}

// run sends jobs in $batch requests of up to 20, in parallel within the
// client's concurrency, until every job is done. Requests inside a batch
// that Graph throttled (429, 503) or failed transiently (500, 502, 504)
// are sent again after the longest Retry-After they named, or a capped
// backoff; apiclient cannot see inside a batch, so this is done here. A
// job whose request failed for good has its err set; a transport failure
// or a short page fails the whole run.
func (s *Source) run(ctx context.Context, jobs []*job) (map[string]*result, error) {
	results := make(map[string]*result, len(jobs))
	tries := map[string]int{}
	pending := append([]*job(nil), jobs...)
	for round := 0; len(pending) > 0; round++ {
		var mu sync.Mutex
		var again []*job
		var wait time.Duration
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(s.conc)
		for start := 0; start < len(pending); start += batchSize {
			chunk := pending[start:min(start+batchSize, len(pending))]
			g.Go(func() error {
				retry, w, err := s.sendBatch(gctx, chunk, results, &mu)
				if err != nil {
					return err
				}
				mu.Lock()
				again = append(again, retry...)
				wait = max(wait, w)
				mu.Unlock()
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		var next []*job
		throttledRound := false
		for _, j := range again {
			if r := results[j.key]; r != nil && r.status == -1 {
				// Sent again because of throttling or a transient error.
				tries[j.key]++
				if tries[j.key] >= s.attempts {
					return nil, fmt.Errorf("$batch %s %s: still throttled or failing after %d attempts", j.method, pathOf(j.url), tries[j.key])
				}
				r.status = 0
				throttledRound = true
			}
			next = append(next, j)
		}
		if throttledRound {
			if wait > s.maxWait {
				return nil, fmt.Errorf("$batch: Graph asked to wait %s, more than %s; the next poll tries again", wait.Round(time.Second), s.maxWait)
			}
			if wait == 0 {
				wait = s.backoff(round)
			}
			if err := s.sleep(ctx, wait); err != nil {
				return nil, err
			}
		}
		pending = next
	}
	return results, nil
}

func (s *Source) backoff(round int) time.Duration {
	d := apiclient.DefaultBaseBackoff << min(round, 6)
	return min(d, apiclient.DefaultMaxBackoff)
}

// sendBatch sends one $batch and files its answers. It returns the jobs to
// send again (a list's next page, or a throttled request, marked with
// status -1) and how long Graph asked to wait.
func (s *Source) sendBatch(ctx context.Context, chunk []*job, results map[string]*result, mu *sync.Mutex) ([]*job, time.Duration, error) {
	type reqT struct {
		ID      string            `json:"id"`
		Method  string            `json:"method"`
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers,omitempty"`
		Body    any               `json:"body,omitempty"`
	}
	byID := make(map[string]*job, len(chunk))
	reqs := make([]reqT, len(chunk))
	for i, j := range chunk {
		id := strconv.Itoa(i + 1)
		byID[id] = j
		reqs[i] = reqT{ID: id, Method: j.method, URL: j.url}
		if j.body != nil {
			reqs[i].Body = j.body
			reqs[i].Headers = map[string]string{"Content-Type": "application/json"}
		}
	}
	payload, err := json.Marshal(map[string]any{"requests": reqs})
	if err != nil {
		return nil, 0, fmt.Errorf("$batch: %w", err)
	}
	resp, err := s.do(ctx, http.MethodPost, s.base+"/$batch", payload, nil)
	if err != nil {
		return nil, 0, err
	}
	var br batchResponse
	if err := json.Unmarshal(resp.Body, &br); err != nil {
		return nil, 0, fmt.Errorf("POST /$batch: unreadable answer: %w", err)
	}
	var again []*job
	var wait time.Duration
	answered := map[string]bool{}
	mu.Lock()
	defer mu.Unlock()
	for _, r := range br.Responses {
		j := byID[r.ID]
		if j == nil || answered[r.ID] {
			continue
		}
		answered[r.ID] = true
		res := results[j.key]
		if res == nil {
			res = &result{}
			results[j.key] = res
		}
		switch {
		case r.Status >= 200 && r.Status < 300:
			res.status = r.Status
			if !j.list {
				res.body = r.Body
				continue
			}
			var pg page
			if err := json.Unmarshal(r.Body, &pg); err != nil {
				return nil, 0, fmt.Errorf("$batch GET %s: unreadable page: %w", pathOf(j.url), err)
			}
			s.pages.Add(1)
			if pg.NextLink != "" && j.top > 0 && len(pg.Value) < j.top {
				return nil, 0, fmt.Errorf("$batch GET %s: a page of %d entries where %d were asked, with a next link: the listing would be incomplete", pathOf(j.url), len(pg.Value), j.top)
			}
			res.values = append(res.values, pg.Value...)
			if pg.NextLink != "" {
				rel, err := s.relative(pg.NextLink)
				if err != nil {
					return nil, 0, err
				}
				j.url = rel
				again = append(again, j)
			}
		case r.Status == http.StatusTooManyRequests || r.Status == http.StatusServiceUnavailable ||
			r.Status == http.StatusInternalServerError || r.Status == http.StatusBadGateway || r.Status == http.StatusGatewayTimeout:
			if r.Status == http.StatusTooManyRequests || r.Status == http.StatusServiceUnavailable {
				s.throttled.Add(1)
			}
			s.retries.Add(1)
			res.status = -1
			for k, v := range r.Headers {
				if strings.EqualFold(k, "Retry-After") {
					wait = max(wait, apiclient.RetryAfter(http.Header{"Retry-After": {v}}, time.Now()))
				}
			}
			again = append(again, j)
		default:
			res.status = r.Status
			res.err = parseGraphError(j.method, pathOf(j.url), r.Status, r.Body)
		}
	}
	for id, j := range byID {
		if !answered[id] {
			return nil, 0, fmt.Errorf("POST /$batch: no answer for %s %s", j.method, pathOf(j.url))
		}
	}
	return again, wait, nil
}
