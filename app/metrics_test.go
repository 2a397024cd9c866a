package app

import (
	"context"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/roster-dev/roster/config"
	"github.com/roster-dev/roster/store"
)

// TestMetricsLintAndRules lints roster's metrics and checks that every metric
// the shipped alert rules and dashboard use exists.
func TestMetricsLintAndRules(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.AdminToken = "metrics-test-token-123456"
	ctx := context.Background()
	a, err := New(ctx, cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// A directory with a pending change and a reconcile, so every series exists.
	if err := a.Store.CreateTeam(ctx, &store.Team{ID: "t", Name: "T", Plan: "enterprise", SSOStatus: "active"}); err != nil {
		t.Fatal(err)
	}
	err = a.Store.WithTx(ctx, func(tx *store.Tx) error {
		if err := tx.CreateDirectory(ctx, &store.Directory{ID: "d", TeamID: "t", Type: "scim"}); err != nil {
			return err
		}
		return tx.PutUser(ctx, &store.User{DirectoryID: "d", ID: "u", UserName: "u@x.com", Email: "u@x.com", Active: true}, time.Now())
	})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	a.Store.TouchDirectorySync(ctx, "d", now)
	mfsBefore, err := a.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Reconciler.Reconcile(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	a.Metrics.SCIMRequests.WithLabelValues("GET", "Users", "200").Inc()
	a.Metrics.SCIMDuration.WithLabelValues("GET", "Users").Observe(0.001)
	a.Metrics.Polls.WithLabelValues("ldap", "full", "ok").Inc()
	a.Metrics.PollDuration.WithLabelValues("ldap", "full").Observe(1)
	a.Metrics.DeletionGuardTrips.WithLabelValues("ldap").Inc()
	a.Metrics.APIRequests.WithLabelValues("200").Inc()
	a.Metrics.Webhook.Deliveries.WithLabelValues("delivered").Inc()
	a.Metrics.Webhook.Lag.Observe(0.01)
	a.Metrics.Webhook.Disabled.Inc()
	mfs, err := a.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	mfs = append(mfs, mfsBefore...)
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
	for _, name := range []string{"roster_webhook_deliveries_total", "roster_webhook_delivery_lag_seconds", "roster_webhook_endpoints",
		"roster_webhook_oldest_undelivered_event_timestamp_seconds", "roster_webhook_endpoints_disabled_total"} {
		if !have[name] {
			t.Errorf("no metric %s", name)
		}
	}
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
