package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/roster-dev/roster/store"
)

// idReader is the part of the shared reads this test calls; Store, Tx and
// ReadTx each have them.
type idReader interface {
	MirrorGroupNames(ctx context.Context, dirID string) (map[string]string, error)
	MirrorGroupNamesFor(ctx context.Context, dirID string, ids []string) (map[string]string, error)
	MirrorUsersLite(ctx context.Context, dirID string, ids []string) (map[string]store.MirrorUserLite, error)
	ParentGroups(ctx context.Context, dirID string, ids []string) (map[string][]string, error)
	GroupLimitsFor(ctx context.Context, teamID string, ids []string) (map[string]*int64, error)
	RosterGroupsFor(ctx context.Context, dirID string, ids []string) (map[string]string, error)
}

// TestReadsMeanTheSameEverywhere checks that a read by ids reads those ids,
// and none for a nil or empty list, on the Store, in a Tx and in a
// snapshot alike; reading everything is a method of its own.
func TestReadsMeanTheSameEverywhere(t *testing.T) {
	forEngines(t, func(t *testing.T, s *store.Store) {
		ctx := setup(t, s)
		now := time.Now()
		mustTx(t, s, func(tx *store.Tx) error {
			for _, g := range []store.Group{{ID: "g1", DisplayName: "One"}, {ID: "g2", DisplayName: "Two"}} {
				g.DirectoryID = "d1"
				if err := tx.PutGroup(ctx, &g, now); err != nil {
					return err
				}
			}
			if err := tx.PutUser(ctx, &store.User{DirectoryID: "d1", ID: "u1", UserName: "u1", Active: true}, now); err != nil {
				return err
			}
			if _, err := tx.AddMembers(ctx, "d1", "g1", []store.Member{{ID: "u1", Type: store.MemberUser}}, now); err != nil {
				return err
			}
			lim := int64(7)
			return tx.SetGroupLimit(ctx, "t1", "g1", true, &lim)
		})
		// check reports with t.Errorf only: inside a Tx on SQLite it runs
		// on the store's writer goroutine.
		check := func(t *testing.T, r idReader) {
			t.Helper()
			all, err := r.MirrorGroupNames(ctx, "d1")
			if err != nil {
				t.Errorf("MirrorGroupNames: %v", err)
			}
			if diff := cmp.Diff(map[string]string{"g1": "One", "g2": "Two"}, all); diff != "" {
				t.Errorf("all group names (-want +got):\n%s", diff)
			}
			some, err := r.MirrorGroupNamesFor(ctx, "d1", []string{"g2", "nope"})
			if err != nil {
				t.Errorf("MirrorGroupNamesFor: %v", err)
			}
			if diff := cmp.Diff(map[string]string{"g2": "Two"}, some); diff != "" {
				t.Errorf("some group names (-want +got):\n%s", diff)
			}
			for _, ids := range [][]string{nil, {}} {
				names, err := r.MirrorGroupNamesFor(ctx, "d1", ids)
				if err != nil || len(names) != 0 {
					t.Errorf("MirrorGroupNamesFor(%#v) = %v, %v; want none", ids, names, err)
				}
				users, err := r.MirrorUsersLite(ctx, "d1", ids)
				if err != nil || len(users) != 0 {
					t.Errorf("MirrorUsersLite(%#v) = %v, %v; want none", ids, users, err)
				}
				parents, err := r.ParentGroups(ctx, "d1", ids)
				if err != nil || len(parents) != 0 {
					t.Errorf("ParentGroups(%#v) = %v, %v; want none", ids, parents, err)
				}
				limits, err := r.GroupLimitsFor(ctx, "t1", ids)
				if err != nil || len(limits) != 0 {
					t.Errorf("GroupLimitsFor(%#v) = %v, %v; want none", ids, limits, err)
				}
				roster, err := r.RosterGroupsFor(ctx, "d1", ids)
				if err != nil || len(roster) != 0 {
					t.Errorf("RosterGroupsFor(%#v) = %v, %v; want none", ids, roster, err)
				}
			}
			if parents, err := r.ParentGroups(ctx, "d1", []string{"u1"}); err != nil || !cmp.Equal(parents, map[string][]string{"u1": {"g1"}}) {
				t.Errorf("ParentGroups(u1) = %v, %v", parents, err)
			}
		}
		t.Run("store", func(t *testing.T) { check(t, s) })
		t.Run("tx", func(t *testing.T) {
			mustTx(t, s, func(tx *store.Tx) error { check(t, tx); return nil })
		})
		t.Run("snapshot", func(t *testing.T) {
			if err := s.ReadSnapshot(ctx, func(rt *store.ReadTx) error { check(t, rt); return nil }); err != nil {
				t.Fatal(err)
			}
		})
	})
}
