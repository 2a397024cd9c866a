package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// BenchmarkWebScreens renders every screen of the admin page, signed in,
// over HTTP, for a team of 10,000 members in 10,000 groups (each member in
// two groups; every 100th group with a limit), on both engines. The target
// is under 100 ms per screen (ns/op).
func BenchmarkWebScreens(b *testing.B) {
	for _, m := range Modes() {
		b.Run(m.Name, func(b *testing.B) {
			r := Start(b, m)
			d := r.NewSCIMTeam(5000)
			const n = 10000
			seedBulk(b, r, d, n)
			tid := d.TeamID
			var gids []string
			page := r.MustAdmin(200, "GET", "/teams/"+tid+"/groups?limit=1000", nil)
			for _, g := range page["groups"].([]any) {
				gids = append(gids, g.(map[string]any)["id"].(string))
			}
			for i := 0; i < len(gids); i += 100 {
				r.MustAdmin(200, "PUT", "/teams/"+tid+"/groups/"+gids[i]+"/spend-limit", map[string]any{"per_user_cents": 10000 + i})
			}
			br := newBrowser(b, r)
			br.mustSignIn(AdminToken, "/teams")
			members := r.MustAdmin(200, "GET", "/teams/"+tid+"/members?limit=1", nil)
			cursor, _ := members["next_cursor"].(string)
			screens := []struct{ name, path string }{
				{"overview", ""},
				{"setup", "/setup"},
				{"directory", "/directories/" + d.ID},
				{"directory-setup", "/directories/" + d.ID + "/setup"},
				{"groups", "/groups"},
				{"groups-search", "/groups?q=" + url.QueryEscape("Group 09")},
				{"groups-page-2", "/groups?cursor=" + cursor},
				{"members", "/members"},
				{"members-by-group", "/members?group=" + gids[0]},
				{"members-fragment", "/members?fragment=main"},
				{"review", "/review"},
				{"activity", "/activity"},
				{"webhooks", "/webhooks"},
				{"settings", "/settings"},
			}
			for _, s := range screens {
				b.Run(s.name, func(b *testing.B) {
					for b.Loop() {
						resp := br.get("/teams/" + tid + s.path)
						if resp.Status != 200 {
							b.Fatalf("%s = %d: %.300s", s.path, resp.Status, resp.Body)
						}
					}
				})
			}
		})
	}
}

// seedBulk loads n users and n groups over SCIM Bulk: group i holds users
// i and i+1, so each member is in two groups. It waits until the roster
// shows them all.
func seedBulk(b *testing.B, r *Roster, d Directory, n int) {
	b.Helper()
	const per = 1000
	send := func(ops []map[string]any) {
		body := map[string]any{"schemas": []string{urnBulkReq}, "failOnErrors": 1, "Operations": ops}
		resp := r.SCIM(d, "POST", "/Bulk", body)
		if resp.Status != 200 || strings.Contains(string(resp.Body), `"status":"4`) {
			b.Fatalf("bulk: %.500s", resp.Body)
		}
	}
	ids := make([]string, n)
	for start := 0; start < n; start += per {
		var ops []map[string]any
		for i := start; i < min(n, start+per); i++ {
			name := fmt.Sprintf("user%05d", i)
			ops = append(ops, map[string]any{"method": "POST", "path": "/Users", "bulkId": name, "data": map[string]any{
				"schemas": []string{urnUser}, "userName": name + "@acme.test", "active": true,
				"name":   map[string]any{"givenName": "User", "familyName": fmt.Sprint(i)},
				"emails": []any{map[string]any{"value": name + "@acme.test", "primary": true}},
			}})
		}
		body := map[string]any{"schemas": []string{urnBulkReq}, "failOnErrors": 1, "Operations": ops}
		resp := r.SCIM(d, "POST", "/Bulk", body)
		var out struct {
			Operations []struct {
				BulkID   string `json:"bulkId"`
				Location string `json:"location"`
				Status   string `json:"status"`
			}
		}
		if resp.Status != 200 || json.Unmarshal(resp.Body, &out) != nil {
			b.Fatalf("bulk users: %.500s", resp.Body)
		}
		for j, op := range out.Operations {
			if op.Status != "201" {
				b.Fatalf("bulk user %s: %s", op.BulkID, op.Status)
			}
			ids[start+j] = op.Location[strings.LastIndex(op.Location, "/")+1:]
		}
	}
	for start := 0; start < n; start += per {
		var ops []map[string]any
		for i := start; i < min(n, start+per); i++ {
			ops = append(ops, map[string]any{"method": "POST", "path": "/Groups", "bulkId": fmt.Sprint("g", i), "data": map[string]any{
				"schemas": []string{urnGroup}, "displayName": fmt.Sprintf("Group %05d", i),
				"members": []any{map[string]any{"value": ids[i]}, map[string]any{"value": ids[(i+1)%n]}},
			}})
		}
		send(ops)
	}
	Eventually(b, 5*time.Minute, "the roster of the seed", func() (bool, string) {
		c := r.MustAdmin(200, "GET", "/teams/"+d.TeamID+"/directories/"+d.ID, nil)["counts"].(map[string]any)
		return c["members"] == float64(n) && c["groups"] == float64(n) && c["pending_changes"] == 0.0, fmt.Sprint(c)
	})
}
