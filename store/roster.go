package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"strings"
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

// DirtyRow is one pending reconcile item.
type DirtyRow struct {
	Kind     string
	ObjectID string
	Gen      int64
	Observed time.Time
}

// PendingDirty reads every pending reconcile item of a directory.
func (tx *Tx) PendingDirty(ctx context.Context, dirID string) ([]DirtyRow, error) {
	return pendingDirty(ctx, tx.query, dirID)
}

// PendingDirty reads every pending reconcile item of a directory.
func (rt *ReadTx) PendingDirty(ctx context.Context, dirID string) ([]DirtyRow, error) {
	return pendingDirty(ctx, rt.query, dirID)
}

// PendingDirtyFirst reads up to n pending items of a directory, in key
// order (a whole-directory item first).
func (tx *Tx) PendingDirtyFirst(ctx context.Context, dirID string, n int) ([]DirtyRow, error) {
	return pendingDirtyQuery(ctx, tx.query, "SELECT kind, object_id, gen, observed_at FROM dirty WHERE directory_id = ? ORDER BY kind, object_id LIMIT ?", dirID, n)
}

// CountDirty counts a directory's pending items.
func (s *Store) CountDirty(ctx context.Context, dirID string) (int, error) {
	var n int
	err := s.queryRow(ctx, "SELECT COUNT(*) FROM dirty WHERE directory_id = ?", dirID).Scan(&n)
	return n, err
}

func pendingDirty(ctx context.Context, query queryFunc, dirID string) ([]DirtyRow, error) {
	return pendingDirtyQuery(ctx, query, "SELECT kind, object_id, gen, observed_at FROM dirty WHERE directory_id = ?", dirID)
}

func pendingDirtyQuery(ctx context.Context, query queryFunc, q string, args ...any) ([]DirtyRow, error) {
	rows, err := query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read dirty: %w", err)
	}
	defer rows.Close()
	var out []DirtyRow
	for rows.Next() {
		var d DirtyRow
		var at int64
		if err := rows.Scan(&d.Kind, &d.ObjectID, &d.Gen, &at); err != nil {
			return nil, err
		}
		d.Observed = fromMicros(at)
		out = append(out, d)
	}
	return out, rows.Err()
}

// ClearDirty deletes the given items unless they were marked again since
// they were read (their gen changed). One indexed delete per item: an OR
// of many row conditions would not use the primary key.
func (tx *Tx) ClearDirty(ctx context.Context, dirID string, items []DirtyRow) error {
	if len(items) == 0 {
		return nil
	}
	if tx.s.engine == Postgres {
		// One statement per batch, joined against a VALUES list.
		for start, end := 0, 0; start < len(items); start = end {
			end = start + chunk(len(items)-start, 500)
			part := items[start:end]
			args := []any{dirID}
			for _, d := range part {
				args = append(args, d.Kind, d.ObjectID, d.Gen)
			}
			rows := strings.TrimSuffix(strings.Repeat("(?::text, ?::text, ?::bigint), ", len(part)), ", ")
			q := "DELETE FROM dirty d USING (VALUES " + rows + ") AS v(kind, object_id, gen) WHERE d.directory_id = ? AND d.kind = v.kind AND d.object_id = v.object_id AND d.gen = v.gen"
			// The directory argument comes last in this statement.
			args = append(args[1:], dirID)
			if _, err := tx.exec(ctx, q, args...); err != nil {
				return fmt.Errorf("clear dirty: %w", err)
			}
		}
		return nil
	}
	// One row at a time through the batch's prepared statement: each is
	// a primary-key lookup.
	for _, d := range items {
		if _, err := tx.exec(ctx, "DELETE FROM dirty WHERE directory_id = ? AND kind = ? AND object_id = ? AND gen = ?", dirID, d.Kind, d.ObjectID, d.Gen); err != nil {
			return fmt.Errorf("clear dirty: %w", err)
		}
	}
	return nil
}

// ReadTx is a read-only snapshot of the database.
type ReadTx struct {
	s  *Store
	tx *sql.Tx
}

type queryFunc func(context.Context, string, ...any) (*sql.Rows, error)

// ReadSnapshot runs fn in a read-only transaction that sees one consistent
// snapshot.
func (s *Store) ReadSnapshot(ctx context.Context, fn func(rt *ReadTx) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if s.engine == Postgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := s.r.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin read: %w", err)
	}
	defer tx.Rollback()
	return fn(&ReadTx{s: s, tx: tx})
}

func (rt *ReadTx) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return rt.tx.QueryContext(ctx, rt.s.rebind(q), args...)
}

// MirrorUserLite is what the reconciler needs of a mirror user.
type MirrorUserLite struct {
	ID          string
	UserName    string
	DisplayName string
	GivenName   string
	FamilyName  string
	Email       string
	Active      bool
}

const liteCols = "id, user_name, display_name, given_name, family_name, email, active"

func scanLite(rows *sql.Rows) (MirrorUserLite, error) {
	var u MirrorUserLite
	err := rows.Scan(&u.ID, &u.UserName, &u.DisplayName, &u.GivenName, &u.FamilyName, &u.Email, &u.Active)
	return u, err
}

// EachMirrorUser streams every mirror user of a directory.
func (rt *ReadTx) EachMirrorUser(ctx context.Context, dirID string, fn func(MirrorUserLite)) error {
	rows, err := rt.query(ctx, "SELECT "+liteCols+" FROM mirror_users WHERE directory_id = ?", dirID)
	if err != nil {
		return fmt.Errorf("read mirror users: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		u, err := scanLite(rows)
		if err != nil {
			return err
		}
		fn(u)
	}
	return rows.Err()
}

// MirrorUsersLite reads some mirror users of a directory.
func (tx *Tx) MirrorUsersLite(ctx context.Context, dirID string, ids []string) (map[string]MirrorUserLite, error) {
	return mirrorUsersLite(ctx, tx.query, dirID, ids)
}

// MirrorUsersLite reads some mirror users of a directory.
func (s *Store) MirrorUsersLite(ctx context.Context, dirID string, ids []string) (map[string]MirrorUserLite, error) {
	return mirrorUsersLite(ctx, s.query, dirID, ids)
}

func mirrorUsersLite(ctx context.Context, query queryFunc, dirID string, ids []string) (map[string]MirrorUserLite, error) {
	out := make(map[string]MirrorUserLite, len(ids))
	err := inBatches(ids, 500, func(part []string) error {
		rows, err := query(ctx, "SELECT "+liteCols+" FROM mirror_users WHERE directory_id = ? AND id IN ("+qs(len(part))+")", append([]any{dirID}, anys(part)...)...)
		if err != nil {
			return fmt.Errorf("read mirror users: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			u, err := scanLite(rows)
			if err != nil {
				return err
			}
			out[u.ID] = u
		}
		return rows.Err()
	})
	return out, err
}

// MirrorGroupNames reads the names of some mirror groups.
func (s *Store) MirrorGroupNames(ctx context.Context, dirID string, ids []string) (map[string]string, error) {
	if ids == nil {
		ids = []string{}
	}
	return groupNames(ctx, s.query, dirID, ids)
}

// MemberTypes says, for each id that is a user or a group of the
// directory, which it is; unknown ids are absent.
func (s *Store) MemberTypes(ctx context.Context, dirID string, ids []string) (map[string]string, error) {
	out := map[string]string{}
	for _, q := range []struct{ table, typ string }{{"mirror_users", MemberUser}, {"mirror_groups", MemberGroup}} {
		err := inBatches(ids, 500, func(part []string) error {
			rows, err := s.query(ctx, "SELECT id FROM "+q.table+" WHERE directory_id = ? AND id IN ("+qs(len(part))+")", append([]any{dirID}, anys(part)...)...)
			if err != nil {
				return fmt.Errorf("member types: %w", err)
			}
			defer rows.Close()
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					return err
				}
				out[id] = q.typ
			}
			return rows.Err()
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// MembershipRow is one mirror membership.
type MembershipRow struct {
	GroupID    string
	MemberID   string
	MemberType string
}

// EachMembership streams every mirror membership of a directory.
func (rt *ReadTx) EachMembership(ctx context.Context, dirID string, fn func(MembershipRow)) error {
	rows, err := rt.query(ctx, "SELECT group_id, member_id, member_type FROM mirror_members WHERE directory_id = ?", dirID)
	if err != nil {
		return fmt.Errorf("read memberships: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var m MembershipRow
		if err := rows.Scan(&m.GroupID, &m.MemberID, &m.MemberType); err != nil {
			return err
		}
		fn(m)
	}
	return rows.Err()
}

// ParentGroups lists the groups each of ids is a direct member of.
func (tx *Tx) ParentGroups(ctx context.Context, dirID string, ids []string) (map[string][]string, error) {
	return idLists(ctx, tx.query, "SELECT member_id, group_id FROM mirror_members WHERE directory_id = ?", "member_id", dirID, ids)
}

// idLists reads (key, value) rows of a directory whose keyCol is in ids,
// in batches, into a map from key to its values.
func idLists(ctx context.Context, query queryFunc, base, keyCol, dirID string, ids []string) (map[string][]string, error) {
	out := map[string][]string{}
	err := inBatches(ids, 500, func(part []string) error {
		rows, err := query(ctx, base+" AND "+keyCol+" IN ("+qs(len(part))+")", append([]any{dirID}, anys(part)...)...)
		if err != nil {
			return fmt.Errorf("read %s: %w", keyCol, err)
		}
		defer rows.Close()
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				return err
			}
			out[k] = append(out[k], v)
		}
		return rows.Err()
	})
	return out, err
}

// groupNames reads the display names of mirror groups; with ids nil, of
// every group of the directory.
func groupNames(ctx context.Context, query queryFunc, dirID string, ids []string) (map[string]string, error) {
	return idNames(ctx, query, "SELECT id, display_name FROM mirror_groups WHERE directory_id = ?", "id", dirID, ids)
}

// idNames reads (id, name) rows of a directory into a map: all rows of
// base, or only those whose idCol is in ids (in batches) when ids is not nil.
func idNames(ctx context.Context, query queryFunc, base, idCol, dirID string, ids []string) (map[string]string, error) {
	out := map[string]string{}
	read := func(q string, args ...any) error {
		rows, err := query(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("read names: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id, name string
			if err := rows.Scan(&id, &name); err != nil {
				return err
			}
			out[id] = name
		}
		return rows.Err()
	}
	if ids == nil {
		return out, read(base, dirID)
	}
	err := inBatches(ids, 500, func(part []string) error {
		return read(base+" AND "+idCol+" IN ("+qs(len(part))+")", append([]any{dirID}, anys(part)...)...)
	})
	return out, err
}

// MirrorGroupNames reads names of the given mirror groups (all when ids is nil).
func (tx *Tx) MirrorGroupNames(ctx context.Context, dirID string, ids []string) (map[string]string, error) {
	return groupNames(ctx, tx.query, dirID, ids)
}

// MirrorGroupNames reads the names of every mirror group of a directory.
func (rt *ReadTx) MirrorGroupNames(ctx context.Context, dirID string) (map[string]string, error) {
	return groupNames(ctx, rt.query, dirID, nil)
}

const memberCols = "directory_id, user_id, team_id, email, name, limit_cents, limit_source, limit_group_id, limit_group_name, added_at, updated_at"

func scanMember(row interface{ Scan(...any) error }) (*RosterMember, error) {
	var m RosterMember
	var lim sql.NullInt64
	var added, updated int64
	if err := row.Scan(&m.DirectoryID, &m.UserID, &m.TeamID, &m.Email, &m.Name, &lim, &m.LimitSource, &m.LimitGroupID, &m.LimitGroupName, &added, &updated); err != nil {
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
func (rt *ReadTx) EachRosterMember(ctx context.Context, dirID string, fn func(*RosterMember)) error {
	rows, err := rt.query(ctx, "SELECT "+memberCols+" FROM members WHERE directory_id = ?", dirID)
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
func (tx *Tx) RosterMembers(ctx context.Context, dirID string, ids []string) (map[string]*RosterMember, error) {
	out := make(map[string]*RosterMember, len(ids))
	err := inBatches(ids, 500, func(part []string) error {
		rows, err := tx.query(ctx, "SELECT "+memberCols+" FROM members WHERE directory_id = ? AND user_id IN ("+qs(len(part))+")", append([]any{dirID}, anys(part)...)...)
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
func (rt *ReadTx) EachMemberGroup(ctx context.Context, dirID string, fn func(Link)) error {
	rows, err := rt.query(ctx, "SELECT user_id, group_id FROM member_groups WHERE directory_id = ?", dirID)
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
func (tx *Tx) MemberGroupsOf(ctx context.Context, dirID string, ids []string) (map[string][]string, error) {
	return idLists(ctx, tx.query, "SELECT user_id, group_id FROM member_groups WHERE directory_id = ?", "user_id", dirID, ids)
}

// RosterGroups reads the applied groups of a directory (all when ids is nil).
func (tx *Tx) RosterGroups(ctx context.Context, dirID string, ids []string) (map[string]string, error) {
	return rosterGroups(ctx, tx.query, dirID, ids)
}

// RosterGroups reads every applied group of a directory.
func (rt *ReadTx) RosterGroups(ctx context.Context, dirID string) (map[string]string, error) {
	return rosterGroups(ctx, rt.query, dirID, nil)
}

func rosterGroups(ctx context.Context, query queryFunc, dirID string, ids []string) (map[string]string, error) {
	return idNames(ctx, query, "SELECT group_id, name FROM roster_groups WHERE directory_id = ?", "group_id", dirID, ids)
}

// GroupLimits reads the team's per-group limits: group id → cents (nil is
// unlimited). Groups without a limit are absent.
func (tx *Tx) GroupLimits(ctx context.Context, teamID string) (map[string]*int64, error) {
	return groupLimits(ctx, tx.query, teamID)
}

// GroupLimitsFor reads the limits of some groups of a team.
func (tx *Tx) GroupLimitsFor(ctx context.Context, teamID string, ids []string) (map[string]*int64, error) {
	out := map[string]*int64{}
	err := inBatches(ids, 500, func(part []string) error {
		rows, err := tx.query(ctx, "SELECT group_id, limit_cents FROM group_limits WHERE team_id = ? AND group_id IN ("+qs(len(part))+")", append([]any{teamID}, anys(part)...)...)
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
	})
	return out, err
}

// GroupLimits reads the team's per-group limits.
func (rt *ReadTx) GroupLimits(ctx context.Context, teamID string) (map[string]*int64, error) {
	return groupLimits(ctx, rt.query, teamID)
}

// GroupLimits reads the team's per-group limits.
func (s *Store) GroupLimits(ctx context.Context, teamID string) (map[string]*int64, error) {
	return groupLimits(ctx, s.query, teamID)
}

func groupLimits(ctx context.Context, query queryFunc, teamID string) (map[string]*int64, error) {
	rows, err := query(ctx, "SELECT group_id, limit_cents FROM group_limits WHERE team_id = ?", teamID)
	if err != nil {
		return nil, fmt.Errorf("read group limits: %w", err)
	}
	defer rows.Close()
	out := map[string]*int64{}
	for rows.Next() {
		var id string
		var lim sql.NullInt64
		if err := rows.Scan(&id, &lim); err != nil {
			return nil, err
		}
		if lim.Valid {
			v := lim.Int64
			out[id] = &v
		} else {
			out[id] = nil
		}
	}
	return out, rows.Err()
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
}

// Empty reports whether there is nothing to write.
func (c *RosterChanges) Empty() bool {
	return len(c.UpsertMembers) == 0 && len(c.DeleteMembers) == 0 && len(c.AddLinks) == 0 &&
		len(c.RemoveLinks) == 0 && len(c.UpsertGroups) == 0 && len(c.DeleteGroups) == 0 && len(c.Events) == 0
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
	const mcols = 11
	for start, end := 0, 0; start < len(c.UpsertMembers); start = end {
		end = start + chunk(len(c.UpsertMembers)-start, 80)
		args := make([]any, 0, mcols*(end-start))
		for _, m := range c.UpsertMembers[start:end] {
			added := micros(m.AddedAt)
			if m.AddedAt.IsZero() {
				added = now
			}
			args = append(args, dirID, m.UserID, teamID, m.Email, m.Name, m.LimitCents, m.LimitSource, m.LimitGroupID, m.LimitGroupName, added, now)
		}
		_, err := tx.exec(ctx, "INSERT INTO members ("+memberCols+") VALUES "+placeholders(end-start, mcols)+`
			ON CONFLICT (directory_id, user_id) DO UPDATE SET email = excluded.email, name = excluded.name,
			limit_cents = excluded.limit_cents, limit_source = excluded.limit_source, limit_group_id = excluded.limit_group_id,
			limit_group_name = excluded.limit_group_name, updated_at = excluded.updated_at`, args...)
		if err != nil {
			return fmt.Errorf("upsert members: %w", err)
		}
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
func (s *Store) ListEvents(ctx context.Context, teamID string, after int64, limit int) ([]Event, error) {
	rows, err := s.query(ctx, "SELECT seq, team_id, directory_id, type, occurred_at, data FROM events WHERE team_id = ? AND seq > ? ORDER BY seq LIMIT ?", teamID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
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

func inBatches(ids []string, n int, fn func([]string) error) error {
	for start, end := 0, 0; start < len(ids); start = end {
		end = start + chunk(len(ids)-start, n)
		if err := fn(ids[start:end]); err != nil {
			return err
		}
	}
	return nil
}

// chunk says how many of the remaining rows the next statement takes: max,
// or the largest power of two not above what remains. Statements built for
// n rows are then of a few sizes only, and stay prepared (a reconcile of
// 75 users used to prepare its 75-row inserts afresh, 5 % of all CPU
// under SCIM creates).
func chunk(remaining, max int) int {
	if remaining >= max {
		return max
	}
	return 1 << (bits.Len(uint(remaining)) - 1)
}

func qs(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

func anys(ids []string) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
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
