package e2e

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/roster-dev/roster/internal/logtest"
	"github.com/roster-dev/roster/internal/testenv"
	"github.com/roster-dev/roster/internal/testldap"
)

// TestLogs captures every line roster logs (JSON, debug level) while it
// handles secrets: SCIM with a bearer token, user passwords, a wrong token
// and a rotation; the operator's admin token and a team's; a webhook
// created, rotated and delivering; Google, Okta and Graph pollers with a
// key, an API token and a client secret (right and wrong); an LDAP
// directory created and PATCHed with bind_password; a password in the
// PostgreSQL URL. No secret may show in any line. Every line must be one
// JSON object with snake_case keys that appear once, and every job ends in
// one line.
func TestLogs(t *testing.T) {
	for _, m := range Modes() {
		t.Run(m.Name, func(t *testing.T) {
			var logs logtest.Capture
			if os.Getenv("ROSTER_TEST_LOG") != "" {
				logs.Also = os.Stderr
			}
			secrets := map[string]string{"admin token": AdminToken}
			// PostgreSQL here trusts local connections: a password in the
			// URL is accepted, and must show nowhere.
			dbPassword := "db-pw-" + testenv.RandomHex(8)
			database := m.Database
			m.Database = func(t testing.TB) string {
				u := database(t)
				if u == "" {
					return u
				}
				pu, err := url.Parse(u)
				if err != nil {
					t.Fatal(err)
				}
				pu.User = url.UserPassword(pu.User.Username(), dbPassword)
				secrets["database password"] = dbPassword
				return pu.String()
			}
			r := StartLogged(t, m, logs.Logger(), hookConfig)
			d := r.NewSCIMTeam(nil)

			{ // SCIM with a bearer token, passwords, a wrong token, a rotation
				secrets["scim token"] = d.Token
				pw := "Scim-Passw0rd-" + testenv.RandomHex(6)
				secrets["scim user password"] = pw
				u := r.SCIM(d, "POST", "/Users", map[string]any{
					"schemas": []string{urnUser}, "userName": "ann@acme.test", "active": true, "password": pw,
					"emails": []any{map[string]any{"value": "ann@acme.test", "primary": true}},
				})
				if u.Status != 201 {
					t.Fatalf("create user = %s", u)
				}
				pw2 := "Scim-Passw0rd-" + testenv.RandomHex(6)
				secrets["scim password patch"] = pw2
				id := u.JSON()["id"].(string)
				patch := map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
					"Operations": []any{map[string]any{"op": "replace", "path": "password", "value": pw2}}}
				if resp := r.SCIM(d, "PATCH", "/Users/"+id, patch); resp.Status != 200 && resp.Status != 204 {
					t.Fatalf("password PATCH = %s", resp)
				}
				inURL := "url-" + testenv.RandomHex(8)
				secrets["credential in a SCIM query"] = inURL
				if resp := r.SCIM(d, "GET", "/Users?filter="+url.QueryEscape(`userName eq "ann@acme.test"`)+"&access_token="+inURL, nil); resp.Status != 200 {
					t.Fatalf("filter = %s", resp)
				}
				wrong := "rst_scim_" + testenv.RandomHex(16)
				secrets["wrong scim token"] = wrong
				if resp := r.Do("GET", d.BaseURL+"/Users", wrong, nil); resp.Status != 401 {
					t.Fatalf("wrong token = %s", resp)
				}
				rot := r.MustAdmin(200, "POST", "/teams/"+d.TeamID+"/directories/"+d.ID+"/token", nil)
				d.Token = rot["scim"].(map[string]any)["token"].(string)
				secrets["rotated scim token"] = d.Token
				if resp := r.SCIM(d, "GET", "/Users", nil); resp.Status != 200 {
					t.Fatalf("rotated token = %s", resp)
				}
				r.WaitRoster(d.TeamID, "ann@acme.test")
				// The request log keeps the query, without the credential.
				var reqs *Response
				Eventually(t, 5*time.Second, "the request log", func() (bool, string) {
					reqs = r.Admin("GET", "/teams/"+d.TeamID+"/directories/"+d.ID+"/requests", nil)
					return strings.Contains(reqs.String(), "access_token"), reqs.String()
				})
				if strings.Contains(reqs.String(), inURL) || strings.Contains(reqs.String(), pw) || strings.Contains(reqs.String(), pw2) {
					t.Errorf("the SCIM request log shows a credential: %.500s", reqs)
				}
			}

			{ // a team admin token, made, used, and a wrong one
				created := r.MustAdmin(201, "POST", "/teams/"+d.TeamID+"/admin-tokens", map[string]any{"name": "logs"})
				tok := created["token"].(string)
				secrets["team admin token"] = tok
				if resp := r.Do("GET", "/api/v1/teams/"+d.TeamID+"/members", tok, nil); resp.Status != 200 {
					t.Fatalf("members with the team token = %s", resp)
				}
				wrong := "rst_team_" + testenv.RandomHex(16)
				secrets["wrong team admin token"] = wrong
				if resp := r.Do("GET", "/api/v1/teams/"+d.TeamID+"/members", wrong, nil); resp.Status != 401 {
					t.Fatalf("members with a wrong token = %s, want 401", resp)
				}
				r.MustAdmin(204, "DELETE", "/teams/"+d.TeamID+"/admin-tokens/"+created["id"].(string), nil)
			}

			{ // a webhook created, refused, rotated, delivering
				rc := newReceiver(t)
				inURL := "hook-" + testenv.RandomHex(8)
				secrets["credential in a webhook URL"] = inURL
				u, _ := url.Parse(rc.srv.URL)
				u.User = url.UserPassword("hookuser", inURL+"-pw")
				u.Path, u.RawQuery = "/hook", "token="+inURL
				resp := r.Admin("POST", "/teams/"+d.TeamID+"/webhooks", map[string]any{"url": u.String()})
				if resp.Status != 400 || strings.Contains(resp.String(), inURL) {
					t.Fatalf("a webhook URL with credentials = %s, want 400 without them", resp)
				}
				u.User = nil
				id, sec := createHook(r, d.TeamID, u.String())
				secrets["webhook secret"] = sec
				secrets["webhook key"] = strings.TrimPrefix(sec, "whsec_")
				rc.setSecrets(sec)
				rot := r.MustAdmin(200, "POST", "/teams/"+d.TeamID+"/webhooks/"+id+"/rotate-secret", nil)
				next := rot["secret"].(string)
				secrets["rotated webhook secret"] = next
				rc.setSecrets(sec, next)
				n := len(feedIDs(r, d.TeamID))
				addUsers(r, d, "hooked", 1)
				waitDelivered(r, rc, d.TeamID, n+1)
			}

			// Pollers with a service-account key, an API token and a client
			// secret, right and wrong.
			for _, p := range []provider{{"google", newGoogleDir}, {"okta", newOktaDir}, {"msgraph", newGraphDir}} {
				f := p.new(t, fakeOpts{})
				for i, s := range f.secrets {
					secrets[fmt.Sprintf("%s secret %d", p.name, i)] = s
				}
				c := newPollCase(t, r, f)
				c.user("bea", "Bea", "Stone")
				c.create(nil)
				bad, wrong, _ := f.badSecret()
				secrets[p.name+" wrong secret"] = wrong
				if resp := r.Admin("PATCH", c.path(""), map[string]any{f.typ: bad}); resp.Status != 400 {
					t.Fatalf("PATCH with a wrong secret = %s, want 400", resp)
				}
				c.poll("ok", "")
			}

			// LDAP with bind_password, on a real slapd. testldap.Enabled is
			// true whenever services are required (CI).
			if !testldap.Enabled() {
				t.Log("LDAP part off: set ROSTER_TEST_LDAP=1")
			} else {
				s := testldap.StartSlapd(t, testldap.SlapdOptions{})
				s.AddUser(t, "cal", "cal@corp.example")
				secrets["ldap bind password"] = s.ServicePassword
				team, dir := r.ldapDirectory(t, &s.Dir, s.URL, nil)
				Eventually(t, 30*time.Second, "first ldap sync", func() (bool, string) {
					st := r.directoryState(team, dir)
					return st["state"] == "ok", fmt.Sprint(st["state"], " ", st["last_error"])
				})
				wrong := "wrong-bind-" + testenv.RandomHex(6)
				secrets["wrong ldap bind password"] = wrong
				if resp := r.Admin("PATCH", "/teams/"+team+"/directories/"+dir, map[string]any{"ldap": map[string]any{"bind_password": wrong}}); resp.Status != 400 {
					t.Fatalf("PATCH to a wrong bind_password = %s, want 400", resp)
				}
				r.MustAdmin(200, "PATCH", "/teams/"+team+"/directories/"+dir, map[string]any{"ldap": map[string]any{"bind_password": s.ServicePassword}})
				r.syncAndWait(t, team, dir, "ok")
				// A failed poll logs its error.
				s.Stop()
				r.syncAndWait(t, team, dir, "error")
			}

			r.Stop() // every line is written
			checkLogs(t, &logs, secrets)
		})
	}
}

func checkLogs(t *testing.T, logs *logtest.Capture, secrets map[string]string) {
	t.Helper()
	text := logs.Text()
	for name, s := range secrets {
		if i := strings.Index(text, s); i >= 0 {
			start := strings.LastIndex(text[:i], "\n") + 1
			end := strings.Index(text[i:], "\n")
			t.Errorf("the %s shows in the log: %s", name, text[start:i+end])
		}
	}
	lines, problems := logs.Lines()
	for _, p := range problems {
		t.Errorf("bad line: %s", p)
	}
	if len(lines) < 20 {
		t.Fatalf("only %d lines captured:\n%s", len(lines), text)
	}

	// The same things under the same keys on every line: a measured
	// duration is seconds as a number, an error is err.
	for _, l := range lines {
		if v, ok := l.Attrs["duration"]; ok {
			if _, isNum := v.(float64); !isNum {
				t.Errorf("duration is not seconds as a number: %s", l.Raw)
			}
		}
		if _, ok := l.Attrs["took"]; ok {
			t.Errorf("a duration under another key: %s", l.Raw)
		}
		if _, ok := l.Attrs["error"]; ok {
			t.Errorf("an error under another key than err: %s", l.Raw)
		}
	}

	// One line per job run (a retried task logs once per attempt).
	jobs := map[string]int{}
	failed := 0
	runs := map[string]string{}
	for _, l := range lines {
		job := l.Str("job")
		if job == "" || l.Str("outcome") == "" {
			continue
		}
		key := l.Str("task_id") + "/" + l.Str("retry")
		if prev, ok := runs[key]; ok {
			t.Errorf("two lines for one job run:\n%s\n%s", prev, l.Raw)
		}
		runs[key] = l.Raw
		jobs[job]++
		if _, ok := l.Attrs["duration"].(float64); !ok || l.Str("component") != "queue" {
			t.Errorf("job line without duration in seconds or component: %s", l.Raw)
		}
		if job != "deliver" && l.Str("directory") == "" || job == "deliver" && l.Str("endpoint") == "" {
			t.Errorf("job line without what it worked on: %s", l.Raw)
		}
		if job == "poll" && l.Str("outcome") == "ok" && (l.Str("team") == "" || l.Str("type") == "" || l.Str("kind") == "") {
			t.Errorf("poll line without team, type or kind: %s", l.Raw)
		}
		if job == "poll" && l.Str("outcome") == "error" && l.Level() == "ERROR" && l.Str("err") != "" {
			failed++
		}
		if job == "reconcile" && l.Str("outcome") == "ok" && l.Str("team") != "" && l.Str("mode") == "" {
			t.Errorf("reconcile line without mode: %s", l.Raw)
		}
	}
	for _, job := range []string{"reconcile", "poll", "deliver"} {
		if jobs[job] == 0 {
			t.Errorf("no %s job line in the log", job)
		}
	}
	if testldap.Enabled() && failed == 0 {
		t.Errorf("no failed poll line at error level with its error")
	}

	var scimLines, authLines int
	for _, l := range lines {
		switch l.Msg() {
		case "scim request":
			scimLines++
			if l.Str("request_id") == "" || strings.Contains(l.Str("path"), "?") {
				t.Errorf("scim request line without request_id, or with the query: %s", l.Raw)
			}
		case "scim authentication failed":
			authLines++
		}
	}
	if scimLines == 0 || authLines == 0 {
		t.Errorf("%d scim request lines and %d authentication failure lines, want some of each", scimLines, authLines)
	}
}
