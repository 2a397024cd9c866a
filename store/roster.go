package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Limit sources.
const (
	SourceGroup       = "group"
	SourceTeamDefault = "team_default"
)

// RosterMember is a member as roster has applied them.
type RosterMember struct {
	DirectoryID string
	UserID      string
	TeamID      string
	Email       string
	Name        string
	// LimitCents is the effective monthly limit; nil is unlimited.
	LimitCents     *int64
	LimitSource    string // SourceGroup or SourceTeamDefault
	LimitGroupID   string
	LimitGroupName string
	AddedAt        time.Time
	UpdatedAt      time.Time
	// PendingRemoval says the directory removed the member but the SCIM
	// deletion guard held the removal back: they stay on the roster, with
	// their access, until an admin approves.
	PendingRemoval bool
}

// RosterGroup is a group as roster shows it.
type RosterGroup struct {
	DirectoryID string
	GroupID     string
	TeamID      string
	Name        string
}

// Link links a member to a group they are in, directly or nested.
type Link struct {
	UserID  string
	GroupID string
}

const memberCols = "directory_id, user_id, team_id, email, name, limit_cents, limit_source, limit_group_id, limit_group_name, added_at, updated_at, pending_removal"

func scanMember(row interface{ Scan(...any) error }) (*RosterMember, error) {
	var m RosterMember
	var lim sql.NullInt64
	var added, updated int64
	if err := row.Scan(&m.DirectoryID, &m.UserID, &m.TeamID, &m.Email, &m.Name, &lim, &m.LimitSource, &m.LimitGroupID, &m.LimitGroupName, &added, &updated, &m.PendingRemoval); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	if lim.Valid {
		v := lim.Int64
		m.LimitCents = &v
	}
	m.AddedAt, m.UpdatedAt = fromMicros(added), fromMicros(updated)
	return &m, nil
}

// EachRosterMember streams every applied member of a directory.
func (r *reads) EachRosterMember(ctx context.Context, dirID string, fn func(*RosterMember)) error {
	rows, err := r.on.query(ctx, "SELECT "+memberCols+" FROM members WHERE directory_id = ?", dirID)
	if err != nil {
		return fmt.Errorf("read roster: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			return err
		}
		fn(m)
	}
	return rows.Err()
}

// RosterMembers reads some applied members of a directory.
func (r *reads) RosterMembers(ctx context.Context, dirID string, ids []string) (map[string]*RosterMember, error) {
	out := make(map[string]*RosterMember, len(ids))
	err := inBatches(ids, 500, func(part []string) error {
		rows, err := r.on.query(ctx, "SELECT "+memberCols+" FROM members WHERE directory_id = ? AND user_id IN ("+qs(len(part))+")", append([]any{dirID}, anys(part)...)...)
		if err != nil {
			return fmt.Errorf("read roster: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			m, err := scanMember(rows)
			if err != nil {
				return err
			}
			out[m.UserID] = m
		}
		return rows.Err()
	})
	return out, err
}

// EachMemberGroup streams every applied member-group link of a directory.
func (r *reads) EachMemberGroup(ctx context.Context, dirID string, fn func(Link)) error {
	rows, err := r.on.query(ctx, "SELECT user_id, group_id FROM member_groups WHERE directory_id = ?", dirID)
	if err != nil {
		return fmt.Errorf("read member groups: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var mg Link
		if err := rows.Scan(&mg.UserID, &mg.GroupID); err != nil {
			return err
		}
		fn(mg)
	}
	return rows.Err()
}

// MemberGroupsOf reads the applied groups of some members.
func (r *reads) MemberGroupsOf(ctx context.Context, dirID string, ids []string) (map[string][]string, error) {
	return idLists(ctx, r.on, "SELECT user_id, group_id FROM member_groups WHERE directory_id = ?", "user_id", dirID, ids)
}

// RosterGroups reads the names of every applied group of a directory.
func (r *reads) RosterGroups(ctx context.Context, dirID string) (map[string]string, error) {
	return allNames(ctx, r.on, "SELECT group_id, name FROM roster_groups WHERE directory_id = ?", dirID)
}

// RosterGroupsFor reads the names of some applied groups of a directory;
// ids not applied are absent.
func (r *reads) RosterGroupsFor(ctx context.Context, dirID string, ids []string) (map[string]string, error) {
	return idNames(ctx, r.on, "SELECT group_id, name FROM roster_groups WHERE directory_id = ?", "group_id", dirID, ids)
}

// RosterChanges is what a reconcile writes.
type RosterChanges struct {
	UpsertMembers   []*RosterMember
	DeleteMembers   []string
	AddLinks        []Link
	RemoveLinks     []Link
	UpsertGroups    []RosterGroup
	DeleteGroups    []string
	Events          []Event
	RemoveLimitsFor []string // group ids whose limits go with the group
	// HoldMembers are members the directory removed whose removal the
	// deletion guard holds: they stay, marked pending removal. An upserted
	// member is no longer pending.
	HoldMembers []string
}

// Empty reports whether there is nothing to write.
func (c *RosterChanges) Empty() bool {
	return len(c.UpsertMembers) == 0 && len(c.DeleteMembers) == 0 && len(c.AddLinks) == 0 &&
		len(c.RemoveLinks) == 0 && len(c.UpsertGroups) == 0 && len(c.DeleteGroups) == 0 && len(c.Events) == 0 &&
		len(c.HoldMembers) == 0
}

// ApplyRoster writes roster changes of one directory and their events.
func (tx *Tx) ApplyRoster(ctx context.Context, teamID, dirID string, c *RosterChanges) error {
	now := micros(time.Now())
	if err := inBatches(c.DeleteMembers, 300, func(part []string) error {
		args := append([]any{dirID}, anys(part)...)
		if _, err := tx.exec(ctx, "DELETE FROM members WHERE directory_id = ? AND user_id IN ("+qs(len(part))+")", args...); err != nil {
			return err
		}
		_, err := tx.exec(ctx, "DELETE FROM member_groups WHERE directory_id = ? AND user_id IN ("+qs(len(part))+")", args...)
		return err
	}); err != nil {
		return fmt.Errorf("delete members: %w", err)
	}
	const mcols = 12
	for start, end := 0, 0; start < len(c.UpsertMembers); start = end {
		end = start + chunk(len(c.UpsertMembers)-start, 80)
		args := make([]any, 0, mcols*(end-start))
		for _, m := range c.UpsertMembers[start:end] {
			added := micros(m.AddedAt)
			if m.AddedAt.IsZero() {
				added = now
			}
			args = append(args, dirID, m.UserID, teamID, m.Email, m.Name, m.LimitCents, m.LimitSource, m.LimitGroupID, m.LimitGroupName, added, now, m.PendingRemoval)
		}
		_, err := tx.exec(ctx, "INSERT INTO members ("+memberCols+") VALUES "+placeholders(end-start, mcols)+`
			ON CONFLICT (directory_id, user_id) DO UPDATE SET email = excluded.email, name = excluded.name,
			limit_cents = excluded.limit_cents, limit_source = excluded.limit_source, limit_group_id = excluded.limit_group_id,
			limit_group_name = excluded.limit_group_name, updated_at = excluded.updated_at,
			pending_removal = excluded.pending_removal`, args...)
		if err != nil {
			return fmt.Errorf("upsert members: %w", err)
		}
	}
	if err := inBatches(c.HoldMembers, 300, func(part []string) error {
		_, err := tx.exec(ctx, "UPDATE members SET pending_removal = TRUE, updated_at = ? WHERE directory_id = ? AND user_id IN ("+qs(len(part))+")",
			append([]any{now, dirID}, anys(part)...)...)
		return err
	}); err != nil {
		return fmt.Errorf("hold member removals: %w", err)
	}
	if len(c.RemoveLinks) > 0 && tx.s.engine == Postgres {
		for start, end := 0, 0; start < len(c.RemoveLinks); start = end {
			end = start + chunk(len(c.RemoveLinks)-start, 500)
			part := c.RemoveLinks[start:end]
			var args []any
			for _, l := range part {
				args = append(args, l.UserID, l.GroupID)
			}
			args = append(args, dirID)
			q := "DELETE FROM member_groups m USING (VALUES " + placeholders(len(part), 2) + ") AS v(user_id, group_id) WHERE m.user_id = v.user_id AND m.group_id = v.group_id AND m.directory_id = ?"
			if _, err := tx.exec(ctx, q, args...); err != nil {
				return fmt.Errorf("remove member groups: %w", err)
			}
		}
	} else if len(c.RemoveLinks) > 0 {
		for _, l := range c.RemoveLinks {
			if _, err := tx.exec(ctx, "DELETE FROM member_groups WHERE directory_id = ? AND user_id = ? AND group_id = ?", dirID, l.UserID, l.GroupID); err != nil {
				return fmt.Errorf("remove member groups: %w", err)
			}
		}
	}
	for start, end := 0, 0; start < len(c.AddLinks); start = end {
		end = start + chunk(len(c.AddLinks)-start, 300)
		args := make([]any, 0, 3*(end-start))
		for _, l := range c.AddLinks[start:end] {
			args = append(args, dirID, l.UserID, l.GroupID)
		}
		if _, err := tx.exec(ctx, "INSERT INTO member_groups (directory_id, user_id, group_id) VALUES "+placeholders(end-start, 3)+" ON CONFLICT DO NOTHING", args...); err != nil {
			return fmt.Errorf("add member groups: %w", err)
		}
	}
	if err := inBatches(c.DeleteGroups, 300, func(part []string) error {
		args := append([]any{dirID}, anys(part)...)
		if _, err := tx.exec(ctx, "DELETE FROM roster_groups WHERE directory_id = ? AND group_id IN ("+qs(len(part))+")", args...); err != nil {
			return err
		}
		_, err := tx.exec(ctx, "DELETE FROM member_groups WHERE directory_id = ? AND group_id IN ("+qs(len(part))+")", args...)
		return err
	}); err != nil {
		return fmt.Errorf("delete groups: %w", err)
	}
	if err := inBatches(c.RemoveLimitsFor, 300, func(part []string) error {
		_, err := tx.exec(ctx, "DELETE FROM group_limits WHERE team_id = ? AND group_id IN ("+qs(len(part))+")", append([]any{teamID}, anys(part)...)...)
		return err
	}); err != nil {
		return fmt.Errorf("delete group limits: %w", err)
	}
	for start, end := 0, 0; start < len(c.UpsertGroups); start = end {
		end = start + chunk(len(c.UpsertGroups)-start, 200)
		args := make([]any, 0, 4*(end-start))
		for _, g := range c.UpsertGroups[start:end] {
			args = append(args, dirID, g.GroupID, teamID, g.Name)
		}
		if _, err := tx.exec(ctx, "INSERT INTO roster_groups (directory_id, group_id, team_id, name) VALUES "+placeholders(end-start, 4)+" ON CONFLICT (directory_id, group_id) DO UPDATE SET name = excluded.name", args...); err != nil {
			return fmt.Errorf("upsert groups: %w", err)
		}
	}
	return tx.AppendEvents(ctx, teamID, c.Events)
}

// ResetRoster forgets what was applied for a directory (members, their
// groups, the directory's groups) and marks it for a full reconcile, which
// then adds everyone again with fresh events. Benchmarks use it to measure
// a first full reconcile repeatedly.
func (tx *Tx) ResetRoster(ctx context.Context, dirID string) error {
	for _, q := range []string{
		"DELETE FROM members WHERE directory_id = ?",
		"DELETE FROM member_groups WHERE directory_id = ?",
		"DELETE FROM roster_groups WHERE directory_id = ?",
		"DELETE FROM dirty WHERE directory_id = ?",
	} {
		if _, err := tx.exec(ctx, q, dirID); err != nil {
			return fmt.Errorf("reset roster: %w", err)
		}
	}
	return tx.MarkDirty(ctx, dirID, DirtyAll, "", time.Now())
}
