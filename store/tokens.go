package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// AdminToken is a stored admin token: an operator token (TeamID empty),
// which sees every team, or a team token, which sees only its team. Only
// the hash of the token is kept.
type AdminToken struct {
	ID         string // empty for operator tokens
	TeamID     string // empty for operator tokens
	Name       string
	Hash       string
	CreatedAt  time.Time
	LastUsedAt *time.Time
}

const adminTokenCols = "id, team_id, name, hash, created_at, last_used_at"

func scanAdminToken(row interface{ Scan(...any) error }) (AdminToken, error) {
	var t AdminToken
	var created int64
	var used sql.NullInt64
	if err := row.Scan(&t.ID, &t.TeamID, &t.Name, &t.Hash, &created, &used); err != nil {
		return t, err
	}
	t.CreatedAt = fromMicros(created)
	if used.Valid {
		u := fromMicros(used.Int64)
		t.LastUsedAt = &u
	}
	return t, nil
}

// AddAdminToken stores the hash of an operator token.
func (s *Store) AddAdminToken(ctx context.Context, hash, name string) error {
	return s.WithTx(ctx, func(tx *Tx) error {
		_, err := tx.exec(ctx, "INSERT INTO admin_tokens (hash, name, created_at) VALUES (?, ?, ?) ON CONFLICT (hash) DO NOTHING", hash, name, micros(time.Now()))
		return err
	})
}

// AdminTokenHashes returns the hash of every operator token.
func (r *reads) AdminTokenHashes(ctx context.Context) ([]string, error) {
	rows, err := r.on.query(ctx, "SELECT hash FROM admin_tokens WHERE team_id = ''")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// CreateTeamToken stores a team token (its id, name and hash) for a team
// that exists; ErrNotFound otherwise.
func (s *Store) CreateTeamToken(ctx context.Context, t *AdminToken) error {
	now := time.Now().UTC()
	t.CreatedAt, t.LastUsedAt = now, nil
	return s.WithTx(ctx, func(tx *Tx) error {
		if _, err := tx.GetTeam(ctx, t.TeamID); err != nil {
			return err
		}
		_, err := tx.exec(ctx, "INSERT INTO admin_tokens (id, team_id, name, hash, created_at) VALUES (?, ?, ?, ?, ?)", t.ID, t.TeamID, t.Name, t.Hash, micros(now))
		if isUniqueViolation(err) {
			return fmt.Errorf("admin token: %w", ErrConflict)
		}
		return err
	})
}

// ListTeamTokens lists a team's tokens, oldest first.
func (r *reads) ListTeamTokens(ctx context.Context, teamID string) ([]AdminToken, error) {
	return r.listAdminTokens(ctx, "SELECT "+adminTokenCols+" FROM admin_tokens WHERE team_id = ? ORDER BY created_at, id", teamID)
}

// AdminTokens lists every admin token, operator and team, with its hash:
// what the API checks bearer tokens against.
func (r *reads) AdminTokens(ctx context.Context) ([]AdminToken, error) {
	return r.listAdminTokens(ctx, "SELECT "+adminTokenCols+" FROM admin_tokens")
}

func (r *reads) listAdminTokens(ctx context.Context, q string, args ...any) ([]AdminToken, error) {
	rows, err := r.on.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list admin tokens: %w", err)
	}
	defer rows.Close()
	var out []AdminToken
	for rows.Next() {
		t, err := scanAdminToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// DeleteTeamToken deletes one of a team's tokens; ErrNotFound when the team
// has no token with that id.
func (s *Store) DeleteTeamToken(ctx context.Context, teamID, id string) error {
	return s.WithTx(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, "DELETE FROM admin_tokens WHERE team_id = ? AND id = ? AND team_id <> ''", teamID, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// TouchTeamToken records when a team token was last used.
func (s *Store) TouchTeamToken(ctx context.Context, id string, at time.Time) error {
	return s.WithTx(ctx, func(tx *Tx) error {
		_, err := tx.exec(ctx, "UPDATE admin_tokens SET last_used_at = ? WHERE id = ? AND team_id <> ''", micros(at), id)
		return err
	})
}
