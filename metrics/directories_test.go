package metrics_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/roster-dev/roster/metrics"
	"github.com/roster-dev/roster/store"
)

// fakeDirStore answers the collector's reads, or fails them.
type fakeDirStore struct {
	mu    sync.Mutex
	agg   store.DirectoryAggregates
	per   []store.DirectoryStatus
	err   error
	reads int
}

func (f *fakeDirStore) DirectoryAggregates(context.Context) (store.DirectoryAggregates, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return f.agg, f.err
}

func (f *fakeDirStore) DirectoryStatuses(context.Context, store.StatusFilter) ([]store.DirectoryStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.per, f.err
}

func (f *fakeDirStore) set(agg store.DirectoryAggregates, err error) {
	f.mu.Lock()
	f.agg, f.err = agg, err
	f.mu.Unlock()
}

// gauges gathers the registry into name → sorted label values → value.
func gauges(t *testing.T, reg *prometheus.Registry) map[string]map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]float64{}
	for _, mf := range mfs {
		out[mf.GetName()] = map[string]float64{}
		for _, m := range mf.GetMetric() {
			out[mf.GetName()][labelKey(m)] = m.GetGauge().GetValue()
		}
	}
	return out
}

func labelKey(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return strings.Join(parts, ",")
}

func TestDirectoryCollectorSnapshot(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	f := &fakeDirStore{}
	c := metrics.NewDirectoryCollector(f, metrics.DirectoryOptions{Log: log})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)

	// Before the first refresh: only the refresh timestamp, 0.
	got := gauges(t, reg)
	if len(got) != 1 || got["roster_directory_metrics_refresh_timestamp_seconds"][""] != 0 {
		t.Fatalf("before a refresh: %v, want only the refresh timestamp at 0", got)
	}

	oldest := time.Unix(1700000000, 0)
	f.set(store.DirectoryAggregates{
		States: []store.StateCount{{Type: "scim", State: "ok", Count: 7}, {Type: "ldap", State: "error", Count: 2}},
		Types: map[string]store.TypeAggregate{
			"scim": {Pending: 3, OldestPending: oldest, OldestSuccess: oldest},
			"ldap": {BackingOff: 2},
		},
	}, nil)
	before := time.Now()
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.reads != 1 {
		t.Fatalf("%d store reads for one refresh", f.reads)
	}
	got = gauges(t, reg)
	gauges(t, reg) // a scrape reads nothing
	if f.reads != 1 {
		t.Fatalf("scrapes read the store: %d reads", f.reads)
	}
	dirs := got["roster_directories"]
	if len(dirs) != 5*4 {
		t.Errorf("roster_directories has %d series, want every type × state (20): %v", len(dirs), dirs)
	}
	for key, want := range map[string]float64{
		"directory_type=scim,state=ok": 7, "directory_type=ldap,state=error": 2, "directory_type=okta,state=needs_review": 0,
	} {
		if v, ok := dirs[key]; !ok || v != want {
			t.Errorf("roster_directories{%s} = %v (sent: %v), want %v", key, v, ok, want)
		}
	}
	for name, want := range map[string]map[string]float64{
		"roster_directories_pending_changes":                         {"directory_type=scim": 3, "directory_type=google": 0},
		"roster_directories_oldest_pending_change_timestamp_seconds": {"directory_type=scim": 1700000000, "directory_type=ldap": 0},
		"roster_directories_oldest_success_timestamp_seconds":        {"directory_type=scim": 1700000000, "directory_type=msgraph": 0},
		"roster_directories_backing_off":                             {"directory_type=ldap": 2, "directory_type=scim": 0},
	} {
		if len(got[name]) != 5 {
			t.Errorf("%s has %d series, want one per type: %v", name, len(got[name]), got[name])
		}
		for key, v := range want {
			if got[name][key] != v {
				t.Errorf("%s{%s} = %v, want %v", name, key, got[name][key], v)
			}
		}
	}
	refreshed := got["roster_directory_metrics_refresh_timestamp_seconds"][""]
	if refreshed < float64(before.Unix()) {
		t.Errorf("refresh timestamp %v, before the refresh (%v)", refreshed, before.Unix())
	}
	if _, ok := got["roster_directory_state"]; ok {
		t.Errorf("per-directory series with PerDirectory off")
	}

	// Failing refreshes keep the snapshot and its timestamp, and log once.
	f.set(store.DirectoryAggregates{}, errors.New("database is locked"))
	for range 3 {
		if err := c.Refresh(context.Background()); err == nil {
			t.Fatal("a failed read refreshed")
		}
	}
	got = gauges(t, reg)
	if got["roster_directories"]["directory_type=scim,state=ok"] != 7 || got["roster_directory_metrics_refresh_timestamp_seconds"][""] != refreshed {
		t.Errorf("after failed refreshes: %v, want the previous snapshot and timestamp", got)
	}
	if n := strings.Count(logs.String(), "not refreshed"); n != 1 {
		t.Errorf("three failed refreshes logged %d times, want once:\n%s", n, logs.String())
	}
	f.set(store.DirectoryAggregates{}, nil)
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "refreshed again") {
		t.Errorf("no log of the recovery:\n%s", logs.String())
	}
	f.set(store.DirectoryAggregates{}, errors.New("gone again"))
	_ = c.Refresh(context.Background())
	if n := strings.Count(logs.String(), "not refreshed"); n != 2 {
		t.Errorf("a second failure streak logged %d times in all, want 2", n)
	}
	if got := gauges(t, reg)["roster_directories"]["directory_type=scim,state=ok"]; got != 0 {
		t.Errorf("after an empty refresh roster_directories{scim,ok} = %v, want 0", got)
	}
}

func TestDirectoryCollectorPerDirectory(t *testing.T) {
	synced := time.Unix(1700000100, 0)
	oldest := time.Unix(1700000000, 0)
	f := &fakeDirStore{per: []store.DirectoryStatus{
		{DirectoryID: "d1", TeamID: "t1", Type: "scim", State: "ok", LastSyncAt: &synced, Pending: 2, OldestPending: &oldest},
		{DirectoryID: "d2", TeamID: "t1", Type: "ldap", State: "error",
			LastPoll: []byte(`{"consecutive_failures":3,"next_poll_at":"` + time.Now().Add(time.Hour).Format(time.RFC3339Nano) + `"}`)},
	}}
	c := metrics.NewDirectoryCollector(f, metrics.DirectoryOptions{PerDirectory: true})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := gauges(t, reg)
	for name, want := range map[string]map[string]float64{
		"roster_directory_state":                                   {"directory=d1,directory_type=scim,state=ok,team=t1": 1, "directory=d2,directory_type=ldap,state=error,team=t1": 1},
		"roster_directory_pending_changes":                         {"directory=d1,directory_type=scim,team=t1": 2, "directory=d2,directory_type=ldap,team=t1": 0},
		"roster_directory_oldest_pending_change_timestamp_seconds": {"directory=d1,directory_type=scim,team=t1": 1700000000, "directory=d2,directory_type=ldap,team=t1": 0},
		"roster_directory_last_success_timestamp_seconds":          {"directory=d1,directory_type=scim,team=t1": 1700000100},
		"roster_directory_poll_consecutive_failures":               {"directory=d2,directory_type=ldap,team=t1": 3},
	} {
		if len(got[name]) != len(want) {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
		for key, v := range want {
			if got[name][key] != v {
				t.Errorf("%s{%s} = %v, want %v", name, key, got[name][key], v)
			}
		}
	}
	if v := got["roster_directory_poll_backoff_seconds"]["directory=d2,directory_type=ldap,team=t1"]; v <= 3500 || v > 3600 {
		t.Errorf("roster_directory_poll_backoff_seconds{d2} = %v, want about an hour", v)
	}
}

// TestDirectoryCollectorRun checks that Run refreshes at once (an hourly
// collector too), then on its interval, and returns when its context ends.
func TestDirectoryCollectorRun(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		reads    int
	}{{time.Hour, 1}, {5 * time.Millisecond, 3}} {
		f := &fakeDirStore{}
		c := metrics.NewDirectoryCollector(f, metrics.DirectoryOptions{Interval: tc.interval})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { c.Run(ctx); close(done) }()
		deadline := time.Now().Add(10 * time.Second)
		for {
			f.mu.Lock()
			n := f.reads
			f.mu.Unlock()
			if n >= tc.reads {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("interval %v: %d refreshes in 10 s, want %d", tc.interval, n, tc.reads)
			}
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
	}
}

func TestStatusClass(t *testing.T) {
	for code, want := range map[int]string{200: "2xx", 201: "2xx", 204: "2xx", 304: "3xx", 400: "4xx", 404: "4xx", 429: "4xx", 500: "5xx", 503: "5xx", 0: "5xx", 600: "5xx"} {
		if got := metrics.StatusClass(code); got != want {
			t.Errorf("StatusClass(%d) = %q, want %q", code, got, want)
		}
	}
}
