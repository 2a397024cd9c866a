package scim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/roster-dev/roster/store"
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

func get(m map[string]any, name string) any {
	if k, ok := key(m, name); ok {
		return m[k]
	}
	return nil
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

// boolish reads a boolean the way identity providers send it: true, "True",
// "false".
func boolish(v any) (bool, bool) {
	switch t := v.(type) {
	case bool:
		return t, true
	case string:
		switch strings.ToLower(strings.TrimSpace(t)) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}
	return false, false
}

// normalizeUser cleans a user resource as stored: canonical spelling of the
// attributes roster reads, real booleans, manager as an object, no password
// and no server-owned attributes.
func normalizeUser(m map[string]any) (map[string]any, *scimError) {
	out := make(map[string]any, len(m))
	for k, v := range m {
		lk := strings.ToLower(k)
		switch lk {
		case "id", "meta", "schemas", "password", "groups":
			continue
		case "username":
			out["userName"] = v
		case "externalid":
			out["externalId"] = v
		case "displayname":
			out["displayName"] = v
		case "active":
			b, ok := boolish(v)
			if !ok && v != nil {
				return nil, errf(http.StatusBadRequest, "invalidValue", "active must be a boolean, got %v", v)
			}
			if v != nil {
				out["active"] = b
			}
		case "emails":
			if m, ok := v.(map[string]any); ok {
				v = []any{m} // one value sent bare
			}
			if _, ok := v.([]any); !ok && v != nil {
				return nil, errf(http.StatusBadRequest, "invalidValue", "emails must be an array of {\"value\": address}, got %s", jsonKind(v))
			}
			out["emails"] = normalizeMulti(v)
		case "name":
			if _, ok := v.(map[string]any); !ok && v != nil {
				return nil, errf(http.StatusBadRequest, "invalidValue", "name must be an object such as {\"givenName\": ..., \"familyName\": ...}, got %s", jsonKind(v))
			}
			out["name"] = v
		default:
			if strings.EqualFold(k, URNEnterprise) {
				ext, ok := v.(map[string]any)
				if !ok && v != nil {
					return nil, errf(http.StatusBadRequest, "invalidValue", "%s must be an object, got %s", URNEnterprise, jsonKind(v))
				}
				if ext != nil {
					out[URNEnterprise] = normalizeEnterprise(ext)
				}
				continue
			}
			out[k] = v
		}
	}
	return out, nil
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

func normalizeEnterprise(ext map[string]any) map[string]any {
	out := make(map[string]any, len(ext))
	for k, v := range ext {
		if strings.EqualFold(k, "manager") {
			switch t := v.(type) {
			case string:
				if t == "" {
					continue
				}
				out["manager"] = map[string]any{"value": t}
			case map[string]any:
				if str(get(t, "value")) == "" {
					continue
				}
				out["manager"] = t
			case nil:
				continue
			default:
				out["manager"] = v
			}
			continue
		}
		out[k] = v
	}
	return out
}

func normalizeMulti(v any) any {
	list, ok := v.([]any)
	if !ok {
		return v
	}
	for _, x := range list {
		if m, ok := x.(map[string]any); ok {
			if k, ok := key(m, "primary"); ok {
				if b, ok := boolish(m[k]); ok {
					delete(m, k)
					m["primary"] = b
				}
			}
		}
	}
	return list
}

// userFromResource maps a normalized resource to a mirror user.
func userFromResource(dirID, id string, m map[string]any) (*store.User, *scimError) {
	userName := strings.TrimSpace(str(m["userName"]))
	if userName == "" {
		return nil, errf(http.StatusBadRequest, "invalidValue", "userName is required")
	}
	u := &store.User{DirectoryID: dirID, ID: id, UserName: userName, ExternalID: str(m["externalId"]), Active: true}
	if b, ok := m["active"].(bool); ok {
		u.Active = b
	}
	u.DisplayName = str(m["displayName"])
	if name, ok := m["name"].(map[string]any); ok {
		u.GivenName = str(get(name, "givenName"))
		u.FamilyName = str(get(name, "familyName"))
		if u.DisplayName == "" {
			u.DisplayName = str(get(name, "formatted"))
		}
	}
	if list, ok := m["emails"].([]any); ok {
		for _, x := range list {
			e, ok := x.(map[string]any)
			if !ok {
				continue
			}
			val := strings.TrimSpace(str(get(e, "value")))
			if val == "" {
				continue
			}
			p, _ := boolish(get(e, "primary"))
			u.Emails = append(u.Emails, store.Email{Value: val, Type: str(get(e, "type")), Primary: p})
		}
	}
	u.Email = rosterEmail(u)
	res, err := json.Marshal(m)
	if err != nil {
		return nil, errf(http.StatusBadRequest, "invalidValue", "user cannot be stored: %v", err)
	}
	u.Resource = res
	return u, nil
}

// rosterEmail is the primary email, else the first, else userName when it
// is an address.
func rosterEmail(u *store.User) string {
	for _, e := range u.Emails {
		if e.Primary {
			return strings.ToLower(e.Value)
		}
	}
	if len(u.Emails) > 0 {
		return strings.ToLower(u.Emails[0].Value)
	}
	if strings.Contains(u.UserName, "@") {
		return strings.ToLower(u.UserName)
	}
	return ""
}

// normalizeGroup cleans a group resource as stored (members live in rows).
func normalizeGroup(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch strings.ToLower(k) {
		case "id", "meta", "schemas", "members":
			continue
		case "displayname":
			out["displayName"] = v
		case "externalid":
			out["externalId"] = v
		default:
			out[k] = v
		}
	}
	return out
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

// userJSON renders a mirror user as a SCIM resource.
func (s *Server) userJSON(r *http.Request, u *store.User) map[string]any {
	var m map[string]any
	_ = json.Unmarshal(u.Resource, &m)
	if m == nil {
		m = map[string]any{}
	}
	m["id"] = u.ID
	m["userName"] = u.UserName
	m["active"] = u.Active
	schemas := []string{URNUser}
	var ext []string
	for k := range m {
		if strings.HasPrefix(strings.ToLower(k), "urn:") {
			ext = append(ext, k)
		}
	}
	sort.Strings(ext)
	schemas = append(schemas, ext...)
	m["schemas"] = schemas
	m["meta"] = metaOf("User", s.location(r, u.DirectoryID, "Users", u.ID), u.CreatedAt, u.UpdatedAt, u.Version)
	return m
}

// addGroups fills the read-only "groups" attribute of rendered users: the
// groups holding each, directly or through nested groups (RFC 7643 §4.1.2),
// with one query per nesting level for the whole page. A user in no group
// has no "groups".
func (s *Server) addGroups(ctx context.Context, r *http.Request, dirID string, users []map[string]any) error {
	ids := make([]string, 0, len(users))
	for _, m := range users {
		if id, ok := m["id"].(string); ok {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	refs, err := s.opt.Store.GroupsOf(ctx, dirID, ids)
	if err != nil {
		return err
	}
	for _, m := range users {
		id, _ := m["id"].(string)
		gs := refs[id]
		if len(gs) == 0 {
			delete(m, "groups")
			continue
		}
		list := make([]any, 0, len(gs))
		for _, g := range gs {
			typ := "indirect"
			if g.Direct {
				typ = "direct"
			}
			list = append(list, map[string]any{"value": g.ID, "display": g.DisplayName, "type": typ, "$ref": s.location(r, dirID, "Groups", g.ID)})
		}
		m["groups"] = list
	}
	return nil
}

// groupJSON renders a mirror group; members nil leaves them out.
func (s *Server) groupJSON(r *http.Request, g *store.Group, members []store.Member) map[string]any {
	var m map[string]any
	_ = json.Unmarshal(g.Resource, &m)
	if m == nil {
		m = map[string]any{}
	}
	m["id"] = g.ID
	m["displayName"] = g.DisplayName
	m["schemas"] = []string{URNGroup}
	if members != nil {
		list := make([]any, 0, len(members))
		for _, mem := range members {
			res := "Users"
			if mem.Type == store.MemberGroup {
				res = "Groups"
			}
			list = append(list, map[string]any{"value": mem.ID, "type": mem.Type, "$ref": s.location(r, g.DirectoryID, res, mem.ID)})
		}
		m["members"] = list
	}
	m["meta"] = metaOf("Group", s.location(r, g.DirectoryID, "Groups", g.ID), g.CreatedAt, g.UpdatedAt, g.Version)
	return m
}

// projection applies attributes / excludedAttributes (RFC 7644 §3.4.2.5).
// Names are kept lower-cased with core schema URNs stripped: "name",
// "name.givenname", "emails.value", "urn:...:enterprise:2.0:user",
// "urn:...:enterprise:2.0:user:manager.value". A sub-attribute selects or
// drops only that part of its parent.
type projection struct {
	include map[string]bool // nil: no attributes parameter
	exclude map[string]bool
}

func parseProjection(q map[string][]string) projection {
	p := projection{}
	split := func(v string) map[string]bool {
		out := map[string]bool{}
		for _, a := range strings.Split(v, ",") {
			a = strings.ToLower(strings.TrimSpace(a))
			if a == "" {
				continue
			}
			for _, core := range []string{strings.ToLower(URNUser) + ":", strings.ToLower(URNGroup) + ":"} {
				a = strings.TrimPrefix(a, core)
			}
			out[a] = true
		}
		return out
	}
	for k, vs := range q {
		switch strings.ToLower(k) {
		case "attributes":
			p.include = split(strings.Join(vs, ","))
		case "excludedattributes":
			p.exclude = split(strings.Join(vs, ","))
		}
	}
	return p
}

// wants reports whether an attribute is returned, wholly or in part (used
// to skip loading members).
func (p projection) wants(attr string) bool {
	a := strings.ToLower(attr)
	if p.include != nil {
		if p.include[a] {
			return true
		}
		for k := range p.include {
			if strings.HasPrefix(k, a+".") {
				return true
			}
		}
		return false
	}
	return !p.exclude[a]
}

// subs returns what set names about the top-level attribute lk: whole when
// the attribute itself is named, else the named parts (sub-attribute names,
// or for an extension "attr" and "attr.sub" paths).
func subs(set map[string]bool, lk string) (whole bool, parts []string) {
	if set[lk] {
		return true, nil
	}
	sep := "."
	if strings.HasPrefix(lk, "urn:") {
		sep = ":"
	}
	for k := range set {
		if rest, ok := strings.CutPrefix(k, lk+sep); ok && rest != "" {
			parts = append(parts, rest)
		}
	}
	return false, parts
}

// pick keeps (keep true) or drops the named parts of v: a complex value, a
// list of complex values, or for extensions a complex value whose parts may
// themselves be "attr.sub".
func pick(v any, parts []string, keep bool) any {
	switch t := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range t {
			lk := strings.ToLower(k)
			whole, sub := false, []string(nil)
			for _, part := range parts {
				if part == lk {
					whole = true
				} else if rest, ok := strings.CutPrefix(part, lk+"."); ok {
					sub = append(sub, rest)
				}
			}
			switch {
			case whole && keep:
				out[k] = x
			case whole:
			case len(sub) > 0:
				if y := pick(x, sub, keep); y != nil {
					out[k] = y
				}
			case !keep:
				out[k] = x
			}
		}
		if keep && len(out) == 0 {
			return nil
		}
		return out
	case []any:
		out := make([]any, 0, len(t))
		for _, x := range t {
			if y := pick(x, parts, keep); y != nil {
				out = append(out, y)
			}
		}
		if keep && len(out) == 0 {
			return nil
		}
		return out
	}
	if keep {
		return nil
	}
	return v
}

func (p projection) apply(m map[string]any) map[string]any {
	if p.include == nil && p.exclude == nil {
		return m
	}
	out := map[string]any{}
	for k, v := range m {
		lk := strings.ToLower(k)
		if lk == "id" || lk == "schemas" {
			out[k] = v // returned always
			continue
		}
		if p.include != nil {
			whole, parts := subs(p.include, lk)
			switch {
			case whole:
				out[k] = v
			case len(parts) > 0:
				if x := pick(v, parts, true); x != nil {
					out[k] = x
				}
			}
			continue
		}
		whole, parts := subs(p.exclude, lk)
		switch {
		case whole:
		case len(parts) > 0:
			out[k] = pick(v, parts, false)
		default:
			out[k] = v
		}
	}
	return out
}
