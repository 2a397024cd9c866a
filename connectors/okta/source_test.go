package okta

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/roster-dev/roster/connectors"
	"github.com/roster-dev/roster/connectors/okta/oktafake"
)

// bigDirectory fills the fake with users and groups: user i is in groups
// i%groups and (i*7+3)%groups, the first group also holds every user (so its
// member list takes several pages), every 97th user is SUSPENDED and every
// 101st DEPROVISIONED. It returns the ids in creation order.
func bigDirectory(t *testing.T, f *oktafake.Server, users, groups int) (uids, gids []string) {
	t.Helper()
	for g := 0; g < groups; g++ {
		gids = append(gids, f.CreateGroup(fmt.Sprintf("Group %03d", g), "test group"))
	}
	for i := 0; i < users; i++ {
		status := oktafake.StatusActive
		if i%97 == 5 {
			status = oktafake.StatusSuspended
		}
		id := f.AddUserWithStatus(oktafake.Profile{
			Login: fmt.Sprintf("user%05d@example.com", i), Email: fmt.Sprintf("User%05d@Example.com", i),
			FirstName: "User", LastName: fmt.Sprintf("%05d", i),
		}, status)
		uids = append(uids, id)
		for _, g := range []int{0, i % groups, (i*7 + 3) % groups} {
			if err := f.AddMember(gids[g], id); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < users; i += 101 {
		if err := f.DeactivateUser(uids[i]); err != nil {
			t.Fatal(err)
		}
	}
	return uids, gids
}

func TestFullLargeDirectory(t *testing.T) {
	e := newEnv(t)
	const nUsers, nGroups = 10000, 500
	uids, gids := bigDirectory(t, e.fake, nUsers, nGroups)
	// Okta has no nested groups; a group rule is what admins use instead,
	// and its members are listed as users of the rule's group.
	ruleGroup := e.fake.CreateGroup("Groups 1 and 2", "rule")
	if _, err := e.fake.AddGroupRule(ruleGroup, gids[1], gids[2]); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	e.fake.ResetCounters()

	s := e.open(e.tokenConfig())
	start := time.Now()
	snap, cur := e.full(s)
	elapsed := time.Since(start)

	deprovisioned, suspended := 0, 0
	for i := range uids {
		switch {
		case i%101 == 0:
			deprovisioned++
		case i%97 == 5:
			suspended++
		}
	}
	if got, want := len(snap.Users), nUsers-deprovisioned; got != want {
		t.Fatalf("users = %d, want %d (DEPROVISIONED users are not listed)", got, want)
	}
	byID := userByID(snap.Users)
	inactive := 0
	for i, id := range uids {
		u, ok := byID[id]
		if i%101 == 0 {
			if ok {
				t.Fatalf("DEPROVISIONED user %d listed", i)
			}
			continue
		}
		if !ok {
			t.Fatalf("user %d (%s) missing", i, id)
		}
		if want := fmt.Sprintf("user%05d@example.com", i); u.Email != want {
			t.Fatalf("user %d email = %q, want %q (lower-cased)", i, u.Email, want)
		}
		if u.Active != (i%97 != 5) {
			t.Fatalf("user %d Active = %v, status %v", i, u.Active, u.Attrs["status"])
		}
		if !u.Active {
			inactive++
		}
	}
	if inactive != suspended {
		t.Errorf("inactive users = %d, want the %d SUSPENDED ones", inactive, suspended)
	}
	if got, want := len(snap.Groups), nGroups+1; got != want {
		t.Fatalf("groups = %d, want %d (Everyone left out)", got, want)
	}
	gs := groupByID(snap.Groups)
	if all := gs[gids[0]]; len(all.Members) != nUsers || all.Name != "Group 000" {
		t.Errorf("group 0: %d members, name %q; want every one of %d users", len(all.Members), all.Name, nUsers)
	}
	for _, g := range []int{1, 2, 77, 499} {
		want := map[string]bool{}
		for i, id := range uids {
			if i%nGroups == g || (i*7+3)%nGroups == g {
				want[id] = true
			}
		}
		got := gs[gids[g]].Members
		if len(got) != len(want) {
			t.Fatalf("group %d: %d members, want %d", g, len(got), len(want))
		}
		for _, m := range got {
			if !want[m] {
				t.Fatalf("group %d lists %s, not a member", g, m)
			}
		}
	}
	rule := gs[ruleGroup]
	union := map[string]bool{}
	for _, g := range []string{gids[1], gids[2]} {
		for _, m := range gs[g].Members {
			union[m] = true
		}
	}
	if len(rule.Members) != len(union) {
		t.Errorf("rule group: %d members, want the %d members of its source groups", len(rule.Members), len(union))
	}
	for _, g := range snap.Groups {
		for _, m := range g.Members {
			if strings.HasPrefix(m, "00g") {
				t.Fatalf("group %s lists group %s as a member", g.ExternalID, m)
			}
		}
	}

	// Requests: users 200 a page, groups 200 a page, members 1,000 a page.
	memberPages := 0
	for _, g := range snap.Groups {
		memberPages += max(1, (len(g.Members)+membersPageSize-1)/membersPageSize)
	}
	// DEPROVISIONED users are not in the listing; Everyone is not asked for.
	wantUsers := (len(snap.Users) + usersPageSize - 1) / usersPageSize
	wantGroups := (len(snap.Groups) + groupsPageSize - 1) / groupsPageSize
	if got := e.fake.Requests(oktafake.EndpointUsers); got != wantUsers {
		t.Errorf("users requests = %d, want %d", got, wantUsers)
	}
	if got := e.fake.Requests(oktafake.EndpointGroups); got != wantGroups {
		t.Errorf("groups requests = %d, want %d", got, wantGroups)
	}
	if got := e.fake.Requests(oktafake.EndpointGroupUsers); got != memberPages {
		t.Errorf("group member requests = %d, want %d", got, memberPages)
	}
	total := e.fake.TotalRequests()
	u := s.Usage()
	if u.Requests != int64(total) || u.Pages != int64(total) || u.Throttled != 0 || u.Retries != 0 {
		t.Errorf("Usage() = %+v, want %d requests and pages, no throttling or retries", u, total)
	}
	t.Logf("full listing of %d users / %d groups: %d requests (users %d, groups %d, members %d), %d items, %v",
		len(snap.Users), len(snap.Groups), total, e.fake.Requests(oktafake.EndpointUsers), e.fake.Requests(oktafake.EndpointGroups),
		e.fake.Requests(oktafake.EndpointGroupUsers), u.Items, elapsed.Round(time.Millisecond))

	// Ten changes, then one incremental poll.
	e.clock.Advance(time.Minute)
	f := e.fake
	newUser := f.AddUser(oktafake.Profile{Login: "new@example.com", Email: "New@Example.com", FirstName: "New", LastName: "Hire"})
	must(t, f.AddMember(gids[10], newUser))
	must(t, f.UpdateUser(uids[1], oktafake.Profile{Login: "user00001@example.com", Email: "renamed@example.com", FirstName: "Re", LastName: "Named"}))
	must(t, f.SuspendUser(uids[2]))
	must(t, f.DeactivateUser(uids[3]))
	must(t, f.DeleteUser(uids[4]))
	must(t, f.RemoveMember(gids[11], uids[11]))
	must(t, f.AddMember(gids[12], uids[13]))
	must(t, f.RenameGroup(gids[13], "Group 013 renamed"))
	must(t, f.DeleteGroup(gids[14]))
	e.clock.Advance(time.Minute)
	f.ResetCounters()
	before := s.Usage()
	start = time.Now()
	d, _ := e.changes(s, cur)
	elapsed = time.Since(start)
	du := userByID(d.Users)
	if u := du[newUser]; !u.Active || u.Email != "new@example.com" {
		t.Errorf("new user = %+v", u)
	}
	if u := du[uids[1]]; u.Email != "renamed@example.com" || u.DisplayName != "Re Named" {
		t.Errorf("updated user = %+v", u)
	}
	if du[uids[2]].Active || du[uids[3]].Active || du[uids[2]].ExternalID == "" || du[uids[3]].ExternalID == "" {
		t.Errorf("suspended / deactivated users = %+v / %+v, want both listed inactive", du[uids[2]], du[uids[3]])
	}
	if !slices.Equal(d.DeletedUsers, []string{uids[4]}) || !slices.Equal(d.DeletedGroups, []string{gids[14]}) {
		t.Errorf("deleted users %v groups %v, want [%s] [%s]", d.DeletedUsers, d.DeletedGroups, uids[4], gids[14])
	}
	dg := groupByID(d.Groups)
	if !slices.Contains(dg[gids[10]].Members, newUser) || slices.Contains(dg[gids[11]].Members, uids[11]) ||
		!slices.Contains(dg[gids[12]].Members, uids[13]) || dg[gids[13]].Name != "Group 013 renamed" {
		t.Errorf("changed groups: %+v", d.Groups)
	}
	inc := f.TotalRequests()
	t.Logf("incremental poll with 10 changes: %d requests (logs %d, users %d, groups %d, members %d), %v",
		inc, f.Requests(oktafake.EndpointLogs), f.Requests(oktafake.EndpointUsers), f.Requests(oktafake.EndpointGroups),
		f.Requests(oktafake.EndpointGroupUsers), elapsed.Round(time.Millisecond))
	if got := s.Usage().Requests - before.Requests; got != int64(inc) {
		t.Errorf("Usage requests grew by %d, the fake saw %d", got, inc)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// smallDirectory makes 30 users and 3 groups; user i is in group i%3.
func smallDirectory(t *testing.T, f *oktafake.Server) (uids, gids []string) {
	t.Helper()
	for g := 0; g < 3; g++ {
		gids = append(gids, f.CreateGroup(fmt.Sprintf("Team %d", g), ""))
	}
	for i := 0; i < 30; i++ {
		id := f.AddUser(oktafake.Profile{Login: fmt.Sprintf("p%02d@example.com", i), Email: fmt.Sprintf("P%02d@example.com", i), FirstName: "P", LastName: fmt.Sprint(i)})
		uids = append(uids, id)
		must(t, f.AddMember(gids[i%3], id))
	}
	return uids, gids
}

func TestIncrementalChanges(t *testing.T) {
	e := newEnv(t)
	uids, gids := smallDirectory(t, e.fake)
	e.clock.Advance(time.Hour)
	s := e.open(e.tokenConfig())
	snap, cur := e.full(s)
	if len(snap.Users) != 30 || len(snap.Groups) != 3 {
		t.Fatalf("full: %d users %d groups", len(snap.Users), len(snap.Groups))
	}

	// Nothing changed: one System Log request, an empty delta.
	e.clock.Advance(5 * time.Minute)
	e.fake.ResetCounters()
	d, cur := e.changes(s, cur)
	if len(d.Users)+len(d.Groups)+len(d.DeletedUsers)+len(d.DeletedGroups) != 0 || d.Present != nil {
		t.Errorf("quiet poll delta = %+v, want empty", d)
	}
	if got := e.fake.TotalRequests(); got != 1 {
		t.Errorf("quiet poll: %d requests, want 1", got)
	}

	steps := []struct {
		name   string
		change func()
		check  func(d *connectors.Delta) error
	}{
		{"add", func() {
			id := e.fake.AddUser(oktafake.Profile{Login: "new@example.com", Email: "NEW@example.com", FirstName: "N", LastName: "U"})
			must(t, e.fake.AddMember(gids[0], id))
			uids = append(uids, id)
		}, func(d *connectors.Delta) error {
			u := userByID(d.Users)[uids[30]]
			if !u.Active || u.Email != "new@example.com" {
				return fmt.Errorf("new user %+v", u)
			}
			if g := groupByID(d.Groups)[gids[0]]; len(g.Members) != 11 || !slices.Contains(g.Members, uids[30]) {
				return fmt.Errorf("group 0 = %+v, want its 11 members", g)
			}
			return nil
		}},
		{"update", func() {
			must(t, e.fake.UpdateUser(uids[5], oktafake.Profile{Login: "p05@example.com", Email: "p05.new@example.com", FirstName: "Pat", LastName: "Five", DisplayName: "Pat 5"}))
		}, func(d *connectors.Delta) error {
			if u := userByID(d.Users)[uids[5]]; u.Email != "p05.new@example.com" || u.DisplayName != "Pat 5" || u.GivenName != "Pat" {
				return fmt.Errorf("updated user %+v", u)
			}
			if len(d.Users) != 1 || len(d.Groups) != 0 {
				return fmt.Errorf("delta %+v, want only the updated user", d)
			}
			return nil
		}},
		{"disable", func() {
			must(t, e.fake.SuspendUser(uids[6]))
			must(t, e.fake.DeactivateUser(uids[7]))
		}, func(d *connectors.Delta) error {
			du := userByID(d.Users)
			if u, ok := du[uids[6]]; !ok || u.Active {
				return fmt.Errorf("suspended user %+v", u)
			}
			if u, ok := du[uids[7]]; !ok || u.Active || u.Attrs["status"] != "DEPROVISIONED" {
				return fmt.Errorf("deactivated user %+v", u)
			}
			return nil
		}},
		{"delete", func() {
			must(t, e.fake.DeleteUser(uids[8]))
			must(t, e.fake.DeleteGroup(gids[2]))
		}, func(d *connectors.Delta) error {
			if !slices.Equal(d.DeletedUsers, []string{uids[8]}) || !slices.Equal(d.DeletedGroups, []string{gids[2]}) {
				return fmt.Errorf("deleted %v %v", d.DeletedUsers, d.DeletedGroups)
			}
			return nil
		}},
		{"membership", func() {
			must(t, e.fake.RemoveMember(gids[0], uids[0]))
			must(t, e.fake.AddMember(gids[1], uids[0]))
		}, func(d *connectors.Delta) error {
			g := groupByID(d.Groups)
			if slices.Contains(g[gids[0]].Members, uids[0]) || !slices.Contains(g[gids[1]].Members, uids[0]) {
				return fmt.Errorf("groups %+v", d.Groups)
			}
			if len(d.Users) != 1 {
				return fmt.Errorf("users %+v, want the member re-read", d.Users)
			}
			return nil
		}},
		{"replayed add after remove", func() {
			// Add then remove within one poll: the events say "add" first,
			// the re-read says what is true now.
			must(t, e.fake.AddMember(gids[1], uids[3]))
			must(t, e.fake.RemoveMember(gids[1], uids[3]))
		}, func(d *connectors.Delta) error {
			if g := groupByID(d.Groups)[gids[1]]; g.ExternalID == "" || slices.Contains(g.Members, uids[3]) {
				return fmt.Errorf("group 1 = %+v, want it without %s", g, uids[3])
			}
			return nil
		}},
	}
	for _, st := range steps {
		st.change()
		e.clock.Advance(time.Minute) // past settleTime: no recheck next time
		e.fake.ResetCounters()
		d, cur = e.changes(s, cur)
		if err := st.check(d); err != nil {
			t.Errorf("%s: %v", st.name, err)
		}
		if d.Present != nil {
			t.Errorf("%s: delta has Present; want an incremental delta", st.name)
		}
		if n := e.fake.TotalRequests(); n > 6 {
			t.Errorf("%s: %d requests", st.name, n)
		}
	}
}

func TestRecheckRecentChanges(t *testing.T) {
	e := newEnv(t)
	uids, _ := smallDirectory(t, e.fake)
	e.clock.Advance(time.Hour)
	s := e.open(e.tokenConfig())
	_, cur := e.full(s)
	e.clock.Advance(time.Minute)
	must(t, e.fake.SuspendUser(uids[1]))
	e.clock.Advance(5 * time.Second) // the poll runs right after the change
	d, cur := e.changes(s, cur)
	if len(d.Users) != 1 {
		t.Fatalf("delta users %+v", d.Users)
	}
	// Okta's filter results may lag a fresh change, so the next poll reads
	// the user again even though the log has nothing new.
	e.clock.Advance(5 * time.Minute)
	e.fake.ResetCounters()
	d, cur = e.changes(s, cur)
	if u := userByID(d.Users)[uids[1]]; u.ExternalID == "" || u.Active {
		t.Errorf("recheck delta %+v, want the suspended user again", d.Users)
	}
	if got := e.fake.Requests(oktafake.EndpointUsers); got != 1 {
		t.Errorf("recheck: %d user requests, want 1", got)
	}
	d, _ = e.changes(s, cur)
	if len(d.Users) != 0 {
		t.Errorf("third poll delta %+v, want empty", d.Users)
	}
}

func TestExpiredCursor(t *testing.T) {
	e := newEnv(t)
	smallDirectory(t, e.fake)
	e.clock.Advance(time.Hour)
	s := e.open(e.tokenConfig())
	_, cur := e.full(s)
	e.clock.Advance(time.Minute)
	_, next := e.changes(s, cur)

	// An after= token Okta no longer knows.
	e.fake.ExpireLogCursors()
	if _, _, err := s.Changes(context.Background(), next); !errors.Is(err, connectors.ErrResync) {
		t.Errorf("Changes with an expired after token: %v, want ErrResync", err)
	}
	// A since= beyond the System Log's limit.
	e.clock.Advance(181 * 24 * time.Hour)
	if _, _, err := s.Changes(context.Background(), cur); !errors.Is(err, connectors.ErrResync) {
		t.Errorf("Changes from a 181-day-old since: %v, want ErrResync", err)
	}
	// A cursor made for other settings.
	other := e.tokenConfig()
	other.GroupIDs = []string{"00g000000000000000001"}
	s2 := e.open(other)
	if _, _, err := s2.Changes(context.Background(), next); !errors.Is(err, connectors.ErrResync) {
		t.Errorf("Changes with another scope's cursor: %v, want ErrResync", err)
	}
	if _, _, err := s.Changes(context.Background(), []byte(`{"v":1}`)); !errors.Is(err, connectors.ErrResync) {
		t.Errorf("Changes with an empty cursor: %v, want ErrResync", err)
	}
	// A failure that is not about the cursor is not a resync.
	e2 := newEnv(t)
	smallDirectory(t, e2.fake)
	s3 := e2.open(e2.tokenConfig())
	_, c3 := e2.full(s3)
	e2.fake.FailPage(oktafake.EndpointLogs, 1, -1)
	if _, _, err := s3.Changes(context.Background(), c3); err == nil || errors.Is(err, connectors.ErrResync) {
		t.Errorf("Changes with the log failing: %v, want an error that is not ErrResync", err)
	}
}

func TestThrottlingMidListing(t *testing.T) {
	e := newEnv(t)
	bigDirectory(t, e.fake, 1200, 20)
	e.clock.Advance(time.Hour)
	e.fake.ThrottlePage(oktafake.EndpointUsers, 3, 7*time.Second)
	e.fake.ThrottlePage(oktafake.EndpointGroupUsers, 2, 3*time.Second)
	s := e.open(e.tokenConfig())
	snap, _ := e.full(s)
	if got := len(snap.Users); got != 1200-12 {
		t.Errorf("users = %d, want %d", got, 1200-12)
	}
	u := s.Usage()
	if u.Throttled != 2 || u.Retries != 2 {
		t.Errorf("Usage() = %+v, want 2 throttled answers, each retried", u)
	}
	if got := e.fake.ThrottledAnswers(); got != 2 {
		t.Errorf("fake sent %d 429s, want 2", got)
	}
	waits := e.clock.Waits()
	if !slices.Contains(waits, 7*time.Second) || !slices.Contains(waits, 3*time.Second) {
		t.Errorf("waits %v, want 7s and 3s (X-Rate-Limit-Reset minus Date)", waits)
	}

	// Throttling of whatever comes next, twice in a row.
	e.fake.ThrottleNext(2, 4*time.Second)
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("Check through two 429s: %v", err)
	}
	if got := s.Usage().Throttled; got != 4 {
		t.Errorf("Throttled = %d, want 4", got)
	}
	if n := len(slices.DeleteFunc(e.clock.Waits(), func(d time.Duration) bool { return d != 4*time.Second })); n != 2 {
		t.Errorf("waited 4s %d times, want 2", n)
	}
}

func TestPacingBeforeRateLimit(t *testing.T) {
	e := newEnv(t)
	bigDirectory(t, e.fake, 3000, 3)
	e.clock.Advance(time.Hour)
	// 15 pages of users against a bucket of 8 a minute: without pacing,
	// the listing would run into 429s.
	e.fake.SetRateLimit(oktafake.EndpointUsers, 8)
	s := e.open(e.tokenConfig())
	snap, _ := e.full(s)
	if len(snap.Users) != 3000-30 {
		t.Errorf("users = %d", len(snap.Users))
	}
	if got := e.fake.ThrottledAnswers(); got != 0 {
		t.Errorf("fake sent %d 429s; the connector should slow down before the limit", got)
	}
	if s.Usage().Throttled != 0 {
		t.Errorf("Usage().Throttled = %d", s.Usage().Throttled)
	}
	if len(e.clock.Waits()) < 2 {
		t.Errorf("waits %v, want the listing to have waited for the window to reset", e.clock.Waits())
	}
}

func TestFailureMidListing(t *testing.T) {
	e := newEnv(t)
	bigDirectory(t, e.fake, 1000, 5)
	e.clock.Advance(time.Hour)
	s := e.open(e.tokenConfig())

	e.fake.FailPage(oktafake.EndpointUsers, 2, 1)
	snap, _ := e.full(s)
	if len(snap.Users) != 1000-10 || s.Usage().Retries != 1 {
		t.Errorf("after one transient 500: %d users, usage %+v", len(snap.Users), s.Usage())
	}

	e.fake.FailPage(oktafake.EndpointUsers, 3, -1)
	if snap, cur, err := s.Full(context.Background()); err == nil || snap != nil || cur != nil {
		t.Fatalf("Full with a failing page = %v, %v, %v; want an error and nothing else", snap, cur, err)
	} else if !strings.Contains(err.Error(), "500") {
		t.Errorf("error %q, want it to say HTTP 500", err)
	}
}

func TestShortPage(t *testing.T) {
	for _, ep := range []string{oktafake.EndpointUsers, oktafake.EndpointGroupUsers, oktafake.EndpointGroups} {
		t.Run(ep, func(t *testing.T) {
			e := newEnv(t)
			// Every group holds all 2,500 users, so page 1 of any member
			// listing has a next link.
			_, gids := bigDirectory(t, e.fake, 2500, 2)
			if ep == oktafake.EndpointGroups {
				for i := 0; i < 250; i++ {
					gids = append(gids, e.fake.CreateGroup(fmt.Sprintf("extra %d", i), ""))
				}
			}
			e.clock.Advance(time.Hour)
			e.fake.ShortPage(ep, 1)
			s := e.open(e.tokenConfig())
			snap, cur, err := s.Full(context.Background())
			if err == nil || snap != nil || cur != nil {
				t.Fatalf("Full with a short page: %v, want an error", err)
			}
			if !strings.Contains(err.Error(), "short page") {
				t.Errorf("error %q, want it to say short page", err)
			}
		})
	}
}
