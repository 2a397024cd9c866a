package scim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/roster-dev/roster/internal/scimfilter"
	"github.com/roster-dev/roster/store"
)

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

func storeErr(err error, what string) *scimError {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errf(http.StatusNotFound, "", "%s not found", what)
	case errors.Is(err, store.ErrConflict):
		return errf(http.StatusConflict, "uniqueness", "%s: %v", what, err)
	}
	var se *scimError
	if errors.As(err, &se) {
		return se
	}
	return errf(http.StatusInternalServerError, "", "internal error: %v", err)
}

// txErr carries a SCIM error out of a store transaction (rolling it back).
type txErr struct{ e *scimError }

func (t txErr) Error() string { return t.e.Detail }

func fromTx(err error, what string) *scimError {
	var te txErr
	if errors.As(err, &te) {
		return te.e
	}
	return storeErr(err, what)
}

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

func (s *Server) getGroup(ctx context.Context, r *http.Request, dir *dirEntry, id string, p projection) (result, *scimError) {
	g, err := s.opt.Store.GetGroup(ctx, dir.dir.ID, id)
	if err != nil {
		return result{}, storeErr(err, "Group "+id)
	}
	var members []store.Member
	if p.wants("members") {
		if members, err = s.opt.Store.ListMembers(ctx, dir.dir.ID, id); err != nil {
			return result{}, storeErr(err, "Group "+id)
		}
		if members == nil {
			members = []store.Member{}
		}
	}
	return result{status: http.StatusOK, body: p.apply(s.groupJSON(r, g, members)), version: g.Version}, nil
}

// memberRefs reads a members array: [{"value": id, "type": ...}].
func memberRefs(v any) ([]string, *scimError) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		if m, ok := v.(map[string]any); ok {
			list = []any{m}
		} else {
			return nil, errf(http.StatusBadRequest, "invalidValue", "members must be an array of {\"value\": id}")
		}
	}
	var ids []string
	for _, x := range list {
		switch t := x.(type) {
		case map[string]any:
			id := strings.TrimSpace(str(get(t, "value")))
			if id == "" {
				return nil, errf(http.StatusBadRequest, "invalidValue", "a member has no value (the member's id)")
			}
			ids = append(ids, id)
		case string:
			ids = append(ids, t)
		default:
			return nil, errf(http.StatusBadRequest, "invalidValue", "members must be an array of {\"value\": id}")
		}
	}
	return ids, nil
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

// resolveMembers looks up whether each id is a user or a group of the
// directory; unknown ids are an invalidValue error.
func resolveMembers(ctx context.Context, tx *store.Tx, dirID, groupID string, ids []string) ([]store.Member, error) {
	out := make([]store.Member, 0, len(ids))
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		if id == groupID {
			return nil, txErr{errf(http.StatusBadRequest, "invalidValue", "a group cannot be a member of itself")}
		}
		t, err := tx.MemberType(ctx, dirID, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, txErr{errf(http.StatusBadRequest, "invalidValue", "member %q is not a user or group of this directory", id)}
		}
		if err != nil {
			return nil, err
		}
		out = append(out, store.Member{ID: id, Type: t})
	}
	return out, nil
}

func (s *Server) createGroup(ctx context.Context, r *http.Request, dir *dirEntry, body []byte) (result, *scimError) {
	m, serr := decodeObject(body)
	if serr != nil {
		return result{}, serr
	}
	ids, serr := memberRefs(get(m, "members"))
	if serr != nil {
		return result{}, serr
	}
	norm := normalizeGroup(m)
	name := strings.TrimSpace(str(norm["displayName"]))
	if name == "" {
		return result{}, errf(http.StatusBadRequest, "invalidValue", "displayName is required")
	}
	res, _ := json.Marshal(norm)
	g := &store.Group{DirectoryID: dir.dir.ID, ID: newID(), ExternalID: str(norm["externalId"]), DisplayName: name, Resource: res}
	var members []store.Member
	err := s.opt.Store.WithTx(ctx, func(tx *store.Tx) error {
		now := time.Now()
		if err := tx.PutGroup(ctx, g, now); err != nil {
			return err
		}
		var err error
		if members, err = resolveMembers(ctx, tx, dir.dir.ID, g.ID, ids); err != nil {
			return err
		}
		_, err = tx.AddMembers(ctx, dir.dir.ID, g.ID, members, now)
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return result{}, errf(http.StatusConflict, "uniqueness", "a group with displayName %q already exists in this directory", name)
		}
		return result{}, fromTx(err, "Group")
	}
	s.wrote(dir.dir.ID)
	return result{status: http.StatusCreated, body: s.groupJSON(r, g, members), version: g.Version, location: s.location(r, dir.dir.ID, "Groups", g.ID)}, nil
}

func (s *Server) replaceGroup(ctx context.Context, r *http.Request, dir *dirEntry, id string, body []byte, ifMatch string) (result, *scimError) {
	m, serr := decodeObject(body)
	if serr != nil {
		return result{}, serr
	}
	_, hasMembers := key(m, "members")
	ids, serr := memberRefs(get(m, "members"))
	if serr != nil {
		return result{}, serr
	}
	norm := normalizeGroup(m)
	name := strings.TrimSpace(str(norm["displayName"]))
	if name == "" {
		return result{}, errf(http.StatusBadRequest, "invalidValue", "displayName is required")
	}
	res, _ := json.Marshal(norm)
	var g *store.Group
	var members []store.Member
	err := s.opt.Store.WithTx(ctx, func(tx *store.Tx) error {
		cur, err := tx.GetGroup(ctx, dir.dir.ID, id, true)
		if err != nil {
			return err
		}
		if e := checkIfMatch(ifMatch, cur.Version); e != nil {
			return txErr{e}
		}
		now := time.Now()
		g = &store.Group{DirectoryID: dir.dir.ID, ID: id, ExternalID: str(norm["externalId"]), DisplayName: name, Resource: res, Version: cur.Version, CreatedAt: cur.CreatedAt}
		if err := tx.PutGroup(ctx, g, now); err != nil {
			return err
		}
		if hasMembers {
			want, err := resolveMembers(ctx, tx, dir.dir.ID, id, ids)
			if err != nil {
				return err
			}
			if _, _, err := tx.ReplaceMembers(ctx, dir.dir.ID, id, want, now); err != nil {
				return err
			}
		}
		members, err = tx.ListMembers(ctx, dir.dir.ID, id)
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return result{}, errf(http.StatusConflict, "uniqueness", "a group with displayName %q already exists in this directory", name)
		}
		return result{}, fromTx(err, "Group "+id)
	}
	s.wrote(dir.dir.ID)
	if members == nil {
		members = []store.Member{}
	}
	return result{status: http.StatusOK, body: s.groupJSON(r, g, members), version: g.Version}, nil
}

func (s *Server) deleteGroup(ctx context.Context, dir *dirEntry, id, ifMatch string) (result, *scimError) {
	err := s.opt.Store.WithTx(ctx, func(tx *store.Tx) error {
		cur, err := tx.GetGroup(ctx, dir.dir.ID, id, true)
		if err != nil {
			return err
		}
		if e := checkIfMatch(ifMatch, cur.Version); e != nil {
			return txErr{e}
		}
		return tx.DeleteGroup(ctx, dir.dir.ID, id, time.Now())
	})
	if err != nil {
		return result{}, fromTx(err, "Group "+id)
	}
	s.wrote(dir.dir.ID)
	return result{status: http.StatusNoContent}, nil
}

// listQuery is a list or search request.
type listQuery struct {
	filter     string
	startIndex int
	count      int // -1: server default
	proj       projection
	bad        *scimError
}

// MaxResults is the most resources one list answer holds.
const MaxResults = 1000

func listParams(q url.Values) listQuery {
	lq := listQuery{startIndex: 1, count: -1, proj: parseProjection(q)}
	for k, vs := range q {
		if len(vs) == 0 {
			continue
		}
		v := vs[0]
		switch strings.ToLower(k) {
		case "filter":
			lq.filter = v
		case "startindex":
			n, err := strconv.Atoi(v)
			if err != nil {
				lq.bad = errf(http.StatusBadRequest, "invalidValue", "startIndex must be a number, got %q", v)
			}
			lq.startIndex = max(n, 1)
		case "count":
			n, err := strconv.Atoi(v)
			if err != nil {
				lq.bad = errf(http.StatusBadRequest, "invalidValue", "count must be a number, got %q", v)
			}
			lq.count = max(n, 0)
		case "sortby":
			// Sorting is not offered (ServiceProviderConfig says so); the
			// order is stable by id.
		}
	}
	return lq
}

func (s *Server) searchPost(r *http.Request, dir *dirEntry, resource string, body []byte) (result, *scimError) {
	m, serr := decodeObject(body)
	if serr != nil {
		return result{}, serr
	}
	q := url.Values{}
	for k, v := range m {
		switch t := v.(type) {
		case string:
			q.Set(k, t)
		case float64:
			q.Set(k, strconv.Itoa(int(t)))
		case []any:
			var parts []string
			for _, x := range t {
				parts = append(parts, str(x))
			}
			q.Set(k, strings.Join(parts, ","))
		}
	}
	var res result
	if resource == "" {
		res, serr = s.rootList(r.Context(), r, dir, listParams(q))
	} else {
		res, serr = s.list(r.Context(), r, dir, resource, listParams(q))
	}
	if serr == nil {
		res.status = http.StatusOK
	}
	return res, serr
}

func (s *Server) list(ctx context.Context, r *http.Request, dir *dirEntry, resource string, lq listQuery) (result, *scimError) {
	if lq.bad != nil {
		return result{}, lq.bad
	}
	count := lq.count
	if count < 0 || count > MaxResults {
		count = MaxResults
	}
	q := store.Search{StartIndex: lq.startIndex, Count: count}
	if strings.TrimSpace(lq.filter) != "" {
		var err error
		if q.Filter, err = scimfilter.Parse(lq.filter); err != nil {
			return result{}, errf(http.StatusBadRequest, "invalidFilter", "%v", err)
		}
	}
	var page []map[string]any
	var total int
	var serr *scimError
	if resource == "Users" {
		page, total, serr = s.listUsers(ctx, r, dir, q, lq.proj)
	} else {
		page, total, serr = s.listGroups(ctx, r, dir, q, lq.proj)
	}
	if serr != nil {
		return result{}, serr
	}
	resources := make([]any, 0, len(page))
	for _, m := range page {
		resources = append(resources, lq.proj.apply(m))
	}
	return result{status: http.StatusOK, body: map[string]any{
		"schemas": []string{URNListResp}, "totalResults": total, "startIndex": lq.startIndex,
		"itemsPerPage": len(resources), "Resources": resources,
	}}, nil
}

// listUsers renders a page of users. A part of the filter the store cannot
// answer in SQL is matched here on each candidate as rendered; a filter on
// the read-only groups (nested ones included) reads each candidate's groups
// to match them, and the page keeps what was rendered then.
func (s *Server) listUsers(ctx context.Context, r *http.Request, dir *dirEntry, q store.Search, proj projection) ([]map[string]any, int, *scimError) {
	groupsFilter := scimfilter.Mentions(q.Filter, "groups")
	var kept map[string]map[string]any // rendered to match, for the page
	match := func(u *store.User, onPage bool) (bool, error) {
		m := s.userJSON(r, u)
		if groupsFilter {
			if err := s.addGroups(ctx, r, dir.dir.ID, []map[string]any{m}); err != nil {
				return false, err
			}
		}
		ok := scimfilter.Match(q.Filter, m, nil)
		if ok && onPage {
			if kept == nil {
				kept = map[string]map[string]any{}
			}
			kept[u.ID] = m
		}
		return ok, nil
	}
	res, err := s.opt.Store.SearchUsers(ctx, dir.dir.ID, q, match)
	if err != nil {
		return nil, 0, storeErr(err, "Users")
	}
	page := make([]map[string]any, 0, len(res.Users))
	var noGroups []map[string]any
	for _, u := range res.Users {
		m, ok := kept[u.ID]
		if !ok {
			m = s.userJSON(r, u)
		}
		if !ok || !groupsFilter {
			noGroups = append(noGroups, m)
		}
		page = append(page, m)
	}
	if proj.wants("groups") {
		// One read for the page.
		if err := s.addGroups(ctx, r, dir.dir.ID, noGroups); err != nil {
			return nil, 0, storeErr(err, "Users")
		}
	}
	return page, res.Total, nil
}

// listGroups renders a page of groups; a filter the store cannot answer in
// SQL is matched on each candidate rendered with its members.
func (s *Server) listGroups(ctx context.Context, r *http.Request, dir *dirEntry, q store.Search, proj projection) ([]map[string]any, int, *scimError) {
	var kept map[string]map[string]any // rendered to match, for the page
	match := func(g *store.Group, onPage bool) (bool, error) {
		ms, err := s.opt.Store.ListMembers(ctx, dir.dir.ID, g.ID)
		if err != nil {
			return false, err
		}
		m := s.groupJSON(r, g, nonNil(ms))
		ok := scimfilter.Match(q.Filter, m, nil)
		if ok && onPage {
			if kept == nil {
				kept = map[string]map[string]any{}
			}
			kept[g.ID] = m
		}
		return ok, nil
	}
	res, err := s.opt.Store.SearchGroups(ctx, dir.dir.ID, q, match)
	if err != nil {
		return nil, 0, storeErr(err, "Groups")
	}
	page := make([]map[string]any, 0, len(res.Groups))
	for _, g := range res.Groups {
		m, ok := kept[g.ID]
		switch {
		case ok:
		case proj.wants("members"):
			ms, err := s.opt.Store.ListMembers(ctx, dir.dir.ID, g.ID)
			if err != nil {
				return nil, 0, storeErr(err, "Groups")
			}
			m = s.groupJSON(r, g, nonNil(ms))
		default:
			m = s.groupJSON(r, g, nil)
		}
		page = append(page, m)
	}
	return page, res.Total, nil
}

// rootList answers a query against the base URL: users, then groups, paged
// as one list.
func (s *Server) rootList(ctx context.Context, r *http.Request, dir *dirEntry, lq listQuery) (result, *scimError) {
	if lq.bad != nil {
		return result{}, lq.bad
	}
	count := lq.count
	if count < 0 || count > MaxResults {
		count = MaxResults
	}
	uq := lq
	uq.count = count
	users, serr := s.list(ctx, r, dir, "Users", uq)
	if serr != nil {
		return result{}, serr
	}
	ub := users.body.(map[string]any)
	utotal := ub["totalResults"].(int)
	resources := ub["Resources"].([]any)
	gq := lq
	gq.startIndex = max(1, lq.startIndex-utotal)
	gq.count = count - len(resources)
	groups, serr := s.list(ctx, r, dir, "Groups", gq)
	if serr != nil {
		return result{}, serr
	}
	gb := groups.body.(map[string]any)
	resources = append(resources, gb["Resources"].([]any)...)
	return result{status: http.StatusOK, body: map[string]any{
		"schemas": []string{URNListResp}, "totalResults": utotal + gb["totalResults"].(int), "startIndex": lq.startIndex,
		"itemsPerPage": len(resources), "Resources": resources,
	}}, nil
}

func nonNil(ms []store.Member) []store.Member {
	if ms == nil {
		return []store.Member{}
	}
	return ms
}
