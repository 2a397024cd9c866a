package scim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// decodeObject parses a JSON object body, numbers as float64.
func decodeObject(body []byte) (map[string]any, *scimError) {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, errf(http.StatusBadRequest, "invalidSyntax", "request body is empty; send a JSON object")
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, errf(http.StatusBadRequest, "invalidSyntax", "request body is not a JSON object: %v", err)
	}
	if m == nil {
		return nil, errf(http.StatusBadRequest, "invalidSyntax", "request body must be a JSON object")
	}
	return m, nil
}

// key finds an attribute case-insensitively.
func key(m map[string]any, name string) (string, bool) {
	if _, ok := m[name]; ok {
		return name, true
	}
	for k := range m {
		if strings.EqualFold(k, name) {
			return k, true
		}
	}
	return "", false
}

func str(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(t)
	}
	return ""
}

// jsonKind names a decoded JSON value's type for error messages.
func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "null"
}

// newID returns the id of a new user or group: a UUID of version 7, whose
// leading bits are the creation time, so that new rows land at the end of
// the id indexes (mirror, roster, membership rows) instead of on a random
// page each. A SCIM create then writes fewer pages at commit.
func newID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

func etag(version int64) string { return fmt.Sprintf(`W/"%d"`, version) }

func (s *Server) location(r *http.Request, dirID, resource, id string) string {
	base := strings.TrimRight(s.opt.PublicURL, "/")
	if base == "" {
		scheme := "http"
		if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	return base + "/scim/v2/" + dirID + "/" + resource + "/" + id
}

func metaOf(resourceType, loc string, created, modified time.Time, version int64) map[string]any {
	return map[string]any{
		"resourceType": resourceType, "created": created.UTC().Format(time.RFC3339Nano),
		"lastModified": modified.UTC().Format(time.RFC3339Nano), "location": loc, "version": etag(version),
	}
}

func checkIfMatch(ifMatch string, version int64) *scimError {
	if ifMatch == "" || ifMatch == "*" {
		return nil
	}
	for _, tag := range strings.Split(ifMatch, ",") {
		tag = strings.TrimSpace(tag)
		if tag == etag(version) || tag == strings.TrimPrefix(etag(version), "W/") {
			return nil
		}
	}
	return errf(http.StatusPreconditionFailed, "", "If-Match %s does not match the current version %s", ifMatch, etag(version))
}
