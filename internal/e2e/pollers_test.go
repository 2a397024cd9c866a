package e2e

// End-to-end tests of the directory-API pollers (Google Workspace,
// Microsoft Graph, Okta): roster runs in-process on each engine, polls the
// provider's fake over loopback HTTP, and every step is checked through the
// admin API (members, groups, the directory's state, /metrics). One test
// body runs for all three providers through a small adapter per provider
// (fakeDir); the test keeps a model of what each fake holds, and the roster
// it expects follows from that model.

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roster-dev/roster/connectors/google/googlefake"
	"github.com/roster-dev/roster/connectors/msgraph/msgraphfake"
	"github.com/roster-dev/roster/connectors/okta/oktafake"
)

// ---- the model of a fake directory ----

// dirUser is a person of a fake directory as the test set them.
type dirUser struct {
	email, given, family string
	active               bool
}

func (u dirUser) name() string { return u.given + " " + u.family }

// dirGroup is a group of a fake directory: direct users and nested groups,
// by fake id.
type dirGroup struct {
	name   string
	users  map[string]bool
	groups map[string]bool
}

// model is what a fake directory holds.
type model struct {
	users  map[string]*dirUser
	groups map[string]*dirGroup
}

func newModel() *model {
	return &model{users: map[string]*dirUser{}, groups: map[string]*dirGroup{}}
}

func (m *model) clone() *model {
	out := newModel()
	for id, u := range m.users {
		cp := *u
		out.users[id] = &cp
	}
	for id, g := range m.groups {
		out.groups[id] = &dirGroup{name: g.name, users: maps.Clone(g.users), groups: maps.Clone(g.groups)}
	}
	return out
}

// reach adds to into every user group gid holds, directly or through
// nested groups.
func (m *model) reach(gid string, seen, into map[string]bool) {
	if seen[gid] {
		return
	}
	seen[gid] = true
	g := m.groups[gid]
	for u := range g.users {
		into[u] = true
	}
	for c := range g.groups {
		m.reach(c, seen, into)
	}
}

// roster is the roster the model says roster must show: active users, each
// in every group that holds them directly or through nesting, and each
// group with its count of such members.
func (m *model) roster() rosterView {
	v := rosterView{members: map[string]memberView{}, groups: map[string]int{}}
	in := map[string][]string{}
	for gid, g := range m.groups {
		reached := map[string]bool{}
		m.reach(gid, map[string]bool{}, reached)
		n := 0
		for uid := range reached {
			if u := m.users[uid]; u != nil && u.active {
				n++
				in[uid] = append(in[uid], g.name)
			}
		}
		v.groups[g.name] = n
	}
	for uid, u := range m.users {
		if !u.active {
			continue
		}
		gs := in[uid]
		sort.Strings(gs)
		v.members[u.email] = memberView{name: u.name(), groups: gs}
	}
	return v
}

// rosterView is a team's roster as the admin API shows it.
type rosterView struct {
	members map[string]memberView // by email
	groups  map[string]int        // group name → member_count
}

type memberView struct {
	id, name string
	groups   []string // names, sorted
}

// diff says how got differs from want ("" when it does not); member ids
// are not compared.
func (want rosterView) diff(got rosterView) string {
	var out []string
	for e, w := range want.members {
		g, ok := got.members[e]
		switch {
		case !ok:
			out = append(out, "missing member "+e)
		case g.name != w.name:
			out = append(out, fmt.Sprintf("%s: name %q, want %q", e, g.name, w.name))
		case !slices.Equal(g.groups, w.groups):
			out = append(out, fmt.Sprintf("%s: groups %v, want %v", e, g.groups, w.groups))
		}
	}
	for e := range got.members {
		if _, ok := want.members[e]; !ok {
			out = append(out, "unexpected member "+e)
		}
	}
	for n, w := range want.groups {
		if g, ok := got.groups[n]; !ok {
			out = append(out, "missing group "+n)
		} else if g != w {
			out = append(out, fmt.Sprintf("group %s: member_count %d, want %d", n, g, w))
		}
	}
	for n := range got.groups {
		if _, ok := want.groups[n]; !ok {
			out = append(out, "unexpected group "+n)
		}
	}
	sort.Strings(out)
	if len(out) > 8 {
		out = append(out[:8], fmt.Sprintf("... and %d more", len(out)-8))
	}
	return strings.Join(out, "; ")
}

// rosterOf reads a team's whole roster.
func (r *Roster) rosterOf(team string) rosterView {
	r.T.Helper()
	v := rosterView{members: map[string]memberView{}, groups: map[string]int{}}
	for _, m := range r.Members(team) {
		mv := memberView{id: fmt.Sprint(m["id"]), name: fmt.Sprint(m["name"])}
		for _, g := range m["groups"].([]any) {
			mv.groups = append(mv.groups, fmt.Sprint(g.(map[string]any)["name"]))
		}
		sort.Strings(mv.groups)
		v.members[fmt.Sprint(m["email"])] = mv
	}
	cursor := ""
	for {
		page := r.MustAdmin(200, "GET", "/teams/"+team+"/groups?limit=500&cursor="+url.QueryEscape(cursor), nil)
		for _, g := range page["groups"].([]any) {
			gm := g.(map[string]any)
			v.groups[fmt.Sprint(gm["name"])] = int(gm["member_count"].(float64))
		}
		cursor, _ = page["next_cursor"].(string)
		if cursor == "" {
			return v
		}
	}
}

// ---- one provider's fake, behind the same few operations ----

// fakeDir is one provider's fake directory, driven through operations
// every provider has, so that one test body runs for all of them.
type fakeDir struct {
	typ      string         // the directory type: google, msgraph, okta
	settings map[string]any // what a directory needs to reach the fake
	secrets  []string       // strings no answer may show
	// bigN is how many members one group needs for a short page to be
	// told from a last page: more than the connector's page size of the
	// listing the fault hits.
	bigN int

	addUser      func(u dirUser) string
	updateUser   func(id string, u dirUser)
	disable      func(id string)
	deleteUser   func(id string)
	addGroup     func(name string) string
	addMember    func(group, user string)
	removeMember func(group, user string)
	nest         func(parent, child string)

	// expiries are the ways an incremental cursor stops working; none for
	// Google, which has no cursor.
	expiries []expiry
	// throttle makes the next poll meet rate limiting in the middle of its
	// listing, answered with a short Retry-After. group is a group whose
	// members the poll reads, after which the poll has at least three
	// renamed users to read.
	throttle func(group string)
	// fail500 makes the next poll's listing fail for good on a page after
	// the first with HTTP 500; shortPage makes it get a short page.
	// shortErr is what the poll's error then says. big is a group of bigN
	// members (or more) that the poll re-reads.
	fail500     func(big string)
	shortPage   func(big string)
	shortErr    string
	clearFaults func()
	// badSecret returns settings with a wrong credential, the wrong value
	// (which no answer may show) and what the 400 must say.
	badSecret func() (patch map[string]any, wrong, fix string)
	// revoke takes away a permission the connector needs and returns what
	// the 400 must name, and how to give it back.
	revoke func() (fix string, restore func())
	// requests counts the API requests the fake got (token requests
	// included where tokens are fetched); resetCounts zeroes the counts.
	requests    func() int
	resetCounts func()
	// settle is called once the fake's directory is set up, before roster
	// first lists it.
	settle func()
	// pre are the users every fake directory starts with (Google's admin).
	pre map[string]dirUser
}

type expiry struct {
	name string
	do   func()
}

type fakeOpts struct {
	pageSize int // Microsoft Graph delta page size; 0: the fake's default
}

type provider struct {
	name string
	new  func(t *testing.T, o fakeOpts) *fakeDir
}

func pollerProviders() []provider {
	return []provider{
		{"google", newGoogleDir},
		{"msgraph", newGraphDir},
		{"okta", newOktaDir},
	}
}

// RSA keys are slow to make on a busy machine: the tests share two.
var (
	pollKeysOnce            sync.Once
	pollKey, pollOtherKey   *rsa.PrivateKey
	errPollKeys             error
	googleServiceAccountPEM = regexp.MustCompile(`-----BEGIN PRIVATE KEY-----\\n([A-Za-z0-9+/=]{40})`)
)

func pollKeys(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	t.Helper()
	pollKeysOnce.Do(func() {
		if pollKey, errPollKeys = rsa.GenerateKey(rand.Reader, 2048); errPollKeys != nil {
			return
		}
		pollOtherKey, errPollKeys = rsa.GenerateKey(rand.Reader, 2048)
	})
	if errPollKeys != nil {
		t.Fatalf("generate keys: %v", errPollKeys)
	}
	return pollKey, pollOtherKey
}

func newGoogleDir(t *testing.T, _ fakeOpts) *fakeDir {
	key, other := pollKeys(t)
	f := googlefake.New(googlefake.Options{Key: key})
	t.Cleanup(f.Close)
	keyFile := f.ServiceAccountJSON()
	m := googleServiceAccountPEM.FindStringSubmatch(keyFile)
	if m == nil {
		t.Fatalf("no private key in the fake's key file")
	}
	d := &fakeDir{
		typ: "google",
		settings: map[string]any{
			"service_account_json": keyFile, "admin_email": f.Admin(), "api_url": f.URL, "token_url": f.TokenURL,
		},
		secrets: []string{m[1]},
		// members.list pages hold 200.
		bigN: 250,
		pre:  map[string]dirUser{"(admin)": {email: f.Admin(), given: "Directory", family: "Admin", active: true}},
	}
	d.addUser = func(u dirUser) string {
		return f.AddUser(googlefake.User{PrimaryEmail: u.email, GivenName: u.given, FamilyName: u.family}).ID
	}
	d.updateUser = func(id string, u dirUser) {
		f.UpdateUser(id, func(g *googlefake.User) {
			g.PrimaryEmail, g.GivenName, g.FamilyName, g.FullName = u.email, u.given, u.family, ""
		})
	}
	d.disable = func(id string) { f.SuspendUser(id, true) }
	d.deleteUser = f.DeleteUser
	d.addGroup = func(name string) string {
		slug := strings.ToLower(strings.ReplaceAll(name, " ", "-"))
		return f.AddGroup(googlefake.Group{Name: name, Email: slug + "@" + f.Domain()}).ID
	}
	d.addMember = f.AddMember
	d.removeMember = f.RemoveMember
	d.nest = f.AddMember
	d.throttle = func(group string) {
		f.Inject(googlefake.Fault{Endpoint: googlefake.EndpointMembersList, Group: group, Kind: googlefake.RateLimitUser, RetryAfter: time.Second})
		f.Inject(googlefake.Fault{Endpoint: googlefake.EndpointMembersList, Group: group, Kind: googlefake.RateLimit429, RetryAfter: time.Second})
	}
	d.fail500 = func(big string) {
		f.Inject(googlefake.Fault{Endpoint: googlefake.EndpointMembersList, Group: big, Page: 2, Count: 1000, Kind: googlefake.ServerError})
	}
	d.shortPage = func(big string) {
		f.Inject(googlefake.Fault{Endpoint: googlefake.EndpointMembersList, Group: big, Page: 1, Kind: googlefake.ShortPage})
	}
	d.shortErr = "short page"
	d.clearFaults = f.ClearFaults
	d.badSecret = func() (map[string]any, string, string) {
		// A key of the same service account that Google no longer has (it
		// was deleted in the Cloud console).
		wrong := googlefake.KeyJSON(f.ClientEmail(), f.ClientID(), "0d1e2a3d4b5e", other, f.TokenURL)
		pm := googleServiceAccountPEM.FindStringSubmatch(wrong)
		if pm == nil {
			t.Fatalf("no private key in the other key file")
		}
		return map[string]any{"service_account_json": wrong}, pm[1], "create a new JSON key"
	}
	d.revoke = func() (string, func()) {
		f.Delegate(googlefake.ScopeUserReadonly)
		return googlefake.ScopeGroupReadonly, func() {
			f.Delegate(googlefake.ScopeUserReadonly, googlefake.ScopeGroupReadonly, googlefake.ScopeGroupMemberReadonly)
		}
	}
	d.requests = func() int { return f.Requests() }
	d.resetCounts = f.ResetCounts
	return d
}

const graphTestSecret = "Gr4ph~Secret.Value_For-E2E-0123456789"

func newGraphDir(t *testing.T, o fakeOpts) *fakeDir {
	f := msgraphfake.New(msgraphfake.Options{ClientSecret: graphTestSecret, PageSize: o.pageSize})
	t.Cleanup(f.Close)
	d := &fakeDir{
		typ: "msgraph",
		settings: map[string]any{
			"tenant_id": f.TenantID, "client_id": f.ClientID, "client_secret": graphTestSecret,
			"graph_url": f.URL, "login_url": f.LoginURL,
		},
		secrets: []string{graphTestSecret},
		// A group's members are re-read 999 a page, and only there can a
		// short page be told from the last one: Graph's delta pages vary
		// in size.
		bigN: 1000,
	}
	must := func(err error) {
		if err != nil {
			t.Fatalf("msgraphfake: %v", err)
		}
	}
	d.addUser = func(u dirUser) string {
		local, _, _ := strings.Cut(u.email, "@")
		return f.AddUser(msgraphfake.User{DisplayName: u.name(), GivenName: u.given, Surname: u.family, Mail: u.email,
			UserPrincipalName: local + "@contoso.onmicrosoft.com", AccountEnabled: true})
	}
	d.updateUser = func(id string, u dirUser) {
		must(f.UpdateUser(id, func(g *msgraphfake.User) {
			if g.Mail != u.email {
				g.Mail = u.email
			}
			if g.DisplayName != u.name() {
				g.DisplayName, g.GivenName, g.Surname = u.name(), u.given, u.family
			}
		}))
	}
	d.disable = func(id string) { must(f.DisableUser(id)) }
	d.deleteUser = func(id string) { must(f.DeleteUser(id)) }
	d.addGroup = func(name string) string {
		id, err := f.AddGroup(msgraphfake.Group{DisplayName: name})
		must(err)
		return id
	}
	d.addMember = func(g, u string) { must(f.AddMember(g, u)) }
	d.removeMember = func(g, u string) { must(f.RemoveMember(g, u)) }
	d.nest = d.addMember
	d.expiries = []expiry{
		{"syncStateNotFound", f.ExpireDeltaTokens},
		{"410 Gone", f.ResetSync},
	}
	d.throttle = func(string) {
		// The second page of the users round: its first holds two of the
		// renamed users (the fake's page size is 2 here).
		f.ThrottlePage(msgraphfake.EndpointUsersDelta, 2, 1, "1")
	}
	d.fail500 = func(string) {
		// The expired delta link costs one users/delta request; the full
		// listing's first page is the second, so the third is its second.
		f.ExpireDeltaTokens()
		f.FailPage(msgraphfake.EndpointUsersDelta, 3, -1)
	}
	d.shortPage = func(string) { f.ShortPage(msgraphfake.EndpointMembers, 1) }
	d.shortErr = "with a next link"
	d.clearFaults = f.ClearFaults
	d.badSecret = func() (map[string]any, string, string) {
		wrong := "Wr0ng~Secret.Value_For-E2E-9876543210"
		return map[string]any{"client_secret": wrong}, wrong, "client_secret is wrong"
	}
	d.revoke = func() (string, func()) {
		f.RevokePermission(msgraphfake.PermGroupMemberReadAll)
		return msgraphfake.PermGroupMemberReadAll, func() { f.GrantPermission(msgraphfake.PermGroupMemberReadAll) }
	}
	d.requests = func() int { return f.HTTPRequests() + f.Count(msgraphfake.EndpointToken) }
	d.resetCounts = f.ResetCounts
	return d
}

const oktaTestToken = "00E2eOktaApiToken0123456789abcdefghijklmn"

func newOktaDir(t *testing.T, _ fakeOpts) *fakeDir {
	// The fake's clock runs ahead once the directory is set up, as if it
	// had been set up long before roster connected: a first incremental
	// poll then reads the System Log from shortly before roster's first
	// listing, not the whole set-up.
	var ahead atomic.Int64
	f := oktafake.New(oktafake.WithClock(func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }))
	t.Cleanup(f.Close)
	f.AddAPIToken(oktaTestToken, oktafake.ReadOnlyAdmin)
	d := &fakeDir{
		typ:      "okta",
		settings: map[string]any{"org_url": f.URL, "api_token": oktaTestToken},
		secrets:  []string{oktaTestToken},
		// users pages hold 200.
		bigN:   250,
		settle: func() { ahead.Store(int64(10 * time.Minute)) },
	}
	must := func(err error) {
		if err != nil {
			t.Fatalf("oktafake: %v", err)
		}
	}
	profile := func(u dirUser) oktafake.Profile {
		return oktafake.Profile{Login: u.email, Email: u.email, FirstName: u.given, LastName: u.family, DisplayName: u.name()}
	}
	d.addUser = func(u dirUser) string { return f.AddUser(profile(u)) }
	d.updateUser = func(id string, u dirUser) { must(f.UpdateUser(id, profile(u))) }
	d.disable = func(id string) { must(f.SuspendUser(id)) }
	d.deleteUser = func(id string) { must(f.DeleteUser(id)) }
	d.addGroup = func(name string) string { return f.CreateGroup(name, "") }
	d.addMember = func(g, u string) { must(f.AddMember(g, u)) }
	d.removeMember = func(g, u string) { must(f.RemoveMember(g, u)) }
	// Okta groups do not hold groups; a group rule that puts one group's
	// members into another is how an Okta org nests them.
	d.nest = func(parent, child string) {
		_, err := f.AddGroupRule(parent, child)
		must(err)
	}
	d.expiries = []expiry{{"System Log cursor expired", f.ExpireLogCursors}}
	d.throttle = func(string) {
		// The re-read of the renamed users, after the System Log page.
		f.ThrottlePage(oktafake.EndpointUsers, 1, time.Second)
	}
	d.fail500 = func(string) {
		f.ExpireLogCursors()
		f.FailPage(oktafake.EndpointUsers, 2, -1)
	}
	d.shortPage = func(string) {
		f.ExpireLogCursors()
		f.ShortPage(oktafake.EndpointUsers, 1)
	}
	d.shortErr = "short page"
	d.clearFaults = f.ClearFaults
	d.badSecret = func() (map[string]any, string, string) {
		wrong := "00WrongOktaApiToken9876543210zyxwvutsrqpon"
		return map[string]any{"api_token": wrong}, wrong, "create a new API token"
	}
	d.revoke = func() (string, func()) {
		f.SetAPITokenPermissions(oktaTestToken, oktafake.Permissions{Users: true, Apps: true, Logs: true})
		return "Read-only Administrator", func() { f.SetAPITokenPermissions(oktaTestToken, oktafake.ReadOnlyAdmin) }
	}
	d.requests = f.TotalRequests
	d.resetCounts = f.ResetCounters
	return d
}

// ---- a directory of a fake, polled by roster ----

// pollCase is one polled directory under test: a fake, the test's model
// of it, and roster's team and directory reading it.
type pollCase struct {
	t          *testing.T
	r          *Roster
	f          *fakeDir
	m          *model
	team, dir  string
	seq        int
	lastSyncAt any
}

func newPollCase(t *testing.T, r *Roster, f *fakeDir) *pollCase {
	c := &pollCase{t: t, r: r, f: f, m: newModel()}
	for id, u := range f.pre {
		c.m.users[id] = &u
	}
	tm := r.MustAdmin(201, "POST", "/teams", map[string]any{"name": "Corp " + f.typ, "plan": "enterprise",
		"default_spend_limit": map[string]any{"per_user_cents": 2000}})
	c.team = tm["id"].(string)
	r.MustAdmin(200, "PUT", "/teams/"+c.team+"/sso", map[string]any{"status": "active", "provider": "okta"})
	return c
}

// user adds an active user to the fake, in the given groups.
func (c *pollCase) user(local, given, family string, groups ...string) string {
	c.t.Helper()
	u := dirUser{email: local + "@example.com", given: given, family: family, active: true}
	id := c.f.addUser(u)
	c.m.users[id] = &u
	for _, g := range groups {
		c.add(g, id)
	}
	return id
}

// users adds n users named prefix0001... to the fake and returns their ids.
func (c *pollCase) users(prefix string, n int, groups ...string) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = c.user(fmt.Sprintf("%s%04d", prefix, i), "Person", fmt.Sprintf("%s%04d", strings.ToUpper(prefix[:1])+prefix[1:], i), groups...)
	}
	return ids
}

func (c *pollCase) group(name string, members ...string) string {
	c.t.Helper()
	id := c.f.addGroup(name)
	c.m.groups[id] = &dirGroup{name: name, users: map[string]bool{}, groups: map[string]bool{}}
	for _, u := range members {
		c.add(id, u)
	}
	return id
}

func (c *pollCase) add(group, user string) {
	c.f.addMember(group, user)
	c.m.groups[group].users[user] = true
}

func (c *pollCase) remove(group, user string) {
	c.f.removeMember(group, user)
	delete(c.m.groups[group].users, user)
}

func (c *pollCase) nest(parent, child string) {
	c.f.nest(parent, child)
	c.m.groups[parent].groups[child] = true
}

// rename changes a user's name and, when email is not empty, their email.
func (c *pollCase) rename(id, local, given, family string) {
	u := *c.m.users[id]
	if local != "" {
		u.email = local + "@example.com"
	}
	u.given, u.family = given, family
	c.f.updateUser(id, u)
	c.m.users[id] = &u
}

func (c *pollCase) disable(id string) {
	c.f.disable(id)
	c.m.users[id].active = false
}

func (c *pollCase) deleteUser(id string) {
	c.f.deleteUser(id)
	delete(c.m.users, id)
	for _, g := range c.m.groups {
		delete(g.users, id)
	}
}

// settings are the fake's settings with an hourly schedule (so only the
// test's requests poll) and the deletion guard given.
func (c *pollCase) settings(guard map[string]any, patch map[string]any) map[string]any {
	s := maps.Clone(c.f.settings)
	s["schedule"] = "@every 1h"
	if guard != nil {
		s["deletion_guard"] = guard
	}
	maps.Copy(s, patch)
	return s
}

// create makes the directory and waits for its first sync.
func (c *pollCase) create(guard map[string]any) {
	c.t.Helper()
	if c.f.settle != nil {
		c.f.settle()
	}
	resp := c.r.Admin("POST", "/teams/"+c.team+"/directories", map[string]any{"type": c.f.typ, c.f.typ: c.settings(guard, nil)})
	if resp.Status != 201 {
		c.t.Fatalf("create %s directory = %s", c.f.typ, resp)
	}
	c.noSecret("create answer", resp.String())
	c.dir = resp.JSON()["id"].(string)
	Eventually(c.t, 60*time.Second, "first sync", func() (bool, string) {
		st := c.state()
		return st["state"] == "ok" && st["last_sync_at"] != nil, fmt.Sprint(st["state"], " ", st["last_error"])
	})
	c.lastSyncAt = c.state()["last_sync_at"]
}

func (c *pollCase) path(suffix string) string {
	return "/teams/" + c.team + "/directories/" + c.dir + suffix
}

func (c *pollCase) state() map[string]any {
	c.t.Helper()
	return c.r.MustAdmin(200, "GET", c.path(""), nil)
}

// poll asks for a poll now and waits for it to end: for "ok" the sync
// time moves, for "error" the error says errHas, for "needs_review" the
// guard holds it.
func (c *pollCase) poll(want, errHas string) map[string]any {
	c.t.Helper()
	c.seq++
	before := c.state()
	c.r.MustAdmin(202, "POST", c.path("/sync"), nil)
	var st map[string]any
	Eventually(c.t, 60*time.Second, fmt.Sprintf("poll %d ending in state %s", c.seq, want), func() (bool, string) {
		st = c.state()
		got := fmt.Sprintf("state %v, last_error %v", st["state"], st["last_error"])
		if st["state"] != want {
			return false, got
		}
		switch want {
		case "ok":
			return fmt.Sprint(st["last_sync_at"]) != fmt.Sprint(before["last_sync_at"]), got
		case "error":
			return strings.Contains(fmt.Sprint(st["last_error"]), errHas), got
		}
		return true, got
	})
	c.noSecret("directory state", fmt.Sprint(st))
	c.lastSyncAt = st["last_sync_at"]
	return st
}

// check waits until the roster is what the model says and returns it.
func (c *pollCase) check(what string) rosterView {
	c.t.Helper()
	want := c.m.roster()
	var got rosterView
	deadline := time.Now().Add(30 * time.Second)
	for {
		got = c.r.rosterOf(c.team)
		d := want.diff(got)
		if d == "" {
			return got
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: the roster is not what the %s directory holds after 30s: %s", what, c.f.typ, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// unchanged checks that the roster is still what m says, for a while.
func (c *pollCase) unchanged(what string, m *model) {
	c.t.Helper()
	want := m.roster()
	for i := 0; i < 4; i++ {
		if d := want.diff(c.r.rosterOf(c.team)); d != "" {
			c.t.Fatalf("%s: the roster changed: %s", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// noSecret fails when s shows any of the fake's secrets.
func (c *pollCase) noSecret(what, s string) {
	c.t.Helper()
	for _, sec := range c.f.secrets {
		if strings.Contains(s, sec) {
			c.t.Fatalf("%s shows a secret of the %s directory: %.300s", what, c.f.typ, s)
		}
	}
}

// noSecrets reads every answer about the directory and the team that
// could carry its settings and checks none shows a secret.
func (c *pollCase) noSecrets() {
	c.t.Helper()
	c.noSecret("GET directory", c.r.Admin("GET", c.path(""), nil).String())
	c.noSecret("GET directories", c.r.Admin("GET", "/teams/"+c.team+"/directories", nil).String())
	c.noSecret("events", c.r.Admin("GET", "/teams/"+c.team+"/events?limit=1000", nil).String())
	c.noSecret("members", c.r.Admin("GET", "/teams/"+c.team+"/members?limit=500", nil).String())
}

func (c *pollCase) metric(name string, labels ...string) float64 {
	return c.r.metric(name, append([]string{"directory_type", c.f.typ}, labels...)...)
}

// concurrently runs fn for each name as subtests of t at the same time,
// whatever -parallel says: they spend their time waiting for polls,
// retries and Retry-After.
func concurrently(t *testing.T, names []string, fn func(t *testing.T, i int)) {
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(name, func(t *testing.T) { fn(t, i) })
		}()
	}
	wg.Wait()
}

// ---- the scenarios ----

type pollScenario struct {
	name string
	opts fakeOpts
	run  func(c *pollCase)
}

func pollScenarios() []pollScenario {
	return []pollScenario{
		{"lifecycle", fakeOpts{pageSize: 2}, pollLifecycle},
		{"failure", fakeOpts{}, pollFailure},
		{"guard", fakeOpts{pageSize: 2}, pollGuard},
		{"connection", fakeOpts{pageSize: 2}, pollConnection},
	}
}

// TestPollers runs every scenario for every provider on every engine, each
// with a fake, a team and a roster of its own.
func TestPollers(t *testing.T) {
	t.Parallel()
	modes, providers, scenarios := Modes(), pollerProviders(), pollScenarios()
	concurrently(t, []string{modes[0].Name, modes[1].Name}, func(t *testing.T, mi int) {
		names := make([]string, len(providers))
		for i, p := range providers {
			names[i] = p.name
		}
		concurrently(t, names, func(t *testing.T, pi int) {
			names := make([]string, len(scenarios))
			for i, s := range scenarios {
				names[i] = s.name
			}
			concurrently(t, names, func(t *testing.T, si int) {
				sc := scenarios[si]
				r := Start(t, modes[mi])
				sc.run(newPollCase(t, r, providers[pi].new(t, sc.opts)))
			})
		})
	})
}

// smallDirectory builds the directory most scenarios start from: six
// people, Engineering holding ann and bob and the nested Platform (cat),
// and Sales (dan).
func (c *pollCase) smallDirectory() (ids map[string]string, eng, platform, sales string) {
	ids = map[string]string{}
	for _, n := range []string{"ann", "bob", "cat", "dan", "eve", "fay"} {
		ids[n] = c.user(n, strings.ToUpper(n[:1])+n[1:], "Tester")
	}
	eng = c.group("Engineering", ids["ann"], ids["bob"])
	platform = c.group("Platform", ids["cat"])
	c.nest(eng, platform)
	sales = c.group("Sales", ids["dan"])
	return ids, eng, platform, sales
}

var pollGuardSettings = map[string]any{"max_removals": 3, "max_fraction": 0.5}

// pollLifecycle: a first full sync, then one poll for each kind of change,
// an expired cursor, throttling mid-listing, and a preview.
func pollLifecycle(c *pollCase) {
	t := c.t
	ids, eng, platform, sales := c.smallDirectory()
	c.create(pollGuardSettings)
	got := c.check("first sync")
	if cat := got.members["cat@example.com"]; !slices.Equal(cat.groups, []string{"Engineering", "Platform"}) {
		t.Fatalf("cat, in Platform nested in Engineering, is in %v", cat.groups)
	}
	annID := got.members["ann@example.com"].id

	// Add.
	ids["gus"] = c.user("gus", "Gus", "Tester", sales)
	c.poll("ok", "")
	c.check("a user added")

	// Update: name and email; the member keeps their id.
	c.rename(ids["ann"], "ann.lee", "Ann", "Lee")
	c.poll("ok", "")
	got = c.check("a user renamed")
	if id := got.members["ann.lee@example.com"].id; id != annID {
		t.Fatalf("ann's member id changed with her email: %s, was %s", id, annID)
	}

	// Disable: the account stays, the member leaves.
	c.disable(ids["bob"])
	c.poll("ok", "")
	c.check("a user disabled")

	// Delete.
	c.deleteUser(ids["eve"])
	c.poll("ok", "")
	c.check("a user deleted")

	// Membership: dan joins Platform (so Engineering, through nesting),
	// cat leaves it.
	c.add(platform, ids["dan"])
	c.remove(platform, ids["cat"])
	c.poll("ok", "")
	got = c.check("memberships changed")
	if dan := got.members["dan@example.com"]; !slices.Equal(dan.groups, []string{"Engineering", "Platform", "Sales"}) {
		t.Fatalf("dan is in %v", dan.groups)
	}

	// An expired cursor: the next poll lists everything, and so also
	// finds what changed meanwhile. Google has no cursor to expire: every
	// poll of it lists the directory in full.
	if len(c.f.expiries) == 0 {
		t.Logf("%s: no incremental cursor, so no expiry to test: every poll lists in full", c.f.typ)
	}
	for i, e := range c.f.expiries {
		full := c.metric("roster_polls_total", "kind", "full", "result", "ok")
		ids[fmt.Sprint("new", i)] = c.user(fmt.Sprint("new", i), "New", fmt.Sprint("Hire", i), eng)
		if i == 0 {
			c.deleteUser(ids["fay"])
		} else {
			c.rename(ids["gus"], "", "Gus", "Renamed")
		}
		e.do()
		c.poll("ok", "")
		c.check("after " + e.name)
		if n := c.metric("roster_polls_total", "kind", "full", "result", "ok"); n != full+1 {
			t.Fatalf("after %s: full polls went from %v to %v, want one more", e.name, full, n)
		}
		// And the cursor it left works: the next poll is incremental.
		c.rename(ids["dan"], "", "Dan", fmt.Sprint("After", i))
		c.poll("ok", "")
		c.check("incremental after " + e.name)
		if n := c.metric("roster_polls_total", "kind", "full", "result", "ok"); n != full+1 {
			t.Fatalf("the poll after a resync listed in full again (full polls %v, want %v)", n, full+1)
		}
	}

	// Throttling mid-listing: the poll waits as told and completes.
	throttled := c.metric("roster_poll_throttled_total")
	c.rename(ids["ann"], "", "Ann", "Throttled")
	c.rename(ids["cat"], "", "Cat", "Throttled")
	c.rename(ids["dan"], "", "Dan", "Throttled")
	c.f.throttle(eng)
	c.poll("ok", "")
	c.check("a throttled poll")
	if n := c.metric("roster_poll_throttled_total"); n <= throttled {
		t.Fatalf("roster_poll_throttled_total{directory_type=%q} = %v, was %v: the throttling was not counted", c.f.typ, n, throttled)
	}

	// Preview: what the next poll would do, applied nowhere.
	before := c.m.clone()
	c.user("ivy", "Ivy", "Tester", sales)
	c.deleteUser(ids["gus"])
	c.rename(ids["dan"], "", "Dan", "Previewed")
	resp := c.r.Admin("POST", c.path("/preview"), nil)
	if resp.Status != 200 {
		t.Fatalf("preview = %s", resp)
	}
	c.noSecret("preview", resp.String())
	like(t, "preview", resp.JSON(), `{"would_add": 1, "would_remove": 1, "would_update": 1, "held": false,
		"sample": {"add": [{"email": "ivy@example.com", "name": "Ivy Tester"}], "remove": [{"email": "gus@example.com"}],
		"update": [{"email": "dan@example.com", "name": "Dan Previewed"}]}}`)
	c.unchanged("after a preview", before)
	if st := c.state(); fmt.Sprint(st["last_sync_at"]) != fmt.Sprint(c.lastSyncAt) || st["state"] != "ok" {
		t.Fatalf("a preview changed the directory's state: %v", st)
	}
	// The preview took nothing from the cursor: the next poll finds it all.
	c.poll("ok", "")
	c.check("the poll after a preview")

	c.noSecrets()
}

// pollFailure: a listing that fails on a later page, and one that gets a
// short page, change nothing; the next good poll applies everything.
func pollFailure(c *pollCase) {
	t := c.t
	people := c.users("p", c.f.bigN)
	big := c.group("Everyone Big", people...)
	c.create(nil)
	c.check("first sync")
	// A poll that finds nothing new, so that the incremental sources have
	// a cursor to expire.
	c.poll("ok", "")

	// A page answered 500 however often it is asked for.
	before := c.m.clone()
	c.user("late1", "Late", "One", big)
	c.rename(people[0], "", "Person", "Renamed0")
	c.f.fail500(big)
	st := c.poll("error", "500")
	t.Logf("%s: a listing failing on a later page: %v", c.f.typ, st["last_error"])
	c.unchanged("after a failed poll", before)
	c.f.clearFaults()
	c.poll("ok", "")
	c.check("the poll after the failure")
	c.poll("ok", "")

	// A short page: fewer entries than asked, with a next link.
	before = c.m.clone()
	c.user("late2", "Late", "Two", big)
	c.rename(people[1], "", "Person", "Renamed1")
	c.f.shortPage(big)
	st = c.poll("error", c.f.shortErr)
	t.Logf("%s: a short page: %v", c.f.typ, st["last_error"])
	c.unchanged("after a short page", before)
	c.f.clearFaults()
	c.poll("ok", "")
	c.check("the poll after the short page")
}

// pollGuard: a poll that would remove most members is held until approved.
func pollGuard(c *pollCase) {
	t := c.t
	ids, _, _, _ := c.smallDirectory()
	c.create(pollGuardSettings)
	c.check("first sync")
	before := c.m.clone()
	active := len(before.roster().members)
	for _, n := range []string{"ann", "bob", "cat", "dan", "eve"} {
		c.deleteUser(ids[n])
	}
	st := c.poll("needs_review", "")
	c.unchanged("a held poll", before)
	like(t, "review", st["review"], fmt.Sprintf(`{"would_remove": 5, "active_before": %d, "max_removals": 3}`, active))
	events := c.r.MustAdmin(200, "GET", "/teams/"+c.team+"/events?limit=1000", nil)["events"].([]any)
	held := 0
	for _, e := range events {
		e := e.(map[string]any)
		if e["type"] == "directory.needs_review" && e["data"].(map[string]any)["directory_id"] == c.dir {
			held++
		}
	}
	if held != 1 {
		t.Fatalf("%d directory.needs_review events, want 1", held)
	}
	// Held again: still held, still unchanged, no second event.
	c.poll("needs_review", "")
	c.unchanged("a poll held again", before)

	c.r.MustAdmin(202, "POST", c.path("/approve"), nil)
	Eventually(t, 60*time.Second, "the approved poll", func() (bool, string) {
		st = c.state()
		return st["state"] == "ok", fmt.Sprint(st["state"], " ", st["last_error"])
	})
	c.check("the approved poll")
	if st["review"] != nil {
		t.Fatalf("review after approval = %v", st["review"])
	}
	// Below the limits, a removal goes through.
	c.deleteUser(ids["fay"])
	c.poll("ok", "")
	c.check("a removal below the limits")
}

// pollConnection: the test connection on create and on PATCH, secrets kept
// and never shown, and the operator's list of teams.
func pollConnection(c *pollCase) {
	t := c.t
	dirs := "/teams/" + c.team + "/directories"
	patch, wrong, fix := c.f.badSecret()
	resp := c.r.Admin("POST", dirs, map[string]any{"type": c.f.typ, c.f.typ: c.settings(nil, patch)})
	if resp.Status != 400 || !strings.Contains(resp.String(), fix) {
		t.Fatalf("create with a bad secret = %s, want 400 saying %q", resp, fix)
	}
	if strings.Contains(resp.String(), wrong) {
		t.Fatalf("the 400 shows the secret it was given: %s", resp)
	}
	c.noSecret("a 400", resp.String())

	perm, restore := c.f.revoke()
	resp = c.r.Admin("POST", dirs, map[string]any{"type": c.f.typ, c.f.typ: c.settings(nil, nil)})
	if resp.Status != 400 || !strings.Contains(resp.String(), perm) {
		t.Fatalf("create without a permission = %s, want 400 naming %q", resp, perm)
	}
	c.noSecret("a 400", resp.String())
	restore()
	if n := len(c.r.MustAdmin(200, "GET", dirs, nil)["directories"].([]any)); n != 0 {
		t.Fatalf("refused creates left %d directories", n)
	}

	ids, _, _, sales := c.smallDirectory()
	c.create(nil)
	c.check("first sync")
	stored := c.state()[c.f.typ]

	resp = c.r.Admin("PATCH", c.path(""), map[string]any{c.f.typ: patch})
	if resp.Status != 400 || !strings.Contains(resp.String(), fix) || strings.Contains(resp.String(), wrong) {
		t.Fatalf("PATCH with a bad secret = %s, want 400 saying %q", resp, fix)
	}
	if now := c.state()[c.f.typ]; fmt.Sprint(now) != fmt.Sprint(stored) {
		t.Fatalf("a refused PATCH changed the settings: %v, were %v", now, stored)
	}
	c.user("kim", "Kim", "Tester", sales)
	c.poll("ok", "")
	c.check("a poll after a refused PATCH")

	// Leaving the secret out keeps it.
	resp = c.r.Admin("PATCH", c.path(""), map[string]any{c.f.typ: map[string]any{"schedule": "@every 2h"}})
	if resp.Status != 200 {
		t.Fatalf("PATCH without the secret = %s", resp)
	}
	c.noSecret("PATCH answer", resp.String())
	if s := resp.JSON()[c.f.typ].(map[string]any)["schedule"]; s != "@every 2h" {
		t.Fatalf("schedule after PATCH = %v", s)
	}
	c.rename(ids["ann"], "", "Ann", "Patched")
	c.poll("ok", "")
	c.check("a poll after a PATCH that left the secret out")

	c.noSecrets()

	teams := c.r.MustAdmin(200, "GET", "/teams", nil)["teams"].([]any)
	found := false
	for _, tm := range teams {
		found = found || tm.(map[string]any)["id"] == c.team
	}
	if !found {
		t.Fatalf("GET /teams = %v, without team %s", teams, c.team)
	}
}

// ---- a large directory ----

const (
	largeUsers  = 10000
	largeGroups = 500
)

// TestPollerLarge syncs a 10,000-user, 500-group directory of each
// provider's fake into the roster on each engine, then follows rounds of 10
// changes, and logs what each poll cost (for docs/PERFORMANCE.md).
// It runs alone, not beside the other tests, so that its times mean
// something.
func TestPollerLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("a 10,000-user directory per provider and engine; runs without -short")
	}
	for _, m := range Modes() {
		for _, p := range pollerProviders() {
			t.Run(m.Name+"/"+p.name, func(t *testing.T) {
				r := Start(t, m)
				pollLarge(newPollCase(t, r, p.new(t, fakeOpts{})))
			})
		}
	}
}

func pollLarge(c *pollCase) {
	t := c.t
	groups := make([]string, largeGroups)
	for g := range groups {
		groups[g] = c.group(fmt.Sprintf("Group %03d", g))
	}
	people := make([]string, largeUsers)
	for i := range people {
		people[i] = c.user(fmt.Sprintf("u%05d", i), "User", fmt.Sprintf("N%05d", i), groups[i%largeGroups], groups[(i*7+3)%largeGroups])
	}
	for g := 0; g+1 < largeGroups; g += 50 {
		c.nest(groups[g], groups[g+1])
	}
	want := len(c.m.roster().members)

	c.f.resetCounts()
	polled := c.metric("roster_poll_duration_seconds_sum")
	sent := c.metric("roster_poll_requests_total")
	start := time.Now()
	c.create(nil)
	c.waitCount(want)
	e2e := time.Since(start)
	t.Logf("%s full sync of %d users, %d groups: poll %v, to the roster %v; requests: %v by roster's count, %d at the fake (with the test connection)",
		c.f.typ, largeUsers, largeGroups, c.since("roster_poll_duration_seconds_sum", polled), e2e.Round(time.Millisecond),
		c.metric("roster_poll_requests_total")-sent, c.f.requests())
	c.check("the full sync")

	for round := 0; round < 3; round++ {
		i := round * 10
		// Ten changes: four renames (two with a new email), two disabled,
		// one deleted, one new person in a group, one person joining a
		// group and one leaving one.
		c.rename(people[i], fmt.Sprintf("renamed%d-0", round), "Renamed", "Zero")
		c.rename(people[i+1], fmt.Sprintf("renamed%d-1", round), "Renamed", "One")
		c.rename(people[i+2], "", "Renamed", fmt.Sprint("Two", round))
		c.rename(people[i+3], "", "Renamed", fmt.Sprint("Three", round))
		c.disable(people[i+4])
		c.disable(people[i+5])
		c.deleteUser(people[i+6])
		newcomer := c.user(fmt.Sprintf("new%d", round), "New", fmt.Sprint("Hire", round), groups[round])
		c.add(groups[250+round], people[i+7])
		c.remove(groups[(i+8)%largeGroups], people[i+8])
		want = len(c.m.roster().members)
		renamed := c.m.users[people[i]].email

		c.f.resetCounts()
		polled, sent = c.metric("roster_poll_duration_seconds_sum"), c.metric("roster_poll_requests_total")
		start = time.Now()
		c.r.MustAdmin(202, "POST", c.path("/sync"), nil)
		c.waitEmails(c.m.users[newcomer].email, renamed)
		e2e = time.Since(start)
		c.waitCount(want)
		reqs := c.f.requests()
		t.Logf("%s incremental poll with 10 changes (round %d): poll %v, to the roster %v; requests: %v by roster's count, %d at the fake",
			c.f.typ, round+1, c.since("roster_poll_duration_seconds_sum", polled), e2e.Round(time.Millisecond),
			c.metric("roster_poll_requests_total")-sent, reqs)
		if c.f.typ == "msgraph" && reqs > 3 {
			t.Errorf("msgraph: an incremental poll with 10 changes sent %d requests, want at most 3 (users/delta, groups/delta, one $batch)", reqs)
		}
	}
	c.check("after the incremental polls")
}

// since is how much a metric grew since it read from.
func (c *pollCase) since(name string, from float64) time.Duration {
	return time.Duration((c.metric(name) - from) * float64(time.Second)).Round(time.Millisecond)
}

// waitCount waits until the directory's roster holds n members with
// nothing left to reconcile.
func (c *pollCase) waitCount(n int) {
	c.t.Helper()
	Eventually(c.t, 120*time.Second, fmt.Sprintf("%d members", n), func() (bool, string) {
		st := c.state()
		return int(st["members"].(float64)) == n && st["pending_changes"].(float64) == 0,
			fmt.Sprintf("%v members, %v pending, state %v", st["members"], st["pending_changes"], st["state"])
	})
}

// waitEmails waits until each of emails is a member, asking as cheaply as
// the API allows, so that the wait adds little to what it measures.
func (c *pollCase) waitEmails(emails ...string) {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for _, e := range emails {
		for {
			page := c.r.MustAdmin(200, "GET", "/teams/"+c.team+"/members?limit=1&email="+url.QueryEscape(e), nil)
			if len(page["members"].([]any)) == 1 {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("%s is not a member after 60s", e)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}
