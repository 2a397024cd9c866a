package store_test

import (
	"errors"
	"testing"

	"github.com/roster-dev/roster/store"
)

func TestTeamTokens(t *testing.T) {
	forEngines(t, func(t *testing.T, s *store.Store) {
		ctx := setup(t, s)
		if err := s.AddAdminToken(ctx, "op", "configured"); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateTeamToken(ctx, &store.AdminToken{ID: "k1", TeamID: "nope", Name: "x", Hash: "h0"}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("token of a missing team: %v, want ErrNotFound", err)
		}
		for _, id := range []string{"k1", "k2"} {
			if err := s.CreateTeamToken(ctx, &store.AdminToken{ID: id, TeamID: "t1", Name: id, Hash: "h" + id}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CreateTeamToken(ctx, &store.AdminToken{ID: "k3", TeamID: "t1", Name: "dup", Hash: "hk1"}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("same hash twice: %v, want ErrConflict", err)
		}
		// Operator hashes (what start-up checks) leave team tokens out.
		if hs, _ := s.AdminTokenHashes(ctx); len(hs) != 1 || hs[0] != "op" {
			t.Fatalf("operator hashes = %v", hs)
		}
		all, err := s.AdminTokens(ctx)
		if err != nil || len(all) != 3 {
			t.Fatalf("all tokens = %+v, %v", all, err)
		}
		if err := s.TouchTeamToken(ctx, "k2", all[0].CreatedAt); err != nil {
			t.Fatal(err)
		}
		toks, err := s.ListTeamTokens(ctx, "t1")
		if err != nil || len(toks) != 2 || toks[0].LastUsedAt != nil || toks[1].LastUsedAt == nil {
			t.Fatalf("team tokens = %+v, %v", toks, err)
		}
		if err := s.DeleteTeamToken(ctx, "t2", "k1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("delete from another team: %v, want ErrNotFound", err)
		}
		if err := s.DeleteTeamToken(ctx, "t1", "k1"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteTeamToken(ctx, "", ""); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("delete of an operator token: %v, want ErrNotFound", err)
		}
		if toks, _ := s.ListTeamTokens(ctx, "t1"); len(toks) != 1 || toks[0].ID != "k2" {
			t.Fatalf("after delete = %+v", toks)
		}
	})
}
