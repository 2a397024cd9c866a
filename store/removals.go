package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// The SCIM deletion guard's bookkeeping: which removals the reconciler
// applied recently, and which members it holds pending removal.

// LogRemovals records that members left a directory's roster at at, and
// forgets removals from before keepSince, so the log holds one window.
func (tx *Tx) LogRemovals(ctx context.Context, dirID string, userIDs []string, at, keepSince time.Time) error {
	if _, err := tx.exec(ctx, "DELETE FROM roster_removals WHERE directory_id = ? AND removed_at < ?", dirID, micros(keepSince)); err != nil {
		return fmt.Errorf("prune removals: %w", err)
	}
	for start, end := 0, 0; start < len(userIDs); start = end {
		end = start + chunk(len(userIDs)-start, 300)
		args := make([]any, 0, 3*(end-start))
		for _, id := range userIDs[start:end] {
			args = append(args, dirID, id, micros(at))
		}
		if _, err := tx.exec(ctx, "INSERT INTO roster_removals (directory_id, user_id, removed_at) VALUES "+placeholders(end-start, 3), args...); err != nil {
			return fmt.Errorf("log removals: %w", err)
		}
	}
	return nil
}

// ForgetRemovals empties a directory's removal log: after an admin approved
// a mass removal, the guard's window starts again.
func (tx *Tx) ForgetRemovals(ctx context.Context, dirID string) error {
	if _, err := tx.exec(ctx, "DELETE FROM roster_removals WHERE directory_id = ?", dirID); err != nil {
		return fmt.Errorf("forget removals: %w", err)
	}
	return nil
}

// CountRemovals counts the removals logged for a directory since since.
func (tx *Tx) CountRemovals(ctx context.Context, dirID string, since time.Time) (int, error) {
	var n int
	err := tx.queryRow(ctx, "SELECT COUNT(*) FROM roster_removals WHERE directory_id = ? AND removed_at >= ?", dirID, micros(since)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count removals: %w", err)
	}
	return n, nil
}

// GuardCounts are what the deletion guard weighs for a directory: its
// roster members, and those of them pending removal.
type GuardCounts struct {
	Members int
	Pending int
}

// CountGuard counts a directory's roster members and those pending removal.
func (tx *Tx) CountGuard(ctx context.Context, dirID string) (GuardCounts, error) {
	var c GuardCounts
	err := tx.queryRow(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN pending_removal THEN 1 ELSE 0 END), 0)
		FROM members WHERE directory_id = ?`, dirID).Scan(&c.Members, &c.Pending)
	if err != nil {
		return c, fmt.Errorf("count members: %w", err)
	}
	return c, nil
}

// PendingRemovals lists up to limit members of a directory pending removal,
// by email.
func (tx *Tx) PendingRemovals(ctx context.Context, dirID string, limit int) ([]string, error) {
	rows, err := tx.query(ctx, "SELECT email, user_id FROM members WHERE directory_id = ? AND pending_removal ORDER BY email, user_id LIMIT ?", dirID, limit)
	if err != nil {
		return nil, fmt.Errorf("list pending removals: %w", err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var email, id string
		if err := rows.Scan(&email, &id); err != nil {
			return nil, err
		}
		if email == "" {
			email = id
		}
		out = append(out, email)
	}
	return out, rows.Err()
}

// PendingMembersByEmail reads the members of a directory pending removal
// whose email is one of emails (compared case-insensitively).
func (tx *Tx) PendingMembersByEmail(ctx context.Context, dirID string, emails []string) ([]*RosterMember, error) {
	var out []*RosterMember
	err := inBatches(emails, 300, func(part []string) error {
		lower := make([]string, len(part))
		for i, e := range part {
			lower[i] = strings.ToLower(e)
		}
		rows, err := tx.query(ctx, "SELECT "+memberCols+" FROM members WHERE directory_id = ? AND pending_removal AND LOWER(email) IN ("+qs(len(part))+")",
			append([]any{dirID}, anys(lower)...)...)
		if err != nil {
			return fmt.Errorf("read pending members: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			m, err := scanMember(rows)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return rows.Err()
	})
	return out, err
}
