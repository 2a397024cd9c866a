package msgraph_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/roster-dev/roster/connectors"
	"github.com/roster-dev/roster/connectors/msgraph"
	"github.com/roster-dev/roster/connectors/msgraph/msgraphfake"
)

// TestFullAndIncrementalLargeDirectory lists a 10,000-user, 500-group
// tenant, then follows ten changes of every kind in one incremental poll.
func TestFullAndIncrementalLargeDirectory(t *testing.T) {
	srv := newFake(t, msgraphfake.Options{Seed: 1})
	dir := populate(t, srv, 10000, 500)
	src := open(t, configFor(srv), nil, nil)

	start := time.Now()
	snap, cur := full(t, src)
	fullTime := time.Since(start)

	if got, want := len(snap.Users)+len(snap.Skipped), 10000; got != want {
		t.Fatalf("users listed + skipped = %d, want %d", got, want)
	}
	if got, want := len(snap.Skipped), len(dir.noMail); got != want {
		t.Errorf("skipped = %d, want %d (users without an address)", got, want)
	}
	users := byUser(snap.Users)
	inactive := 0
	for id, u := range users {
		if u.Active == dir.disabled[id] {
			t.Fatalf("user %s: Active = %v, disabled in the directory = %v", id, u.Active, dir.disabled[id])
		}
		if !u.Active {
			inactive++
		}
		if u.Email != strings.ToLower(u.Email) || !strings.HasSuffix(u.Email, "@contoso.com") {
			t.Fatalf("user %s: email %q, want the lower-cased mail", id, u.Email)
		}
	}
	if inactive == 0 {
		t.Fatal("no inactive user listed; disabled users must come back with Active false")
	}
	if len(snap.Groups) != 500 {
		t.Fatalf("groups = %d, want 500", len(snap.Groups))
	}
	groups := byGroup(snap.Groups)
	for _, gid := range dir.groups {
		g, ok := groups[gid]
		if !ok {
			t.Fatalf("group %s missing", gid)
		}
		if want := srv.Members(gid); !slices.Equal(g.Members, want) {
			t.Fatalf("group %s (%s): %d members, want %d", gid, g.Name, len(g.Members), len(want))
		}
	}
	for child, parent := range dir.nested {
		if !slices.Contains(groups[parent].Members, child) {
			t.Fatalf("nested group %s not a member of %s", child, parent)
		}
		if _, isUser := users[child]; isUser {
			t.Fatalf("nested group %s listed as a user", child)
		}
	}
	u := src.Usage()
	t.Logf("full listing of 10,000 users / 500 groups: %d Graph HTTP requests (users/delta %d, groups/delta %d), %d token requests, usage %+v, %s",
		srv.HTTPRequests(), srv.Count(msgraphfake.EndpointUsersDelta), srv.Count(msgraphfake.EndpointGroupsDelta),
		srv.Count(msgraphfake.EndpointToken), u, fullTime.Round(time.Millisecond))
	if u.Requests != int64(srv.HTTPRequests()+srv.Count(msgraphfake.EndpointToken)) {
		t.Errorf("Usage.Requests = %d, fake saw %d Graph + %d token requests", u.Requests, srv.HTTPRequests(), srv.Count(msgraphfake.EndpointToken))
	}
	if u.Pages != int64(srv.HTTPRequests()) || u.Items < 10000+500 {
		t.Errorf("usage %+v: want a page per request and at least every user and group counted", u)
	}

	// Ten changes: two new users (one put in a group), two renamed, two
	// disabled, one deleted, a member removed, a nested group added, and a
	// group renamed.
	srv.ResetCounts()
	g0, g1, g2 := dir.groups[0], dir.groups[1], dir.groups[2]
	newA := srv.AddUser(msgraphfake.User{DisplayName: "New A", Mail: "New.A@contoso.com", UserPrincipalName: "newa@contoso.onmicrosoft.com", AccountEnabled: true})
	newB := srv.AddUser(msgraphfake.User{DisplayName: "New B", Mail: "newb@contoso.com", AccountEnabled: true})
	must(t, srv.AddMember(g0, newA))
	must(t, srv.UpdateUser(dir.users[1], func(u *msgraphfake.User) { u.DisplayName = "Renamed One" }))
	must(t, srv.UpdateUser(dir.users[2], func(u *msgraphfake.User) { u.Mail = "Two.New@Contoso.com" }))
	must(t, srv.DisableUser(dir.users[3]))
	must(t, srv.DisableUser(dir.users[4]))
	must(t, srv.DeleteUser(dir.users[5]))
	removedMember := srv.Members(g2)[0]
	must(t, srv.RemoveMember(g2, removedMember))
	must(t, srv.AddMember(g1, dir.groups[3]))
	must(t, srv.RenameGroup(dir.groups[4], "Group Four"))

	before := src.Usage()
	start = time.Now()
	d, next := changes(t, src, cur)
	incTime := time.Since(start)
	after := src.Usage()
	t.Logf("incremental poll with 10 changes: %d Graph HTTP requests (%v), %d requests counted, %s",
		srv.HTTPRequests(), srv.Counts(), after.Requests-before.Requests, incTime.Round(time.Millisecond))
	if n := srv.HTTPRequests(); n > 3 {
		t.Errorf("incremental poll sent %d Graph requests, want at most 3", n)
	}
	if n := after.Requests - before.Requests; n > 3 {
		t.Errorf("incremental poll counted %d requests, want at most 3 (the token is cached)", n)
	}
	if incTime > 200*time.Millisecond {
		t.Logf("warning: incremental poll took %s (target 200 ms end to end on an idle machine)", incTime)
	}

	du := byUser(d.Users)
	if u, ok := du[newA]; !ok || u.Email != "new.a@contoso.com" || !u.Active {
		t.Errorf("new user A = %+v, %v", u, ok)
	}
	if _, ok := du[newB]; !ok {
		t.Errorf("new user B missing from %d upserts", len(d.Users))
	}
	if du[dir.users[1]].DisplayName != "Renamed One" {
		t.Errorf("renamed user = %+v", du[dir.users[1]])
	}
	if du[dir.users[2]].Email != "two.new@contoso.com" {
		t.Errorf("user with a new mail = %+v", du[dir.users[2]])
	}
	for _, id := range []string{dir.users[3], dir.users[4]} {
		if u, ok := du[id]; !ok || u.Active {
			t.Errorf("disabled user %s = %+v, %v; want Active false", id, u, ok)
		}
	}
	if !slices.Contains(d.DeletedUsers, dir.users[5]) {
		t.Errorf("DeletedUsers = %v, want %s", d.DeletedUsers, dir.users[5])
	}
	dg := byGroup(d.Groups)
	for _, gid := range []string{g0, g1, g2, dir.groups[4]} {
		g, ok := dg[gid]
		if !ok {
			t.Fatalf("changed group %s missing from the delta", gid)
		}
		if want := srv.Members(gid); !slices.Equal(g.Members, want) {
			t.Errorf("group %s: members %d, want the complete list of %d", gid, len(g.Members), len(want))
		}
		if g.Name == "" {
			t.Errorf("group %s has no name", gid)
		}
	}
	if !slices.Contains(dg[g0].Members, newA) || slices.Contains(dg[g2].Members, removedMember) || !slices.Contains(dg[g1].Members, dir.groups[3]) {
		t.Error("membership changes not in the re-read groups")
	}
	if dg[dir.groups[4]].Name != "Group Four" {
		t.Errorf("renamed group = %q", dg[dir.groups[4]].Name)
	}

	// Nothing changed: a poll costs two requests and lists nothing.
	srv.ResetCounts()
	d, next = changes(t, src, next)
	if len(d.Users)+len(d.Groups)+len(d.DeletedUsers)+len(d.DeletedGroups) != 0 {
		t.Errorf("idle poll delta = %+v", d)
	}
	if n := srv.HTTPRequests(); n != 2 {
		t.Errorf("idle poll sent %d requests, want 2", n)
	}

	// A change to a property roster does not select does not surface.
	must(t, srv.UpdateUser(dir.users[10], func(u *msgraphfake.User) { u.JobTitle = "Engineer"; u.Department = "R&D" }))
	d, next = changes(t, src, next)
	if len(d.Users) != 0 {
		t.Errorf("a jobTitle change surfaced %d users", len(d.Users))
	}

	// A deleted group and a user deleted for good (@removed "deleted"),
	// then a replayed round: the same answers again.
	must(t, srv.DeleteGroup(dir.groups[7]))
	must(t, srv.PurgeUser(dir.users[6]))
	srv.ReplayNextRound()
	d, next = changes(t, src, next)
	if !slices.Contains(d.DeletedGroups, dir.groups[7]) || !slices.Contains(d.DeletedUsers, dir.users[6]) {
		t.Errorf("DeletedGroups = %v, DeletedUsers = %v; want %s and %s", d.DeletedGroups, d.DeletedUsers, dir.groups[7], dir.users[6])
	}
	srv.ReplayNextRound()
	d2, _ := changes(t, src, next)
	if !slices.Contains(d2.DeletedGroups, dir.groups[7]) {
		t.Errorf("replayed round: DeletedGroups = %v, want the deletion again", d2.DeletedGroups)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestExpiredCursorIsResync(t *testing.T) {
	for _, tc := range []struct {
		name   string
		expire func(*msgraphfake.Server)
	}{
		{"syncStateNotFound", (*msgraphfake.Server).ExpireDeltaTokens},
		{"410 Gone", (*msgraphfake.Server).ResetSync},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFake(t, msgraphfake.Options{})
			populate(t, srv, 50, 5)
			src := open(t, configFor(srv), nil, nil)
			_, cur := full(t, src)
			tc.expire(srv)
			_, _, err := src.Changes(context.Background(), cur)
			if !errors.Is(err, connectors.ErrResync) {
				t.Fatalf("Changes after expiry: %v, want ErrResync", err)
			}
			// The full listing that follows works and gives a fresh cursor.
			_, cur = full(t, src)
			if _, _, err := src.Changes(context.Background(), cur); err != nil {
				t.Fatalf("Changes after the resync: %v", err)
			}
		})
	}
	t.Run("other settings", func(t *testing.T) {
		srv := newFake(t, msgraphfake.Options{})
		ids := populate(t, srv, 20, 3)
		src := open(t, configFor(srv), nil, nil)
		_, cur := full(t, src)
		cfg := configFor(srv)
		cfg.GroupIDs = []string{ids.groups[0]}
		scoped := open(t, cfg, nil, nil)
		if _, _, err := scoped.Changes(context.Background(), cur); !errors.Is(err, connectors.ErrResync) {
			t.Fatalf("a cursor made without group_ids: %v, want ErrResync", err)
		}
		if _, _, err := src.Changes(context.Background(), []byte(`{"v":99}`)); !errors.Is(err, connectors.ErrResync) {
			t.Fatalf("a foreign cursor: %v, want ErrResync", err)
		}
	})
}

func TestThrottlingMidListing(t *testing.T) {
	srv := newFake(t, msgraphfake.Options{})
	dir := populate(t, srv, 1500, 20)
	sl := &sleeps{}
	src := open(t, configFor(srv), sl, nil)
	srv.ThrottlePage(msgraphfake.EndpointUsersDelta, 3, 2, "7")
	srv.ThrottlePage(msgraphfake.EndpointGroupsDelta, 1, 1, "4")
	snap, cur := full(t, src)
	if len(snap.Users)+len(snap.Skipped) != 1500 {
		t.Fatalf("listed %d users after throttling, want 1500", len(snap.Users)+len(snap.Skipped))
	}
	u := src.Usage()
	if u.Throttled != 3 || u.Retries < 3 {
		t.Errorf("usage %+v: want 3 throttled answers, retried", u)
	}
	waits := sl.all()
	if !slices.Contains(waits, 7*time.Second) || !slices.Contains(waits, 4*time.Second) {
		t.Errorf("waits %v: want the Retry-After of 7s and 4s honoured", waits)
	}

	// Throttling inside a $batch: the throttled request is sent again after
	// its Retry-After.
	must(t, srv.AddMember(dir.groups[0], dir.users[1]))
	srv.ThrottlePage(msgraphfake.EndpointMembers, 1, 1, "3")
	d, _ := changes(t, src, cur)
	if g := byGroup(d.Groups)[dir.groups[0]]; !slices.Equal(g.Members, srv.Members(dir.groups[0])) {
		t.Errorf("group re-read after a throttled batch: %d members, want %d", len(g.Members), len(srv.Members(dir.groups[0])))
	}
	if src.Usage().Throttled != 4 || !slices.Contains(sl.all(), 3*time.Second) {
		t.Errorf("usage %+v, waits %v: want the inner 429 counted and its Retry-After honoured", src.Usage(), sl.all())
	}
}

func TestFailureMidListingReturnsNothing(t *testing.T) {
	for _, ep := range []string{msgraphfake.EndpointUsersDelta, msgraphfake.EndpointGroupsDelta} {
		t.Run(ep, func(t *testing.T) {
			srv := newFake(t, msgraphfake.Options{PageSize: 50, MembersPerFragment: 10})
			populate(t, srv, 400, 30)
			src := open(t, configFor(srv), nil, nil)
			srv.FailPage(ep, 2, -1)
			snap, cur, err := src.Full(context.Background())
			if err == nil || snap != nil || cur != nil {
				t.Fatalf("Full with a failing page = %v, %v, %v; want an error and nothing else", snap != nil, cur != nil, err)
			}
			var ge *msgraph.GraphError
			if !errors.As(err, &ge) || ge.Status != 500 || !ge.GaveUp {
				t.Errorf("error %v: want the 500 after retries", err)
			}
		})
	}
	t.Run("incremental", func(t *testing.T) {
		srv := newFake(t, msgraphfake.Options{})
		dir := populate(t, srv, 100, 5)
		src := open(t, configFor(srv), nil, nil)
		_, cur := full(t, src)
		must(t, srv.RemoveMember(dir.groups[1], srv.Members(dir.groups[1])[0]))
		srv.FailPage(msgraphfake.EndpointMembers, 1, -1)
		if d, next, err := src.Changes(context.Background(), cur); err == nil || d != nil || next != nil {
			t.Fatalf("Changes with a failing re-read = %v, %v, %v; want an error", d, next, err)
		}
		srv.ClearFaults()
		if _, _, err := src.Changes(context.Background(), cur); err != nil {
			t.Fatalf("the same cursor after the failure: %v", err)
		}
	})
}

func TestShortPageFailsThePoll(t *testing.T) {
	srv := newFake(t, msgraphfake.Options{})
	var us []msgraphfake.User
	for i := 0; i < 1200; i++ {
		us = append(us, msgraphfake.User{Mail: "u" + string(rune('a'+i%26)) + strings.Repeat("x", i%7) + "@contoso.com", AccountEnabled: true})
	}
	ids := srv.AddUsers(us)
	big, err := srv.AddGroup(msgraphfake.Group{DisplayName: "Everyone"}, ids[:1100]...)
	must(t, err)
	src := open(t, configFor(srv), nil, nil)
	_, cur := full(t, src)
	must(t, srv.AddMember(big, ids[1150]))
	srv.ShortPage(msgraphfake.EndpointMembers, 1)
	_, _, err = src.Changes(context.Background(), cur)
	if err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Fatalf("Changes with a short members page: %v; want an error saying the listing would be incomplete", err)
	}
	d, _ := changes(t, src, cur)
	if g := byGroup(d.Groups)[big]; len(g.Members) != 1101 {
		t.Fatalf("the same poll without the fault: %d members, want 1101", len(g.Members))
	}
}

func TestCheck(t *testing.T) {
	srv := newFake(t, msgraphfake.Options{})
	dir := populate(t, srv, 10, 2)
	if err := open(t, configFor(srv), nil, nil).Check(context.Background()); err != nil {
		t.Fatalf("Check with good settings: %v", err)
	}

	t.Run("bad secret", func(t *testing.T) {
		cfg := configFor(srv)
		cfg.ClientSecret = "not-the-secret-value"
		err := open(t, cfg, nil, nil).Check(context.Background())
		var ae *msgraph.AuthError
		if !errors.As(err, &ae) || ae.AADSTS != 7000215 {
			t.Fatalf("Check with a bad secret: %v; want AADSTS7000215", err)
		}
		if !strings.Contains(err.Error(), "client_secret is wrong") || strings.Contains(err.Error(), cfg.ClientSecret) {
			t.Errorf("error %q: want the fix named and the secret absent", err)
		}
	})
	t.Run("unknown client", func(t *testing.T) {
		cfg := configFor(srv)
		cfg.ClientID = "11111111-2222-3333-4444-555555555555"
		err := open(t, cfg, nil, nil).Check(context.Background())
		if err == nil || !strings.Contains(err.Error(), "client_id") {
			t.Fatalf("Check with an unknown client: %v", err)
		}
	})
	t.Run("unknown tenant", func(t *testing.T) {
		cfg := configFor(srv)
		cfg.TenantID = "contoso.example.com"
		err := open(t, cfg, nil, nil).Check(context.Background())
		if err == nil || !strings.Contains(err.Error(), "tenant_id") {
			t.Fatalf("Check with an unknown tenant: %v", err)
		}
	})
	for _, perm := range []string{msgraphfake.PermGroupMemberReadAll, msgraphfake.PermUserReadAll} {
		t.Run("missing "+perm, func(t *testing.T) {
			srv.RevokePermission(perm)
			defer srv.GrantPermission(perm)
			err := open(t, configFor(srv), nil, nil).Check(context.Background())
			if err == nil {
				t.Fatal("Check without a permission passed")
			}
			for _, want := range []string{"Authorization_RequestDenied", "GroupMember.Read.All", "User.Read.All", "admin consent", perm + " is missing"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
	t.Run("group_ids", func(t *testing.T) {
		cfg := configFor(srv)
		cfg.GroupIDs = []string{dir.groups[0], "99999999-9999-9999-9999-999999999999"}
		err := open(t, cfg, nil, nil).Check(context.Background())
		if err == nil || !strings.Contains(err.Error(), "99999999-9999-9999-9999-999999999999") || strings.Contains(err.Error(), dir.groups[0]) {
			t.Fatalf("Check with a missing group: %v; want only that group named", err)
		}
	})
}

func TestCertificateCredential(t *testing.T) {
	certPEM, keyPEM, cert, err := msgraphfake.NewCertificate("roster test")
	must(t, err)
	srv := newFake(t, msgraphfake.Options{Certificates: []*x509.Certificate{cert}})
	populate(t, srv, 30, 3)
	cfg := configFor(srv)
	cfg.ClientSecret = ""
	cfg.ClientCertificatePEM, cfg.ClientKeyPEM = certPEM, keyPEM
	src := open(t, cfg, nil, nil)
	if err := src.Check(context.Background()); err != nil {
		t.Fatalf("Check with a registered certificate: %v", err)
	}
	snap, _ := full(t, src)
	if len(snap.Users) == 0 {
		t.Fatal("no users with a certificate credential")
	}
	if a := srv.LastAssertion(); a == "" || strings.Contains(a, keyPEM) {
		t.Fatalf("assertion %q", a)
	}

	// A certificate the app does not have registered is refused, and the
	// error names the fix.
	otherCert, otherKey, _, err := msgraphfake.NewCertificate("not registered")
	must(t, err)
	cfg2 := *cfg
	cfg2.ClientCertificatePEM, cfg2.ClientKeyPEM = otherCert, otherKey
	err = open(t, &cfg2, nil, nil).Check(context.Background())
	var ae *msgraph.AuthError
	if !errors.As(err, &ae) || ae.AADSTS != 700027 || !strings.Contains(err.Error(), "Certificates & secrets") {
		t.Fatalf("Check with an unregistered certificate: %v; want AADSTS700027 and the fix", err)
	}
}

func TestTokenCachedAcrossSources(t *testing.T) {
	srv := newFake(t, msgraphfake.Options{})
	populate(t, srv, 10, 2)
	cfg := configFor(srv)
	_, cur := full(t, open(t, cfg, nil, nil))
	// The poller opens a source per poll: the token is not asked again.
	src := open(t, cfg, nil, nil)
	changes(t, src, cur)
	if n := srv.Count(msgraphfake.EndpointToken); n != 1 {
		t.Errorf("token requests = %d, want 1", n)
	}
	// A token Graph no longer takes is dropped and asked again, once.
	srv.RevokeTokens()
	src = open(t, cfg, nil, nil)
	changes(t, src, cur)
	if n := srv.Count(msgraphfake.EndpointToken); n != 2 {
		t.Errorf("token requests after a revocation = %d, want 2", n)
	}
}

func TestSecretsStayOutOfLogsAndErrors(t *testing.T) {
	srv := newFake(t, msgraphfake.Options{})
	populate(t, srv, 10, 2)
	var buf bytes.Buffer
	log := quietLog(&buf)
	cfg := configFor(srv)
	cfg.ClientSecret = "wrong-" + testSecret
	src := open(t, cfg, nil, log)
	err := src.Check(context.Background())
	if err == nil {
		t.Fatal("Check with a wrong secret passed")
	}
	_, _, ferr := src.Full(context.Background())
	log.Info("settings", "msgraph", *cfg, "err", err, "full", ferr)
	for _, s := range []string{err.Error(), ferr.Error(), buf.String()} {
		if strings.Contains(s, testSecret) {
			t.Fatalf("the secret leaked: %s", s)
		}
	}
}
