package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/roster-dev/roster/config"
	chrome "github.com/roster-dev/roster/internal/browser"
)

// TestBrowserPage drives the admin page in a real Chromium, on both
// engines, as a team admin does: sign-in, the SSO gate, the SCIM set-up
// wizard with its copy buttons, live updates pushed by an identity
// provider, group spend limits and their explanation, refused group edits,
// approving a held removal, and CSRF. Every screen passes axe-core and is
// photographed (ROSTER_SCREENSHOTS, see make screenshots).
//
// The URLs, ids and classes it uses are the ones the page promises its
// tests (package web's templates follow the same list): a renamed id
// breaks these tests on purpose.
func TestBrowserPage(t *testing.T) {
	b := chrome.Start(t)
	for _, m := range Modes() {
		t.Run(m.Name, func(t *testing.T) {
			t.Parallel()
			r := Start(t, m, func(c *config.Config) { c.Webhooks.AllowPrivateNetworks = true })
			// Each scenario has a team, a tab and a Roster (for its T) of
			// its own, on the one instance of this mode.
			for _, sc := range []struct {
				name string
				fn   func(t *testing.T, w *web)
			}{
				{"SignIn", browserSignIn},
				{"SSOGate", browserSSOGate},
				{"WizardAndLiveUpdates", browserWizard},
				{"GroupLimit", browserGroupLimit},
				{"GroupEditRefused", browserGroupEditRefused},
				{"ApproveHeldRemoval", browserApprove},
				{"CSRF", browserCSRF},
				{"Webhooks", browserWebhooks},
				{"WithoutJavaScript", browserNoScript},
			} {
				t.Run(sc.name, func(t *testing.T) {
					sc.fn(t, &web{t: t, b: b, r: &Roster{T: t, URL: r.URL, App: r.App, stop: func() {}}})
				})
			}
		})
	}
}

// web is one scenario's roster and browser.
type web struct {
	t *testing.T
	b *chrome.Browser
	r *Roster
}

// page opens a tab signed in with token, on the screen the sign-in lands
// on.
func (w *web) page(token string) *chrome.Page {
	w.t.Helper()
	p := w.b.NewPage(w.t, w.r.URL)
	if status := p.Go("/signin"); status != 200 {
		w.t.Fatalf("GET /signin: status %d, want 200", status)
	}
	p.Fill("input#token[name=token]", token)
	p.ClickNav("button#signin-submit")
	if p.Exists("#signin-error") {
		w.t.Fatalf("sign-in refused: %s", p.Text("#signin-error"))
	}
	return p
}

// team creates a team through the admin API and returns its id.
func (w *web) team(name, plan string, ssoActive bool, defaultCents any) string {
	w.t.Helper()
	team := w.r.MustAdmin(201, "POST", "/teams", map[string]any{"name": name, "plan": plan,
		"default_spend_limit": map[string]any{"per_user_cents": defaultCents}})
	id := team["id"].(string)
	if ssoActive {
		w.r.MustAdmin(200, "PUT", "/teams/"+id+"/sso", map[string]any{"status": "active", "provider": "okta"})
	}
	return id
}

// teamToken creates an admin token scoped to the team.
func (w *web) teamToken(team string) string {
	w.t.Helper()
	tok := w.r.MustAdmin(201, "POST", "/teams/"+team+"/admin-tokens", map[string]any{"name": "browser test"})
	s, _ := tok["token"].(string)
	if s == "" {
		w.t.Fatalf("admin token answer has no token: %v", tok)
	}
	return s
}

// scim creates a SCIM directory with the given settings (nil for none).
func (w *web) scim(team string, settings map[string]any) Directory {
	w.t.Helper()
	body := map[string]any{"type": "scim"}
	if settings != nil {
		body["scim"] = settings
	}
	d := w.r.MustAdmin(201, "POST", "/teams/"+team+"/directories", body)
	sc := d["scim"].(map[string]any)
	return Directory{TeamID: team, ID: d["id"].(string), BaseURL: sc["base_url"].(string), Token: sc["token"].(string)}
}

// user creates a SCIM user name@acme.test and returns its SCIM id.
func (w *web) user(d Directory, name string) string {
	w.t.Helper()
	resp := w.r.SCIM(d, "POST", "/Users", map[string]any{
		"schemas": []string{urnUser}, "userName": name + "@acme.test", "active": true,
		"name":   map[string]any{"givenName": name, "familyName": "Test"},
		"emails": []any{map[string]any{"value": name + "@acme.test", "type": "work", "primary": true}},
	})
	if resp.Status != 201 {
		w.t.Fatalf("SCIM create user %s: %s", name, resp)
	}
	return resp.JSON()["id"].(string)
}

// group creates a SCIM group with the given members and returns its SCIM id.
func (w *web) group(d Directory, name string, members ...string) string {
	w.t.Helper()
	var ms []any
	for _, m := range members {
		ms = append(ms, map[string]any{"value": m})
	}
	resp := w.r.SCIM(d, "POST", "/Groups", map[string]any{"schemas": []string{urnGroup}, "displayName": name, "members": ms})
	if resp.Status != 201 {
		w.t.Fatalf("SCIM create group %s: %s", name, resp)
	}
	return resp.JSON()["id"].(string)
}

// groupID waits for the roster group named name and returns its admin API id.
func (w *web) groupID(team, name string) string {
	w.t.Helper()
	var id string
	Eventually(w.t, 10*time.Second, "group "+name, func() (bool, string) {
		page := w.r.MustAdmin(200, "GET", "/teams/"+team+"/groups?limit=500", nil)
		for _, g := range page["groups"].([]any) {
			if g := g.(map[string]any); g["name"] == name {
				id = g["id"].(string)
				return true, ""
			}
		}
		return false, fmt.Sprintf("groups %v", page["groups"])
	})
	return id
}

// memberID waits for the member with the email and returns its id.
func (w *web) memberID(team, email string) string {
	w.t.Helper()
	var id string
	Eventually(w.t, 10*time.Second, "member "+email, func() (bool, string) {
		for _, m := range w.r.Members(team) {
			if m["email"] == email {
				id = m["id"].(string)
				return true, ""
			}
		}
		return false, "absent"
	})
	return id
}

// screen checks the current screen with axe-core and photographs it.
func screen(p *chrome.Page, name string) {
	p.Axe()
	p.Screenshot(name)
}

// live waits for the screen's event stream, then marks the document so
// noReload can tell that later changes came without a navigation.
func live(p *chrome.Page) {
	p.WaitJS("the live stream (body[data-live=connected])", `document.body.dataset.live === "connected"`)
	chrome.Eval[bool](p, `(window.__rosterNoReload = true)`)
}

// noReload fails the test if the document marked by live was replaced.
func noReload(t *testing.T, p *chrome.Page) {
	t.Helper()
	if !chrome.Eval[bool](p, `window.__rosterNoReload === true`) {
		t.Errorf("the page reloaded or navigated (now %s); live updates must not reload", p.Path())
	}
}

// waitItem waits until some element matching sel contains every one of
// the substrings.
func waitItem(p *chrome.Page, sel string, subs ...string) {
	p.WaitJS(fmt.Sprintf("%s containing %q", sel, subs), itemJS(sel, subs...))
}

// itemJS is true when some element matching sel contains every substring.
func itemJS(sel string, subs ...string) string {
	return fmt.Sprintf(`[...document.querySelectorAll(%q)].some(el => %s.every(s => el.textContent.includes(s)))`, sel, jsList(subs))
}

func jsList(ss []string) string {
	var q []string
	for _, s := range ss {
		q = append(q, fmt.Sprintf("%q", s))
	}
	return "[" + strings.Join(q, ",") + "]"
}

// browserSignIn: signed out goes to the sign-in form; a wrong token is
// refused; the operator chooses a team; a team token sees its team only and
// gets the not-found page on another team's URL.
func browserSignIn(t *testing.T, w *web) {
	mine := w.team("Signin Mine", "enterprise", true, nil)
	other := w.team("Signin Other", "enterprise", true, nil)
	token := w.teamToken(mine)

	p := w.b.NewPage(t, w.r.URL)
	p.Tolerate("status of 401")
	p.Go("/")
	if got := p.Path(); got != "/signin" {
		t.Fatalf("signed out, / landed on %s, want /signin", got)
	}
	if typ := p.Attr("input#token", "type"); typ != "password" {
		t.Errorf("token input type %q, want password", typ)
	}
	screen(p, "signin")
	resp := w.r.Do("GET", "/signin", "", nil)
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("Content-Security-Policy %q, want a strict one with frame-ancestors 'none'", csp)
	}
	if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options %q, want nosniff", got)
	}
	p.Fill("input#token", "not-a-token")
	p.ClickNav("button#signin-submit")
	p.WaitFor("#signin-error")
	if got := p.Path(); got != "/signin" {
		t.Errorf("a wrong token led to %s, want the sign-in form again", got)
	}
	if p.Exists("nav#team-nav") {
		t.Errorf("a wrong token shows a team screen")
	}

	// The operator sees the team list and picks a team.
	op := w.page(AdminToken)
	if got := op.Path(); got != "/teams" {
		t.Errorf("operator landed on %s, want /teams", got)
	}
	op.Axe()
	names := op.Texts("#team-list a.team-link")
	if !slices.Contains(names, "Signin Mine") || !slices.Contains(names, "Signin Other") {
		t.Errorf("operator's team list %q lacks the two teams", names)
	}
	if href := op.Attr(fmt.Sprintf(`#team-list a.team-link[href="/teams/%s"]`, other), "href"); href != "/teams/"+other {
		t.Errorf("team link href %q", href)
	}
	c := op.Cookie("roster_session")
	if c == nil || !c.HTTPOnly || c.SameSite != "Strict" {
		t.Errorf("session cookie %+v, want HttpOnly and SameSite=Strict", c)
	}

	// A team token goes straight to its team and sees nothing of the other.
	tp := w.page(token)
	if got := tp.Path(); got != "/teams/"+mine {
		t.Errorf("team token landed on %s, want /teams/%s", got, mine)
	}
	tp.WaitFor("nav#team-nav")
	if got := tp.Text("body"); !strings.Contains(got, "Signin Mine") {
		t.Errorf("team screen does not name the team: %q", got)
	}
	tp.Tolerate("status of 404")
	tp.Tolerate("status of 403")
	if status := tp.Go("/teams/" + other); status != 404 {
		t.Errorf("team token on another team's URL: status %d, want 404", status)
	}
	if body := tp.Text("body"); strings.Contains(body, "Signin Other") {
		t.Errorf("the not-found page names the other team: %q", body)
	}
	// The team list may refuse a team token or show it its own team; it
	// never shows another.
	tp.Go("/teams")
	if body := tp.Text("body"); strings.Contains(body, "Signin Other") {
		t.Errorf("a team token sees the other team on /teams: %q", body)
	}

	// Sign-out ends the session on the server: / goes to the sign-in form
	// again, and the old cookie, replayed, opens nothing.
	old := tp.Cookie("roster_session")
	tp.Go("/teams/" + mine)
	tp.ClickNav("#signout-form button")
	tp.Go("/")
	if got := tp.Path(); got != "/signin" {
		t.Errorf("after sign-out, / landed on %s, want /signin", got)
	}
	if old == nil {
		t.Fatal("no session cookie before sign-out")
	}
	req, _ := http.NewRequest("GET", w.r.URL+"/teams/"+mine, nil)
	req.AddCookie(&http.Cookie{Name: old.Name, Value: old.Value})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	replay, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	replay.Body.Close()
	if replay.StatusCode == 200 {
		t.Errorf("the signed-out session's cookie still opens the team screen")
	}
}

// browserSSOGate: without active SSO the overview explains why SCIM is not
// offered; activating SSO from the page brings the setup link.
func browserSSOGate(t *testing.T, w *web) {
	team := w.team("SSO Gate", "enterprise", false, nil)
	p := w.page(AdminToken)
	p.Go("/teams/" + team)
	p.WaitText("#prerequisites", "SCIM needs an active SSO connection")
	if got := p.Text("#sso-status"); !strings.Contains(got, "inactive") {
		t.Errorf("#sso-status %q, want inactive", got)
	}
	if got := p.Text("#plan"); !strings.Contains(strings.ToLower(got), "enterprise") {
		t.Errorf("#plan %q, want enterprise", got)
	}
	if p.Exists("a#setup-link") {
		t.Errorf("setup link offered without active SSO")
	}
	screen(p, "overview-sso-inactive")

	p.Select("#sso-form select[name=provider]", "okta")
	p.ClickNav("button#sso-activate")
	p.WaitFor("a#setup-link")
	if got := p.Text("#sso-status"); !strings.Contains(got, "active") || strings.Contains(got, "inactive") {
		t.Errorf("#sso-status %q after activating, want active", got)
	}
	if href := p.Attr("a#setup-link", "href"); href != "/teams/"+team+"/setup" {
		t.Errorf("setup link href %q, want /teams/%s/setup", href, team)
	}
	if strings.Contains(p.Text("#prerequisites"), "SCIM needs an active SSO connection") {
		t.Errorf("prerequisites still say SSO is needed: %q", p.Text("#prerequisites"))
	}
	// The API agrees: a directory can be created now. Nothing has called
	// it yet, and its screen says what that usually means.
	quiet := w.scim(team, nil)
	p.Go("/teams/" + team + "/directories/" + quiet.ID)
	p.WaitFor("section#troubleshooting #ts-no-requests")

	// A team that is not enterprise is told so, with no setup link.
	pro := w.team("SSO Gate Pro", "pro", true, nil)
	p.Go("/teams/" + pro)
	if got := p.Text("#prerequisites"); !strings.Contains(strings.ToLower(got), "enterprise") {
		t.Errorf("a pro team's prerequisites %q do not name the enterprise plan", got)
	}
	if p.Exists("a#setup-link") {
		t.Errorf("setup link offered to a pro team")
	}
}

var setupPath = regexp.MustCompile(`^/teams/([^/]+)/directories/([^/]+)/setup$`)

// browserWizard: create a SCIM directory in the wizard, copy the endpoint
// and token, and watch an identity provider's pushes arrive on the
// wizard's request log, groups, members and activity without a reload.
func browserWizard(t *testing.T, w *web) {
	team := w.team("Wizard", "enterprise", true, 5000)
	p := w.page(w.teamToken(team))
	p.Go("/teams/" + team)
	p.ClickNav("a#setup-link")
	if got := p.Path(); got != "/teams/"+team+"/setup" {
		t.Fatalf("setup link led to %s", got)
	}
	p.Select("form#create-directory select[name=type]", "scim")
	p.ClickNav("button#create-submit")
	m := setupPath.FindStringSubmatch(p.Path())
	if m == nil || m[1] != team {
		t.Fatalf("after create, landed on %s, want /teams/%s/directories/{dir}/setup", p.Path(), team)
	}
	dirID := m[2]

	baseURL, token := p.Text("#scim-base-url"), p.Text("#scim-token")
	if want := w.r.URL + "/scim/v2/" + dirID; baseURL != want {
		t.Errorf("#scim-base-url %q, want %q", baseURL, want)
	}
	for _, c := range []struct{ id, want string }{{"scim-base-url", baseURL}, {"scim-token", token}} {
		btn := fmt.Sprintf(`button.copy[data-copy-target="%s"]`, c.id)
		if got := p.Copy(btn); got != c.want {
			t.Errorf("copy %s: clipboard %q, want the displayed %q", c.id, got, c.want)
		}
		p.WaitText(btn, "Copied")
	}
	for _, id := range []string{"#idp-okta", "#idp-entra", "#idp-onelogin", "#idp-jumpcloud", "#idp-google"} {
		p.WaitFor("section#idp-instructions details" + id)
	}
	if got := p.Text("#idp-entra"); !strings.Contains(got, "aadOptscim062020") {
		t.Errorf("Entra instructions do not mention aadOptscim062020: %q", got)
	}
	if got := strings.ToLower(p.Text("#idp-google")); !strings.Contains(got, "poll") {
		t.Errorf("Google instructions do not point at the poller: %q", got)
	}
	p.WaitFor("section#test-connection #request-log")
	p.Click("#idp-okta summary")
	p.WaitJS("Okta's instructions open", `document.querySelector("#idp-okta").open`)
	screen(p, "setup-wizard")

	// The identity provider's first request shows on the open wizard.
	live(p)
	d := Directory{TeamID: team, ID: dirID, BaseURL: baseURL, Token: token}
	if resp := w.r.SCIM(d, "GET", "/Users?count=1", nil); resp.Status != 200 {
		t.Fatalf("the copied token does not work on the copied endpoint: %s", resp)
	}
	// Okta's and Entra's first call is a GET: it creates nothing, so no
	// event announces it, and the wizard must show it all the same.
	if !p.Becomes(itemJS("#request-log li.request", "GET", "/Users", "200")) {
		t.Errorf("the identity provider's first request (GET /Users, 200) did not appear in the open wizard's #request-log")
	}
	ann := w.user(d, "ann")
	bob := w.user(d, "bob")
	w.group(d, "Engineering", ann, bob)
	waitItem(p, "#request-log li.request", "POST", "/Users", "201")
	waitItem(p, "#request-log li.request", "POST", "/Groups", "201")
	noReload(t, p)
	if got := p.Text("#scim-token"); got != token {
		t.Errorf("the token shown once is %q after live updates, want it kept on the open page", got)
	}

	// Shown once: a later visit has the endpoint but not the token.
	p.Go("/teams/" + team + "/directories/" + dirID + "/setup")
	if got := p.Text("#scim-base-url"); got != baseURL {
		t.Errorf("revisited wizard: #scim-base-url %q, want %q", got, baseURL)
	}
	if strings.Contains(chrome.Eval[string](p, `document.documentElement.outerHTML`), token) {
		t.Errorf("the token is on the wizard again after it was shown once")
	}
	// Rotation shows a new token once; the old one stops working.
	p.ClickNav("form#rotate-token button#rotate-submit")
	rotated := p.Text("#scim-token")
	if rotated == "" || rotated == token {
		t.Fatalf("after rotation #scim-token = %q, want a new token", rotated)
	}
	if resp := w.r.SCIM(d, "GET", "/Users?count=1", nil); resp.Status != 401 {
		t.Errorf("the old token after rotation: %s, want 401", resp)
	}
	d.Token = rotated
	if resp := w.r.SCIM(d, "GET", "/Users?count=1", nil); resp.Status != 200 {
		t.Errorf("the rotated token: %s, want 200", resp)
	}

	// Groups: a new group appears while the screen is open.
	p.Go("/teams/" + team + "/groups")
	waitItem(p, "table#groups tr.group .group-name", "Engineering")
	live(p)
	// An admin typing a limit keeps the field, its focus and the text
	// while the screen updates under them.
	engRow := fmt.Sprintf(`table#groups tr.group[data-group-id="%s"]`, w.groupID(team, "Engineering"))
	p.Click(engRow + " input[name=dollars]")
	p.Fill(engRow+" input[name=dollars]", "12")
	cid := w.user(d, "cid")
	w.group(d, "Sales", cid)
	waitItem(p, "table#groups tr.group .group-name", "Sales")
	if got := p.Text(engRow + " input[name=dollars]"); got != "12" {
		t.Errorf("the typed limit is %q after a live update, want 12", got)
	}
	if !chrome.Eval[bool](p, fmt.Sprintf(`document.activeElement === document.querySelector(%q)`, engRow+" input[name=dollars]")) {
		t.Errorf("a live update took the focus from the field being typed in")
	}
	sales := w.groupID(team, "Sales")
	row := fmt.Sprintf(`table#groups tr.group[data-group-id="%s"]`, sales)
	if got := p.WaitText(row+" .member-count", "1"); got != "1" {
		t.Errorf("Sales member count %q, want 1", got)
	}
	if got := p.Text(row + " .managed-badge"); !strings.Contains(got, "Managed by your identity provider") {
		t.Errorf("managed badge %q", got)
	}
	noReload(t, p)
	p.Axe()

	// Members: a new member appears.
	p.Go("/teams/" + team + "/members")
	waitItem(p, "table#members tr.member .member-email", "ann@acme.test")
	live(p)
	w.user(d, "dee")
	waitItem(p, "table#members tr.member .member-email", "dee@acme.test")
	deeID := w.memberID(team, "dee@acme.test")
	if got := p.WaitText(fmt.Sprintf(`tr.member[data-member-id="%s"] .member-limit`, deeID), "$50.00"); got != "$50.00" {
		t.Errorf("dee's limit %q, want the team default $50.00", got)
	}
	noReload(t, p)
	p.Axe()

	// Activity: the newest event is on top.
	p.Go("/teams/" + team + "/activity")
	p.WaitFor("ol#events li.event")
	before := p.Count("ol#events li.event")
	live(p)
	w.user(d, "eve")
	p.WaitJS("a new event on top", fmt.Sprintf(`document.querySelectorAll("ol#events li.event").length > %d`, before))
	waitItem(p, "ol#events li.event:first-child", "member.added")
	if got := p.Text("ol#events li.event:first-child .event-type"); got != "member.added" {
		t.Errorf("newest event type %q, want member.added", got)
	}
	noReload(t, p)
	screen(p, "activity")

	// The directory screen shows the request log, and no "no requests"
	// troubleshooting once requests arrived.
	p.Go("/teams/" + team + "/directories/" + dirID)
	p.WaitFor("#directory-state")
	waitItem(p, "li.request", "POST", "/Groups")
	if p.Exists("#ts-no-requests") {
		t.Errorf("#ts-no-requests shown although requests arrived")
	}

	// The overview lists the directory and its state.
	p.Go("/teams/" + team)
	p.WaitFor(fmt.Sprintf(`table#directories tr.directory a.directory-link[href="/teams/%s/directories/%s"]`, team, dirID))
	screen(p, "overview")
}

// browserGroupLimit: a group limit set in dollars on the groups screen
// changes a member's effective limit and its explanation.
func browserGroupLimit(t *testing.T, w *web) {
	team := w.team("Limits", "enterprise", true, 5000)
	d := w.scim(team, nil)
	alice, bob := w.user(d, "alice"), w.user(d, "bob")
	w.user(d, "carol")
	w.group(d, "Engineering", alice, bob)
	w.group(d, "Sales", alice)
	eng, sales := w.groupID(team, "Engineering"), w.groupID(team, "Sales")
	w.r.MustAdmin(200, "PUT", "/teams/"+team+"/groups/"+sales+"/spend-limit", map[string]any{"per_user_cents": 10000})
	aliceID := w.memberID(team, "alice@acme.test")

	p := w.page(w.teamToken(team))
	memberRow := fmt.Sprintf(`table#members tr.member[data-member-id="%s"]`, aliceID)
	p.Go("/teams/" + team + "/members")
	if got := p.WaitText(memberRow+" .member-limit", "$100.00"); got != "$100.00" {
		t.Errorf("alice's limit %q, want $100.00 from Sales", got)
	}
	p.WaitText(memberRow+" .member-limit-why", "Sales")

	p.Go("/teams/" + team + "/groups")
	row := fmt.Sprintf(`table#groups tr.group[data-group-id="%s"]`, eng)
	if got := p.Text(row + " .group-limit"); got != "No limit" {
		t.Errorf("Engineering's limit %q before, want No limit", got)
	}
	p.Select(row+" select[name=mode]", "dollars")
	p.Fill(row+" input[name=dollars]", "200")
	p.Click(row + " button.limit-submit")
	p.WaitText(row+" .group-limit", "$200.00")
	screen(p, "groups")
	got := w.r.MustAdmin(200, "GET", "/teams/"+team+"/groups?limit=500", nil)
	for _, g := range got["groups"].([]any) {
		g := g.(map[string]any)
		if g["id"] == eng {
			if c := g["spend_limit"].(map[string]any)["per_user_cents"]; c != float64(20000) {
				t.Errorf("API: Engineering limit %v cents, want 20000", c)
			}
		}
	}

	p.Go("/teams/" + team + "/members")
	if got := p.WaitText(memberRow+" .member-limit", "$200.00"); got != "$200.00" {
		t.Errorf("alice's limit %q after, want $200.00", got)
	}
	why := p.WaitText(memberRow+" .member-limit-why", "Engineering")
	for _, want := range []string{"$200.00 from Engineering", "Sales ($100.00)", "team default $50.00"} {
		if !strings.Contains(why, want) {
			t.Errorf("why %q lacks %q", why, want)
		}
	}

	// A limit changed elsewhere (the API) shows on the open screen.
	live(p)
	w.r.MustAdmin(200, "PUT", "/teams/"+team+"/groups/"+sales+"/spend-limit", map[string]any{"per_user_cents": 30000})
	p.WaitText(memberRow+" .member-limit", "$300.00")
	p.WaitText(memberRow+" .member-limit-why", "$300.00 from Sales")
	noReload(t, p)
	screen(p, "members")

	// Cents are exact, with no float rounding: $0.29 is 29 cents.
	p.Go("/teams/" + team + "/groups")
	salesRow := fmt.Sprintf(`table#groups tr.group[data-group-id="%s"]`, sales)
	p.Select(salesRow+" select[name=mode]", "dollars")
	p.Fill(salesRow+" input[name=dollars]", "0.29")
	p.Click(salesRow + " button.limit-submit")
	p.WaitText(salesRow+" .group-limit", "$0.29")
	Eventually(t, 10*time.Second, "Sales at 29 cents", func() (bool, string) {
		for _, g := range w.r.MustAdmin(200, "GET", "/teams/"+team+"/groups?limit=500", nil)["groups"].([]any) {
			g := g.(map[string]any)
			if g["id"] == sales {
				c := g["spend_limit"].(map[string]any)["per_user_cents"]
				return c == float64(29), fmt.Sprintf("%v cents", c)
			}
		}
		return false, "no Sales"
	})

	p.Go("/teams/" + team + "/review")
	p.WaitFor("table#review-groups")
	p.WaitFor("table#review-members")
	screen(p, "review")
}

// browserGroupEditRefused: the edit link of a group answers 403 saying the
// identity provider manages it; the admin API refuses the same.
func browserGroupEditRefused(t *testing.T, w *web) {
	team := w.team("Edit", "enterprise", true, nil)
	d := w.scim(team, nil)
	w.group(d, "Engineering", w.user(d, "al"))
	eng := w.groupID(team, "Engineering")

	p := w.page(w.teamToken(team))
	p.Tolerate("status of 403")
	p.Go("/teams/" + team + "/groups")
	link := fmt.Sprintf(`table#groups tr.group[data-group-id="%s"] a.edit-group`, eng)
	if href := p.Attr(link, "href"); href != "/teams/"+team+"/groups/"+eng+"/edit" {
		t.Errorf("edit link href %q", href)
	}
	p.ClickNav(link)
	p.Axe()
	msg := p.Text("#error")
	if !strings.Contains(msg, "identity provider") || !strings.Contains(msg, "Engineering") {
		t.Errorf("#error %q, want it to say Engineering is managed by the identity provider", msg)
	}
	if status := p.Go("/teams/" + team + "/groups/" + eng + "/edit"); status != 403 {
		t.Errorf("edit page status %d, want 403", status)
	}

	resp := w.r.Admin("PATCH", "/teams/"+team+"/groups/"+eng, map[string]any{"name": "Renamed"})
	if resp.Status != 403 || !strings.Contains(resp.String(), "identity provider") {
		t.Errorf("PATCH group = %s, want 403 naming the identity provider", resp)
	}
	if id := w.groupID(team, "Engineering"); id != eng {
		t.Errorf("group changed after a refused edit")
	}
}

// browserApprove: a SCIM mass unassign held by the deletion guard shows on
// the directory screen with its sample; Approve applies it.
func browserApprove(t *testing.T, w *web) {
	team := w.team("Held", "enterprise", true, nil)
	d := w.scim(team, map[string]any{"deletion_guard": map[string]any{"enabled": true, "max_removals": 2, "max_fraction": 1, "window": "10m"}})
	var ids []string
	var emails []string
	for i := range 6 {
		name := fmt.Sprintf("held%d", i)
		ids = append(ids, w.user(d, name))
		emails = append(emails, name+"@acme.test")
	}
	w.r.WaitRoster(team, emails...)
	for _, id := range ids[:4] {
		if resp := w.r.SCIM(d, "DELETE", "/Users/"+id, nil); resp.Status != 204 {
			t.Fatalf("SCIM DELETE: %s", resp)
		}
	}
	dirPath := "/teams/" + team + "/directories/" + d.ID
	Eventually(t, 10*time.Second, "directory needs review", func() (bool, string) {
		st := w.r.MustAdmin(200, "GET", dirPath, nil)["state"]
		return st == "needs_review", fmt.Sprint(st)
	})
	var pending []string
	for _, m := range w.r.Members(team) {
		if m["pending_removal"] == true {
			pending = append(pending, m["email"].(string))
		}
	}

	p := w.page(w.teamToken(team))
	p.Go(dirPath)
	if got := p.Text("#directory-state"); !strings.Contains(got, "needs_review") {
		t.Errorf("#directory-state %q, want needs_review", got)
	}
	p.WaitFor("section#held-changes form#approve-form")
	if got := p.Text("section#troubleshooting #ts-no-groups"); !strings.Contains(got, "group push may be off in your identity provider") {
		t.Errorf("#ts-no-groups %q, want the group-push hint for users without groups", got)
	}
	shown := p.Texts("section#held-changes li.held-removal")
	if len(shown) == 0 {
		t.Fatalf("no li.held-removal in the held changes")
	}
	for _, e := range pending {
		if !anyHas(shown, e) {
			t.Errorf("held sample %q lacks %s", shown, e)
		}
	}
	screen(p, "directory-held-changes")

	p.ClickNav("button#approve-submit")
	w.r.WaitRoster(team, emails[4:]...)
	p.Go(dirPath)
	p.WaitGone("section#held-changes")
	if got := p.Text("#directory-state"); strings.Contains(got, "needs_review") {
		t.Errorf("#directory-state %q after approve", got)
	}
	p.Go("/teams/" + team + "/members")
	p.WaitCount("table#members tr.member", 2)
}

// browserCSRF: a form post without the CSRF token answers 403 and changes
// nothing, from the page's own JavaScript and from outside with the
// session cookie; the same post with the token goes through.
func browserCSRF(t *testing.T, w *web) {
	team := w.team("CSRF", "enterprise", true, nil)
	d := w.scim(team, nil)
	w.group(d, "Engineering", w.user(d, "cy"))
	eng := w.groupID(team, "Engineering")
	limitOf := func() any {
		for _, g := range w.r.MustAdmin(200, "GET", "/teams/"+team+"/groups?limit=500", nil)["groups"].([]any) {
			if g := g.(map[string]any); g["id"] == eng {
				return g["spend_limit"].(map[string]any)["per_user_cents"]
			}
		}
		return "absent"
	}

	p := w.page(w.teamToken(team))
	p.Tolerate("status of 403")
	p.Go("/teams/" + team + "/groups")
	form := fmt.Sprintf(`table#groups tr.group[data-group-id="%s"] form.limit-form`, eng)
	p.WaitFor(form + ` input[name=csrf]`)

	status := chrome.Eval[int](p, fmt.Sprintf(`(async () => {
		const form = document.querySelector(%q);
		const data = new FormData(form);
		data.delete('csrf');
		data.set('mode', 'dollars');
		data.set('dollars', '7');
		const r = await fetch(form.action, {method: 'POST', body: new URLSearchParams(data), credentials: 'same-origin', redirect: 'manual'});
		return r.status;
	})()`, form))
	if status != 403 {
		t.Errorf("fetch without csrf: status %d, want 403", status)
	}
	// The same from a form the user submits: the error page says why.
	chrome.Eval[bool](p, fmt.Sprintf(`(document.querySelector(%q).remove(), true)`, form+` input[name=csrf]`))
	p.Select(form+` select[name=mode]`, "dollars")
	p.Fill(form+` input[name=dollars]`, "7")
	p.ClickNav(form + ` button.limit-submit`)
	if got := strings.ToLower(p.Text("#error")); !strings.Contains(got, "expired") {
		t.Errorf("#error after a post without csrf: %q, want it to say the form expired", got)
	}
	p.Go("/teams/" + team + "/groups")
	if got := limitOf(); got != nil {
		t.Errorf("limit %v after a refused post, want none", got)
	}

	// From outside the page, with the browser's session cookie.
	cookie := p.Cookie("roster_session")
	if cookie == nil {
		t.Fatal("no roster_session cookie after sign-in")
	}
	action, err := url.Parse(p.URL(p.Attr(form, "action")))
	if err != nil {
		t.Fatal(err)
	}
	csrf := p.Text(form + ` input[name=csrf]`)
	post := func(fields url.Values) (int, string) {
		req, _ := http.NewRequest("POST", action.String(), strings.NewReader(fields.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", action, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, c := range []struct {
		name string
		csrf []string
	}{{"no csrf", nil}, {"empty csrf", []string{""}}, {"wrong csrf", []string{"x" + csrf}}} {
		status, body := post(url.Values{"mode": {"dollars"}, "dollars": {"7"}, "csrf": c.csrf})
		if status != 403 || !strings.Contains(body, `id="error"`) || !strings.Contains(strings.ToLower(body), "expired") {
			t.Errorf("%s: status %d, want 403 with #error saying the form expired; body %.300s", c.name, status, body)
		}
	}
	if got := limitOf(); got != nil {
		t.Errorf("limit %v after refused posts, want none", got)
	}
	// The control: the same post with the form's token is accepted, so the
	// 403s above were the missing token's doing.
	if status, body := post(url.Values{"mode": {"dollars"}, "dollars": {"7"}, "csrf": {csrf}}); status != 303 {
		t.Errorf("post with the csrf token: status %d, want 303; body %.300s", status, body)
	}
	Eventually(t, 10*time.Second, "limit set by the accepted post", func() (bool, string) {
		got := limitOf()
		return got == float64(700), fmt.Sprint(got)
	})
}

// browserWebhooks: the webhooks screen lists an endpoint; the settings
// screen shows the team's admin tokens.
func browserWebhooks(t *testing.T, w *web) {
	team := w.team("Hooks", "enterprise", true, nil)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	t.Cleanup(sink.Close)
	w.r.MustAdmin(201, "POST", "/teams/"+team+"/webhooks", map[string]any{
		"url": sink.URL + "/hooks/roster", "event_types": []string{"member.added"}, "description": "Billing sync"})
	p := w.page(w.teamToken(team))
	p.Go("/teams/" + team + "/webhooks")
	waitItem(p, "table#webhooks", "/hooks/roster")
	p.WaitFor("form#create-webhook")
	screen(p, "webhooks")

	p.Go("/teams/" + team + "/settings")
	p.WaitFor("form#team-limit-form")
	waitItem(p, "table#admin-tokens", "browser test")
	p.WaitFor("form#create-admin-token")
	screen(p, "settings")
}

// browserNoScript: with JavaScript off every screen still renders, and a
// form still posts and comes back (303) with the change.
func browserNoScript(t *testing.T, w *web) {
	team := w.team("No Script", "enterprise", true, 5000)
	d := w.scim(team, nil)
	w.group(d, "Engineering", w.user(d, "nat"))
	eng := w.groupID(team, "Engineering")
	natID := w.memberID(team, "nat@acme.test")

	p := w.b.NewPage(t, w.r.URL)
	p.DisableScripts()
	p.Go("/signin")
	p.Fill("input#token", w.teamToken(team))
	p.ClickNav("button#signin-submit")
	if p.Exists("#signin-error") {
		t.Fatalf("sign-in without JavaScript refused: %s", p.Text("#signin-error"))
	}
	for _, s := range []struct{ path, sel string }{
		{"", "section#prerequisites"},
		{"/setup", "form#create-directory"},
		{"/groups", "table#groups tr.group"},
		{"/members", "table#members tr.member"},
		{"/review", "table#review-groups"},
		{"/activity", "ol#events li.event"},
		{"/webhooks", "form#create-webhook"},
		{"/settings", "form#team-limit-form"},
		{"/directories/" + d.ID, "#directory-state"},
	} {
		if status := p.Go("/teams/" + team + s.path); status != 200 {
			t.Errorf("GET %s without JavaScript: status %d", s.path, status)
			continue
		}
		if !p.Exists(s.sel) {
			t.Errorf("%s without JavaScript has no %s", s.path, s.sel)
		}
	}

	p.Go("/teams/" + team + "/groups")
	row := fmt.Sprintf(`table#groups tr.group[data-group-id="%s"]`, eng)
	p.Select(row+" select[name=mode]", "dollars")
	p.Fill(row+" input[name=dollars]", "75.50")
	p.ClickNav(row + " button.limit-submit")
	if got := p.Path(); !strings.HasPrefix(got, "/teams/"+team+"/groups") {
		t.Errorf("the form post came back to %s, want the groups screen", got)
	}
	p.WaitText(row+" .group-limit", "$75.50")
	p.Go("/teams/" + team + "/members")
	if got := p.Text(fmt.Sprintf(`tr.member[data-member-id="%s"] .member-limit`, natID)); got != "$75.50" {
		t.Errorf("nat's limit %q, want $75.50", got)
	}
}

func anyHas(list []string, sub string) bool {
	for _, x := range list {
		if strings.Contains(x, sub) {
			return true
		}
	}
	return false
}
