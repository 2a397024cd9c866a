package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Directory states.
const (
	StateSyncing     = "syncing"
	StateOK          = "ok"
	StateError       = "error"
	StateNeedsReview = "needs_review"
)

// Directory is one connection to an identity source (SCIM push or a poller).
type Directory struct {
	ID     string
	TeamID string
	Type   string // scim, ldap, google, msgraph, okta
	Name   string
	// Settings is the source's configuration as JSON, secrets included
	// (sealed by the caller); never shown in API answers as stored.
	Settings   json.RawMessage
	TokenHash  string
	State      string
	LastSyncAt *time.Time
	LastError  string
	Cursor     json.RawMessage
	CursorKind string
	LastFullAt *time.Time
	// Review holds what a held-back poll would remove (deletion guard).
	Review json.RawMessage
	// LastPoll is what the last poll cost and how it ended, as the poller
	// wrote it.
	LastPoll  json.RawMessage
	CreatedAt time.Time
	UpdatedAt time.Time
}

const dirCols = "id, team_id, type, name, settings, token_hash, state, last_sync_at, last_error, cursor, cursor_kind, last_full_at, review, created_at, updated_at, last_poll"

func scanDirectory(row interface{ Scan(...any) error }) (*Directory, error) {
	var d Directory
	var settings, cursor, review, lastPoll string
	var lastSync, lastFull sql.NullInt64
	var created, updated int64
	if err := row.Scan(&d.ID, &d.TeamID, &d.Type, &d.Name, &settings, &d.TokenHash, &d.State, &lastSync, &d.LastError, &cursor, &d.CursorKind, &lastFull, &review, &created, &updated, &lastPoll); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	d.Settings = json.RawMessage(settings)
	if cursor != "" {
		d.Cursor = json.RawMessage(cursor)
	}
	if review != "" {
		d.Review = json.RawMessage(review)
	}
	if lastPoll != "" {
		d.LastPoll = json.RawMessage(lastPoll)
	}
	d.LastSyncAt, d.LastFullAt = nullTime(lastSync), nullTime(lastFull)
	d.CreatedAt, d.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &d, nil
}

func optMicros(t *time.Time) any {
	if t == nil {
		return nil
	}
	return micros(*t)
}

// CreateDirectory stores a new directory.
func (tx *Tx) CreateDirectory(ctx context.Context, d *Directory) error {
	now := time.Now().UTC()
	d.CreatedAt, d.UpdatedAt = now, now
	if d.State == "" {
		d.State = StateOK
	}
	if len(d.Settings) == 0 {
		d.Settings = json.RawMessage("{}")
	}
	_, err := tx.exec(ctx, "INSERT INTO directories ("+dirCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		d.ID, d.TeamID, d.Type, d.Name, string(d.Settings), d.TokenHash, d.State, optMicros(d.LastSyncAt), d.LastError,
		string(d.Cursor), d.CursorKind, optMicros(d.LastFullAt), string(d.Review), micros(now), micros(now), string(d.LastPoll))
	if isUniqueViolation(err) {
		return fmt.Errorf("directory %s: %w", d.ID, ErrConflict)
	}
	return err
}

// UpdateDirectory writes every mutable field of d.
func (tx *Tx) UpdateDirectory(ctx context.Context, d *Directory) error {
	d.UpdatedAt = time.Now().UTC()
	res, err := tx.exec(ctx, "UPDATE directories SET name = ?, settings = ?, token_hash = ?, state = ?, last_sync_at = ?, last_error = ?, cursor = ?, cursor_kind = ?, last_full_at = ?, review = ?, updated_at = ?, last_poll = ? WHERE id = ?",
		d.Name, string(d.Settings), d.TokenHash, d.State, optMicros(d.LastSyncAt), d.LastError, string(d.Cursor), d.CursorKind,
		optMicros(d.LastFullAt), string(d.Review), micros(d.UpdatedAt), string(d.LastPoll), d.ID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// UpdateDirectory writes d in its own transaction.
func (s *Store) UpdateDirectory(ctx context.Context, d *Directory) error {
	return s.WithTx(ctx, func(tx *Tx) error { return tx.UpdateDirectory(ctx, d) })
}

// GetDirectory reads a directory.
func (s *Store) GetDirectory(ctx context.Context, id string) (*Directory, error) {
	return getDirectory(ctx, s, id, "")
}

// GetDirectory reads a directory inside a transaction. On PostgreSQL the row
// stays locked until the transaction ends.
func (tx *Tx) GetDirectory(ctx context.Context, id string) (*Directory, error) {
	suffix := ""
	if tx.s.engine == Postgres {
		suffix = " FOR UPDATE"
	}
	return getDirectory(ctx, tx, id, suffix)
}

func getDirectory(ctx context.Context, q querier, id, suffix string) (*Directory, error) {
	return scanDirectory(q.queryRow(ctx, "SELECT "+dirCols+" FROM directories WHERE id = ?"+suffix, id))
}

// ListDirectories lists directories, of one team when teamID is not empty.
func (r *reads) ListDirectories(ctx context.Context, teamID string) ([]*Directory, error) {
	q, args := "SELECT "+dirCols+" FROM directories", []any{}
	if teamID != "" {
		q += " WHERE team_id = ?"
		args = append(args, teamID)
	}
	rows, err := r.on.query(ctx, q+" ORDER BY created_at, id", args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Directory
	for rows.Next() {
		d, err := scanDirectory(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// DirectoryCounts are the sizes of a directory's mirror and roster.
type DirectoryCounts struct {
	Users       int `json:"users"`
	ActiveUsers int `json:"active_users"`
	Groups      int `json:"groups"`
	Members     int `json:"members"`
	Pending     int `json:"pending_changes"`
	// OldestPending is when the oldest change not yet applied was
	// observed; nil when none is waiting.
	OldestPending *time.Time `json:"oldest_pending_at"`
}

// CountDirectory counts a directory's mirror and roster rows.
func (r *reads) CountDirectory(ctx context.Context, id string) (DirectoryCounts, error) {
	var c DirectoryCounts
	var oldest sql.NullInt64
	err := r.on.queryRow(ctx, `SELECT
		(SELECT COUNT(*) FROM mirror_users WHERE directory_id = ?),
		(SELECT COUNT(*) FROM mirror_users WHERE directory_id = ? AND active),
		(SELECT COUNT(*) FROM mirror_groups WHERE directory_id = ?),
		(SELECT COUNT(*) FROM members WHERE directory_id = ?),
		(SELECT COUNT(*) FROM dirty WHERE directory_id = ?),
		(SELECT MIN(observed_at) FROM dirty WHERE directory_id = ?)`, id, id, id, id, id, id).
		Scan(&c.Users, &c.ActiveUsers, &c.Groups, &c.Members, &c.Pending, &oldest)
	c.OldestPending = nullTime(oldest)
	return c, err
}

// TouchDirectorySync records a successful write from the directory (a SCIM
// request) without touching the rest of the row.
func (s *Store) TouchDirectorySync(ctx context.Context, id string, at time.Time) error {
	return s.WithTx(ctx, func(tx *Tx) error {
		_, err := tx.exec(ctx, "UPDATE directories SET last_sync_at = ? WHERE id = ?", micros(at), id)
		return err
	})
}

// DeleteDirectory removes a directory and everything roster holds of it:
// its mirror, its roster members and groups, its pending work, and the
// spend limits set on its groups. The feed keeps its events. The caller
// appends the removal events in the same transaction (sync/reconcile does).
func (tx *Tx) DeleteDirectory(ctx context.Context, id string) error {
	for _, q := range []string{
		"DELETE FROM group_limits WHERE group_id IN (SELECT id FROM mirror_groups WHERE directory_id = ?)",
		"DELETE FROM group_limits WHERE group_id IN (SELECT group_id FROM roster_groups WHERE directory_id = ?)",
		"DELETE FROM member_groups WHERE directory_id = ?",
		"DELETE FROM members WHERE directory_id = ?",
		"DELETE FROM roster_groups WHERE directory_id = ?",
		"DELETE FROM mirror_members WHERE directory_id = ?",
		"DELETE FROM mirror_user_emails WHERE directory_id = ?",
		"DELETE FROM mirror_users WHERE directory_id = ?",
		"DELETE FROM mirror_groups WHERE directory_id = ?",
		"DELETE FROM dirty WHERE directory_id = ?",
		"DELETE FROM roster_removals WHERE directory_id = ?",
	} {
		if _, err := tx.exec(ctx, q, id); err != nil {
			return fmt.Errorf("delete directory %s: %w", id, err)
		}
	}
	res, err := tx.exec(ctx, "DELETE FROM directories WHERE id = ?", id)
	if err != nil {
		return fmt.Errorf("delete directory %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}
