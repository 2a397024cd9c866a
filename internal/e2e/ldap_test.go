package e2e

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/roster-dev/roster/internal/testldap"
)

// ldapServer is a directory server a scenario runs against.
type ldapServer struct {
	name  string
	start func(t *testing.T) (*testldap.Dir, func(), func()) // dir, stop, restart
}

func ldapServers() []ldapServer {
	return []ldapServer{
		{"slapd", func(t *testing.T) (*testldap.Dir, func(), func()) {
			s := testldap.StartSlapd(t, testldap.SlapdOptions{SizeLimit: 5})
			return &s.Dir, s.Stop, func() {
				if err := s.Start(); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"samba-ad", func(t *testing.T) (*testldap.Dir, func(), func()) {
			s := testldap.SambaAD(t)
			// Samba is shared: "server down" is simulated by a wrong
			// port instead of stopping it.
			return &s.Dir, nil, nil
		}},
	}
}

// ldapDirectory creates a team and an LDAP directory reading d.
func (r *Roster) ldapDirectory(t *testing.T, d *testldap.Dir, url string, guard map[string]any) (team, dir string) {
	t.Helper()
	tm := r.MustAdmin(201, "POST", "/teams", map[string]any{"name": "Corp", "plan": "enterprise", "default_spend_limit": map[string]any{"per_user_cents": 2000}})
	team = tm["id"].(string)
	r.MustAdmin(200, "PUT", "/teams/"+team+"/sso", map[string]any{"status": "active", "provider": "okta"})
	settings := map[string]any{
		"url": url, "bind_dn": d.ServiceDN, "bind_password": d.ServicePassword, "base_dn": d.BaseDN,
		"schedule": "@every 1h", "page_size": 3,
	}
	if d.CACertPEM != "" && strings.HasPrefix(url, "ldaps") {
		settings["ca_cert"] = d.CACertPEM
	}
	if guard != nil {
		settings["deletion_guard"] = guard
	}
	resp := r.Admin("POST", "/teams/"+team+"/directories", map[string]any{"type": "ldap", "ldap": settings})
	if resp.Status != 201 {
		t.Fatalf("create ldap directory = %s", resp)
	}
	if strings.Contains(resp.String(), d.ServicePassword) {
		t.Fatalf("the bind password shows in the answer: %s", resp)
	}
	return team, resp.JSON()["id"].(string)
}

func (r *Roster) directoryState(team, dir string) map[string]any {
	return r.MustAdmin(200, "GET", "/teams/"+team+"/directories/"+dir, nil)
}

// syncAndWait asks for a poll and waits until it finished (last_sync_at
// moved, or the state is the wanted one).
func (r *Roster) syncAndWait(t *testing.T, team, dir, wantState string) map[string]any {
	t.Helper()
	before := r.directoryState(team, dir)["last_sync_at"]
	beforeErr := r.directoryState(team, dir)["last_error"]
	r.MustAdmin(202, "POST", "/teams/"+team+"/directories/"+dir+"/sync", nil)
	var st map[string]any
	Eventually(t, 30*time.Second, "poll finished in state "+wantState, func() (bool, string) {
		st = r.directoryState(team, dir)
		if st["state"] != wantState {
			return false, fmt.Sprintf("state %v, last_error %v", st["state"], st["last_error"])
		}
		if wantState == "ok" && fmt.Sprint(st["last_sync_at"]) == fmt.Sprint(before) {
			return false, "no new sync yet"
		}
		if wantState == "error" && st["last_error"] == beforeErr {
			return false, "no new error yet"
		}
		return true, ""
	})
	return st
}

func emailsOf(ms []map[string]any) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m["email"].(string))
	}
	sort.Strings(out)
	return out
}

func TestLDAPEndToEnd(t *testing.T) {
	for _, srv := range ldapServers() {
		for _, m := range Modes() {
			t.Run(srv.name+"/"+m.Name, func(t *testing.T) {
				d, stop, restart := srv.start(t)
				r := Start(t, m)
				sfx := strings.ToLower(strings.ReplaceAll(d.Prefix, "-", ""))
				mail := func(n string) string { return n + sfx + "@corp.example" }
				var dns = map[string]string{}
				for _, n := range []string{"ann", "bob", "cat", "dan", "eve", "fay", "gus", "hal"} {
					dns[n] = d.AddUser(t, n+sfx, mail(n))
				}
				d.AddUser(t, "nomail"+sfx, "") // reported and skipped
				eng := d.AddGroup(t, "Engineering"+sfx, dns["ann"], dns["bob"])
				platform := d.AddGroup(t, "Platform"+sfx, dns["cat"])
				d.AddMember(t, eng, platform) // Platform nested in Engineering
				team, dir := r.ldapDirectory(t, d, d.URL, map[string]any{"max_removals": 3, "max_fraction": 0.5})

				all := []string{mail("ann"), mail("bob"), mail("cat"), mail("dan"), mail("eve"), mail("fay"), mail("gus"), mail("hal")}
				Eventually(t, 30*time.Second, "first sync", func() (bool, string) {
					st := r.directoryState(team, dir)
					return st["state"] == "ok", fmt.Sprint(st["state"], " ", st["last_error"])
				})
				got := r.WaitRoster(team, all...)
				if gs := got[mail("cat")]["groups"].([]any); len(gs) != 2 {
					t.Errorf("cat (in Platform, nested in Engineering) groups = %v", gs)
				}
				st := r.directoryState(team, dir)
				if !strings.Contains(fmt.Sprint(st["last_error"]), "skipped") {
					t.Errorf("an entry without mail should be reported, last_error = %v", st["last_error"])
				}
				if strings.Contains(fmt.Sprint(st), d.ServicePassword) {
					t.Fatalf("directory state shows the bind password")
				}
				annID := got[mail("ann")]["id"]

				// Modify mail and name, move to another OU, change groups.
				d.Set(t, dns["ann"], "mail", mail("ann2"))
				d.RemoveMember(t, eng, dns["bob"])
				d.Move(t, dns["bob"], d.OtherDN)
				d.AddMember(t, platform, dns["dan"])
				newDN := d.AddUser(t, "ivy"+sfx, mail("ivy"))
				r.syncAndWait(t, team, dir, "ok")
				all = []string{mail("ann2"), mail("bob"), mail("cat"), mail("dan"), mail("eve"), mail("fay"), mail("gus"), mail("hal"), mail("ivy")}
				got = r.WaitRoster(team, all...)
				if got[mail("ann2")]["id"] != annID {
					t.Errorf("ann's id changed with her mail: %v → %v", annID, got[mail("ann2")]["id"])
				}
				Eventually(t, 10*time.Second, "group changes", func() (bool, string) {
					got = r.WaitRoster(team, all...)
					return len(got[mail("bob")]["groups"].([]any)) == 0 && len(got[mail("dan")]["groups"].([]any)) == 2,
						fmt.Sprintf("bob %v, dan %v", got[mail("bob")]["groups"], got[mail("dan")]["groups"])
				})

				// Delete one, disable one (AD).
				d.Delete(t, newDN)
				want := []string{mail("ann2"), mail("bob"), mail("cat"), mail("dan"), mail("eve"), mail("fay"), mail("gus"), mail("hal")}
				if d.Flavor == testldap.ActiveDirectory {
					d.Disable(t, dns["hal"])
					want = want[:len(want)-1]
				}
				r.syncAndWait(t, team, dir, "ok")
				r.WaitRoster(team, want...)

				// Server down: the poll fails, nothing changes.
				if stop != nil {
					stop()
					st = r.syncAndWait(t, team, dir, "error")
					if st["last_error"] == "" {
						t.Errorf("no last_error while the server is down")
					}
					if got := emailsOf(r.Members(team)); len(got) != len(want) {
						t.Fatalf("roster changed while the server was down: %v", got)
					}
					restart()
					r.syncAndWait(t, team, dir, "ok")
				}

				// A tree that comes back mostly empty trips the guard.
				for _, n := range []string{"cat", "eve", "fay", "gus"} {
					d.Delete(t, dns[n])
				}
				r.MustAdmin(202, "POST", "/teams/"+team+"/directories/"+dir+"/sync", nil)
				Eventually(t, 30*time.Second, "needs_review", func() (bool, string) {
					st = r.directoryState(team, dir)
					return st["state"] == "needs_review", fmt.Sprint(st["state"], st["last_error"])
				})
				if got := r.Members(team); len(got) != len(want) {
					t.Fatalf("held poll changed the roster: %v", emailsOf(got))
				}
				review, _ := st["review"].(map[string]any)
				if review == nil || review["would_remove"].(float64) != 4 {
					t.Errorf("review = %v, want would_remove 4", st["review"])
				}
				evs := r.MustAdmin(200, "GET", "/teams/"+team+"/events?limit=1000", nil)["events"].([]any)
				held := false
				for _, e := range evs {
					held = held || e.(map[string]any)["type"] == "directory.needs_review"
				}
				if !held {
					t.Errorf("no directory.needs_review event")
				}
				r.MustAdmin(202, "POST", "/teams/"+team+"/directories/"+dir+"/approve", nil)
				Eventually(t, 30*time.Second, "approved poll applied", func() (bool, string) {
					st = r.directoryState(team, dir)
					return st["state"] == "ok" && len(r.Members(team)) == len(want)-4, fmt.Sprint(st["state"], " ", len(r.Members(team)))
				})
			})
		}
	}
}

// TestLDAPWrongPasswordIsAnError checks a bad bind is refused when the
// directory is created or changed, with an error that names the fix and
// never shows the password.
func TestLDAPWrongPasswordIsAnError(t *testing.T) {
	s := testldap.StartSlapd(t, testldap.SlapdOptions{})
	r := Start(t, Modes()[0])
	team := r.MustAdmin(201, "POST", "/teams", map[string]any{"name": "Corp", "plan": "enterprise"})["id"].(string)
	r.MustAdmin(200, "PUT", "/teams/"+team+"/sso", map[string]any{"status": "active", "provider": "okta"})
	settings := map[string]any{"url": s.URL, "bind_dn": s.ServiceDN, "bind_password": "wrong-password-xyz", "base_dn": s.BaseDN}
	resp := r.Admin("POST", "/teams/"+team+"/directories", map[string]any{"type": "ldap", "ldap": settings})
	if resp.Status != 400 || !strings.Contains(resp.String(), "invalid credentials") || !strings.Contains(resp.String(), "bind_password") {
		t.Fatalf("create with a wrong password = %s, want 400 naming invalid credentials and bind_password", resp)
	}
	if strings.Contains(resp.String(), "wrong-password-xyz") {
		t.Fatalf("the password shows in the error: %s", resp)
	}
	if ds := r.MustAdmin(200, "GET", "/teams/"+team+"/directories", nil)["directories"].([]any); len(ds) != 0 {
		t.Fatalf("a refused create stored a directory: %v", ds)
	}

	// With the right password it is created; a change to a wrong one is
	// refused and the stored settings keep working.
	settings["bind_password"] = s.ServicePassword
	dir := r.MustAdmin(201, "POST", "/teams/"+team+"/directories", map[string]any{"type": "ldap", "ldap": settings})["id"].(string)
	resp = r.Admin("PATCH", "/teams/"+team+"/directories/"+dir, map[string]any{"ldap": map[string]any{"bind_password": "wrong-password-xyz"}})
	if resp.Status != 400 || strings.Contains(resp.String(), "wrong-password-xyz") {
		t.Fatalf("PATCH to a wrong password = %s, want 400 without the password", resp)
	}
	r.MustAdmin(202, "POST", "/teams/"+team+"/directories/"+dir+"/sync", nil)
	Eventually(t, 30*time.Second, "ok state", func() (bool, string) {
		st := r.directoryState(team, dir)
		return st["state"] == "ok", fmt.Sprint(st)
	})
	reqs := r.MustAdmin(200, "GET", "/teams/"+team+"/events", nil)
	if strings.Contains(fmt.Sprint(reqs), "wrong-password-xyz") || strings.Contains(fmt.Sprint(r.directoryState(team, dir)), s.ServicePassword) {
		t.Fatalf("a password shows in events or the directory")
	}
}

// TestLDAPReplacedServerHeld replaces the OpenLDAP server at a directory's
// URL with a fresh, empty one (same base DN, syncprov on). The next poll is
// due to be incremental; it must notice the other database, list everything,
// and let the deletion guard hold instead of reporting ok.
func TestLDAPReplacedServerHeld(t *testing.T) {
	for _, m := range Modes() {
		t.Run(m.Name, func(t *testing.T) {
			sl := testldap.StartSlapd(t, testldap.SlapdOptions{Users: 12, Groups: 2, SizeLimit: 1000})
			r := Start(t, m)
			team, dir := r.ldapDirectory(t, &sl.Dir, sl.URL, map[string]any{"max_removals": 3, "max_fraction": 0.5})
			Eventually(t, 30*time.Second, "first sync", func() (bool, string) {
				st := r.directoryState(team, dir)
				return st["state"] == "ok", fmt.Sprint(st["state"], " ", st["last_error"])
			})
			Eventually(t, 30*time.Second, "roster of 12", func() (bool, string) {
				n := len(r.Members(team))
				return n == 12, fmt.Sprint(n)
			})
			// An incremental poll on the same server is ok.
			// (last_poll is written just after the poll's state.)
			r.syncAndWait(t, team, dir, "ok")
			Eventually(t, 5*time.Second, "an incremental poll", func() (bool, string) {
				st := r.directoryState(team, dir)
				lp, _ := st["last_poll"].(map[string]any)
				return lp["kind"] == "incremental" && lp["result"] == "ok" && st["state"] == "ok", fmt.Sprint(st["state"], " ", lp)
			})
			var st map[string]any

			sl.Rebuild(t, 0, 0)
			r.MustAdmin(202, "POST", "/teams/"+team+"/directories/"+dir+"/sync", nil)
			Eventually(t, 30*time.Second, "needs_review after the server was replaced", func() (bool, string) {
				// The state is written with the hold, last_poll just after it.
				st = r.directoryState(team, dir)
				lp, _ := st["last_poll"].(map[string]any)
				return st["state"] == "needs_review" && lp["result"] == "held", fmt.Sprint(st["state"], " ", st["last_error"], " ", st["last_poll"])
			})
			if lp, _ := st["last_poll"].(map[string]any); lp["kind"] != "full" {
				t.Errorf("held poll = %v, want a full listing", st["last_poll"])
			}
			if n := len(r.Members(team)); n != 12 {
				t.Fatalf("the replaced server changed the roster: %d members", n)
			}
			review, _ := st["review"].(map[string]any)
			if review == nil || review["would_remove"].(float64) != 12 {
				t.Errorf("review = %v, want would_remove 12", st["review"])
			}
			// It stays held on the next poll rather than drifting back to ok.
			r.MustAdmin(202, "POST", "/teams/"+team+"/directories/"+dir+"/sync", nil)
			time.Sleep(2 * time.Second)
			if st = r.directoryState(team, dir); st["state"] != "needs_review" {
				t.Fatalf("state after another poll = %v, want needs_review", st["state"])
			}
		})
	}
}

// TestLDAPScheduleTakesEffectAtOnce creates a directory polled "@every 2s":
// its incremental polls follow the first full listing about 2 s apart from
// the start, not after the scheduler's next periodic re-read of schedules.
func TestLDAPScheduleTakesEffectAtOnce(t *testing.T) {
	for _, m := range Modes() {
		t.Run(m.Name, func(t *testing.T) {
			sl := testldap.StartSlapd(t, testldap.SlapdOptions{Users: 5, Groups: 1, SizeLimit: 1000})
			r := Start(t, m)
			tm := r.MustAdmin(201, "POST", "/teams", map[string]any{"name": "Corp", "plan": "enterprise"})
			team := tm["id"].(string)
			r.MustAdmin(200, "PUT", "/teams/"+team+"/sso", map[string]any{"status": "active", "provider": "okta"})
			settings := map[string]any{
				"url": sl.URL, "bind_dn": sl.ServiceDN, "bind_password": sl.ServicePassword, "base_dn": sl.BaseDN,
				"schedule": "@every 2s",
			}
			dir := r.MustAdmin(201, "POST", "/teams/"+team+"/directories", map[string]any{"type": "ldap", "ldap": settings})["id"].(string)

			type seen struct {
				at   time.Time
				kind string
			}
			var polls []seen
			deadline := time.Now().Add(20 * time.Second)
			for time.Now().Before(deadline) && len(polls) < 4 {
				lp, _ := r.directoryState(team, dir)["last_poll"].(map[string]any)
				if lp != nil {
					at, err := time.Parse(time.RFC3339Nano, lp["at"].(string))
					if err != nil {
						t.Fatal(err)
					}
					if len(polls) == 0 || !at.Equal(polls[len(polls)-1].at) {
						polls = append(polls, seen{at, lp["kind"].(string)})
					}
				}
				time.Sleep(50 * time.Millisecond)
			}
			if len(polls) < 4 {
				t.Fatalf("%d polls in 20 s: %v", len(polls), polls)
			}
			if polls[0].kind != "full" {
				t.Fatalf("first poll %v, want full", polls)
			}
			for i := 1; i < len(polls); i++ {
				gap := polls[i].at.Sub(polls[i-1].at)
				if polls[i].kind != "incremental" || gap > 3500*time.Millisecond {
					t.Fatalf("poll %d is %s %s after the one before; want incremental about 2 s apart: %v", i, polls[i].kind, gap, polls)
				}
			}
		})
	}
}

// TestLDAPFailingPollsBackOff stops the server of a directory polled every
// second: scheduled polls back off (2 s, then 4 s between failures), the
// directory's last_poll and the metrics say so, a poll asked for by hand is
// not held back, and one success resets it all.
func TestLDAPFailingPollsBackOff(t *testing.T) {
	for _, m := range Modes() {
		t.Run(m.Name, func(t *testing.T) {
			sl := testldap.StartSlapd(t, testldap.SlapdOptions{Users: 3, Groups: 1, SizeLimit: 1000})
			r := Start(t, m, perDirectoryMetrics)
			team := r.MustAdmin(201, "POST", "/teams", map[string]any{"name": "Corp", "plan": "enterprise"})["id"].(string)
			r.MustAdmin(200, "PUT", "/teams/"+team+"/sso", map[string]any{"status": "active", "provider": "okta"})
			settings := map[string]any{
				"url": sl.URL, "bind_dn": sl.ServiceDN, "bind_password": sl.ServicePassword, "base_dn": sl.BaseDN,
				"schedule": "@every 1s",
			}
			dir := r.MustAdmin(201, "POST", "/teams/"+team+"/directories", map[string]any{"type": "ldap", "ldap": settings})["id"].(string)
			Eventually(t, 30*time.Second, "first sync", func() (bool, string) {
				st := r.directoryState(team, dir)
				return st["state"] == "ok", fmt.Sprint(st["state"], " ", st["last_error"])
			})

			lastPoll := func() map[string]any {
				lp, _ := r.directoryState(team, dir)["last_poll"].(map[string]any)
				return lp
			}
			at := func(lp map[string]any) time.Time {
				ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(lp["at"]))
				if err != nil {
					t.Fatalf("last_poll.at: %v", err)
				}
				return ts
			}
			failures := func(lp map[string]any) int {
				n, _ := lp["consecutive_failures"].(float64)
				return int(n)
			}
			waitFailures := func(n int, within time.Duration) map[string]any {
				t.Helper()
				var lp map[string]any
				Eventually(t, within, fmt.Sprintf("%d failed polls in a row", n), func() (bool, string) {
					lp = lastPoll()
					return failures(lp) >= n, fmt.Sprint(lp)
				})
				if failures(lp) != n {
					t.Fatalf("want exactly %d failures, have %v", n, lp)
				}
				return lp
			}

			sl.Stop()
			f1 := waitFailures(1, 10*time.Second)
			f2 := waitFailures(2, 10*time.Second)
			f3 := waitFailures(3, 15*time.Second)
			// Scheduled every second, but the failures are 2 s then 4 s apart.
			if gap := at(f2).Sub(at(f1)); gap < 1500*time.Millisecond || gap > 3500*time.Millisecond {
				t.Errorf("first → second failure %s apart, want about 2 s", gap)
			}
			if gap := at(f3).Sub(at(f2)); gap < 3500*time.Millisecond || gap > 5500*time.Millisecond {
				t.Errorf("second → third failure %s apart, want about 4 s", gap)
			}
			next, err := time.Parse(time.RFC3339Nano, fmt.Sprint(f3["next_poll_at"]))
			if err != nil || next.Sub(at(f3)) != 8*time.Second {
				t.Fatalf("third failure: next_poll_at %v (%v), want 8 s after %v", f3["next_poll_at"], err, f3["at"])
			}
			// last_poll is written just before the failure's state.
			Eventually(t, 2*time.Second, "state error while failing", func() (bool, string) {
				st := r.directoryState(team, dir)
				return st["state"] == "error" && st["last_error"] != "", fmt.Sprint(st["state"])
			})
			r.waitMetrics("the gauges while backing off", func(s scrape) (bool, string) {
				backoff := s.value("roster_directory_poll_backoff_seconds", "directory", dir, "team", team, "directory_type", "ldap")
				failures := s.value("roster_directory_poll_consecutive_failures", "directory", dir)
				state := s.series("roster_directory_state", "directory", dir)
				errored := s.value("roster_directories", "directory_type", "ldap", "state", "error")
				backingOff := s.value("roster_directories_backing_off", "directory_type", "ldap")
				return backoff > 0 && backoff <= 8 && failures == 3 && len(state) == 1 && state[0]["state"] == "error" && errored == 1 && backingOff == 1,
					fmt.Sprintf("backoff %v s, %v failures, state %v, roster_directories{ldap,error} %v, backing off %v", backoff, failures, state, errored, backingOff)
			})

			// Poll now is not held back by the backoff.
			r.MustAdmin(202, "POST", "/teams/"+team+"/directories/"+dir+"/sync", nil)
			f4 := waitFailures(4, 3*time.Second)
			if at(f4).After(next) {
				t.Errorf("the poll asked for by hand ran at %v, after the backoff ended (%v)", f4["at"], next)
			}

			if err := sl.Start(); err != nil {
				t.Fatal(err)
			}
			r.syncAndWait(t, team, dir, "ok")
			Eventually(t, 5*time.Second, "backoff reset", func() (bool, string) {
				lp := lastPoll()
				_, has := lp["next_poll_at"]
				return lp["result"] == "ok" && failures(lp) == 0 && !has, fmt.Sprint(lp)
			})
			r.waitMetrics("the gauges after a success", func(s scrape) (bool, string) {
				backoff := s.value("roster_directory_poll_backoff_seconds", "directory", dir)
				failures := s.value("roster_directory_poll_consecutive_failures", "directory", dir)
				errored := s.value("roster_directories", "directory_type", "ldap", "state", "error")
				backingOff := s.value("roster_directories_backing_off", "directory_type", "ldap")
				return backoff == 0 && failures == 0 && errored == 0 && backingOff == 0,
					fmt.Sprintf("backoff %v s, %v failures, roster_directories{ldap,error} %v, backing off %v", backoff, failures, errored, backingOff)
			})
			// Back on its every-second schedule.
			before := at(lastPoll())
			Eventually(t, 5*time.Second, "scheduled polls again", func() (bool, string) {
				lp := lastPoll()
				return at(lp).Sub(before) >= time.Second && lp["result"] == "ok", fmt.Sprint(lp)
			})
		})
	}
}
