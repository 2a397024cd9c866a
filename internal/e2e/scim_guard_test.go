package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/roster-dev/roster/config"
)

// TestSCIMDeletionGuard drives the SCIM mass-unassign guard as an admin and
// an identity provider do: settings validated on create and PATCH, churn
// applied, a mass unassign held with the roster unchanged and the members
// shown pending removal, a returning person no longer pending, the hold
// kept across a restart, and approve applying the held removals.
func TestSCIMDeletionGuard(t *testing.T) {
	for _, m := range Modes() {
		t.Run(m.Name, func(t *testing.T) {
			dataDir, db, redis := t.TempDir(), m.Database(t), m.Redis(t)
			same := func(c *config.Config) { c.DataDir, c.DatabaseURL, c.RedisURL = dataDir, db, redis }
			r := Start(t, m, same)

			team := r.MustAdmin(201, "POST", "/teams", map[string]any{"name": "Acme", "plan": "enterprise"})
			tid := team["id"].(string)
			r.MustAdmin(200, "PUT", "/teams/"+tid+"/sso", map[string]any{"status": "active", "provider": "okta"})
			for _, bad := range []struct{ settings, want string }{
				{`{"deletion_guard": {"enabled": true, "max_fraction": 2}}`, "max_fraction"},
				{`{"deletion_guard": {"enabled": true, "max_removals": -1}}`, "max_removals"},
				{`{"deletion_guard": {"enabled": true, "window": "1s"}}`, "window"},
				{`{"deletion_guard": {"enabled": true, "windows": "1h"}}`, "windows"},
				{`{"token": "x"}`, "token"},
			} {
				resp := r.Admin("POST", "/teams/"+tid+"/directories", `{"type": "scim", "scim": `+bad.settings+`}`)
				if resp.Status != 400 || !strings.Contains(resp.String(), bad.want) {
					t.Errorf("create with %s = %s, want 400 naming %s", bad.settings, resp, bad.want)
				}
			}
			// Off by default, with the defaults shown.
			plain := r.MustAdmin(201, "POST", "/teams/"+tid+"/directories", map[string]any{"type": "scim"})
			like(t, "default guard", plain["scim"], `{"deletion_guard": {"enabled": false, "max_removals": 50, "max_fraction": 0.2, "window": "1h0m0s"}}`)

			created := r.MustAdmin(201, "POST", "/teams/"+tid+"/directories", map[string]any{"type": "scim",
				"scim": map[string]any{"deletion_guard": map[string]any{"enabled": true, "max_removals": 10, "max_fraction": 1, "window": "10m"}}})
			sc := created["scim"].(map[string]any)
			d := Directory{TeamID: tid, ID: created["id"].(string), BaseURL: sc["base_url"].(string), Token: sc["token"].(string)}
			if d.Token == "" {
				t.Fatalf("create answer has no token: %v", created)
			}
			dirPath := "/teams/" + tid + "/directories/" + d.ID
			// PATCH changes what it names and keeps the rest.
			patched := r.MustAdmin(200, "PATCH", dirPath, map[string]any{"scim": map[string]any{"deletion_guard": map[string]any{"max_removals": 2}}})
			like(t, "patched guard", patched["scim"], `{"deletion_guard": {"enabled": true, "max_removals": 2, "max_fraction": 1, "window": "10m0s"}}`)
			if resp := r.Admin("PATCH", dirPath, map[string]any{"scim": map[string]any{"deletion_guard": map[string]any{"max_fraction": 0}}}); resp.Status != 400 {
				t.Fatalf("PATCH max_fraction 0 = %s, want 400", resp)
			}

			addUsers(r, d, "g", 12)
			ids := map[string]string{}
			_, list := listOf(t, r.SCIM(d, "GET", "/Users?count=100", nil).JSON())
			for _, u := range list {
				ids[u["userName"].(string)] = u["id"].(string)
			}
			waitCount := func(what string, members, pending int) map[string]map[string]any {
				t.Helper()
				var byEmail map[string]map[string]any
				Eventually(t, 10*time.Second, what, func() (bool, string) {
					byEmail = map[string]map[string]any{}
					p := 0
					for _, m := range r.Members(tid) {
						byEmail[m["email"].(string)] = m
						if m["pending_removal"] == true {
							p++
						}
					}
					return len(byEmail) == members && p == pending, fmt.Sprintf("%d members, %d pending; want %d, %d", len(byEmail), p, members, pending)
				})
				return byEmail
			}
			waitCount("12 members", 12, 0)

			// Churn within the limit is applied.
			for _, u := range []string{"g0", "g1"} {
				if resp := r.SCIM(d, "DELETE", "/Users/"+ids[u], nil); resp.Status != 204 {
					t.Fatalf("DELETE %s = %s", u, resp)
				}
			}
			waitCount("churn applied", 10, 0)

			// A mass unassign: answered normally, recorded in the mirror,
			// held in the roster.
			deactivate := func(u string, active bool) {
				t.Helper()
				resp := r.SCIM(d, "PATCH", "/Users/"+ids[u], map[string]any{
					"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
					"Operations": []any{map[string]any{"op": "replace", "value": map[string]any{"active": active}}},
				})
				if resp.Status != 200 {
					t.Fatalf("PATCH %s active %v = %s", u, active, resp)
				}
			}
			for _, u := range []string{"g2", "g3", "g4"} {
				if resp := r.SCIM(d, "DELETE", "/Users/"+ids[u], nil); resp.Status != 204 {
					t.Fatalf("DELETE %s = %s", u, resp)
				}
			}
			deactivate("g5", false)
			deactivate("g6", false)
			if resp := r.SCIM(d, "GET", "/Users/"+ids["g2"], nil); resp.Status != 404 {
				t.Fatalf("deleted user still in the mirror: %s", resp)
			}
			byEmail := waitCount("mass unassign held", 10, 5)
			for _, u := range []string{"g2", "g3", "g4", "g5", "g6"} {
				if byEmail[u+"@acme.test"]["pending_removal"] != true {
					t.Errorf("member %s: pending_removal = %v, want true", u, byEmail[u+"@acme.test"]["pending_removal"])
				}
			}
			if byEmail["g7@acme.test"]["pending_removal"] != false {
				t.Errorf("member g7: pending_removal = %v, want false", byEmail["g7@acme.test"]["pending_removal"])
			}
			dir := r.MustAdmin(200, "GET", dirPath, nil)
			if dir["state"] != "needs_review" {
				t.Fatalf("directory state = %v, want needs_review: %v", dir["state"], dir)
			}
			review, _ := dir["review"].(map[string]any)
			if review["would_remove"] != float64(5) || len(review["sample"].([]any)) != 5 {
				t.Fatalf("review = %v, want would_remove 5 with a sample of 5", review)
			}
			types := feedTypes(r, tid)
			if count(types, "directory.needs_review") != 1 || count(types, "member.removed") != 2 {
				t.Fatalf("feed %v, want one directory.needs_review and the churn's 2 member.removed", types)
			}
			if n := r.metric("roster_deletion_guard_holds_total", "directory_type", "scim", "guard", "scim"); n != 1 {
				t.Errorf("roster_deletion_guard_holds_total{directory_type=scim,guard=scim} = %v, want 1", n)
			}

			// One comes back: no longer pending.
			deactivate("g5", true)
			waitCount("a returning person not pending", 10, 4)

			// A restart while held keeps it held, through a full reconcile.
			r.Stop()
			r = Start(t, m, same)
			d.BaseURL = strings.TrimSuffix(r.URL, "/") + d.BaseURL[strings.Index(d.BaseURL, "/scim/"):]
			r.MustAdmin(202, "POST", dirPath+"/sync", nil)
			Eventually(t, 10*time.Second, "the full reconcile done", func() (bool, string) {
				c := r.MustAdmin(200, "GET", dirPath, nil)
				return c["pending_changes"] == float64(0), fmt.Sprint(c["pending_changes"], " pending")
			})
			waitCount("held after restart", 10, 4)
			if dir := r.MustAdmin(200, "GET", dirPath, nil); dir["state"] != "needs_review" {
				t.Fatalf("after restart state = %v, want needs_review", dir["state"])
			}

			// Approve applies the held removals, with events.
			r.MustAdmin(202, "POST", dirPath+"/approve", nil)
			waitCount("approved removals applied", 6, 0)
			if dir := r.MustAdmin(200, "GET", dirPath, nil); dir["state"] != "ok" || dir["review"] != nil {
				t.Fatalf("after approval: state %v review %v, want ok and none", dir["state"], dir["review"])
			}
			types = feedTypes(r, tid)
			if count(types, "member.removed") != 6 || count(types, "directory.approved") != 1 {
				t.Fatalf("feed %v, want 6 member.removed and one directory.approved", types)
			}
			if resp := r.Admin("POST", dirPath+"/approve", nil); resp.Status != 409 {
				t.Fatalf("approve with nothing held = %s, want 409", resp)
			}
		})
	}
}

// feedTypes reads the types of every event in a team's feed, in order.
func feedTypes(r *Roster, team string) []string {
	r.T.Helper()
	var out []string
	after := ""
	for {
		page := r.MustAdmin(200, "GET", "/teams/"+team+"/events?limit=1000&after="+after, nil)
		evs := page["events"].([]any)
		for _, e := range evs {
			out = append(out, e.(map[string]any)["type"].(string))
		}
		next, _ := page["next_cursor"].(string)
		if len(evs) == 0 || next == "" || next == after {
			return out
		}
		after = next
	}
}

func count(ss []string, s string) int {
	n := 0
	for _, v := range ss {
		if v == s {
			n++
		}
	}
	return n
}

// TestSCIMDeletionGuardTurnedOff checks that turning the guard off while
// removals are held applies them and closes the review.
func TestSCIMDeletionGuardTurnedOff(t *testing.T) {
	forModes(t, func(t *testing.T, r *Roster) {
		d := r.NewSCIMTeam(nil)
		dirPath := "/teams/" + d.TeamID + "/directories/" + d.ID
		r.MustAdmin(200, "PATCH", dirPath, map[string]any{"scim": map[string]any{"deletion_guard": map[string]any{"enabled": true, "max_removals": 0}}})
		addUsers(r, d, "o", 3)
		r.WaitRoster(d.TeamID, "o0@acme.test", "o1@acme.test", "o2@acme.test")
		_, list := listOf(t, r.SCIM(d, "GET", "/Users?filter="+strings.ReplaceAll(`userName eq "o0"`, " ", "%20"), nil).JSON())
		if len(list) != 1 {
			t.Fatalf("filter o0: %v", list)
		}
		if resp := r.SCIM(d, "DELETE", "/Users/"+list[0]["id"].(string), nil); resp.Status != 204 {
			t.Fatalf("DELETE = %s", resp)
		}
		Eventually(t, 10*time.Second, "the removal held", func() (bool, string) {
			dir := r.MustAdmin(200, "GET", dirPath, nil)
			return dir["state"] == "needs_review", fmt.Sprint(dir["state"])
		})
		if n := len(r.Members(d.TeamID)); n != 3 {
			t.Fatalf("%d members while held, want 3", n)
		}
		r.MustAdmin(200, "PATCH", dirPath, map[string]any{"scim": map[string]any{"deletion_guard": map[string]any{"enabled": false}}})
		Eventually(t, 10*time.Second, "the removal applied", func() (bool, string) {
			dir := r.MustAdmin(200, "GET", dirPath, nil)
			n := len(r.Members(d.TeamID))
			return dir["state"] == "ok" && n == 2, fmt.Sprint(dir["state"], " ", n, " members")
		})
	})
}
