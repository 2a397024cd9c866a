package reconcile_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/roster-dev/roster/internal/testenv"
	"github.com/roster-dev/roster/metrics"
	"github.com/roster-dev/roster/store"
	"github.com/roster-dev/roster/sync/poll"
	"github.com/roster-dev/roster/sync/reconcile"
)

// guardFixture is a SCIM directory with the deletion guard on, over a store
// it can close and open again (a restart).
type guardFixture struct {
	*fixture
	url, dataDir string
	m            *metrics.Metrics
}

func newGuardFixture(t *testing.T, e testenv.Engine, settings string) *guardFixture {
	t.Helper()
	g := &guardFixture{url: e.URL(t), dataDir: t.TempDir(), m: metrics.New()}
	g.fixture = &fixture{t: t, ctx: context.Background(), team: "team1", dir: "dir1"}
	g.open()
	if err := g.s.CreateTeam(g.ctx, &store.Team{ID: g.team, Name: "Team", Plan: store.PlanEnterprise, SSOStatus: "active"}); err != nil {
		t.Fatal(err)
	}
	g.tx(func(tx *store.Tx) error {
		return tx.CreateDirectory(g.ctx, &store.Directory{ID: g.dir, TeamID: g.team, Type: "scim", Settings: json.RawMessage(settings)})
	})
	return g
}

// open opens the store (again) and a fresh reconciler on it.
func (g *guardFixture) open() {
	g.t.Helper()
	s, err := store.Open(g.ctx, g.url, g.dataDir)
	if err != nil {
		g.t.Fatalf("open store: %v", err)
	}
	g.t.Cleanup(func() { s.Close() })
	g.s, g.r = s, &reconcile.Reconciler{Store: s, Metrics: g.m}
}

func (g *guardFixture) restart() {
	g.t.Helper()
	if err := g.s.Close(); err != nil {
		g.t.Fatal(err)
	}
	g.open()
}

// unassign deletes users from the mirror, as a SCIM DELETE does.
func (g *guardFixture) unassign(ids ...string) {
	g.tx(func(tx *store.Tx) error {
		for _, id := range ids {
			if err := tx.DeleteUser(g.ctx, g.dir, id, time.Now()); err != nil {
				return err
			}
		}
		return nil
	})
}

// members returns the roster's members and those pending removal.
func (g *guardFixture) members() (all, pending []string) {
	g.t.Helper()
	ms, err := g.s.ListRosterMembers(g.ctx, store.MemberQuery{TeamID: g.team, Limit: 100000})
	if err != nil {
		g.t.Fatal(err)
	}
	for _, m := range ms {
		all = append(all, m.UserID)
		if m.PendingRemoval {
			pending = append(pending, m.UserID)
		}
	}
	return all, pending
}

func (g *guardFixture) directory() (*store.Directory, poll.Review) {
	g.t.Helper()
	d, err := g.s.GetDirectory(g.ctx, g.dir)
	if err != nil {
		g.t.Fatal(err)
	}
	var rv poll.Review
	if len(d.Review) > 0 {
		if err := json.Unmarshal(d.Review, &rv); err != nil {
			g.t.Fatalf("review %s: %v", d.Review, err)
		}
	}
	return d, rv
}

// trips counts the guard's trips, as the metric does, through a registry.
func (g *guardFixture) trips() float64 {
	g.t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(g.m.DeletionGuardHolds)
	mfs, err := reg.Gather()
	if err != nil {
		g.t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["guard"] != "scim" {
				g.t.Fatalf("a SCIM guard hold counted with labels %v, want guard=scim", labels)
			}
			n += m.GetCounter().GetValue()
		}
	}
	return n
}

func count(evs []string, typ string) int {
	n := 0
	for _, e := range evs {
		if e == typ {
			n++
		}
	}
	return n
}

func users(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%02d", prefix, i)
	}
	return out
}

func TestSCIMDeletionGuard(t *testing.T) {
	forEngines(t, func(t *testing.T, e testenv.Engine) {
		g := newGuardFixture(t, e, `{"deletion_guard": {"enabled": true, "max_removals": 5, "max_fraction": 1, "window": "1h"}}`)
		ids := users("u", 30)
		for _, id := range ids {
			g.user(id, true)
		}
		g.reconcile()
		g.events()

		// Normal churn: three leave, one by one and together; all applied.
		g.unassign(ids[0])
		g.reconcile()
		g.unassign(ids[1], ids[2])
		g.reconcile()
		all, pending := g.members()
		if len(all) != 27 || len(pending) != 0 {
			t.Fatalf("after churn: %d members, %v pending; want 27, none", len(all), pending)
		}
		if evs := g.events(); count(evs, reconcile.EventMemberRemoved) != 3 {
			t.Fatalf("churn events = %v, want 3 member.removed", evs)
		}
		if d, _ := g.directory(); d.State != store.StateOK {
			t.Fatalf("state after churn = %q, want ok", d.State)
		}

		// A mass unassign: the run that would take the window past 5 is
		// held; nobody leaves the roster.
		mass := ids[3:13]
		g.unassign(mass...)
		g.reconcile()
		all, pending = g.members()
		if len(all) != 27 || !slices.Equal(pending, mass) {
			t.Fatalf("after mass unassign: %d members, pending %v; want 27, pending %v", len(all), pending, mass)
		}
		evs := g.events()
		if count(evs, reconcile.EventMemberRemoved) != 0 || count(evs, poll.EventDirectoryHeld) != 1 {
			t.Fatalf("held run events = %v, want one directory.needs_review and no member.removed", evs)
		}
		d, rv := g.directory()
		if d.State != store.StateNeedsReview || rv.WouldRemove != 10 || len(rv.Sample) != 10 || rv.MaxRemovals != 5 || rv.Approved {
			t.Fatalf("held directory: state %q review %+v; want needs_review, would_remove 10, sample of 10", d.State, rv)
		}
		if rv.Sample[0] != mass[0]+"@example.com" {
			t.Fatalf("review sample starts %q, want %q", rv.Sample[0], mass[0]+"@example.com")
		}
		if n := g.trips(); n != 1 {
			t.Fatalf("guard trips = %v, want 1", n)
		}

		// While the review is open every removal waits, with no second
		// event or trip.
		g.unassign(ids[13])
		g.reconcile()
		if _, pending = g.members(); len(pending) != 11 {
			t.Fatalf("pending = %v, want 11", pending)
		}
		if evs := g.events(); len(evs) != 0 {
			t.Fatalf("second held run events = %v, want none", evs)
		}
		if _, rv = g.directory(); rv.WouldRemove != 11 || g.trips() != 1 {
			t.Fatalf("review %+v, trips %v; want would_remove 11, 1 trip", rv, g.trips())
		}

		// The identity provider brings one back: no longer pending, and no
		// event, since they never left.
		g.user(ids[3], true)
		g.reconcile()
		all, pending = g.members()
		if len(all) != 27 || len(pending) != 10 || slices.Contains(pending, ids[3]) {
			t.Fatalf("after a return: %d members, pending %v; want 27, 10 pending without %s", len(all), pending, ids[3])
		}
		if evs := g.events(); count(evs, reconcile.EventMemberRemoved) != 0 || count(evs, reconcile.EventMemberAdded) != 0 {
			t.Fatalf("return events = %v, want no member.added or member.removed", evs)
		}

		// One is deleted and created anew (a new id, the same email): the
		// held entry goes, the person stays through the new one.
		g.tx(func(tx *store.Tx) error {
			u := &store.User{DirectoryID: g.dir, ID: "again", UserName: ids[4] + "@example.com", Email: ids[4] + "@example.com", Active: true}
			return tx.PutUser(g.ctx, u, time.Now())
		})
		g.reconcile()
		all, pending = g.members()
		if len(all) != 27 || len(pending) != 9 || slices.Contains(all, ids[4]) || !slices.Contains(all, "again") {
			t.Fatalf("after a re-create: members %v, pending %v; want 27 with again instead of %s, 9 pending", all, pending, ids[4])
		}
		if evs := g.events(); count(evs, reconcile.EventMemberRemoved) != 1 || count(evs, reconcile.EventMemberAdded) != 1 {
			t.Fatalf("re-create events = %v, want one member.added and one member.removed", evs)
		}

		// A restart while held keeps it held; a full run changes nothing.
		g.restart()
		g.tx(func(tx *store.Tx) error { return tx.MarkDirty(g.ctx, g.dir, store.DirtyAll, "", time.Now()) })
		g.reconcile()
		all, pending = g.members()
		if d, _ := g.directory(); len(all) != 27 || len(pending) != 9 || d.State != store.StateNeedsReview {
			t.Fatalf("after restart: %d members, %d pending, state %q; want 27, 9, needs_review", len(all), len(pending), d.State)
		}
		if evs := g.events(); len(evs) != 0 {
			t.Fatalf("events after restart = %v, want none", evs)
		}

		// Approve: the next reconcile removes the held members, with events.
		if err := poll.Approve(g.ctx, g.s, g.dir); err != nil {
			t.Fatal(err)
		}
		g.tx(func(tx *store.Tx) error { return tx.MarkDirty(g.ctx, g.dir, store.DirtyAll, "", time.Now()) })
		g.reconcile()
		all, pending = g.members()
		if len(all) != 18 || len(pending) != 0 {
			t.Fatalf("after approval: %d members, pending %v; want 18, none", len(all), pending)
		}
		evs = g.events()
		if count(evs, reconcile.EventMemberRemoved) != 9 || count(evs, poll.EventDirectoryApproved) != 1 {
			t.Fatalf("approval events = %v, want 9 member.removed and directory.approved", evs)
		}
		if d, _ := g.directory(); d.State != store.StateOK || d.Review != nil || d.LastError != "" {
			t.Fatalf("after approval: state %q review %s error %q; want ok, none", d.State, d.Review, d.LastError)
		}

		// The approved removals do not count against the next window.
		g.unassign(ids[14])
		g.reconcile()
		if all, _ = g.members(); len(all) != 17 {
			t.Fatalf("after approval a removal: %d members, want 17", len(all))
		}
	})
}

func TestSCIMDeletionGuardReverted(t *testing.T) {
	forEngines(t, func(t *testing.T, e testenv.Engine) {
		g := newGuardFixture(t, e, `{"deletion_guard": {"enabled": true}}`)
		ids := users("u", 100)
		for _, id := range ids {
			g.user(id, true)
		}
		g.reconcile()
		// An "Everyone" unassign deactivates everyone (active: false), in
		// chunks as the identity provider sends them.
		for i := 0; i < len(ids); i += 10 {
			for _, id := range ids[i : i+10] {
				g.user(id, false)
			}
			g.reconcile()
		}
		all, pending := g.members()
		// The defaults: 20 of 100 may leave within the hour; the run that
		// would take the window past that is held, and all after it.
		if len(all) != 100-20 || len(pending) != 80 {
			t.Fatalf("after deactivating everyone: %d members, %d pending; want 80, 80", len(all), len(pending))
		}
		if d, _ := g.directory(); d.State != store.StateNeedsReview {
			t.Fatalf("state = %q, want needs_review", d.State)
		}
		// The admin fixes the assignment: everyone comes back, nobody is
		// pending, and the review closes by itself.
		for _, id := range ids {
			g.user(id, true)
		}
		g.reconcile()
		all, pending = g.members()
		if len(all) != 100 || len(pending) != 0 {
			t.Fatalf("after the fix: %d members, %d pending; want 100, 0", len(all), len(pending))
		}
		if d, _ := g.directory(); d.State != store.StateOK || d.Review != nil {
			t.Fatalf("after the fix: state %q review %s; want ok, none", d.State, d.Review)
		}
	})
}

func TestSCIMDeletionGuardOff(t *testing.T) {
	forEngines(t, func(t *testing.T, e testenv.Engine) {
		g := newGuardFixture(t, e, `{}`)
		ids := users("u", 60)
		for _, id := range ids {
			g.user(id, true)
		}
		g.reconcile()
		g.unassign(ids...)
		g.reconcile()
		if all, _ := g.members(); len(all) != 0 {
			t.Fatalf("guard off: %d members left, want 0", len(all))
		}
	})
}
