package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// User is a person as a directory describes them (the mirror).
type User struct {
	DirectoryID string
	ID          string
	ExternalID  string
	UserName    string
	DisplayName string
	GivenName   string
	FamilyName  string
	// Email is the roster email: the primary (or first) email, else userName
	// when it is an email; lower-cased.
	Email  string
	Emails []Email
	Active bool
	// Resource is the whole resource as the directory last sent it (SCIM
	// attributes, extensions included), without id and meta.
	Resource  json.RawMessage
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Email is one of a user's addresses.
type Email struct {
	Value   string
	Type    string
	Primary bool
}

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

// Dirty kinds: what the reconciler must look at again.
const (
	DirtyUser    = "user"    // one user's membership, profile or limit
	DirtyGroup   = "group"   // a group's existence or name
	DirtySubtree = "subtree" // every user under a group (nesting or limit changed)
	DirtyAll     = "all"     // the whole directory
)

const userCols = "directory_id, id, external_id, user_name, display_name, given_name, family_name, email, active, resource, version, created_at, updated_at"

// UserColumns lists the mirror_users columns ScanUser reads, for connectors
// that build their own searches; prefix them with a table alias as needed.
func UserColumns(alias string) string { return prefixCols(userCols, alias) }

const groupCols = "directory_id, id, external_id, display_name, resource, version, created_at, updated_at"

// GroupColumns lists the mirror_groups columns ScanGroup reads.
func GroupColumns(alias string) string { return prefixCols(groupCols, alias) }

func prefixCols(cols, alias string) string {
	if alias == "" {
		return cols
	}
	parts := strings.Split(cols, ", ")
	for i := range parts {
		parts[i] = alias + "." + parts[i]
	}
	return strings.Join(parts, ", ")
}

// ScanUser reads a row selected with UserColumns. Emails are not loaded.
func ScanUser(row interface{ Scan(...any) error }) (*User, error) {
	var u User
	var ext sql.NullString
	var res string
	var created, updated int64
	if err := row.Scan(&u.DirectoryID, &u.ID, &ext, &u.UserName, &u.DisplayName, &u.GivenName, &u.FamilyName, &u.Email, &u.Active, &res, &u.Version, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	u.ExternalID = ext.String
	u.Resource = json.RawMessage(res)
	u.CreatedAt, u.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &u, nil
}

// ScanGroup reads a row selected with GroupColumns.
func ScanGroup(row interface{ Scan(...any) error }) (*Group, error) {
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

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// GetUser reads a mirror user.
func (s *Store) GetUser(ctx context.Context, dirID, id string) (*User, error) {
	return ScanUser(s.queryRow(ctx, "SELECT "+userCols+" FROM mirror_users WHERE directory_id = ? AND id = ?", dirID, id))
}

// GetUser reads a mirror user inside the transaction.
func (tx *Tx) GetUser(ctx context.Context, dirID, id string) (*User, error) {
	return ScanUser(tx.queryRow(ctx, "SELECT "+userCols+" FROM mirror_users WHERE directory_id = ? AND id = ?", dirID, id))
}

// UserEmails loads the emails of users, keyed by user id.
func (s *Store) UserEmails(ctx context.Context, dirID string, ids []string) (map[string][]Email, error) {
	out := map[string][]Email{}
	for start, end := 0, 0; start < len(ids); start = end {
		end = start + chunk(len(ids)-start, 500)
		args := []any{dirID}
		for _, id := range ids[start:end] {
			args = append(args, id)
		}
		rows, err := s.query(ctx, "SELECT user_id, value_lower, type, is_primary FROM mirror_user_emails WHERE directory_id = ? AND user_id IN ("+strings.TrimSuffix(strings.Repeat("?, ", end-start), ", ")+")", args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var uid string
			var e Email
			if err := rows.Scan(&uid, &e.Value, &e.Type, &e.Primary); err != nil {
				rows.Close()
				return nil, err
			}
			out[uid] = append(out[uid], e)
		}
		rows.Close()
	}
	return out, nil
}

// PutUser inserts or replaces a mirror user (by directory and id), bumps its
// version and marks it dirty. A userName already used by another user of the
// directory is ErrConflict.
func (tx *Tx) PutUser(ctx context.Context, u *User, observed time.Time) error {
	now := storedNow()
	if u.CreatedAt.IsZero() {
		u.CreatedAt = now
	}
	u.UpdatedAt = now
	u.Version++
	if len(u.Resource) == 0 {
		u.Resource = json.RawMessage("{}")
	}
	_, err := tx.exec(ctx, `INSERT INTO mirror_users (directory_id, id, external_id, user_name, user_name_lower, display_name, given_name, family_name, email, active, resource, version, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (directory_id, id) DO UPDATE SET external_id = excluded.external_id, user_name = excluded.user_name,
		user_name_lower = excluded.user_name_lower, display_name = excluded.display_name, given_name = excluded.given_name,
		family_name = excluded.family_name, email = excluded.email, active = excluded.active, resource = excluded.resource,
		version = excluded.version, updated_at = excluded.updated_at`,
		u.DirectoryID, u.ID, nullString(u.ExternalID), u.UserName, strings.ToLower(u.UserName), u.DisplayName, u.GivenName, u.FamilyName,
		strings.ToLower(u.Email), u.Active, string(u.Resource), u.Version, micros(u.CreatedAt), micros(u.UpdatedAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("userName %q: %w", u.UserName, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("put user: %w", err)
	}
	if err := tx.setEmails(ctx, u); err != nil {
		return err
	}
	return tx.MarkDirty(ctx, u.DirectoryID, DirtyUser, u.ID, observed)
}

func (tx *Tx) setEmails(ctx context.Context, u *User) error {
	if _, err := tx.exec(ctx, "DELETE FROM mirror_user_emails WHERE directory_id = ? AND user_id = ?", u.DirectoryID, u.ID); err != nil {
		return fmt.Errorf("put user emails: %w", err)
	}
	if len(u.Emails) == 0 {
		return nil
	}
	args := make([]any, 0, 5*len(u.Emails))
	for _, e := range u.Emails {
		args = append(args, u.DirectoryID, u.ID, strings.ToLower(e.Value), e.Type, e.Primary)
	}
	if _, err := tx.exec(ctx, "INSERT INTO mirror_user_emails (directory_id, user_id, value_lower, type, is_primary) VALUES "+placeholders(len(u.Emails), 5), args...); err != nil {
		return fmt.Errorf("put user emails: %w", err)
	}
	return nil
}

// DeleteUser removes a mirror user and every membership of theirs, marking
// the user dirty. It returns ErrNotFound when there is no such user.
func (tx *Tx) DeleteUser(ctx context.Context, dirID, id string, observed time.Time) error {
	res, err := tx.exec(ctx, "DELETE FROM mirror_users WHERE directory_id = ? AND id = ?", dirID, id)
	if err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	for _, q := range []string{
		"DELETE FROM mirror_user_emails WHERE directory_id = ? AND user_id = ?",
		"DELETE FROM mirror_members WHERE directory_id = ? AND member_id = ?",
	} {
		if _, err := tx.exec(ctx, q, dirID, id); err != nil {
			return fmt.Errorf("delete user: %w", err)
		}
	}
	return tx.MarkDirty(ctx, dirID, DirtyUser, id, observed)
}

// GetGroup reads a mirror group.
func (s *Store) GetGroup(ctx context.Context, dirID, id string) (*Group, error) {
	return ScanGroup(s.queryRow(ctx, "SELECT "+groupCols+" FROM mirror_groups WHERE directory_id = ? AND id = ?", dirID, id))
}

// GetGroup reads a mirror group inside the transaction. With lock set, on
// PostgreSQL the row stays locked until the transaction ends, serialising
// writers of one group (SQLite has a single writer anyway).
func (tx *Tx) GetGroup(ctx context.Context, dirID, id string, lock bool) (*Group, error) {
	q := "SELECT " + groupCols + " FROM mirror_groups WHERE directory_id = ? AND id = ?"
	if lock && tx.s.engine == Postgres {
		q += " FOR UPDATE"
	}
	return ScanGroup(tx.queryRow(ctx, q, dirID, id))
}

// PutGroup inserts or replaces a mirror group and marks it dirty. A
// displayName already used by another group of the directory is ErrConflict.
func (tx *Tx) PutGroup(ctx context.Context, g *Group, observed time.Time) error {
	now := storedNow()
	if g.CreatedAt.IsZero() {
		g.CreatedAt = now
	}
	g.UpdatedAt = now
	g.Version++
	if len(g.Resource) == 0 {
		g.Resource = json.RawMessage("{}")
	}
	_, err := tx.exec(ctx, `INSERT INTO mirror_groups (directory_id, id, external_id, display_name, display_name_lower, resource, version, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (directory_id, id) DO UPDATE SET external_id = excluded.external_id, display_name = excluded.display_name,
		display_name_lower = excluded.display_name_lower, resource = excluded.resource, version = excluded.version, updated_at = excluded.updated_at`,
		g.DirectoryID, g.ID, nullString(g.ExternalID), g.DisplayName, strings.ToLower(g.DisplayName), string(g.Resource), g.Version, micros(g.CreatedAt), micros(g.UpdatedAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("displayName %q: %w", g.DisplayName, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("put group: %w", err)
	}
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

// storedNow is the current time at the precision the store keeps
// (microseconds), so that what a write answers (meta.lastModified) is what
// a later read returns.
func storedNow() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

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

// UsersUnder lists the users in group id directly or through nested groups.
func (tx *Tx) UsersUnder(ctx context.Context, dirID, id string) ([]string, error) {
	seen := map[string]bool{id: true}
	queue := []string{id}
	var users []string
	for len(queue) > 0 {
		g := queue[0]
		queue = queue[1:]
		rows, err := tx.query(ctx, "SELECT member_id, member_type FROM mirror_members WHERE directory_id = ? AND group_id = ?", dirID, g)
		if err != nil {
			return nil, fmt.Errorf("walk group: %w", err)
		}
		for rows.Next() {
			var mid, mtype string
			if err := rows.Scan(&mid, &mtype); err != nil {
				rows.Close()
				return nil, err
			}
			if mtype == MemberGroup {
				if !seen[mid] {
					seen[mid] = true
					queue = append(queue, mid)
				}
			} else {
				users = append(users, mid)
			}
		}
		rows.Close()
	}
	return users, nil
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

func (tx *Tx) markMembersDirty(ctx context.Context, dirID string, ms []Member, observed time.Time) error {
	var users []string
	for _, m := range ms {
		if m.Type == MemberGroup {
			if err := tx.MarkDirty(ctx, dirID, DirtySubtree, m.ID, observed); err != nil {
				return err
			}
			continue
		}
		users = append(users, m.ID)
	}
	return tx.MarkDirtyMany(ctx, dirID, DirtyUser, users, observed)
}

// ListMembers lists a group's direct members.
func (tx *Tx) ListMembers(ctx context.Context, dirID, groupID string) ([]Member, error) {
	return listMembers(ctx, tx.query, dirID, groupID)
}

// ListMembers lists a group's direct members.
func (s *Store) ListMembers(ctx context.Context, dirID, groupID string) ([]Member, error) {
	return listMembers(ctx, s.query, dirID, groupID)
}

func listMembers(ctx context.Context, query func(context.Context, string, ...any) (*sql.Rows, error), dirID, groupID string) ([]Member, error) {
	rows, err := query(ctx, "SELECT member_id, member_type FROM mirror_members WHERE directory_id = ? AND group_id = ? ORDER BY member_id", dirID, groupID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Member
	for rows.Next() {
		var m Member
		if err := rows.Scan(&m.ID, &m.Type); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
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

// MemberType says whether id is a user or a group of the directory, or
// ErrNotFound.
func (tx *Tx) MemberType(ctx context.Context, dirID, id string) (string, error) {
	var isUser, isGroup bool
	err := tx.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM mirror_users WHERE directory_id = ? AND id = ?),
		EXISTS (SELECT 1 FROM mirror_groups WHERE directory_id = ? AND id = ?)`, dirID, id, dirID, id).Scan(&isUser, &isGroup)
	switch {
	case err != nil:
		return "", err
	case isUser:
		return MemberUser, nil
	case isGroup:
		return MemberGroup, nil
	}
	return "", ErrNotFound
}

// MarkDirty records that the reconciler must look at an object again.
func (tx *Tx) MarkDirty(ctx context.Context, dirID, kind, id string, observed time.Time) error {
	_, err := tx.exec(ctx, `INSERT INTO dirty (directory_id, kind, object_id, gen, observed_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (directory_id, kind, object_id) DO UPDATE SET gen = excluded.gen`,
		dirID, kind, id, nextGen(), micros(observed))
	if err != nil {
		return fmt.Errorf("mark dirty: %w", err)
	}
	return nil
}

// MarkDirtyMany marks many objects of one kind dirty.
func (tx *Tx) MarkDirtyMany(ctx context.Context, dirID, kind string, ids []string, observed time.Time) error {
	const batch = 200
	ids = dedupe(ids)
	for start, end := 0, 0; start < len(ids); start = end {
		end = start + chunk(len(ids)-start, batch)
		args := make([]any, 0, 5*(end-start))
		for _, id := range ids[start:end] {
			args = append(args, dirID, kind, id, nextGen(), micros(observed))
		}
		_, err := tx.exec(ctx, `INSERT INTO dirty (directory_id, kind, object_id, gen, observed_at) VALUES `+placeholders(end-start, 5)+`
			ON CONFLICT (directory_id, kind, object_id) DO UPDATE SET gen = excluded.gen`, args...)
		if err != nil {
			return fmt.Errorf("mark dirty: %w", err)
		}
	}
	return nil
}

func dedupe(ids []string) []string {
	seen := make(map[string]struct{}, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if _, ok := seen[id]; !ok {
			seen[id] = struct{}{}
			out = append(out, id)
		}
	}
	return out
}

// InsertUsers adds users that are not in the mirror yet, many rows per
// statement, and marks them dirty. It is the fast path of a first sync; a
// user that already exists is an error.
func (tx *Tx) InsertUsers(ctx context.Context, users []*User, observed time.Time) error {
	now := storedNow()
	const cols = 14
	const batch = 60
	for start, end := 0, 0; start < len(users); start = end {
		end = start + chunk(len(users)-start, batch)
		part := users[start:end]
		args := make([]any, 0, cols*len(part))
		var emailArgs []any
		nEmails := 0
		ids := make([]string, 0, len(part))
		for _, u := range part {
			if u.CreatedAt.IsZero() {
				u.CreatedAt = now
			}
			u.UpdatedAt = now
			u.Version++
			if len(u.Resource) == 0 {
				u.Resource = json.RawMessage("{}")
			}
			args = append(args, u.DirectoryID, u.ID, nullString(u.ExternalID), u.UserName, strings.ToLower(u.UserName), u.DisplayName, u.GivenName, u.FamilyName,
				strings.ToLower(u.Email), u.Active, string(u.Resource), u.Version, micros(u.CreatedAt), micros(u.UpdatedAt))
			for _, e := range u.Emails {
				emailArgs = append(emailArgs, u.DirectoryID, u.ID, strings.ToLower(e.Value), e.Type, e.Primary)
				nEmails++
			}
			ids = append(ids, u.ID)
		}
		_, err := tx.exec(ctx, `INSERT INTO mirror_users (directory_id, id, external_id, user_name, user_name_lower, display_name, given_name, family_name, email, active, resource, version, created_at, updated_at)
			VALUES `+placeholders(len(part), cols), args...)
		if isUniqueViolation(err) {
			return fmt.Errorf("insert users: %w", ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("insert users: %w", err)
		}
		if nEmails > 0 {
			if _, err := tx.exec(ctx, "INSERT INTO mirror_user_emails (directory_id, user_id, value_lower, type, is_primary) VALUES "+placeholders(nEmails, 5), emailArgs...); err != nil {
				return fmt.Errorf("insert user emails: %w", err)
			}
		}
		if len(part) > 0 {
			if err := tx.MarkDirtyMany(ctx, part[0].DirectoryID, DirtyUser, ids, observed); err != nil {
				return err
			}
		}
	}
	return nil
}

// InsertMemberships adds membership rows in bulk (rows already present are
// left alone) without marking anything dirty: the caller marks what it
// must, typically the whole directory after a bulk load.
func (tx *Tx) InsertMemberships(ctx context.Context, dirID string, rows []MembershipRow) error {
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
	return nil
}

// GroupRef is a group that holds a member, directly or through nesting.
type GroupRef struct {
	ID          string
	DisplayName string
	Direct      bool
}

// maxNesting bounds how many levels of nested groups GroupsOf follows.
const maxNesting = 64

// GroupsOf gives, for each of ids (users or groups), the groups that hold it:
// first those listing it as a member (Direct), then the groups holding those,
// level by level, each group once. Cycles and more than maxNesting levels
// are cut. Each list is ordered by display name, direct groups first; ids in
// no group are absent from the map.
func (s *Store) GroupsOf(ctx context.Context, dirID string, ids []string) (map[string][]GroupRef, error) {
	type edge struct{ group, name string }
	parents := map[string][]edge{} // member id -> groups listing it
	expanded := map[string]bool{}
	frontier := dedupe(ids)
	for level := 0; len(frontier) > 0 && level <= maxNesting; level++ {
		var next []string
		for _, id := range frontier {
			expanded[id] = true
		}
		for start, end := 0, 0; start < len(frontier); start = end {
			end = start + chunk(len(frontier)-start, 500)
			part := frontier[start:end]
			args := make([]any, 0, len(part)+1)
			args = append(args, dirID)
			for _, id := range part {
				args = append(args, id)
			}
			rows, err := s.query(ctx, "SELECT m.member_id, m.group_id, g.display_name FROM mirror_members m JOIN mirror_groups g ON g.directory_id = m.directory_id AND g.id = m.group_id WHERE m.directory_id = ? AND m.member_id IN ("+qs(len(part))+")", args...)
			if err != nil {
				return nil, fmt.Errorf("groups of members: %w", err)
			}
			for rows.Next() {
				var member string
				var e edge
				if err := rows.Scan(&member, &e.group, &e.name); err != nil {
					rows.Close()
					return nil, fmt.Errorf("groups of members: %w", err)
				}
				parents[member] = append(parents[member], e)
				if !expanded[e.group] {
					expanded[e.group] = true
					next = append(next, e.group)
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, fmt.Errorf("groups of members: %w", err)
			}
		}
		frontier = next
	}
	byName := func(refs []GroupRef) {
		sort.Slice(refs, func(i, j int) bool {
			if refs[i].DisplayName != refs[j].DisplayName {
				return refs[i].DisplayName < refs[j].DisplayName
			}
			return refs[i].ID < refs[j].ID
		})
	}
	out := map[string][]GroupRef{}
	for _, id := range ids {
		direct := parents[id]
		if len(direct) == 0 {
			continue
		}
		seen := map[string]bool{id: true}
		var d, indirect []GroupRef
		var queue []string
		for _, e := range direct {
			if !seen[e.group] {
				seen[e.group] = true
				d = append(d, GroupRef{ID: e.group, DisplayName: e.name, Direct: true})
				queue = append(queue, e.group)
			}
		}
		for len(queue) > 0 {
			g := queue[0]
			queue = queue[1:]
			for _, e := range parents[g] {
				if !seen[e.group] {
					seen[e.group] = true
					indirect = append(indirect, GroupRef{ID: e.group, DisplayName: e.name})
					queue = append(queue, e.group)
				}
			}
		}
		byName(d)
		byName(indirect)
		out[id] = append(d, indirect...)
	}
	return out, nil
}
