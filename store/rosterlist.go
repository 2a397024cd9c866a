package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// MemberQuery selects members of a team for the admin API.
type MemberQuery struct {
	TeamID  string
	After   string // user id cursor (exclusive)
	Limit   int
	Email   string // exact, case-insensitive
	GroupID string // only members in this group (directly or nested)
	UserID  string // only this member
	// Search keeps members whose email or name holds it, case-insensitively
	// (SQLite folds ASCII letters only).
	Search string
	// Source keeps members whose effective limit comes from there:
	// SourceGroup or SourceTeamDefault.
	Source string
	// SourceGroupID keeps members whose effective limit that group decides.
	SourceGroupID string
	// MultiLimited keeps members in two or more groups that have a limit:
	// those for whom one group's limit won over another's.
	MultiLimited bool
}

// MemberWithGroups is a member and the groups they are in.
type MemberWithGroups struct {
	RosterMember
	Groups []RosterGroup
	// GroupLimits holds the limits of those of Groups that have one:
	// group id → cents, nil for unlimited.
	GroupLimits map[string]*int64
}

// likeContains is a LIKE pattern (with ESCAPE '!') matching values that
// hold s, lowercased.
func likeContains(s string) string {
	return "%" + strings.NewReplacer("!", "!!", "%", "!%", "_", "!_").Replace(strings.ToLower(s)) + "%"
}

// ListRosterMembers pages through a team's current members, ordered by id.
// Members and their groups are read from one snapshot, so a reconcile that
// commits meanwhile never shows a member's new groups with the old limit.
func (s *Store) ListRosterMembers(ctx context.Context, q MemberQuery) (out []MemberWithGroups, err error) {
	err = s.ReadSnapshot(ctx, func(rt *ReadTx) error {
		out, err = listRosterMembers(ctx, rt, q)
		return err
	})
	return out, err
}

func listRosterMembers(ctx context.Context, on querier, q MemberQuery) ([]MemberWithGroups, error) {
	where := "m.team_id = ? AND m.user_id > ?"
	args := []any{q.TeamID, q.After}
	if q.UserID != "" {
		where = "m.team_id = ? AND m.user_id = ?"
		args = []any{q.TeamID, q.UserID}
	}
	if q.Email != "" {
		where += " AND m.email = LOWER(?)"
		args = append(args, q.Email)
	}
	if q.GroupID != "" {
		// Through the group's directory, so that member_groups' index on
		// (directory_id, group_id) finds its members.
		where += ` AND (m.directory_id, m.user_id) IN (SELECT mg.directory_id, mg.user_id FROM member_groups mg
			WHERE mg.group_id = ? AND mg.directory_id IN (SELECT g.directory_id FROM roster_groups g WHERE g.team_id = ? AND g.group_id = ?))`
		args = append(args, q.GroupID, q.TeamID, q.GroupID)
	}
	if q.Search != "" {
		p := likeContains(q.Search)
		where += " AND (LOWER(m.email) LIKE ? ESCAPE '!' OR LOWER(m.name) LIKE ? ESCAPE '!')"
		args = append(args, p, p)
	}
	if q.Source != "" {
		where += " AND m.limit_source = ?"
		args = append(args, q.Source)
	}
	if q.SourceGroupID != "" {
		where += " AND m.limit_source = ? AND m.limit_group_id = ?"
		args = append(args, SourceGroup, q.SourceGroupID)
	}
	if q.MultiLimited {
		// From the few groups with a limit to their members, not from
		// every member to their groups.
		where += ` AND (m.directory_id, m.user_id) IN (SELECT mg.directory_id, mg.user_id FROM group_limits l
			JOIN roster_groups g ON g.team_id = l.team_id AND g.group_id = l.group_id
			JOIN member_groups mg ON mg.directory_id = g.directory_id AND mg.group_id = g.group_id
			WHERE l.team_id = ? GROUP BY mg.directory_id, mg.user_id HAVING COUNT(*) >= 2)`
		args = append(args, q.TeamID)
	}
	args = append(args, q.Limit)
	rows, err := on.query(ctx, "SELECT m.directory_id, m.user_id, m.team_id, m.email, m.name, m.limit_cents, m.limit_source, m.limit_group_id, m.limit_group_name, m.added_at, m.updated_at, m.pending_removal FROM members m WHERE "+where+" ORDER BY m.user_id, m.directory_id LIMIT ?", args...)
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	var out []MemberWithGroups
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, MemberWithGroups{RosterMember: *m})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := loadMemberGroups(ctx, on, out); err != nil {
		return nil, err
	}
	return out, nil
}

// loadMemberGroups fills in the groups of a page of members, with their
// limits, by primary keys only (so no plan depends on the planner's
// statistics): the page's links, then the groups they name, per directory.
func loadMemberGroups(ctx context.Context, on querier, ms []MemberWithGroups) error {
	byDir := map[string]map[string]*MemberWithGroups{}
	var dirs []string
	for i := range ms {
		m := &ms[i]
		if byDir[m.DirectoryID] == nil {
			byDir[m.DirectoryID] = map[string]*MemberWithGroups{}
			dirs = append(dirs, m.DirectoryID)
		}
		byDir[m.DirectoryID][m.UserID] = m
	}
	for _, dir := range dirs {
		members := byDir[dir]
		ids := make([]string, 0, len(members))
		for id := range members {
			ids = append(ids, id)
		}
		var links []Link
		err := inBatches(ids, 500, func(part []string) error {
			rows, err := on.query(ctx, "SELECT user_id, group_id FROM member_groups WHERE directory_id = ? AND user_id IN ("+qs(len(part))+")", append([]any{dir}, anys(part)...)...)
			if err != nil {
				return fmt.Errorf("list member groups: %w", err)
			}
			defer rows.Close()
			for rows.Next() {
				var l Link
				if err := rows.Scan(&l.UserID, &l.GroupID); err != nil {
					return err
				}
				links = append(links, l)
			}
			return rows.Err()
		})
		if err != nil {
			return err
		}
		type groupInfo struct {
			name     string
			hasLimit bool
			cents    *int64
		}
		groups := map[string]groupInfo{}
		var gids []string
		for _, l := range links {
			if _, ok := groups[l.GroupID]; !ok {
				groups[l.GroupID] = groupInfo{}
				gids = append(gids, l.GroupID)
			}
		}
		found := map[string]groupInfo{}
		err = inBatches(gids, 500, func(part []string) error {
			rows, err := on.query(ctx, `SELECT g.group_id, g.name, l.group_id, l.limit_cents FROM roster_groups g
				LEFT JOIN group_limits l ON l.team_id = g.team_id AND l.group_id = g.group_id
				WHERE g.directory_id = ? AND g.group_id IN (`+qs(len(part))+")", append([]any{dir}, anys(part)...)...)
			if err != nil {
				return fmt.Errorf("list member groups: %w", err)
			}
			defer rows.Close()
			for rows.Next() {
				var id string
				var gi groupInfo
				var lid sql.NullString
				var lim sql.NullInt64
				if err := rows.Scan(&id, &gi.name, &lid, &lim); err != nil {
					return err
				}
				gi.hasLimit, gi.cents = lid.Valid, centsOf(lim)
				found[id] = gi
			}
			return rows.Err()
		})
		if err != nil {
			return err
		}
		for _, l := range links {
			gi, ok := found[l.GroupID]
			if !ok {
				continue // a link to a group not on the roster: not shown
			}
			m := members[l.UserID]
			m.Groups = append(m.Groups, RosterGroup{DirectoryID: dir, GroupID: l.GroupID, TeamID: m.TeamID, Name: gi.name})
			if gi.hasLimit {
				if m.GroupLimits == nil {
					m.GroupLimits = map[string]*int64{}
				}
				m.GroupLimits[l.GroupID] = gi.cents
			}
		}
	}
	for i := range ms {
		slices.SortFunc(ms[i].Groups, func(a, b RosterGroup) int {
			return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.GroupID, b.GroupID))
		})
	}
	return nil
}

// GetRosterMember reads one current member of a team by user id.
func (s *Store) GetRosterMember(ctx context.Context, teamID, userID string) (*MemberWithGroups, error) {
	ms, err := s.ListRosterMembers(ctx, MemberQuery{TeamID: teamID, UserID: userID, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, ErrNotFound
	}
	return &ms[0], nil
}

// GroupWithCount is a roster group with its member count and limit.
type GroupWithCount struct {
	RosterGroup
	MemberCount int
	HasLimit    bool
	LimitCents  *int64
}

// GroupQuery selects groups of a team for the admin API.
type GroupQuery struct {
	TeamID string
	After  string // group id cursor (exclusive)
	Limit  int
	// Search keeps groups whose name holds it, case-insensitively (SQLite
	// folds ASCII letters only).
	Search string
}

// ListRosterGroups pages through a team's groups, ordered by id.
func (r *reads) ListRosterGroups(ctx context.Context, q GroupQuery) ([]GroupWithCount, error) {
	cond, args := "g.group_id > ?", []any{q.After}
	if q.Search != "" {
		cond += " AND LOWER(g.name) LIKE ? ESCAPE '!'"
		args = append(args, likeContains(q.Search))
	}
	return r.listRosterGroups(ctx, cond, q.TeamID, q.Limit, args...)
}

func (r *reads) listRosterGroups(ctx context.Context, cond, teamID string, limit int, condArgs ...any) ([]GroupWithCount, error) {
	args := append(append([]any{teamID}, condArgs...), limit)
	rows, err := r.on.query(ctx, `SELECT g.directory_id, g.group_id, g.name,
		(SELECT COUNT(*) FROM member_groups mg WHERE mg.directory_id = g.directory_id AND mg.group_id = g.group_id),
		l.group_id, l.limit_cents
		FROM roster_groups g LEFT JOIN group_limits l ON l.team_id = g.team_id AND l.group_id = g.group_id
		WHERE g.team_id = ? AND `+cond+` ORDER BY g.group_id LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	defer rows.Close()
	var out []GroupWithCount
	for rows.Next() {
		g := GroupWithCount{RosterGroup: RosterGroup{TeamID: teamID}}
		var lid sql.NullString
		var lim sql.NullInt64
		if err := rows.Scan(&g.DirectoryID, &g.GroupID, &g.Name, &g.MemberCount, &lid, &lim); err != nil {
			return nil, err
		}
		g.HasLimit = lid.Valid
		g.LimitCents = centsOf(lim)
		out = append(out, g)
	}
	return out, rows.Err()
}

// GetRosterGroup reads one group of a team.
func (r *reads) GetRosterGroup(ctx context.Context, teamID, groupID string) (*GroupWithCount, error) {
	gs, err := r.listRosterGroups(ctx, "g.group_id = ?", teamID, 1, groupID)
	if err != nil {
		return nil, err
	}
	if len(gs) == 0 || gs[0].GroupID != groupID {
		return nil, ErrNotFound
	}
	return &gs[0], nil
}

// GroupDirectory finds which directory of the team a group belongs to, from
// the roster or, if not reconciled yet, the mirror.
func (r *reads) GroupDirectory(ctx context.Context, teamID, groupID string) (string, error) {
	var dir string
	err := r.on.queryRow(ctx, "SELECT directory_id FROM roster_groups WHERE team_id = ? AND group_id = ?", teamID, groupID).Scan(&dir)
	if errors.Is(err, sql.ErrNoRows) {
		err = r.on.queryRow(ctx, "SELECT g.directory_id FROM mirror_groups g JOIN directories d ON d.id = g.directory_id WHERE d.team_id = ? AND g.id = ?", teamID, groupID).Scan(&dir)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return dir, err
}

func centsOf(v sql.NullInt64) *int64 {
	if !v.Valid {
		return nil
	}
	c := v.Int64
	return &c
}

// LimitedGroup is a group that has a limit, with how many members it has
// and how many members' effective limit it decides.
type LimitedGroup struct {
	RosterGroup
	LimitCents  *int64 // nil is unlimited
	MemberCount int
	// Decides counts the members whose effective limit is this group's:
	// fewer than MemberCount when some are also in a group with a higher
	// limit.
	Decides int
}

// LimitReview is what the review of group limits shows: every group that
// has a limit, and one page of the members in two or more of them.
type LimitReview struct {
	Groups  []LimitedGroup
	Members []MemberWithGroups
}

// ReviewLimits reads a team's limit review from one snapshot; the members
// page is read as ListRosterMembers does (limit rows after the cursor).
func (s *Store) ReviewLimits(ctx context.Context, teamID, after string, limit int) (out LimitReview, err error) {
	err = s.ReadSnapshot(ctx, func(rt *ReadTx) error {
		rows, err := rt.query(ctx, `SELECT g.directory_id, g.group_id, g.name, l.limit_cents,
			(SELECT COUNT(*) FROM member_groups mg WHERE mg.directory_id = g.directory_id AND mg.group_id = g.group_id),
			(SELECT COUNT(*) FROM members m WHERE m.team_id = g.team_id AND m.limit_group_id = g.group_id AND m.limit_source = ?)
			FROM group_limits l JOIN roster_groups g ON g.team_id = l.team_id AND g.group_id = l.group_id
			WHERE l.team_id = ? ORDER BY g.name, g.group_id`, SourceGroup, teamID)
		if err != nil {
			return fmt.Errorf("review limits: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			g := LimitedGroup{RosterGroup: RosterGroup{TeamID: teamID}}
			var lim sql.NullInt64
			if err := rows.Scan(&g.DirectoryID, &g.GroupID, &g.Name, &lim, &g.MemberCount, &g.Decides); err != nil {
				return err
			}
			g.LimitCents = centsOf(lim)
			out.Groups = append(out.Groups, g)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		out.Members, err = listRosterMembers(ctx, rt, MemberQuery{TeamID: teamID, After: after, Limit: limit, MultiLimited: true})
		return err
	})
	return out, err
}
