package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
)

// ListMembers lists a group's direct members, ordered by id.
func (r *reads) ListMembers(ctx context.Context, dirID, groupID string) ([]Member, error) {
	rows, err := r.on.query(ctx, "SELECT member_id, member_type FROM mirror_members WHERE directory_id = ? AND group_id = ? ORDER BY member_id", dirID, groupID)
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
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

// UsersUnder lists the users in group id directly or through nested groups.
func (r *reads) UsersUnder(ctx context.Context, dirID, id string) ([]string, error) {
	seen := map[string]bool{id: true}
	queue := []string{id}
	var users []string
	for len(queue) > 0 {
		g := queue[0]
		queue = queue[1:]
		rows, err := r.on.query(ctx, "SELECT member_id, member_type FROM mirror_members WHERE directory_id = ? AND group_id = ?", dirID, g)
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
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("walk group: %w", err)
		}
	}
	return users, nil
}

// ParentGroups lists the groups each of ids is a direct member of.
func (r *reads) ParentGroups(ctx context.Context, dirID string, ids []string) (map[string][]string, error) {
	return idLists(ctx, r.on, "SELECT member_id, group_id FROM mirror_members WHERE directory_id = ?", "member_id", dirID, ids)
}

// MembershipRow is one mirror membership.
type MembershipRow struct {
	GroupID    string
	MemberID   string
	MemberType string
}

// EachMembership streams every mirror membership of a directory.
func (r *reads) EachMembership(ctx context.Context, dirID string, fn func(MembershipRow)) error {
	rows, err := r.on.query(ctx, "SELECT group_id, member_id, member_type FROM mirror_members WHERE directory_id = ?", dirID)
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

// MemberType says whether id is a user or a group of the directory, or
// ErrNotFound.
func (r *reads) MemberType(ctx context.Context, dirID, id string) (string, error) {
	var isUser, isGroup bool
	err := r.on.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM mirror_users WHERE directory_id = ? AND id = ?),
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

// MemberTypes says, for each id that is a user or a group of the
// directory, which it is; unknown ids are absent.
func (r *reads) MemberTypes(ctx context.Context, dirID string, ids []string) (map[string]string, error) {
	out := map[string]string{}
	for _, q := range []struct{ table, typ string }{{"mirror_users", MemberUser}, {"mirror_groups", MemberGroup}} {
		err := inBatches(ids, 500, func(part []string) error {
			rows, err := r.on.query(ctx, "SELECT id FROM "+q.table+" WHERE directory_id = ? AND id IN ("+qs(len(part))+")", append([]any{dirID}, anys(part)...)...)
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

// GroupRef is a group that holds a member, directly or through nesting.
type GroupRef struct {
	ID          string
	DisplayName string
	Direct      bool
}

// GroupsOf gives, for each of ids (users or groups), the groups that hold
// it directly or through nesting: first those listing it as a member
// (Direct), then every group above those, each once. The walk follows the
// nesting until it finds no new group, however deep; a group met again (a
// cycle) is not followed twice. Membership rows of a group that does not
// exist are followed but the group is not listed. This is the set the
// reconciler gives a member in the roster. Each of the two parts is ordered
// by display name, then id; ids in no group are absent from the map.
func (r *reads) GroupsOf(ctx context.Context, dirID string, ids []string) (map[string][]GroupRef, error) {
	type edge struct {
		group, name string
		exists      bool
	}
	parents := map[string][]edge{} // member id -> groups listing it
	expanded := map[string]bool{}
	frontier := dedupe(ids)
	for len(frontier) > 0 {
		// A whole level is marked before it is queried, so a group met in
		// one chunk of the level is not queried again in the next level.
		for _, id := range frontier {
			expanded[id] = true
		}
		var next []string
		err := inBatches(frontier, 500, func(part []string) error {
			rows, err := r.on.query(ctx, "SELECT m.member_id, m.group_id, g.display_name FROM mirror_members m LEFT JOIN mirror_groups g ON g.directory_id = m.directory_id AND g.id = m.group_id WHERE m.directory_id = ? AND m.member_id IN ("+qs(len(part))+")", append([]any{dirID}, anys(part)...)...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var member string
				var name sql.NullString
				var e edge
				if err := rows.Scan(&member, &e.group, &name); err != nil {
					return err
				}
				e.name, e.exists = name.String, name.Valid
				parents[member] = append(parents[member], e)
				if !expanded[e.group] {
					expanded[e.group] = true
					next = append(next, e.group)
				}
			}
			return rows.Err()
		})
		if err != nil {
			return nil, fmt.Errorf("groups of members: %w", err)
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
		seen := map[string]bool{id: true}
		var direct, indirect []GroupRef
		queue := []string{id}
		for len(queue) > 0 {
			member := queue[0]
			queue = queue[1:]
			for _, e := range parents[member] {
				if seen[e.group] {
					continue
				}
				seen[e.group] = true
				queue = append(queue, e.group)
				switch {
				case !e.exists:
				case member == id:
					direct = append(direct, GroupRef{ID: e.group, DisplayName: e.name, Direct: true})
				default:
					indirect = append(indirect, GroupRef{ID: e.group, DisplayName: e.name})
				}
			}
		}
		if len(direct)+len(indirect) == 0 {
			continue
		}
		byName(direct)
		byName(indirect)
		out[id] = append(direct, indirect...)
	}
	return out, nil
}
