package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func forModes(t *testing.T, fn func(t *testing.T, r *Roster)) {
	for _, m := range Modes() {
		t.Run(m.Name, func(t *testing.T) { fn(t, Start(t, m)) })
	}
}

func TestHealthAndAuth(t *testing.T) {
	forModes(t, func(t *testing.T, r *Roster) {
		if resp := r.Do("GET", "/healthz", "", nil); resp.Status != 200 {
			t.Fatalf("/healthz = %s", resp)
		}
		if resp := r.Do("GET", "/readyz", "", nil); resp.Status != 200 {
			t.Fatalf("/readyz = %s", resp)
		}
		resp := r.Do("GET", "/metrics", "", nil)
		if resp.Status != 200 || !strings.Contains(string(resp.Body), "roster_reconciles_total") && !strings.Contains(string(resp.Body), "go_goroutines") {
			t.Fatalf("/metrics = %d", resp.Status)
		}
		// curl -d sends a form Content-Type with a JSON body; that works.
		resp = r.Do("POST", "/api/v1/teams", AdminToken, `{"name":"Curl","plan":"pro"}`, "Content-Type", "application/x-www-form-urlencoded")
		if resp.Status != 201 {
			t.Fatalf("team from curl -d = %s", resp)
		}
		resp = r.Do("POST", "/api/v1/teams", "wrong-token", map[string]any{"name": "x"})
		if resp.Status != 401 || resp.JSON()["error"].(map[string]any)["code"] != "unauthorized" {
			t.Fatalf("wrong admin token = %s", resp)
		}
	})
}

func TestTeamsDirectoriesAndRules(t *testing.T) {
	forModes(t, func(t *testing.T, r *Roster) {
		// Bad input gets a clear error.
		resp := r.Admin("POST", "/teams", map[string]any{"name": "", "plan": "gold"})
		if resp.Status != 400 || !strings.Contains(resp.String(), "plan must be one of") {
			t.Fatalf("bad team = %s", resp)
		}
		resp = r.Admin("POST", "/teams", `{"name": "x", "nmae": 1}`)
		if resp.Status != 400 {
			t.Fatalf("unknown field = %s", resp)
		}
		team := r.MustAdmin(201, "POST", "/teams", map[string]any{"name": "Acme", "plan": "enterprise", "default_spend_limit": map[string]any{"per_user_cents": 10000}})
		tid := team["id"].(string)
		// No SSO: refused with the product's words.
		resp = r.Admin("POST", "/teams/"+tid+"/directories", map[string]any{"type": "scim"})
		if resp.Status != 409 || !strings.Contains(resp.String(), "SCIM requires an active SSO connection") {
			t.Fatalf("directory without SSO = %s", resp)
		}
		// Not enterprise: refused, naming the plan.
		pro := r.MustAdmin(201, "POST", "/teams", map[string]any{"name": "Small", "plan": "pro"})
		r.MustAdmin(200, "PUT", "/teams/"+pro["id"].(string)+"/sso", map[string]any{"status": "active", "provider": "okta"})
		resp = r.Admin("POST", "/teams/"+pro["id"].(string)+"/directories", map[string]any{"type": "scim"})
		if resp.Status != 409 || !strings.Contains(resp.String(), "enterprise") {
			t.Fatalf("directory on pro plan = %s", resp)
		}
		r.MustAdmin(200, "PUT", "/teams/"+tid+"/sso", map[string]any{"status": "active", "provider": "okta"})
		d := r.MustAdmin(201, "POST", "/teams/"+tid+"/directories", map[string]any{"type": "scim"})
		scim := d["scim"].(map[string]any)
		dir := Directory{TeamID: tid, ID: d["id"].(string), BaseURL: scim["base_url"].(string), Token: scim["token"].(string)}
		if !strings.HasSuffix(dir.BaseURL, "/scim/v2/"+dir.ID) || dir.Token == "" {
			t.Fatalf("directory answer = %v", d)
		}
		got := r.MustAdmin(200, "GET", "/teams/"+tid+"/directories/"+dir.ID, nil)
		if got["state"] != "ok" || strings.Contains(fmt.Sprint(got), dir.Token) {
			t.Fatalf("directory = %v (must not show the token)", got)
		}
		// SCIM works with the token, not without.
		if resp := r.SCIM(dir, "GET", "/Users", nil); resp.Status != 200 {
			t.Fatalf("SCIM list = %s", resp)
		}
		if resp := r.Do("GET", dir.BaseURL+"/Users", "nope", nil); resp.Status != 401 {
			t.Fatalf("SCIM with a wrong token = %s", resp)
		}
		if resp := r.Do("GET", strings.Replace(dir.BaseURL, dir.ID, "no-such-dir", 1)+"/Users", dir.Token, nil); resp.Status != 401 {
			t.Fatalf("SCIM on an unknown directory = %s, want 401 (no hint)", resp)
		}
		// Token rotation: the old one stops working at once.
		rot := r.MustAdmin(200, "POST", "/teams/"+tid+"/directories/"+dir.ID+"/token", nil)
		newTok := rot["scim"].(map[string]any)["token"].(string)
		if resp := r.SCIM(dir, "GET", "/Users", nil); resp.Status != 401 {
			t.Fatalf("old token after rotation = %s", resp)
		}
		dir.Token = newTok
		if resp := r.SCIM(dir, "GET", "/Users", nil); resp.Status != 200 {
			t.Fatalf("new token = %s", resp)
		}
		// SSO goes inactive: SCIM answers 403 with a SCIM error.
		r.MustAdmin(200, "PUT", "/teams/"+tid+"/sso", map[string]any{"status": "inactive"})
		resp = r.SCIM(dir, "GET", "/Users", nil)
		if resp.Status != 403 || resp.JSON()["status"] != "403" || !strings.Contains(resp.String(), "urn:ietf:params:scim:api:messages:2.0:Error") {
			t.Fatalf("SCIM with SSO inactive = %s", resp)
		}
	})
}

func TestRosterFromSCIM(t *testing.T) {
	forModes(t, func(t *testing.T, r *Roster) {
		dir := r.NewSCIMTeam(10000)
		mk := func(user, email string) string {
			resp := r.SCIM(dir, "POST", "/Users", map[string]any{
				"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": user,
				"name": map[string]any{"givenName": strings.Title(user), "familyName": "Doe"}, "active": true,
				"emails": []any{map[string]any{"value": email, "type": "work", "primary": true}},
			})
			if resp.Status != 201 {
				t.Fatalf("create user = %s", resp)
			}
			return resp.JSON()["id"].(string)
		}
		ann := mk("ann", "Ann@Example.com")
		bob := mk("bob", "bob@example.com")
		start := time.Now()
		r.WaitRoster(dir.TeamID, "ann@example.com", "bob@example.com")
		if lag := time.Since(start); lag > time.Second {
			t.Errorf("SCIM push took %v to show in the roster", lag)
		}
		resp := r.SCIM(dir, "POST", "/Groups", map[string]any{"displayName": "Engineering", "members": []any{map[string]any{"value": ann}}})
		if resp.Status != 201 {
			t.Fatalf("create group = %s", resp)
		}
		gid := resp.JSON()["id"].(string)
		Eventually(t, 5*time.Second, "group listed", func() (bool, string) {
			gs := r.MustAdmin(200, "GET", "/teams/"+dir.TeamID+"/groups", nil)["groups"].([]any)
			return len(gs) == 1 && gs[0].(map[string]any)["member_count"].(float64) == 1, fmt.Sprint(gs)
		})
		// Group limit: lower than the default, still wins.
		g := r.MustAdmin(200, "PUT", "/teams/"+dir.TeamID+"/groups/"+gid+"/spend-limit", map[string]any{"per_user_cents": 5000})
		if g["spend_limit"].(map[string]any)["per_user_cents"].(float64) != 5000 {
			t.Fatalf("group after limit = %v", g)
		}
		m := r.WaitRoster(dir.TeamID, "ann@example.com", "bob@example.com")
		lim := m["ann@example.com"]["spend_limit"].(map[string]any)
		src := lim["source"].(map[string]any)
		if lim["per_user_cents"].(float64) != 5000 || src["type"] != "group" || src["group_id"] != gid || src["group_name"] != "Engineering" {
			t.Fatalf("ann's limit = %v", lim)
		}
		if got := m["bob@example.com"]["spend_limit"].(map[string]any); got["per_user_cents"].(float64) != 10000 || got["source"].(map[string]any)["type"] != "team_default" {
			t.Fatalf("bob's limit = %v", got)
		}
		// Unlimited default.
		r.MustAdmin(200, "PUT", "/teams/"+dir.TeamID+"/spend-limit", map[string]any{"per_user_cents": nil})
		m = r.WaitRoster(dir.TeamID, "ann@example.com", "bob@example.com")
		if got := m["bob@example.com"]["spend_limit"].(map[string]any); got["per_user_cents"] != nil {
			t.Fatalf("bob's limit with unlimited default = %v", got)
		}
		// Lookup by email and filter by group.
		byEmail := r.MustAdmin(200, "GET", "/teams/"+dir.TeamID+"/members?email=ANN@example.com", nil)["members"].([]any)
		if len(byEmail) != 1 || byEmail[0].(map[string]any)["id"] != ann {
			t.Fatalf("member by email = %v", byEmail)
		}
		inGroup := r.MustAdmin(200, "GET", "/teams/"+dir.TeamID+"/members?group="+gid, nil)["members"].([]any)
		if len(inGroup) != 1 {
			t.Fatalf("members in group = %v", inGroup)
		}
		// Directory data is read-only.
		for _, c := range []struct{ method, path string }{
			{"POST", "/members"}, {"DELETE", "/members/" + ann}, {"PATCH", "/members/" + ann},
			{"POST", "/groups"}, {"PUT", "/groups/" + gid}, {"DELETE", "/groups/" + gid}, {"POST", "/groups/" + gid + "/members"},
		} {
			resp := r.Admin(c.method, "/teams/"+dir.TeamID+c.path, map[string]any{"name": "x"})
			if resp.Status != 403 || !strings.Contains(resp.String(), "managed by the identity provider") {
				t.Errorf("%s %s = %s, want 403 managed by the identity provider", c.method, c.path, resp)
			}
		}
		// Deactivate: leaves the roster, stays readable over SCIM.
		resp = r.SCIM(dir, "PATCH", "/Users/"+bob, map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []any{map[string]any{"op": "Replace", "value": map[string]any{"active": "False"}}}})
		if resp.Status != 200 || resp.JSON()["active"] != false {
			t.Fatalf("deactivate = %s", resp)
		}
		r.WaitRoster(dir.TeamID, "ann@example.com")
		if resp := r.SCIM(dir, "GET", "/Users/"+bob, nil); resp.Status != 200 {
			t.Fatalf("inactive user over SCIM = %s", resp)
		}
		// Events, in order, with no duplicates.
		evs := r.MustAdmin(200, "GET", "/teams/"+dir.TeamID+"/events?limit=1000", nil)["events"].([]any)
		var types []string
		seen := map[string]bool{}
		for _, e := range evs {
			em := e.(map[string]any)
			if seen[em["id"].(string)] {
				t.Fatalf("duplicate event id %v", em["id"])
			}
			seen[em["id"].(string)] = true
			types = append(types, em["type"].(string))
		}
		want := []string{"member.added", "member.added", "group.created", "membership.added", "spend_limit.changed", "spend_limit.changed", "member.removed"}
		if strings.Join(types, ",") != strings.Join(want, ",") {
			t.Fatalf("events = %v, want %v", types, want)
		}
	})
}

// TestDeleteDirectory: deleting a directory takes its members off the
// roster with events, stops its token, and leaves other directories alone.
func TestDeleteDirectory(t *testing.T) {
	forModes(t, func(t *testing.T, r *Roster) {
		dir := r.NewSCIMTeam(10000)
		for _, u := range []string{"ann", "bob"} {
			resp := r.SCIM(dir, "POST", "/Users", map[string]any{
				"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": u + "@example.com", "active": true,
			})
			if resp.Status != 201 {
				t.Fatalf("create user = %s", resp)
			}
		}
		if resp := r.SCIM(dir, "POST", "/Groups", map[string]any{"displayName": "Eng"}); resp.Status != 201 {
			t.Fatalf("create group = %s", resp)
		}
		r.WaitRoster(dir.TeamID, "ann@example.com", "bob@example.com")
		// A second directory of the same team keeps its member.
		other := r.MustAdmin(201, "POST", "/teams/"+dir.TeamID+"/directories", map[string]any{"type": "scim"})
		od := Directory{TeamID: dir.TeamID, ID: other["id"].(string), BaseURL: other["scim"].(map[string]any)["base_url"].(string), Token: other["scim"].(map[string]any)["token"].(string)}
		if resp := r.SCIM(od, "POST", "/Users", map[string]any{"userName": "cat@example.com"}); resp.Status != 201 {
			t.Fatalf("create user in the other directory = %s", resp)
		}
		r.WaitRoster(dir.TeamID, "ann@example.com", "bob@example.com", "cat@example.com")
		feed := r.MustAdmin(200, "GET", "/teams/"+dir.TeamID+"/events?limit=1000", nil)
		after := feed["next_cursor"]

		if resp := r.Admin("DELETE", "/teams/"+dir.TeamID+"/directories/"+dir.ID, nil); resp.Status != 204 {
			t.Fatalf("DELETE directory = %s, want 204", resp)
		}
		ms := r.Members(dir.TeamID)
		if len(ms) != 1 || ms[0]["email"] != "cat@example.com" {
			t.Fatalf("members after delete = %v, want only cat@example.com", ms)
		}
		evs := r.MustAdmin(200, "GET", fmt.Sprintf("/teams/%s/events?after=%v&limit=1000", dir.TeamID, after), nil)["events"].([]any)
		removed := map[string]bool{}
		deleted := 0
		for _, e := range evs {
			ev := e.(map[string]any)
			switch ev["type"] {
			case "member.removed":
				removed[fmt.Sprint(ev["data"].(map[string]any)["member"].(map[string]any)["email"])] = true
			case "group.deleted":
				deleted++
			}
		}
		if !removed["ann@example.com"] || !removed["bob@example.com"] || len(removed) != 2 || deleted != 1 {
			t.Fatalf("events after delete: removed %v, groups deleted %d; want ann and bob, 1 group (%v)", removed, deleted, evs)
		}
		if resp := r.SCIM(dir, "GET", "/Users", nil); resp.Status != 401 && resp.Status != 404 {
			t.Fatalf("SCIM with the deleted directory's token = %s, want 401 or 404", resp)
		}
		if resp := r.Admin("GET", "/teams/"+dir.TeamID+"/directories/"+dir.ID, nil); resp.Status != 404 {
			t.Fatalf("GET deleted directory = %s, want 404", resp)
		}
		if resp := r.Admin("DELETE", "/teams/"+dir.TeamID+"/directories/"+dir.ID, nil); resp.Status != 404 {
			t.Fatalf("second DELETE = %s, want 404", resp)
		}
		if resp := r.SCIM(od, "GET", "/Users", nil); resp.Status != 200 {
			t.Fatalf("the other directory's SCIM = %s, want 200", resp)
		}
		ts := r.MustAdmin(200, "GET", "/teams", nil)["teams"].([]any)
		found := false
		for _, tm := range ts {
			found = found || tm.(map[string]any)["id"] == dir.TeamID
		}
		if !found {
			t.Fatalf("GET /teams = %v, want the team %s listed", ts, dir.TeamID)
		}
	})
}
