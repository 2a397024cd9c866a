// Package scim is roster's SCIM 2.0 service provider (RFC 7643, RFC 7644):
// identity providers push users and groups to /scim/v2/{directory}. Every
// write lands in the directory's mirror and triggers a reconcile.
//
// # Logs
//
// Every request gets one line, "scim request", with method, path (never
// the query, which may carry filters with personal data or a misplaced
// credential), status, duration in seconds, directory (once the bearer
// token matched it) and request_id (the client's X-Request-Id, or a new
// one, echoed in the answer). The line is at debug level: identity
// providers send thousands of requests a minute and an operator does not
// want them at the default level. A 5xx answer's line is at error level
// instead, since it is roster's fault.
//
// Failed authentication (401) is sampled at warn level: the first failure
// of a directory logs "scim authentication failed", then at most one line
// per directory per minute, each with the number of failures since the
// one before. Requests for directory ids roster has not seen with a token
// share one such sample.
//
// So at the default level (info) a healthy SCIM endpoint logs nothing; the
// request log (GET .../requests) and the metrics cover the rest. A line
// never holds a token, and request bodies are kept only in the request
// log, redacted.
package scim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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

	dirs     sync.Map // dirID → *dirEntry
	limiters sync.Map // dirID → *rate.Limiter
	triggers sync.Map // dirID → *triggerLoop
	reqLog   chan store.SCIMRequest
	dropped  atomic.Int64
	runCtx   context.Context
	auth     authSampler
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

// Invalidate forgets cached directory and team state (after a token
// rotation or an SSO change), so the next request reads the store.
func (s *Server) Invalidate() {
	s.dirs.Range(func(k, _ any) bool { s.dirs.Delete(k); return true })
}

func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, *scimError) {
	lr := http.MaxBytesReader(w, r.Body, max)
	// Size the buffer from Content-Length, plus the bytes.MinRead that
	// bytes.Buffer wants free before each read, so a body whose length is
	// truthful is read without growing the buffer. A fixed buffer sized
	// for large bodies would be allocated by every request, and most are
	// small member PATCHes.
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
