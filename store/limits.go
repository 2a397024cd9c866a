package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// GroupLimits reads the team's per-group limits: group id → cents (nil is
// unlimited). Groups without a limit are absent.
func (r *reads) GroupLimits(ctx context.Context, teamID string) (map[string]*int64, error) {
	out := map[string]*int64{}
	return out, r.readLimits(ctx, out, "SELECT group_id, limit_cents FROM group_limits WHERE team_id = ?", teamID)
}

// GroupLimitsFor reads the limits of some groups of a team, as GroupLimits.
func (r *reads) GroupLimitsFor(ctx context.Context, teamID string, ids []string) (map[string]*int64, error) {
	out := map[string]*int64{}
	err := inBatches(ids, 500, func(part []string) error {
		return r.readLimits(ctx, out, "SELECT group_id, limit_cents FROM group_limits WHERE team_id = ? AND group_id IN ("+qs(len(part))+")", append([]any{teamID}, anys(part)...)...)
	})
	return out, err
}

func (r *reads) readLimits(ctx context.Context, out map[string]*int64, q string, args ...any) error {
	rows, err := r.on.query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("read group limits: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var lim sql.NullInt64
		if err := rows.Scan(&id, &lim); err != nil {
			return err
		}
		out[id] = nil
		if lim.Valid {
			v := lim.Int64
			out[id] = &v
		}
	}
	return rows.Err()
}

// SetGroupLimit sets (has=true) or removes a group's limit; cents nil with
// has=true means unlimited.
func (tx *Tx) SetGroupLimit(ctx context.Context, teamID, groupID string, has bool, cents *int64) error {
	if !has {
		_, err := tx.exec(ctx, "DELETE FROM group_limits WHERE team_id = ? AND group_id = ?", teamID, groupID)
		return err
	}
	_, err := tx.exec(ctx, `INSERT INTO group_limits (team_id, group_id, limit_cents, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (team_id, group_id) DO UPDATE SET limit_cents = excluded.limit_cents, updated_at = excluded.updated_at`,
		teamID, groupID, cents, micros(time.Now()))
	return err
}
