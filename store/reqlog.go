package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// SCIMRequest is one logged SCIM request.
type SCIMRequest struct {
	ID          int64
	DirectoryID string
	At          time.Time
	Method      string
	Path        string
	Status      int
	Duration    time.Duration
	Error       string
	Body        string
}

// The SCIM request log on SQLite lives in a database file of its own next to
// the main one (roster-requests.db beside roster.db). Every commit to a
// SQLite database empties the page cache of every other connection to it,
// and the log is written several times a second while identity providers
// are busy: in the main file those flushes kept the read pool's caches cold
// (filter GETs read their pages from the OS again) and held the single
// writer while SCIM writes waited. On PostgreSQL the log stays in the main
// database, where neither happens. The file has migrations of its own
// (migrations/requests); the main database's scim_requests table stays
// unused on SQLite.

// reqLogPath names the request log's file for the main database at path:
// "dir/roster.db" → "dir/roster-requests.db" (a query string is kept).
func reqLogPath(path string) string {
	p, q, hasQuery := strings.Cut(path, "?")
	ext := filepath.Ext(p)
	p = strings.TrimSuffix(p, ext) + "-requests" + ext
	if hasQuery {
		p += "?" + q
	}
	return p
}

// openReqLog opens (creating if needed) the SQLite request log database.
// Writes come from one flusher and the hourly prune, reads from the admin
// API; two connections and SQLite's busy timeout cover them.
func openReqLog(ctx context.Context, path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", "file:"+reqLogPath(path)+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(10000)&_pragma=cache_size(-2048)")
	if err != nil {
		return nil, fmt.Errorf("open request log: %w", err)
	}
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(2)
	db.SetConnMaxIdleTime(0)
	if err := migrateTo(ctx, db, SQLite, "migrations/requests", 0); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate request log: %w", err)
	}
	return db, nil
}

// LogSCIMRequests appends SCIM request log entries, in one transaction.
func (s *Store) LogSCIMRequests(ctx context.Context, reqs []SCIMRequest) error {
	if len(reqs) == 0 {
		return nil
	}
	tx, err := s.reqLog.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("log scim requests: %w", err)
	}
	defer tx.Rollback()
	for start, end := 0, 0; start < len(reqs); start = end {
		end = start + chunk(len(reqs)-start, 100)
		args := make([]any, 0, 8*(end-start))
		for _, r := range reqs[start:end] {
			args = append(args, r.DirectoryID, micros(r.At), r.Method, r.Path, r.Status, r.Duration.Microseconds(), r.Error, r.Body)
		}
		q := "INSERT INTO scim_requests (directory_id, at, method, path, status, duration_us, error, body) VALUES " + placeholders(end-start, 8)
		if _, err := tx.ExecContext(ctx, s.rebind(q), args...); err != nil {
			return fmt.Errorf("log scim requests: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("log scim requests: %w", err)
	}
	return nil
}

// ListSCIMRequests reads a directory's SCIM request log, newest first.
func (s *Store) ListSCIMRequests(ctx context.Context, dirID string, before int64, limit int) ([]SCIMRequest, error) {
	if before <= 0 {
		before = 1<<62 - 1
	}
	rows, err := s.reqLog.QueryContext(ctx, s.rebind("SELECT id, directory_id, at, method, path, status, duration_us, error, body FROM scim_requests WHERE directory_id = ? AND id < ? ORDER BY id DESC LIMIT ?"), dirID, before, limit)
	if err != nil {
		return nil, fmt.Errorf("list scim requests: %w", err)
	}
	defer rows.Close()
	var out []SCIMRequest
	for rows.Next() {
		var r SCIMRequest
		var at, dur int64
		if err := rows.Scan(&r.ID, &r.DirectoryID, &at, &r.Method, &r.Path, &r.Status, &dur, &r.Error, &r.Body); err != nil {
			return nil, err
		}
		r.At = fromMicros(at)
		r.Duration = time.Duration(dur) * time.Microsecond
		out = append(out, r)
	}
	return out, rows.Err()
}

// PruneSCIMRequests deletes request log entries older than t.
func (s *Store) PruneSCIMRequests(ctx context.Context, t time.Time) (int64, error) {
	res, err := s.reqLog.ExecContext(ctx, s.rebind("DELETE FROM scim_requests WHERE at < ?"), micros(t))
	if err != nil {
		return 0, fmt.Errorf("prune scim requests: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
