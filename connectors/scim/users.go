package scim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/roster-dev/roster/store"
)

func (s *Server) getUser(ctx context.Context, r *http.Request, dir *dirEntry, id string, p projection) (result, *scimError) {
	u, err := s.opt.Store.GetUser(ctx, dir.dir.ID, id)
	if err != nil {
		return result{}, storeErr(err, "User "+id)
	}
	body, serr := s.userBody(ctx, r, u, p)
	if serr != nil {
		return result{}, serr
	}
	return result{status: http.StatusOK, body: body, version: u.Version}, nil
}

// userBody renders a stored user as an answer: with its groups when the
// projection wants them, then projected.
func (s *Server) userBody(ctx context.Context, r *http.Request, u *store.User, p projection) (map[string]any, *scimError) {
	m := s.userJSON(r, u)
	if p.wants("groups") {
		if err := s.addGroups(ctx, r, u.DirectoryID, []map[string]any{m}); err != nil {
			return nil, storeErr(err, "User "+u.ID)
		}
	}
	return p.apply(m), nil
}

// writtenUserBody is userBody for the answer to a committed write: failing
// to read the groups must not report the write as failed, so they are left
// out instead.
func (s *Server) writtenUserBody(ctx context.Context, r *http.Request, u *store.User, p projection) map[string]any {
	m, serr := s.userBody(ctx, r, u, p)
	if serr != nil {
		s.log.Warn("read a written user's groups", "directory", u.DirectoryID, "user", u.ID, "err", serr.Detail)
		return p.apply(s.userJSON(r, u))
	}
	return m
}

func (s *Server) createUser(ctx context.Context, r *http.Request, dir *dirEntry, body []byte) (result, *scimError) {
	m, serr := decodeObject(body)
	if serr != nil {
		return result{}, serr
	}
	norm, serr := normalizeUser(m)
	if serr != nil {
		return result{}, serr
	}
	u, serr := userFromResource(dir.dir.ID, newID(), norm)
	if serr != nil {
		return result{}, serr
	}
	now := time.Now()
	// The id is new, so a plain insert does (no upsert, no emails to clear).
	err := s.opt.Store.WithTx(ctx, func(tx *store.Tx) error { return tx.InsertUsers(ctx, []*store.User{u}, now) })
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return result{}, errf(http.StatusConflict, "uniqueness", "a user with userName %q already exists in this directory", u.UserName)
		}
		return result{}, storeErr(err, "User")
	}
	s.wrote(dir.dir.ID)
	u.CreatedAt = u.UpdatedAt
	return result{status: http.StatusCreated, body: s.userJSON(r, u), version: u.Version, location: s.location(r, dir.dir.ID, "Users", u.ID)}, nil
}

func (s *Server) replaceUser(ctx context.Context, r *http.Request, dir *dirEntry, id string, body []byte, ifMatch string) (result, *scimError) {
	m, serr := decodeObject(body)
	if serr != nil {
		return result{}, serr
	}
	norm, serr := normalizeUser(m)
	if serr != nil {
		return result{}, serr
	}
	nu, serr := userFromResource(dir.dir.ID, id, norm)
	if serr != nil {
		return result{}, serr
	}
	err := s.opt.Store.WithTx(ctx, func(tx *store.Tx) error {
		cur, err := tx.GetUser(ctx, dir.dir.ID, id)
		if err != nil {
			return err
		}
		if e := checkIfMatch(ifMatch, cur.Version); e != nil {
			return txErr{e}
		}
		nu.Version, nu.CreatedAt = cur.Version, cur.CreatedAt
		return tx.PutUser(ctx, nu, time.Now())
	})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return result{}, errf(http.StatusConflict, "uniqueness", "a user with userName %q already exists in this directory", nu.UserName)
		}
		return result{}, fromTx(err, "User "+id)
	}
	s.wrote(dir.dir.ID)
	return result{status: http.StatusOK, body: s.writtenUserBody(ctx, r, nu, parseProjection(r.URL.Query())), version: nu.Version}, nil
}

func (s *Server) deleteUser(ctx context.Context, dir *dirEntry, id, ifMatch string) (result, *scimError) {
	err := s.opt.Store.WithTx(ctx, func(tx *store.Tx) error {
		if ifMatch != "" {
			cur, err := tx.GetUser(ctx, dir.dir.ID, id)
			if err != nil {
				return err
			}
			if e := checkIfMatch(ifMatch, cur.Version); e != nil {
				return txErr{e}
			}
		}
		return tx.DeleteUser(ctx, dir.dir.ID, id, time.Now())
	})
	if err != nil {
		return result{}, fromTx(err, "User "+id)
	}
	s.wrote(dir.dir.ID)
	return result{status: http.StatusNoContent}, nil
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
