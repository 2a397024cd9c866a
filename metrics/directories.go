package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/roster-dev/roster/store"
)

// DirectoryTypes are the directory types every aggregate is sent for,
// zeros included, so alerts see a 0 before the first directory of a type.
var DirectoryTypes = []string{"scim", "ldap", "google", "msgraph", "okta"}

// directoryStates are the states roster_directories is sent for.
var directoryStates = []string{store.StateSyncing, store.StateOK, store.StateError, store.StateNeedsReview}

// DirectoryStore is what the directory gauges are read from.
type DirectoryStore interface {
	DirectoryAggregates(ctx context.Context) (store.DirectoryAggregates, error)
	DirectoryStatuses(ctx context.Context, f store.StatusFilter) ([]store.DirectoryStatus, error)
}

// DirectoryOptions configure a DirectoryCollector.
type DirectoryOptions struct {
	// Interval is the time between two reads of the store (default 10 s).
	Interval time.Duration
	// PerDirectory adds the series labelled by directory.
	PerDirectory bool
	Log          *slog.Logger
}

// DirectoryCollector reports the directory gauges from a snapshot of the
// store that Run refreshes in the background. A scrape sends the snapshot
// and reads nothing, so its cost does not depend on how many directories
// there are, and every replica reports the same truth whichever process did
// the work. A failed refresh keeps the previous snapshot;
// roster_directory_metrics_refresh_timestamp_seconds says how old it is.
type DirectoryCollector struct {
	store DirectoryStore
	opt   DirectoryOptions
	snap  atomic.Pointer[snapshot]
	// failing is set while refreshes fail, so that a streak of failures
	// logs once. Only Refresh touches it, and Run calls Refresh from one
	// goroutine.
	failing atomic.Bool
}

// snapshot is one reading of the store, as the metrics a scrape sends.
type snapshot struct {
	at      time.Time
	metrics []prometheus.Metric
}

// NewDirectoryCollector returns the collector of the directory gauges;
// register it with the Registry, and Run it.
func NewDirectoryCollector(s DirectoryStore, opt DirectoryOptions) *DirectoryCollector {
	if opt.Interval <= 0 {
		opt.Interval = 10 * time.Second
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	return &DirectoryCollector{store: s, opt: opt}
}

var (
	dirLabels       = []string{"directory", "team", "directory_type"}
	descDirectories = prometheus.NewDesc("roster_directories", "Directories by type and state (syncing, ok, error, needs_review).", []string{"directory_type", "state"}, nil)
	descTypePending = prometheus.NewDesc("roster_directories_pending_changes", "Changes waiting for the reconciler, summed over the directories of the type.", []string{"directory_type"}, nil)
	descTypeOldest  = prometheus.NewDesc("roster_directories_oldest_pending_change_timestamp_seconds",
		"Unix time the oldest change not yet applied of any directory of the type was observed; 0 when none waits.", []string{"directory_type"}, nil)
	descTypeStalest = prometheus.NewDesc("roster_directories_oldest_success_timestamp_seconds",
		"Earliest last successful sync among the directories of the type that have synced at least once (the stalest); 0 when none has.", []string{"directory_type"}, nil)
	descTypeBackoff = prometheus.NewDesc("roster_directories_backing_off",
		"Polled directories of the type whose last polls failed, so that their scheduled polls are spaced out by backoff until one succeeds.", []string{"directory_type"}, nil)
	descRefreshed = prometheus.NewDesc("roster_directory_metrics_refresh_timestamp_seconds",
		"Unix time the directory gauges were last read from the store; 0 before the first successful read.", nil, nil)

	descState   = prometheus.NewDesc("roster_directory_state", "1, with the directory's current state (syncing, ok, error, needs_review) as a label.", append(dirLabels, "state"), nil)
	descPending = prometheus.NewDesc("roster_directory_pending_changes", "Changes of the directory waiting for the reconciler.", dirLabels, nil)
	descOldest  = prometheus.NewDesc("roster_directory_oldest_pending_change_timestamp_seconds", "Unix time the directory's oldest change not yet applied was observed; 0 when none.", dirLabels, nil)
	descLastOK  = prometheus.NewDesc("roster_directory_last_success_timestamp_seconds", "Unix time of the directory's last successful sync (poll or SCIM write applied).", dirLabels, nil)
	descBackoff = prometheus.NewDesc("roster_directory_poll_backoff_seconds",
		"Seconds, at the last refresh, until a directory whose polls keep failing may be polled on schedule again; 0 when it is not backing off.", dirLabels, nil)
	descFailing = prometheus.NewDesc("roster_directory_poll_consecutive_failures", "Failed polls in a row; one success resets it.", dirLabels, nil)
)

// Describe sends the gauges' descriptions.
func (c *DirectoryCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDirectories, descTypePending, descTypeOldest, descTypeStalest, descTypeBackoff, descRefreshed} {
		ch <- d
	}
	if c.opt.PerDirectory {
		for _, d := range []*prometheus.Desc{descState, descPending, descOldest, descLastOK, descBackoff, descFailing} {
			ch <- d
		}
	}
}

// Collect sends the last snapshot. Before the first successful refresh it
// sends only the refresh timestamp, 0: no series beats a wrong one.
func (c *DirectoryCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.snap.Load()
	if s == nil {
		ch <- prometheus.MustNewConstMetric(descRefreshed, prometheus.GaugeValue, 0)
		return
	}
	for _, m := range s.metrics {
		ch <- m
	}
	ch <- prometheus.MustNewConstMetric(descRefreshed, prometheus.GaugeValue, unixSeconds(s.at))
}

// Run refreshes the snapshot at once, then every interval, until ctx is
// done.
func (c *DirectoryCollector) Run(ctx context.Context) {
	_ = c.Refresh(ctx)
	t := time.NewTicker(c.opt.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = c.Refresh(ctx)
		}
	}
}

// refreshTimeout bounds one refresh's store reads.
const refreshTimeout = 30 * time.Second

// Refresh reads the store and replaces the snapshot. On failure the
// previous snapshot stays, and the failure is logged once per streak of
// failures.
func (c *DirectoryCollector) Refresh(ctx context.Context) error {
	readCtx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	s, err := c.read(readCtx)
	if err != nil {
		if ctx.Err() != nil {
			return err // shutting down: not a store problem
		}
		if !c.failing.Swap(true) {
			c.opt.Log.Warn("metrics: directory gauges not refreshed; serving the last reading until a refresh succeeds", "err", err)
		}
		return err
	}
	c.snap.Store(s)
	if c.failing.Swap(false) {
		c.opt.Log.Info("metrics: directory gauges refreshed again")
	}
	return nil
}

func (c *DirectoryCollector) read(ctx context.Context) (*snapshot, error) {
	agg, err := c.store.DirectoryAggregates(ctx)
	if err != nil {
		return nil, fmt.Errorf("read directory aggregates: %w", err)
	}
	var per []store.DirectoryStatus
	if c.opt.PerDirectory {
		if per, err = c.store.DirectoryStatuses(ctx, store.StatusFilter{}); err != nil {
			return nil, fmt.Errorf("read directory metrics: %w", err)
		}
	}
	now := time.Now()
	s := &snapshot{at: now}
	add := func(desc *prometheus.Desc, v float64, labels ...string) {
		s.metrics = append(s.metrics, prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...))
	}

	types := slices.Clone(DirectoryTypes)
	counts := map[[2]string]int{}
	for _, sc := range agg.States {
		counts[[2]string{sc.Type, sc.State}] += sc.Count
		if !slices.Contains(types, sc.Type) {
			types = append(types, sc.Type)
		}
	}
	for _, typ := range types {
		states := slices.Clone(directoryStates)
		for k := range counts {
			if k[0] == typ && !slices.Contains(states, k[1]) {
				states = append(states, k[1])
			}
		}
		for _, st := range states {
			add(descDirectories, float64(counts[[2]string{typ, st}]), typ, st)
		}
		t := agg.Types[typ]
		add(descTypePending, float64(t.Pending), typ)
		add(descTypeOldest, unixSeconds(t.OldestPending), typ)
		add(descTypeStalest, unixSeconds(t.OldestSuccess), typ)
		add(descTypeBackoff, float64(t.BackingOff), typ)
	}

	for _, d := range per {
		l := []string{d.DirectoryID, d.TeamID, d.Type}
		add(descState, 1, append(l, d.State)...)
		add(descPending, float64(d.Pending), l...)
		oldest := 0.0
		if d.Pending > 0 && d.OldestPending != nil {
			oldest = unixSeconds(*d.OldestPending)
		}
		add(descOldest, oldest, l...)
		if d.LastSyncAt != nil {
			add(descLastOK, unixSeconds(*d.LastSyncAt), l...)
		}
		if len(d.LastPoll) > 0 { // polled directories only
			failures, next := d.PollFailures()
			wait := 0.0
			if next != nil && next.After(now) {
				wait = next.Sub(now).Seconds()
			}
			add(descBackoff, wait, l...)
			add(descFailing, float64(failures), l...)
		}
	}
	return s, nil
}

// unixSeconds is t as a Unix timestamp in seconds, 0 for the zero time.
func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}
