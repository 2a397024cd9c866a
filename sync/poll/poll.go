// Package poll reads polled sources into the mirror: the first stage of
// sync. One poll lists a directory through its connector (everything, or
// what changed since the stored cursor), compares the listing with what the
// mirror holds, lets the deletion guard hold back a poll that would remove
// too many members, and writes the difference, the new cursor and the
// directory's state in one transaction. The reconciler (sync/reconcile)
// then carries the mirror into the roster.
//
// A poll is load → plan → write: loadMirror reads what the listing touches,
// planPoll decides in memory what changes, the guard decides whether it may
// apply, and write applies it.
package poll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/roster-dev/roster/connectors"
	"github.com/roster-dev/roster/metrics"
	"github.com/roster-dev/roster/store"
	"github.com/roster-dev/roster/sync/rules"
)

// Event types this stage appends to the feed.
const (
	EventDirectoryHeld     = rules.EventDirectoryHeld
	EventDirectoryApproved = rules.EventDirectoryApproved
)

// Poller reads polled sources into the mirror.
type Poller struct {
	Store   *store.Store
	Metrics *metrics.Metrics
	Log     *slog.Logger
	// Types are the polled directory types, by name; a directory of a type
	// not listed is not polled (SCIM).
	Types map[string]connectors.Type
	// Trigger asks for a reconcile of the directory after a poll wrote.
	Trigger func(ctx context.Context, dirID string) error
}

// ErrNotPolled is returned for directories that are not polled (SCIM).
var ErrNotPolled = errors.New("directory is not polled")

// errHeld says the deletion guard held the poll back; Poll reports it as
// success, since the directory's state tells the admin.
var errHeld = errors.New("held by the deletion guard")

// Poll reads a directory's source and writes what changed to the mirror. A
// failed or partial read changes nothing but the directory's state; a poll
// that would remove too many members is held for review.
func (p *Poller) Poll(ctx context.Context, dirID string) error {
	_, err := p.Run(ctx, dirID)
	return err
}

// Result says what a poll did: the job's log line shows it.
type Result struct {
	TeamID string
	Type   string // the directory type
	Kind   string // full or incremental
	// Held says the deletion guard held the poll back; WouldRemove of
	// Active members would have left.
	Held                bool
	WouldRemove, Active int
	// What the poll wrote to the mirror: users added, changed or deleted;
	// groups added, renamed or deleted; direct memberships added or
	// removed. Skipped counts entries the source had that roster cannot
	// take (no email, ...).
	Users, Groups, Memberships, Skipped int
	// Usage is what the source was asked, for sources that count it.
	Usage *connectors.Usage
	// ConsecutiveFailures and NextPollAt are set after a failed poll:
	// the schedule waits until then.
	ConsecutiveFailures int
	NextPollAt          *time.Time
}

// Run is Poll, also saying what the poll did.
func (p *Poller) Run(ctx context.Context, dirID string) (Result, error) {
	var res Result
	dir, err := p.Store.GetDirectory(ctx, dirID)
	if err != nil {
		return res, fmt.Errorf("poll %s: %w", dirID, err)
	}
	res.TeamID, res.Type = dir.TeamID, dir.Type
	typ, ok := p.Types[dir.Type]
	if !ok {
		return res, fmt.Errorf("poll %s (%s): %w", dirID, dir.Type, ErrNotPolled)
	}
	log := p.logger().With("directory", dirID, "type", dir.Type)
	if dir.State != store.StateNeedsReview {
		p.setState(ctx, dir, store.StateSyncing)
	}
	start := time.Now()
	kind, err := p.poll(ctx, dir, typ, log, &res)
	res.Kind = kind
	p.observe(dir.Type, kind, start, err)
	lp := lastPoll(kind, start, res.Usage, err)
	if err != nil && !errors.Is(err, errHeld) {
		p.backOff(&lp, dir, typ)
		res.ConsecutiveFailures, res.NextPollAt = lp.ConsecutiveFailures, lp.NextPollAt
	}
	p.recordPoll(ctx, dirID, lp)
	if errors.Is(err, errHeld) {
		res.Held = true
		return res, nil
	}
	if err != nil {
		p.recordFailure(ctx, dirID, err)
		return res, fmt.Errorf("poll %s: %w", dirID, err)
	}
	if p.Trigger != nil {
		if err := p.Trigger(ctx, dirID); err != nil {
			log.Warn("trigger reconcile after poll", "err", err)
		}
	}
	return res, nil
}

func (p *Poller) observe(dirType, kind string, start time.Time, err error) {
	if p.Metrics == nil {
		return
	}
	result := "ok"
	switch {
	case errors.Is(err, errHeld):
		result = "held"
	case err != nil:
		result = "error"
	}
	p.Metrics.Polls.WithLabelValues(dirType, kind, result).Inc()
	p.Metrics.PollDuration.WithLabelValues(dirType, kind).Observe(time.Since(start).Seconds())
	if err == nil {
		p.Metrics.PollLastSuccess.WithLabelValues(dirType).SetToCurrentTime()
	}
}

// observeUsage records what a poll cost its source.
func (p *Poller) observeUsage(dirType string, u connectors.Usage) {
	if p.Metrics == nil {
		return
	}
	p.Metrics.PollRequests.WithLabelValues(dirType).Add(float64(u.Requests))
	p.Metrics.PollPages.WithLabelValues(dirType).Add(float64(u.Pages))
	p.Metrics.PollItems.WithLabelValues(dirType).Add(float64(u.Items))
	p.Metrics.PollThrottled.WithLabelValues(dirType).Add(float64(u.Throttled))
	p.Metrics.PollRetries.WithLabelValues(dirType).Add(float64(u.Retries))
}

// LastPoll is what a poll cost and how it ended, kept on the directory.
type LastPoll struct {
	At         time.Time `json:"at"`
	Kind       string    `json:"kind"`   // full or incremental
	Result     string    `json:"result"` // ok, held or error
	DurationMS float64   `json:"duration_ms"`
	Error      string    `json:"error,omitempty"`
	// The source's counts, for sources that keep them.
	Requests  *int64 `json:"requests,omitempty"`
	Pages     *int64 `json:"pages,omitempty"`
	Items     *int64 `json:"items,omitempty"`
	Throttled *int64 `json:"throttled,omitempty"`
	Retries   *int64 `json:"retries,omitempty"`
	// ConsecutiveFailures counts the failed polls in a row up to this one;
	// while it is above zero the scheduler skips scheduled polls before
	// NextPollAt (backoff.go). One successful or held poll resets both.
	ConsecutiveFailures int        `json:"consecutive_failures,omitempty"`
	NextPollAt          *time.Time `json:"next_poll_at,omitempty"`
}

func lastPoll(kind string, start time.Time, u *connectors.Usage, err error) LastPoll {
	lp := LastPoll{At: start.UTC(), Kind: kind, Result: "ok", DurationMS: float64(time.Since(start).Microseconds()) / 1000}
	switch {
	case errors.Is(err, errHeld):
		lp.Result = "held"
	case err != nil:
		lp.Result, lp.Error = "error", err.Error()
	}
	if u != nil {
		lp.Requests, lp.Pages, lp.Items, lp.Throttled, lp.Retries = &u.Requests, &u.Pages, &u.Items, &u.Throttled, &u.Retries
	}
	return lp
}

// backOff counts a failed poll on top of the failures before it and sets
// when the schedule may poll again.
func (p *Poller) backOff(lp *LastPoll, dir *store.Directory, typ connectors.Type) {
	var prev LastPoll
	if len(dir.LastPoll) > 0 {
		_ = json.Unmarshal(dir.LastPoll, &prev)
	}
	lp.ConsecutiveFailures = prev.ConsecutiveFailures + 1
	spec := connectors.DefaultSchedule
	if cfg, err := typ.Load(dir.Settings); err == nil {
		spec = cfg.Polling().ScheduleSpec()
	}
	interval := ScheduleInterval(spec, lp.At)
	if interval <= 0 {
		return // unschedulable: nothing to skip
	}
	next := lp.At.Add(backoff(lp.ConsecutiveFailures, interval))
	lp.NextPollAt = &next
}

// recordPoll keeps what the poll cost on the directory, for the admin API.
func (p *Poller) recordPoll(ctx context.Context, dirID string, lp LastPoll) {
	b, _ := json.Marshal(lp)
	err := p.Store.WithTx(ctx, func(tx *store.Tx) error {
		d, err := tx.GetDirectory(ctx, dirID)
		if err != nil {
			return err
		}
		d.LastPoll = b
		return tx.UpdateDirectory(ctx, d)
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		p.logger().Warn("record poll", "directory", dirID, "err", err)
	}
}

// recordFailure puts a failed poll's error on the directory. Stale beats
// wrong: the mirror is left as it was, and a held review stays held.
func (p *Poller) recordFailure(ctx context.Context, dirID string, err error) {
	cur, gerr := p.Store.GetDirectory(ctx, dirID)
	if gerr != nil {
		return
	}
	if cur.State != store.StateNeedsReview {
		cur.State = store.StateError
	}
	cur.LastError = err.Error()
	_ = p.Store.UpdateDirectory(ctx, cur)
}

func (p *Poller) logger() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.Default()
}

func (p *Poller) setState(ctx context.Context, dir *store.Directory, state string) {
	dir.State = state
	if err := p.Store.UpdateDirectory(ctx, dir); err != nil {
		p.logger().Warn("set directory state", "directory", dir.ID, "err", err)
	}
}

// listing is what a source answered: a whole snapshot, or a delta, and the
// cursor to continue from.
type listing struct {
	snap   *connectors.Snapshot // a full listing
	delta  *connectors.Delta    // an incremental one, when snap is nil
	cursor json.RawMessage
}

// full reports whether the listing is the whole directory.
func (l listing) full() bool { return l.snap != nil }

// needsWholeMirror reports whether planning needs all the mirror holds: a
// full listing, or a delta that names everything that still exists.
func (l listing) needsWholeMirror() bool { return l.snap != nil || l.delta.Present != nil }

// poll lists the directory and applies the listing. It decides which
// listing to ask for: what changed since the cursor when the source can
// say and the last full listing is recent enough (full_sync_every), else
// everything. It returns the kind of poll it ran, for metrics.
func (p *Poller) poll(ctx context.Context, dir *store.Directory, typ connectors.Type, log *slog.Logger, res *Result) (string, error) {
	cfg, err := typ.Load(dir.Settings)
	if err != nil {
		return "full", err
	}
	src, err := cfg.Open(ctx, log)
	if err != nil {
		return "full", fmt.Errorf("connect: %w", err)
	}
	if c, ok := src.(connectors.Closer); ok {
		defer c.Close()
	}
	if m, ok := src.(connectors.Meter); ok {
		defer func() {
			u := m.Usage()
			res.Usage = &u
			p.observeUsage(dir.Type, u)
		}()
	}
	ps := cfg.Polling()
	guard := guardOf(ps)
	if ds, ok := src.(connectors.DeltaSource); ok && !fullDue(dir, ps.FullSyncInterval(), time.Now()) {
		delta, cursor, err := ds.Changes(ctx, dir.Cursor)
		switch {
		case err == nil && delta == nil:
			return "incremental", errors.New("source returned no delta and no error")
		case err == nil:
			return "incremental", p.apply(ctx, dir, guard, listing{delta: delta, cursor: cursor}, res)
		case !errors.Is(err, connectors.ErrResync):
			return "incremental", err
		}
		log.Info("incremental cursor no longer valid; listing everything", "reason", err)
	}
	snap, cursor, err := src.Full(ctx)
	if err != nil {
		return "full", err
	}
	if snap == nil {
		return "full", errors.New("source returned no snapshot and no error")
	}
	return "full", p.apply(ctx, dir, guard, listing{snap: snap, cursor: cursor}, res)
}

// guardOf is the deletion guard the directory's settings ask for.
func guardOf(ps connectors.PollSettings) rules.Guard {
	var g rules.Guard
	g.MaxRemovals, g.MaxFraction = ps.DeletionGuard.Limits()
	return g
}

// fullDue reports whether the next poll must list everything: there is no
// cursor to continue from, or the last full listing is every or more ago.
// This is the only place that times full listings; sources never do.
func fullDue(dir *store.Directory, every time.Duration, now time.Time) bool {
	return len(dir.Cursor) == 0 || dir.LastFullAt == nil || now.Sub(*dir.LastFullAt) >= every
}

// apply takes one listing into the mirror: load what the mirror holds of
// it, plan the difference, let the deletion guard decide, write.
func (p *Poller) apply(ctx context.Context, dir *store.Directory, guard rules.Guard, l listing, res *Result) error {
	cur, err := p.loadMirror(ctx, dir.ID, l)
	if err != nil {
		return fmt.Errorf("read mirror: %w", err)
	}
	pl := planPoll(dir.ID, cur, l)
	active, err := cur.active(len(pl.leaving))
	if err != nil {
		return fmt.Errorf("count members: %w", err)
	}
	var review Review
	_ = json.Unmarshal(dir.Review, &review)
	approved := dir.State == store.StateNeedsReview && review.Approved
	if guard.Holds(len(pl.leaving), active) && !approved {
		res.WouldRemove, res.Active = len(pl.leaving), active
		return p.hold(ctx, dir, cur, pl.leaving, active, guard)
	}
	if err := p.write(ctx, dir, pl, l, approved); err != nil {
		return err
	}
	pl.count(res)
	return nil
}

func cursorKind(c json.RawMessage) string {
	var k struct {
		Kind string `json:"kind"`
	}
	if json.Unmarshal(c, &k) == nil && k.Kind != "" {
		return k.Kind
	}
	return "incremental"
}

// withIDs adds the team and directory ids every feed event carries.
func withIDs(b []byte, d *store.Directory) json.RawMessage {
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	m["team_id"], m["directory_id"] = d.TeamID, d.ID
	out, _ := json.Marshal(m)
	return out
}
