package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// StateCount is how many directories of a type are in a state.
type StateCount struct {
	Type, State string
	Count       int
}

// TypeAggregate sums the directories of one type.
type TypeAggregate struct {
	// Pending counts the changes waiting for the reconciler; OldestPending
	// is the observation time of the oldest of them (zero when none).
	Pending       int
	OldestPending time.Time
	// OldestSuccess is the earliest last successful sync among directories
	// that synced at least once (zero when none has).
	OldestSuccess time.Time
	// BackingOff counts polled directories whose last polls failed, so
	// that their scheduled polls are spaced out by backoff.
	BackingOff int
}

// DirectoryAggregates are the directory gauges by type and state.
type DirectoryAggregates struct {
	States []StateCount
	Types  map[string]TypeAggregate
}

// DirectoryAggregates reads the directory gauges with two grouped queries,
// so its cost in Go does not grow with the number of directories.
func (s *Store) DirectoryAggregates(ctx context.Context) (DirectoryAggregates, error) {
	// consecutive_failures is written only while polls fail (omitempty in
	// sync/poll.LastPoll). CASE keeps PostgreSQL from casting an empty
	// last_poll (SCIM directories).
	failing := "COALESCE(json_extract(last_poll, '$.consecutive_failures'), 0) > 0"
	if s.engine == Postgres {
		failing = "COALESCE((last_poll::jsonb ->> 'consecutive_failures')::bigint, 0) > 0"
	}
	out := DirectoryAggregates{Types: map[string]TypeAggregate{}}
	rows, err := s.query(ctx, `SELECT type, state, COUNT(*), MIN(last_sync_at),
		SUM(CASE WHEN last_poll = '' THEN 0 WHEN `+failing+` THEN 1 ELSE 0 END)
		FROM directories GROUP BY type, state`)
	if err != nil {
		return out, fmt.Errorf("directory states: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c StateCount
		var oldest sql.NullInt64
		var backingOff int
		if err := rows.Scan(&c.Type, &c.State, &c.Count, &oldest, &backingOff); err != nil {
			return out, fmt.Errorf("directory states: %w", err)
		}
		out.States = append(out.States, c)
		t := out.Types[c.Type]
		t.BackingOff += backingOff
		if oldest.Valid && (t.OldestSuccess.IsZero() || fromMicros(oldest.Int64).Before(t.OldestSuccess)) {
			t.OldestSuccess = fromMicros(oldest.Int64)
		}
		out.Types[c.Type] = t
	}
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("directory states: %w", err)
	}
	rows.Close()
	prows, err := s.query(ctx, "SELECT d.type, COUNT(*), MIN(x.observed_at) FROM dirty x JOIN directories d ON d.id = x.directory_id GROUP BY d.type")
	if err != nil {
		return out, fmt.Errorf("pending changes by type: %w", err)
	}
	defer prows.Close()
	for prows.Next() {
		var typ string
		var n int
		var oldest int64
		if err := prows.Scan(&typ, &n, &oldest); err != nil {
			return out, fmt.Errorf("pending changes by type: %w", err)
		}
		t := out.Types[typ]
		t.Pending, t.OldestPending = n, fromMicros(oldest)
		out.Types[typ] = t
	}
	if err := prows.Err(); err != nil {
		return out, fmt.Errorf("pending changes by type: %w", err)
	}
	return out, nil
}
