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

const userCols = "directory_id, id, external_id, user_name, display_name, given_name, family_name, email, active, resource, version, created_at, updated_at"

// scanUser reads a row selected with userCols. Emails are not loaded.
func scanUser(row interface{ Scan(...any) error }) (*User, error) {
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

// GetUser reads a mirror user.
func (r *reads) GetUser(ctx context.Context, dirID, id string) (*User, error) {
	return scanUser(r.on.queryRow(ctx, "SELECT "+userCols+" FROM mirror_users WHERE directory_id = ? AND id = ?", dirID, id))
}

// UserEmails loads the emails of users, keyed by user id.
func (r *reads) UserEmails(ctx context.Context, dirID string, ids []string) (map[string][]Email, error) {
	out := map[string][]Email{}
	for start, end := 0, 0; start < len(ids); start = end {
		end = start + chunk(len(ids)-start, 500)
		args := []any{dirID}
		for _, id := range ids[start:end] {
			args = append(args, id)
		}
		rows, err := r.on.query(ctx, "SELECT user_id, value_lower, type, is_primary FROM mirror_user_emails WHERE directory_id = ? AND user_id IN ("+qs(end-start)+")", args...)
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

// PutUser inserts or replaces a mirror user (by directory and id) and marks
// it dirty. The store keeps the row's bookkeeping: a new user starts at
// version 1, a replaced one keeps its creation time and gets the next
// version, whatever u holds; u's Version, CreatedAt and UpdatedAt are set
// to what was stored. A userName already used by another user of the
// directory is ErrConflict.
func (tx *Tx) PutUser(ctx context.Context, u *User, observed time.Time) error {
	now := storedNow()
	if len(u.Resource) == 0 {
		u.Resource = json.RawMessage("{}")
	}
	var version, created int64
	err := tx.queryRow(ctx, `INSERT INTO mirror_users (directory_id, id, external_id, user_name, user_name_lower, display_name, given_name, family_name, email, active, resource, version, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)
		ON CONFLICT (directory_id, id) DO UPDATE SET external_id = excluded.external_id, user_name = excluded.user_name,
		user_name_lower = excluded.user_name_lower, display_name = excluded.display_name, given_name = excluded.given_name,
		family_name = excluded.family_name, email = excluded.email, active = excluded.active, resource = excluded.resource,
		version = mirror_users.version + 1, updated_at = excluded.updated_at
		RETURNING version, created_at`,
		u.DirectoryID, u.ID, nullString(u.ExternalID), u.UserName, strings.ToLower(u.UserName), u.DisplayName, u.GivenName, u.FamilyName,
		strings.ToLower(u.Email), u.Active, string(u.Resource), micros(now), micros(now)).Scan(&version, &created)
	if isUniqueViolation(err) {
		return fmt.Errorf("userName %q: %w", u.UserName, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("put user: %w", err)
	}
	u.Version, u.CreatedAt, u.UpdatedAt = version, fromMicros(created), now
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

// InsertUsers adds users that are not in the mirror yet, many rows per
// statement, and marks them dirty. It is the fast path of a first sync; a
// user that already exists is an error. Each user is stored at version 1,
// created now, and u's Version, CreatedAt and UpdatedAt say so.
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
			u.Version, u.CreatedAt, u.UpdatedAt = 1, now, now
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
func (r *reads) EachMirrorUser(ctx context.Context, dirID string, fn func(MirrorUserLite)) error {
	rows, err := r.on.query(ctx, "SELECT "+liteCols+" FROM mirror_users WHERE directory_id = ?", dirID)
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
func (r *reads) MirrorUsersLite(ctx context.Context, dirID string, ids []string) (map[string]MirrorUserLite, error) {
	out := make(map[string]MirrorUserLite, len(ids))
	err := inBatches(ids, 500, func(part []string) error {
		rows, err := r.on.query(ctx, "SELECT "+liteCols+" FROM mirror_users WHERE directory_id = ? AND id IN ("+qs(len(part))+")", append([]any{dirID}, anys(part)...)...)
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

// CountActiveUsers counts a directory's active mirror users.
func (r *reads) CountActiveUsers(ctx context.Context, dirID string) (int, error) {
	var n int
	err := r.on.queryRow(ctx, "SELECT COUNT(*) FROM mirror_users WHERE directory_id = ? AND active", dirID).Scan(&n)
	return n, err
}
