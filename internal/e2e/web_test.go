package e2e

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roster-dev/roster/app"
	"github.com/roster-dev/roster/config"
)

// browser is a user agent without JavaScript: a cookie jar, redirects not
// followed, forms posted as a browser posts them.
type browser struct {
	t   testing.TB
	r   *Roster
	c   *http.Client
	jar *cookiejar.Jar
}

func newBrowser(t testing.TB, r *Roster) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &browser{t: t, r: r, c: c, jar: jar}
}

func (b *browser) do(req *http.Request) *Response {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

func (b *browser) get(path string) *Response {
	b.t.Helper()
	req, err := http.NewRequest("GET", b.r.URL+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// post sends a form as it is, csrf field or not.
func (b *browser) post(path string, form url.Values) *Response {
	b.t.Helper()
	req, err := http.NewRequest("POST", b.r.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// submit reads page's CSRF token and posts form with it.
func (b *browser) submit(page, path string, form url.Values) *Response {
	b.t.Helper()
	p := b.get(page)
	m := csrfRe.FindSubmatch(p.Body)
	if m == nil {
		b.t.Fatalf("GET %s has no csrf field: %s", page, p)
	}
	form.Set("csrf", html.UnescapeString(string(m[1])))
	return b.post(path, form)
}

// signIn signs in with token and returns where it was sent.
func (b *browser) signIn(token string) *Response {
	b.t.Helper()
	return b.submit("/signin", "/signin", url.Values{"token": {token}})
}

func (b *browser) mustSignIn(token, wantLocation string) {
	b.t.Helper()
	resp := b.signIn(token)
	if resp.Status != 303 || resp.Header.Get("Location") != wantLocation {
		b.t.Fatalf("sign in = %d to %q, want 303 to %q: %s", resp.Status, resp.Header.Get("Location"), wantLocation, resp.Body)
	}
}

func (b *browser) cookie(name string) *http.Cookie {
	u, _ := url.Parse(b.r.URL)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// must fetches a page and fails unless its status is want.
func (b *browser) must(want int, path string) string {
	b.t.Helper()
	resp := b.get(path)
	if resp.Status != want {
		b.t.Fatalf("GET %s = %d, want %d: %s", path, resp.Status, want, resp.Body)
	}
	return string(resp.Body)
}

func contains(t testing.TB, what, page string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(page, w) {
			t.Errorf("%s: no %q in\n%s", what, w, page)
		}
	}
}

func lacks(t testing.TB, what, page string, bad ...string) {
	t.Helper()
	for _, w := range bad {
		if strings.Contains(page, w) {
			t.Errorf("%s: %q should not be there", what, w)
		}
	}
}

// textOf is the text of the first element with class (or id) sel.
func textOf(page, attr string) string {
	re := regexp.MustCompile(attr + `[^>]*>([^<]*)<`)
	m := re.FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return html.UnescapeString(strings.TrimSpace(m[1]))
}

func newTeam(r *Roster, plan, sso string) string {
	r.T.Helper()
	team := r.MustAdmin(201, "POST", "/teams", map[string]any{"name": "Acme " + plan, "plan": plan, "default_spend_limit": map[string]any{"per_user_cents": 5000}})
	tid := team["id"].(string)
	if sso != "" {
		r.MustAdmin(200, "PUT", "/teams/"+tid+"/sso", map[string]any{"status": sso, "provider": "okta"})
	}
	return tid
}

func TestWebSignInAndHeaders(t *testing.T) {
	for _, m := range Modes() {
		t.Run(m.Name, func(t *testing.T) {
			r := Start(t, m)
			tid := newTeam(r, "enterprise", "")
			b := newBrowser(t, r)

			if resp := b.get("/"); resp.Status != 303 || resp.Header.Get("Location") != "/signin" {
				t.Fatalf("GET / signed out = %d %q, want 303 /signin", resp.Status, resp.Header.Get("Location"))
			}
			page := b.must(200, "/signin")
			contains(t, "sign-in page", page, `id="signin-form"`, `method="post" action="/signin"`, `<label for="token">`,
				`type="password" id="token" name="token"`, `id="signin-submit"`)
			resp := b.signIn("not-a-token")
			if resp.Status != 401 || !strings.Contains(string(resp.Body), `id="signin-error"`) {
				t.Fatalf("wrong token = %s, want 401 with #signin-error", resp)
			}
			if b.cookie("roster_session") != nil {
				t.Fatal("a wrong token got a session")
			}
			// A sign-in post without the form's CSRF token is refused.
			if resp := b.post("/signin", url.Values{"token": {AdminToken}}); resp.Status != 403 {
				t.Fatalf("sign-in without csrf = %d, want 403", resp.Status)
			}
			login := b.signIn(AdminToken)
			if login.Status != 303 || login.Header.Get("Location") != "/teams" {
				t.Fatalf("operator sign-in = %d %q, want 303 /teams", login.Status, login.Header.Get("Location"))
			}
			var set string
			for _, c := range login.Header.Values("Set-Cookie") {
				if strings.HasPrefix(c, "roster_session=") {
					set = c
				}
			}
			for _, attr := range []string{"HttpOnly", "SameSite=Strict", "Path=/"} {
				if !strings.Contains(set, attr) {
					t.Errorf("session cookie %q lacks %s", set, attr)
				}
			}
			if strings.Contains(set, "Secure") {
				t.Errorf("session cookie %q is Secure over plain http", set)
			}
			if resp := b.get("/"); resp.Status != 303 || resp.Header.Get("Location") != "/teams" {
				t.Fatalf("GET / as operator = %d %q, want 303 /teams", resp.Status, resp.Header.Get("Location"))
			}
			teams := b.get("/teams")
			contains(t, "team list", string(teams.Body), `id="team-list"`, `class="team-link" href="/teams/`+tid+`">Acme enterprise</a>`)
			want := map[string]string{
				"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "same-origin",
				"Cache-Control":           "no-store",
			}
			for k, v := range want {
				if got := teams.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			for _, p := range []string{"/signin", "/static/app.js", "/nowhere"} {
				if got := b.get(p).Header.Get("Content-Security-Policy"); got != want["Content-Security-Policy"] {
					t.Errorf("%s: CSP %q", p, got)
				}
			}
			// Behind https (a proxy saying so), the cookie is Secure.
			req, _ := http.NewRequest("GET", r.URL+"/signin", nil)
			req.Header.Set("X-Forwarded-Proto", "https")
			resp = newBrowser(t, r).do(req)
			if c := resp.Header.Get("Set-Cookie"); !strings.Contains(c, "Secure") {
				t.Errorf("cookie behind https = %q, want Secure", c)
			}
		})
	}
}

func TestWebCSRFRequired(t *testing.T) {
	for _, m := range Modes() {
		t.Run(m.Name, func(t *testing.T) {
			r := Start(t, m)
			tid := newTeam(r, "enterprise", "active")
			b := newBrowser(t, r)
			b.mustSignIn(AdminToken, "/teams")
			for _, form := range []url.Values{
				{"mode": {"dollars"}, "dollars": {"99"}},
				{"mode": {"dollars"}, "dollars": {"99"}, "csrf": {"forged"}},
			} {
				resp := b.post("/teams/"+tid+"/settings/limit", form)
				if resp.Status != 403 || !strings.Contains(string(resp.Body), `id="error"`) || !strings.Contains(string(resp.Body), "CSRF token") {
					t.Fatalf("POST without a valid csrf = %s, want 403 with #error", resp)
				}
			}
			if got := r.MustAdmin(200, "GET", "/teams/"+tid+"/spend-limit", nil)["per_user_cents"]; got != 5000.0 {
				t.Fatalf("team default after refused posts = %v, want 5000 (unchanged)", got)
			}
			resp := b.submit("/teams/"+tid+"/settings", "/teams/"+tid+"/settings/limit", url.Values{"mode": {"dollars"}, "dollars": {"$1,234.50"}})
			if resp.Status != 303 {
				t.Fatalf("POST with csrf = %s, want 303", resp)
			}
			if got := r.MustAdmin(200, "GET", "/teams/"+tid+"/spend-limit", nil)["per_user_cents"]; got != 123450.0 {
				t.Fatalf("team default = %v, want 123450", got)
			}
			contains(t, "settings", b.must(200, resp.Header.Get("Location")), `id="team-default">$1,234.50<`, "The spend limit is saved.")
			// A limit the parser refuses is an error next to the field;
			// nothing is stored.
			resp = b.submit("/teams/"+tid+"/settings", "/teams/"+tid+"/settings/limit", url.Values{"mode": {"dollars"}, "dollars": {"12.505"}})
			if resp.Status != 400 || !strings.Contains(string(resp.Body), `id="team-dollars-err"`) || !strings.Contains(string(resp.Body), "two decimals") {
				t.Fatalf("POST 12.505 = %s, want 400 with the field's error", resp)
			}
			if got := r.MustAdmin(200, "GET", "/teams/"+tid+"/spend-limit", nil)["per_user_cents"]; got != 123450.0 {
				t.Fatalf("team default after a refused amount = %v, want 123450", got)
			}
			resp = b.submit("/teams/"+tid+"/settings", "/teams/"+tid+"/settings/limit", url.Values{"mode": {"unlimited"}})
			if resp.Status != 303 {
				t.Fatalf("unlimited = %s", resp)
			}
			if got := r.MustAdmin(200, "GET", "/teams/"+tid+"/spend-limit", nil)["per_user_cents"]; got != nil {
				t.Fatalf("team default = %v, want null (unlimited)", got)
			}
		})
	}
}

func TestWebPrerequisitesAndSCIMWizard(t *testing.T) {
	for _, m := range Modes() {
		t.Run(m.Name, func(t *testing.T) {
			r := Start(t, m)
			pro := newTeam(r, "pro", "")
			tid := newTeam(r, "enterprise", "")
			b := newBrowser(t, r)
			b.mustSignIn(AdminToken, "/teams")

			page := b.must(200, "/teams/"+pro)
			contains(t, "pro team", page, `id="prerequisites"`, `id="plan">pro<`, `id="sso-status">inactive`, "SCIM needs an active SSO connection", "enterprise plan", `id="sso-form"`)
			lacks(t, "pro team", page, `id="setup-link"`)

			page = b.must(200, "/teams/"+tid)
			contains(t, "enterprise team without SSO", page, "SCIM needs an active SSO connection", `id="sso-form"`, `name="provider"`, `id="sso-activate"`)
			lacks(t, "enterprise team without SSO", page, `id="setup-link"`)
			resp := b.submit("/teams/"+tid, "/teams/"+tid+"/sso", url.Values{"provider": {"okta"}, "status": {"active"}})
			if resp.Status != 303 || resp.Header.Get("Location") != "/teams/"+tid+"?done=sso-active" {
				t.Fatalf("activate SSO = %d %q", resp.Status, resp.Header.Get("Location"))
			}
			page = b.must(200, "/teams/"+tid)
			contains(t, "ready team", page, `id="sso-status">active`, `id="setup-link" class="button" href="/teams/`+tid+`/setup"`)
			lacks(t, "ready team", page, "SCIM needs")

			page = b.must(200, "/teams/"+tid+"/setup")
			contains(t, "wizard", page, `id="create-directory"`, `name="type"`, `value="ldap"`, `name="ldap.url"`, `name="ldap.bind_dn"`, `name="okta.org_url"`, `name="msgraph.tenant_id"`, `name="google.admin_email"`, `id="create-submit"`)
			// A polled type whose connection fails is refused on the form.
			resp = b.submit("/teams/"+tid+"/setup", "/teams/"+tid+"/directories", url.Values{"type": {"ldap"}, "ldap.url": {"ldap://127.0.0.1:1"}, "ldap.base_dn": {"dc=x"}, "ldap.bind_password": {"hunter2"}})
			if resp.Status != 400 || !strings.Contains(string(resp.Body), `id="error"`) || strings.Contains(string(resp.Body), "hunter2") {
				t.Fatalf("LDAP with no server = %s, want 400 with #error and no password echoed", resp)
			}

			resp = b.submit("/teams/"+tid+"/setup", "/teams/"+tid+"/directories", url.Values{"type": {"scim"}})
			loc := resp.Header.Get("Location")
			if resp.Status != 303 || !strings.HasSuffix(loc, "/setup") || !strings.HasPrefix(loc, "/teams/"+tid+"/directories/") {
				t.Fatalf("create SCIM = %d %q: %s", resp.Status, loc, resp.Body)
			}
			dirID := strings.TrimSuffix(strings.TrimPrefix(loc, "/teams/"+tid+"/directories/"), "/setup")
			page = b.must(200, loc)
			token := attrValue(page, "scim-token")
			base := attrValue(page, "scim-base-url")
			if !strings.HasPrefix(token, "rst_scim_") || base != r.URL+"/scim/v2/"+dirID {
				t.Fatalf("setup page: token %q base %q", token, base)
			}
			contains(t, "setup page", page, `class="copy" data-copy-target="scim-token"`, `class="copy" data-copy-target="scim-base-url"`,
				`id="idp-instructions"`, `id="idp-okta"`, `id="idp-entra"`, "aadOptscim062020", `id="idp-onelogin"`, `id="idp-jumpcloud"`, `id="idp-google"`,
				"cannot push over SCIM", `id="test-connection"`, `id="request-log"`, `id="rotate-token"`, `id="rotate-submit"`)
			// Shown once.
			again := b.must(200, loc)
			if strings.Contains(again, token) || attrValue(again, "scim-token") != "" {
				t.Fatal("the SCIM token is shown a second time")
			}
			d := Directory{TeamID: tid, ID: dirID, BaseURL: base, Token: token}
			addUsers(r, d, "wiz", 1)
			Eventually(t, 5*time.Second, "the request log", func() (bool, string) {
				page = b.must(200, loc)
				return strings.Contains(page, `class="request"`), "no li.request"
			})
			contains(t, "request log", page, `class="request"`, `<span class="method">POST</span>`, `/Users`, `status-201">201<`, "created user wiz0")
			// The troubleshooting answer for users without groups.
			page = b.must(200, "/teams/"+tid+"/directories/"+dirID)
			contains(t, "directory", page, `id="directory-state"`, `id="troubleshooting"`, `id="ts-no-groups"`, "group push may be off")
			lacks(t, "directory", page, `id="ts-no-requests"`, `id="held-changes"`)
			contains(t, "overview", b.must(200, "/teams/"+tid), `class="directory"`, `class="directory-link" href="/teams/`+tid+`/directories/`+dirID+`"`, `class="directory-state state-ok">ok<`)

			// Rotation shows a new token once; the old one stops working.
			resp = b.submit(loc, "/teams/"+tid+"/directories/"+dirID+"/token", url.Values{})
			if resp.Status != 303 {
				t.Fatalf("rotate = %s", resp)
			}
			page = b.must(200, resp.Header.Get("Location"))
			newToken := attrValue(page, "scim-token")
			if !strings.HasPrefix(newToken, "rst_scim_") || newToken == token {
				t.Fatalf("rotated token %q (old %q)", newToken, token)
			}
			if resp := r.SCIM(d, "GET", "/Users", nil); resp.Status != 401 {
				t.Fatalf("old token after rotation = %d, want 401", resp.Status)
			}
			d.Token = newToken
			if resp := r.SCIM(d, "GET", "/Users", nil); resp.Status != 200 {
				t.Fatalf("new token = %s", resp)
			}

			// A second SCIM directory that no one called yet.
			resp = b.submit("/teams/"+tid+"/setup", "/teams/"+tid+"/directories", url.Values{"type": {"scim"}, "name": {"Quiet"}})
			quiet := strings.TrimSuffix(strings.TrimPrefix(resp.Header.Get("Location"), "/teams/"+tid+"/directories/"), "/setup")
			contains(t, "quiet directory", b.must(200, "/teams/"+tid+"/directories/"+quiet), `id="ts-no-requests"`)
		})
	}
}

// attrValue is the value attribute of the element with id.
func attrValue(page, id string) string {
	re := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*value="([^"]*)"`)
	m := re.FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// scimGroup creates a group with members (SCIM user ids) and returns its
// roster id once the roster shows it.
func scimGroup(r *Roster, d Directory, name string, members ...string) {
	r.T.Helper()
	var ms []map[string]any
	for _, id := range members {
		ms = append(ms, map[string]any{"value": id})
	}
	resp := r.SCIM(d, "POST", "/Groups", map[string]any{"schemas": []string{urnGroup}, "displayName": name, "members": ms})
	if resp.Status != 201 {
		r.T.Fatalf("create group: %s", resp)
	}
}

func scimUserIDs(r *Roster, d Directory) map[string]string {
	r.T.Helper()
	out := map[string]string{}
	for _, u := range r.SCIM(d, "GET", "/Users?count=1000", nil).JSON()["Resources"].([]any) {
		m := u.(map[string]any)
		out[m["userName"].(string)] = m["id"].(string)
	}
	return out
}

func groupIDs(r *Roster, tid string) map[string]string {
	r.T.Helper()
	out := map[string]string{}
	for _, g := range r.MustAdmin(200, "GET", "/teams/"+tid+"/groups?limit=1000", nil)["groups"].([]any) {
		m := g.(map[string]any)
		out[m["name"].(string)] = m["id"].(string)
	}
	return out
}

func TestWebGroupsMembersAndLimits(t *testing.T) {
	for _, m := range Modes() {
		t.Run(m.Name, func(t *testing.T) {
			r := Start(t, m)
			d := r.NewSCIMTeam(5000)
			tid := d.TeamID
			addUsers(r, d, "u", 3)
			ids := scimUserIDs(r, d)
			scimGroup(r, d, "Engineering", ids["u0"], ids["u1"])
			scimGroup(r, d, "Sales", ids["u0"])
			r.WaitRoster(tid, "u0@acme.test", "u1@acme.test", "u2@acme.test")
			var gids map[string]string
			Eventually(t, 5*time.Second, "groups", func() (bool, string) {
				gids = groupIDs(r, tid)
				return len(gids) == 2, fmt.Sprint(gids)
			})
			b := newBrowser(t, r)
			b.mustSignIn(AdminToken, "/teams")

			page := b.must(200, "/teams/"+tid+"/groups")
			contains(t, "groups", page, `id="group-search"`, `name="q"`, `id="groups"`, `class="group" data-group-id="`+gids["Engineering"]+`"`,
				`class="group-name">Engineering<`, `class="member-count"><a href="/teams/`+tid+`/members?group=`+gids["Engineering"]+`"`, ` members of Engineering">2</a>`, `class="group-limit">No limit<`,
				`class="managed-badge"`, "Managed by your identity provider", `class="limit-form"`, `name="mode"`, `value="dollars"`,
				`value="unlimited"`, `value="none"`, `name="dollars"`, `class="limit-submit"`, `class="edit-group" href="/teams/`+tid+`/groups/`+gids["Engineering"]+`/edit"`)

			groups := "/teams/" + tid + "/groups"
			eng := groups + "/" + gids["Engineering"] + "/limit"
			resp := b.submit(groups, eng, url.Values{"mode": {"dollars"}, "dollars": {"$1,200.50"}})
			if resp.Status != 303 {
				t.Fatalf("set a group limit = %s", resp)
			}
			got := r.MustAdmin(200, "GET", "/teams/"+tid+"/groups/"+gids["Engineering"], nil)["spend_limit"].(map[string]any)["per_user_cents"]
			if got != 120050.0 {
				t.Fatalf("Engineering's limit = %v, want 120050 cents", got)
			}
			resp = b.submit(groups, groups+"/"+gids["Sales"]+"/limit", url.Values{"mode": {"dollars"}, "dollars": {"100"}})
			if resp.Status != 303 {
				t.Fatalf("set Sales = %s", resp)
			}
			// Refused amounts: an error next to the field, nothing stored.
			for _, bad := range []string{"12.505", "-5", "lots"} {
				resp = b.submit(groups, eng, url.Values{"mode": {"dollars"}, "dollars": {bad}})
				if resp.Status != 400 || !strings.Contains(string(resp.Body), `class="field-error"`) {
					t.Fatalf("limit %q = %s, want 400 with a field error", bad, resp)
				}
			}
			if got := r.MustAdmin(200, "GET", "/teams/"+tid+"/groups/"+gids["Engineering"], nil)["spend_limit"].(map[string]any)["per_user_cents"]; got != 120050.0 {
				t.Fatalf("Engineering's limit after refused amounts = %v", got)
			}
			page = b.must(200, groups)
			contains(t, "groups after", page, `class="group-limit">$1,200.50<`, `class="group-limit">$100.00<`, `value="1,200.50"`)

			// The API waits (boundedly) for the roster to show a limit; a
			// slow machine may need longer.
			var members string
			Eventually(t, 10*time.Second, "the member's new limit", func() (bool, string) {
				members = b.must(200, "/teams/"+tid+"/members")
				return strings.Contains(members, `class="member-limit">$1,200.50<`) && strings.Contains(members, "also in Sales ($100.00)"), "not yet"
			})
			contains(t, "members", members, `id="member-search"`, `name="q"`, `name="group"`, `name="source"`, `id="members"`, `class="member" data-member-id="`,
				`class="member-email">u0@acme.test<`, `class="member-limit">$1,200.50<`,
				`class="member-limit-why">$1,200.50 from Engineering; also in Sales ($100.00); team default $50.00<`,
				`class="member-limit-why">$50.00 from the team default<`)

			// Unlimited and "no limit from this group".
			if resp := b.submit(groups, eng, url.Values{"mode": {"unlimited"}, "dollars": {""}}); resp.Status != 303 {
				t.Fatalf("unlimited = %s", resp)
			}
			lim := r.MustAdmin(200, "GET", "/teams/"+tid+"/groups/"+gids["Engineering"], nil)["spend_limit"].(map[string]any)
			if lim["per_user_cents"] != nil || lim["unlimited"] != true {
				t.Fatalf("unlimited limit = %v", lim)
			}
			if resp := b.submit(groups, eng, url.Values{"mode": {"none"}}); resp.Status != 303 {
				t.Fatalf("no limit = %s", resp)
			}
			lim = r.MustAdmin(200, "GET", "/teams/"+tid+"/groups/"+gids["Engineering"], nil)["spend_limit"].(map[string]any)
			if lim["set"] != false {
				t.Fatalf("removed limit = %v", lim)
			}
			Eventually(t, 10*time.Second, "u1 back on the default", func() (bool, string) {
				members = b.must(200, "/teams/"+tid+"/members?q=u1")
				return strings.Contains(members, "from the team default"), "not yet"
			})
			contains(t, "u1", members, `class="member-limit-why">$50.00 from the team default; none of their groups sets a limit<`)

			// Editing a group is refused with why.
			edit := b.get("/teams/" + tid + "/groups/" + gids["Engineering"] + "/edit")
			if edit.Status != 403 || !strings.Contains(string(edit.Body), `id="error"`) || !strings.Contains(string(edit.Body), "managed by your identity provider") || !strings.Contains(string(edit.Body), "Engineering") {
				t.Fatalf("edit group = %s, want 403 saying it is managed by the identity provider", edit)
			}

			// Review: who each limit decides.
			review := b.must(200, "/teams/"+tid+"/review")
			contains(t, "review", review, `id="review-groups"`, `class="review-group" data-group-id="`+gids["Sales"]+`"`,
				`class="decides"><a href="/teams/`+tid+`/members?source_group=`+gids["Sales"]+`"`, `>1</a>`, `id="review-members"`)
			decided := b.must(200, "/teams/"+tid+"/members?source_group="+gids["Sales"])
			if n := strings.Count(decided, `class="member" data-member-id=`); n != 1 || !strings.Contains(decided, `class="member-email">u0@acme.test<`) {
				t.Fatalf("members Sales decides: %d rows, want u0 alone", n)
			}

			// Search and filters.
			if n := strings.Count(b.must(200, "/teams/"+tid+"/members?q=u1"), `class="member" data-member-id=`); n != 1 {
				t.Fatalf("members?q=u1 shows %d rows, want 1", n)
			}
			if n := strings.Count(b.must(200, "/teams/"+tid+"/members?source=team_default"), `class="member" data-member-id=`); n != 2 {
				t.Fatalf("members?source=team_default shows %d rows, want 2", n)
			}
			if n := strings.Count(b.must(200, "/teams/"+tid+"/members?group="+gids["Engineering"]), `class="member" data-member-id=`); n != 2 {
				t.Fatalf("members of Engineering: %d rows, want 2", n)
			}
			found := b.must(200, groups+"?q=Sal")
			if n := strings.Count(found, `class="group" data-group-id=`); n != 1 || !strings.Contains(found, `class="group-name">Sales<`) {
				t.Fatalf("groups?q=Sal shows %d rows, want Sales alone", n)
			}

			// Paging keeps pages small.
			for i := range 55 {
				scimGroup(r, d, fmt.Sprintf("Page %02d", i))
			}
			Eventually(t, 10*time.Second, "57 groups", func() (bool, string) {
				n := len(groupIDs(r, tid))
				return n == 57, fmt.Sprint(n)
			})
			page = b.must(200, groups)
			if n := strings.Count(page, `class="group" data-group-id=`); n != 50 {
				t.Fatalf("first page shows %d groups, want 50", n)
			}
			next := regexp.MustCompile(`id="next-page" href="([^"]+)"`).FindStringSubmatch(page)
			if next == nil {
				t.Fatal("no #next-page on the first page")
			}
			page = b.must(200, html.UnescapeString(next[1]))
			if n := strings.Count(page, `class="group" data-group-id=`); n != 7 {
				t.Fatalf("second page shows %d groups, want 7", n)
			}
			lacks(t, "last page", page, `id="next-page"`)
		})
	}
}

func TestWebHeldChangesAndApprove(t *testing.T) {
	for _, m := range Modes() {
		t.Run(m.Name, func(t *testing.T) {
			r := Start(t, m)
			tid := newTeam(r, "enterprise", "active")
			b := newBrowser(t, r)
			b.mustSignIn(AdminToken, "/teams")
			resp := b.submit("/teams/"+tid+"/setup", "/teams/"+tid+"/directories", url.Values{"type": {"scim"},
				"scim.deletion_guard.enabled": {"true"}, "scim.deletion_guard.max_removals": {"1"}, "scim.deletion_guard.max_fraction": {"1"}, "scim.deletion_guard.window": {"10m"}})
			if resp.Status != 303 {
				t.Fatalf("create guarded SCIM directory = %s", resp)
			}
			loc := resp.Header.Get("Location")
			dirID := strings.TrimSuffix(strings.TrimPrefix(loc, "/teams/"+tid+"/directories/"), "/setup")
			page := b.must(200, loc)
			d := Directory{TeamID: tid, ID: dirID, BaseURL: attrValue(page, "scim-base-url"), Token: attrValue(page, "scim-token")}
			addUsers(r, d, "h", 4)
			r.WaitRoster(tid, "h0@acme.test", "h1@acme.test", "h2@acme.test", "h3@acme.test")
			for _, id := range scimUserIDs(r, d) {
				if resp := r.SCIM(d, "DELETE", "/Users/"+id, nil); resp.Status != 204 {
					t.Fatalf("delete user: %s", resp)
				}
			}
			dirPage := "/teams/" + tid + "/directories/" + dirID
			Eventually(t, 10*time.Second, "needs_review", func() (bool, string) {
				p := b.must(200, dirPage)
				return strings.Contains(p, `id="held-changes"`), textOf(p, `id="directory-state"`)
			})
			page = b.must(200, dirPage)
			contains(t, "held changes", page, `id="directory-state" class="state-needs_review">needs_review<`, `class="held-removal">`, `@acme.test<`, `id="approve-form"`, `id="approve-submit"`)
			resp = b.submit(dirPage, dirPage+"/approve", url.Values{})
			if resp.Status != 303 {
				t.Fatalf("approve = %s", resp)
			}
			r.WaitRoster(tid)
			Eventually(t, 10*time.Second, "state ok", func() (bool, string) {
				p := b.must(200, dirPage)
				return !strings.Contains(p, `id="held-changes"`), textOf(p, `id="directory-state"`)
			})
		})
	}
}

func TestWebScreensWithoutJavaScript(t *testing.T) {
	for _, m := range Modes() {
		t.Run(m.Name, func(t *testing.T) {
			r := Start(t, m, func(c *config.Config) { c.Webhooks.AllowPrivateNetworks = true })
			d := r.NewSCIMTeam(5000)
			tid := d.TeamID
			addUsers(r, d, "s", 2)
			r.WaitRoster(tid, "s0@acme.test", "s1@acme.test")
			r.MustAdmin(201, "POST", "/teams/"+tid+"/webhooks", map[string]any{"url": "http://127.0.0.1:1/hook"})
			b := newBrowser(t, r)
			b.mustSignIn(AdminToken, "/teams")
			inline := regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]|<script>|\sstyle=|\son[a-z]+=|<style`)
			screens := map[string][]string{
				"":                                {`id="prerequisites"`, `id="directories"`},
				"/setup":                          {`id="create-directory"`},
				"/directories/" + d.ID:            {`id="directory-state"`, `id="troubleshooting"`, `id="directory-requests"`},
				"/directories/" + d.ID + "/setup": {`id="scim-base-url"`, `id="request-log"`},
				"/groups":                         {`id="groups"`, `id="group-search"`},
				"/members":                        {`id="members"`, `class="member-email">s0@acme.test<`},
				"/review":                         {`id="review-groups"`, `id="review-members"`},
				"/activity":                       {`id="events"`, `class="event" data-event-id="`, `class="event-type">member.added<`},
				"/webhooks":                       {`id="webhooks"`, `id="create-webhook"`, `class="webhook-url">http://127.0.0.1:1/hook<`},
				"/settings":                       {`id="team-limit-form"`, `id="admin-tokens"`, `id="create-admin-token"`},
			}
			for path, wants := range screens {
				page := b.must(200, "/teams/"+tid+path)
				contains(t, path, page, append(wants, `<main id="main"`, `nav id="team-nav"`, `class="skip-link" href="#main"`, `id="signout-form"`, `src="/static/app.js"`, `data-team="`+tid+`"`)...)
				if loc := inline.FindStringIndex(page); loc != nil {
					t.Errorf("%s: inline script or style: %q", path, page[loc[0]:min(len(page), loc[1]+40)])
				}
				seen := map[string]bool{}
				for _, id := range regexp.MustCompile(`\sid="([^"]+)"`).FindAllStringSubmatch(page, -1) {
					if seen[id[1]] {
						t.Errorf("%s: id %q twice", path, id[1])
					}
					seen[id[1]] = true
				}
				// Every input is labelled.
				for _, in := range regexp.MustCompile(`<(?:input|select|textarea)[^>]*>`).FindAllString(page, -1) {
					if strings.Contains(in, `type="hidden"`) {
						continue
					}
					id := regexp.MustCompile(`id="([^"]+)"`).FindStringSubmatch(in)
					if id == nil || !strings.Contains(page, `for="`+id[1]+`"`) {
						t.Errorf("%s: an input without a label: %s", path, in)
					}
				}
				// Every form that posts carries the CSRF field.
				for _, f := range regexp.MustCompile(`(?s)<form[^>]*method="post".*?</form>`).FindAllString(page, -1) {
					if !strings.Contains(f, `name="csrf"`) {
						t.Errorf("%s: a form without csrf: %.200s", path, f)
					}
				}
				// The live re-read of the screen is its main element alone.
				frag := b.must(200, "/teams/"+tid+path+"?fragment=main")
				if !strings.HasPrefix(frag, `<main id="main"`) || strings.Contains(frag, "<html") {
					t.Errorf("%s fragment: %.100s", path, frag)
				}
			}
			// Activity: newest first.
			acts := b.must(200, "/teams/"+tid+"/activity")
			evIDs := regexp.MustCompile(`data-event-id="(\d+)"`).FindAllStringSubmatch(acts, -1)
			for i := 1; i < len(evIDs); i++ {
				if len(evIDs[i][1]) > len(evIDs[i-1][1]) || len(evIDs[i][1]) == len(evIDs[i-1][1]) && evIDs[i][1] > evIDs[i-1][1] {
					t.Fatalf("events not newest first: %v", evIDs)
				}
			}
			for _, a := range []string{"/static/app.js", "/static/app.css"} {
				if resp := b.get(a); resp.Status != 200 || len(resp.Body) < 100 {
					t.Errorf("%s = %d", a, resp.Status)
				}
			}
		})
	}
}

func TestWebSessionExpiryAndSignOut(t *testing.T) {
	for _, m := range Modes() {
		t.Run(m.Name, func(t *testing.T) {
			var a *app.App
			r := StartHooked(t, m, func(x *app.App) { a = x })
			tid := newTeam(r, "enterprise", "active")
			// The page's clock, moved by the test between requests.
			var offset atomic.Int64
			a.Web.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
			advance := func(d time.Duration) { offset.Add(int64(d)) }
			b := newBrowser(t, r)
			b.mustSignIn(AdminToken, "/teams")
			b.must(200, "/teams/"+tid)

			// Activity slides the session: 20 minutes, then 20 more.
			advance(20 * time.Minute)
			b.must(200, "/teams/"+tid)
			advance(20 * time.Minute)
			b.must(200, "/teams/"+tid)
			// 31 idle minutes end it.
			advance(31 * time.Minute)
			if resp := b.get("/teams/" + tid); resp.Status != 303 || !strings.HasPrefix(resp.Header.Get("Location"), "/signin") {
				t.Fatalf("after 31 idle minutes = %d %q, want 303 to /signin", resp.Status, resp.Header.Get("Location"))
			}
			// A POST of an ended session is refused, nothing changed.
			if resp := b.post("/teams/"+tid+"/settings/limit", url.Values{"mode": {"unlimited"}, "csrf": {"x"}}); resp.Status != 403 {
				t.Fatalf("POST with an ended session = %d, want 403", resp.Status)
			}
			// The absolute limit holds however active the session is.
			b.mustSignIn(AdminToken, "/teams")
			for range 25 {
				advance(29 * time.Minute)
				if resp := b.get("/teams/" + tid); resp.Status != 200 {
					break
				}
			}
			if resp := b.get("/teams/" + tid); resp.Status != 303 {
				t.Fatalf("after 12 hours of activity = %d, want 303 (expired)", resp.Status)
			}

			// Sign-out deletes the session: the old cookie is dead.
			b.mustSignIn(AdminToken, "/teams")
			old := b.cookie("roster_session")
			resp := b.submit("/teams/"+tid, "/signout", url.Values{})
			if resp.Status != 303 || resp.Header.Get("Location") != "/signin" {
				t.Fatalf("sign out = %s", resp)
			}
			if b.cookie("roster_session") != nil {
				t.Fatal("the session cookie is still set after sign-out")
			}
			replay := newBrowser(t, r)
			u, _ := url.Parse(r.URL)
			replay.jar.SetCookies(u, []*http.Cookie{old})
			if resp := replay.get("/teams/" + tid); resp.Status != 303 {
				t.Fatalf("the signed-out cookie = %d, want 303 to /signin", resp.Status)
			}
		})
	}
}

func TestWebLiveStream(t *testing.T) {
	for _, m := range Modes() {
		t.Run(m.Name, func(t *testing.T) {
			r := Start(t, m)
			d := r.NewSCIMTeam(5000)
			tid := d.TeamID
			addUsers(r, d, "early", 1)
			r.WaitRoster(tid, "early0@acme.test")
			b := newBrowser(t, r)
			if resp := b.get("/teams/" + tid + "/live"); resp.Status != 401 {
				t.Fatalf("live signed out = %d, want 401", resp.Status)
			}
			b.mustSignIn(AdminToken, "/teams")
			page := b.must(200, "/teams/"+tid+"/members")
			after := regexp.MustCompile(`data-after="(\d+)"`).FindStringSubmatch(page)
			if after == nil || after[1] == "0" {
				t.Fatalf("no data-after with the newest event id on the page")
			}
			// The API's newest-first listing agrees.
			latest := r.MustAdmin(200, "GET", "/teams/"+tid+"/events?latest=1", nil)
			if latest["next_cursor"] != after[1] || len(latest["events"].([]any)) != 1 {
				t.Fatalf("events?latest=1 = %v, page after %s", latest, after[1])
			}

			req, _ := http.NewRequest("GET", r.URL+"/teams/"+tid+"/live?after="+after[1], nil)
			resp, err := b.c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
				t.Fatalf("live = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			lines := make(chan string, 100)
			go func() {
				defer close(lines)
				buf := make([]byte, 4096)
				var rest string
				for {
					n, err := resp.Body.Read(buf)
					rest += string(buf[:n])
					for {
						i := strings.IndexByte(rest, '\n')
						if i < 0 {
							break
						}
						lines <- rest[:i]
						rest = rest[i+1:]
					}
					if err != nil {
						return
					}
				}
			}()
			addUsers(r, d, "late", 1)
			deadline := time.After(10 * time.Second)
			for {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatal("the stream ended")
					}
					if strings.HasPrefix(l, "event:") {
						t.Fatalf("a named event reached the page: %q", l)
					}
					if strings.HasPrefix(l, "data:") {
						if strings.Contains(l, "early0@") {
							t.Fatalf("the stream replayed an event from before the page: %s", l)
						}
						if strings.Contains(l, "late0@acme.test") {
							return
						}
					}
				case <-deadline:
					t.Fatal("no event for the new member within 10 s")
				}
			}
		})
	}
}

func TestWebWebhooks(t *testing.T) {
	for _, m := range Modes() {
		t.Run(m.Name, func(t *testing.T) {
			r := Start(t, m, func(c *config.Config) { c.Webhooks.AllowPrivateNetworks = true })
			tid := newTeam(r, "enterprise", "active")
			b := newBrowser(t, r)
			b.mustSignIn(AdminToken, "/teams")
			hooks := "/teams/" + tid + "/webhooks"
			resp := b.submit(hooks, hooks, url.Values{"url": {"not a url"}})
			if resp.Status != 400 || !strings.Contains(string(resp.Body), `id="error"`) {
				t.Fatalf("bad URL = %s, want 400 with #error", resp)
			}
			resp = b.submit(hooks, hooks, url.Values{"url": {"http://127.0.0.1:1/hook"}, "description": {"billing"}})
			if resp.Status != 303 {
				t.Fatalf("create = %s", resp)
			}
			page := b.must(200, hooks)
			secret := attrValue(page, "webhook-secret")
			if !strings.HasPrefix(secret, "whsec_") {
				t.Fatalf("no secret shown after create: %s", page)
			}
			contains(t, "webhooks", page, `class="webhook"`, `class="webhook-url">http://127.0.0.1:1/hook<`, `class="copy" data-copy-target="webhook-secret"`)
			if strings.Contains(b.must(200, hooks), secret) {
				t.Fatal("the webhook secret is shown twice")
			}
			id := regexp.MustCompile(`data-webhook-id="([^"]+)"`).FindStringSubmatch(page)[1]
			resp = b.submit(hooks, hooks+"/"+id+"/rotate", url.Values{})
			if resp.Status != 303 {
				t.Fatalf("rotate = %s", resp)
			}
			if s2 := attrValue(b.must(200, hooks), "webhook-secret"); !strings.HasPrefix(s2, "whsec_") || s2 == secret {
				t.Fatalf("rotated secret %q", s2)
			}
			if resp := b.submit(hooks, hooks+"/"+id+"/replay", url.Values{"after": {"0"}}); resp.Status != 303 {
				t.Fatalf("replay = %s", resp)
			}
			if resp := b.submit(hooks, hooks+"/"+id+"/enable", url.Values{}); resp.Status != 303 {
				t.Fatalf("enable = %s", resp)
			}
			if resp := b.submit(hooks, hooks+"/"+id+"/delete", url.Values{}); resp.Status != 303 {
				t.Fatalf("delete = %s", resp)
			}
			if n := len(r.MustAdmin(200, "GET", hooks, nil)["webhooks"].([]any)); n != 0 {
				t.Fatalf("%d webhooks after delete", n)
			}
		})
	}
}

// TestWebPolledDirectory sets up an Okta API directory with the wizard:
// the create answer is the connection test, a bad token is shown on the
// form, then test connection and preview from the directory's page.
func TestWebPolledDirectory(t *testing.T) {
	for _, m := range Modes() {
		t.Run(m.Name, func(t *testing.T) {
			r := Start(t, m)
			f := newOktaDir(t, fakeOpts{})
			c := newPollCase(t, r, f)
			c.user("ann", "Ann", "One")
			if f.settle != nil {
				f.settle()
			}
			tid := c.team
			b := newBrowser(t, r)
			b.mustSignIn(AdminToken, "/teams")
			setup := "/teams/" + tid + "/setup"
			form := url.Values{"type": {"okta"}, "okta.org_url": {f.settings["org_url"].(string)}, "okta.api_token": {"wrong-token"}, "okta.schedule": {"@every 1h"}}
			resp := b.submit(setup, "/teams/"+tid+"/directories", form)
			if resp.Status != 400 || !strings.Contains(string(resp.Body), `id="error"`) || strings.Contains(string(resp.Body), "wrong-token") {
				t.Fatalf("Okta with a wrong token = %s, want 400 with #error, the token not echoed", resp)
			}
			form.Set("okta.api_token", f.settings["api_token"].(string))
			resp = b.submit(setup, "/teams/"+tid+"/directories", form)
			if resp.Status != 303 {
				t.Fatalf("create Okta directory = %s", resp)
			}
			loc := resp.Header.Get("Location")
			c.dir = strings.TrimSuffix(strings.TrimPrefix(loc, "/teams/"+tid+"/directories/"), "/setup")
			page := b.must(200, loc)
			contains(t, "polled setup", page, `id="test-result"`, "connection test passed", `id="test-connection-form"`, `id="preview-form"`)
			lacks(t, "polled setup", page, f.settings["api_token"].(string))
			Eventually(t, 60*time.Second, "first sync", func() (bool, string) {
				st := c.state()
				return st["state"] == "ok" && st["last_sync_at"] != nil, fmt.Sprint(st["state"], " ", st["last_error"])
			})
			c.user("bob", "Bob", "Two")
			dir := "/teams/" + tid + "/directories/" + c.dir
			resp = b.submit(dir, dir+"/test", url.Values{})
			if resp.Status != 303 {
				t.Fatalf("test connection = %s", resp)
			}
			contains(t, "tested", b.must(200, resp.Header.Get("Location")), `id="test-result"`, "connection test passed")
			resp = b.submit(dir, dir+"/preview", url.Values{})
			if resp.Status != 303 {
				t.Fatalf("preview = %s", resp)
			}
			page = b.must(200, resp.Header.Get("Location"))
			contains(t, "preview", page, `id="preview-result"`, `class="would-add">1<`, `class="would-remove">0<`, `class="preview-addition">bob@`)
			if resp := b.submit(dir, dir+"/sync", url.Values{}); resp.Status != 303 {
				t.Fatalf("poll now = %s", resp)
			}
		})
	}
}

// TestWebTeamTokens: a team token made on the settings screen (shown once)
// signs in straight to its team and sees no other; deleting it ends its
// sessions.
func TestWebTeamTokens(t *testing.T) {
	for _, m := range Modes() {
		t.Run(m.Name, func(t *testing.T) {
			r := Start(t, m)
			tid := newTeam(r, "enterprise", "active")
			other := newTeam(r, "pro", "")
			op := newBrowser(t, r)
			op.mustSignIn(AdminToken, "/teams")
			settings := "/teams/" + tid + "/settings"
			resp := op.submit(settings, "/teams/"+tid+"/admin-tokens", url.Values{"name": {"Alice's laptop"}})
			if resp.Status != 303 {
				t.Fatalf("create token = %s", resp)
			}
			page := op.must(200, settings)
			token := attrValue(page, "admin-token")
			if !strings.HasPrefix(token, "rst_team_") {
				t.Fatalf("no team token shown: %s", page)
			}
			contains(t, "settings", page, `class="admin-token" data-token-id="`, `class="admin-token-name">Alice&#39;s laptop<`, `data-copy-target="admin-token"`)
			if strings.Contains(op.must(200, settings), token) {
				t.Fatal("the team token is shown twice")
			}
			tokID := regexp.MustCompile(`class="admin-token" data-token-id="([^"]+)"`).FindStringSubmatch(page)[1]

			tb := newBrowser(t, r)
			tb.mustSignIn(token, "/teams/"+tid)
			if resp := tb.get("/teams"); resp.Status != 303 || resp.Header.Get("Location") != "/teams/"+tid {
				t.Fatalf("team token GET /teams = %d %q, want 303 to its team", resp.Status, resp.Header.Get("Location"))
			}
			page = tb.must(200, "/teams/"+tid)
			lacks(t, "team page of a team token", page, "All teams", "Acme pro")
			for _, p := range []string{"/teams/" + other, "/teams/" + other + "/members", "/teams/" + other + "/settings"} {
				if resp := tb.get(p); resp.Status != 404 && resp.Status != 403 {
					t.Fatalf("team token on another team's %s = %d, want 404 or 403", p, resp.Status)
				} else if strings.Contains(string(resp.Body), "Acme pro") {
					t.Fatalf("another team's name leaked on %s", p)
				}
			}
			if resp := tb.submit("/teams/"+tid, "/teams/"+other+"/sso", url.Values{"status": {"active"}}); resp.Status != 404 && resp.Status != 403 {
				t.Fatalf("team token posting to another team = %d", resp.Status)
			}
			if got := r.MustAdmin(200, "GET", "/teams/"+other, nil)["sso"].(map[string]any)["status"]; got != "inactive" {
				t.Fatalf("other team's SSO = %v after a refused post", got)
			}
			// The operator deletes the token: the team session ends.
			if resp := op.submit(settings, "/teams/"+tid+"/admin-tokens/"+tokID+"/delete", url.Values{}); resp.Status != 303 {
				t.Fatalf("delete token = %s", resp)
			}
			if resp := tb.get("/teams/" + tid); resp.Status != 303 || !strings.HasPrefix(resp.Header.Get("Location"), "/signin") {
				t.Fatalf("after its token's deletion = %d %q, want 303 to /signin", resp.Status, resp.Header.Get("Location"))
			}
			if resp := tb.signIn(token); resp.Status != 401 {
				t.Fatalf("sign in with the deleted token = %d, want 401", resp.Status)
			}
		})
	}
}
