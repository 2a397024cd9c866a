package e2e

import (
	"strings"
	"testing"
)

// TestTeamAdminTokens: a team token sees and changes only its team, on
// every kind of route; the operator's sees all; a deleted token stops at
// once; secrets are never listed.
func TestTeamAdminTokens(t *testing.T) {
	for _, m := range Modes() {
		t.Run(m.Name, func(t *testing.T) { testTeamAdminTokens(t, Start(t, m, hookConfig)) })
	}
}

func testTeamAdminTokens(t *testing.T, r *Roster) {
	{
		a := r.NewSCIMTeam(5000)
		b := r.NewSCIMTeam(5000)
		// Something on team B for each kind of route to aim at.
		hook := r.MustAdmin(201, "POST", "/teams/"+b.TeamID+"/webhooks", map[string]any{"url": "http://127.0.0.1:1/hook"})
		bTok := r.MustAdmin(201, "POST", "/teams/"+b.TeamID+"/admin-tokens", map[string]any{"name": "b's page"})

		created := r.MustAdmin(201, "POST", "/teams/"+a.TeamID+"/admin-tokens", map[string]any{"name": "ci"})
		tok, id := created["token"].(string), created["id"].(string)
		if !strings.HasPrefix(tok, "rst_team_") || id == "" || created["name"] != "ci" {
			t.Fatalf("created token = %v", created)
		}
		as := func(method, path string, body any) *Response {
			t.Helper()
			return r.Do(method, "/api/v1"+path, tok, body)
		}
		want := func(status int, method, path string, body any) *Response {
			t.Helper()
			resp := as(method, path, body)
			if resp.Status != status {
				t.Fatalf("team token %s %s = %s, want %d", method, path, resp, status)
			}
			return resp
		}

		// Its own team: reads and the one writable thing.
		want(200, "GET", "/teams/"+a.TeamID, nil)
		want(200, "GET", "/teams/"+a.TeamID+"/members", nil)
		want(200, "GET", "/teams/"+a.TeamID+"/directories/"+a.ID, nil)
		want(200, "PUT", "/teams/"+a.TeamID+"/spend-limit", map[string]any{"per_user_cents": 7000})
		// It may make and list its team's tokens, never see a secret.
		second := want(201, "POST", "/teams/"+a.TeamID+"/admin-tokens", map[string]any{"name": "page"}).JSON()
		list := want(200, "GET", "/teams/"+a.TeamID+"/admin-tokens", nil)
		for _, secretish := range []string{tok, second["token"].(string), "hash", "token\""} {
			if strings.Contains(string(list.Body), secretish) {
				t.Fatalf("token list shows %q: %s", secretish, list)
			}
		}
		if n := len(list.JSON()["tokens"].([]any)); n != 2 {
			t.Fatalf("team A lists %d tokens, want 2: %s", n, list)
		}
		if ops := r.MustAdmin(200, "GET", "/teams/"+a.TeamID+"/admin-tokens", nil); len(ops["tokens"].([]any)) != 2 {
			t.Fatalf("operator lists %v", ops)
		}
		// The token just used has a last_used_at.
		var used bool
		for _, x := range list.JSON()["tokens"].([]any) {
			m := x.(map[string]any)
			if m["id"] == id {
				_, used = m["last_used_at"]
			}
		}
		if !used {
			t.Fatalf("the token in use has no last_used_at: %s", list)
		}

		// Team B: exactly what a team that does not exist answers.
		missing := as("GET", "/teams/no-such-team/members", nil)
		if missing.Status != 404 {
			t.Fatalf("missing team = %s", missing)
		}
		for _, c := range []struct{ method, path string }{
			{"GET", "/teams/" + b.TeamID},
			{"GET", "/teams/" + b.TeamID + "/members"},
			{"GET", "/teams/" + b.TeamID + "/groups"},
			{"GET", "/teams/" + b.TeamID + "/directories"},
			{"GET", "/teams/" + b.TeamID + "/directories/" + b.ID},
			{"POST", "/teams/" + b.TeamID + "/directories/" + b.ID + "/token"},
			{"GET", "/teams/" + b.TeamID + "/events"},
			{"GET", "/teams/" + b.TeamID + "/events/stream"},
			{"GET", "/teams/" + b.TeamID + "/webhooks"},
			{"GET", "/teams/" + b.TeamID + "/webhooks/" + hook["id"].(string)},
			{"GET", "/teams/" + b.TeamID + "/admin-tokens"},
			{"POST", "/teams/" + b.TeamID + "/admin-tokens"},
			{"DELETE", "/teams/" + b.TeamID + "/admin-tokens/" + bTok["id"].(string)},
			{"PUT", "/teams/" + b.TeamID + "/spend-limit"},
		} {
			resp := as(c.method, c.path, map[string]any{"name": "x", "per_user_cents": 1})
			e := resp.JSON()["error"].(map[string]any)
			if resp.Status != 404 || e["code"] != "not_found" || e["message"] != `no team "`+b.TeamID+`"` {
				t.Errorf("team token %s %s = %s, want 404 no team", c.method, c.path, resp)
			}
		}
		// Outside any team: 403.
		if resp := as("GET", "/teams", nil); resp.Status != 403 {
			t.Errorf("GET /teams = %s, want 403", resp)
		}
		if resp := as("POST", "/teams", map[string]any{"name": "x"}); resp.Status != 403 {
			t.Errorf("POST /teams = %s, want 403", resp)
		}
		// B's token still works, and B's directory token was not rotated.
		if resp := r.Do("GET", "/api/v1/teams/"+b.TeamID, bTok["token"].(string), nil); resp.Status != 200 {
			t.Fatalf("team B's token = %s", resp)
		}
		if resp := r.SCIM(b, "GET", "/Users", nil); resp.Status != 200 {
			t.Fatalf("team B's SCIM token = %s", resp)
		}
		// The operator sees every team.
		r.MustAdmin(200, "GET", "/teams/"+b.TeamID+"/members", nil)
		if teams := r.MustAdmin(200, "GET", "/teams", nil); len(teams["teams"].([]any)) != 2 {
			t.Fatalf("operator's teams = %v", teams)
		}

		// A token cannot delete itself; another of the team's can, and the
		// deleted one answers 401 on the very next request.
		want(409, "DELETE", "/teams/"+a.TeamID+"/admin-tokens/"+id, nil)
		if resp := r.Do("DELETE", "/api/v1/teams/"+a.TeamID+"/admin-tokens/"+id, second["token"].(string), nil); resp.Status != 204 {
			t.Fatalf("delete with the second token = %s", resp)
		}
		if resp := as("GET", "/teams/"+a.TeamID, nil); resp.Status != 401 {
			t.Fatalf("deleted token = %s, want 401", resp)
		}
		r.MustAdmin(204, "DELETE", "/teams/"+a.TeamID+"/admin-tokens/"+second["id"].(string), nil)
		if resp := r.Do("GET", "/api/v1/teams/"+a.TeamID, second["token"].(string), nil); resp.Status != 401 {
			t.Fatalf("token deleted by the operator = %s, want 401", resp)
		}
		r.MustAdmin(404, "DELETE", "/teams/"+a.TeamID+"/admin-tokens/"+second["id"].(string), nil)
		r.MustAdmin(404, "POST", "/teams/no-such-team/admin-tokens", map[string]any{"name": "x"})
		if resp := r.Admin("POST", "/teams/"+a.TeamID+"/admin-tokens", map[string]any{"name": " "}); resp.Status != 400 {
			t.Fatalf("empty name = %s", resp)
		}
	}
}
