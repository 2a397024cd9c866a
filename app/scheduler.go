package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"github.com/roster-dev/roster/store"
)

// schedule runs while this process is the elected scheduler: it fires polls
// on each directory's schedule, triggers changes whose trigger was lost,
// reconciles everything in full at start and periodically, and prunes the
// SCIM request log.
func (a *App) schedule(ctx context.Context) {
	log := a.Log.With("component", "scheduler")
	log.Info("leading the schedule")
	c := cron.New(cron.WithParser(cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)))
	c.Start()
	defer c.Stop()
	entries := map[string]scheduled{}

	a.fullReconcileAll(ctx, log)
	a.syncSchedules(ctx, c, entries, log)

	sweep := time.NewTicker(a.Cfg.Reconcile.SweepEvery.Duration)
	defer sweep.Stop()
	full := time.NewTicker(a.Cfg.Reconcile.FullEvery.Duration)
	defer full.Stop()
	reload := time.NewTicker(10 * time.Second)
	defer reload.Stop()
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			log.Info("schedule stopped")
			return
		case <-sweep.C:
			a.sweep(ctx, log)
		case <-full.C:
			a.fullReconcileAll(ctx, log)
		case <-reload.C:
			a.syncSchedules(ctx, c, entries, log)
		case <-prune.C:
			if n, err := a.Store.PruneSCIMRequests(ctx, time.Now().Add(-a.Cfg.SCIM.RequestLogRetention.Duration)); err != nil {
				log.Warn("prune scim request log", "err", err)
			} else if n > 0 {
				log.Info("pruned scim request log", "rows", n)
			}
		}
	}
}

type scheduled struct {
	spec string
	id   cron.EntryID
}

// syncSchedules makes the cron entries match the polled directories.
func (a *App) syncSchedules(ctx context.Context, c *cron.Cron, entries map[string]scheduled, log *slog.Logger) {
	dirs, err := a.Store.ListDirectories(ctx, "")
	if err != nil {
		log.Warn("list directories", "err", err)
		return
	}
	types := DirectoryTypes()
	seen := map[string]bool{}
	for _, d := range dirs {
		if !types[d.Type].Polled {
			continue
		}
		var s struct {
			Schedule string `json:"schedule"`
		}
		_ = json.Unmarshal(d.Settings, &s)
		spec := s.Schedule
		if spec == "" {
			spec = "@every 5m"
		}
		seen[d.ID] = true
		if e, ok := entries[d.ID]; ok && e.spec == spec {
			continue
		} else if ok {
			c.Remove(e.id)
		}
		dirID := d.ID
		id, err := c.AddFunc(spec, func() {
			if err := a.Queue.EnqueuePoll(ctx, dirID); err != nil {
				log.Warn("enqueue poll", "directory", dirID, "err", err)
			}
		})
		if err != nil {
			log.Warn("bad schedule", "directory", dirID, "schedule", spec, "err", err)
			continue
		}
		entries[d.ID] = scheduled{spec: spec, id: id}
	}
	for id, e := range entries {
		if !seen[id] {
			c.Remove(e.id)
			delete(entries, id)
		}
	}
}

// sweep triggers every directory with pending changes; a trigger already
// queued merges, so this only matters when one was lost.
func (a *App) sweep(ctx context.Context, log *slog.Logger) {
	dirty, err := a.Store.DirtyDirectories(ctx)
	if err != nil {
		log.Warn("sweep", "err", err)
		return
	}
	for id := range dirty {
		if err := a.Queue.TriggerReconcile(ctx, id); err != nil {
			log.Warn("sweep trigger", "directory", id, "err", err)
		}
	}
}

// fullReconcileAll marks every directory for a full reconcile.
func (a *App) fullReconcileAll(ctx context.Context, log *slog.Logger) {
	dirs, err := a.Store.ListDirectories(ctx, "")
	if err != nil {
		log.Warn("full reconcile", "err", err)
		return
	}
	now := time.Now()
	for _, d := range dirs {
		err := a.Store.WithTx(ctx, func(tx *store.Tx) error {
			return tx.MarkDirty(ctx, d.ID, store.DirtyAll, "", now)
		})
		if err != nil {
			log.Warn("full reconcile", "directory", d.ID, "err", err)
			continue
		}
		if err := a.Queue.TriggerReconcile(ctx, d.ID); err != nil {
			log.Warn("full reconcile trigger", "directory", d.ID, "err", err)
		}
	}
}

// directoryCollector reports per-directory gauges read from the store at
// scrape time, so every replica reports the same truth.
type directoryCollector struct {
	store *store.Store
	log   *slog.Logger
}

var (
	descPending = prometheus.NewDesc("roster_directory_pending_changes", "Changes waiting for the reconciler.", []string{"directory", "directory_type"}, nil)
	descOldest  = prometheus.NewDesc("roster_directory_oldest_pending_change_timestamp_seconds", "Unix time the oldest change not yet applied was observed; 0 when none.", []string{"directory", "directory_type"}, nil)
	descState   = prometheus.NewDesc("roster_directory_state", "1 for the directory's current state (syncing, ok, error, needs_review).", []string{"directory", "directory_type", "state"}, nil)
	descLastOK  = prometheus.NewDesc("roster_directory_last_success_timestamp_seconds", "Unix time of the directory's last successful sync (poll or SCIM write applied).", []string{"directory", "directory_type"}, nil)
	descDirs    = prometheus.NewDesc("roster_directories", "Directories by type.", []string{"directory_type"}, nil)
)

func (c *directoryCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPending, descOldest, descState, descLastOK, descDirs} {
		ch <- d
	}
}

func (c *directoryCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	dirs, err := c.store.ListDirectories(ctx, "")
	if err != nil {
		c.log.Warn("metrics: list directories", "err", err)
		return
	}
	pending, err := c.store.PendingCounts(ctx)
	if err != nil {
		c.log.Warn("metrics: pending changes", "err", err)
		return
	}
	byType := map[string]int{}
	for _, d := range dirs {
		byType[d.Type]++
		p := pending[d.ID]
		ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(p.Count), d.ID, d.Type)
		oldest := 0.0
		if p.Count > 0 {
			oldest = float64(p.Oldest.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, oldest, d.ID, d.Type)
		for _, s := range []string{store.StateSyncing, store.StateOK, store.StateError, store.StateNeedsReview} {
			v := 0.0
			if d.State == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, d.ID, d.Type, s)
		}
		if d.LastSyncAt != nil {
			ch <- prometheus.MustNewConstMetric(descLastOK, prometheus.GaugeValue, float64(d.LastSyncAt.UnixNano())/1e9, d.ID, d.Type)
		}
	}
	for t, n := range byType {
		ch <- prometheus.MustNewConstMetric(descDirs, prometheus.GaugeValue, float64(n), t)
	}
}
