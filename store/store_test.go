package store_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/roster-dev/roster/internal/testenv"
	"github.com/roster-dev/roster/store"
)

// The store suite runs every test on SQLite and PostgreSQL.
func forEngines(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	for _, e := range testenv.Engines() {
		t.Run(e.Name, func(t *testing.T) { fn(t, testenv.OpenStore(t, e)) })
	}
}

func mustTx(t testing.TB, s *store.Store, fn func(tx *store.Tx) error) {
	t.Helper()
	if err := s.WithTx(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func setup(t testing.TB, s *store.Store) (ctx context.Context) {
	ctx = context.Background()
	lim := int64(500)
	if err := s.CreateTeam(ctx, &store.Team{ID: "t1", Name: "One", Plan: store.PlanEnterprise, DefaultLimitCents: &lim}); err != nil {
		t.Fatal(err)
	}
	mustTx(t, s, func(tx *store.Tx) error {
		return tx.CreateDirectory(ctx, &store.Directory{ID: "d1", TeamID: "t1", Type: "scim", TokenHash: "h"})
	})
	return ctx
}

func TestTeamsAndDirectories(t *testing.T) {
	forEngines(t, func(t *testing.T, s *store.Store) {
		ctx := setup(t, s)
		if err := s.CreateTeam(ctx, &store.Team{ID: "t1", Name: "Again", Plan: "free"}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("duplicate team: err = %v, want ErrConflict", err)
		}
		tm, err := s.GetTeam(ctx, "t1")
		if err != nil || tm.Name != "One" || *tm.DefaultLimitCents != 500 || tm.SSOStatus != "inactive" {
			t.Fatalf("team = %+v, %v", tm, err)
		}
		mustTx(t, s, func(tx *store.Tx) error {
			tm.DefaultLimitCents, tm.SSOStatus = nil, "active"
			return tx.UpdateTeam(ctx, tm)
		})
		tm, _ = s.GetTeam(ctx, "t1")
		if tm.DefaultLimitCents != nil || !tm.SSOActive() {
			t.Fatalf("updated team = %+v", tm)
		}
		if _, err := s.GetTeam(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing team: %v", err)
		}
		d, err := s.GetDirectory(ctx, "d1")
		if err != nil || d.TeamID != "t1" || d.State != store.StateOK || string(d.Settings) != "{}" {
			t.Fatalf("directory = %+v, %v", d, err)
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		d.State, d.LastError, d.LastSyncAt, d.Cursor, d.CursorKind = store.StateError, "boom", &now, []byte(`{"kind":"usn","usn":5}`), "usn"
		if err := s.UpdateDirectory(ctx, d); err != nil {
			t.Fatal(err)
		}
		d2, _ := s.GetDirectory(ctx, "d1")
		if d2.State != store.StateError || d2.LastError != "boom" || !d2.LastSyncAt.Equal(now) || string(d2.Cursor) != `{"kind":"usn","usn":5}` {
			t.Fatalf("directory after update = %+v", d2)
		}
		if err := s.AddAdminToken(ctx, "hash1", "x"); err != nil {
			t.Fatal(err)
		}
		s.AddAdminToken(ctx, "hash1", "again") // idempotent
		if hs, _ := s.AdminTokenHashes(ctx); len(hs) != 1 || hs[0] != "hash1" {
			t.Fatalf("admin hashes = %v", hs)
		}
	})
}

func TestMirrorUsersAndGroups(t *testing.T) {
	forEngines(t, func(t *testing.T, s *store.Store) {
		ctx := setup(t, s)
		now := time.Now()
		mustTx(t, s, func(tx *store.Tx) error {
			return tx.PutUser(ctx, &store.User{DirectoryID: "d1", ID: "u1", UserName: "Ann@X.com", Email: "ann@x.com", Active: true,
				Emails: []store.Email{{Value: "Ann@X.com", Type: "work", Primary: true}}, Resource: []byte(`{"userName":"Ann@X.com","x-custom":1}`)}, now)
		})
		// userName is unique case-insensitively within a directory, and
		// a failed write leaves nothing behind.
		err := s.WithTx(ctx, func(tx *store.Tx) error {
			if err := tx.PutGroup(ctx, &store.Group{DirectoryID: "d1", ID: "gx", DisplayName: "Ghost"}, now); err != nil {
				return err
			}
			return tx.PutUser(ctx, &store.User{DirectoryID: "d1", ID: "u2", UserName: "ann@x.COM", Active: true}, now)
		})
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("duplicate userName: err = %v, want ErrConflict", err)
		}
		if _, err := s.GetGroup(ctx, "d1", "gx"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a rolled-back transaction left a group behind: %v", err)
		}
		u, err := s.GetUser(ctx, "d1", "u1")
		if err != nil || u.Version != 1 || string(u.Resource) != `{"userName":"Ann@X.com","x-custom":1}` {
			t.Fatalf("user = %+v, %v", u, err)
		}
		emails, _ := s.UserEmails(ctx, "d1", []string{"u1"})
		if diff := cmp.Diff([]store.Email{{Value: "ann@x.com", Type: "work", Primary: true}}, emails["u1"]); diff != "" {
			t.Fatalf("emails (-want +got):\n%s", diff)
		}
		mustTx(t, s, func(tx *store.Tx) error {
			if err := tx.PutGroup(ctx, &store.Group{DirectoryID: "d1", ID: "g1", DisplayName: "Eng"}, now); err != nil {
				return err
			}
			if err := tx.PutGroup(ctx, &store.Group{DirectoryID: "d1", ID: "g2", DisplayName: "Sub"}, now); err != nil {
				return err
			}
			added, err := tx.AddMembers(ctx, "d1", "g1", []store.Member{{ID: "u1", Type: store.MemberUser}, {ID: "g2", Type: store.MemberGroup}}, now)
			if err != nil || len(added) != 2 {
				return fmt.Errorf("added %v, %v", added, err)
			}
			again, err := tx.AddMembers(ctx, "d1", "g1", []store.Member{{ID: "u1", Type: store.MemberUser}}, now)
			if err != nil || len(again) != 0 {
				return fmt.Errorf("re-adding a member changed something: %v, %v", again, err)
			}
			return nil
		})
		if err := s.WithTx(ctx, func(tx *store.Tx) error {
			return tx.PutGroup(ctx, &store.Group{DirectoryID: "d1", ID: "g3", DisplayName: "ENG"}, now)
		}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("duplicate displayName: %v", err)
		}
		ms, _ := s.ListMembers(ctx, "d1", "g1")
		if len(ms) != 2 {
			t.Fatalf("members = %v", ms)
		}
		// Replace touches only the difference.
		mustTx(t, s, func(tx *store.Tx) error {
			added, removed, err := tx.ReplaceMembers(ctx, "d1", "g1", []store.Member{{ID: "u1", Type: store.MemberUser}}, now)
			if err != nil || len(added) != 0 || len(removed) != 1 || removed[0].ID != "g2" {
				return fmt.Errorf("replace: +%v -%v %v", added, removed, err)
			}
			return nil
		})
		// A version bump answers the new version and the stored time;
		// a group that is gone is ErrNotFound.
		g1, _ := s.GetGroup(ctx, "d1", "g1")
		mustTx(t, s, func(tx *store.Tx) error {
			v, at, err := tx.TouchGroup(ctx, "d1", "g1")
			if err != nil || v != g1.Version+1 {
				return fmt.Errorf("touch: version %d (was %d), %v", v, g1.Version, err)
			}
			if got, _ := tx.GetGroup(ctx, "d1", "g1", false); got == nil || !got.UpdatedAt.Equal(at) || got.Version != v {
				return fmt.Errorf("touch answered %d at %v, the group holds %+v", v, at, got)
			}
			return nil
		})
		if err := s.WithTx(ctx, func(tx *store.Tx) error {
			_, _, err := tx.TouchGroup(ctx, "d1", "nope")
			return err
		}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("touching a missing group: %v", err)
		}
		// Deleting a user removes their memberships.
		mustTx(t, s, func(tx *store.Tx) error { return tx.DeleteUser(ctx, "d1", "u1", now) })
		if ms, _ := s.ListMembers(ctx, "d1", "g1"); len(ms) != 0 {
			t.Fatalf("members after user delete = %v", ms)
		}
		if err := s.WithTx(ctx, func(tx *store.Tx) error { return tx.DeleteUser(ctx, "d1", "u1", now) }); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
	})
}

// TestDirtyGenerations checks that an item marked again while a reconcile
// read it survives that reconcile's clearing.
func TestDirtyGenerations(t *testing.T) {
	forEngines(t, func(t *testing.T, s *store.Store) {
		ctx := setup(t, s)
		now := time.Now()
		mustTx(t, s, func(tx *store.Tx) error {
			return tx.MarkDirtyMany(ctx, "d1", store.DirtyUser, []string{"a", "b", "a"}, now)
		})
		var read []store.DirtyRow
		mustTx(t, s, func(tx *store.Tx) error {
			var err error
			read, err = tx.PendingDirty(ctx, "d1")
			return err
		})
		if len(read) != 2 {
			t.Fatalf("pending = %v", read)
		}
		mustTx(t, s, func(tx *store.Tx) error { return tx.MarkDirty(ctx, "d1", store.DirtyUser, "a", now) })
		mustTx(t, s, func(tx *store.Tx) error { return tx.ClearDirty(ctx, "d1", read) })
		var left []store.DirtyRow
		mustTx(t, s, func(tx *store.Tx) error {
			var err error
			left, err = tx.PendingDirty(ctx, "d1")
			return err
		})
		if len(left) != 1 || left[0].ObjectID != "a" {
			t.Fatalf("after clearing, pending = %v, want only the re-marked a", left)
		}
	})
}

// TestEventsInCommitOrder appends events from many concurrent transactions
// and checks the feed never shows a later event before an earlier one: a
// reader that saw sequence N never later finds an event below N.
func TestEventsInCommitOrder(t *testing.T) {
	forEngines(t, func(t *testing.T, s *store.Store) {
		ctx := setup(t, s)
		const writers, each = 8, 25
		var wg sync.WaitGroup
		stop := make(chan struct{})
		var readErr error
		var readerWG sync.WaitGroup
		readerWG.Add(1)
		go func() {
			defer readerWG.Done()
			seen := map[int64]bool{}
			var after int64
			for {
				evs, err := s.ListEvents(ctx, "t1", after, 1000)
				if err != nil {
					readErr = err
					return
				}
				for _, e := range evs {
					if seen[e.Seq] {
						readErr = fmt.Errorf("event %d seen twice", e.Seq)
						return
					}
					seen[e.Seq] = true
					after = e.Seq
				}
				// Everything at or below the cursor must already be visible.
				all, _ := s.ListEvents(ctx, "t1", 0, 100000)
				for _, e := range all {
					if e.Seq <= after && !seen[e.Seq] {
						readErr = fmt.Errorf("event %d appeared after the reader passed it (cursor %d)", e.Seq, after)
						return
					}
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < each; i++ {
					err := s.WithTx(ctx, func(tx *store.Tx) error {
						if err := tx.AppendEvents(ctx, "t1", []store.Event{{DirectoryID: "d1", Type: "x", Data: []byte(fmt.Sprintf(`{"w":%d,"i":%d}`, w, i))}}); err != nil {
							return err
						}
						time.Sleep(time.Millisecond) // hold the transaction open a little
						return nil
					})
					if err != nil {
						t.Error(err)
						return
					}
				}
			}(w)
		}
		wg.Wait()
		close(stop)
		readerWG.Wait()
		if readErr != nil {
			t.Fatal(readErr)
		}
		all, _ := s.ListEvents(ctx, "t1", 0, 100000)
		if len(all) != writers*each {
			t.Fatalf("%d events, want %d", len(all), writers*each)
		}
		if !sort.SliceIsSorted(all, func(i, j int) bool { return all[i].Seq < all[j].Seq }) {
			t.Fatal("events out of order")
		}
	})
}

func TestSCIMRequestLog(t *testing.T) {
	forEngines(t, func(t *testing.T, s *store.Store) {
		ctx := setup(t, s)
		old := time.Now().Add(-48 * time.Hour)
		err := s.LogSCIMRequests(ctx, []store.SCIMRequest{
			{DirectoryID: "d1", At: old, Method: "GET", Path: "/Users", Status: 200, Duration: time.Millisecond},
			{DirectoryID: "d1", At: time.Now(), Method: "POST", Path: "/Users", Status: 409, Error: "uniqueness", Body: `{"userName":"x"}`},
		})
		if err != nil {
			t.Fatal(err)
		}
		reqs, _ := s.ListSCIMRequests(ctx, "d1", 0, 10)
		if len(reqs) != 2 || reqs[0].Method != "POST" {
			t.Fatalf("log, newest first = %+v", reqs)
		}
		if n, err := s.PruneSCIMRequests(ctx, time.Now().Add(-24*time.Hour)); err != nil || n != 1 {
			t.Fatalf("pruned %d, %v", n, err)
		}
	})
}

// TestConcurrentTransactionsAreIsolated runs many transactions at once (on
// SQLite they share a batch as savepoints): the ones that fail leave
// nothing, the others all commit, and a panic reaches its own caller only.
func TestConcurrentTransactionsAreIsolated(t *testing.T) {
	forEngines(t, func(t *testing.T, s *store.Store) {
		ctx := setup(t, s)
		const n = 40
		mustTx(t, s, func(tx *store.Tx) error {
			return tx.PutGroup(ctx, &store.Group{DirectoryID: "d1", ID: "taken", DisplayName: "Taken"}, time.Now())
		})
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				defer func() {
					if p := recover(); p != nil {
						errs[i] = fmt.Errorf("panic: %v", p)
					}
				}()
				errs[i] = s.WithTx(ctx, func(tx *store.Tx) error {
					if err := tx.PutGroup(ctx, &store.Group{DirectoryID: "d1", ID: fmt.Sprintf("g%d", i), DisplayName: fmt.Sprintf("G%d", i)}, time.Now()); err != nil {
						return err
					}
					switch i % 4 {
					case 1:
						return errors.New("caller gives up")
					case 2:
						// A constraint error after a successful write.
						return tx.PutGroup(ctx, &store.Group{DirectoryID: "d1", ID: fmt.Sprintf("dup%d", i), DisplayName: "taken"}, time.Now())
					case 3:
						if i == 3 {
							panic("boom")
						}
					}
					return nil
				})
			}(i)
		}
		wg.Wait()
		for i := 0; i < n; i++ {
			_, err := s.GetGroup(ctx, "d1", fmt.Sprintf("g%d", i))
			switch {
			case i%4 == 0 || (i%4 == 3 && i != 3):
				if errs[i] != nil || err != nil {
					t.Errorf("tx %d: err %v, group read %v; want committed", i, errs[i], err)
				}
			default:
				if errs[i] == nil || !errors.Is(err, store.ErrNotFound) {
					t.Errorf("tx %d: err %v, group read %v; want rolled back", i, errs[i], err)
				}
			}
		}
		if errs[3] == nil || !strings.Contains(errs[3].Error(), "panic: boom") {
			t.Errorf("the panic did not reach its caller: %v", errs[3])
		}
	})
}

// Many writers at once: every transaction runs exactly once and none is
// left waiting (on SQLite the writer runs them in shared batches).
func TestManyConcurrentWriters(t *testing.T) {
	forEngines(t, func(t *testing.T, s *store.Store) {
		ctx := setup(t, s)
		const writers, each = 16, 150
		var wg sync.WaitGroup
		var runs atomic.Int64
		done := make(chan struct{})
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < each; i++ {
					err := s.WithTx(ctx, func(tx *store.Tx) error {
						runs.Add(1)
						return tx.MarkDirty(ctx, "d1", store.DirtyUser, fmt.Sprintf("u%d-%d", w, i), time.Now())
					})
					if err != nil {
						t.Errorf("writer %d, tx %d: %v", w, i, err)
						return
					}
				}
			}(w)
		}
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Fatal("writers still waiting after 60 s")
		}
		var items []store.DirtyRow
		mustTx(t, s, func(tx *store.Tx) error {
			var err error
			items, err = tx.PendingDirty(ctx, "d1")
			return err
		})
		n := 0
		for _, it := range items {
			if it.Kind == store.DirtyUser && strings.HasPrefix(it.ObjectID, "u") && strings.Contains(it.ObjectID, "-") {
				n++
			}
		}
		if n != writers*each || runs.Load() != writers*each {
			t.Fatalf("%d rows, %d runs; want %d of each", n, runs.Load(), writers*each)
		}
	})
}

func TestGroupsOf(t *testing.T) {
	forEngines(t, func(t *testing.T, s *store.Store) {
		ctx := setup(t, s)
		now := time.Now()
		// 600 users (more than one 500-id query) in "b"; b is in "a" and
		// "c"; "c" is in "b" (a cycle); u0 is also directly in "a".
		var users []*store.User
		var ids []string
		for i := range 600 {
			id := fmt.Sprintf("u%03d", i)
			ids = append(ids, id)
			users = append(users, &store.User{DirectoryID: "d1", ID: id, UserName: id, Active: true})
		}
		mustTx(t, s, func(tx *store.Tx) error {
			if err := tx.InsertUsers(ctx, users, now); err != nil {
				return err
			}
			for _, g := range []string{"a", "b", "c"} {
				if err := tx.PutGroup(ctx, &store.Group{DirectoryID: "d1", ID: "g" + g, DisplayName: strings.ToUpper(g)}, now); err != nil {
					return err
				}
			}
			var ms []store.Member
			for _, id := range ids {
				ms = append(ms, store.Member{ID: id, Type: store.MemberUser})
			}
			add := func(group string, ms ...store.Member) error {
				_, err := tx.AddMembers(ctx, "d1", group, ms, now)
				return err
			}
			return errors.Join(add("gb", ms...), add("ga", store.Member{ID: "gb", Type: store.MemberGroup}, store.Member{ID: "u000", Type: store.MemberUser}),
				add("gc", store.Member{ID: "gb", Type: store.MemberGroup}), add("gb", store.Member{ID: "gc", Type: store.MemberGroup}))
		})
		mustTx(t, s, func(tx *store.Tx) error {
			return tx.InsertUsers(ctx, []*store.User{{DirectoryID: "d1", ID: "loner", UserName: "loner", Active: true}}, now)
		})
		got, err := s.GroupsOf(ctx, "d1", append(ids, "loner", "gb"))
		if err != nil {
			t.Fatal(err)
		}
		want0 := []store.GroupRef{{ID: "ga", DisplayName: "A", Direct: true}, {ID: "gb", DisplayName: "B", Direct: true}, {ID: "gc", DisplayName: "C"}}
		if diff := cmp.Diff(want0, got["u000"]); diff != "" {
			t.Fatalf("u000 (-want +got):\n%s", diff)
		}
		want := []store.GroupRef{{ID: "gb", DisplayName: "B", Direct: true}, {ID: "ga", DisplayName: "A"}, {ID: "gc", DisplayName: "C"}}
		for _, id := range ids[1:] {
			if diff := cmp.Diff(want, got[id]); diff != "" {
				t.Fatalf("%s (-want +got):\n%s", id, diff)
			}
		}
		if _, ok := got["loner"]; ok {
			t.Fatalf("loner has groups: %v", got["loner"])
		}
		// A group's own groups: the cycle brings nothing back to b itself.
		wantB := []store.GroupRef{{ID: "ga", DisplayName: "A", Direct: true}, {ID: "gc", DisplayName: "C", Direct: true}}
		if diff := cmp.Diff(wantB, got["gb"]); diff != "" {
			t.Fatalf("gb (-want +got):\n%s", diff)
		}
	})
}

// TestGroupsOfDeepNesting walks a chain of nested groups deeper than any
// cut, closed into a cycle, with a diamond on the way and a membership in
// a group that does not exist (followed, not listed).
func TestGroupsOfDeepNesting(t *testing.T) {
	forEngines(t, func(t *testing.T, s *store.Store) {
		ctx := setup(t, s)
		now := time.Now()
		const depth = 100
		name := func(i int) string { return fmt.Sprintf("g%03d", i) }
		var rows []store.MembershipRow
		for i := 1; i < depth; i++ { // g(i) holds g(i-1)
			rows = append(rows, store.MembershipRow{GroupID: name(i), MemberID: name(i - 1), MemberType: store.MemberGroup})
		}
		rows = append(rows,
			store.MembershipRow{GroupID: name(0), MemberID: "u1", MemberType: store.MemberUser},
			store.MembershipRow{GroupID: name(0), MemberID: name(depth - 1), MemberType: store.MemberGroup}, // the cycle
			store.MembershipRow{GroupID: "left", MemberID: name(50), MemberType: store.MemberGroup},         // the diamond
			store.MembershipRow{GroupID: "right", MemberID: name(50), MemberType: store.MemberGroup},
			store.MembershipRow{GroupID: "top", MemberID: "left", MemberType: store.MemberGroup},
			store.MembershipRow{GroupID: "top", MemberID: "right", MemberType: store.MemberGroup},
			store.MembershipRow{GroupID: "ghost", MemberID: name(10), MemberType: store.MemberGroup},
			store.MembershipRow{GroupID: "above-ghost", MemberID: "ghost", MemberType: store.MemberGroup},
		)
		mustTx(t, s, func(tx *store.Tx) error {
			if err := tx.InsertUsers(ctx, []*store.User{{DirectoryID: "d1", ID: "u1", UserName: "u1", Active: true}}, now); err != nil {
				return err
			}
			groups := []string{"left", "right", "top", "above-ghost"}
			for i := range depth {
				groups = append(groups, name(i))
			}
			for _, g := range groups {
				if err := tx.PutGroup(ctx, &store.Group{DirectoryID: "d1", ID: g, DisplayName: strings.ToUpper(g)}, now); err != nil {
					return err
				}
			}
			return tx.InsertMemberships(ctx, "d1", rows, now)
		})
		got, err := s.GroupsOf(ctx, "d1", []string{"u1", name(depth - 1)})
		if err != nil {
			t.Fatal(err)
		}
		want := []store.GroupRef{{ID: name(0), DisplayName: "G000", Direct: true}}
		var indirect []store.GroupRef
		for i := 1; i < depth; i++ {
			indirect = append(indirect, store.GroupRef{ID: name(i), DisplayName: strings.ToUpper(name(i))})
		}
		indirect = append(indirect,
			store.GroupRef{ID: "above-ghost", DisplayName: "ABOVE-GHOST"}, store.GroupRef{ID: "left", DisplayName: "LEFT"},
			store.GroupRef{ID: "right", DisplayName: "RIGHT"}, store.GroupRef{ID: "top", DisplayName: "TOP"})
		sort.Slice(indirect, func(i, j int) bool { return indirect[i].DisplayName < indirect[j].DisplayName })
		want = append(want, indirect...)
		if diff := cmp.Diff(want, got["u1"]); diff != "" {
			t.Fatalf("u1's groups (-want +got):\n%s", diff)
		}
		// The top of the chain is held by g000 through the cycle, and so
		// by every group of the chain but itself.
		top := got[name(depth-1)]
		if len(top) != len(want)-1 || top[0].ID != name(0) || !top[0].Direct {
			t.Fatalf("%s's groups = %d, starting %v; want %d with %s direct", name(depth-1), len(top), top[:min(len(top), 2)], len(want)-1, name(0))
		}
	})
}
