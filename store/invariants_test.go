package store_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/roster-dev/roster/store"
)

// TestPutKeepsVersionAndCreation checks that the store, not the caller,
// keeps a row's version and creation time across replacements.
func TestPutKeepsVersionAndCreation(t *testing.T) {
	forEngines(t, func(t *testing.T, s *store.Store) {
		ctx := setup(t, s)
		put := func(u *store.User) {
			t.Helper()
			mustTx(t, s, func(tx *store.Tx) error { return tx.PutUser(ctx, u, time.Now()) })
		}
		first := &store.User{DirectoryID: "d1", ID: "u1", UserName: "ann", Active: true}
		put(first)
		if first.Version != 1 || first.CreatedAt.IsZero() || !first.UpdatedAt.Equal(first.CreatedAt) {
			t.Fatalf("new user: version %d, created %v, updated %v; want 1 and equal times", first.Version, first.CreatedAt, first.UpdatedAt)
		}
		time.Sleep(2 * time.Millisecond)
		// A replacement that knows nothing of the stored row, and one that
		// brings stale or made-up bookkeeping: both are ignored.
		second := &store.User{DirectoryID: "d1", ID: "u1", UserName: "ann", DisplayName: "Ann", Active: true}
		put(second)
		third := &store.User{DirectoryID: "d1", ID: "u1", UserName: "ann", DisplayName: "Ann Lee", Active: true,
			Version: 40, CreatedAt: time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)}
		put(third)
		got, err := s.GetUser(ctx, "d1", "u1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != 3 || !got.CreatedAt.Equal(first.CreatedAt) || got.DisplayName != "Ann Lee" {
			t.Fatalf("after two replacements: version %d created %v name %q; want 3, %v, Ann Lee", got.Version, got.CreatedAt, got.DisplayName, first.CreatedAt)
		}
		if second.Version != 2 || third.Version != 3 || !third.CreatedAt.Equal(first.CreatedAt) || !third.UpdatedAt.Equal(got.UpdatedAt) {
			t.Fatalf("the written users say version %d, %d, created %v, updated %v; the store holds %+v", second.Version, third.Version, third.CreatedAt, third.UpdatedAt, got)
		}
		if !got.UpdatedAt.After(got.CreatedAt) {
			t.Fatalf("updated %v is not after created %v", got.UpdatedAt, got.CreatedAt)
		}

		g := &store.Group{DirectoryID: "d1", ID: "g1", DisplayName: "Eng"}
		mustTx(t, s, func(tx *store.Tx) error { return tx.PutGroup(ctx, g, time.Now()) })
		created := g.CreatedAt
		if g.Version != 1 {
			t.Fatalf("new group: version %d", g.Version)
		}
		g2 := &store.Group{DirectoryID: "d1", ID: "g1", DisplayName: "Engineering", Version: 9}
		mustTx(t, s, func(tx *store.Tx) error { return tx.PutGroup(ctx, g2, time.Now()) })
		gotG, err := s.GetGroup(ctx, "d1", "g1")
		if err != nil {
			t.Fatal(err)
		}
		if gotG.Version != 2 || g2.Version != 2 || !gotG.CreatedAt.Equal(created) || !g2.CreatedAt.Equal(created) {
			t.Fatalf("replaced group: stored %+v, written %+v; want version 2 created %v", gotG, g2, created)
		}

		fresh := []*store.User{{DirectoryID: "d1", ID: "u2", UserName: "bob", Version: 7, CreatedAt: time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)}}
		mustTx(t, s, func(tx *store.Tx) error { return tx.InsertUsers(ctx, fresh, time.Now()) })
		u2, err := s.GetUser(ctx, "d1", "u2")
		if err != nil {
			t.Fatal(err)
		}
		if u2.Version != 1 || fresh[0].Version != 1 || !u2.CreatedAt.Equal(fresh[0].CreatedAt) || u2.CreatedAt.Year() == 2001 {
			t.Fatalf("inserted user: stored %+v, written %+v; want version 1 created now", u2, fresh[0])
		}
	})
}

func pending(t *testing.T, s *store.Store, ctx context.Context) []store.DirtyRow {
	t.Helper()
	items, err := s.PendingDirty(ctx, "d1")
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(items, func(i, j int) bool {
		if items[i].Kind != items[j].Kind {
			return items[i].Kind < items[j].Kind
		}
		return items[i].ObjectID < items[j].ObjectID
	})
	return items
}

// TestInsertMembershipsMarksDirty checks that a bulk membership insert marks
// what it changes, and that marking again (as a caller that still marks
// them itself does) changes nothing but the generation.
func TestInsertMembershipsMarksDirty(t *testing.T) {
	forEngines(t, func(t *testing.T, s *store.Store) {
		ctx := setup(t, s)
		first := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
		rows := []store.MembershipRow{
			{GroupID: "g1", MemberID: "u1", MemberType: store.MemberUser},
			{GroupID: "g1", MemberID: "g2", MemberType: store.MemberGroup},
			{GroupID: "g3", MemberID: "u1", MemberType: store.MemberUser},
			{GroupID: "g3", MemberID: "g2", MemberType: store.MemberGroup},
		}
		mustTx(t, s, func(tx *store.Tx) error { return tx.InsertMemberships(ctx, "d1", rows, first) })
		type item struct{ Kind, ID string }
		var got []item
		before := pending(t, s, ctx)
		for _, d := range before {
			got = append(got, item{d.Kind, d.ObjectID})
			if !d.Observed.Equal(first) {
				t.Errorf("%s %s observed %v, want %v", d.Kind, d.ObjectID, d.Observed, first)
			}
		}
		want := []item{{store.DirtySubtree, "g2"}, {store.DirtyUser, "u1"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("marked (-want +got):\n%s", diff)
		}
		// The poller's own marking on top, in the same transaction as a
		// second insert of the same rows.
		mustTx(t, s, func(tx *store.Tx) error {
			if err := tx.InsertMemberships(ctx, "d1", rows, time.Now()); err != nil {
				return err
			}
			if err := tx.MarkDirty(ctx, "d1", store.DirtySubtree, "g2", time.Now()); err != nil {
				return err
			}
			return tx.MarkDirtyMany(ctx, "d1", store.DirtyUser, []string{"u1", "u1"}, time.Now())
		})
		after := pending(t, s, ctx)
		if len(after) != len(before) {
			t.Fatalf("marking twice left %v, was %v", after, before)
		}
		for i := range after {
			if after[i].Kind != before[i].Kind || after[i].ObjectID != before[i].ObjectID || !after[i].Observed.Equal(first) || after[i].Gen == before[i].Gen {
				t.Errorf("re-marked %+v, was %+v: want the same item and first observation with a new generation", after[i], before[i])
			}
		}
		if ms, err := s.ListMembers(ctx, "d1", "g1"); err != nil || len(ms) != 2 {
			t.Fatalf("g1 members = %v, %v", ms, err)
		}

		// In bulk, the whole directory.
		var bulk []store.MembershipRow
		for i := range 5001 {
			bulk = append(bulk, store.MembershipRow{GroupID: "big", MemberID: fmt.Sprintf("b%05d", i), MemberType: store.MemberUser})
		}
		mustTx(t, s, func(tx *store.Tx) error {
			if err := tx.ClearDirty(ctx, "d1", after); err != nil {
				return err
			}
			return tx.InsertMemberships(ctx, "d1", bulk, first)
		})
		if items := pending(t, s, ctx); len(items) != 1 || items[0].Kind != store.DirtyAll {
			t.Fatalf("after a bulk insert, pending = %d items starting %v; want the whole directory", len(items), items[:min(len(items), 3)])
		}
	})
}
