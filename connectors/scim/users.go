package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
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
	u, serr := userFromBody(dir.dir.ID, newID(), body)
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
	nu, serr := userFromBody(dir.dir.ID, id, body)
	if serr != nil {
		return result{}, serr
	}
	u, changed, err := s.updateUser(ctx, dir.dir.ID, id, ifMatch, func(*store.User) (*store.User, *scimError) {
		c := *nu
		return &c, nil
	})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return result{}, errf(http.StatusConflict, "uniqueness", "a user with userName %q already exists in this directory", nu.UserName)
		}
		return result{}, fromTx(err, "User "+id)
	}
	if changed {
		s.wrote(dir.dir.ID)
	}
	return result{status: http.StatusOK, body: s.writtenUserBody(ctx, r, u, parseProjection(r.URL.Query())), version: u.Version}, nil
}

// updateUser stores what update makes of the current user, unless that is
// the user as stored: a PUT or PATCH that changes nothing (Okta resends
// whole profiles; clients replay requests) keeps the version and the
// modification time, marks nothing dirty and triggers no reconcile. It
// first decides on a plain read, so that such a request costs no write
// transaction; a request that does change something is decided again in
// the transaction that writes it. It returns the user as it now is and
// whether it changed; SCIM errors come as txErr.
func (s *Server) updateUser(ctx context.Context, dirID, id, ifMatch string, update func(cur *store.User) (*store.User, *scimError)) (*store.User, bool, error) {
	cur, err := s.opt.Store.GetUser(ctx, dirID, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, false, err
	case err == nil && checkIfMatch(ifMatch, cur.Version) == nil:
		nu, serr := update(cur)
		if serr != nil {
			return nil, false, txErr{serr}
		}
		if sameUser(cur, nu) {
			return cur, false, nil
		}
	}
	var out *store.User
	changed := false
	err = s.opt.Store.WithTx(ctx, func(tx *store.Tx) error {
		out, changed = nil, false
		cur, err := tx.GetUser(ctx, dirID, id)
		if err != nil {
			return err
		}
		if e := checkIfMatch(ifMatch, cur.Version); e != nil {
			return txErr{e}
		}
		nu, serr := update(cur)
		if serr != nil {
			return txErr{serr}
		}
		if sameUser(cur, nu) {
			out = cur
			return nil
		}
		out, changed = nu, true
		return tx.PutUser(ctx, nu, time.Now())
	})
	if err != nil {
		return nil, false, err
	}
	return out, changed, nil
}

// sameUser tells whether storing b in place of a would change nothing.
func sameUser(a, b *store.User) bool {
	return a.UserName == b.UserName && a.ExternalID == b.ExternalID && a.DisplayName == b.DisplayName &&
		a.GivenName == b.GivenName && a.FamilyName == b.FamilyName && a.Email == b.Email && a.Active == b.Active &&
		sameJSON(a.Resource, b.Resource)
}

// sameJSON tells whether two stored resources say the same. They are
// written by json.Marshal (sorted keys), so equal bytes are the rule; a
// store that reformats JSON is compared by value.
func sameJSON(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
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

// userFromBody reads a POST or PUT body as the user it describes.
func userFromBody(dirID, id string, body []byte) (*store.User, *scimError) {
	m, serr := decodeObject(body)
	if serr != nil {
		return nil, serr
	}
	if serr := checkSchemas(m, userKind); serr != nil {
		return nil, serr
	}
	return userFromResource(dirID, id, m)
}

// userFromResource checks a user resource (a body, or a stored user with a
// PATCH applied) against the User schema and maps it to a mirror user. The
// stored resource always holds userName and active as the columns do, so
// that a GET answer sent back as a PUT (Okta) compares equal.
func userFromResource(dirID, id string, m map[string]any) (*store.User, *scimError) {
	v, serr := validate(m, userKind)
	if serr != nil {
		return nil, serr
	}
	res := v.res
	userName, _ := res["userName"].(string)
	userName = strings.TrimSpace(userName)
	active := true
	if b, ok := res["active"].(bool); ok {
		active = b
	}
	res["userName"], res["active"] = userName, active
	u := &store.User{DirectoryID: dirID, ID: id, UserName: userName, Active: active}
	u.ExternalID, _ = res["externalId"].(string)
	u.DisplayName, _ = res["displayName"].(string)
	if name, ok := res["name"].(map[string]any); ok {
		u.GivenName, _ = name["givenName"].(string)
		u.FamilyName, _ = name["familyName"].(string)
		if u.DisplayName == "" {
			u.DisplayName, _ = name["formatted"].(string)
		}
	}
	emails, _ := res["emails"].([]any)
	for _, x := range emails {
		e, _ := x.(map[string]any)
		val, _ := e["value"].(string)
		if val = strings.TrimSpace(val); val == "" {
			continue
		}
		typ, _ := e["type"].(string)
		primary, _ := e["primary"].(bool)
		u.Emails = append(u.Emails, store.Email{Value: val, Type: typ, Primary: primary})
	}
	u.Email = rosterEmail(u)
	if u.Resource, serr = storedJSON("user", res); serr != nil {
		return nil, serr
	}
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
