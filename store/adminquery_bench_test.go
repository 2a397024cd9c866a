package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/roster-dev/roster/internal/testenv"
	"github.com/roster-dev/roster/store"
)

// Size of the admin page's team: members, groups, groups per member, and
// one group in limitEvery with a limit.
const (
	pageMembers    = 10_000
	pageGroups     = 10_000
	pageGroupsEach = 4
	limitEvery     = 50
)

// seedPageTeam writes a reconciled roster of that size straight to the
// roster tables: team t1, directory d1. A member's limit comes from the
// first limited group they are in, else the team default.
func seedPageTeam(b *testing.B, s *store.Store) {
	b.Helper()
	ctx := setup(b, s)
	c := &store.RosterChanges{}
	for g := 0; g < pageGroups; g++ {
		c.UpsertGroups = append(c.UpsertGroups, store.RosterGroup{GroupID: fmt.Sprintf("g%05d", g), Name: fmt.Sprintf("Group %05d", g)})
	}
	for u := 0; u < pageMembers; u++ {
		m := store.RosterMember{UserID: fmt.Sprintf("u%05d", u), Email: fmt.Sprintf("user%05d@example.com", u), Name: fmt.Sprintf("User %05d", u), LimitSource: store.SourceTeamDefault}
		for k := 0; k < pageGroupsEach; k++ {
			g := (u*7 + k*977) % pageGroups
			gid := fmt.Sprintf("g%05d", g)
			c.AddLinks = append(c.AddLinks, store.Link{UserID: m.UserID, GroupID: gid})
			if g%limitEvery == 0 && m.LimitSource == store.SourceTeamDefault {
				cents := int64(100 * g)
				m.LimitCents, m.LimitSource, m.LimitGroupID, m.LimitGroupName = &cents, store.SourceGroup, gid, fmt.Sprintf("Group %05d", g)
			}
		}
		c.UpsertMembers = append(c.UpsertMembers, &m)
	}
	err := s.WithTx(ctx, func(tx *store.Tx) error {
		for g := 0; g < pageGroups; g += limitEvery {
			cents := int64(100 * g)
			if err := tx.SetGroupLimit(ctx, "t1", fmt.Sprintf("g%05d", g), true, &cents); err != nil {
				return err
			}
		}
		return tx.ApplyRoster(ctx, "t1", "d1", c)
	})
	if err != nil {
		b.Fatal(err)
	}
	// A database that has lived has statistics (autovacuum analyzes after a
	// bulk load); a fresh one's plans would measure their absence instead.
	if err := store.Analyze(ctx, s); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAdminPageQueries: one page (100 rows) of each member and group
// query the admin page makes, on a 10,000-member, 10,000-group team, on
// both engines. The searches that match almost nothing read the most.
func BenchmarkAdminPageQueries(b *testing.B) {
	for _, e := range testenv.Engines() {
		b.Run(e.Name, func(b *testing.B) {
			s := testenv.OpenStore(b, e)
			seedPageTeam(b, s)
			ctx := context.Background()
			members := func(q store.MemberQuery) func(b *testing.B) {
				return func(b *testing.B) {
					q.TeamID, q.Limit = "t1", 101
					for b.Loop() {
						if _, err := s.ListRosterMembers(ctx, q); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
			groups := func(q store.GroupQuery) func(b *testing.B) {
				return func(b *testing.B) {
					q.TeamID, q.Limit = "t1", 101
					for b.Loop() {
						if _, err := s.ListRosterGroups(ctx, q); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
			b.Run("members", members(store.MemberQuery{}))
			b.Run("members_last_page", members(store.MemberQuery{After: "u09900"}))
			b.Run("members_q_one", members(store.MemberQuery{Search: "user04242@"}))
			b.Run("members_q_none", members(store.MemberQuery{Search: "nobody"}))
			b.Run("members_group", members(store.MemberQuery{GroupID: "g00100"}))
			b.Run("members_source_default", members(store.MemberQuery{Source: store.SourceTeamDefault}))
			b.Run("members_source_group", members(store.MemberQuery{SourceGroupID: "g00100"}))
			b.Run("groups", groups(store.GroupQuery{}))
			b.Run("groups_q_one", groups(store.GroupQuery{Search: "group 04242"}))
			b.Run("groups_q_none", groups(store.GroupQuery{Search: "nothing"}))
			b.Run("review", func(b *testing.B) {
				for b.Loop() {
					if _, err := s.ReviewLimits(ctx, "t1", "", 101); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
