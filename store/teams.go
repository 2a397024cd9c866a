package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Team plans.
const (
	PlanFree       = "free"
	PlanPro        = "pro"
	PlanBusiness   = "business"
	PlanEnterprise = "enterprise"
)

// Team is a customer team.
type Team struct {
	ID          string
	Name        string
	Plan        string
	SSOStatus   string // "active" or "inactive"
	SSOProvider string
	// DefaultLimitCents is the per-user monthly limit; nil is unlimited.
	DefaultLimitCents *int64
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// SSOActive reports whether the team's SSO connection is active.
func (t *Team) SSOActive() bool { return t.SSOStatus == "active" }

const teamCols = "id, name, plan, sso_status, sso_provider, default_limit_cents, created_at, updated_at"

func scanTeam(row interface{ Scan(...any) error }) (*Team, error) {
	var t Team
	var lim sql.NullInt64
	var created, updated int64
	if err := row.Scan(&t.ID, &t.Name, &t.Plan, &t.SSOStatus, &t.SSOProvider, &lim, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	if lim.Valid {
		v := lim.Int64
		t.DefaultLimitCents = &v
	}
	t.CreatedAt, t.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &t, nil
}

// CreateTeam stores a new team.
func (s *Store) CreateTeam(ctx context.Context, t *Team) error {
	now := time.Now()
	t.CreatedAt, t.UpdatedAt = now.UTC(), now.UTC()
	if t.SSOStatus == "" {
		t.SSOStatus = "inactive"
	}
	return s.WithTx(ctx, func(tx *Tx) error {
		_, err := tx.exec(ctx, "INSERT INTO teams ("+teamCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			t.ID, t.Name, t.Plan, t.SSOStatus, t.SSOProvider, t.DefaultLimitCents, micros(now), micros(now))
		if isUniqueViolation(err) {
			return fmt.Errorf("team %s: %w", t.ID, ErrConflict)
		}
		return err
	})
}

// GetTeam reads a team.
func (r *reads) GetTeam(ctx context.Context, id string) (*Team, error) {
	return scanTeam(r.on.queryRow(ctx, "SELECT "+teamCols+" FROM teams WHERE id = ?", id))
}

// UpdateTeam writes the team's mutable fields.
func (tx *Tx) UpdateTeam(ctx context.Context, t *Team) error {
	t.UpdatedAt = time.Now().UTC()
	res, err := tx.exec(ctx, "UPDATE teams SET name = ?, plan = ?, sso_status = ?, sso_provider = ?, default_limit_cents = ?, updated_at = ? WHERE id = ?",
		t.Name, t.Plan, t.SSOStatus, t.SSOProvider, t.DefaultLimitCents, micros(t.UpdatedAt), t.ID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// ListTeams lists every team.
func (r *reads) ListTeams(ctx context.Context) ([]*Team, error) {
	rows, err := r.on.query(ctx, "SELECT "+teamCols+" FROM teams ORDER BY id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Team
	for rows.Next() {
		t, err := scanTeam(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
