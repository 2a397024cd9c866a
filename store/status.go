package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
)

// ErrSchemaVersion means the database's schema is not the one this binary
// was built for (behind: a server of this version has not migrated it yet;
// ahead: a newer roster migrated it).
var ErrSchemaVersion = errors.New("schema version mismatch")

// OpenReadOnly opens an existing database for reading only, as an
// operator's tool beside a running server does: nothing is created or
// migrated and no lock a server takes is held. SQLite is opened read-only
// (mode=ro); PostgreSQL sessions are read-only
// (default_transaction_read_only). A database whose schema is behind or
// ahead of this binary's migrations is refused with ErrSchemaVersion, as
// the queries would not match it.
func OpenReadOnly(ctx context.Context, dbURL, dataDir string) (*Store, error) {
	engine, path, err := parseDatabaseURL(dbURL, dataDir)
	if err != nil {
		return nil, err
	}
	var s *Store
	switch engine {
	case SQLite:
		path = strings.TrimPrefix(path, "file:")
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open sqlite: no roster database at %s (set --data-dir or --database-url): %w", path, err)
		}
		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
		if err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		db.SetMaxOpenConns(2)
		s = &Store{engine: SQLite, w: db, r: db}
	case Postgres:
		u, err := url.Parse(dbURL)
		if err != nil {
			return nil, fmt.Errorf("database url %q: %w", redactURL(dbURL), err)
		}
		q := u.Query()
		q.Set("default_transaction_read_only", "on")
		u.RawQuery = q.Encode()
		db, err := sql.Open("pgx", u.String())
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		db.SetMaxOpenConns(2)
		s = &Store{engine: Postgres, w: db, r: db}
	}
	s.reads = reads{s}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.checkSchemaVersion(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// checkSchemaVersion compares the database's migration version with the
// latest this binary carries.
func (s *Store) checkSchemaVersion(ctx context.Context) error {
	ok, err := tableExists(ctx, s.r, s.engine, goose.DefaultTablename)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if !ok {
		return fmt.Errorf("no roster schema in this database (%s missing): %w", goose.DefaultTablename, ErrSchemaVersion)
	}
	gs, err := database.NewStore(dialectOf(s.engine), goose.DefaultTablename)
	if err != nil {
		return err
	}
	have, err := gs.GetLatestVersion(ctx, s.r)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	want, err := latestMigration()
	if err != nil {
		return err
	}
	switch {
	case have < want:
		return fmt.Errorf("the database is at migration %d, this roster expects %d: start roster serve of this version once to migrate it: %w", have, want, ErrSchemaVersion)
	case have > want:
		return fmt.Errorf("the database is at migration %d, newer than this roster (%d): use the roster binary that serves it: %w", have, want, ErrSchemaVersion)
	}
	return nil
}

// latestMigration is the newest version of the main migration set: the
// number that starts the last file name (goose's NNNN_name.sql).
func latestMigration() (int64, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return 0, fmt.Errorf("list migrations: %w", err)
	}
	var latest int64
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		if e.IsDir() || !ok || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("migration %s: %w", e.Name(), err)
		}
		latest = max(latest, v)
	}
	return latest, nil
}

// DirectoryStatus is one directory as an operator's overview shows it.
type DirectoryStatus struct {
	TeamID      string
	TeamName    string
	DirectoryID string
	Type        string
	Name        string
	State       string
	LastSyncAt  *time.Time
	LastError   string
	// Pending counts the changes waiting for the reconciler; OldestPending
	// is when the oldest of them was observed (nil when none).
	Pending       int
	OldestPending *time.Time
	// LastPoll is the poller's record of the last poll (backoff included),
	// as it wrote it; empty for SCIM.
	LastPoll json.RawMessage
}

// PollFailures reads the poller's backoff from LastPoll: the failed polls
// in a row and, while they last, when the schedule polls again (nil when it
// cannot say). It reads the two fields by name, as DirectoryAggregates'
// backing-off count does, so every view of "backing off" agrees.
func (d DirectoryStatus) PollFailures() (failures int, nextPollAt *time.Time) {
	var lp struct {
		ConsecutiveFailures int        `json:"consecutive_failures"`
		NextPollAt          *time.Time `json:"next_poll_at"`
	}
	if len(d.LastPoll) == 0 || json.Unmarshal(d.LastPoll, &lp) != nil || lp.ConsecutiveFailures <= 0 {
		return 0, nil
	}
	return lp.ConsecutiveFailures, lp.NextPollAt
}

// StatusFilter narrows DirectoryStatuses; empty fields match everything.
// Team matches a team's id or its name.
type StatusFilter struct {
	Team  string
	State string
	Type  string
}

// DirectoryStatuses lists directories with their team and pending work, in
// one query, ordered by team name, team and creation.
func (r *reads) DirectoryStatuses(ctx context.Context, f StatusFilter) ([]DirectoryStatus, error) {
	q := `SELECT d.team_id, t.name, d.id, d.type, d.name, d.state, d.last_sync_at, d.last_error, d.last_poll,
		COALESCE(p.n, 0), p.oldest
		FROM directories d
		JOIN teams t ON t.id = d.team_id
		LEFT JOIN (SELECT directory_id, COUNT(*) AS n, MIN(observed_at) AS oldest FROM dirty GROUP BY directory_id) p
			ON p.directory_id = d.id`
	var where []string
	var args []any
	if f.Team != "" {
		where = append(where, "(d.team_id = ? OR t.name = ?)")
		args = append(args, f.Team, f.Team)
	}
	if f.State != "" {
		where = append(where, "d.state = ?")
		args = append(args, f.State)
	}
	if f.Type != "" {
		where = append(where, "d.type = ?")
		args = append(args, f.Type)
	}
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := r.on.query(ctx, q+" ORDER BY t.name, d.team_id, d.created_at, d.id", args...)
	if err != nil {
		return nil, fmt.Errorf("directory statuses: %w", err)
	}
	defer rows.Close()
	out := []DirectoryStatus{}
	for rows.Next() {
		var d DirectoryStatus
		var lastSync, oldest sql.NullInt64
		var lastPoll string
		if err := rows.Scan(&d.TeamID, &d.TeamName, &d.DirectoryID, &d.Type, &d.Name, &d.State, &lastSync, &d.LastError, &lastPoll, &d.Pending, &oldest); err != nil {
			return nil, fmt.Errorf("directory statuses: %w", err)
		}
		d.LastSyncAt, d.OldestPending = nullTime(lastSync), nullTime(oldest)
		if lastPoll != "" {
			d.LastPoll = json.RawMessage(lastPoll)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("directory statuses: %w", err)
	}
	return out, nil
}
