package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Group is a group as a directory describes it. Its members are rows of their
// own (Member).
type Group struct {
	DirectoryID string
	ID          string
	ExternalID  string
	DisplayName string
	Resource    json.RawMessage
	Version     int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Member is one direct member of a group: a user or a group.
type Member struct {
	ID   string
	Type string // "User" or "Group"
}

// Member types.
const (
	MemberUser  = "User"
	MemberGroup = "Group"
)

const groupCols = "directory_id, id, external_id, display_name, resource, version, created_at, updated_at"

// scanGroup reads a row selected with groupCols.
func scanGroup(row interface{ Scan(...any) error }) (*Group, error) {
	var g Group
	var ext sql.NullString
	var res string
	var created, updated int64
	if err := row.Scan(&g.DirectoryID, &g.ID, &ext, &g.DisplayName, &res, &g.Version, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	g.ExternalID = ext.String
	g.Resource = json.RawMessage(res)
	g.CreatedAt, g.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &g, nil
}

// GetGroup reads a mirror group.
func (s *Store) GetGroup(ctx context.Context, dirID, id string) (*Group, error) {
	return getGroup(ctx, s, dirID, id, "")
}

// GetGroup reads a mirror group inside the transaction. With lock set, on
// PostgreSQL the row stays locked until the transaction ends, serialising
// writers of one group (SQLite has a single writer anyway).
func (tx *Tx) GetGroup(ctx context.Context, dirID, id string, lock bool) (*Group, error) {
	suffix := ""
	if lock && tx.s.engine == Postgres {
		suffix = " FOR UPDATE"
	}
	return getGroup(ctx, tx, dirID, id, suffix)
}

func getGroup(ctx context.Context, q querier, dirID, id, suffix string) (*Group, error) {
	return scanGroup(q.queryRow(ctx, "SELECT "+groupCols+" FROM mirror_groups WHERE directory_id = ? AND id = ?"+suffix, dirID, id))
}

// PutGroup inserts or replaces a mirror group and marks it dirty. As
// PutUser, the store keeps the row's version and creation time and sets g's
// Version, CreatedAt and UpdatedAt to what was stored. A displayName
// already used by another group of the directory is ErrConflict.
func (tx *Tx) PutGroup(ctx context.Context, g *Group, observed time.Time) error {
	now := storedNow()
	if len(g.Resource) == 0 {
		g.Resource = json.RawMessage("{}")
	}
	var version, created int64
	err := tx.queryRow(ctx, `INSERT INTO mirror_groups (directory_id, id, external_id, display_name, display_name_lower, resource, version, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)
		ON CONFLICT (directory_id, id) DO UPDATE SET external_id = excluded.external_id, display_name = excluded.display_name,
		display_name_lower = excluded.display_name_lower, resource = excluded.resource, version = mirror_groups.version + 1,
		updated_at = excluded.updated_at
		RETURNING version, created_at`,
		g.DirectoryID, g.ID, nullString(g.ExternalID), g.DisplayName, strings.ToLower(g.DisplayName), string(g.Resource), micros(now), micros(now)).Scan(&version, &created)
	if isUniqueViolation(err) {
		return fmt.Errorf("displayName %q: %w", g.DisplayName, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("put group: %w", err)
	}
	g.Version, g.CreatedAt, g.UpdatedAt = version, fromMicros(created), now
	return tx.MarkDirty(ctx, g.DirectoryID, DirtyGroup, g.ID, observed)
}

// TouchGroup bumps a group's version and modification time (after a member
// change) without rewriting it, and returns the new version and the time it
// recorded; a group that is gone is ErrNotFound. On PostgreSQL the update
// locks the group's row until the transaction ends, so callers that only
// add or remove member rows can leave the lock to this last statement.
func (tx *Tx) TouchGroup(ctx context.Context, dirID, id string) (int64, time.Time, error) {
	now := storedNow()
	var version int64
	err := tx.queryRow(ctx, "UPDATE mirror_groups SET version = version + 1, updated_at = ? WHERE directory_id = ? AND id = ? RETURNING version", micros(now), dirID, id).Scan(&version)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, now, fmt.Errorf("group %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return 0, now, fmt.Errorf("touch group: %w", err)
	}
	return version, now, nil
}

// DeleteGroup removes a mirror group, its member rows and its rows as a
// member of other groups; every user and group under it is marked dirty.
func (tx *Tx) DeleteGroup(ctx context.Context, dirID, id string, observed time.Time) error {
	// Everyone beneath the group may lose it transitively.
	if err := tx.MarkDirty(ctx, dirID, DirtySubtree, id, observed); err != nil {
		return err
	}
	if err := tx.expandSubtreeNow(ctx, dirID, id, observed); err != nil {
		return err
	}
	res, err := tx.exec(ctx, "DELETE FROM mirror_groups WHERE directory_id = ? AND id = ?", dirID, id)
	if err != nil {
		return fmt.Errorf("delete group: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	if _, err := tx.exec(ctx, "DELETE FROM mirror_members WHERE directory_id = ? AND (group_id = ? OR member_id = ?)", dirID, id, id); err != nil {
		return fmt.Errorf("delete group: %w", err)
	}
	return tx.MarkDirty(ctx, dirID, DirtyGroup, id, observed)
}

// expandSubtreeNow marks dirty every user below group id, as seen before a
// change that removes the links (a deleted group can no longer be walked).
func (tx *Tx) expandSubtreeNow(ctx context.Context, dirID, id string, observed time.Time) error {
	users, err := tx.UsersUnder(ctx, dirID, id)
	if err != nil {
		return err
	}
	return tx.MarkDirtyMany(ctx, dirID, DirtyUser, users, observed)
}

// AddMembers adds direct members to a group; members already there are left
// as they are. It reports the members actually added and marks what changed
// dirty.
func (tx *Tx) AddMembers(ctx context.Context, dirID, groupID string, members []Member, observed time.Time) ([]Member, error) {
	var added []Member
	for _, m := range members {
		q := "INSERT INTO mirror_members (directory_id, group_id, member_id, member_type) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
		res, err := tx.exec(ctx, q, dirID, groupID, m.ID, m.Type)
		if err != nil {
			return nil, fmt.Errorf("add member: %w", err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			added = append(added, m)
		}
	}
	return added, tx.markMembersDirty(ctx, dirID, added, observed)
}

// RemoveMembers removes direct members from a group, reporting those that
// were there.
func (tx *Tx) RemoveMembers(ctx context.Context, dirID, groupID string, ids []string, observed time.Time) ([]Member, error) {
	var removed []Member
	for _, id := range ids {
		var mtype string
		err := tx.queryRow(ctx, "DELETE FROM mirror_members WHERE directory_id = ? AND group_id = ? AND member_id = ? RETURNING member_type", dirID, groupID, id).Scan(&mtype)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("remove member: %w", err)
		}
		removed = append(removed, Member{ID: id, Type: mtype})
	}
	return removed, tx.markMembersDirty(ctx, dirID, removed, observed)
}

// ReplaceMembers makes a group's direct members exactly ms, touching only the
// rows that differ. It returns what was added and removed.
func (tx *Tx) ReplaceMembers(ctx context.Context, dirID, groupID string, ms []Member, observed time.Time) (added, removed []Member, err error) {
	cur, err := tx.ListMembers(ctx, dirID, groupID)
	if err != nil {
		return nil, nil, err
	}
	want := map[string]Member{}
	for _, m := range ms {
		want[m.ID] = m
	}
	have := map[string]bool{}
	var drop []string
	for _, m := range cur {
		have[m.ID] = true
		if _, ok := want[m.ID]; !ok {
			drop = append(drop, m.ID)
		}
	}
	var add []Member
	for _, m := range ms {
		if !have[m.ID] {
			add = append(add, m)
			have[m.ID] = true
		}
	}
	if removed, err = tx.RemoveMembers(ctx, dirID, groupID, drop, observed); err != nil {
		return nil, nil, err
	}
	if added, err = tx.AddMembers(ctx, dirID, groupID, add, observed); err != nil {
		return nil, nil, err
	}
	return added, removed, nil
}

// bulkMemberships is the most membership rows InsertMemberships marks
// member by member; for more, it marks the whole directory, whose full
// reconcile is then cheaper than following each member.
const bulkMemberships = 5000

// InsertMemberships adds membership rows in bulk (rows already present are
// left alone) and marks their members dirty: each user, and everyone under
// each member group, or the whole directory for more than bulkMemberships
// rows.
func (tx *Tx) InsertMemberships(ctx context.Context, dirID string, rows []MembershipRow, observed time.Time) error {
	const batch = 250
	for start, end := 0, 0; start < len(rows); start = end {
		end = start + chunk(len(rows)-start, batch)
		part := rows[start:end]
		args := make([]any, 0, 4*len(part))
		for _, m := range part {
			args = append(args, dirID, m.GroupID, m.MemberID, m.MemberType)
		}
		if _, err := tx.exec(ctx, "INSERT INTO mirror_members (directory_id, group_id, member_id, member_type) VALUES "+placeholders(len(part), 4)+" ON CONFLICT DO NOTHING", args...); err != nil {
			return fmt.Errorf("insert memberships: %w", err)
		}
	}
	if len(rows) > bulkMemberships {
		return tx.MarkDirty(ctx, dirID, DirtyAll, "", observed)
	}
	members := make([]Member, len(rows))
	for i, m := range rows {
		members[i] = Member{ID: m.MemberID, Type: m.MemberType}
	}
	return tx.markMembersDirty(ctx, dirID, members, observed)
}

// MirrorGroupNames reads the display names of every mirror group of a
// directory.
func (r *reads) MirrorGroupNames(ctx context.Context, dirID string) (map[string]string, error) {
	return allNames(ctx, r.on, "SELECT id, display_name FROM mirror_groups WHERE directory_id = ?", dirID)
}

// MirrorGroupNamesFor reads the display names of some mirror groups; ids
// that are no group of the directory are absent.
func (r *reads) MirrorGroupNamesFor(ctx context.Context, dirID string, ids []string) (map[string]string, error) {
	return idNames(ctx, r.on, "SELECT id, display_name FROM mirror_groups WHERE directory_id = ?", "id", dirID, ids)
}
