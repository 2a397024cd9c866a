package e2e

import (
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestOperatorDirectories: GET /api/v1/directories and `roster status`
// beside a running server show the same directories, and the filters an
// alert's runbook uses find the one behind it.
func TestOperatorDirectories(t *testing.T) {
	forModes(t, func(t *testing.T, r *Roster) {
		d := r.NewSCIMTeam(nil)
		c := &idp{t: t, r: r, d: d}
		c.user("ada@example.com", "ada@example.com")
		r.WaitRoster(d.TeamID, "ada@example.com")
		broken := r.NewSCIMTeam(nil)
		ctx := context.Background()
		dir, err := r.App.Store.GetDirectory(ctx, broken.ID)
		if err != nil {
			t.Fatal(err)
		}
		dir.State, dir.LastError = "error", "test: the source is down"
		if err := r.App.Store.UpdateDirectory(ctx, dir); err != nil {
			t.Fatal(err)
		}

		ids := func(path string) []string {
			t.Helper()
			body := r.MustAdmin(200, "GET", path, nil)
			var out []string
			for _, row := range body["directories"].([]any) {
				out = append(out, row.(map[string]any)["directory_id"].(string))
			}
			return out
		}
		all := r.MustAdmin(200, "GET", "/directories", nil)["directories"].([]any)
		if len(all) != 2 {
			t.Fatalf("GET /directories = %v, want 2 directories", all)
		}
		var synced map[string]any
		for _, row := range all {
			if m := row.(map[string]any); m["directory_id"] == d.ID {
				synced = m
			}
		}
		if synced == nil || synced["team_id"] != d.TeamID || synced["team_name"] != "Acme" || synced["type"] != "scim" ||
			synced["state"] != "ok" || synced["last_sync_at"] == nil || synced["last_error"] != "" {
			t.Errorf("synced directory row = %v", synced)
		}
		for path, want := range map[string][]string{
			"/directories?state=error":             {broken.ID},
			"/directories?problems=true":           {broken.ID},
			"/directories?state=needs_review":      nil,
			"/directories?type=ldap":               nil,
			"/directories?team=" + d.TeamID:        {d.ID},
			"/directories?type=scim&state=ok":      {d.ID},
			"/directories?team=Acme&state=error":   {broken.ID},
			"/directories?team=no-such-team":       nil,
			"/directories?state=error&problems=0":  {broken.ID},
			"/directories?type=scim&problems=true": {broken.ID},
		} {
			if got := ids(path); !slices.Equal(got, want) {
				t.Errorf("GET %s = %q, want %q", path, got, want)
			}
		}
		for _, path := range []string{"/directories?state=broken", "/directories?problems=maybe"} {
			if resp := r.Admin("GET", path, nil); resp.Status != 400 || resp.JSON()["error"].(map[string]any)["code"] != "invalid_request" {
				t.Errorf("GET %s = %s, want 400 invalid_request", path, resp)
			}
		}
		if resp := r.Do("GET", "/api/v1/directories", "", nil); resp.Status != 401 {
			t.Errorf("GET /directories without a token = %s, want 401", resp)
		}
		// A team token learns nothing about other teams' directories.
		teamTok := r.MustAdmin(201, "POST", "/teams/"+d.TeamID+"/admin-tokens", map[string]any{"name": "status"})["token"].(string)
		if resp := r.Do("GET", "/api/v1/directories", teamTok, nil); resp.Status != 403 || strings.Contains(resp.String(), broken.ID) {
			t.Errorf("GET /directories with a team token = %s, want 403 naming no directory", resp)
		}

		// roster status, a separate process, reads the live server's store.
		args := []string{"status", "--json", "--state", "error", "--data-dir", r.App.Cfg.DataDir, "--database-url", r.App.Cfg.DatabaseURL}
		out, err := exec.Command(rosterBinary(t), args...).Output()
		if err != nil {
			t.Fatalf("roster status: %v", err)
		}
		var rows []map[string]any
		if err := json.Unmarshal(out, &rows); err != nil || len(rows) != 1 || rows[0]["directory_id"] != broken.ID || rows[0]["last_error"] != "test: the source is down" {
			t.Fatalf("roster status --json --state error = %s (%v), want the broken directory", out, err)
		}
		text, err := exec.Command(rosterBinary(t), "status", "--data-dir", r.App.Cfg.DataDir, "--database-url", r.App.Cfg.DatabaseURL).Output()
		if err != nil || !strings.Contains(string(text), d.ID) || !strings.Contains(string(text), "test: the source is down") {
			t.Fatalf("roster status = %s (%v)", text, err)
		}
	})
}
