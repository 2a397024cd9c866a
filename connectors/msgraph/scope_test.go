package msgraph_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/roster-dev/roster/connectors/msgraph/msgraphfake"
)

// TestGroupScope: with group_ids only members of those groups, directly or
// through nested groups, are listed, and incremental polls follow people
// into and out of the scope.
func TestGroupScope(t *testing.T) {
	srv := newFake(t, msgraphfake.Options{})
	mk := func(name string) string {
		return srv.AddUser(msgraphfake.User{DisplayName: name, Mail: name + "@contoso.com", AccountEnabled: true})
	}
	ann, bob, cat, dan, eve := mk("ann"), mk("bob"), mk("cat"), mk("dan"), mk("eve")
	inner, err := srv.AddGroup(msgraphfake.Group{DisplayName: "Inner"}, cat)
	must(t, err)
	scoped, err := srv.AddGroup(msgraphfake.Group{DisplayName: "Roster users"}, ann, bob, inner)
	must(t, err)
	other, err := srv.AddGroup(msgraphfake.Group{DisplayName: "Other"}, dan, ann)
	must(t, err)

	cfg := configFor(srv)
	cfg.GroupIDs = []string{strings.ToUpper(scoped)}
	src := open(t, cfg, nil, nil)
	snap, cur := full(t, src)
	users := byUser(snap.Users)
	if len(users) != 3 || users[ann].Email == "" || users[bob].Email == "" || users[cat].Email == "" {
		t.Fatalf("scoped users = %v, want ann, bob and cat (through the nested group)", snap.Users)
	}
	groups := byGroup(snap.Groups)
	if len(groups) != 2 || !slices.Contains(groups[scoped].Members, inner) || groups[other].ExternalID != "" {
		t.Fatalf("scoped groups = %+v, want the scoped group and the nested one", snap.Groups)
	}

	// dan comes in through the nested group, bob leaves, ann is renamed
	// (she is also in Other, out of scope), eve (out of scope) changes.
	must(t, srv.AddMember(inner, dan))
	must(t, srv.RemoveMember(scoped, bob))
	must(t, srv.UpdateUser(ann, func(u *msgraphfake.User) { u.DisplayName = "Ann Lee" }))
	must(t, srv.UpdateUser(eve, func(u *msgraphfake.User) { u.DisplayName = "Eve Out" }))
	srv.ResetCounts()
	d, cur := changes(t, src, cur)
	du := byUser(d.Users)
	if _, ok := du[dan]; !ok {
		t.Errorf("dan joined the nested group but is not upserted: %+v", d.Users)
	}
	if du[ann].DisplayName != "Ann Lee" {
		t.Errorf("ann = %+v", du[ann])
	}
	if _, ok := du[eve]; ok {
		t.Error("eve, out of scope, was upserted")
	}
	if !slices.Contains(d.DeletedUsers, bob) {
		t.Errorf("DeletedUsers = %v, want bob, who left the scope", d.DeletedUsers)
	}
	dg := byGroup(d.Groups)
	if !slices.Equal(dg[inner].Members, sorted([]string{cat, dan})) || !slices.Equal(dg[scoped].Members, sorted([]string{ann, inner})) {
		t.Errorf("changed scope groups = %+v", d.Groups)
	}
	t.Logf("scoped incremental poll: %d Graph requests (%v)", srv.HTTPRequests(), srv.Counts())
	if d.Present != nil {
		t.Error("a membership change listed everything")
	}

	// A group joins the scope: everything is listed again, with Present.
	must(t, srv.AddMember(scoped, other))
	d, _ = changes(t, src, cur)
	if d.Present == nil {
		t.Fatal("a change of the scope's shape did not list everything")
	}
	du = byUser(d.Users)
	if _, ok := du[dan]; !ok || len(du) != 3 {
		t.Errorf("after Other joined: users %v, want ann, cat, dan", d.Users)
	}
	if _, ok := d.Present[other]; !ok {
		t.Error("Other not in Present")
	}

	// A scoped group that does not exist fails the listing.
	cfg.GroupIDs = []string{"99999999-9999-9999-9999-999999999999"}
	if _, _, err := open(t, cfg, nil, nil).Full(context.Background()); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("Full with a missing scoped group: %v", err)
	}
}
