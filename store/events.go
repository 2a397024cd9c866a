package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// Event is one entry of a team's event feed.
type Event struct {
	Seq         int64
	TeamID      string
	DirectoryID string
	Type        string
	OccurredAt  time.Time
	Data        json.RawMessage
}

// AppendEvents appends events to the team's feed. Sequence numbers follow
// commit order: on PostgreSQL writers of one team's events are serialised by
// an advisory lock held until commit.
func (tx *Tx) AppendEvents(ctx context.Context, teamID string, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	if tx.s.engine == Postgres {
		if _, err := tx.exec(ctx, "SELECT pg_advisory_xact_lock(7270002, hashtext(?))", teamID); err != nil {
			return fmt.Errorf("lock events: %w", err)
		}
	}
	tx.AfterCommit(func() { tx.s.eventsCommitted(teamID) })
	for start, end := 0, 0; start < len(evs); start = end {
		end = start + chunk(len(evs)-start, 150)
		args := make([]any, 0, 5*(end-start))
		for _, e := range evs[start:end] {
			at := e.OccurredAt
			if at.IsZero() {
				at = time.Now()
			}
			args = append(args, teamID, e.DirectoryID, e.Type, micros(at), string(e.Data))
		}
		if _, err := tx.exec(ctx, "INSERT INTO events (team_id, directory_id, type, occurred_at, data) VALUES "+placeholders(end-start, 5), args...); err != nil {
			return fmt.Errorf("append events: %w", err)
		}
	}
	return nil
}

// ListEvents reads a team's events after a sequence number, oldest first.
func (r *reads) ListEvents(ctx context.Context, teamID string, after int64, limit int) ([]Event, error) {
	rows, err := r.on.query(ctx, "SELECT seq, team_id, directory_id, type, occurred_at, data FROM events WHERE team_id = ? AND seq > ? ORDER BY seq LIMIT ?", teamID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return scanEvents(rows)
}

// LatestEvents reads a team's newest events, newest first.
func (r *reads) LatestEvents(ctx context.Context, teamID string, limit int) ([]Event, error) {
	rows, err := r.on.query(ctx, "SELECT seq, team_id, directory_id, type, occurred_at, data FROM events WHERE team_id = ? ORDER BY seq DESC LIMIT ?", teamID, limit)
	if err != nil {
		return nil, fmt.Errorf("latest events: %w", err)
	}
	return scanEvents(rows)
}

func scanEvents(rows *sql.Rows) ([]Event, error) {
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var at int64
		var data string
		if err := rows.Scan(&e.Seq, &e.TeamID, &e.DirectoryID, &e.Type, &at, &data); err != nil {
			return nil, err
		}
		e.OccurredAt = fromMicros(at)
		e.Data = json.RawMessage(data)
		out = append(out, e)
	}
	return out, rows.Err()
}
