package scim

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/roster-dev/roster/internal/scimfilter"
	"github.com/roster-dev/roster/store"
)

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
