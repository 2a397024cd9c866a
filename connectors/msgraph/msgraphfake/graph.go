package msgraphfake

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// reply is one answer, outer or inside a batch.
type reply struct {
	status int
	header http.Header
	body   any
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") {
		s.serveToken(w, r)
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/v1.0/") {
		writeReply(w, graphError(http.StatusNotFound, "BadRequest", "Invalid version."))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		writeReply(w, graphError(http.StatusBadRequest, "BadRequest", "cannot read the request body"))
		return
	}
	s.mu.Lock()
	s.httpRequests++
	if s.throttleNext > 0 {
		s.throttleNext--
		after := s.throttleAfter
		s.mu.Unlock()
		writeReply(w, s.throttled(after))
		return
	}
	s.mu.Unlock()
	writeReply(w, s.route(r.Method, r.URL.RequestURI(), r.Header, body, false))
}

func writeReply(w http.ResponseWriter, rp *reply) {
	for k, vs := range rp.header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.Header().Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
	w.Header().Set("request-id", NewID())
	w.WriteHeader(rp.status)
	if rp.body != nil {
		_ = json.NewEncoder(w).Encode(rp.body)
	}
}

func graphError(status int, code, message string) *reply {
	return &reply{status: status, header: http.Header{}, body: map[string]any{
		"error": map[string]any{
			"code":    code,
			"message": message,
			"innerError": map[string]any{
				"date":              time.Now().UTC().Format("2006-01-02T15:04:05"),
				"request-id":        NewID(),
				"client-request-id": NewID(),
			},
		},
	}}
}

func (s *Server) throttled(retryAfter string) *reply {
	if retryAfter == "" {
		retryAfter = "1"
	}
	rp := graphError(http.StatusTooManyRequests, "TooManyRequests", "Too many requests.")
	rp.header.Set("Retry-After", retryAfter)
	rp.header.Set("x-ms-throttle-scope", "Tenant_Application/ReadWrite/"+s.ClientID+"/"+s.TenantID)
	rp.header.Set("x-ms-throttle-information", "ResourceUnitLimitExceeded")
	return rp
}

func ok(body any) *reply {
	return &reply{status: http.StatusOK, header: http.Header{"X-Ms-Resource-Unit": {"1"}}, body: body}
}

var (
	reMembers = regexp.MustCompile(`^/groups/([^/]+)/members$`)
	reCheck   = regexp.MustCompile(`^/(users|groups)/([^/]+)/(?:microsoft\.graph\.)?checkMemberGroups$`)
	reObject  = regexp.MustCompile(`^/(users|groups)/([^/]+)$`)
)

// route answers one request; inner is true inside a batch.
func (s *Server) route(method, requestURI string, hdr http.Header, body []byte, inner bool) *reply {
	u, err := url.Parse(requestURI)
	if err != nil {
		return graphError(http.StatusBadRequest, "BadRequest", "Invalid request URL.")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return graphError(http.StatusBadRequest, "BadRequest", "Invalid query.")
	}
	p := trimV1(u.Path)
	var endpoint string
	var handle func() *reply
	switch {
	case p == "/$batch" && method == http.MethodPost && !inner:
		endpoint = EndpointBatch
		handle = func() *reply { return s.batch(hdr, body) }
	case (p == "/users/delta" || p == "/users/microsoft.graph.delta") && method == http.MethodGet:
		endpoint = EndpointUsersDelta
		handle = func() *reply { return s.delta("users", q, hdr) }
	case (p == "/groups/delta" || p == "/groups/microsoft.graph.delta") && method == http.MethodGet:
		endpoint = EndpointGroupsDelta
		handle = func() *reply { return s.delta("groups", q, hdr) }
	case reMembers.MatchString(p) && method == http.MethodGet:
		endpoint = EndpointMembers
		id := reMembers.FindStringSubmatch(p)[1]
		handle = func() *reply { return s.members(id, q) }
	case reCheck.MatchString(p) && method == http.MethodPost:
		endpoint = EndpointCheckMemberGroups
		m := reCheck.FindStringSubmatch(p)
		handle = func() *reply { return s.checkMemberGroups(m[1], m[2], body) }
	case reObject.MatchString(p) && method == http.MethodGet:
		m := reObject.FindStringSubmatch(p)
		endpoint = EndpointUser
		if m[1] == "groups" {
			endpoint = EndpointGroup
		}
		handle = func() *reply { return s.object(m[1], m[2], q) }
	default:
		return graphError(http.StatusBadRequest, "BadRequest", fmt.Sprintf("Resource not found for the segment '%s'.", strings.TrimPrefix(p, "/")))
	}

	s.mu.Lock()
	s.counts[endpoint]++
	if rp := s.authorize(hdr, endpoint); rp != nil {
		s.mu.Unlock()
		return rp
	}
	if endpoint == EndpointBatch {
		s.mu.Unlock()
		return handle()
	}
	f := s.pageFault(endpoint)
	if f != nil {
		switch f.kind {
		case faultThrottle:
			s.mu.Unlock()
			return s.throttled(f.retryAfter)
		case faultFail:
			s.mu.Unlock()
			return graphError(http.StatusInternalServerError, "generalException", "An unspecified error has occurred.")
		}
	}
	s.served[endpoint]++
	short := f != nil && f.kind == faultShort
	s.shortNext = short
	rp := handle()
	s.shortNext = false
	s.mu.Unlock()
	return rp
}

// authorize checks the bearer token and the permission an endpoint needs.
// Called with s.mu held.
func (s *Server) authorize(hdr http.Header, endpoint string) *reply {
	auth := hdr.Get("Authorization")
	tok, found := strings.CutPrefix(auth, "Bearer ")
	if !found || tok == "" {
		return graphError(http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token is empty.")
	}
	exp, known := s.tokens[tok]
	if !known {
		return graphError(http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
	}
	if time.Now().After(exp) {
		return graphError(http.StatusUnauthorized, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
	}
	userOK := s.perms[PermUserReadAll] || s.perms["User.ReadWrite.All"] || s.perms[PermDirectoryReadAll] || s.perms["Directory.ReadWrite.All"]
	groupOK := s.perms[PermGroupMemberReadAll] || s.perms[PermGroupReadAll] || s.perms["Group.ReadWrite.All"] || s.perms[PermDirectoryReadAll] || s.perms["Directory.ReadWrite.All"]
	allowed := true
	switch endpoint {
	case EndpointUsersDelta, EndpointUser:
		allowed = userOK
	case EndpointGroupsDelta, EndpointGroup, EndpointMembers:
		allowed = groupOK
	case EndpointCheckMemberGroups:
		allowed = userOK && groupOK
	}
	if !allowed {
		return graphError(http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
	}
	return nil
}

// --- delta -----------------------------------------------------------------

type deltaToken struct {
	Kind   string   `json:"k"`
	Gen    int64    `json:"g"`
	Seq    int64    `json:"s"`
	Prev   int64    `json:"p"`
	Select []string `json:"sel,omitempty"`
	Filter []string `json:"f,omitempty"`
}

type round struct {
	kind  string
	pages [][]map[string]any
	final string // the deltaLink's token
}

func encodeToken(t deltaToken) string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

var reFilterID = regexp.MustCompile(`^id\s+eq\s+'([^']+)'$`)

// parseIDFilter reads $filter=id eq '..' or ...; bad is the error message
// for the client when it cannot.
func parseIDFilter(f string) (ids []string, bad string) {
	if strings.TrimSpace(f) == "" {
		return nil, ""
	}
	for _, term := range regexp.MustCompile(`\s+or\s+`).Split(strings.TrimSpace(f), -1) {
		m := reFilterID.FindStringSubmatch(strings.TrimSpace(term))
		if m == nil {
			return nil, "Unsupported filter: only id eq '{value}' terms joined by or are supported on delta."
		}
		ids = append(ids, m[1])
	}
	if len(ids) > 50 {
		return nil, "Too many ids in the filter: at most 50 are supported."
	}
	return ids, ""
}

// parseSelect reads $select; bad is the error message for the client.
func parseSelect(kind, sel string) (props []string, bad string) {
	if strings.TrimSpace(sel) == "" {
		return nil, ""
	}
	known := userProps
	typ := "microsoft.graph.user"
	if kind == "groups" {
		known, typ = groupProps, "microsoft.graph.group"
	}
	for _, p := range strings.Split(sel, ",") {
		p = strings.TrimSpace(p)
		if p == "id" || p == "" {
			continue
		}
		if !slices.Contains(known, p) {
			return nil, fmt.Sprintf("Could not find a property named '%s' on type '%s'.", p, typ)
		}
		props = append(props, p)
	}
	return props, ""
}

// delta answers users/delta and groups/delta. Called with s.mu held.
func (s *Server) delta(kind string, q url.Values, hdr http.Header) *reply {
	if q.Has("$expand") || q.Has("$orderby") {
		return graphError(http.StatusBadRequest, "Request_UnsupportedQuery", "The specified query option is not supported on delta.")
	}
	if sk := q.Get("$skiptoken"); sk != "" {
		return s.servePage(kind, sk)
	}
	minimal := strings.Contains(strings.ToLower(hdr.Get("Prefer")), "return=minimal")
	var tok deltaToken
	initial := true
	if dt, has := q.Get("$deltatoken"), q.Has("$deltatoken"); has && dt != "" && dt != "latest" {
		b, err := base64.RawURLEncoding.DecodeString(dt)
		if err != nil || json.Unmarshal(b, &tok) != nil || tok.Kind != kind {
			return graphError(http.StatusBadRequest, "Request_BadRequest", "Badly formed token.")
		}
		if tok.Gen < s.deltaGen {
			if s.gone {
				rp := graphError(http.StatusGone, "resyncRequired", "The delta token is no longer valid; start over with a full synchronization.")
				rp.header.Set("Location", s.initialURL(kind, tok.Select, tok.Filter))
				return rp
			}
			return graphError(http.StatusBadRequest, "syncStateNotFound", "The sync state generation is not found. The delta token is expired and data must be synchronized again.")
		}
		initial = false
		if s.replay[kind] {
			s.replay[kind] = false
			tok.Seq = tok.Prev
		}
	} else {
		sel, bad := parseSelect(kind, q.Get("$select"))
		if bad != "" {
			return graphError(http.StatusBadRequest, "Request_BadRequest", bad)
		}
		filter, bad := parseIDFilter(q.Get("$filter"))
		if bad != "" {
			return graphError(http.StatusBadRequest, "Request_UnsupportedQuery", bad)
		}
		tok = deltaToken{Kind: kind, Select: sel, Filter: filter}
		if dt == "latest" {
			final := encodeToken(deltaToken{Kind: kind, Gen: s.deltaGen, Seq: s.seq, Prev: s.seq, Select: sel, Filter: filter})
			return ok(map[string]any{
				"@odata.context":   s.base() + "/$metadata#" + kind,
				"@odata.deltaLink": s.base() + "/" + kind + "/delta?$deltatoken=" + final,
				"value":            []any{},
			})
		}
	}
	var entries []map[string]any
	if kind == "users" {
		entries = s.userEntries(tok, initial, minimal && !initial)
	} else {
		entries = s.groupEntries(tok, initial, minimal && !initial)
	}
	s.rng.Shuffle(len(entries), func(i, j int) { entries[i], entries[j] = entries[j], entries[i] })
	rd := &round{kind: kind}
	for len(entries) > s.opts.PageSize {
		rd.pages = append(rd.pages, entries[:s.opts.PageSize])
		entries = entries[s.opts.PageSize:]
	}
	rd.pages = append(rd.pages, entries)
	rd.final = encodeToken(deltaToken{Kind: kind, Gen: s.deltaGen, Seq: s.seq, Prev: tok.Seq, Select: tok.Select, Filter: tok.Filter})
	id := NewID()
	s.rounds[id] = rd
	return s.servePage(kind, id+".0")
}

func (s *Server) initialURL(kind string, sel, filter []string) string {
	v := url.Values{}
	if len(sel) > 0 {
		v.Set("$select", strings.Join(sel, ","))
	}
	if len(filter) > 0 {
		terms := make([]string, len(filter))
		for i, id := range filter {
			terms[i] = "id eq '" + id + "'"
		}
		v.Set("$filter", strings.Join(terms, " or "))
	}
	u := s.base() + "/" + kind + "/delta?$deltatoken="
	if enc := v.Encode(); enc != "" {
		u += "&" + enc
	}
	return u
}

func (s *Server) servePage(kind, skip string) *reply {
	id, n, found := strings.Cut(skip, ".")
	idx, err := strconv.Atoi(n)
	rd := s.rounds[id]
	if !found || err != nil || rd == nil || rd.kind != kind || idx < 0 || idx >= len(rd.pages) {
		return graphError(http.StatusBadRequest, "Request_BadRequest", "Invalid skip token.")
	}
	page := rd.pages[idx]
	if s.shortNext && len(page) > 0 && idx < len(rd.pages)-1 {
		page = page[:len(page)/2]
	}
	out := map[string]any{
		"@odata.context": s.base() + "/$metadata#" + kind,
		"value":          page,
	}
	if idx+1 < len(rd.pages) {
		out["@odata.nextLink"] = s.base() + "/" + kind + "/delta?$skiptoken=" + id + "." + strconv.Itoa(idx+1)
	} else {
		out["@odata.deltaLink"] = s.base() + "/" + kind + "/delta?$deltatoken=" + rd.final
		delete(s.rounds, id)
	}
	return ok(out)
}

func inFilter(filter []string, id string) bool {
	return filter == nil || slices.Contains(filter, id)
}

func (s *Server) userEntries(tok deltaToken, initial, minimal bool) []map[string]any {
	sel := tok.Select
	if sel == nil {
		sel = defaultUserSelect
	}
	var out []map[string]any
	for _, id := range sortedKeys(s.users) {
		u := s.users[id]
		if !inFilter(tok.Filter, id) {
			continue
		}
		fresh := initial || u.created > tok.Seq
		touched := fresh
		for _, p := range sel {
			if u.changed[p] > tok.Seq {
				touched = true
			}
		}
		if !touched {
			continue
		}
		e := map[string]any{"id": id}
		for _, p := range sel {
			if minimal && !fresh && u.changed[p] <= tok.Seq {
				continue
			}
			if v, set := u.prop(p); set {
				e[p] = v
			} else if u.everSet[p] {
				e[p] = nil
			}
		}
		out = append(out, e)
	}
	if !initial {
		out = append(out, s.tombEntries("user", tok)...)
	}
	return out
}

func (s *Server) tombEntries(kind string, tok deltaToken) []map[string]any {
	var out []map[string]any
	for _, id := range sortedKeys(s.tombs) {
		t := s.tombs[id]
		if t.kind != kind || t.seq <= tok.Seq || !inFilter(tok.Filter, id) {
			continue
		}
		out = append(out, map[string]any{"id": id, "@removed": map[string]any{"reason": t.reason}})
	}
	return out
}

func (s *Server) memberRef(id string, removed bool) map[string]any {
	m := map[string]any{"@odata.type": "#microsoft.graph." + s.kinds[id], "id": id}
	if removed {
		m["@removed"] = map[string]any{"reason": "deleted"}
	}
	return m
}

func (s *Server) groupEntries(tok deltaToken, initial, minimal bool) []map[string]any {
	sel := tok.Select
	if sel == nil {
		sel = groupProps
	}
	withMembers := slices.Contains(sel, "members")
	// Member changes since the token: the latest event per (group, member).
	changes := map[string]map[string]bool{}
	if withMembers && !initial {
		for _, ev := range s.events {
			if ev.seq <= tok.Seq {
				continue
			}
			if changes[ev.group] == nil {
				changes[ev.group] = map[string]bool{}
			}
			changes[ev.group][ev.member] = ev.added
		}
	}
	var out []map[string]any
	for _, id := range sortedKeys(s.groups) {
		g := s.groups[id]
		if !inFilter(tok.Filter, id) {
			continue
		}
		fresh := initial || g.created > tok.Seq
		touched := fresh
		for _, p := range sel {
			if p != "members" && g.changed[p] > tok.Seq {
				touched = true
			}
		}
		var refs []map[string]any
		if withMembers {
			if initial {
				for _, m := range sortedKeys(g.members) {
					refs = append(refs, s.memberRef(m, false))
				}
			} else {
				for _, m := range sortedKeys(changes[id]) {
					refs = append(refs, s.memberRef(m, !changes[id][m]))
				}
			}
		}
		if !touched && len(refs) == 0 {
			continue
		}
		first := map[string]any{"id": id}
		for _, p := range sel {
			if p == "members" || (minimal && !fresh && g.changed[p] <= tok.Seq) {
				continue
			}
			if v, set := g.prop(p); set {
				first[p] = v
			} else if g.everSet[p] {
				first[p] = nil
			}
		}
		if !withMembers {
			out = append(out, first)
			continue
		}
		frag := first
		for {
			n := min(len(refs), s.opts.MembersPerFragment)
			frag["members@delta"] = refs[:n]
			out = append(out, frag)
			refs = refs[n:]
			if len(refs) == 0 {
				break
			}
			frag = map[string]any{"id": id}
		}
	}
	if !initial {
		out = append(out, s.tombEntries("group", tok)...)
	}
	return out
}

// --- members, objects, checkMemberGroups ------------------------------------

func (s *Server) members(groupID string, q url.Values) *reply {
	g, found := s.groups[groupID]
	if !found {
		return notFound(groupID)
	}
	top := 100
	if t := q.Get("$top"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 || n > 999 {
			return graphError(http.StatusBadRequest, "Request_BadRequest", fmt.Sprintf("Invalid page size specified: '%s'. Must be between 1 and 999 inclusive.", t))
		}
		top = n
	}
	sel, bad := parseSelect("users", q.Get("$select"))
	if bad != "" {
		sel = nil // a group property; only id and type matter here
	}
	offset := 0
	if sk := q.Get("$skiptoken"); sk != "" {
		b, err := base64.RawURLEncoding.DecodeString(sk)
		prefix, n, found := strings.Cut(string(b), ":")
		if err != nil || !found || prefix != groupID {
			return graphError(http.StatusBadRequest, "Request_BadRequest", "Invalid skip token.")
		}
		if offset, err = strconv.Atoi(n); err != nil {
			return graphError(http.StatusBadRequest, "Request_BadRequest", "Invalid skip token.")
		}
	}
	ids := sortedKeys(g.members)
	end := min(offset+top, len(ids))
	pageIDs := ids[min(offset, len(ids)):end]
	if s.shortNext && end < len(ids) && len(pageIDs) > 1 {
		pageIDs = pageIDs[:len(pageIDs)/2]
	}
	value := make([]map[string]any, 0, len(pageIDs))
	for _, id := range pageIDs {
		m := s.memberRef(id, false)
		if u, isUser := s.users[id]; isUser {
			for _, p := range sel {
				if v, set := u.prop(p); set {
					m[p] = v
				}
			}
		}
		value = append(value, m)
	}
	out := map[string]any{"@odata.context": s.base() + "/$metadata#directoryObjects", "value": value}
	if end < len(ids) {
		tok := base64.RawURLEncoding.EncodeToString([]byte(groupID + ":" + strconv.Itoa(end)))
		v := url.Values{"$top": {strconv.Itoa(top)}, "$skiptoken": {tok}}
		if qs := q.Get("$select"); qs != "" {
			v.Set("$select", qs)
		}
		out["@odata.nextLink"] = s.base() + "/groups/" + groupID + "/members?" + v.Encode()
	}
	return ok(out)
}

func notFound(id string) *reply {
	return graphError(http.StatusNotFound, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", id))
}

func (s *Server) object(kind, id string, q url.Values) *reply {
	sel, bad := parseSelect(kind, q.Get("$select"))
	if bad != "" {
		return graphError(http.StatusBadRequest, "Request_BadRequest", bad)
	}
	out := map[string]any{"@odata.context": s.base() + "/$metadata#" + kind + "/$entity", "id": id}
	switch kind {
	case "users":
		u, found := s.users[id]
		if !found {
			return notFound(id)
		}
		if sel == nil {
			sel = defaultUserSelect
		}
		for _, p := range sel {
			if v, set := u.prop(p); set {
				out[p] = v
			} else {
				out[p] = nil
			}
		}
	default:
		g, found := s.groups[id]
		if !found {
			return notFound(id)
		}
		if sel == nil {
			sel = []string{"displayName", "description"}
		}
		for _, p := range sel {
			if p == "members" {
				continue
			}
			if v, set := g.prop(p); set {
				out[p] = v
			} else {
				out[p] = nil
			}
		}
	}
	return ok(out)
}

func (s *Server) checkMemberGroups(kind, id string, body []byte) *reply {
	if kind == "users" {
		if _, found := s.users[id]; !found {
			return notFound(id)
		}
	} else if _, found := s.groups[id]; !found {
		return notFound(id)
	}
	var req struct {
		GroupIDs []string `json:"groupIds"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return graphError(http.StatusBadRequest, "Request_BadRequest", "Invalid request body: a JSON object with groupIds is expected.")
	}
	if len(req.GroupIDs) > 20 {
		return graphError(http.StatusBadRequest, "Request_BadRequest", "The number of group ids exceeds the limit of 20.")
	}
	// Every group id holds transitively.
	in := map[string]bool{}
	frontier := []string{id}
	for len(frontier) > 0 {
		var next []string
		for _, m := range frontier {
			for gid, g := range s.groups {
				if g.members[m] && !in[gid] {
					in[gid] = true
					next = append(next, gid)
				}
			}
		}
		frontier = next
	}
	value := []string{}
	for _, gid := range req.GroupIDs {
		if in[gid] {
			value = append(value, gid)
		}
	}
	return ok(map[string]any{"@odata.context": s.base() + "/$metadata#Collection(Edm.String)", "value": value})
}

// --- $batch -----------------------------------------------------------------

func (s *Server) batch(hdr http.Header, body []byte) *reply {
	var req struct {
		Requests []struct {
			ID      string            `json:"id"`
			Method  string            `json:"method"`
			URL     string            `json:"url"`
			Headers map[string]string `json:"headers"`
			Body    json.RawMessage   `json:"body"`
		} `json:"requests"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return graphError(http.StatusBadRequest, "BadRequest", "Invalid batch payload format.")
	}
	if len(req.Requests) == 0 {
		return graphError(http.StatusBadRequest, "BadRequest", "Invalid batch payload format: no requests.")
	}
	if len(req.Requests) > 20 {
		return graphError(http.StatusBadRequest, "BadRequest", "Number of included requests exceeds the limit of 20.")
	}
	seen := map[string]bool{}
	for _, r := range req.Requests {
		id := strings.ToLower(r.ID)
		if r.ID == "" || seen[id] {
			return graphError(http.StatusBadRequest, "BadRequest", "Batch request ids must be given and unique.")
		}
		seen[id] = true
	}
	responses := make([]map[string]any, 0, len(req.Requests))
	for _, r := range req.Requests {
		var rp *reply
		switch {
		case r.Method == "" || r.URL == "":
			rp = graphError(http.StatusBadRequest, "BadRequest", "A batch request needs a method and a url.")
		case strings.HasPrefix(r.URL, "http://") || strings.HasPrefix(r.URL, "https://"):
			rp = graphError(http.StatusBadRequest, "BadRequest", "A batch request's url must be relative, like /users.")
		case len(r.Body) > 0 && r.Headers["Content-Type"] == "" && r.Headers["content-type"] == "":
			rp = graphError(http.StatusBadRequest, "BadRequest", "Content-Type header is required when a body is given.")
		default:
			inner := hdr.Clone()
			for k, v := range r.Headers {
				inner.Set(k, v)
			}
			u := r.URL
			if !strings.HasPrefix(u, "/") {
				u = "/" + u
			}
			rp = s.route(strings.ToUpper(r.Method), "/v1.0"+u, inner, bytes.TrimSpace(r.Body), true)
		}
		h := map[string]string{"Content-Type": "application/json"}
		for k := range rp.header {
			h[k] = rp.header.Get(k)
		}
		resp := map[string]any{"id": r.ID, "status": rp.status, "headers": h}
		if rp.body != nil {
			resp["body"] = rp.body
		}
		responses = append(responses, resp)
	}
	s.mu.Lock()
	s.rng.Shuffle(len(responses), func(i, j int) { responses[i], responses[j] = responses[j], responses[i] })
	s.mu.Unlock()
	return ok(map[string]any{"responses": responses})
}
