package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/roster-dev/roster/internal/secret"
	"github.com/roster-dev/roster/metrics"
	"github.com/roster-dev/roster/store"
	"github.com/roster-dev/roster/sync/reconcile"
)

// Queue is what the API asks of the work queue.
type Queue interface {
	TriggerReconcile(ctx context.Context, directoryID string) error
	EnqueuePoll(ctx context.Context, directoryID string) error
}

// DirectoryType describes a kind of directory the API can create.
type DirectoryType struct {
	// Prepare validates the type's settings object from a create request,
	// tests the connection of a polled type, and returns what to store. Its
	// error message is shown to the caller.
	Prepare func(ctx context.Context, raw json.RawMessage) (json.RawMessage, error)
	// Merge applies a PATCH's settings object to the stored settings:
	// fields given replace the stored ones, fields left out (secrets
	// among them) are kept. The result is validated and, for a polled
	// type, its connection tested. Nil means the type has nothing to change.
	Merge func(ctx context.Context, stored, patch json.RawMessage) (json.RawMessage, error)
	// Redact returns the stored settings as API answers show them: never
	// a secret.
	Redact func(stored json.RawMessage) any
	// Polled types are read on a schedule; SCIM is pushed.
	Polled bool
}

// Previewer lists what the next poll of a directory would change, applying
// it nowhere.
type Previewer interface {
	Preview(ctx context.Context, dirID string) (any, error)
}

// Server is the admin API.
type Server struct {
	// Preview answers POST .../preview; nil answers 501.
	Preview   Previewer
	Store     *store.Store
	Queue     Queue
	Metrics   *metrics.Metrics
	Log       *slog.Logger
	PublicURL string
	Types     map[string]DirectoryType
	// Changed is called after a change that cached directory state must
	// see at once: SSO status, token rotation, a directory created, changed or
	// deleted (the SCIM cache and the schedules).
	Changed func()
	// WaitApplied bounds how long a spend-limit write waits for the roster
	// to show it before answering. Default 3 s.
	WaitApplied time.Duration
	// Webhooks configures the webhook routes (webhooks.go).
	Webhooks Webhooks
	// Streams configures the live event stream (stream.go).
	Streams Streams

	handlerOnce sync.Once
	handler     http.Handler

	mu       sync.Mutex
	tokens   []store.AdminToken   // admin tokens as last read (auth.go)
	loadedAt time.Time            // when tokens were read; zero: read again
	touched  map[string]time.Time // team token id → last_used_at last written
}

// route is one admin API route. Every route is listed in routes, which
// Handler serves and the scope test walks, so none escapes the check.
type route struct {
	pattern string
	handle  func(w http.ResponseWriter, r *http.Request) *apiError
	// teamScoped routes have {team} in their path: a team token may call
	// them on its own team only.
	teamScoped bool
	// operatorOnly routes, outside any team, refuse team tokens.
	operatorOnly bool
}

// Handler returns the API's routes, under /api/v1.
func (s *Server) Handler() http.Handler {
	s.handlerOnce.Do(func() {
		mux := http.NewServeMux()
		for _, rt := range s.routes() {
			mux.Handle(rt.pattern, s.wrap(rt))
		}
		s.handler = mux
	})
	return s.handler
}

// catchAll answers every path no other route takes.
const catchAll = "/api/v1/"

func (s *Server) routes() []route {
	var rs []route
	// A route outside any team is operator-only unless it is the
	// not-found catch-all: a new route cannot open a hole by forgetting to
	// say who may call it.
	h := func(pattern string, f func(w http.ResponseWriter, r *http.Request) *apiError) {
		scoped := strings.Contains(pattern, "{team}")
		rs = append(rs, route{pattern: pattern, handle: f, teamScoped: scoped, operatorOnly: !scoped && pattern != catchAll})
	}
	operator := func(pattern string, f func(w http.ResponseWriter, r *http.Request) *apiError) {
		rs = append(rs, route{pattern: pattern, handle: f, operatorOnly: true})
	}
	operator("POST /api/v1/teams", s.createTeam)
	operator("GET /api/v1/teams", s.listTeams)
	h("GET /api/v1/teams/{team}", s.getTeam)
	h("GET /api/v1/directories", s.operatorDirectories)
	h("PUT /api/v1/teams/{team}/sso", s.putSSO)
	h("GET /api/v1/teams/{team}/spend-limit", s.getTeamLimit)
	h("PUT /api/v1/teams/{team}/spend-limit", s.putTeamLimit)
	h("POST /api/v1/teams/{team}/directories", s.createDirectory)
	h("GET /api/v1/teams/{team}/directories", s.listDirectories)
	h("GET /api/v1/teams/{team}/directories/{dir}", s.getDirectory)
	h("PATCH /api/v1/teams/{team}/directories/{dir}", s.patchDirectory)
	h("DELETE /api/v1/teams/{team}/directories/{dir}", s.deleteDirectory)
	h("POST /api/v1/teams/{team}/directories/{dir}/preview", s.previewDirectory)
	h("POST /api/v1/teams/{team}/directories/{dir}/sync", s.syncDirectory)
	h("POST /api/v1/teams/{team}/directories/{dir}/approve", s.approveDirectory)
	h("GET /api/v1/teams/{team}/directories/{dir}/requests", s.listRequests)
	h("POST /api/v1/teams/{team}/directories/{dir}/token", s.rotateToken)
	h("/api/v1/teams/{team}/members", s.members)
	h("/api/v1/teams/{team}/members/{rest...}", s.members)
	h("/api/v1/teams/{team}/groups", s.groups)
	h("/api/v1/teams/{team}/groups/{rest...}", s.groups)
	h("GET /api/v1/teams/{team}/limits/review", s.reviewLimits)
	h("GET /api/v1/teams/{team}/events", s.listEvents)
	h("POST /api/v1/teams/{team}/admin-tokens", s.createTeamToken)
	h("GET /api/v1/teams/{team}/admin-tokens", s.listTeamTokens)
	h("DELETE /api/v1/teams/{team}/admin-tokens/{id}", s.deleteTeamToken)
	s.routeWebhooks(h)
	h(catchAll, func(w http.ResponseWriter, r *http.Request) *apiError {
		return errorf(http.StatusNotFound, CodeNotFound, "no such API path: %s %s", r.Method, r.URL.Path)
	})
	return rs
}

func (s *Server) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: 200}
		defer func() {
			if s.Metrics != nil {
				s.Metrics.APIRequests.WithLabelValues(metrics.StatusClass(sw.status)).Inc()
			}
		}()
		p, aerr := s.principal(r)
		if aerr != nil {
			if aerr.Status == http.StatusUnauthorized {
				sw.Header().Set("WWW-Authenticate", `Bearer realm="roster"`)
			}
			writeError(sw, aerr)
			return
		}
		if aerr := authorize(p, rt, r); aerr != nil {
			writeError(sw, aerr)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
		if err := rt.handle(sw, r); err != nil {
			// A server at a limit (503) says so; other 5xx hide details.
			if err.Status >= 500 && err.Code != CodeUnavailable {
				s.log().Error("admin api", "method", r.Method, "path", r.URL.Path, "err", err.Message)
				err = errorf(err.Status, CodeInternal, "internal error; see the server log")
			}
			writeError(sw, err)
		}
	})
}

// AddAdminToken stores the hash of an operator token (used at start-up).
func (s *Server) AddAdminToken(ctx context.Context, token, name string) error {
	if err := s.Store.AddAdminToken(ctx, secret.Hash(token), name); err != nil {
		return err
	}
	s.forgetTokens()
	return nil
}

func internal(err error) *apiError {
	return &apiError{Status: http.StatusInternalServerError, Code: CodeInternal, Message: err.Error()}
}

// team reads the {team} of the path. wrap has refused a team token on
// another team's path already; this checks again, so a handler reached
// some other way cannot show another team.
func (s *Server) team(r *http.Request) (*store.Team, *apiError) {
	id := r.PathValue("team")
	if p, ok := PrincipalFrom(r.Context()); !ok || !p.Sees(id) {
		return nil, noTeam(id)
	}
	t, err := s.Store.GetTeam(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, noTeam(id)
	}
	if err != nil {
		return nil, internal(err)
	}
	return t, nil
}

func centsJSON(c *int64) any {
	if c == nil {
		return nil
	}
	return *c
}

func teamJSON(t *store.Team) map[string]any {
	return map[string]any{
		"id": t.ID, "name": t.Name, "plan": t.Plan,
		"sso":                 map[string]any{"status": t.SSOStatus, "provider": t.SSOProvider},
		"default_spend_limit": map[string]any{"per_user_cents": centsJSON(t.DefaultLimitCents)},
		"created_at":          t.CreatedAt, "updated_at": t.UpdatedAt,
	}
}

var plans = map[string]bool{store.PlanFree: true, store.PlanPro: true, store.PlanBusiness: true, store.PlanEnterprise: true}

func (s *Server) createTeam(w http.ResponseWriter, r *http.Request) *apiError {
	var body struct {
		ID           string     `json:"id"`
		Name         string     `json:"name"`
		Plan         string     `json:"plan"`
		DefaultLimit *limitBody `json:"default_spend_limit"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	var problems []string
	if strings.TrimSpace(body.Name) == "" {
		problems = append(problems, "name is required")
	}
	if body.Plan == "" {
		body.Plan = store.PlanFree
	}
	if !plans[body.Plan] {
		problems = append(problems, "plan must be one of free, pro, business, enterprise")
	}
	t := &store.Team{ID: body.ID, Name: strings.TrimSpace(body.Name), Plan: body.Plan}
	if body.DefaultLimit != nil {
		_, cents, err := body.DefaultLimit.parse()
		if err != nil {
			problems = append(problems, "default_spend_limit: "+err.Message)
		}
		t.DefaultLimitCents = cents
	}
	if t.ID == "" {
		t.ID = uuid.NewString()
	} else if !validID(t.ID) {
		problems = append(problems, "id may hold only letters, digits, '-' and '_' (at most 64)")
	}
	if len(problems) > 0 {
		return errorf(http.StatusBadRequest, CodeBadRequest, "%s", strings.Join(problems, "; "))
	}
	if err := s.Store.CreateTeam(r.Context(), t); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errorf(http.StatusConflict, CodeConflict, "a team with id %q exists", t.ID)
		}
		return internal(err)
	}
	writeJSON(w, http.StatusCreated, teamJSON(t))
	return nil
}

func validID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (s *Server) getTeam(w http.ResponseWriter, r *http.Request) *apiError {
	t, err := s.team(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, teamJSON(t))
	return nil
}

func (s *Server) putSSO(w http.ResponseWriter, r *http.Request) *apiError {
	var body struct {
		Status   string `json:"status"`
		Provider string `json:"provider"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	if body.Status != "active" && body.Status != "inactive" {
		return errorf(http.StatusBadRequest, CodeBadRequest, `status must be "active" or "inactive", got %q`, body.Status)
	}
	var out *store.Team
	err := s.Store.WithTx(r.Context(), func(tx *store.Tx) error {
		t, err := tx.GetTeam(r.Context(), r.PathValue("team"))
		if err != nil {
			return err
		}
		t.SSOStatus = body.Status
		if body.Provider != "" {
			t.SSOProvider = body.Provider
		}
		out = t
		return tx.UpdateTeam(r.Context(), t)
	})
	if errors.Is(err, store.ErrNotFound) {
		return noTeam(r.PathValue("team"))
	}
	if err != nil {
		return internal(err)
	}
	s.changed()
	writeJSON(w, http.StatusOK, teamJSON(out))
	return nil
}

func (s *Server) getTeamLimit(w http.ResponseWriter, r *http.Request) *apiError {
	t, err := s.team(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"per_user_cents": centsJSON(t.DefaultLimitCents)})
	return nil
}

func (s *Server) putTeamLimit(w http.ResponseWriter, r *http.Request) *apiError {
	var body limitBody
	if err := decode(w, r, &body); err != nil {
		return err
	}
	present, cents, aerr := body.parse()
	if aerr != nil {
		return aerr
	}
	if !present {
		return errorf(http.StatusBadRequest, CodeBadRequest, "per_user_cents is required: a whole number of cents, or null for unlimited")
	}
	_, pending, err := reconcile.SetTeamDefault(r.Context(), s.Store, r.PathValue("team"), cents)
	if errors.Is(err, store.ErrNotFound) {
		return noTeam(r.PathValue("team"))
	}
	if err != nil {
		return internal(err)
	}
	s.applied(r.Context(), pending)
	writeJSON(w, http.StatusOK, map[string]any{"per_user_cents": centsJSON(cents)})
	return nil
}

func (s *Server) trigger(ctx context.Context, dirID string) {
	if s.Queue == nil {
		return
	}
	if err := s.Queue.TriggerReconcile(ctx, dirID); err != nil {
		// The change is safe in the store; the scheduler's sweep picks it up.
		s.log().Warn("trigger reconcile", "directory", dirID, "err", err)
	}
}

// applied asks for the reconciles a spend-limit change needs and waits,
// boundedly, until the roster shows it, so the admin's next read does. On
// timeout the answer goes out anyway: the change is safe in the store and
// the reconciler applies it shortly.
func (s *Server) applied(ctx context.Context, pending reconcile.Pending) {
	for _, dirID := range pending.Directories() {
		s.trigger(ctx, dirID)
	}
	limit := s.WaitApplied
	if limit == 0 {
		limit = 3 * time.Second
	}
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	if err := pending.Wait(wctx, s.Store); err != nil && !errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		s.log().Warn("wait for the roster to show a limit change", "err", err)
	}
}

// members serves the read-only member routes and refuses every write.
func (s *Server) members(w http.ResponseWriter, r *http.Request) *apiError {
	rest := r.PathValue("rest")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return errorf(http.StatusForbidden, CodeManaged, "members and their groups are managed by the identity provider: change them there; roster only reads them. Only spend limits can be set here")
	}
	if rest == "" {
		return s.listMembers(w, r)
	}
	if strings.Contains(rest, "/") {
		return errorf(http.StatusNotFound, CodeNotFound, "no such API path: %s", r.URL.Path)
	}
	if _, err := s.team(r); err != nil {
		return err
	}
	m, err := s.Store.GetRosterMember(r.Context(), r.PathValue("team"), rest)
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, CodeNotFound, "no member %q in this team", rest)
	}
	if err != nil {
		return internal(err)
	}
	writeJSON(w, http.StatusOK, memberJSON(m))
	return nil
}

func memberJSON(m *store.MemberWithGroups) map[string]any {
	groups := make([]map[string]any, 0, len(m.Groups))
	for _, g := range m.Groups {
		j := map[string]any{"id": g.GroupID, "name": g.Name}
		// per_user_cents only on groups that have a limit (null: unlimited).
		if lim, ok := m.GroupLimits[g.GroupID]; ok {
			j["per_user_cents"] = centsJSON(lim)
		}
		groups = append(groups, j)
	}
	src := map[string]any{"type": m.LimitSource, "group_id": nil, "group_name": nil}
	if m.LimitSource == store.SourceGroup {
		src["group_id"], src["group_name"] = m.LimitGroupID, m.LimitGroupName
	}
	return map[string]any{
		"id": m.UserID, "email": m.Email, "name": m.Name, "directory_id": m.DirectoryID,
		"groups":      groups,
		"spend_limit": map[string]any{"per_user_cents": centsJSON(m.LimitCents), "source": src},
		"added_at":    m.AddedAt,
		// The directory removed the member, and the SCIM deletion guard
		// holds the removal until an admin approves: access stays.
		"pending_removal": m.PendingRemoval,
	}
}

// limitArg reads ?limit= (default 100, at most 1000).
func limitArg(r *http.Request) (int, *apiError) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, errorf(http.StatusBadRequest, CodeBadRequest, "limit must be a positive whole number, got %q", v)
	}
	return min(n, 1000), nil
}

func pageArgs(r *http.Request) (int, string, *apiError) {
	limit, aerr := limitArg(r)
	if aerr != nil {
		return 0, "", aerr
	}
	after := ""
	if c := r.URL.Query().Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil {
			return 0, "", errorf(http.StatusBadRequest, CodeBadRequest, "cursor is not one this API gave out")
		}
		after = string(b)
	}
	return limit, after, nil
}

func cursorFor(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }

func (s *Server) listMembers(w http.ResponseWriter, r *http.Request) *apiError {
	t, aerr := s.team(r)
	if aerr != nil {
		return aerr
	}
	limit, after, aerr := pageArgs(r)
	if aerr != nil {
		return aerr
	}
	args := r.URL.Query()
	q := store.MemberQuery{TeamID: t.ID, After: after, Limit: limit + 1, Email: args.Get("email"), GroupID: args.Get("group"),
		Search: strings.TrimSpace(args.Get("q")), Source: args.Get("source"), SourceGroupID: args.Get("source_group")}
	if q.GroupID == "" {
		q.GroupID = args.Get("group_id")
	}
	if q.Source != "" && q.Source != store.SourceGroup && q.Source != store.SourceTeamDefault {
		return errorf(http.StatusBadRequest, CodeBadRequest, "source must be %q or %q, got %q", store.SourceGroup, store.SourceTeamDefault, q.Source)
	}
	if q.SourceGroupID != "" && q.Source == store.SourceTeamDefault {
		return errorf(http.StatusBadRequest, CodeBadRequest, "source_group keeps members whose limit a group decides; it cannot be combined with source=team_default")
	}
	ms, err := s.Store.ListRosterMembers(r.Context(), q)
	if err != nil {
		return internal(err)
	}
	writePage(w, "members", ms, limit, func(m *store.MemberWithGroups) string { return m.UserID }, memberJSON)
	return nil
}

// writePage answers one page of a list that was read with limit+1 rows:
// the extra row only says there is a next page, whose cursor is the last
// id shown.
func writePage[T any](w http.ResponseWriter, key string, items []T, limit int, id func(*T) string, render func(*T) map[string]any) {
	next := ""
	if len(items) > limit {
		items = items[:limit]
		next = cursorFor(id(&items[len(items)-1]))
	}
	out := make([]map[string]any, 0, len(items))
	for i := range items {
		out = append(out, render(&items[i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{key: out, "next_cursor": next})
}

func groupJSON(g *store.GroupWithCount) map[string]any {
	return map[string]any{
		"id": g.GroupID, "name": g.Name, "directory_id": g.DirectoryID, "member_count": g.MemberCount,
		"spend_limit": map[string]any{"per_user_cents": centsJSON(g.LimitCents), "unlimited": g.HasLimit && g.LimitCents == nil, "set": g.HasLimit},
	}
}

// groups serves the read-only group routes and the one writable thing, a
// group's spend limit.
func (s *Server) groups(w http.ResponseWriter, r *http.Request) *apiError {
	rest := r.PathValue("rest")
	parts := strings.Split(rest, "/")
	if len(parts) == 2 && parts[1] == "spend-limit" {
		switch r.Method {
		case http.MethodPut:
			return s.putGroupLimit(w, r, parts[0])
		case http.MethodDelete:
			return s.setGroupLimit(w, r, parts[0], false, nil)
		case http.MethodGet:
			return s.getGroup(w, r, parts[0], true)
		}
		w.Header().Set("Allow", "GET, PUT, DELETE")
		return errorf(http.StatusMethodNotAllowed, CodeMethod, "a group's spend limit takes GET, PUT or DELETE, not %s", r.Method)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return errorf(http.StatusForbidden, CodeManaged, "groups and memberships are managed by the identity provider: change them there; roster only reads them. Only a group's spend limit can be set here (PUT .../groups/{group}/spend-limit)")
	}
	switch {
	case rest == "":
		return s.listGroups(w, r)
	case len(parts) == 1:
		return s.getGroup(w, r, parts[0], false)
	case len(parts) == 2 && parts[1] == "members":
		q := r.URL.Query()
		q.Set("group", parts[0])
		r.URL.RawQuery = q.Encode()
		return s.listMembers(w, r)
	}
	return errorf(http.StatusNotFound, CodeNotFound, "no such API path: %s", r.URL.Path)
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) *apiError {
	t, aerr := s.team(r)
	if aerr != nil {
		return aerr
	}
	limit, after, aerr := pageArgs(r)
	if aerr != nil {
		return aerr
	}
	gs, err := s.Store.ListRosterGroups(r.Context(), store.GroupQuery{TeamID: t.ID, After: after, Limit: limit + 1, Search: strings.TrimSpace(r.URL.Query().Get("q"))})
	if err != nil {
		return internal(err)
	}
	writePage(w, "groups", gs, limit, func(g *store.GroupWithCount) string { return g.GroupID }, groupJSON)
	return nil
}

func (s *Server) getGroup(w http.ResponseWriter, r *http.Request, id string, limitOnly bool) *apiError {
	t, aerr := s.team(r)
	if aerr != nil {
		return aerr
	}
	g, err := s.Store.GetRosterGroup(r.Context(), t.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, CodeNotFound, "no group %q in this team", id)
	}
	if err != nil {
		return internal(err)
	}
	j := groupJSON(g)
	if limitOnly {
		writeJSON(w, http.StatusOK, j["spend_limit"])
		return nil
	}
	writeJSON(w, http.StatusOK, j)
	return nil
}

func (s *Server) putGroupLimit(w http.ResponseWriter, r *http.Request, groupID string) *apiError {
	var body limitBody
	if err := decode(w, r, &body); err != nil {
		return err
	}
	present, cents, aerr := body.parse()
	if aerr != nil {
		return aerr
	}
	unlimited := body.Unlimited != nil && *body.Unlimited
	switch {
	case unlimited && cents != nil:
		return errorf(http.StatusBadRequest, CodeBadRequest, "give either a per_user_cents amount or unlimited: true, not both")
	case unlimited:
		return s.setGroupLimit(w, r, groupID, true, nil)
	case !present:
		return errorf(http.StatusBadRequest, CodeBadRequest, "per_user_cents is required: a whole number of cents, null to remove the group's limit, or send unlimited: true")
	case cents == nil:
		return s.setGroupLimit(w, r, groupID, false, nil)
	}
	return s.setGroupLimit(w, r, groupID, true, cents)
}

func (s *Server) setGroupLimit(w http.ResponseWriter, r *http.Request, groupID string, has bool, cents *int64) *apiError {
	t, aerr := s.team(r)
	if aerr != nil {
		return aerr
	}
	pending, err := reconcile.SetGroupLimit(r.Context(), s.Store, t.ID, groupID, has, cents)
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, CodeNotFound, "no group %q in this team", groupID)
	}
	if err != nil {
		return internal(err)
	}
	s.applied(r.Context(), pending)
	return s.getGroup(w, r, groupID, false)
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) *apiError {
	t, aerr := s.team(r)
	if aerr != nil {
		return aerr
	}
	limit, aerr := limitArg(r)
	if aerr != nil {
		return aerr
	}
	after := int64(0)
	if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return errorf(http.StatusBadRequest, CodeBadRequest, "after must be a cursor this API gave out (an event id), got %q", v)
		}
		after = n
	}
	if v := r.URL.Query().Get("latest"); v != "" {
		return s.latestEvents(w, r, t.ID, v)
	}
	evs, err := s.Store.ListEvents(r.Context(), t.ID, after, limit)
	if err != nil {
		return internal(err)
	}
	out := make([]store.FeedEvent, 0, len(evs))
	next := strconv.FormatInt(after, 10)
	for i := range evs {
		out = append(out, evs[i].Feed())
		next = strconv.FormatInt(evs[i].Seq, 10)
	}
	if after == 0 && len(evs) == 0 {
		next = ""
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": out, "next_cursor": next})
	return nil
}

// latestEvents answers GET .../events?latest=N: the team's N newest events,
// newest first, and as next_cursor the newest id, from which ?after= (or the
// stream) carries on. The web page's activity list and live updates start
// here instead of reading the whole feed.
func (s *Server) latestEvents(w http.ResponseWriter, r *http.Request, teamID, v string) *apiError {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return errorf(http.StatusBadRequest, CodeBadRequest, "latest must be a positive whole number, got %q", v)
	}
	evs, err := s.Store.LatestEvents(r.Context(), teamID, min(n, 1000))
	if err != nil {
		return internal(err)
	}
	out := make([]store.FeedEvent, 0, len(evs))
	for i := range evs {
		out = append(out, evs[i].Feed())
	}
	next := "0"
	if len(evs) > 0 {
		next = strconv.FormatInt(evs[0].Seq, 10)
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": out, "next_cursor": next})
	return nil
}

func (s *Server) changed() {
	if s.Changed != nil {
		s.Changed()
	}
}

// reviewLimits answers the review of group limits: every group that has a
// limit, with how many members' limit it decides, and a page of the members
// in two or more such groups (one group's limit won over another's).
func (s *Server) reviewLimits(w http.ResponseWriter, r *http.Request) *apiError {
	t, aerr := s.team(r)
	if aerr != nil {
		return aerr
	}
	limit, after, aerr := pageArgs(r)
	if aerr != nil {
		return aerr
	}
	rev, err := s.Store.ReviewLimits(r.Context(), t.ID, after, limit+1)
	if err != nil {
		return internal(err)
	}
	groups := make([]map[string]any, 0, len(rev.Groups))
	for _, g := range rev.Groups {
		groups = append(groups, map[string]any{
			"id": g.GroupID, "name": g.Name, "directory_id": g.DirectoryID,
			"per_user_cents": centsJSON(g.LimitCents), "member_count": g.MemberCount, "decides": g.Decides,
		})
	}
	members, next := rev.Members, ""
	if len(members) > limit {
		members = members[:limit]
		next = cursorFor(members[len(members)-1].UserID)
	}
	out := make([]map[string]any, 0, len(members))
	for i := range members {
		out = append(out, memberJSON(&members[i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"groups": groups, "members": out, "next_cursor": next,
		"team_default": map[string]any{"per_user_cents": centsJSON(t.DefaultLimitCents)},
	})
	return nil
}
