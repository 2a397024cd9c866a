// Package scim is roster's SCIM 2.0 service provider (RFC 7643, RFC 7644):
// identity providers push users and groups to /scim/v2/{directory}. Every
// write lands in the directory's mirror and triggers a reconcile.
package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/roster-dev/roster/internal/secret"
	"github.com/roster-dev/roster/metrics"
	"github.com/roster-dev/roster/store"
)

// Schema URNs.
const (
	URNUser        = "urn:ietf:params:scim:schemas:core:2.0:User"
	URNGroup       = "urn:ietf:params:scim:schemas:core:2.0:Group"
	URNEnterprise  = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	URNListResp    = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	URNError       = "urn:ietf:params:scim:api:messages:2.0:Error"
	URNPatchOp     = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	URNSearch      = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
	URNBulkReq     = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
	URNBulkResp    = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
	URNSPConfig    = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	URNResourceTyp = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	URNSchema      = "urn:ietf:params:scim:schemas:core:2.0:Schema"
)

// ContentType is what roster answers with.
const ContentType = "application/scim+json"

// Options configure a Server.
type Options struct {
	Store *store.Store
	// Trigger asks for a reconcile of a directory; called after writes.
	Trigger func(ctx context.Context, dirID string) error
	Metrics *metrics.Metrics
	Log     *slog.Logger
	// PublicURL builds resource locations; empty uses the request's host.
	PublicURL         string
	MaxBodyBytes      int64
	BulkMaxOperations int
	// RateLimit is requests per second per directory (0: no limit).
	RateLimit float64
	Burst     int
	// RequestLogBody caps how much of a request body the request log keeps.
	RequestLogBody int
}

// Server serves SCIM for every directory.
type Server struct {
	opt Options
	log *slog.Logger

	dirs     gosync.Map // dirID → *dirEntry
	limiters gosync.Map // dirID → *rate.Limiter
	triggers gosync.Map // dirID → *triggerLoop
	reqLog   chan store.SCIMRequest
	dropped  atomic.Int64
	runCtx   context.Context
}

type dirEntry struct {
	dir     *store.Directory
	team    *store.Team
	fetched time.Time
}

// NewServer builds the SCIM server. Call Run to flush its request log and
// send triggers.
func NewServer(opt Options) *Server {
	if opt.MaxBodyBytes <= 0 {
		opt.MaxBodyBytes = 4 << 20
	}
	if opt.BulkMaxOperations <= 0 {
		opt.BulkMaxOperations = 1000
	}
	if opt.RequestLogBody <= 0 {
		opt.RequestLogBody = 8 << 10
	}
	if opt.Burst <= 0 {
		opt.Burst = int(opt.RateLimit * 2)
	}
	log := opt.Log
	if log == nil {
		log = slog.Default()
	}
	return &Server{opt: opt, log: log, reqLog: make(chan store.SCIMRequest, 8192), runCtx: context.Background()}
}

// Run flushes the request log until ctx is done.
func (s *Server) Run(ctx context.Context) {
	s.runCtx = ctx
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	var batch []store.SCIMRequest
	flush := func() {
		if len(batch) == 0 {
			return
		}
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.opt.Store.LogSCIMRequests(c, batch); err != nil {
			s.log.Warn("write scim request log", "err", err, "rows", len(batch))
		}
		cancel()
		batch = batch[:0]
	}
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case r := <-s.reqLog:
					batch = append(batch, r)
				default:
					flush()
					return
				}
			}
		case r := <-s.reqLog:
			batch = append(batch, r)
			if len(batch) >= 500 {
				flush()
			}
		case <-t.C:
			flush()
		}
	}
}

// Invalidate forgets cached directory and team state (after a token
// rotation or an SSO change), so the next request reads the store.
func (s *Server) Invalidate() {
	s.dirs.Range(func(k, _ any) bool { s.dirs.Delete(k); return true })
}

// scimError is an error in the SCIM error shape.
type scimError struct {
	Status   int
	ScimType string
	Detail   string
}

func (e *scimError) Error() string { return e.Detail }

func errf(status int, scimType, format string, args ...any) *scimError {
	return &scimError{Status: status, ScimType: scimType, Detail: fmt.Sprintf(format, args...)}
}

func writeSCIM(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", ContentType)
	w.WriteHeader(status)
	if v == nil {
		return
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeErr(w http.ResponseWriter, e *scimError) {
	body := map[string]any{"schemas": []string{URNError}, "status": strconv.Itoa(e.Status), "detail": e.Detail}
	if e.ScimType != "" {
		body["scimType"] = e.ScimType
	}
	writeSCIM(w, e.Status, body)
}

type recorder struct {
	http.ResponseWriter
	status int
	detail string
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// ServeHTTP routes /scim/v2/{directory}/{resource}[/{id}].
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rest, ok := strings.CutPrefix(r.URL.Path, "/scim/v2/")
	if !ok {
		writeErr(w, errf(http.StatusNotFound, "", "SCIM lives under /scim/v2/{directory id}"))
		return
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	dirID := parts[0]
	resource, id := "", ""
	if len(parts) > 1 {
		resource = parts[1]
	}
	if len(parts) > 2 {
		id = parts[2]
	}
	rec := &recorder{ResponseWriter: w, status: 200}
	var body []byte
	var serr *scimError
	dir := s.authenticate(r, dirID)
	switch {
	case dir == nil:
		rec.Header().Set("WWW-Authenticate", `Bearer realm="roster SCIM"`)
		serr = errf(http.StatusUnauthorized, "", "missing or invalid bearer token")
	case len(parts) > 3:
		serr = errf(http.StatusNotFound, "", "no such SCIM path: %s", r.URL.Path)
	default:
		if msg := eligibility(dir.team); msg != "" {
			serr = errf(http.StatusForbidden, "", "%s", msg)
			break
		}
		if !s.allow(dirID) {
			rec.Header().Set("Retry-After", "1")
			serr = errf(http.StatusTooManyRequests, "tooMany", "too many requests for this directory; retry after 1 second")
			break
		}
		if r.Body != nil && r.Method != http.MethodGet && r.Method != http.MethodDelete {
			var rerr *scimError
			body, rerr = readBody(rec, r, s.opt.MaxBodyBytes)
			if rerr != nil {
				serr = rerr
				break
			}
		}
		serr = s.route(rec, r, dir, resource, id, body)
	}
	if serr != nil {
		rec.detail = serr.Detail
		writeErr(rec, serr)
	}
	s.observe(r, dirID, dir != nil, resource, rec, body, start)
}

func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, *scimError) {
	lr := http.MaxBytesReader(w, r.Body, max)
	// Size the buffer from Content-Length (bytes.Buffer wants 512 bytes
	// free before each read, so it never grows for a truthful length); it
	// was a fixed 32 KiB per request, half of all bytes allocated under
	// SCIM PATCH load.
	size := 1024
	if r.ContentLength > 0 && r.ContentLength <= max {
		size = int(r.ContentLength) + bytes.MinRead
	}
	var buf bytes.Buffer
	buf.Grow(size)
	if _, err := buf.ReadFrom(lr); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errf(http.StatusRequestEntityTooLarge, "tooLarge", "request body is larger than %d bytes", max)
		}
		return nil, errf(http.StatusBadRequest, "invalidSyntax", "reading request body: %v", err)
	}
	return buf.Bytes(), nil
}

func eligibility(t *store.Team) string {
	switch {
	case t == nil:
		return "directory has no team"
	case !t.SSOActive():
		return "SCIM requires an active SSO connection: the team's SSO connection is inactive, so provisioning is refused until an admin activates it"
	case t.Plan != store.PlanEnterprise:
		return fmt.Sprintf("SCIM requires the enterprise plan; this team is on the %s plan", t.Plan)
	}
	return ""
}

// authenticate returns the directory when the bearer token is its token. A
// missing directory and a wrong token look the same to the caller.
func (s *Server) authenticate(r *http.Request, dirID string) *dirEntry {
	auth := r.Header.Get("Authorization")
	tok := ""
	if len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		tok = strings.TrimSpace(auth[7:])
	}
	if tok == "" || dirID == "" {
		return nil
	}
	e := s.directory(r.Context(), dirID)
	if e == nil || e.dir.Type != "scim" || !secret.Matches(tok, e.dir.TokenHash) {
		return nil
	}
	return e
}

// dirCacheTTL bounds how stale a cached token or SSO state may be in a
// replica that did not make the change itself.
const dirCacheTTL = time.Second

func (s *Server) directory(ctx context.Context, dirID string) *dirEntry {
	if v, ok := s.dirs.Load(dirID); ok {
		e := v.(*dirEntry)
		if time.Since(e.fetched) < dirCacheTTL {
			return e
		}
	}
	d, err := s.opt.Store.GetDirectory(ctx, dirID)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("read directory", "directory", dirID, "err", err)
		}
		return nil
	}
	t, err := s.opt.Store.GetTeam(ctx, d.TeamID)
	if err != nil {
		return nil
	}
	e := &dirEntry{dir: d, team: t, fetched: time.Now()}
	s.dirs.Store(dirID, e)
	return e
}

func (s *Server) allow(dirID string) bool {
	if s.opt.RateLimit <= 0 {
		return true
	}
	v, ok := s.limiters.Load(dirID)
	if !ok {
		v, _ = s.limiters.LoadOrStore(dirID, rate.NewLimiter(rate.Limit(s.opt.RateLimit), s.opt.Burst))
	}
	return v.(*rate.Limiter).Allow()
}

func (s *Server) observe(r *http.Request, dirID string, known bool, resource string, rec *recorder, body []byte, start time.Time) {
	d := time.Since(start)
	res := resourceLabel(resource)
	if s.opt.Metrics != nil {
		s.opt.Metrics.SCIMRequests.WithLabelValues(r.Method, res, strconv.Itoa(rec.status)).Inc()
		s.opt.Metrics.SCIMDuration.WithLabelValues(r.Method, res).Observe(d.Seconds())
	}
	if !known {
		return // never log requests that did not authenticate against a directory
	}
	entry := store.SCIMRequest{
		DirectoryID: dirID, At: start.UTC(), Method: r.Method, Path: r.URL.RequestURI(), Status: rec.status,
		Duration: d, Error: rec.detail, Body: redactBody(body, s.opt.RequestLogBody),
	}
	select {
	case s.reqLog <- entry:
	default:
		s.dropped.Add(1)
	}
	if rec.status >= 500 {
		s.log.Error("scim request failed", "directory", dirID, "method", r.Method, "path", r.URL.Path, "status", rec.status, "detail", rec.detail)
	}
}

func resourceLabel(r string) string {
	switch r {
	case "Users", "Groups", "Bulk", "ServiceProviderConfig", "Schemas", "ResourceTypes", ".search":
		return r
	case "":
		return "root"
	}
	return "other"
}

// redactBody keeps a request body for the log, without secrets.
func redactBody(body []byte, max int) string {
	if len(body) == 0 {
		return ""
	}
	if len(body) <= max && nothingToRedact(body) {
		return string(body)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		if len(body) > max {
			body = body[:max]
		}
		return strings.ToValidUTF8(string(body), "?")
	}
	v = redact(v)
	b, _ := json.Marshal(v)
	if len(b) > max {
		return fmt.Sprintf(`{"truncated": true, "bytes": %d}`, len(b))
	}
	return string(b)
}

// nothingToRedact says whether body is valid JSON in which redact would
// change nothing, without decoding it (most bodies: a member PATCH, a user
// without a password): no key or path can hold "password", "secret" or
// "token" in any case, and no \u escape can spell one.
func nothingToRedact(body []byte) bool {
	if bytes.Contains(body, []byte(`\u`)) || !utf8.Valid(body) {
		return false
	}
	lower := bytes.ToLower(body)
	for _, w := range []string{"password", "secret", "token"} {
		if bytes.Contains(lower, []byte(w)) {
			return false
		}
	}
	return json.Valid(body)
}

func redact(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			lk := strings.ToLower(k)
			if strings.Contains(lk, "password") || strings.Contains(lk, "secret") || strings.HasSuffix(lk, "token") {
				t[k] = "[REDACTED]"
				continue
			}
			if lk == "value" {
				if p, ok := t["path"].(string); ok && strings.Contains(strings.ToLower(p), "password") {
					t[k] = "[REDACTED]"
					continue
				}
			}
			t[k] = redact(x)
		}
	case []any:
		for i, x := range t {
			t[i] = redact(x)
		}
	}
	return v
}

// wrote records that a directory changed: it triggers a reconcile (after
// the caller's commit) through a per-directory loop that coalesces bursts.
func (s *Server) wrote(dirID string) {
	v, ok := s.triggers.Load(dirID)
	if !ok {
		v, _ = s.triggers.LoadOrStore(dirID, &triggerLoop{})
	}
	tl := v.(*triggerLoop)
	tl.pending.Store(true)
	if tl.running.CompareAndSwap(false, true) {
		go s.runTrigger(dirID, tl)
	}
}

// triggerGap is how long the trigger loop waits before sending the next
// trigger of a burst.
const triggerGap = 2 * time.Millisecond

type triggerLoop struct {
	pending  atomic.Bool
	running  atomic.Bool
	lastSync time.Time
}

// runTrigger sends one trigger per burst: every write sets pending before
// the loop's next swap, so each write is followed by a trigger that starts
// after it committed.
func (s *Server) runTrigger(dirID string, tl *triggerLoop) {
	for {
		for tl.pending.Swap(false) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if s.opt.Trigger != nil {
				if err := s.opt.Trigger(ctx, dirID); err != nil {
					s.log.Warn("trigger reconcile", "directory", dirID, "err", err)
				}
			}
			if time.Since(tl.lastSync) > time.Second {
				tl.lastSync = time.Now()
				if err := s.opt.Store.TouchDirectorySync(ctx, dirID, tl.lastSync); err != nil {
					s.log.Warn("record sync time", "directory", dirID, "err", err)
				}
			}
			cancel()
			if tl.pending.Load() {
				// Writes kept coming while the trigger was sent: let a
				// few more gather into the next one. Each costs a queue
				// round trip (a Lua script on Redis) and, at thousands
				// of writes a second, mostly merges into a run that is
				// already queued.
				time.Sleep(triggerGap)
			}
		}
		tl.running.Store(false)
		// A write may have set pending after the last swap but before
		// running was cleared: take the loop again if so.
		if !tl.pending.Load() || !tl.running.CompareAndSwap(false, true) {
			return
		}
	}
}
