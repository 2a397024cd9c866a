package scim

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// recorder keeps an answer's status and error detail for the metrics and
// the request log.
type recorder struct {
	http.ResponseWriter
	status    int
	detail    string
	requestID string
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
		resource = canonicalResource(parts[1])
	}
	if len(parts) > 2 {
		id = parts[2]
	}
	rec := &recorder{ResponseWriter: w, status: 200, requestID: requestID(r)}
	rec.Header().Set("X-Request-Id", rec.requestID)
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

// resourceTypes are the path segments roster serves, as RFC 7644 spells
// them.
var resourceTypes = []string{"Users", "Groups", "Bulk", "ServiceProviderConfig", "Schemas", "ResourceTypes", "Me"}

// canonicalResource spells a resource-type path segment as RFC 7644 does:
// they match case-insensitively, as clients send them (Microsoft's
// reference tests call /users); anything else is returned as given.
func canonicalResource(seg string) string {
	for _, r := range resourceTypes {
		if strings.EqualFold(seg, r) {
			return r
		}
	}
	return seg
}

// result is a handler's answer.
type result struct {
	status   int
	body     any
	version  int64 // for ETag, 0 for none
	location string
}

func (s *Server) route(w http.ResponseWriter, r *http.Request, dir *dirEntry, resource, id string, body []byte) *scimError {
	var res result
	var serr *scimError
	switch {
	case resource == "ServiceProviderConfig" || resource == "Schemas" || resource == "ResourceTypes":
		if r.Method != http.MethodGet {
			return errf(http.StatusMethodNotAllowed, "", "%s is read-only", resource)
		}
		res, serr = s.discovery(r, dir, resource, id)
	case resource == "Bulk":
		if r.Method != http.MethodPost {
			return errf(http.StatusMethodNotAllowed, "", "use POST for Bulk")
		}
		res, serr = s.bulk(r, dir, body)
	case resource == ".search":
		if r.Method != http.MethodPost {
			return errf(http.StatusMethodNotAllowed, "", "use POST for .search")
		}
		res, serr = s.searchPost(r, dir, "", body)
	case resource == "Users" || resource == "Groups":
		if id == ".search" {
			if r.Method != http.MethodPost {
				return errf(http.StatusMethodNotAllowed, "", "use POST for .search")
			}
			res, serr = s.searchPost(r, dir, resource, body)
			break
		}
		res, serr = s.op(r.Context(), r, dir, r.Method, resource, id, body, r.URL.Query(), r.Header.Get("If-Match"))
		if serr == nil && r.Method == http.MethodGet && id != "" && res.version != 0 {
			if inm := r.Header.Get("If-None-Match"); inm != "" && inm == etag(res.version) {
				w.Header().Set("ETag", etag(res.version))
				w.WriteHeader(http.StatusNotModified)
				return nil
			}
		}
	case resource == "" && r.Method == http.MethodGet && len(r.URL.Query()) > 0:
		// A query against the base URL spans every resource type (RFC 7644 §3.4.2.1).
		res, serr = s.rootList(r.Context(), r, dir, listParams(r.URL.Query()))
	case resource == "Me":
		// RFC 7644 §3.11: a provider without /Me answers 501. Roster's SCIM clients are
		// identity providers holding a directory token, never a user.
		return errf(http.StatusNotImplemented, "", "/Me is not supported: this endpoint serves identity providers, not users")
	case resource == "":
		return errf(http.StatusNotFound, "", "this is a SCIM base URL: use /Users, /Groups, /Bulk, /ServiceProviderConfig, /Schemas or /ResourceTypes")
	default:
		return errf(http.StatusNotFound, "", "no SCIM resource type %q: use Users or Groups", resource)
	}
	if serr != nil {
		return serr
	}
	if res.version != 0 {
		w.Header().Set("ETag", etag(res.version))
	}
	if res.location != "" {
		w.Header().Set("Location", res.location)
	}
	if res.status == http.StatusNoContent {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	writeSCIM(w, res.status, res.body)
	return nil
}

// op runs one operation on Users or Groups; Bulk uses it too.
func (s *Server) op(ctx context.Context, r *http.Request, dir *dirEntry, method, resource, id string, body []byte, q url.Values, ifMatch string) (result, *scimError) {
	users := resource == "Users"
	switch method {
	case http.MethodGet:
		if id == "" {
			return s.list(ctx, r, dir, resource, listParams(q))
		}
		if users {
			return s.getUser(ctx, r, dir, id, parseProjection(q))
		}
		return s.getGroup(ctx, r, dir, id, parseProjection(q))
	case http.MethodPost:
		if id != "" {
			return result{}, errf(http.StatusMethodNotAllowed, "", "POST creates: send it to /%s, not to a resource", resource)
		}
		if users {
			return s.createUser(ctx, r, dir, body)
		}
		return s.createGroup(ctx, r, dir, body)
	case http.MethodPut, http.MethodPatch, http.MethodDelete:
		if id == "" {
			return result{}, errf(http.StatusMethodNotAllowed, "", "%s needs a resource id: /%s/{id}", method, resource)
		}
		switch {
		case method == http.MethodPut && users:
			return s.replaceUser(ctx, r, dir, id, body, ifMatch)
		case method == http.MethodPut:
			return s.replaceGroup(ctx, r, dir, id, body, ifMatch)
		case method == http.MethodPatch && users:
			return s.patchUser(ctx, r, dir, id, body, ifMatch, q)
		case method == http.MethodPatch:
			return s.patchGroup(ctx, r, dir, id, body, ifMatch, q)
		case users:
			return s.deleteUser(ctx, dir, id, ifMatch)
		default:
			return s.deleteGroup(ctx, dir, id, ifMatch)
		}
	}
	return result{}, errf(http.StatusMethodNotAllowed, "", "method %s is not supported on %s", method, resource)
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
