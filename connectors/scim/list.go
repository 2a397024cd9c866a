package scim

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/roster-dev/roster/connectors/scim/filter"
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
	users := resource == "Users"
	table, alias, mapping, cols := "mirror_groups", "g", filter.GroupMapping, store.GroupColumns("g")
	if users {
		table, alias, mapping, cols = "mirror_users", "u", filter.UserMapping, store.UserColumns("u")
	}
	// A filter on the read-only groups (nested ones included) has no SQL
	// translation: each candidate's groups are read to match it.
	groupsFilter := false
	where := alias + ".directory_id = ?"
	args := []any{dir.dir.ID}
	exact := true
	var expr filter.Expr
	if strings.TrimSpace(lq.filter) != "" {
		var err error
		expr, err = filter.Parse(lq.filter)
		if err != nil {
			return result{}, errf(http.StatusBadRequest, "invalidFilter", "%v", err)
		}
		groupsFilter = users && filter.Mentions(expr, "groups")
		cond, cargs, ok := filter.ToSQL(expr, mapping)
		where += " AND (" + cond + ")"
		args = append(args, cargs...)
		exact = ok
	}
	from := " FROM " + table + " " + alias + " WHERE " + where
	render := func(rows interface{ Scan(...any) error }) (map[string]any, error) {
		if users {
			u, err := store.ScanUser(rows)
			if err != nil {
				return nil, err
			}
			return s.userJSON(r, u), nil
		}
		g, err := store.ScanGroup(rows)
		if err != nil {
			return nil, err
		}
		var members []store.Member
		if lq.proj.wants("members") {
			members = []store.Member{} // filled below
		}
		return s.groupJSON(r, g, members), nil
	}
	var page []map[string]any
	total := 0
	if exact {
		// The page first: when it starts at 1 and is not full, its length
		// is the total, and the COUNT (a second statement) is not needed.
		// That is the common IdP lookup: filter=userName eq "...".
		total = -1
		if count > 0 {
			rows, err := s.opt.Store.Query(ctx, "SELECT "+cols+from+" ORDER BY "+alias+".id LIMIT ? OFFSET ?", append(args, count, lq.startIndex-1)...)
			if err != nil {
				return result{}, storeErr(err, resource)
			}
			for rows.Next() {
				m, err := render(rows)
				if err != nil {
					rows.Close()
					return result{}, storeErr(err, resource)
				}
				page = append(page, m)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return result{}, storeErr(err, resource)
			}
			if lq.startIndex == 1 && len(page) < count {
				total = len(page)
			}
		}
		if total < 0 {
			if err := s.queryRow(ctx, "SELECT COUNT(*)"+from, args, &total); err != nil {
				return result{}, storeErr(err, resource)
			}
		}
	} else {
		rows, err := s.opt.Store.Query(ctx, "SELECT "+cols+from+" ORDER BY "+alias+".id", args...)
		if err != nil {
			return result{}, storeErr(err, resource)
		}
		for rows.Next() {
			m, err := render(rows)
			if err != nil {
				rows.Close()
				return result{}, storeErr(err, resource)
			}
			if groupsFilter {
				if err := s.addGroups(ctx, r, dir.dir.ID, []map[string]any{m}); err != nil {
					rows.Close()
					return result{}, storeErr(err, resource)
				}
			}
			if !users {
				// Member filters need the members.
				ms, err := s.opt.Store.ListMembers(ctx, dir.dir.ID, m["id"].(string))
				if err != nil {
					rows.Close()
					return result{}, storeErr(err, resource)
				}
				m = s.groupJSON(r, groupOf(dir.dir.ID, m), ms)
			}
			if filter.Match(expr, m, nil) {
				total++
				if total >= lq.startIndex && len(page) < count {
					page = append(page, m)
				}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return result{}, storeErr(err, resource)
		}
	}
	if users && lq.proj.wants("groups") && (exact || !groupsFilter) {
		// One read for the page (matching a groups filter read them already).
		if err := s.addGroups(ctx, r, dir.dir.ID, page); err != nil {
			return result{}, storeErr(err, resource)
		}
	}
	resources := make([]any, 0, len(page))
	for _, m := range page {
		if !users && lq.proj.wants("members") {
			if _, loaded := m["members"].([]any); !loaded || len(m["members"].([]any)) == 0 {
				ms, err := s.opt.Store.ListMembers(ctx, dir.dir.ID, m["id"].(string))
				if err != nil {
					return result{}, storeErr(err, resource)
				}
				m = s.groupJSON(r, groupOf(dir.dir.ID, m), nonNil(ms))
			}
		}
		resources = append(resources, lq.proj.apply(m))
	}
	return result{status: http.StatusOK, body: map[string]any{
		"schemas": []string{URNListResp}, "totalResults": total, "startIndex": lq.startIndex,
		"itemsPerPage": len(resources), "Resources": resources,
	}}, nil
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

// groupOf rebuilds a store.Group from its rendered JSON (to render again
// with members).
func groupOf(dirID string, m map[string]any) *store.Group {
	meta, _ := m["meta"].(map[string]any)
	created, _ := time.Parse(time.RFC3339Nano, str(meta["created"]))
	modified, _ := time.Parse(time.RFC3339Nano, str(meta["lastModified"]))
	v := strings.Trim(strings.TrimPrefix(str(meta["version"]), "W/"), `"`)
	version, _ := strconv.ParseInt(v, 10, 64)
	rest := map[string]any{}
	for k, x := range m {
		switch k {
		case "id", "meta", "schemas", "members", "displayName":
		default:
			rest[k] = x
		}
	}
	res, _ := json.Marshal(rest)
	return &store.Group{DirectoryID: dirID, ID: str(m["id"]), DisplayName: str(m["displayName"]), ExternalID: str(m["externalId"]),
		Resource: res, Version: version, CreatedAt: created, UpdatedAt: modified}
}

func (s *Server) queryRow(ctx context.Context, q string, args []any, dst any) error {
	rows, err := s.opt.Store.Query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(dst); err != nil {
			return err
		}
	}
	return rows.Err()
}
