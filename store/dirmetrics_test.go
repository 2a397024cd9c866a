package store_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/roster-dev/roster/store"
)

func TestDirectoryAggregates(t *testing.T) {
	forEngines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.CreateTeam(ctx, &store.Team{ID: "t", Name: "T", Plan: store.PlanEnterprise}); err != nil {
			t.Fatal(err)
		}
		early := time.Now().Add(-time.Hour).Truncate(time.Microsecond)
		late := early.Add(30 * time.Minute)
		failing := json.RawMessage(`{"at":"2026-01-01T00:00:00Z","kind":"full","result":"error","error":"\"consecutive_failures\":1","consecutive_failures":2,"next_poll_at":"2026-01-01T00:00:04Z"}`)
		okPoll := json.RawMessage(`{"at":"2026-01-01T00:00:00Z","kind":"full","result":"ok","error":"was \"consecutive_failures\":3"}`)
		dirs := []*store.Directory{
			{ID: "s1", Type: "scim", State: store.StateOK, LastSyncAt: &late},
			{ID: "s2", Type: "scim", State: store.StateOK, LastSyncAt: &early},
			{ID: "s3", Type: "scim", State: store.StateNeedsReview},
			{ID: "l1", Type: "ldap", State: store.StateError, LastPoll: failing, LastSyncAt: &late},
			{ID: "l2", Type: "ldap", State: store.StateOK, LastPoll: okPoll},
		}
		mustTx(t, s, func(tx *store.Tx) error {
			for _, d := range dirs {
				d.TeamID = "t"
				if err := tx.CreateDirectory(ctx, d); err != nil {
					return err
				}
			}
			if err := tx.MarkDirty(ctx, "s1", store.DirtyUser, "u1", late); err != nil {
				return err
			}
			if err := tx.MarkDirty(ctx, "s2", store.DirtyUser, "u1", early); err != nil {
				return err
			}
			return tx.MarkDirty(ctx, "s2", store.DirtyGroup, "g1", late)
		})
		agg, err := s.DirectoryAggregates(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wantStates := []store.StateCount{{"ldap", "error", 1}, {"ldap", "ok", 1}, {"scim", "needs_review", 1}, {"scim", "ok", 2}}
		less := func(a, b store.StateCount) bool { return a.Type+a.State < b.Type+b.State }
		if diff := cmp.Diff(wantStates, agg.States, cmpopts.SortSlices(less)); diff != "" {
			t.Errorf("states (-want +got):\n%s", diff)
		}
		wantTypes := map[string]store.TypeAggregate{
			"scim": {Pending: 3, OldestPending: early, OldestSuccess: early},
			"ldap": {OldestSuccess: late, BackingOff: 1},
		}
		if diff := cmp.Diff(wantTypes, agg.Types, cmpopts.EquateApproxTime(0)); diff != "" {
			t.Errorf("types (-want +got):\n%s", diff)
		}

		per, err := s.DirectoryStatuses(ctx, store.StatusFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(per) != len(dirs) {
			t.Fatalf("DirectoryStatuses: %d rows, want %d", len(per), len(dirs))
		}
		byID := map[string]store.DirectoryStatus{}
		for _, d := range per {
			byID[d.DirectoryID] = d
		}
		if d := byID["s2"]; d.Pending != 2 || d.OldestPending == nil || !d.OldestPending.Equal(early) || d.TeamID != "t" || d.LastSyncAt == nil || !d.LastSyncAt.Equal(early) {
			t.Errorf("s2 = %+v, want 2 pending since %v, synced at %v", d, early, early)
		}
		if d := byID["l1"]; d.Pending != 0 || d.OldestPending != nil || d.State != store.StateError || string(d.LastPoll) != string(failing) {
			t.Errorf("l1 = %+v", d)
		}
		if n, next := byID["l1"].PollFailures(); n != 2 || next == nil || !next.Equal(time.Date(2026, 1, 1, 0, 0, 4, 0, time.UTC)) {
			t.Errorf("l1 poll failures = %d, next %v; want 2, 2026-01-01T00:00:04Z", n, next)
		}
		if n, next := byID["l2"].PollFailures(); n != 0 || next != nil {
			t.Errorf("l2 (last poll ok) poll failures = %d, next %v; want none", n, next)
		}
		if d := byID["s3"]; d.LastSyncAt != nil || d.LastPoll != nil {
			t.Errorf("s3 = %+v, want no sync and no poll", d)
		}
	})
}
