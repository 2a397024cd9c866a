// Package configs holds roster's example configuration, alert rules and
// dashboard. Its tests check that the alert rules and the dashboard use only
// series roster exports, and run promtool on the rules.
package configs

import (
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/roster-dev/roster/internal/testenv"
	"github.com/roster-dev/roster/metrics"
)

// series are the metric families roster exports (metrics.Catalog), with
// their type; a histogram also stands for its _bucket, _sum and _count
// series. up is Prometheus's own.
var series = func() map[string]string {
	m := map[string]string{"up": "gauge"}
	for _, s := range metrics.Catalog {
		m[s.Name] = s.Type
	}
	return m
}()

// alertNames are the alerts issue 15 fixes.
var alertNames = []string{
	"RosterDown", "RosterSyncLagSLOBreach", "RosterChangesStuck", "RosterDirectoryNotSynced",
	"RosterQueueBacklog", "RosterReconcileFailing", "RosterDirectoryError", "RosterDeletionGuardHolding",
	"RosterPollerBackingOff", "RosterSCIM5xxRatio", "RosterWebhookEndpointFailing", "RosterWebhookEndpointDisabled",
}

// known says whether a series name is one roster exports (or up).
func known(name string) bool {
	if _, ok := series[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && series[base] == "histogram" {
			return true
		}
	}
	return false
}

// unknownSeries returns the series names in a PromQL expression that roster
// does not export, sorted.
func unknownSeries(expr string) []string {
	var out []string
	for _, name := range metricNames(expr) {
		if !known(name) && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

type rulesFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(false)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up{job="roster"} == 0`, []string{"up"}},
		{`histogram_quantile(0.99, sum by (le, directory_type) (rate(roster_sync_lag_seconds_bucket[5m]))) > 5`, []string{"roster_sync_lag_seconds_bucket"}},
		{`time() - (max by (directory_type) (roster_directories_oldest_success_timestamp_seconds{directory_type!="scim"}) > 0) > 1800`, []string{"roster_directories_oldest_success_timestamp_seconds"}},
		{`a and on (directory_type) b or c unless ignoring (x) d`, []string{"a", "b", "c", "d"}},
		{`sum without (instance) (rate(x_total[5m] offset 1h)) / bool y * group_left (z) w`, []string{"x_total", "y", "w"}},
		{`{__name__="ignored"} + m{label="a{b}", other='c"d'}`, []string{"m"}},
		{`topk(3, sum by (le) (q)) + count_values("v", r) + 1.5e3 + 0x1f + Inf + NaN`, []string{"q", "r"}},
		{`rate(z[$__rate_interval])`, []string{"z"}},
	} {
		if got := metricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

func TestUnknownSeries(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`max by (directory_type) (roster_directories{state="error"}) > 0`, nil},
		{`histogram_quantile(0.99, sum by (le) (rate(roster_webhook_delivery_lag_seconds_bucket[5m])))`, nil},
		{`rate(roster_sync_lag_seconds_count[5m]) / rate(roster_sync_lag_seconds_sum[5m])`, nil},
		// Made up, renamed away, or a histogram suffix on a counter.
		{`sum(rate(roster_made_up_total[5m]))`, []string{"roster_made_up_total"}},
		{`roster_deletion_guard_trips_total + roster_directory_last_reconcile_timestamp_seconds`, []string{"roster_deletion_guard_trips_total", "roster_directory_last_reconcile_timestamp_seconds"}},
		{`rate(roster_polls_total_bucket[5m])`, []string{"roster_polls_total_bucket"}},
	} {
		if got := unknownSeries(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("unknownSeries(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

func TestAlertRules(t *testing.T) {
	var rules rulesFile
	readYAML(t, "alerts.yaml", &rules)
	var got []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			got = append(got, r.Alert)
			if r.Alert == "" {
				t.Errorf("group %s: a rule without alert (record rules belong elsewhere): %q", g.Name, r.Expr)
				continue
			}
			if bad := unknownSeries(r.Expr); len(bad) > 0 {
				t.Errorf("%s uses series roster does not export: %s", r.Alert, strings.Join(bad, ", "))
			}
			if r.For == "" {
				t.Errorf("%s has no for:", r.Alert)
			}
			if s := r.Labels["severity"]; s != "page" && s != "ticket" {
				t.Errorf("%s severity = %q, want page or ticket", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s needs a summary and a description (what to do)", r.Alert)
			}
		}
	}
	if !slices.Equal(sorted(got), sorted(alertNames)) {
		t.Errorf("alerts = %q, want %q", sorted(got), sorted(alertNames))
	}
}

// TestAlertTestsCoverEveryAlert checks the shape of alerts_test.yaml: each
// alert has a case where it fires and at least two where it stays quiet (a
// healthy series and a never-synced one). promtool checks the cases.
func TestAlertTestsCoverEveryAlert(t *testing.T) {
	var tests struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, "alerts_test.yaml", &tests)
	if !slices.Equal(tests.RuleFiles, []string{"alerts.yaml"}) {
		t.Errorf("rule_files = %q, want [alerts.yaml]", tests.RuleFiles)
	}
	fires, quiet := map[string]int{}, map[string]int{}
	for _, tc := range tests.Tests {
		// A case counts once per alert: quiet if no evaluation expects it.
		fired := map[string]bool{}
		for _, a := range tc.AlertRuleTest {
			fired[a.Alertname] = fired[a.Alertname] || len(a.ExpAlerts) > 0
		}
		for name, f := range fired {
			if f {
				fires[name]++
			} else {
				quiet[name]++
			}
		}
	}
	for _, name := range alertNames {
		if fires[name] < 1 || quiet[name] < 2 {
			t.Errorf("%s: %d firing and %d quiet cases, want at least 1 and 2", name, fires[name], quiet[name])
		}
	}
}

func TestDashboard(t *testing.T) {
	raw, err := os.ReadFile("dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	if len(dash.Panels) == 0 {
		t.Fatal("dashboard.json has no panels")
	}
	used := map[string]bool{}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			if strings.TrimSpace(q.Expr) == "" {
				t.Errorf("panel %q has an empty query", p.Title)
			}
			if bad := unknownSeries(q.Expr); len(bad) > 0 {
				t.Errorf("panel %q uses series roster does not export: %s", p.Title, strings.Join(bad, ", "))
			}
			for _, n := range metricNames(q.Expr) {
				used[n] = true
			}
		}
	}
	// The panels issue 15 asks for: each of these series shows somewhere.
	for _, name := range []string{
		"roster_sync_lag_seconds_bucket", "roster_directories", "roster_directories_oldest_pending_change_timestamp_seconds",
		"roster_directories_oldest_success_timestamp_seconds", "roster_directories_backing_off", "roster_queue_depth",
		"roster_queue_tasks_total", "roster_scim_requests_total", "roster_polls_total", "roster_poll_throttled_total",
		"roster_deletion_guard_holds_total", "roster_webhook_deliveries_total", "roster_webhook_endpoints",
	} {
		if !used[name] {
			t.Errorf("no dashboard panel shows %s", name)
		}
	}
}

// TestPromtool runs promtool's rule checks and unit tests. CI (.ci/run)
// installs promtool and names it in ROSTER_TEST_PROMTOOL.
func TestPromtool(t *testing.T) {
	bin := os.Getenv("ROSTER_TEST_PROMTOOL")
	if bin == "" {
		testenv.Missing(t, "promtool (ROSTER_TEST_PROMTOOL; .ci/install-promtool.sh installs it)")
	}
	for _, args := range [][]string{
		{"check", "rules", "alerts.yaml"},
		{"test", "rules", "alerts_test.yaml"},
	} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}
