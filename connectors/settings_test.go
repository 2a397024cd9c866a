package connectors_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/roster-dev/roster/connectors"
)

func intp(v int) *int           { return &v }
func floatp(v float64) *float64 { return &v }

func TestDeletionGuardLimits(t *testing.T) {
	tests := []struct {
		name         string
		guard        connectors.DeletionGuard
		wantRemovals int
		wantFraction float64
	}{
		{"unset takes both defaults", connectors.DeletionGuard{}, 500, 0.2},
		{"removals set", connectors.DeletionGuard{MaxRemovals: intp(10)}, 10, 0.2},
		{"fraction set", connectors.DeletionGuard{MaxFraction: floatp(0.5)}, 500, 0.5},
		{"both set", connectors.DeletionGuard{MaxRemovals: intp(3), MaxFraction: floatp(1)}, 3, 1},
		// 0 is a value, not "unset": every removal waits for approval.
		{"zero removals is kept", connectors.DeletionGuard{MaxRemovals: intp(0)}, 0, 0.2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, f := tt.guard.Limits()
			if n != tt.wantRemovals || f != tt.wantFraction {
				t.Errorf("Limits() = %d, %g; want %d, %g", n, f, tt.wantRemovals, tt.wantFraction)
			}
		})
	}
}

func TestPollSettingsProblems(t *testing.T) {
	tests := []struct {
		name string
		ps   connectors.PollSettings
		want []string // one substring per expected problem, in order
	}{
		{"zero value is valid", connectors.PollSettings{}, nil},
		{"all set and valid", connectors.PollSettings{
			Schedule:      "*/5 * * * *",
			DeletionGuard: connectors.DeletionGuard{MaxRemovals: intp(0), MaxFraction: floatp(1)},
			FullSyncEvery: connectors.Duration(time.Hour),
		}, nil},
		{"descriptor schedule", connectors.PollSettings{Schedule: "@every 30s"}, nil},
		{"bad schedule", connectors.PollSettings{Schedule: "every now and then"}, []string{"schedule:"}},
		{"negative removals", connectors.PollSettings{DeletionGuard: connectors.DeletionGuard{MaxRemovals: intp(-1)}}, []string{"deletion_guard.max_removals: -1"}},
		{"zero fraction", connectors.PollSettings{DeletionGuard: connectors.DeletionGuard{MaxFraction: floatp(0)}}, []string{"deletion_guard.max_fraction: 0"}},
		{"fraction above one", connectors.PollSettings{DeletionGuard: connectors.DeletionGuard{MaxFraction: floatp(1.5)}}, []string{"deletion_guard.max_fraction: 1.5"}},
		{"negative full sync", connectors.PollSettings{FullSyncEvery: connectors.Duration(-time.Second)}, []string{"full_sync_every: negative"}},
		{"full sync too often", connectors.PollSettings{FullSyncEvery: connectors.Duration(30 * time.Second)}, []string{"full_sync_every: 30s is shorter than a minute"}},
		{"every problem at once", connectors.PollSettings{
			Schedule:      "nope",
			DeletionGuard: connectors.DeletionGuard{MaxRemovals: intp(-5), MaxFraction: floatp(-0.1)},
			FullSyncEvery: connectors.Duration(time.Second),
		}, []string{"schedule:", "max_removals", "max_fraction", "full_sync_every"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.ps.Problems()
			if len(got) != len(tt.want) {
				t.Fatalf("Problems() = %v; want %d problems like %q", got, len(tt.want), tt.want)
			}
			for i, p := range got {
				if !strings.Contains(p.Error(), tt.want[i]) {
					t.Errorf("problem %d = %q; want it to contain %q", i, p, tt.want[i])
				}
			}
		})
	}
}

func TestPollSettingsEffectiveValues(t *testing.T) {
	var zero connectors.PollSettings
	if got := zero.ScheduleSpec(); got != connectors.DefaultSchedule {
		t.Errorf("ScheduleSpec() of unset = %q; want %q", got, connectors.DefaultSchedule)
	}
	if got := zero.FullSyncInterval(); got != time.Hour {
		t.Errorf("FullSyncInterval() of unset = %s; want 1h", got)
	}
	set := connectors.PollSettings{Schedule: " @every 30s ", FullSyncEvery: connectors.Duration(2 * time.Hour)}
	if got := set.ScheduleSpec(); got != "@every 30s" {
		t.Errorf("ScheduleSpec() = %q; want %q", got, "@every 30s")
	}
	if got := set.FullSyncInterval(); got != 2*time.Hour {
		t.Errorf("FullSyncInterval() = %s; want 2h", got)
	}
}

func TestDurationEncoding(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
	}{
		{`"30s"`, 30 * time.Second},
		{`"1h"`, time.Hour},
		{`90`, 90 * time.Second},
		{`"2.5"`, 2500 * time.Millisecond},
		{`""`, 0},
	} {
		var d connectors.Duration
		if err := json.Unmarshal([]byte(tt.in), &d); err != nil {
			t.Errorf("Unmarshal(%s): %v", tt.in, err)
			continue
		}
		if d.D() != tt.want {
			t.Errorf("Unmarshal(%s) = %s; want %s", tt.in, d.D(), tt.want)
		}
	}
	var d connectors.Duration
	if err := json.Unmarshal([]byte(`"soon"`), &d); err == nil {
		t.Error(`Unmarshal("soon") succeeded; want an error`)
	}
	b, _ := json.Marshal(connectors.Duration(5 * time.Minute))
	if string(b) != `"5m0s"` {
		t.Errorf("Marshal(5m) = %s; want \"5m0s\"", b)
	}
}

// testConfig is a connector Config as a connector package writes one: its
// own fields beside the embedded PollSettings.
type testConfig struct {
	connectors.PollSettings `yaml:",inline"`
	URL                     string `json:"url" yaml:"url"`
}

func (c *testConfig) Validate() error {
	errs := c.Problems()
	if c.URL == "" {
		errs = append(errs, errors.New("url: missing"))
	}
	return errors.Join(errs...)
}
func (c *testConfig) Polling() connectors.PollSettings { return c.PollSettings }
func (c *testConfig) Redacted() any                    { return *c }
func (c *testConfig) Open(context.Context, *slog.Logger) (connectors.Source, error) {
	return nil, errors.New("not a real source")
}

var testType = connectors.Type{NewConfig: func() connectors.Config { return &testConfig{} }}

func TestEmbeddedSettingsKeepTheirNames(t *testing.T) {
	const body = `{"url":"x","schedule":"@every 1m","deletion_guard":{"max_removals":0,"max_fraction":0.5},"full_sync_every":"2h"}`
	c, err := testType.Parse(json.RawMessage(body))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := connectors.PollSettings{
		Schedule:      "@every 1m",
		DeletionGuard: connectors.DeletionGuard{MaxRemovals: intp(0), MaxFraction: floatp(0.5)},
		FullSyncEvery: connectors.Duration(2 * time.Hour),
	}
	if diff := cmp.Diff(want, c.Polling()); diff != "" {
		t.Errorf("Polling() (-want +got):\n%s", diff)
	}
	out, _ := json.Marshal(c)
	var back map[string]any
	_ = json.Unmarshal(out, &back)
	for _, k := range []string{"url", "schedule", "deletion_guard", "full_sync_every"} {
		if _, ok := back[k]; !ok {
			t.Errorf("marshalled settings lack top-level %q: %s", k, out)
		}
	}

	var y testConfig
	if err := yaml.Unmarshal([]byte("url: x\nschedule: '@every 2m'\ndeletion_guard:\n  max_removals: 7\nfull_sync_every: 3h\n"), &y); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	if n, _ := y.DeletionGuard.Limits(); y.Schedule != "@every 2m" || n != 7 || y.FullSyncInterval() != 3*time.Hour {
		t.Errorf("yaml decoded %+v", y)
	}
}

func TestTypeParseAndLoad(t *testing.T) {
	if _, err := testType.Parse(json.RawMessage(`{"url":"x","shedule":"@every 1m"}`)); err == nil || !strings.Contains(err.Error(), "shedule") {
		t.Errorf("Parse with a misspelt field: err = %v; want it named", err)
	}
	if _, err := testType.Parse(json.RawMessage(`{"schedule":"bad"}`)); err == nil ||
		!strings.Contains(err.Error(), "url: missing") || !strings.Contains(err.Error(), "schedule:") {
		t.Errorf("Parse of invalid settings: err = %v; want every problem", err)
	}
	// Stored settings from a newer version still load.
	c, err := testType.Load(json.RawMessage(`{"url":"x","schedule":"@every 1m","added_later":true}`))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := c.Polling().ScheduleSpec(); got != "@every 1m" {
		t.Errorf("loaded schedule = %q", got)
	}
	if c, err := testType.Load(nil); err != nil || c.Polling().ScheduleSpec() != connectors.DefaultSchedule {
		t.Errorf("Load(nil) = %v, %v; want an empty config with the default schedule", c, err)
	}
	if _, err := testType.Load(json.RawMessage(`{"url":`)); err == nil {
		t.Error("Load of broken JSON succeeded")
	}
}
