package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// pageSize is the rows a list screen shows at once.
const pageSize = 50

func (h *Handler) team(r *http.Request, s *session) (*team, error) {
	var t team
	if err := h.call(r, s.Principal, "GET", "/teams/"+url.PathEscape(r.PathValue("team")), nil, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

func (h *Handler) teamView(r *http.Request, s *session, t *team, nav, title string) *view {
	v := &view{Title: title, S: s, Team: t, Nav: nav, Live: true, Status: done(r)}
	if r.URL.Query().Get("fragment") == "" {
		// The live stream starts after the newest event shown now.
		var out struct {
			Next string `json:"next_cursor"`
		}
		if err := h.call(r, s.Principal, "GET", teamAPI(t, "/events?latest=1"), nil, &out); err == nil {
			v.After = out.Next
		}
	}
	return v
}

// --- sign-in ---

func (h *Handler) signinPage(w http.ResponseWriter, r *http.Request) {
	if s, err := h.loadSession(r); err == nil {
		http.Redirect(w, r, home(s.Principal), http.StatusSeeOther)
		return
	}
	h.renderSignin(w, r, http.StatusOK, "")
}

func (h *Handler) renderSignin(w http.ResponseWriter, r *http.Request, status int, problem string) {
	tok := randomToken()
	h.setCookie(w, r, signinCookie, tok, 600)
	w.Header().Set("Cache-Control", "no-store")
	h.render(w, r, status, "signin", &view{Title: "Sign in", Error: problem, Fields: map[string]string{"csrf": tok, "next": safeNext(r.FormValue("next"))}})
}

// safeNext keeps a post-sign-in destination on this site.
func safeNext(v string) string {
	if strings.HasPrefix(v, "/teams") && !strings.HasPrefix(v, "//") && !strings.Contains(v, "\\") {
		return v
	}
	return ""
}

func (h *Handler) signin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	c, err := r.Cookie(signinCookie)
	if err != nil || !csrfOK(r, c.Value) {
		h.errorPage(w, r, nil, http.StatusForbidden, "The sign-in form has expired or its CSRF token is missing. Open the sign-in page again.")
		return
	}
	p, err := h.backend.Authenticate(r.Context(), strings.TrimSpace(r.PostFormValue("token")))
	if errors.Is(err, ErrBadToken) {
		h.log().Warn("web sign-in refused: not an admin token", "remote", r.RemoteAddr)
		h.renderSignin(w, r, http.StatusUnauthorized, "That token is not a valid admin token. Use the operator's admin token or a team admin token.")
		return
	}
	if err != nil {
		h.fail(w, r, nil, err)
		return
	}
	// A session this browser had is replaced, not left behind.
	if old, err := h.loadSession(r); err == nil {
		_ = h.sessions.DeleteWebSession(r.Context(), old.idHash)
	}
	if err := h.startSession(w, r, p); err != nil {
		h.fail(w, r, nil, err)
		return
	}
	h.setCookie(w, r, signinCookie, "", -1)
	h.log().Info("web sign-in", "operator", p.Operator, "team", p.TeamID, "token_id", p.TokenID, "remote", r.RemoteAddr)
	// Housekeeping rides on sign-ins: expired sessions are removed.
	if err := h.sessions.DeleteExpiredWebSessions(r.Context(), h.now()); err != nil {
		h.log().Warn("prune web sessions", "err", err)
	}
	dest := home(p)
	if n := safeNext(r.PostFormValue("next")); n != "" {
		dest = n
	}
	http.Redirect(w, r, dest, http.StatusSeeOther)
}

func (h *Handler) signout(w http.ResponseWriter, r *http.Request, s *session) {
	if err := h.endSession(w, r, s); err != nil {
		h.fail(w, r, nil, err)
		return
	}
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// --- teams (operator) ---

func (h *Handler) teams(w http.ResponseWriter, r *http.Request, s *session) {
	if !s.Principal.Operator {
		http.Redirect(w, r, home(s.Principal), http.StatusSeeOther)
		return
	}
	h.renderTeams(w, r, s, http.StatusOK, "", nil)
}

func (h *Handler) renderTeams(w http.ResponseWriter, r *http.Request, s *session, status int, problem string, fields map[string]string) {
	var out struct {
		Teams []team `json:"teams"`
	}
	if err := h.call(r, s.Principal, "GET", "/teams", nil, &out); err != nil {
		h.fail(w, r, s, err)
		return
	}
	sort.Slice(out.Teams, func(i, j int) bool { return strings.ToLower(out.Teams[i].Name) < strings.ToLower(out.Teams[j].Name) })
	h.render(w, r, status, "teams", &view{Title: "Teams", S: s, V: out.Teams, Error: problem, Fields: fields})
}

// createTeam is the operator's "Create a team" form: POST /teams with the
// plan and the default limit typed in dollars; the new team's overview
// comes next.
func (h *Handler) createTeam(w http.ResponseWriter, r *http.Request, s *session) {
	if !s.Principal.Operator {
		h.errorPage(w, r, s, http.StatusForbidden, "Only the operator's admin token creates teams.")
		return
	}
	body, problem := limitBody(r)
	if problem == "" && r.PostFormValue("mode") == "none" {
		problem = "a team default is an amount or unlimited"
	}
	if problem != "" {
		h.renderTeams(w, r, s, http.StatusBadRequest, "Default spend limit: "+problem, formValues(r))
		return
	}
	delete(body, "unlimited")
	req := map[string]any{
		"name":                strings.TrimSpace(r.PostFormValue("name")),
		"plan":                r.PostFormValue("plan"),
		"default_spend_limit": body,
	}
	var out team
	if err := h.call(r, s.Principal, "POST", "/teams", req, &out); err != nil {
		if st := statusOf(err); st == http.StatusBadRequest || st == http.StatusConflict {
			h.renderTeams(w, r, s, st, messageOf(err), formValues(r))
			return
		}
		h.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/teams/"+url.PathEscape(out.ID), http.StatusSeeOther)
}

// --- overview and SSO ---

func (h *Handler) directories(r *http.Request, s *session, t *team) ([]directory, error) {
	var out struct {
		Directories []directory `json:"directories"`
	}
	err := h.call(r, s.Principal, "GET", teamAPI(t, "/directories"), nil, &out)
	return out.Directories, err
}

func teamAPI(t *team, rest string) string { return "/teams/" + url.PathEscape(t.ID) + rest }

func (h *Handler) overview(w http.ResponseWriter, r *http.Request, s *session, t *team) {
	ds, err := h.directories(r, s, t)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	v := h.teamView(r, s, t, "overview", "Active Directory Management")
	v.V = ds
	h.render(w, r, http.StatusOK, "overview", v)
}

// Prerequisite says what the team lacks for SCIM, or "".
func prerequisite(t *team) string {
	switch {
	case !t.SSOActive() && !t.Enterprise():
		return fmt.Sprintf("SCIM needs an active SSO connection and the enterprise plan; this team is on the %s plan and its SSO connection is inactive.", t.Plan)
	case !t.SSOActive():
		return "SCIM needs an active SSO connection. Activate the team's SSO connection first, then set up the directory."
	case !t.Enterprise():
		return fmt.Sprintf("SCIM needs the enterprise plan; this team is on the %s plan.", t.Plan)
	}
	return ""
}

func (h *Handler) postSSO(w http.ResponseWriter, r *http.Request, s *session, t *team) {
	status := r.PostFormValue("status")
	if status == "" {
		status = "active"
	}
	body := map[string]any{"status": status, "provider": r.PostFormValue("provider")}
	if err := h.call(r, s.Principal, "PUT", teamAPI(t, "/sso"), body, nil); err != nil {
		h.fail(w, r, s, err)
		return
	}
	back(w, r, teamPath(t, ""), "sso-"+status)
}

// --- set-up wizard ---

// setupView is the wizard's step 1.
type setupView struct {
	Types  []string
	Fields map[string][]field
	Type   string
}

func (h *Handler) setup(w http.ResponseWriter, r *http.Request, s *session, t *team) {
	h.renderSetup(w, r, s, t, http.StatusOK, "scim", nil, "")
}

func (h *Handler) renderSetup(w http.ResponseWriter, r *http.Request, s *session, t *team, status int, typ string, values map[string]string, problem string) {
	v := h.teamView(r, s, t, "setup", "Set up a directory")
	v.Error = problem
	v.Fields = values
	v.V = &setupView{Types: directoryTypes, Fields: typeFields, Type: typ}
	h.render(w, r, status, "setup", v)
}

func (h *Handler) createDirectory(w http.ResponseWriter, r *http.Request, s *session, t *team) {
	typ := r.PostFormValue("type")
	if _, ok := typeFields[typ]; !ok {
		h.renderSetup(w, r, s, t, http.StatusBadRequest, "scim", formValues(r), "Choose a directory type.")
		return
	}
	settings, problem := settingsFromForm(r, typ)
	if problem != "" {
		h.renderSetup(w, r, s, t, http.StatusBadRequest, typ, formValues(r), problem)
		return
	}
	body := map[string]any{"type": typ}
	if n := strings.TrimSpace(r.PostFormValue("name")); n != "" {
		body["name"] = n
	}
	if len(settings) > 0 {
		body[typ] = settings
	}
	var d directory
	if err := h.call(r, s.Principal, "POST", teamAPI(t, "/directories"), body, &d); err != nil {
		if st := statusOf(err); st == http.StatusBadRequest || st == http.StatusConflict {
			// The API's answer is the test connection's: show it on the form.
			h.renderSetup(w, r, s, t, st, typ, formValues(r), messageOf(err))
			return
		}
		h.fail(w, r, s, err)
		return
	}
	if d.SCIM != nil && d.SCIM.Token != "" {
		if err := h.setFlash(r, s, flash{Kind: "scim-token", For: d.ID, Value: d.SCIM.Token, Extra: d.SCIM.BaseURL}); err != nil {
			h.fail(w, r, s, err)
			return
		}
	} else if err := h.setFlash(r, s, flash{Kind: "test", For: d.ID, Value: "The connection test passed: roster reached the directory with these settings. The first poll is running."}); err != nil {
		h.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, teamPath(t, "/directories/"+url.PathEscape(d.ID)+"/setup"), http.StatusSeeOther)
}

// directoryView is the directory screens' data.
type directoryView struct {
	D        *directory
	Requests []scimRequest
	// Shown once: a new SCIM token (with the base URL), a test result or a
	// preview.
	Token, BaseURL string
	Test           string
	Preview        *previewResult
	// Troubleshooting answers that apply.
	NoGroups, NoRequests bool
}

type previewResult struct {
	WouldAdd    int  `json:"would_add"`
	WouldRemove int  `json:"would_remove"`
	WouldUpdate int  `json:"would_update"`
	Held        bool `json:"held"`
	Sample      struct {
		Add    []previewPerson `json:"add"`
		Remove []previewPerson `json:"remove"`
		Update []previewPerson `json:"update"`
	} `json:"sample"`
}

type previewPerson struct {
	Email string `json:"email"`
	Name  string `json:"name"`
}

func (h *Handler) loadDirectory(r *http.Request, s *session, t *team) (*directoryView, error) {
	dirID := r.PathValue("dir")
	var d directory
	if err := h.call(r, s.Principal, "GET", teamAPI(t, "/directories/"+url.PathEscape(dirID)), nil, &d); err != nil {
		return nil, err
	}
	dv := &directoryView{D: &d}
	if !d.Polled() {
		var out struct {
			Requests []scimRequest `json:"requests"`
		}
		if err := h.call(r, s.Principal, "GET", teamAPI(t, "/directories/"+url.PathEscape(d.ID)+"/requests?limit=25"), nil, &out); err != nil {
			return nil, err
		}
		dv.Requests = out.Requests
		dv.NoRequests = len(out.Requests) == 0
	}
	if d.Counts != nil {
		dv.NoGroups = d.Counts.Users > 0 && d.Counts.Groups == 0
	}
	if f, ok := h.takeFlash(r, s, "scim-token", d.ID); ok {
		dv.Token, dv.BaseURL = f.Value, f.Extra
	} else if f, ok := h.takeFlash(r, s, "test", d.ID); ok {
		dv.Test = f.Value
	} else if f, ok := h.takeFlash(r, s, "preview", d.ID); ok {
		var p previewResult
		if err := json.Unmarshal(f.Data, &p); err == nil {
			dv.Preview = &p
		}
	}
	return dv, nil
}

func (h *Handler) directory(w http.ResponseWriter, r *http.Request, s *session, t *team) {
	dv, err := h.loadDirectory(r, s, t)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	v := h.teamView(r, s, t, "overview", dv.D.Label())
	v.V = dv
	h.render(w, r, http.StatusOK, "directory", v)
}

func (h *Handler) directorySetup(w http.ResponseWriter, r *http.Request, s *session, t *team) {
	dv, err := h.loadDirectory(r, s, t)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	v := h.teamView(r, s, t, "setup", "Set up "+dv.D.Label())
	v.Poll = !dv.D.Polled() // the request log fills as the IdP calls
	v.V = dv
	h.render(w, r, http.StatusOK, "directory-setup", v)
}

func (h *Handler) directoryAction(w http.ResponseWriter, r *http.Request, s *session, t *team) {
	dirID := r.PathValue("dir")
	base := "/directories/" + url.PathEscape(dirID)
	back1 := teamPath(t, base)
	if r.PostFormValue("from") == "setup" {
		back1 += "/setup"
	}
	switch r.PathValue("action") {
	case "approve":
		if err := h.call(r, s.Principal, "POST", teamAPI(t, base+"/approve"), nil, nil); err != nil {
			h.fail(w, r, s, err)
			return
		}
		back(w, r, back1, "approved")
	case "sync":
		if err := h.call(r, s.Principal, "POST", teamAPI(t, base+"/sync"), nil, nil); err != nil {
			h.fail(w, r, s, err)
			return
		}
		back(w, r, back1, "sync-queued")
	case "token":
		var out directory
		if err := h.call(r, s.Principal, "POST", teamAPI(t, base+"/token"), nil, &out); err != nil {
			h.fail(w, r, s, err)
			return
		}
		if out.SCIM != nil {
			if err := h.setFlash(r, s, flash{Kind: "scim-token", For: dirID, Value: out.SCIM.Token, Extra: out.SCIM.BaseURL}); err != nil {
				h.fail(w, r, s, err)
				return
			}
		}
		http.Redirect(w, r, teamPath(t, base+"/setup"), http.StatusSeeOther)
	case "test":
		var d directory
		if err := h.call(r, s.Principal, "GET", teamAPI(t, base), nil, &d); err != nil {
			h.fail(w, r, s, err)
			return
		}
		// A PATCH with no change tests the connection with the stored
		// settings, as the API does before every change.
		msg := "The connection test passed: roster reached the directory with its settings."
		if err := h.call(r, s.Principal, "PATCH", teamAPI(t, base), map[string]any{d.Type: map[string]any{}}, nil); err != nil {
			if statusOf(err) >= 500 {
				h.fail(w, r, s, err)
				return
			}
			msg = "The connection test failed: " + messageOf(err)
		}
		if err := h.setFlash(r, s, flash{Kind: "test", For: dirID, Value: msg}); err != nil {
			h.fail(w, r, s, err)
			return
		}
		http.Redirect(w, r, back1, http.StatusSeeOther)
	case "preview":
		var raw json.RawMessage
		if err := h.call(r, s.Principal, "POST", teamAPI(t, base+"/preview"), nil, &raw); err != nil {
			if statusOf(err) >= 500 && statusOf(err) != http.StatusNotImplemented {
				h.fail(w, r, s, err)
				return
			}
			if err := h.setFlash(r, s, flash{Kind: "test", For: dirID, Value: "The preview failed: " + messageOf(err)}); err != nil {
				h.fail(w, r, s, err)
				return
			}
			http.Redirect(w, r, back1, http.StatusSeeOther)
			return
		}
		if err := h.setFlash(r, s, flash{Kind: "preview", For: dirID, Data: raw}); err != nil {
			h.fail(w, r, s, err)
			return
		}
		http.Redirect(w, r, back1, http.StatusSeeOther)
	case "delete":
		if err := h.call(r, s.Principal, "DELETE", teamAPI(t, base), nil, nil); err != nil {
			h.fail(w, r, s, err)
			return
		}
		back(w, r, teamPath(t, ""), "deleted")
	default:
		h.errorPage(w, r, s, http.StatusNotFound, "There is no such directory action.")
	}
}

// --- groups ---

type groupsView struct {
	Groups []group
	Q      string
	Next   string // the next page's URL, or ""
	// Problem is a limit form's error, for the group it names.
	ProblemGroup, Problem, Typed string
}

func (h *Handler) listGroups(r *http.Request, s *session, t *team, q, cursor string, limit int) ([]group, string, error) {
	v := url.Values{"limit": {fmt.Sprint(limit)}}
	if q != "" {
		v.Set("q", q)
	}
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	var out struct {
		Groups     []group `json:"groups"`
		NextCursor string  `json:"next_cursor"`
	}
	err := h.call(r, s.Principal, "GET", teamAPI(t, "/groups?"+v.Encode()), nil, &out)
	return out.Groups, out.NextCursor, err
}

func (h *Handler) groups(w http.ResponseWriter, r *http.Request, s *session, t *team) {
	h.renderGroups(w, r, s, t, http.StatusOK, nil)
}

func (h *Handler) renderGroups(w http.ResponseWriter, r *http.Request, s *session, t *team, status int, gv *groupsView) {
	q := strings.TrimSpace(r.FormValue("q"))
	gs, next, err := h.listGroups(r, s, t, q, r.FormValue("cursor"), pageSize)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	if gv == nil {
		gv = &groupsView{}
	}
	gv.Groups, gv.Q = gs, q
	if next != "" {
		gv.Next = teamPath(t, "/groups?"+url.Values{"q": {q}, "cursor": {next}}.Encode())
	}
	v := h.teamView(r, s, t, "groups", "Groups")
	v.V = gv
	h.render(w, r, status, "groups", v)
}

func (h *Handler) editGroup(w http.ResponseWriter, r *http.Request, s *session, t *team) {
	var g group
	if err := h.call(r, s.Principal, "GET", teamAPI(t, "/groups/"+url.PathEscape(r.PathValue("group"))), nil, &g); err != nil {
		h.fail(w, r, s, err)
		return
	}
	v := h.teamView(r, s, t, "groups", "Group "+g.Name)
	v.Error = fmt.Sprintf("The group %q cannot be edited here: its name and its members are managed by your identity provider. Change them there; roster follows. Only the group's spend limit can be set here.", g.Name)
	v.V = &g
	h.render(w, r, http.StatusForbidden, "group-edit", v)
}

// limitBody reads a limit form (mode: dollars, unlimited or none) as the
// API's body. For a team default, "none" is not offered.
func limitBody(r *http.Request) (map[string]any, string) {
	switch r.PostFormValue("mode") {
	case "unlimited":
		return map[string]any{"per_user_cents": nil, "unlimited": true}, ""
	case "none":
		return map[string]any{"per_user_cents": nil}, ""
	case "dollars", "":
		c, err := ParseDollars(r.PostFormValue("dollars"))
		if err != nil {
			return nil, err.Error()
		}
		return map[string]any{"per_user_cents": c}, ""
	}
	return nil, "choose an amount, unlimited, or no limit"
}

func (h *Handler) postGroupLimit(w http.ResponseWriter, r *http.Request, s *session, t *team) {
	gid := r.PathValue("group")
	body, problem := limitBody(r)
	if problem != "" {
		h.renderGroups(w, r, s, t, http.StatusBadRequest, &groupsView{ProblemGroup: gid, Problem: problem, Typed: r.PostFormValue("dollars")})
		return
	}
	if err := h.call(r, s.Principal, "PUT", teamAPI(t, "/groups/"+url.PathEscape(gid)+"/spend-limit"), body, nil); err != nil {
		h.fail(w, r, s, err)
		return
	}
	dest := teamPath(t, "/groups")
	if q := r.PostFormValue("q"); q != "" || r.PostFormValue("cursor") != "" {
		dest += "?" + url.Values{"q": {q}, "cursor": {r.PostFormValue("cursor")}}.Encode()
	}
	back(w, r, dest, "limit-saved")
}

// --- members ---

type membersView struct {
	Members []memberRow
	Q       string
	Group   string
	Source  string
	// SourceGroup keeps the members whose limit this group decides.
	SourceGroup string
	Groups      []group // the group filter's choices
	Next        string
}

type memberRow struct {
	M      member
	Groups string
	Why    string
}

// why explains a member's effective limit: the group (or the default) it
// comes from, the other groups with a limit (their limits come with the
// member), and the team default.
func why(m *member, t *team) string {
	def := "team default " + t.DefaultText()
	src := m.SourceGroupID()
	var others []string
	for _, g := range m.Groups {
		if g.ID == src {
			continue
		}
		if c, set := g.limit(); set {
			others = append(others, fmt.Sprintf("%s (%s)", g.Name, limitText(c, true)))
		}
	}
	sort.Strings(others)
	var b strings.Builder
	if src != "" {
		name := src
		if m.SpendLimit.Source.GroupName != nil {
			name = *m.SpendLimit.Source.GroupName
		}
		fmt.Fprintf(&b, "%s from %s", m.LimitText(), name)
	} else {
		fmt.Fprintf(&b, "%s from the team default", m.LimitText())
		if len(others) == 0 {
			if len(m.Groups) > 0 {
				b.WriteString("; none of their groups sets a limit")
			}
			return b.String()
		}
	}
	if len(others) > 0 {
		b.WriteString("; also in " + strings.Join(others, ", "))
	}
	if src != "" {
		b.WriteString("; " + def)
	}
	return b.String()
}

func (h *Handler) listMembers(r *http.Request, s *session, t *team, v url.Values) ([]member, string, error) {
	var out struct {
		Members    []member `json:"members"`
		NextCursor string   `json:"next_cursor"`
	}
	err := h.call(r, s.Principal, "GET", teamAPI(t, "/members?"+v.Encode()), nil, &out)
	return out.Members, out.NextCursor, err
}

func (h *Handler) members(w http.ResponseWriter, r *http.Request, s *session, t *team) {
	mv := &membersView{
		Q: strings.TrimSpace(r.FormValue("q")), Group: r.FormValue("group"), Source: r.FormValue("source"),
		SourceGroup: r.FormValue("source_group"),
	}
	q := url.Values{"limit": {fmt.Sprint(pageSize)}}
	for k, val := range map[string]string{"q": mv.Q, "group": mv.Group, "source": mv.Source, "source_group": mv.SourceGroup, "cursor": r.FormValue("cursor")} {
		if val != "" {
			q.Set(k, val)
		}
	}
	ms, next, err := h.listMembers(r, s, t, q)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	// Each member's groups carry their limits: they explain the member's.
	for i := range ms {
		mv.Members = append(mv.Members, rowOf(&ms[i], t))
	}
	// The filter offers the first groups by id, and the chosen one.
	gs, _, err := h.listGroups(r, s, t, "", "", 200)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	if mv.Group != "" && !hasGroup(gs, mv.Group) {
		var g group
		if err := h.call(r, s.Principal, "GET", teamAPI(t, "/groups/"+url.PathEscape(mv.Group)), nil, &g); err == nil {
			gs = append([]group{g}, gs...)
		}
	}
	mv.Groups = gs
	if next != "" {
		mv.Next = teamPath(t, "/members?"+url.Values{"q": {mv.Q}, "group": {mv.Group}, "source": {mv.Source}, "source_group": {mv.SourceGroup}, "cursor": {next}}.Encode())
	}
	v := h.teamView(r, s, t, "members", "Members")
	v.V = mv
	h.render(w, r, http.StatusOK, "members", v)
}

func hasGroup(gs []group, id string) bool {
	for _, g := range gs {
		if g.ID == id {
			return true
		}
	}
	return false
}

// --- review ---

type reviewView struct {
	Groups  []reviewGroup
	Members []memberRow
	Next    string
}

type reviewGroup struct {
	G       group
	Decides int
}

func (h *Handler) review(w http.ResponseWriter, r *http.Request, s *session, t *team) {
	rv, err := h.buildReview(r, s, t)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	v := h.teamView(r, s, t, "review", "Review limits")
	v.V = rv
	h.render(w, r, http.StatusOK, "review", v)
}

// reviewAnswer is GET .../limits/review.
type reviewAnswer struct {
	Groups []struct {
		ID          string `json:"id"`
		Name        string `json:"name"`
		Cents       *int64 `json:"per_user_cents"`
		MemberCount int    `json:"member_count"`
		Decides     int    `json:"decides"`
	} `json:"groups"`
	Members    []member `json:"members"`
	NextCursor string   `json:"next_cursor"`
}

// readReview reads the review with a page of limit members after cursor.
func (h *Handler) readReview(r *http.Request, s *session, t *team, limit int, cursor string) (*reviewAnswer, error) {
	v := url.Values{"limit": {fmt.Sprint(limit)}}
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	var out reviewAnswer
	if err := h.call(r, s.Principal, "GET", teamAPI(t, "/limits/review?"+v.Encode()), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func (h *Handler) buildReview(r *http.Request, s *session, t *team) (*reviewView, error) {
	ra, err := h.readReview(r, s, t, pageSize, r.FormValue("cursor"))
	if err != nil {
		return nil, err
	}
	rv := &reviewView{}
	for _, rg := range ra.Groups {
		g := group{ID: rg.ID, Name: rg.Name, MemberCount: rg.MemberCount}
		g.SpendLimit.Cents, g.SpendLimit.Set, g.SpendLimit.Unlimited = rg.Cents, true, rg.Cents == nil
		rv.Groups = append(rv.Groups, reviewGroup{G: g, Decides: rg.Decides})
	}
	sort.SliceStable(rv.Groups, func(i, j int) bool { return rv.Groups[i].Decides > rv.Groups[j].Decides })
	for i := range ra.Members {
		rv.Members = append(rv.Members, rowOf(&ra.Members[i], t))
	}
	if ra.NextCursor != "" {
		rv.Next = teamPath(t, "/review?"+url.Values{"cursor": {ra.NextCursor}}.Encode())
	}
	return rv, nil
}

func rowOf(m *member, t *team) memberRow {
	names := make([]string, 0, len(m.Groups))
	for _, g := range m.Groups {
		names = append(names, g.Name)
	}
	return memberRow{M: *m, Groups: strings.Join(names, ", "), Why: why(m, t)}
}

// --- activity ---

func (h *Handler) activity(w http.ResponseWriter, r *http.Request, s *session, t *team) {
	var out struct {
		Events []event `json:"events"`
	}
	if err := h.call(r, s.Principal, "GET", teamAPI(t, "/events?latest=50"), nil, &out); err != nil {
		h.fail(w, r, s, err)
		return
	}
	v := h.teamView(r, s, t, "activity", "Activity")
	v.V = out.Events
	h.render(w, r, http.StatusOK, "activity", v)
}

// --- webhooks ---

type webhooksView struct {
	Webhooks []webhook
	// Secret is a new signing secret, shown once, for SecretFor.
	Secret, SecretFor string
}

func (h *Handler) webhooks(w http.ResponseWriter, r *http.Request, s *session, t *team) {
	h.renderWebhooks(w, r, s, t, http.StatusOK, "")
}

func (h *Handler) renderWebhooks(w http.ResponseWriter, r *http.Request, s *session, t *team, status int, problem string) {
	var out struct {
		Webhooks []webhook `json:"webhooks"`
	}
	if err := h.call(r, s.Principal, "GET", teamAPI(t, "/webhooks"), nil, &out); err != nil {
		h.fail(w, r, s, err)
		return
	}
	wv := &webhooksView{Webhooks: out.Webhooks}
	for i := range wv.Webhooks {
		var d struct {
			Deliveries []delivery `json:"deliveries"`
		}
		if err := h.call(r, s.Principal, "GET", teamAPI(t, "/webhooks/"+url.PathEscape(wv.Webhooks[i].ID)+"/deliveries?limit=10"), nil, &d); err == nil {
			wv.Webhooks[i].Deliveries = d.Deliveries
		}
		if f, ok := h.takeFlash(r, s, "webhook-secret", wv.Webhooks[i].ID); ok {
			wv.Secret, wv.SecretFor = f.Value, f.For
		}
	}
	v := h.teamView(r, s, t, "webhooks", "Webhooks")
	v.Error = problem
	if problem != "" {
		v.Fields = formValues(r)
	}
	v.V = wv
	h.render(w, r, status, "webhooks", v)
}

func (h *Handler) createWebhook(w http.ResponseWriter, r *http.Request, s *session, t *team) {
	body := map[string]any{"url": strings.TrimSpace(r.PostFormValue("url")), "description": strings.TrimSpace(r.PostFormValue("description"))}
	if types := splitList(r.PostFormValue("event_types")); len(types) > 0 {
		body["event_types"] = types
	}
	var out struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	if err := h.call(r, s.Principal, "POST", teamAPI(t, "/webhooks"), body, &out); err != nil {
		if statusOf(err) < 500 {
			h.renderWebhooks(w, r, s, t, statusOf(err), messageOf(err))
			return
		}
		h.fail(w, r, s, err)
		return
	}
	if err := h.setFlash(r, s, flash{Kind: "webhook-secret", For: out.ID, Value: out.Secret}); err != nil {
		h.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, teamPath(t, "/webhooks"), http.StatusSeeOther)
}

func (h *Handler) webhookAction(w http.ResponseWriter, r *http.Request, s *session, t *team) {
	id := r.PathValue("id")
	base := "/webhooks/" + url.PathEscape(id)
	switch r.PathValue("action") {
	case "rotate":
		var out struct {
			Secret string `json:"secret"`
		}
		if err := h.call(r, s.Principal, "POST", teamAPI(t, base+"/rotate-secret"), nil, &out); err != nil {
			h.fail(w, r, s, err)
			return
		}
		if err := h.setFlash(r, s, flash{Kind: "webhook-secret", For: id, Value: out.Secret}); err != nil {
			h.fail(w, r, s, err)
			return
		}
		http.Redirect(w, r, teamPath(t, "/webhooks"), http.StatusSeeOther)
	case "enable":
		if err := h.call(r, s.Principal, "POST", teamAPI(t, base+"/enable"), nil, nil); err != nil {
			h.fail(w, r, s, err)
			return
		}
		back(w, r, teamPath(t, "/webhooks"), "webhook-enabled")
	case "replay":
		after := strings.TrimSpace(r.PostFormValue("after"))
		if after == "0" {
			after = "" // the start of the feed
		}
		if err := h.call(r, s.Principal, "POST", teamAPI(t, base+"/replay"), map[string]any{"after": after}, nil); err != nil {
			if statusOf(err) < 500 {
				h.renderWebhooks(w, r, s, t, statusOf(err), messageOf(err))
				return
			}
			h.fail(w, r, s, err)
			return
		}
		back(w, r, teamPath(t, "/webhooks"), "webhook-replay")
	case "delete":
		if err := h.call(r, s.Principal, "DELETE", teamAPI(t, base), nil, nil); err != nil {
			h.fail(w, r, s, err)
			return
		}
		back(w, r, teamPath(t, "/webhooks"), "webhook-deleted")
	default:
		h.errorPage(w, r, s, http.StatusNotFound, "There is no such webhook action.")
	}
}

// --- settings ---

type settingsView struct {
	Tokens []adminToken
	// NewToken is a new team admin token, shown once.
	NewToken, NewTokenName string
	Problem, Typed         string
}

func (h *Handler) settings(w http.ResponseWriter, r *http.Request, s *session, t *team) {
	h.renderSettings(w, r, s, t, http.StatusOK, &settingsView{})
}

func (h *Handler) renderSettings(w http.ResponseWriter, r *http.Request, s *session, t *team, status int, sv *settingsView) {
	// The list is the answer's one array, whatever its key.
	var out map[string]json.RawMessage
	if err := h.call(r, s.Principal, "GET", teamAPI(t, "/admin-tokens"), nil, &out); err != nil {
		h.fail(w, r, s, err)
		return
	}
	for _, raw := range out {
		var ts []adminToken
		if json.Unmarshal(raw, &ts) == nil && ts != nil {
			sv.Tokens = ts
		}
	}
	if f, ok := h.takeFlash(r, s, "admin-token", t.ID); ok {
		sv.NewToken, sv.NewTokenName = f.Value, f.Extra
	}
	v := h.teamView(r, s, t, "settings", "Settings")
	v.V = sv
	h.render(w, r, status, "settings", v)
}

func (h *Handler) postTeamLimit(w http.ResponseWriter, r *http.Request, s *session, t *team) {
	body, problem := limitBody(r)
	if problem == "" && r.PostFormValue("mode") == "none" {
		problem = "a team default is an amount or unlimited"
	}
	if problem != "" {
		h.renderSettings(w, r, s, t, http.StatusBadRequest, &settingsView{Problem: problem, Typed: r.PostFormValue("dollars")})
		return
	}
	delete(body, "unlimited")
	if err := h.call(r, s.Principal, "PUT", teamAPI(t, "/spend-limit"), body, nil); err != nil {
		h.fail(w, r, s, err)
		return
	}
	back(w, r, teamPath(t, "/settings"), "limit-saved")
}

func (h *Handler) createAdminToken(w http.ResponseWriter, r *http.Request, s *session, t *team) {
	var out struct {
		ID    string `json:"id"`
		Name  string `json:"name"`
		Token string `json:"token"`
	}
	if err := h.call(r, s.Principal, "POST", teamAPI(t, "/admin-tokens"), map[string]any{"name": strings.TrimSpace(r.PostFormValue("name"))}, &out); err != nil {
		h.fail(w, r, s, err)
		return
	}
	if err := h.setFlash(r, s, flash{Kind: "admin-token", For: t.ID, Value: out.Token, Extra: out.Name}); err != nil {
		h.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, teamPath(t, "/settings"), http.StatusSeeOther)
}

func (h *Handler) deleteAdminToken(w http.ResponseWriter, r *http.Request, s *session, t *team) {
	id := r.PathValue("id")
	if err := h.call(r, s.Principal, "DELETE", teamAPI(t, "/admin-tokens/"+url.PathEscape(id)), nil, nil); err != nil {
		h.fail(w, r, s, err)
		return
	}
	// Its sessions end now (the next request of each would end it anyway).
	if err := h.sessions.DeleteWebSessionsOfToken(r.Context(), id); err != nil {
		h.log().Warn("end the sessions of a deleted token", "err", err)
	}
	back(w, r, teamPath(t, "/settings"), "token-deleted")
}
