package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/roster-dev/roster/metrics"
	"github.com/roster-dev/roster/store"
)

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

func (s *Server) observe(r *http.Request, dirID string, known bool, resource string, rec *recorder, body []byte, start time.Time) {
	d := time.Since(start)
	res := resourceLabel(resource)
	if s.opt.Metrics != nil {
		s.opt.Metrics.SCIMRequests.WithLabelValues(r.Method, res, metrics.StatusClass(rec.status)).Inc()
		s.opt.Metrics.SCIMDuration.WithLabelValues(r.Method, res).Observe(d.Seconds())
	}
	s.logRequest(r, dirID, known, rec, d)
	if !known {
		return // never log requests that did not authenticate against a directory
	}
	entry := store.SCIMRequest{
		DirectoryID: dirID, At: start.UTC(), Method: r.Method, Path: redactQuery(r.URL), Status: rec.status,
		Duration: d, Error: rec.detail, Body: redactBody(body, s.opt.RequestLogBody),
	}
	select {
	case s.reqLog <- entry:
	default:
		s.dropped.Add(1)
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
