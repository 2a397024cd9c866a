package store_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/roster-dev/roster/internal/scimfilter"
	"github.com/roster-dev/roster/store"
)

func mustParse(t *testing.T, f string) scimfilter.Expr {
	t.Helper()
	e, err := scimfilter.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func userIDs(us []*store.User) []string {
	out := []string{}
	for _, u := range us {
		out = append(out, u.ID)
	}
	return out
}

// TestSearchUsers checks paging and totals of exact searches, and that an
// inexact one reads every candidate (more than one statement's worth) in
// id order, asks match about each, and pages what match accepts.
func TestSearchUsers(t *testing.T) {
	forEngines(t, func(t *testing.T, s *store.Store) {
		ctx := setup(t, s)
		mustTx(t, s, func(tx *store.Tx) error {
			return tx.CreateDirectory(ctx, &store.Directory{ID: "d2", TeamID: "t1", Type: "scim"})
		})
		const n = 1234
		var users, others []*store.User
		for i := range n {
			id := fmt.Sprintf("u%04d", i)
			res := map[string]any{"userName": id}
			if i%3 == 0 {
				res["title"] = "Engineer"
			}
			raw, _ := json.Marshal(res)
			users = append(users, &store.User{DirectoryID: "d1", ID: id, UserName: id + "@x.com", Active: i%2 == 0, Resource: raw})
			if i < 10 {
				others = append(others, &store.User{DirectoryID: "d2", ID: id, UserName: id + "@x.com", Active: true})
			}
		}
		mustTx(t, s, func(tx *store.Tx) error {
			if err := tx.InsertUsers(ctx, users, time.Now()); err != nil {
				return err
			}
			return tx.InsertUsers(ctx, others, time.Now())
		})
		noMatch := func(*store.User, bool) (bool, error) { return false, errors.New("match called for an exact filter") }

		res, err := s.SearchUsers(ctx, "d1", store.Search{Filter: mustParse(t, `userName eq "U0007@X.COM"`), StartIndex: 1, Count: 100}, noMatch)
		if err != nil || res.Total != 1 || !cmp.Equal(userIDs(res.Users), []string{"u0007"}) {
			t.Fatalf("userName eq: %v %d, %v", userIDs(res.Users), res.Total, err)
		}
		for _, tc := range []struct {
			start, count int
			first        string
			n, total     int
		}{
			{1, 10, "u0000", 10, n / 2},
			{600, 10, "u1198", 10, n / 2},
			{610, 50, "u1218", 8, n / 2}, // the last 8 of 617 active users
			{1, 0, "", 0, n / 2},
			{1, 1000, "u0000", 617, n / 2},
		} {
			res, err := s.SearchUsers(ctx, "d1", store.Search{Filter: mustParse(t, `active eq true`), StartIndex: tc.start, Count: tc.count}, noMatch)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Users) != tc.n || res.Total != tc.total || (tc.first != "" && res.Users[0].ID != tc.first) {
				t.Errorf("active, start %d count %d: %d users from %v, total %d; want %d from %q, total %d",
					tc.start, tc.count, len(res.Users), userIDs(res.Users[:min(1, len(res.Users))]), res.Total, tc.n, tc.first, tc.total)
			}
		}
		if res, err := s.SearchUsers(ctx, "d2", store.Search{StartIndex: 1, Count: 100}, nil); err != nil || res.Total != 10 || len(res.Users) != 10 {
			t.Fatalf("no filter on d2: %d users, total %d, %v", len(res.Users), res.Total, err)
		}

		// title lives only in the resource: the store narrows by active and
		// asks about every active user, in order.
		f := mustParse(t, `title eq "engineer" and active eq true`)
		var asked []string
		var onPage []string
		match := func(u *store.User, page bool) (bool, error) {
			asked = append(asked, u.ID)
			var m map[string]any
			if err := json.Unmarshal(u.Resource, &m); err != nil {
				return false, err
			}
			m["active"] = u.Active
			ok := scimfilter.Match(f, m, nil)
			if ok && page {
				onPage = append(onPage, u.ID)
			}
			return ok, nil
		}
		res, err = s.SearchUsers(ctx, "d1", store.Search{Filter: f, StartIndex: 3, Count: 4}, match)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"u0012", "u0018", "u0024", "u0030"} // every sixth user, from the third
		if !cmp.Equal(userIDs(res.Users), want) || !cmp.Equal(onPage, want) {
			t.Fatalf("inexact page = %v, kept on page %v; want %v", userIDs(res.Users), onPage, want)
		}
		if res.Total != (n+5)/6 {
			t.Fatalf("inexact total = %d, want %d", res.Total, (n+5)/6)
		}
		if len(asked) != n/2 || asked[0] != "u0000" || asked[len(asked)-1] != "u1232" {
			t.Fatalf("match asked about %d users (%v ... %v), want the %d active ones in order", len(asked), asked[:1], asked[len(asked)-1:], n/2)
		}
		for i := 1; i < len(asked); i++ {
			if asked[i] <= asked[i-1] {
				t.Fatalf("candidates out of order: %s after %s", asked[i], asked[i-1])
			}
		}
		if _, err := s.SearchUsers(ctx, "d1", store.Search{Filter: f, StartIndex: 1, Count: 1}, nil); !errors.Is(err, store.ErrNeedsMatch) {
			t.Fatalf("inexact search without match: %v, want ErrNeedsMatch", err)
		}
	})
}

func TestSearchGroups(t *testing.T) {
	forEngines(t, func(t *testing.T, s *store.Store) {
		ctx := setup(t, s)
		now := time.Now()
		mustTx(t, s, func(tx *store.Tx) error {
			if err := tx.InsertUsers(ctx, []*store.User{{DirectoryID: "d1", ID: "u1", UserName: "u1", Active: true}}, now); err != nil {
				return err
			}
			for _, g := range []store.Group{
				{ID: "g1", DisplayName: "Engineering", Resource: []byte(`{"displayName":"Engineering","x-team":"core"}`)},
				{ID: "g2", DisplayName: "Sales"},
				{ID: "g3", DisplayName: "Engineering Leads", Resource: []byte(`{"x-team":"core"}`)},
			} {
				g.DirectoryID = "d1"
				if err := tx.PutGroup(ctx, &g, now); err != nil {
					return err
				}
			}
			for _, g := range []string{"g1", "g2"} {
				if _, err := tx.AddMembers(ctx, "d1", g, []store.Member{{ID: "u1", Type: store.MemberUser}}, now); err != nil {
					return err
				}
			}
			return nil
		})
		ids := func(gs []*store.Group) []string {
			out := []string{}
			for _, g := range gs {
				out = append(out, g.ID)
			}
			return out
		}
		for _, tc := range []struct {
			filter string
			want   []string
		}{
			{`displayName eq "ENGINEERING"`, []string{"g1"}},
			{`displayName sw "eng"`, []string{"g1", "g3"}},
			{`members[value eq "u1"]`, []string{"g1", "g2"}},
			{`members eq "u1" and displayName co "a"`, []string{"g2"}},
		} {
			res, err := s.SearchGroups(ctx, "d1", store.Search{Filter: mustParse(t, tc.filter), StartIndex: 1, Count: 10}, func(*store.Group, bool) (bool, error) {
				return false, errors.New("match called")
			})
			if err != nil || !cmp.Equal(ids(res.Groups), tc.want) || res.Total != len(tc.want) {
				t.Errorf("%s: %v total %d, %v; want %v", tc.filter, ids(res.Groups), res.Total, err, tc.want)
			}
		}
		// x-team is in the resource only.
		f := mustParse(t, `x-team eq "core"`)
		res, err := s.SearchGroups(ctx, "d1", store.Search{Filter: f, StartIndex: 2, Count: 10}, func(g *store.Group, _ bool) (bool, error) {
			var m map[string]any
			_ = json.Unmarshal(g.Resource, &m)
			return scimfilter.Match(f, m, nil), nil
		})
		if err != nil || !cmp.Equal(ids(res.Groups), []string{"g3"}) || res.Total != 2 {
			t.Fatalf("inexact: %v total %d, %v; want [g3] of 2", ids(res.Groups), res.Total, err)
		}
	})
}
