package e2e

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/roster-dev/roster/app"
	"github.com/roster-dev/roster/metrics"
)

// holdReconcile stalls reconciles inside their transaction while on, so
// that a change stays pending as long as a test needs.
type holdReconcile struct {
	on      atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func newHoldReconcile() *holdReconcile {
	return &holdReconcile{entered: make(chan struct{}, 16), release: make(chan struct{})}
}

func (h *holdReconcile) install(a *app.App) {
	a.Reconciler.BeforeApply = func(string) {
		if h.on.Load() {
			h.entered <- struct{}{}
			<-h.release
		}
	}
}

// TestMetricsAfterTraffic makes every series of the issue 15 list move
// with real traffic, on both engines, reading /metrics over HTTP: SCIM
// requests, a change held pending and then applied, webhook deliveries
// (one endpoint answering 410 is disabled), and an Okta directory polled,
// throttled and held by its deletion guard. Then it lints the whole
// scrape. (The LDAP directory that fails and backs off is
// TestLDAPFailingPollsBackOff; the SCIM guard, TestSCIMDeletionGuard.)
func TestMetricsAfterTraffic(t *testing.T) {
	t.Parallel()
	for _, m := range Modes() {
		t.Run(m.Name, func(t *testing.T) {
			t.Parallel()
			hold := newHoldReconcile()
			r := StartHooked(t, m, hold.install, perDirectoryMetrics, hookConfig)
			d := r.NewSCIMTeam(nil)
			s0 := r.scrape()

			rc := newReceiver(t)
			_, secret := createHook(r, d.TeamID, rc.srv.URL+"/hook")
			rc.setSecrets(secret)

			// A change held pending: the pending gauges show it, and the
			// realtime queue has a task running.
			hold.on.Store(true)
			if resp := r.SCIM(d, "POST", "/Users", scimUser("held")); resp.Status != 201 {
				t.Fatalf("create user = %s", resp)
			}
			select {
			case <-hold.entered:
			case <-time.After(20 * time.Second):
				t.Fatal("no reconcile started")
			}
			created := time.Now()
			r.waitMetrics("the held change pending", func(s scrape) (bool, string) {
				pending := s.value("roster_directories_pending_changes", "directory_type", "scim")
				oldest := s.value("roster_directories_oldest_pending_change_timestamp_seconds", "directory_type", "scim")
				dirPending := s.value("roster_directory_pending_changes", "directory", d.ID, "team", d.TeamID, "directory_type", "scim")
				dirOldest := s.value("roster_directory_oldest_pending_change_timestamp_seconds", "directory", d.ID)
				active := s.value("roster_queue_depth", "queue", "realtime", "state", "active")
				return pending >= 1 && oldest > 0 && oldest <= unix(created) && dirPending >= 1 && dirOldest == oldest && active >= 1,
					fmt.Sprintf("pending %v since %v (directory: %v since %v), realtime active %v", pending, oldest, dirPending, dirOldest, active)
			})
			// The admin API's directory shows the same wait.
			got := r.MustAdmin(200, "GET", "/teams/"+d.TeamID+"/directories/"+d.ID, nil)
			if got["pending_changes"].(float64) < 1 || got["oldest_pending_at"] == nil || got["lag_seconds"].(float64) <= 0 {
				t.Fatalf("directory while a change waits: pending %v, oldest %v, lag %v; want a wait", got["pending_changes"], got["oldest_pending_at"], got["lag_seconds"])
			}
			hold.on.Store(false)
			close(hold.release)

			s1 := r.waitMetrics("the change applied", func(s scrape) (bool, string) {
				pending := s.value("roster_directories_pending_changes", "directory_type", "scim")
				oldest := s.value("roster_directories_oldest_pending_change_timestamp_seconds", "directory_type", "scim")
				dirPending := s.value("roster_directory_pending_changes", "directory", d.ID)
				lag := s.value("roster_sync_lag_seconds_count", "directory_type", "scim")
				last := s.value("roster_reconcile_last_success_timestamp_seconds", "directory_type", "scim")
				tasks := s.value("roster_queue_tasks_total", "type", "reconcile", "result", "success")
				return pending == 0 && oldest == 0 && dirPending == 0 && lag > s0.value("roster_sync_lag_seconds_count", "directory_type", "scim") &&
						last >= unix(created) && tasks > s0.value("roster_queue_tasks_total", "type", "reconcile", "result", "success"),
					fmt.Sprintf("pending %v since %v (directory %v), lag samples %v, last reconcile %v, reconcile tasks %v", pending, oldest, dirPending, lag, last, tasks)
			})
			if got := r.MustAdmin(200, "GET", "/teams/"+d.TeamID+"/directories/"+d.ID, nil); got["oldest_pending_at"] != nil || got["lag_seconds"].(float64) != 0 {
				t.Fatalf("directory once applied: oldest %v, lag %v; want none and 0", got["oldest_pending_at"], got["lag_seconds"])
			}
			for _, c := range []struct {
				name   string
				labels []string
			}{
				{"roster_reconciles_total", []string{"result", "ok"}},
				{"roster_reconcile_duration_seconds_count", nil},
				{"roster_changes_applied_total", []string{"type", "member.added"}},
				{"roster_queue_task_duration_seconds_count", []string{"type", "reconcile"}},
				{"roster_queue_task_wait_seconds_count", []string{"type", "reconcile"}},
				{"roster_scim_requests_total", []string{"method", "POST", "resource", "Users", "status_class", "2xx"}},
				{"roster_scim_request_duration_seconds_count", []string{"method", "POST", "resource", "Users"}},
				{"roster_api_requests_total", []string{"status_class", "2xx"}},
			} {
				if got, was := s1.value(c.name, c.labels...), s0.value(c.name, c.labels...); got <= was {
					t.Errorf("%s%v = %v, was %v: did not move", c.name, c.labels, got, was)
				}
			}
			r.waitMetrics("the SCIM directory synced", func(s scrape) (bool, string) {
				ok := s.value("roster_directories", "directory_type", "scim", "state", "ok")
				stalest := s.value("roster_directories_oldest_success_timestamp_seconds", "directory_type", "scim")
				state := s.series("roster_directory_state", "directory", d.ID, "team", d.TeamID, "directory_type", "scim")
				lastOK := s.value("roster_directory_last_success_timestamp_seconds", "directory", d.ID)
				return ok == 1 && stalest > 0 && len(state) == 1 && state[0]["state"] == "ok" && lastOK == stalest,
					fmt.Sprintf("ok %v, stalest success %v, state %v, directory's last success %v", ok, stalest, state, lastOK)
			})

			// A 4xx from SCIM and from the admin API, by status class.
			if resp := r.SCIM(d, "GET", "/Users/no-such-user", nil); resp.Status != 404 {
				t.Fatalf("GET a missing user = %s", resp)
			}
			if resp := r.Admin("GET", "/teams/no-such-team", nil); resp.Status != 404 {
				t.Fatalf("GET a missing team = %s", resp)
			}
			s2 := r.scrape()
			if n := s2.value("roster_scim_requests_total", "method", "GET", "resource", "Users", "status_class", "4xx"); n < 1 {
				t.Errorf("roster_scim_requests_total{GET,Users,4xx} = %v after a 404", n)
			}
			if n := s2.value("roster_api_requests_total", "status_class", "4xx"); n < 1 {
				t.Errorf("roster_api_requests_total{4xx} = %v after a 404", n)
			}
			for _, name := range []string{"roster_scim_requests_total", "roster_api_requests_total"} {
				for _, l := range s2.series(name) {
					if _, ok := l["code"]; ok || !strings.HasSuffix(l["status_class"], "xx") {
						t.Errorf("%s has labels %v, want a status_class and no code", name, l)
					}
				}
			}

			// The reconcile timestamp moves with the next change.
			before := s2.value("roster_reconcile_last_success_timestamp_seconds", "directory_type", "scim")
			if resp := r.SCIM(d, "POST", "/Users", scimUser("second")); resp.Status != 201 {
				t.Fatalf("create user = %s", resp)
			}
			r.waitMetrics("the last reconcile moving", func(s scrape) (bool, string) {
				v := s.value("roster_reconcile_last_success_timestamp_seconds", "directory_type", "scim")
				return v > before, fmt.Sprintf("%v, was %v", v, before)
			})

			// The webhook receiver gets the feed.
			waitDelivered(r, rc, d.TeamID, 2)
			r.waitMetrics("the webhook delivered", func(s scrape) (bool, string) {
				delivered := s.value("roster_webhook_deliveries_total", "result", "delivered")
				lag := s.value("roster_webhook_delivery_lag_seconds_count")
				active := s.value("roster_webhook_endpoints", "state", "active")
				behind := s.value("roster_webhook_oldest_undelivered_event_timestamp_seconds", "state", "active")
				return delivered >= 2 && lag >= 2 && active == 1 && behind == 0,
					fmt.Sprintf("delivered %v, lag samples %v, active endpoints %v, oldest undelivered %v", delivered, lag, active, behind)
			})

			// An endpoint answering 410 Gone is disabled.
			gone := newReceiver(t)
			gone.setAnswer(func(string, int) int { return 410 })
			_, goneSecret := createHook(r, d.TeamID, gone.srv.URL+"/gone")
			gone.setSecrets(goneSecret)
			r.waitMetrics("the endpoint disabled", func(s scrape) (bool, string) {
				disabled := s.value("roster_webhook_endpoints_disabled_total")
				goneN := s.value("roster_webhook_deliveries_total", "result", "gone")
				endpoints := s.value("roster_webhook_endpoints", "state", "disabled")
				return disabled == 1 && goneN == 1 && endpoints == 1, fmt.Sprintf("disabled %v, gone %v, disabled endpoints %v", disabled, goneN, endpoints)
			})

			pollMetrics(t, r)

			// The whole scrape: every series of the list, and promlint.
			s := r.scrape()
			var mfs []*dto.MetricFamily
			for _, mf := range s {
				mfs = append(mfs, mf)
			}
			// Every series of the catalog but the queue's internals that
			// need racing workers (merged triggers, follow-ups) and the
			// scheduler's lease.
			for _, c := range metrics.Catalog {
				switch c.Name {
				case "roster_queue_trigger_merged_total", "roster_queue_followups_total", "roster_queue_leader":
					continue
				}
				if !s.has(c.Name) {
					t.Errorf("no %s on /metrics", c.Name)
				}
			}
			problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				if strings.HasPrefix(p.Metric, "roster_") {
					t.Errorf("promlint: %s: %s", p.Metric, p.Text)
				}
			}
		})
	}
}

// pollMetrics polls an Okta fake: a full poll, a throttled one, and one
// the deletion guard holds.
func pollMetrics(t *testing.T, r *Roster) {
	t.Helper()
	s0 := r.scrape()
	c := newPollCase(t, r, newOktaDir(t, fakeOpts{}))
	ids, eng, _, _ := c.smallDirectory()
	started := time.Now()
	c.create(pollGuardSettings)
	c.check("first sync")
	typ := []string{"directory_type", "okta"}
	s1 := r.waitMetrics("the first poll applied", func(s scrape) (bool, string) {
		lag := s.value("roster_sync_lag_seconds_count", typ...)
		last := s.value("roster_reconcile_last_success_timestamp_seconds", typ...)
		ok := s.value("roster_directories", "directory_type", "okta", "state", "ok")
		return lag > 0 && last >= unix(started) && ok == 1, fmt.Sprintf("okta lag samples %v, last reconcile %v, roster_directories{okta,ok} %v", lag, last, ok)
	})
	for _, c := range []struct {
		name   string
		labels []string
	}{
		{"roster_polls_total", []string{"kind", "full", "result", "ok"}},
		{"roster_poll_duration_seconds_count", []string{"kind", "full"}},
		{"roster_poll_requests_total", nil},
		{"roster_poll_pages_total", nil},
		{"roster_poll_items_total", nil},
	} {
		if got, was := s1.value(c.name, append(typ, c.labels...)...), s0.value(c.name, append(typ, c.labels...)...); got <= was {
			t.Errorf("%s{okta %v} = %v, was %v: did not move", c.name, c.labels, got, was)
		}
	}
	if v := s1.value("roster_poll_last_success_timestamp_seconds", typ...); v < unix(started) {
		t.Errorf("roster_poll_last_success_timestamp_seconds{okta} = %v, before the poll (%v)", v, unix(started))
	}

	// Throttled mid-listing, then retried.
	c.rename(ids["ann"], "", "Ann", "Throttled")
	c.rename(ids["cat"], "", "Cat", "Throttled")
	c.rename(ids["dan"], "", "Dan", "Throttled")
	c.f.throttle(eng)
	c.poll("ok", "")
	s2 := r.scrape()
	for _, name := range []string{"roster_poll_throttled_total", "roster_poll_retries_total"} {
		if got, was := s2.value(name, typ...), s1.value(name, typ...); got <= was {
			t.Errorf("%s{okta} = %v, was %v: the throttled request was not counted", name, got, was)
		}
	}
	if got, was := s2.value("roster_poll_last_success_timestamp_seconds", typ...), s1.value("roster_poll_last_success_timestamp_seconds", typ...); got <= was {
		t.Errorf("roster_poll_last_success_timestamp_seconds{okta} = %v, was %v: did not move", got, was)
	}

	// Held by the deletion guard.
	for _, n := range []string{"ann", "bob", "cat", "dan", "eve"} {
		c.deleteUser(ids[n])
	}
	c.poll("needs_review", "")
	r.waitMetrics("the held poll", func(s scrape) (bool, string) {
		holds := s.value("roster_deletion_guard_holds_total", "directory_type", "okta", "guard", "poll")
		held := s.value("roster_polls_total", "directory_type", "okta", "result", "held")
		review := s.value("roster_directories", "directory_type", "okta", "state", "needs_review")
		state := s.series("roster_directory_state", "directory", c.dir)
		return holds == 1 && held >= 1 && review == 1 && len(state) == 1 && state[0]["state"] == "needs_review",
			fmt.Sprintf("guard holds %v, held polls %v, needs_review %v, state %v", holds, held, review, state)
	})
}

// TestMetricsDefaultHasNoDirectorySeries checks, on both engines, that by
// default /metrics names no directory or team, and has the aggregates.
func TestMetricsDefaultHasNoDirectorySeries(t *testing.T) {
	t.Parallel()
	for _, m := range Modes() {
		t.Run(m.Name, func(t *testing.T) {
			t.Parallel()
			r := Start(t, m, fastMetrics)
			d := r.NewSCIMTeam(nil)
			if resp := r.SCIM(d, "POST", "/Users", scimUser("one")); resp.Status != 201 {
				t.Fatalf("create user = %s", resp)
			}
			r.WaitRoster(d.TeamID, "one@acme.test")
			s := r.waitMetrics("the SCIM directory counted", func(s scrape) (bool, string) {
				v := s.value("roster_directories", "directory_type", "scim", "state", "ok")
				return v == 1, fmt.Sprint(v)
			})
			for name, mf := range s {
				for _, m := range mf.GetMetric() {
					for _, l := range m.GetLabel() {
						if l.GetName() == "directory" || l.GetName() == "team" {
							t.Errorf("%s has a %s label by default: %v", name, l.GetName(), labelMap(m))
						}
					}
				}
			}
			for _, c := range metrics.Catalog {
				if c.PerDirectory && s.has(c.Name) {
					t.Errorf("%s is on /metrics with metrics.per_directory off", c.Name)
				}
			}
			// Every type × state, zeros included.
			for _, typ := range []string{"scim", "ldap", "google", "msgraph", "okta"} {
				for _, st := range []string{"syncing", "ok", "error", "needs_review"} {
					if len(s.series("roster_directories", "directory_type", typ, "state", st)) != 1 {
						t.Errorf("no roster_directories{directory_type=%q,state=%q}", typ, st)
					}
				}
			}
			if v := s.value("roster_directory_metrics_refresh_timestamp_seconds"); v <= 0 || v > unix(time.Now()) {
				t.Errorf("roster_directory_metrics_refresh_timestamp_seconds = %v", v)
			}
		})
	}
}

func scimUser(name string) map[string]any {
	return map[string]any{
		"schemas": []string{urnUser}, "userName": name, "active": true,
		"emails": []any{map[string]any{"value": name + "@acme.test", "type": "work", "primary": true}},
	}
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
