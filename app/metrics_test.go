package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/roster-dev/roster/config"
	"github.com/roster-dev/roster/metrics"
	"github.com/roster-dev/roster/store"
)

func newMetricsApp(t *testing.T, perDirectory bool) *App {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.AdminToken = "metrics-test-token-123456"
	cfg.Metrics.PerDirectory = perDirectory
	a, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	if err := a.Store.CreateTeam(context.Background(), &store.Team{ID: "t", Name: "T", Plan: "enterprise", SSOStatus: "active"}); err != nil {
		t.Fatal(err)
	}
	return a
}

// addDirectories creates n directories of the given type, each with a
// pending change when pending is set.
func addDirectories(t *testing.T, a *App, prefix, typ string, n int, pending bool) {
	t.Helper()
	ctx := context.Background()
	err := a.Store.WithTx(ctx, func(tx *store.Tx) error {
		for i := range n {
			id := fmt.Sprintf("%s%d", prefix, i)
			d := &store.Directory{ID: id, TeamID: "t", Type: typ}
			switch {
			case typ != "scim" && i%2 == 1: // failing, backing off
				d.State = store.StateError
				d.LastPoll = []byte(`{"at":"2026-01-01T00:00:00Z","kind":"full","result":"error","consecutive_failures":1,"next_poll_at":"2099-01-01T00:00:00Z"}`)
			case typ != "scim":
				d.LastPoll = []byte(`{"at":"2026-01-01T00:00:00Z","kind":"full","result":"ok"}`)
			}
			if err := tx.CreateDirectory(ctx, d); err != nil {
				return err
			}
			if pending {
				if err := tx.PutUser(ctx, &store.User{DirectoryID: id, ID: "u", UserName: "u@x.com", Email: "u@x.com", Active: true}, time.Now()); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func gather(t *testing.T, a *App) []*dto.MetricFamily {
	t.Helper()
	if err := a.dirGauges.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	mfs, err := a.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// TestMetricsLintAndRules lints a full scrape of roster's metrics (every
// vector with a sample, the per-directory series on) and checks that every
// series of the issue 15 list is there.
func TestMetricsLintAndRules(t *testing.T) {
	have := fullScrape(t)
	// Queue series this traffic does not move: a merged trigger, a
	// follow-up and the leader lease need racing workers and the scheduler
	// (the queue's own tests move them).
	notMoved := map[string]bool{"roster_queue_trigger_merged_total": true, "roster_queue_followups_total": true, "roster_queue_leader": true}
	for _, s := range metrics.Catalog {
		if !have[s.Name] && !notMoved[s.Name] {
			t.Errorf("no metric %s", s.Name)
		}
	}
}

// TestMetricsCatalogComplete checks the other direction: every roster_
// family on a full scrape is in metrics.Catalog with its type.
func TestMetricsCatalogComplete(t *testing.T) {
	a := newMetricsApp(t, true)
	addDirectories(t, a, "d", "scim", 1, true)
	catalog := map[string]string{}
	for _, s := range metrics.Catalog {
		if _, dup := catalog[s.Name]; dup {
			t.Errorf("%s is in the catalog twice", s.Name)
		}
		catalog[s.Name] = s.Type
	}
	a.Metrics.SCIMRequests.WithLabelValues("GET", "Users", metrics.StatusClass(200)).Inc()
	for _, mf := range gather(t, a) {
		name := mf.GetName()
		if !strings.HasPrefix(name, "roster_") {
			continue
		}
		want, ok := catalog[name]
		if !ok {
			t.Errorf("%s is exported but not in metrics.Catalog", name)
			continue
		}
		if got := strings.ToLower(mf.GetType().String()); got != want {
			t.Errorf("%s is a %s, the catalog says %s", name, got, want)
		}
	}
}

// fullScrape moves every vector, lints the scrape and returns the names on
// it (histograms with their _bucket, _sum and _count).
func fullScrape(t *testing.T) map[string]bool {
	t.Helper()
	a := newMetricsApp(t, true)
	ctx := context.Background()
	addDirectories(t, a, "d", "scim", 1, true)
	addDirectories(t, a, "l", "ldap", 1, false)
	a.Store.TouchDirectorySync(ctx, "d0", time.Now())
	mfsBefore := gather(t, a) // with a change pending
	if _, err := a.Reconciler.Reconcile(ctx, "d0"); err != nil {
		t.Fatal(err)
	}
	m := a.Metrics
	m.SCIMRequests.WithLabelValues("GET", "Users", metrics.StatusClass(200)).Inc()
	m.SCIMDuration.WithLabelValues("GET", "Users").Observe(0.001)
	m.Polls.WithLabelValues("ldap", "full", "ok").Inc()
	m.PollDuration.WithLabelValues("ldap", "full").Observe(1)
	m.PollLastSuccess.WithLabelValues("ldap").SetToCurrentTime()
	m.PollRequests.WithLabelValues("ldap").Inc()
	m.PollPages.WithLabelValues("ldap").Inc()
	m.PollItems.WithLabelValues("ldap").Inc()
	m.PollThrottled.WithLabelValues("ldap").Inc()
	m.PollRetries.WithLabelValues("ldap").Inc()
	m.DeletionGuardHolds.WithLabelValues("ldap", metrics.GuardPoll).Inc()
	m.APIRequests.WithLabelValues(metrics.StatusClass(201)).Inc()
	m.Webhook.Deliveries.WithLabelValues("delivered").Inc()
	m.Webhook.Lag.Observe(0.01)
	m.Webhook.Disabled.Inc()
	// A reconcile through the queue, for the task counters and histograms.
	runCtx, stop := context.WithCancel(ctx)
	worked := make(chan error, 1)
	go func() { worked <- a.Queue.RunWorker(runCtx, a.handlers()) }()
	defer func() { stop(); <-worked }()
	if err := a.Queue.TriggerReconcile(ctx, "d0"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !hasFamily(gather(t, a), "roster_queue_task_duration_seconds") {
		if time.Now().After(deadline) {
			t.Fatal("the queued reconcile did not run within 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	mfs := append(gather(t, a), mfsBefore...)
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "roster_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}
	have := map[string]bool{"up": true}
	for _, mf := range mfs {
		name := mf.GetName()
		have[name] = true
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			have[name+suffix] = true
		}
	}
	return have
}

// TestShippedConfigsUseExportedSeries checks that every roster_ metric the
// shipped alert rules and dashboard name is on a full scrape (after
// fullScrape's traffic, per-directory series on).
func TestShippedConfigsUseExportedSeries(t *testing.T) {
	have := fullScrape(t)
	metricRef := regexp.MustCompile(`\broster_[a-z_]+`)
	for _, file := range []string{"../configs/alerts.yaml", "../configs/dashboard.json"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range metricRef.FindAllString(string(b), -1) {
			if !have[name] {
				t.Errorf("%s uses %s, which roster does not export", file, name)
			}
		}
	}
}

// TestDefaultScrapeIsBoundedByTypes checks that, by default, no series
// names a directory and that 300 more directories (some failing, some
// pending) add no series: the scrape is sized by types × states.
func TestDefaultScrapeIsBoundedByTypes(t *testing.T) {
	a := newMetricsApp(t, false)
	series := func() (n int, labelled []string) {
		for _, mf := range gather(t, a) {
			if !strings.HasPrefix(mf.GetName(), "roster_") {
				continue
			}
			for _, m := range mf.GetMetric() {
				n++
				for _, l := range m.GetLabel() {
					if l.GetName() == "directory" || l.GetName() == "team" {
						labelled = append(labelled, mf.GetName())
					}
				}
			}
		}
		return n, labelled
	}
	before, _ := series()
	addDirectories(t, a, "s", "scim", 150, true)
	addDirectories(t, a, "l", "ldap", 100, false)
	addDirectories(t, a, "g", "google", 50, true)
	after, labelled := series()
	if len(labelled) > 0 {
		t.Errorf("the default scrape has series labelled by directory or team: %v", labelled)
	}
	if after != before {
		t.Errorf("300 directories changed the roster_ series from %d to %d, want no change", before, after)
	}
	var dirs float64
	for _, mf := range gather(t, a) {
		if mf.GetName() == "roster_directories" {
			for _, m := range mf.GetMetric() {
				dirs += m.GetGauge().GetValue()
			}
		}
	}
	if dirs != 300 {
		t.Errorf("roster_directories sums to %v, want 300", dirs)
	}
	if n := typeGauge(t, a, "roster_directories_backing_off", "ldap"); n != 50 {
		t.Errorf("roster_directories_backing_off{ldap} = %v, want 50", n)
	}
	// 5 types × 4 states, and 4 gauges per type: all sent, zeros included.
	if want := 5*4 + 5*4 + 1; before < want {
		t.Errorf("%d roster_ series, want at least the %d directory aggregates", before, want)
	}
}

func hasFamily(mfs []*dto.MetricFamily, name string) bool {
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return true
		}
	}
	return false
}

// typeGauge reads a directory gauge of one type.
func typeGauge(t *testing.T, a *App, name, typ string) float64 {
	t.Helper()
	for _, mf := range gather(t, a) {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "directory_type" && l.GetValue() == typ {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{directory_type=%q}", name, typ)
	return 0
}
