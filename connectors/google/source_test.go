package google

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/roster-dev/roster/connectors"
	"github.com/roster-dev/roster/connectors/google/googlefake"
	"github.com/roster-dev/roster/connectors/internal/apiclient"
)

// bigDirectory fills the fake with nUsers users and nGroups groups:
// user j is in groups j%nGroups and (7j+3)%nGroups; group 0 also holds the
// first 1,000 users (several member pages); groups 1..49 each hold group
// i+50 (nesting); groups nGroups-2 and nGroups-1 hold each other (a cycle);
// every 50th user is suspended and every 97th archived.
type bigDir struct {
	users  []googlefake.User
	groups []googlefake.Group
	want   map[string][]string // group id -> direct member ids
}

func bigDirectory(f *googlefake.Server, nUsers, nGroups int) *bigDir {
	d := &bigDir{want: map[string][]string{}}
	us := make([]googlefake.User, nUsers)
	for j := range us {
		us[j] = googlefake.User{
			PrimaryEmail: fmt.Sprintf("user%05d@%s", j, f.Domain()),
			GivenName:    fmt.Sprintf("Given%d", j),
			FamilyName:   fmt.Sprintf("Family%d", j),
			Suspended:    j%50 == 49,
			Archived:     j%97 == 96,
		}
	}
	us[1].PrimaryEmail = "Mixed.Case@" + strings.ToUpper(f.Domain())
	d.users = f.AddUsers(us)
	for i := 0; i < nGroups; i++ {
		d.groups = append(d.groups, f.AddGroup(googlefake.Group{Email: fmt.Sprintf("group%03d@%s", i, f.Domain()), Name: fmt.Sprintf("Group %d", i)}))
	}
	add := func(g int, id string) {
		gid := d.groups[g].ID
		if slices.Contains(d.want[gid], id) {
			return
		}
		f.AddMember(gid, id)
		d.want[gid] = append(d.want[gid], id)
	}
	for j, u := range d.users {
		add(j%nGroups, u.ID)
		add((7*j+3)%nGroups, u.ID)
		if j < 1000 {
			add(0, u.ID)
		}
	}
	for i := 1; i < 50 && i+50 < nGroups; i++ {
		add(i, d.groups[i+50].ID)
	}
	add(nGroups-2, d.groups[nGroups-1].ID)
	add(nGroups-1, d.groups[nGroups-2].ID)
	return d
}

func TestFullLargeDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("large directory")
	}
	f := newFake(t)
	const nUsers, nGroups = 10000, 500
	d := bigDirectory(f, nUsers, nGroups)
	s, _ := open(t, configFor(f))

	start := time.Now()
	v := full(t, s)
	took := time.Since(start)

	if got, want := len(v.Users), nUsers+1; got != want { // + the admin
		t.Fatalf("%d users, want %d", got, want)
	}
	if len(v.Groups) != nGroups {
		t.Fatalf("%d groups, want %d", len(v.Groups), nGroups)
	}
	if len(v.Skipped) != 0 {
		t.Errorf("skipped: %v", v.Skipped[:min(3, len(v.Skipped))])
	}
	inactive := 0
	for j, u := range d.users {
		got := v.users[u.ID]
		wantActive := !(j%50 == 49 || j%97 == 96)
		if got.Active != wantActive {
			t.Fatalf("user %d active = %v, want %v", j, got.Active, wantActive)
		}
		if !got.Active {
			inactive++
		}
		if got.Email != strings.ToLower(u.PrimaryEmail) || got.DisplayName != u.GivenName+" "+u.FamilyName || got.GivenName != u.GivenName {
			t.Fatalf("user %d = %+v", j, got)
		}
	}
	if v.users[d.users[1].ID].Email != "mixed.case@example.com" {
		t.Errorf("email not lower-cased: %q", v.users[d.users[1].ID].Email)
	}
	for _, g := range d.groups {
		got := v.members(g.ID)
		if want := sorted(d.want[g.ID]...); !slices.Equal(got, want) {
			t.Fatalf("group %s: %d members, want %d", g.Name, len(got), len(want))
		}
		if v.groups[g.ID].Name != g.Name || v.groups[g.ID].Attrs["email"] != g.Email {
			t.Fatalf("group = %+v", v.groups[g.ID])
		}
	}
	if len(v.groups[d.groups[0].ID].Members) < 1000 {
		t.Errorf("group 0 has %d members; its member pages were not all read", len(v.groups[d.groups[0].ID].Members))
	}
	// A nested group is a group member, never a user.
	for _, g := range d.groups {
		if _, isUser := v.users[g.ID]; isUser {
			t.Fatalf("group %s listed as a user", g.Name)
		}
	}
	if !slices.Contains(v.groups[d.groups[1].ID].Members, d.groups[51].ID) {
		t.Error("nested group 51 missing from group 1")
	}

	u := s.Usage()
	wantMembers := 0
	for _, g := range d.groups {
		wantMembers += max(1, (len(d.want[g.ID])+membersPageSize-1)/membersPageSize)
	}
	wantReq := map[string]int{
		googlefake.EndpointToken:       1,
		googlefake.EndpointUsersList:   (nUsers + 1 + usersPageSize - 1) / usersPageSize,
		googlefake.EndpointGroupsList:  (nGroups + groupsPageSize - 1) / groupsPageSize,
		googlefake.EndpointMembersList: wantMembers,
	}
	total := 0
	for ep, want := range wantReq {
		if got := f.Requests(ep); got != want {
			t.Errorf("%s: %d requests, want %d", ep, got, want)
		}
		total += want
	}
	if u.Requests != int64(total) || int(u.Requests) != f.Requests() {
		t.Errorf("Usage().Requests = %d, fake counted %d, want %d", u.Requests, f.Requests(), total)
	}
	if u.Pages != int64(total-1) || u.Throttled != 0 || u.Retries != 0 {
		t.Errorf("usage = %+v", u)
	}
	t.Logf("full listing of %d users, %d groups (%d inactive): %d requests (token 1, users.list %d, groups.list %d, members.list %d), %d items, %v",
		nUsers, nGroups, inactive, u.Requests, wantReq[googlefake.EndpointUsersList], wantReq[googlefake.EndpointGroupsList],
		wantReq[googlefake.EndpointMembersList], u.Items, took.Round(time.Millisecond))

	// Ten changes, then the next scheduled poll (a full listing: Google has
	// no change feed for groups).
	f.ResetCounts()
	newUser := f.AddUser(googlefake.User{PrimaryEmail: "new@" + f.Domain(), GivenName: "New", FamilyName: "Person"})
	f.AddMember(d.groups[10].ID, newUser.ID)
	f.UpdateUser(d.users[2].ID, func(u *googlefake.User) { u.GivenName, u.FullName = "Renamed", "Renamed Person" })
	f.UpdateUser(d.users[3].ID, func(u *googlefake.User) { u.PrimaryEmail = "moved3@" + f.Domain() })
	f.SuspendUser(d.users[4].ID, true)
	f.ArchiveUser(d.users[5].ID, true)
	f.SuspendUser(d.users[49].ID, false)
	f.DeleteUser(d.users[6].ID)
	f.RemoveMember(d.groups[7].ID, d.users[7].ID)
	f.AddMember(d.groups[8].ID, d.users[7].ID)

	start = time.Now()
	v = full(t, s)
	took = time.Since(start)
	u2 := s.Usage()
	if got := v.users[newUser.ID]; !got.Active || !slices.Contains(v.groups[d.groups[10].ID].Members, newUser.ID) {
		t.Errorf("added user: %+v", got)
	}
	if v.users[d.users[2].ID].DisplayName != "Renamed Person" || v.users[d.users[3].ID].Email != "moved3@example.com" {
		t.Errorf("updates: %+v / %+v", v.users[d.users[2].ID], v.users[d.users[3].ID])
	}
	if v.users[d.users[4].ID].Active || v.users[d.users[5].ID].Active || !v.users[d.users[49].ID].Active {
		t.Error("suspend / archive / restore not followed")
	}
	if _, ok := v.users[d.users[6].ID]; ok {
		t.Error("deleted user still listed")
	}
	for _, g := range v.Groups {
		if slices.Contains(g.Members, d.users[6].ID) {
			t.Fatalf("deleted user still a member of %s", g.Name)
		}
	}
	if slices.Contains(v.groups[d.groups[7].ID].Members, d.users[7].ID) || !slices.Contains(v.groups[d.groups[8].ID].Members, d.users[7].ID) {
		t.Error("membership move not followed")
	}
	t.Logf("poll after 10 changes: %d requests (fake: %d), %v", u2.Requests-u.Requests, f.Requests(), took.Round(time.Millisecond))
	// The token is reused; everything else is listed again.
	if got := f.Requests(googlefake.EndpointToken); got != 0 {
		t.Errorf("second poll fetched %d tokens, want 0 (reuse)", got)
	}
}

// smallDirectory: ann and bob in eng; cat in ops; ops nested in eng; dan in
// no group.
type small struct {
	ann, bob, cat, dan googlefake.User
	eng, ops           googlefake.Group
}

func smallDirectory(f *googlefake.Server) small {
	var d small
	d.ann = f.AddUser(googlefake.User{PrimaryEmail: "ann@example.com", GivenName: "Ann", FamilyName: "Lee"})
	d.bob = f.AddUser(googlefake.User{PrimaryEmail: "bob@example.com", GivenName: "Bob", FamilyName: "Ray"})
	d.cat = f.AddUser(googlefake.User{PrimaryEmail: "cat@example.com", GivenName: "Cat", FamilyName: "Kim"})
	d.dan = f.AddUser(googlefake.User{PrimaryEmail: "dan@example.com", GivenName: "Dan", FamilyName: "Oh"})
	d.eng = f.AddGroup(googlefake.Group{Email: "eng@example.com", Name: "Engineering", Aliases: []string{"engineering@example.com"}})
	d.ops = f.AddGroup(googlefake.Group{Email: "ops@example.com", Name: "Operations"})
	f.SetMembers(d.eng.ID, d.ann.ID, d.bob.ID, d.ops.ID)
	f.SetMembers(d.ops.ID, d.cat.ID)
	return d
}

func TestIncrementalThroughFull(t *testing.T) {
	f := newFake(t)
	d := smallDirectory(f)
	s, _ := open(t, configFor(f))
	v := full(t, s)
	if len(v.Users) != 5 || len(v.Groups) != 2 {
		t.Fatalf("%d users, %d groups", len(v.Users), len(v.Groups))
	}
	if got, want := v.members(d.eng.ID), sorted(d.ann.ID, d.bob.ID, d.ops.ID); !slices.Equal(got, want) {
		t.Fatalf("eng members %v, want %v", got, want)
	}

	steps := []struct {
		name   string
		change func()
		check  func(v snapshotView) error
	}{
		{"add", func() {
			eve := f.AddUser(googlefake.User{ID: "100000000000000000777", PrimaryEmail: "Eve@Example.com", GivenName: "Eve"})
			f.AddMember(d.ops.ID, eve.ID)
		}, func(v snapshotView) error {
			eve, ok := v.users["100000000000000000777"]
			if !ok || !eve.Active || eve.Email != "eve@example.com" || !slices.Contains(v.groups[d.ops.ID].Members, eve.ExternalID) {
				return fmt.Errorf("eve = %+v, ops = %v", eve, v.groups[d.ops.ID].Members)
			}
			return nil
		}},
		{"update", func() {
			f.UpdateUser(d.ann.ID, func(u *googlefake.User) { u.FamilyName, u.PrimaryEmail = "Park", "ann.park@example.com" })
			f.UpdateGroup(d.ops.ID, func(g *googlefake.Group) { g.Name = "SRE" })
		}, func(v snapshotView) error {
			ann := v.users[d.ann.ID]
			if ann.Email != "ann.park@example.com" || ann.FamilyName != "Park" || ann.DisplayName != "Ann Park" || v.groups[d.ops.ID].Name != "SRE" {
				return fmt.Errorf("ann = %+v, ops = %+v", ann, v.groups[d.ops.ID])
			}
			return nil
		}},
		{"disable", func() { f.SuspendUser(d.bob.ID, true); f.ArchiveUser(d.dan.ID, true) }, func(v snapshotView) error {
			if v.users[d.bob.ID].Active || v.users[d.dan.ID].Active || !v.users[d.cat.ID].Active {
				return fmt.Errorf("bob %v, dan %v, cat %v", v.users[d.bob.ID].Active, v.users[d.dan.ID].Active, v.users[d.cat.ID].Active)
			}
			return nil
		}},
		{"delete", func() { f.DeleteUser(d.cat.ID) }, func(v snapshotView) error {
			if _, ok := v.users[d.cat.ID]; ok || slices.Contains(v.groups[d.ops.ID].Members, d.cat.ID) {
				return errors.New("cat still listed")
			}
			return nil
		}},
		{"membership", func() {
			f.RemoveMember(d.eng.ID, d.ops.ID)
			f.AddMember(d.ops.ID, d.ann.ID)
			f.RemoveMember(d.eng.ID, d.ann.ID)
		}, func(v snapshotView) error {
			if got, want := v.members(d.eng.ID), sorted(d.bob.ID); !slices.Equal(got, want) {
				return fmt.Errorf("eng = %v, want %v", got, want)
			}
			if !slices.Contains(v.groups[d.ops.ID].Members, d.ann.ID) {
				return fmt.Errorf("ops = %v", v.groups[d.ops.ID].Members)
			}
			return nil
		}},
		{"delete group", func() { f.DeleteGroup(d.ops.ID) }, func(v snapshotView) error {
			if _, ok := v.groups[d.ops.ID]; ok || len(v.Groups) != 1 {
				return fmt.Errorf("groups = %v", v.Groups)
			}
			return nil
		}},
	}
	for _, st := range steps {
		st.change()
		if err := st.check(full(t, s)); err != nil {
			t.Errorf("%s: %v", st.name, err)
		}
	}
}

func TestGroupKeysScope(t *testing.T) {
	f := newFake(t)
	d := smallDirectory(f)
	other := f.AddGroup(googlefake.Group{Email: "other@example.com", Name: "Other"})
	f.SetMembers(other.ID, d.dan.ID)
	ext := f.AddExternalMember(d.ops.ID, "Friend@gmail.com")

	for _, key := range []string{"eng@example.com", "engineering@example.com", d.eng.ID} {
		t.Run(key, func(t *testing.T) {
			f.ResetCounts()
			cfg := configFor(f)
			cfg.GroupKeys = []string{key}
			s, _ := open(t, cfg)
			v := full(t, s)
			var ids []string
			for _, u := range v.Users {
				ids = append(ids, u.ExternalID)
			}
			if got, want := sorted(ids...), sorted(d.ann.ID, d.bob.ID, d.cat.ID); !slices.Equal(got, want) {
				t.Errorf("users %v, want ann, bob, cat (through ops)", got)
			}
			if _, ok := v.groups[other.ID]; ok || len(v.Groups) != 2 {
				t.Errorf("groups %v, want eng and ops", v.Groups)
			}
			if got, want := v.members(d.eng.ID), sorted(d.ann.ID, d.bob.ID, d.ops.ID); !slices.Equal(got, want) {
				t.Errorf("eng = %v, want %v", got, want)
			}
			if got := v.members(d.ops.ID); !slices.Equal(got, []string{d.cat.ID}) {
				t.Errorf("ops = %v: the external account must not be a member", got)
			}
			if len(v.Skipped) != 1 || v.Skipped[0].ID != ext || !strings.Contains(v.Skipped[0].Reason, "friend@gmail.com") {
				t.Errorf("skipped = %v", v.Skipped)
			}
			// groups.get for the key and the nested group; no groups.list.
			if f.Requests(googlefake.EndpointGroupsList) != 0 || f.Requests(googlefake.EndpointGroupsGet) != 2 || f.Requests(googlefake.EndpointMembersList) != 2 {
				t.Errorf("requests: groups.list %d, groups.get %d, members.list %d",
					f.Requests(googlefake.EndpointGroupsList), f.Requests(googlefake.EndpointGroupsGet), f.Requests(googlefake.EndpointMembersList))
			}
		})
	}

	cfg := configFor(f)
	cfg.GroupKeys = []string{"nope@example.com"}
	s, _ := open(t, cfg)
	if _, _, err := s.Full(context.Background()); err == nil || !strings.Contains(err.Error(), `group_keys: Google has no group "nope@example.com"`) {
		t.Errorf("unknown key: %v", err)
	}
}

func TestCustomerMemberAndDomain(t *testing.T) {
	f := newFake(t)
	d := smallDirectory(f)
	all := f.AddGroup(googlefake.Group{Email: "all@example.com", Name: "Everyone"})
	f.AddCustomerMember(all.ID)
	for _, cfg := range []Config{configFor(f), func() Config { c := configFor(f); c.Domain = "example.com"; return c }(),
		func() Config { c := configFor(f); c.Customer = f.Customer(); return c }()} {
		s, _ := open(t, cfg)
		v := full(t, s)
		if got := len(v.groups[all.ID].Members); got != 5 {
			t.Errorf("customer member: %d members, want all 5 users", got)
		}
		if !slices.Contains(v.groups[all.ID].Members, d.dan.ID) {
			t.Error("dan missing from Everyone")
		}
	}
}

func TestThrottlingMidListing(t *testing.T) {
	f := newFake(t)
	d := bigDirectory(f, 1200, 210) // 3 user pages, 2 group pages
	s, w := open(t, configFor(f))
	want := full(t, s)
	before := s.Usage()

	f.Inject(googlefake.Fault{Endpoint: googlefake.EndpointUsersList, Page: 2, Kind: googlefake.RateLimitUser, Count: 2})
	f.Inject(googlefake.Fault{Endpoint: googlefake.EndpointGroupsList, Page: 2, Kind: googlefake.QuotaExceeded})
	f.Inject(googlefake.Fault{Endpoint: googlefake.EndpointMembersList, Group: d.groups[5].ID, Kind: googlefake.RateLimit429, RetryAfter: 3 * time.Second})
	f.Inject(googlefake.Fault{Endpoint: googlefake.EndpointMembersList, Group: d.groups[0].ID, Page: 3, Kind: googlefake.Unavailable, RetryAfter: time.Second})
	f.Inject(googlefake.Fault{Endpoint: googlefake.EndpointUsersList, Page: 3, Kind: googlefake.ServerError})

	got := full(t, s)
	if len(got.Users) != len(want.Users) || len(got.Groups) != len(want.Groups) {
		t.Fatalf("after throttling: %d users, %d groups; want %d, %d", len(got.Users), len(got.Groups), len(want.Users), len(want.Groups))
	}
	for id, g := range want.groups {
		if !slices.Equal(got.members(id), want.members(id)) {
			t.Fatalf("group %s differs after throttling", g.Name)
		}
	}
	u := s.Usage()
	if th := u.Throttled - before.Throttled; th != 5 {
		t.Errorf("throttled = %d, want 5 (two 403 userRateLimitExceeded, 403 quotaExceeded, 429, 503)", th)
	}
	if r := u.Retries - before.Retries; r != 6 {
		t.Errorf("retries = %d, want 6", r)
	}
	ws := w.all()
	if !slices.Contains(ws, 3*time.Second) || !slices.Contains(ws, time.Second) {
		t.Errorf("waits %v: Retry-After 3s and 1s not honoured", ws)
	}
	for _, d := range ws {
		if d > apiclientMaxBackoff {
			t.Errorf("wait %v over the backoff cap", d)
		}
	}
}

const apiclientMaxBackoff = 30 * time.Second

func TestThrottlingThatNeverEnds(t *testing.T) {
	f := newFake(t)
	smallDirectory(f)
	s, _ := open(t, configFor(f))
	f.Inject(googlefake.Fault{Endpoint: googlefake.EndpointGroupsList, Kind: googlefake.RateLimitUser, Count: 100})
	snap, _, err := s.Full(context.Background())
	if err == nil || snap != nil {
		t.Fatalf("Full = snapshot %v, err %v; want an error and no snapshot", snap != nil, err)
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.Reason != "userRateLimitExceeded" || !strings.Contains(err.Error(), "next poll tries again") {
		t.Errorf("err = %v", err)
	}
}

func TestFailureMidListing(t *testing.T) {
	tests := []struct {
		name  string
		fault googlefake.Fault
		want  string
	}{
		{"users page 2 keeps failing", googlefake.Fault{Endpoint: googlefake.EndpointUsersList, Page: 2, Kind: googlefake.ServerError, Count: 50}, "page 2"},
		{"members of one group keep failing", googlefake.Fault{Endpoint: googlefake.EndpointMembersList, Page: 2, Kind: googlefake.ServerError, Count: 50}, "members.list"},
		{"daily quota", googlefake.Fault{Endpoint: googlefake.EndpointGroupsList, Page: 2, Kind: googlefake.DailyLimit}, "daily"},
		{"short users page", googlefake.Fault{Endpoint: googlefake.EndpointUsersList, Page: 2, Kind: googlefake.ShortPage}, "short page"},
		{"short members page", googlefake.Fault{Endpoint: googlefake.EndpointMembersList, Page: 1, Kind: googlefake.ShortPage}, "short page"},
		{"short groups page", googlefake.Fault{Endpoint: googlefake.EndpointGroupsList, Page: 1, Kind: googlefake.ShortPage}, "short page"},
	}
	f := newFake(t)
	d := bigDirectory(f, 1200, 210)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.ClearFaults()
			s, _ := open(t, configFor(f))
			if tt.fault.Endpoint == googlefake.EndpointMembersList {
				tt.fault.Group = d.groups[0].ID // several member pages
			}
			f.Inject(tt.fault)
			snap, cursor, err := s.Full(context.Background())
			if err == nil || snap != nil || cursor != nil {
				t.Fatalf("Full = snapshot %v, cursor %s, err %v; want only an error", snap != nil, cursor, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestExpiredPageToken(t *testing.T) {
	f := newFake(t)
	bigDirectory(f, 1200, 10)
	s, _ := open(t, configFor(f))
	// Expire the page tokens as soon as the first users page has gone out.
	inner := s.api.HTTP.Transport
	if inner == nil {
		inner = http.DefaultTransport
	}
	s.api.HTTP = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := inner.RoundTrip(r)
		if strings.HasSuffix(r.URL.Path, "/users") && r.URL.Query().Get("pageToken") == "" {
			f.ExpirePageTokens()
		}
		return resp, err
	})}
	snap, _, err := s.Full(context.Background())
	if err == nil || snap != nil {
		t.Fatalf("Full = snapshot %v, err %v; want an error", snap != nil, err)
	}
	if !strings.Contains(err.Error(), "HTTP 400") || !strings.Contains(err.Error(), "pageToken") {
		t.Errorf("err = %v", err)
	}
	if errors.Is(err, connectors.ErrResync) {
		t.Error("a page token is not a cursor: ErrResync would make the poller run the same Full again")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestEmptyDirectory(t *testing.T) {
	f := newFake(t)
	f.DeleteUser(f.AddUser(googlefake.User{PrimaryEmail: "x@example.com"}).ID)
	s, _ := open(t, configFor(f))
	v := full(t, s)
	// Only the admin; Google leaves the "groups" key out of an empty page.
	if len(v.Users) != 1 || len(v.Groups) != 0 {
		t.Errorf("%d users, %d groups", len(v.Users), len(v.Groups))
	}
}

func TestRevokedTokenIsFetchedAgain(t *testing.T) {
	f := newFake(t)
	smallDirectory(f)
	s, _ := open(t, configFor(f))
	full(t, s)
	f.RevokeTokens()
	v := full(t, s)
	if len(v.Users) != 5 {
		t.Errorf("%d users", len(v.Users))
	}
	if got := f.Requests(googlefake.EndpointToken); got != 2 {
		t.Errorf("%d token requests, want 2", got)
	}
}

func TestTokenEndpointRetried(t *testing.T) {
	f := newFake(t)
	smallDirectory(f)
	s, _ := open(t, configFor(f))
	f.Inject(googlefake.Fault{Endpoint: googlefake.EndpointToken, Kind: googlefake.Unavailable})
	full(t, s)
	if got := f.Requests(googlefake.EndpointToken); got != 2 {
		t.Errorf("%d token requests, want 2 (one 503, one retry)", got)
	}
	if u := s.Usage(); u.Throttled != 1 || u.Retries != 1 {
		t.Errorf("usage = %+v", u)
	}
}

func TestCheck(t *testing.T) {
	_, other := keys(t)
	tests := []struct {
		name   string
		setup  func(f *googlefake.Server, cfg *Config)
		want   []string // empty: Check passes
		status int
	}{
		{name: "ok", setup: func(f *googlefake.Server, cfg *Config) {}},
		{name: "ok with group keys", setup: func(f *googlefake.Server, cfg *Config) { cfg.GroupKeys = []string{"eng@example.com"} }},
		{name: "bad secret: key deleted", setup: func(f *googlefake.Server, cfg *Config) { f.RotateKey(other) },
			want: []string{"Invalid JWT Signature", "create a new JSON key for roster-sync@"}},
		{name: "bad secret: foreign key", setup: func(f *googlefake.Server, cfg *Config) {
			cfg.ServiceAccountJSON = ServiceAccountKey(googlefake.KeyJSON(f.ClientEmail(), f.ClientID(), "x", other, f.TokenURL))
		}, want: []string{"Invalid JWT Signature", "service_account_json"}},
		{name: "scopes not delegated", setup: func(f *googlefake.Server, cfg *Config) { f.Delegate(ScopeUserReadonly) },
			want: []string{"unauthorized_client", "delegate the scopes", ScopeGroupReadonly, f0ClientID}},
		{name: "admin lacks privileges", setup: func(f *googlefake.Server, cfg *Config) { f.SetAdmin(f.Admin(), false) },
			want: []string{"403 forbidden", "Not Authorized to access this resource/api", "Admin roles"}, status: 403},
		{name: "admin unknown", setup: func(f *googlefake.Server, cfg *Config) { cfg.AdminEmail = "ghost@example.com" },
			want: []string{"Invalid email or User ID", `admin_email "ghost@example.com" is not a user`}},
		{name: "wrong customer", setup: func(f *googlefake.Server, cfg *Config) { cfg.Customer = "C0nope" },
			want: []string{"HTTP 400", `customer "C0nope"`}, status: 400},
		{name: "wrong domain", setup: func(f *googlefake.Server, cfg *Config) { cfg.Domain = "other.example" },
			want: []string{"403 forbidden", "domain other.example must be one of the account's domains"}, status: 403},
		{name: "unknown group key", setup: func(f *googlefake.Server, cfg *Config) {
			cfg.GroupKeys = []string{"eng@example.com", "nope@example.com"}
		},
			want: []string{`group_keys: Google has no group "nope@example.com"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			smallDirectory(f)
			cfg := configFor(f)
			tt.setup(f, &cfg)
			s, _ := open(t, cfg)
			err := s.Check(context.Background())
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				// token, one users.list, then one groups.list or a
				// groups.get per key.
				if n, want := f.Requests(), 2+max(1, len(cfg.GroupKeys)); n != want {
					t.Errorf("Check sent %d requests, want %d", n, want)
				}
				return
			}
			if err == nil {
				t.Fatal("Check passed")
			}
			for _, w := range tt.want {
				w = strings.ReplaceAll(w, f0ClientID, f.ClientID())
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if tt.status != 0 {
				var ae *APIError
				if !errors.As(err, &ae) || ae.Status != tt.status {
					t.Errorf("err = %#v, want APIError %d", err, tt.status)
				}
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), keyMaterial(string(cfg.ServiceAccountJSON))) {
				t.Errorf("error holds key material: %v", err)
			}
		})
	}
}

// f0ClientID stands for the fake's client ID in wanted substrings.
const f0ClientID = "<client id>"

func TestMissingScopeNamesTheFix(t *testing.T) {
	f := newFake(t)
	smallDirectory(f)
	s, _ := open(t, configFor(f))
	s.jwt.Scopes = []string{ScopeUserReadonly} // a token without the group scope
	err := s.Check(context.Background())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Reason != "insufficientPermissions" || ae.Op != "groups.list" {
		t.Fatalf("err = %v", err)
	}
	for _, w := range []string{"delegate the scopes", ScopeGroupReadonly, f.ClientID(), "domain-wide delegation"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
}

func TestRequestsInFlightAreBounded(t *testing.T) {
	f := newFake(t)
	bigDirectory(f, 600, 120)
	s, _ := open(t, configFor(f))
	var mu sync.Mutex
	inFlight, peak := 0, 0
	inner := http.DefaultTransport
	s.api.HTTP = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		mu.Unlock()
		time.Sleep(2 * time.Millisecond) // let requests overlap
		defer func() { mu.Lock(); inFlight--; mu.Unlock() }()
		return inner.RoundTrip(r)
	})}
	full(t, s)
	if peak > apiclient.DefaultConcurrency || peak < 2 {
		t.Errorf("peak %d requests in flight, want 2..%d", peak, apiclient.DefaultConcurrency)
	}
}
