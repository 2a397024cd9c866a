package okta

import (
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/roster-dev/roster/connectors"
	"github.com/roster-dev/roster/connectors/okta/oktafake"
)

func ids(users []connectors.User) []string {
	var out []string
	for _, u := range users {
		out = append(out, u.ExternalID)
	}
	sort.Strings(out)
	return out
}

func sorted(s ...string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func TestAppScope(t *testing.T) {
	e := newEnv(t)
	uids, gids := smallDirectory(t, e.fake)
	app := e.fake.CreateApp("Roster")
	must(t, e.fake.AssignUser(app, uids[0]))
	must(t, e.fake.AssignUser(app, uids[1]))
	must(t, e.fake.AssignGroup(app, gids[2])) // users 2, 5, 8, ...
	must(t, e.fake.SuspendUser(uids[5]))
	e.clock.Advance(time.Hour)

	cfg := e.tokenConfig()
	cfg.AppID = app
	s := e.open(cfg)
	snap, cur := e.full(s)
	want := []string{uids[0], uids[1]}
	for i := 2; i < 30; i += 3 {
		want = append(want, uids[i])
	}
	if got := ids(snap.Users); !slices.Equal(got, sorted(want...)) {
		t.Fatalf("assigned users = %v, want %v", got, sorted(want...))
	}
	if u := userByID(snap.Users)[uids[5]]; u.Active {
		t.Errorf("suspended assigned user listed active")
	}
	if len(snap.Groups) != 3 {
		t.Errorf("groups = %d, want every group (their members outside the app are dropped by the poller)", len(snap.Groups))
	}
	if got := e.fake.Requests(oktafake.EndpointAppUsers); got != 1 {
		t.Errorf("app user requests = %d, want 1", got)
	}

	// A direct assignment, an unassignment, a deactivation (which removes
	// the assignment) and a member joining an assigned group.
	e.clock.Advance(time.Minute)
	must(t, e.fake.AssignUser(app, uids[3]))
	must(t, e.fake.UnassignUser(app, uids[1]))
	must(t, e.fake.DeactivateUser(uids[0]))
	must(t, e.fake.AddMember(gids[2], uids[4]))
	must(t, e.fake.UpdateUser(uids[9], oktafake.Profile{Login: "p09@example.com", Email: "p09@example.org"})) // not assigned
	e.clock.Advance(time.Minute)
	e.fake.ResetCounters()
	d, cur := e.changes(s, cur)
	du := userByID(d.Users)
	if _, ok := du[uids[3]]; !ok {
		t.Errorf("newly assigned user missing from %v", ids(d.Users))
	}
	if _, ok := du[uids[4]]; !ok {
		t.Errorf("user assigned through a group missing from %v", ids(d.Users))
	}
	if !slices.Equal(d.DeletedUsers, sorted(uids[0], uids[1], uids[9])) {
		t.Errorf("DeletedUsers = %v, want the unassigned, the deactivated and the never assigned user", d.DeletedUsers)
	}
	if d.Present != nil {
		t.Errorf("user assignments should not need a relisting")
	}
	t.Logf("app scope, 5 changes: %d requests", e.fake.TotalRequests())

	// A group assigned to the app: the app's user list is read again.
	e.clock.Advance(time.Minute)
	must(t, e.fake.AssignGroup(app, gids[1]))
	e.clock.Advance(time.Minute)
	d, _ = e.changes(s, cur)
	if d.Present == nil {
		t.Fatalf("group assignment: want a delta with Present")
	}
	for i := 1; i < 30; i += 3 {
		if _, ok := d.Present[uids[i]]; !ok && i != 1 {
			// uids[1] is in group 1 too, so assigned again.
			t.Errorf("user %d of the newly assigned group not present", i)
		}
	}
	if _, ok := d.Present[gids[0]]; !ok {
		t.Errorf("groups missing from Present")
	}
	if _, ok := d.Present[uids[0]]; ok {
		t.Errorf("deactivated user present")
	}
}

func TestGroupScope(t *testing.T) {
	e := newEnv(t)
	uids, gids := smallDirectory(t, e.fake)
	e.clock.Advance(time.Hour)
	cfg := e.tokenConfig()
	cfg.GroupIDs = []string{gids[0], gids[1]}
	s := e.open(cfg)
	snap, cur := e.full(s)
	if len(snap.Users) != 20 || len(snap.Groups) != 2 {
		t.Fatalf("group scope: %d users, %d groups; want 20 and 2", len(snap.Users), len(snap.Groups))
	}
	if _, ok := userByID(snap.Users)[uids[2]]; ok {
		t.Errorf("user of an unlisted group listed")
	}
	if e.fake.Requests(oktafake.EndpointUsers) != 0 {
		t.Errorf("group scope read the users listing; members come with their user objects")
	}

	e.clock.Advance(time.Minute)
	must(t, e.fake.AddMember(gids[0], uids[2]))
	must(t, e.fake.SuspendUser(uids[3]))
	outside := e.fake.AddUser(oktafake.Profile{Login: "x@example.com", Email: "x@example.com"})
	e.clock.Advance(time.Minute)
	d, next := e.changes(s, cur)
	if d.Present == nil {
		t.Fatalf("group scope delta without Present")
	}
	du := userByID(d.Users)
	if _, ok := du[uids[2]]; !ok {
		t.Errorf("user who joined a listed group missing")
	}
	if u := du[uids[3]]; u.ExternalID == "" || u.Active {
		t.Errorf("suspended member = %+v", u)
	}
	if _, ok := d.Present[outside]; ok {
		t.Errorf("user outside the groups is present")
	}
	if len(d.Present) != 21+2 {
		t.Errorf("Present holds %d ids, want 21 users and 2 groups", len(d.Present))
	}

	// A change to a group outside the scope costs one System Log request.
	e.clock.Advance(time.Minute)
	must(t, e.fake.RemoveMember(gids[2], uids[5]))
	e.clock.Advance(time.Minute)
	e.fake.ResetCounters()
	d, _ = e.changes(s, next)
	if len(d.Users)+len(d.Groups) != 0 || d.Present != nil {
		t.Errorf("delta for an unlisted group's change = %+v, want empty", d)
	}
	if got := e.fake.TotalRequests(); got != 1 {
		t.Errorf("requests = %d, want 1", got)
	}
}

func TestGroupRuleChanges(t *testing.T) {
	e := newEnv(t)
	uids, gids := smallDirectory(t, e.fake)
	all := e.fake.CreateGroup("Teams 0 and 1", "")
	_, err := e.fake.AddGroupRule(all, gids[0], gids[1])
	must(t, err)
	e.clock.Advance(time.Hour)
	s := e.open(e.tokenConfig())
	snap, cur := e.full(s)
	if g := groupByID(snap.Groups)[all]; len(g.Members) != 20 {
		t.Fatalf("rule group: %d members, want 20", len(g.Members))
	}
	e.clock.Advance(time.Minute)
	must(t, e.fake.AddMember(gids[0], uids[2]))
	e.clock.Advance(time.Minute)
	d, _ := e.changes(s, cur)
	g := groupByID(d.Groups)
	if r := g[all]; len(r.Members) != 21 || !slices.Contains(r.Members, uids[2]) {
		t.Errorf("rule group after a source group changed: %d members", len(r.Members))
	}
}
