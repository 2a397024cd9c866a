// Package reconcile makes a directory's roster match its mirror and the
// team's spend policy: the second stage of sync. It is level-triggered, as
// a controller-runtime reconciler is: a run reads what is pending, computes
// the roster those members should have (groups through nesting, effective
// limit and its source, by the rules in sync/rules), and writes the
// difference and its feed events in one transaction, so running it again,
// or after a crash, changes nothing more.
//
// A run is incremental by default (only the pending members, in chunks)
// and full when the whole directory is marked or many members are pending.
// Either is load → plan → write: read the mirror and the roster of the
// members involved, plan the changes and events in memory, apply them.
//
// Spend-limit changes go through this package too (SetTeamDefault,
// SetGroupLimit), since it alone decides which members a change can move.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/roster-dev/roster/metrics"
	"github.com/roster-dev/roster/store"
)

// Reconciler makes a directory's roster match its mirror and the team's
// spend policy.
type Reconciler struct {
	Store   *store.Store
	Metrics *metrics.Metrics
	Log     *slog.Logger
	// IncrementalMax is the number of pending users above which a run
	// reads the whole directory instead (cheaper in bulk). Default 20,000.
	IncrementalMax int
	// BeforeApply, when set, runs after the changes are computed and before
	// they are written (tests use it to crash or stall mid-run).
	BeforeApply func(dirID string)
}

// Result says what a reconcile did.
type Result struct {
	Mode    string // "incremental", "full" or "none"
	Changes int    // roster events written
	Pending int    // pending items consumed
	// TeamID and Type are the directory's, once it was read.
	TeamID, Type string
	// Members counts roster members added, updated or removed; Groups
	// roster groups added, renamed or removed.
	Members, Groups int
	// Held says the SCIM deletion guard held removals back.
	Held bool
}

// add sums the counts of one chunk of a run into r.
func (r *Result) add(c Result) {
	r.Changes += c.Changes
	r.Pending += c.Pending
	r.Members += c.Members
	r.Groups += c.Groups
	r.Held = r.Held || c.Held
	if c.TeamID != "" {
		r.TeamID, r.Type = c.TeamID, c.Type
	}
}

// counted fills the counts of the changes a run wrote.
func (r *Result) counted(c *store.RosterChanges, g *scimGuard) {
	r.Changes += len(c.Events)
	r.Members += len(c.UpsertMembers) + len(c.DeleteMembers)
	r.Groups += len(c.UpsertGroups) + len(c.DeleteGroups)
	r.Held = r.Held || (g != nil && g.tripped)
}

// Reconcile applies what is pending for one directory. A directory marked
// wholly dirty, or with many pending users, is reconciled in full.
func (r *Reconciler) Reconcile(ctx context.Context, dirID string) (Result, error) {
	start := time.Now()
	res, err := r.incrementalChunks(ctx, dirID)
	if errors.Is(err, errUseFull) {
		res, err = r.full(ctx, dirID)
	}
	r.observe(res.Mode, start, err)
	if err != nil {
		return res, fmt.Errorf("reconcile %s: %w", dirID, err)
	}
	return res, nil
}

// Full reconciles the whole directory, pending or not (the safety net).
func (r *Reconciler) Full(ctx context.Context, dirID string) (Result, error) {
	start := time.Now()
	res, err := r.full(ctx, dirID)
	r.observe("full", start, err)
	if err != nil {
		return res, fmt.Errorf("full reconcile %s: %w", dirID, err)
	}
	return res, nil
}

func (r *Reconciler) observe(mode string, start time.Time, err error) {
	if r.Metrics == nil || mode == "" {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	r.Metrics.Reconciles.WithLabelValues(mode, result).Inc()
	r.Metrics.ReconcileDuration.WithLabelValues(mode).Observe(time.Since(start).Seconds())
}

// errUseFull says an incremental run found work a full run does better.
var errUseFull = errors.New("use full reconcile")

func (r *Reconciler) logger() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.Default()
}

// beforeApply runs the BeforeApply hook, if any.
func (r *Reconciler) beforeApply(dirID string) {
	if r.BeforeApply != nil {
		r.BeforeApply(dirID)
	}
}

func (r *Reconciler) incrementalMax() int {
	if r.IncrementalMax > 0 {
		return r.IncrementalMax
	}
	return 20000
}

// apply writes a plan's changes and clears the pending items it consumed,
// inside the caller's transaction.
func apply(ctx context.Context, tx *store.Tx, teamID, dirID string, changes *store.RosterChanges, items []store.DirtyRow) error {
	if err := tx.ApplyRoster(ctx, teamID, dirID, changes); err != nil {
		return err
	}
	return tx.ClearDirty(ctx, dirID, items)
}

// afterApply observes a committed run: the lag of each item it consumed,
// the changes it applied by event type, and the time of the run.
func (r *Reconciler) afterApply(dirID, dirType string, items []store.DirtyRow, evs []store.Event) {
	if r.Metrics == nil {
		return
	}
	now := time.Now()
	lag := r.Metrics.SyncLag.WithLabelValues(dirType)
	for _, it := range items {
		lag.Observe(now.Sub(it.Observed).Seconds())
	}
	for _, e := range evs {
		r.Metrics.ChangesApplied.WithLabelValues(e.Type).Inc()
	}
	r.Metrics.ReconcileLastSuccess.WithLabelValues(dirType).Set(float64(now.UnixNano()) / 1e9)
}
