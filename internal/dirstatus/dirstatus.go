// Package dirstatus is the operator's view of every directory: one row per
// directory with its team, state, last sync, pending work, lag, backoff and
// last error. `roster status` prints the rows and the operator's
// GET /api/v1/directories answers them, so both show the same thing; an
// aggregate alert (RosterDirectoryError, RosterChangesStuck, ...) links to
// the directories behind it through them.
package dirstatus

import (
	"context"
	"time"

	"github.com/roster-dev/roster/store"
)

// LongPending is how old a pending change must be for its directory to
// count as a problem: the RosterChangesStuck alert's threshold.
const LongPending = 5 * time.Minute

// Row is one directory. Its JSON form is stable: scripts read it.
type Row struct {
	TeamID        string     `json:"team_id"`
	TeamName      string     `json:"team_name"`
	DirectoryID   string     `json:"directory_id"`
	DirectoryName string     `json:"directory_name"`
	Type          string     `json:"type"`
	State         string     `json:"state"`
	LastSyncAt    *time.Time `json:"last_sync_at"`
	Pending       int        `json:"pending_changes"`
	// OldestPendingAt is when the oldest pending change was observed;
	// LagSeconds is its age when the row was read (null with none pending).
	OldestPendingAt *time.Time `json:"oldest_pending_at"`
	LagSeconds      *float64   `json:"lag_seconds"`
	// BackingOff: the last ConsecutiveFailures polls failed, and scheduled
	// polls wait until NextPollAt (null when the schedule cannot say; POST
	// .../sync is never held back).
	BackingOff          bool       `json:"backing_off"`
	NextPollAt          *time.Time `json:"next_poll_at"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	LastError           string     `json:"last_error"`
}

// Filter selects rows. Team matches a team id or name; Problems keeps only
// directories in error or needs_review, backing off, or with a change
// pending for longer than LongPending.
type Filter struct {
	Team     string
	State    string
	Type     string
	Problems bool
}

// States are the directory states a filter may name.
var States = []string{store.StateSyncing, store.StateOK, store.StateError, store.StateNeedsReview}

// List reads the rows from the store (one query), as of now.
func List(ctx context.Context, st *store.Store, f Filter, now time.Time) ([]Row, error) {
	dirs, err := st.DirectoryStatuses(ctx, store.StatusFilter{Team: f.Team, State: f.State, Type: f.Type})
	if err != nil {
		return nil, err
	}
	rows := make([]Row, 0, len(dirs))
	for _, d := range dirs {
		r := FromStatus(d, now)
		if f.Problems && !r.Problem() {
			continue
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// FromStatus builds a row from the store's record, as of now.
func FromStatus(d store.DirectoryStatus, now time.Time) Row {
	r := Row{
		TeamID: d.TeamID, TeamName: d.TeamName, DirectoryID: d.DirectoryID, DirectoryName: d.Name,
		Type: d.Type, State: d.State, LastSyncAt: d.LastSyncAt, Pending: d.Pending, LastError: d.LastError,
	}
	if d.Pending > 0 && d.OldestPending != nil {
		r.OldestPendingAt = d.OldestPending
		lag := max(now.Sub(*d.OldestPending).Seconds(), 0)
		r.LagSeconds = &lag
	}
	// Backing off as roster_directories_backing_off counts it: the last
	// polls failed (the poller then spaces scheduled polls out).
	if n, next := d.PollFailures(); n > 0 {
		r.BackingOff, r.ConsecutiveFailures, r.NextPollAt = true, n, next
	}
	return r
}

// Problem says whether the directory needs an operator's look.
func (r Row) Problem() bool {
	return r.State == store.StateError || r.State == store.StateNeedsReview || r.BackingOff ||
		r.LagSeconds != nil && *r.LagSeconds > LongPending.Seconds()
}
