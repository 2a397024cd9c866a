package app

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/roster-dev/roster/store"
	"github.com/roster-dev/roster/sync/poll"
)

// schedule runs while this process is the elected scheduler: it fires polls
// on each directory's schedule, triggers changes whose trigger was lost,
// reconciles everything in full at start and periodically, and prunes the
// SCIM request log.
func (a *App) schedule(ctx context.Context) {
	log := a.Log.With("component", "scheduler")
	log.Info("leading the schedule")
	c := newCron()
	c.Start()
	defer c.Stop()
	entries := map[string]scheduled{}

	a.fullReconcileAll(ctx, log)
	a.sweepWebhooks(ctx, log)
	a.syncSchedules(ctx, c, entries, log)

	sweep := time.NewTicker(a.Cfg.Reconcile.SweepEvery.Duration)
	defer sweep.Stop()
	full := time.NewTicker(a.Cfg.Reconcile.FullEvery.Duration)
	defer full.Stop()
	reload := time.NewTicker(schedulesReread)
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
			a.sweepWebhooks(ctx, log)
		case <-full.C:
			a.fullReconcileAll(ctx, log)
		case <-reload.C:
			a.syncSchedules(ctx, c, entries, log)
		case <-a.schedWake.C():
			a.syncSchedules(ctx, c, entries, log)
		case <-prune.C:
			if n, err := a.Store.PruneSCIMRequests(ctx, time.Now().Add(-a.Cfg.SCIM.RequestLogRetention.Duration)); err != nil {
				log.Warn("prune scim request log", "err", err)
			} else if n > 0 {
				log.Info("pruned scim request log", "rows", n)
			}
			a.pruneWebhookLog(ctx, log)
		}
	}
}

// schedulesReread is how often the leading scheduler re-reads every
// directory's schedule. A directory created or changed through this
// process's API is scheduled at once (SchedulesChanged); one changed through
// another replica's API is picked up by the leader within this period.
const schedulesReread = 10 * time.Second

// SchedulesChanged tells the scheduler that a directory was created,
// changed or deleted, so that its schedule takes effect now rather than at
// the next re-read. It never blocks; it does nothing unless this process
// leads the schedule (the leader's own re-read covers other replicas).
func (a *App) SchedulesChanged() { a.schedWake.wake() }

// waker is a level-triggered wake-up: any number of wakes before the
// receiver looks count as one. The zero value is ready to use.
type waker struct {
	once sync.Once
	ch   chan struct{}
}

func (w *waker) channel() chan struct{} {
	w.once.Do(func() { w.ch = make(chan struct{}, 1) })
	return w.ch
}

// C returns the channel a wake-up arrives on.
func (w *waker) C() <-chan struct{} { return w.channel() }

func (w *waker) wake() {
	select {
	case w.channel() <- struct{}{}:
	default:
	}
}

// newCron returns a cron that reads schedules as connectors.PollSettings
// validates them: standard five-field specs and descriptors.
func newCron() *cron.Cron {
	return cron.New(cron.WithParser(cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)))
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
	types := ConnectorTypes()
	seen := map[string]bool{}
	for _, d := range dirs {
		typ, ok := types[d.Type]
		if !ok {
			continue // pushed (SCIM), not polled
		}
		cfg, err := typ.Load(d.Settings)
		if err != nil {
			log.Warn("unreadable directory settings; not scheduled", "directory", d.ID, "err", err)
			continue
		}
		spec := cfg.Polling().ScheduleSpec()
		seen[d.ID] = true
		if e, ok := entries[d.ID]; ok && e.spec == spec {
			continue
		} else if ok {
			c.Remove(e.id)
		}
		dirID := d.ID
		id, err := c.AddFunc(spec, func() { a.scheduledPoll(ctx, dirID, spec, log) })
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

// scheduledPoll queues a directory's scheduled poll unless the directory
// is backing off after failed polls (its last_poll says until when). Polls
// asked for through the API are queued directly and never wait for this.
func (a *App) scheduledPoll(ctx context.Context, dirID, spec string, log *slog.Logger) {
	if d, err := a.Store.GetDirectory(ctx, dirID); err == nil {
		if until, failures, ok := poll.BackoffUntil(d.LastPoll); ok {
			// Ticks land a little before the time a failed poll set, since
			// that poll started a little after its tick.
			slack := min(time.Second, poll.ScheduleInterval(spec, time.Now())/2)
			if time.Until(until) > slack {
				log.Debug("scheduled poll skipped: backing off after failed polls", "directory", dirID,
					"consecutive_failures", failures, "next_poll_at", until)
				return
			}
		}
	} else if errors.Is(err, store.ErrNotFound) {
		return // deleted; the next re-read drops its schedule
	}
	if err := a.Queue.EnqueuePoll(ctx, dirID); err != nil {
		log.Warn("enqueue poll", "directory", dirID, "err", err)
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
