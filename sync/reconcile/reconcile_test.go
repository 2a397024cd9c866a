package reconcile_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/roster-dev/roster/internal/testenv"
	"github.com/roster-dev/roster/store"
	"github.com/roster-dev/roster/sync/reconcile"
	"github.com/roster-dev/roster/sync/rules"
)

func cents(v int64) *int64 { return &v }

type fixture struct {
	t     *testing.T
	ctx   context.Context
	s     *store.Store
	r     *reconcile.Reconciler
	team  string
	dir   string
	after int64
}

func newFixture(t *testing.T, e testenv.Engine, def *int64) *fixture {
	t.Helper()
	s := testenv.OpenStore(t, e)
	ctx := context.Background()
	f := &fixture{t: t, ctx: ctx, s: s, r: &reconcile.Reconciler{Store: s}, team: "team1", dir: "dir1"}
	if err := s.CreateTeam(ctx, &store.Team{ID: f.team, Name: "Team", Plan: store.PlanEnterprise, SSOStatus: "active", DefaultLimitCents: def}); err != nil {
		t.Fatal(err)
	}
	f.tx(func(tx *store.Tx) error {
		return tx.CreateDirectory(ctx, &store.Directory{ID: f.dir, TeamID: f.team, Type: "scim"})
	})
	return f
}

func (f *fixture) tx(fn func(tx *store.Tx) error) {
	f.t.Helper()
	if err := f.s.WithTx(f.ctx, fn); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) user(id string, active bool) {
	f.tx(func(tx *store.Tx) error {
		u := &store.User{DirectoryID: f.dir, ID: id, UserName: id + "@example.com", Email: id + "@example.com", DisplayName: strings.ToUpper(id), Active: active}
		return tx.PutUser(f.ctx, u, time.Now())
	})
}

func (f *fixture) group(id, name string) {
	f.tx(func(tx *store.Tx) error {
		return tx.PutGroup(f.ctx, &store.Group{DirectoryID: f.dir, ID: id, DisplayName: name}, time.Now())
	})
}

func (f *fixture) add(group string, members ...string) {
	f.tx(func(tx *store.Tx) error {
		var ms []store.Member
		for _, m := range members {
			typ := store.MemberUser
			if strings.HasPrefix(m, "g") {
				typ = store.MemberGroup
			}
			ms = append(ms, store.Member{ID: m, Type: typ})
		}
		_, err := tx.AddMembers(f.ctx, f.dir, group, ms, time.Now())
		return err
	})
}

func (f *fixture) remove(group string, members ...string) {
	f.tx(func(tx *store.Tx) error {
		_, err := tx.RemoveMembers(f.ctx, f.dir, group, members, time.Now())
		return err
	})
}

func (f *fixture) limit(group string, has bool, c *int64) {
	f.t.Helper()
	if _, err := reconcile.SetGroupLimit(f.ctx, f.s, f.team, group, has, c); err != nil {
		f.t.Fatalf("set group limit: %v", err)
	}
}

func (f *fixture) reconcile() reconcile.Result {
	f.t.Helper()
	res, err := f.r.Reconcile(f.ctx, f.dir)
	if err != nil {
		f.t.Fatalf("reconcile: %v", err)
	}
	return res
}

// events returns the types of events since the last call.
func (f *fixture) events() []string {
	f.t.Helper()
	evs, err := f.s.ListEvents(f.ctx, f.team, f.after, 100000)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
		f.after = e.Seq
	}
	return out
}

type memberView struct {
	Groups []string
	Cents  string
	Source string
}

func (f *fixture) roster() map[string]memberView {
	f.t.Helper()
	ms, err := f.s.ListRosterMembers(f.ctx, store.MemberQuery{TeamID: f.team, Limit: 100000})
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]memberView{}
	for _, m := range ms {
		v := memberView{Cents: "unlimited", Source: m.LimitSource}
		if m.LimitCents != nil {
			v.Cents = fmt.Sprint(*m.LimitCents)
		}
		if m.LimitSource == store.SourceGroup {
			v.Source += ":" + m.LimitGroupName
		}
		for _, g := range m.Groups {
			v.Groups = append(v.Groups, g.Name)
		}
		sort.Strings(v.Groups)
		out[m.UserID] = v
	}
	return out
}

func forEngines(t *testing.T, fn func(t *testing.T, e testenv.Engine)) {
	for _, e := range testenv.Engines() {
		t.Run(e.Name, func(t *testing.T) { fn(t, e) })
	}
}

func TestSpendPolicyAndNesting(t *testing.T) {
	forEngines(t, func(t *testing.T, e testenv.Engine) {
		f := newFixture(t, e, cents(1000))
		for _, u := range []string{"ann", "bob", "cat", "dan", "eve"} {
			f.user(u, u != "dan")
		}
		f.group("g1", "Engineering")
		f.group("g2", "Sales")
		f.group("g3", "Platform")
		f.group("g4", "Interns")
		f.group("g5", "Execs")
		f.add("g1", "g3") // Platform is inside Engineering
		f.add("g3", "ann")
		f.add("g2", "ann", "bob")
		f.add("g4", "cat")
		f.add("g5", "eve")
		f.add("g1", "eve")
		f.limit("g1", true, cents(5000))
		f.limit("g2", true, cents(2000))
		f.limit("g4", true, cents(500)) // lower than the default: still wins
		f.limit("g5", true, nil)        // unlimited
		f.reconcile()
		want := map[string]memberView{
			"ann": {Groups: []string{"Engineering", "Platform", "Sales"}, Cents: "5000", Source: "group:Engineering"},
			"bob": {Groups: []string{"Sales"}, Cents: "2000", Source: "group:Sales"},
			"cat": {Groups: []string{"Interns"}, Cents: "500", Source: "group:Interns"},
			"eve": {Groups: []string{"Engineering", "Execs"}, Cents: "unlimited", Source: "group:Execs"},
		}
		if diff := cmp.Diff(want, f.roster()); diff != "" {
			t.Fatalf("roster (-want +got):\n%s", diff)
		}
		got := f.events()
		count := map[string]int{}
		for _, e := range got {
			count[e]++
		}
		if count[reconcile.EventMemberAdded] != 4 || count[reconcile.EventGroupCreated] != 5 {
			t.Fatalf("events = %v, want 4 member.added and 5 group.created", count)
		}

		// Running again changes nothing.
		if res := f.reconcile(); res.Changes != 0 {
			t.Fatalf("second reconcile wrote %d events, want 0", res.Changes)
		}
		if res, err := f.r.Full(f.ctx, f.dir); err != nil || res.Changes != 0 {
			t.Fatalf("full reconcile after incremental: %d events, err %v; want 0", res.Changes, err)
		}

		// Remove Platform from Engineering: ann loses Engineering and
		// falls back to Sales.
		f.remove("g1", "g3")
		f.reconcile()
		if got := f.roster()["ann"]; got.Cents != "2000" || got.Source != "group:Sales" {
			t.Fatalf("ann after un-nesting = %+v, want 2000 from Sales", got)
		}
		if diff := cmp.Diff([]string{reconcile.EventMembershipRemoved, reconcile.EventLimitChanged}, f.events()); diff != "" {
			t.Fatalf("events (-want +got):\n%s", diff)
		}

		// Team default unlimited applies to members with no limited group.
		f.remove("g4", "cat")
		f.reconcile()
		if got := f.roster()["cat"]; got.Cents != "1000" || got.Source != store.SourceTeamDefault {
			t.Fatalf("cat = %+v, want the team default 1000", got)
		}
		f.events()

		// Rename a limit-setting group: the source name follows.
		f.group("g2", "Sales EMEA")
		f.reconcile()
		if got := f.roster()["bob"]; got.Source != "group:Sales EMEA" {
			t.Fatalf("bob's limit source after rename = %q", got.Source)
		}
		if diff := cmp.Diff([]string{reconcile.EventGroupRenamed}, f.events()); diff != "" {
			t.Fatalf("events (-want +got):\n%s", diff)
		}

		// Deactivate and delete.
		f.user("bob", false)
		f.tx(func(tx *store.Tx) error { return tx.DeleteGroup(f.ctx, f.dir, "g5", time.Now()) })
		f.reconcile()
		r := f.roster()
		if _, ok := r["bob"]; ok {
			t.Fatalf("inactive bob still in roster")
		}
		if got := r["eve"]; got.Cents != "5000" || len(got.Groups) != 1 {
			t.Fatalf("eve after Execs deleted = %+v", got)
		}
		count = map[string]int{}
		for _, e := range f.events() {
			count[e]++
		}
		if count[reconcile.EventMemberRemoved] != 1 || count[reconcile.EventGroupDeleted] != 1 || count[reconcile.EventLimitChanged] != 1 {
			t.Fatalf("events = %v", count)
		}
	})
}

func TestCyclesTolerated(t *testing.T) {
	forEngines(t, func(t *testing.T, e testenv.Engine) {
		f := newFixture(t, e, nil)
		f.user("ann", true)
		f.group("g1", "A")
		f.group("g2", "B")
		f.add("g1", "g2")
		f.add("g2", "g1", "ann")
		f.limit("g1", true, cents(300))
		f.reconcile()
		want := map[string]memberView{"ann": {Groups: []string{"A", "B"}, Cents: "300", Source: "group:A"}}
		if diff := cmp.Diff(want, f.roster()); diff != "" {
			t.Fatalf("roster (-want +got):\n%s", diff)
		}
	})
}

// TestIncrementalMatchesFull applies random changes, reconciling
// incrementally, and checks a full reconcile then finds nothing to do.
func TestIncrementalMatchesFull(t *testing.T) {
	forEngines(t, func(t *testing.T, e testenv.Engine) {
		f := newFixture(t, e, cents(100))
		rng := rand.New(rand.NewSource(7))
		users := []string{"u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"}
		groups := []string{"g1", "g2", "g3", "g4", "g5"}
		for _, u := range users {
			f.user(u, true)
		}
		for _, g := range groups {
			f.group(g, "name-"+g)
		}
		for step := 0; step < 60; step++ {
			g := groups[rng.Intn(len(groups))]
			switch rng.Intn(6) {
			case 0:
				f.add(g, users[rng.Intn(len(users))])
			case 1:
				f.remove(g, users[rng.Intn(len(users))])
			case 2:
				if o := groups[rng.Intn(len(groups))]; o != g {
					f.add(g, o)
				}
			case 3:
				f.limit(g, rng.Intn(3) > 0, cents(int64(rng.Intn(5))*100))
			case 4:
				f.user(users[rng.Intn(len(users))], rng.Intn(4) > 0)
			case 5:
				f.group(g, fmt.Sprintf("name-%s-%d", g, step))
			}
			if rng.Intn(3) == 0 {
				f.reconcile()
				before := f.roster()
				if res, err := f.r.Full(f.ctx, f.dir); err != nil || res.Changes != 0 {
					t.Fatalf("step %d: full reconcile after incremental wrote %d events (err %v); roster was %v", step, res.Changes, err, before)
				}
			}
		}
	})
}

func TestEventPayloads(t *testing.T) {
	forEngines(t, func(t *testing.T, e testenv.Engine) {
		f := newFixture(t, e, cents(1000))
		f.user("ann", true)
		f.group("g1", "Eng")
		f.add("g1", "ann")
		f.limit("g1", true, cents(2500))
		f.reconcile()
		evs, err := f.s.ListEvents(f.ctx, f.team, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var added map[string]any
		for _, e := range evs {
			if e.Type == reconcile.EventMemberAdded {
				json.Unmarshal(e.Data, &added)
			}
			if e.DirectoryID != f.dir {
				t.Errorf("event %s has directory %q", e.Type, e.DirectoryID)
			}
		}
		m := added["member"].(map[string]any)
		lim := m["spend_limit"].(map[string]any)
		if lim["per_user_cents"].(float64) != 2500 || lim["source"].(map[string]any)["group_name"] != "Eng" || added["team_id"] != f.team {
			t.Fatalf("member.added data = %v", added)
		}
	})
}

// More pending items than one transaction takes: one Reconcile applies them
// all, chunk by chunk, with one event per new member; with more pending
// users than IncrementalMax it reconciles in full instead.
func TestIncrementalInChunks(t *testing.T) {
	forEngines(t, func(t *testing.T, e testenv.Engine) {
		f := newFixture(t, e, cents(100))
		f.group("g1", "Eng")
		const n = 300 // several chunks
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("u%03d", i)
			f.user(ids[i], true)
		}
		f.add("g1", ids[:n/2]...)
		res := f.reconcile()
		if res.Mode != "incremental" || res.Pending < n {
			t.Fatalf("result %+v, want incremental over >= %d items", res, n)
		}
		if got := len(f.roster()); got != n {
			t.Fatalf("%d members after one reconcile, want %d", got, n)
		}
		added := 0
		for _, ev := range f.events() {
			if ev == "member.added" {
				added++
			}
		}
		if added != n {
			t.Fatalf("%d member.added events, want %d", added, n)
		}
		for _, id := range ids[:n/2] {
			if g := f.roster()[id].Groups; len(g) != 1 || g[0] != "Eng" {
				t.Fatalf("%s groups %v", id, g)
			}
			break
		}
		if again := f.reconcile(); again.Mode != "none" {
			t.Fatalf("second reconcile %+v, want nothing pending", again)
		}
		// Many pending users: the run is a full one.
		f.r.IncrementalMax = 10
		for _, id := range ids[:20] {
			f.user(id, false)
		}
		if res := f.reconcile(); res.Mode != "full" {
			t.Fatalf("with 20 pending and IncrementalMax 10: %+v, want full", res)
		}
		if got := len(f.roster()); got != n-20 {
			t.Fatalf("%d members, want %d", got, n-20)
		}
	})
}

// TestLimitChanges checks that a spend-limit change marks what it moves and
// that Pending.Wait returns once the reconciler has applied it, not before.
func TestLimitChanges(t *testing.T) {
	forEngines(t, func(t *testing.T, e testenv.Engine) {
		f := newFixture(t, e, cents(1000))
		f.user("ann", true)
		f.user("bob", true)
		f.group("g1", "Eng")
		f.group("g2", "Platform")
		f.add("g1", "g2")
		f.add("g2", "ann")
		f.tx(func(tx *store.Tx) error {
			return tx.CreateDirectory(f.ctx, &store.Directory{ID: "dir2", TeamID: f.team, Type: "scim"})
		})
		f.reconcile()
		f.events()

		if _, err := reconcile.SetGroupLimit(f.ctx, f.s, f.team, "nope", true, cents(5)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("limit on an unknown group: err = %v, want store.ErrNotFound", err)
		}

		// A group's limit moves the members under it, nested ones too.
		pending, err := reconcile.SetGroupLimit(f.ctx, f.s, f.team, "g1", true, cents(4000))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{f.dir}, pending.Directories()); diff != "" {
			t.Fatalf("directories to reconcile (-want +got):\n%s", diff)
		}
		f.waitTimesOut(pending)
		done := f.waitInBackground(pending)
		f.reconcile()
		if err := <-done; err != nil {
			t.Fatalf("Wait after the reconcile: %v", err)
		}
		want := map[string]memberView{
			"ann": {Groups: []string{"Eng", "Platform"}, Cents: "4000", Source: "group:Eng"},
			"bob": {Cents: "1000", Source: "team_default"},
		}
		if diff := cmp.Diff(want, f.roster()); diff != "" {
			t.Fatalf("roster after the group limit (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{reconcile.EventLimitChanged}, f.events()); diff != "" {
			t.Fatalf("events after the group limit (-want +got):\n%s", diff)
		}

		// The team default marks every directory of the team.
		team, pending, err := reconcile.SetTeamDefault(f.ctx, f.s, f.team, nil)
		if err != nil {
			t.Fatal(err)
		}
		if team.DefaultLimitCents != nil {
			t.Fatalf("team default = %d, want unlimited", *team.DefaultLimitCents)
		}
		if diff := cmp.Diff([]string{f.dir, "dir2"}, pending.Directories()); diff != "" {
			t.Fatalf("directories to reconcile (-want +got):\n%s", diff)
		}
		f.waitTimesOut(pending)
		if _, err := f.r.Reconcile(f.ctx, "dir2"); err != nil {
			t.Fatal(err)
		}
		f.waitTimesOut(pending) // dir1 still pending
		f.reconcile()
		if err := pending.Wait(f.ctx, f.s); err != nil {
			t.Fatalf("Wait after both reconciles: %v", err)
		}
		want["bob"] = memberView{Cents: "unlimited", Source: "team_default"}
		if diff := cmp.Diff(want, f.roster()); diff != "" {
			t.Fatalf("roster after the team default (-want +got):\n%s", diff)
		}
		if _, _, err := reconcile.SetTeamDefault(f.ctx, f.s, "no-team", nil); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("default of an unknown team: err = %v, want store.ErrNotFound", err)
		}
	})
}

// waitTimesOut checks that Wait does not return before the reconciler ran.
func (f *fixture) waitTimesOut(p reconcile.Pending) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(f.ctx, 30*time.Millisecond)
	defer cancel()
	if err := p.Wait(ctx, f.s); !errors.Is(err, context.DeadlineExceeded) {
		f.t.Fatalf("Wait before the reconcile: err = %v, want the deadline", err)
	}
}

func (f *fixture) waitInBackground(p reconcile.Pending) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
		defer cancel()
		done <- p.Wait(ctx, f.s)
	}()
	return done
}

// The rules name limit sources with the strings the roster stores.
func TestLimitSourcesMatchTheStore(t *testing.T) {
	if rules.SourceGroup != store.SourceGroup || rules.SourceTeamDefault != store.SourceTeamDefault {
		t.Fatalf("rules sources %q, %q; store sources %q, %q", rules.SourceGroup, rules.SourceTeamDefault, store.SourceGroup, store.SourceTeamDefault)
	}
}

func TestRemoveDirectory(t *testing.T) {
	for _, e := range testenv.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			f := newFixture(t, e, cents(1000))
			f.user("ann", true)
			f.user("bob", true)
			f.user("cat", false)
			f.group("eng", "Eng")
			f.add("eng", "ann", "bob")
			f.limit("eng", true, cents(5000))
			f.reconcile()
			if got := len(f.roster()); got != 2 {
				t.Fatalf("roster before: %d members, want 2", got)
			}
			f.events()
			evs, err := reconcile.RemoveDirectory(f.ctx, f.s, f.dir)
			if err != nil {
				t.Fatal(err)
			}
			var types []string
			for _, ev := range evs {
				types = append(types, ev.Type)
			}
			sort.Strings(types)
			if diff := cmp.Diff([]string{"group.deleted", "member.removed", "member.removed"}, types); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"group.deleted", "member.removed", "member.removed"}, sortedCopy(f.events())); diff != "" {
				t.Errorf("feed (-want +got):\n%s", diff)
			}
			if _, err := f.s.GetDirectory(f.ctx, f.dir); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("directory after removal: err = %v, want ErrNotFound", err)
			}
			if got := f.roster(); len(got) != 0 {
				t.Fatalf("roster after removal: %v", got)
			}
			if lim, err := f.s.GroupLimits(f.ctx, f.team); err != nil || len(lim) != 0 {
				t.Fatalf("group limits after removal: %v, %v", lim, err)
			}
			if n, err := f.s.CountDirty(f.ctx, f.dir); err != nil || n != 0 {
				t.Fatalf("pending after removal: %d, %v", n, err)
			}
			if _, err := reconcile.RemoveDirectory(f.ctx, f.s, f.dir); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("second removal: err = %v, want ErrNotFound", err)
			}
		})
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
