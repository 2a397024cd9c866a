package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/roster-dev/roster/internal/scimfilter"
)

// Search is a SCIM list request (RFC 7644 §3.4.2) over a directory's mirror.
type Search struct {
	// Filter selects the resources; nil selects them all.
	Filter scimfilter.Expr
	// StartIndex is the 1-based position, among the matches ordered by id,
	// of the page's first resource; below 1 counts as 1.
	StartIndex int
	// Count is the most resources the page holds; 0 (or less) asks for the
	// total only.
	Count int
}

// UserPage is a page of a user search and how many users match in all.
type UserPage struct {
	Users []*User // without their emails (the resource has them)
	Total int
}

// GroupPage is a page of a group search and how many groups match in all.
type GroupPage struct {
	Groups []*Group // without their members
	Total  int
}

// ErrNeedsMatch is returned by a search whose filter has no exact SQL form
// when no match function was given.
var ErrNeedsMatch = errors.New("filter needs a match function")

// SearchUsers answers a SCIM list of a directory's users, ordered by id.
//
// A filter whose every part has an exact SQL form is answered by the
// database alone, through its indexes. Otherwise (an attribute kept only
// in the resource, the read-only groups, a comparison the engines would
// not agree on) the SQL selects a superset of the matches and match
// decides for each candidate, in id order, rendering the resource as the
// caller shows it. onPage says whether the candidate goes on the page if
// it matches, so that the caller can keep what it computed to decide.
// match may be nil when the filter is nil; a filter that needs match
// without one is ErrNeedsMatch.
func (s *Store) SearchUsers(ctx context.Context, dirID string, q Search, match func(u *User, onPage bool) (bool, error)) (UserPage, error) {
	page, total, err := search(ctx, s, userSearch, dirID, q, match)
	return UserPage{Users: page, Total: total}, err
}

// SearchGroups answers a SCIM list of a directory's groups as SearchUsers
// does users.
func (s *Store) SearchGroups(ctx context.Context, dirID string, q Search, match func(g *Group, onPage bool) (bool, error)) (GroupPage, error) {
	page, total, err := search(ctx, s, groupSearch, dirID, q, match)
	return GroupPage{Groups: page, Total: total}, err
}

// searchTable says how to search one mirror table.
type searchTable[T any] struct {
	from    string // table and alias
	alias   string
	cols    string // what scan reads, prefixed with the alias
	mapping sqlMapping
	scan    func(row interface{ Scan(...any) error }) (T, error)
	id      func(T) string
}

var (
	userSearch = searchTable[*User]{
		from: "mirror_users u", alias: "u", cols: prefixCols(userCols, "u"), mapping: userSQL,
		scan: scanUser, id: func(u *User) string { return u.ID },
	}
	groupSearch = searchTable[*Group]{
		from: "mirror_groups g", alias: "g", cols: prefixCols(groupCols, "g"), mapping: groupSQL,
		scan: scanGroup, id: func(g *Group) string { return g.ID },
	}
)

// candidateChunk is how many candidates an inexact search reads per
// statement. The rows are read and closed before match sees them, so that
// match may read the store (groups, members) without holding a second
// connection of the read pool per search.
const candidateChunk = 500

func search[T any](ctx context.Context, s *Store, t searchTable[T], dirID string, q Search, match func(T, bool) (bool, error)) (page []T, total int, err error) {
	start, count := max(q.StartIndex, 1), max(q.Count, 0)
	where := t.alias + ".directory_id = ?"
	args := []any{dirID}
	exact := true
	if q.Filter != nil {
		cond, cargs, ok := filterSQL(q.Filter, t.mapping)
		where += " AND (" + cond + ")"
		args = append(args, cargs...)
		exact = ok
	}
	from := " FROM " + t.from + " WHERE " + where
	if exact {
		// The page first: when it starts at 1 and is not full, its length
		// is the total, and the COUNT (a second statement) is not needed.
		// That is the common lookup of identity providers:
		// filter=userName eq "...".
		total = -1
		if count > 0 {
			pageArgs := append(append(make([]any, 0, len(args)+2), args...), count, start-1)
			if page, err = readRows(ctx, s, t, "SELECT "+t.cols+from+" ORDER BY "+t.alias+".id LIMIT ? OFFSET ?", pageArgs); err != nil {
				return nil, 0, err
			}
			if start == 1 && len(page) < count {
				total = len(page)
			}
		}
		if total < 0 {
			if err := s.queryRow(ctx, "SELECT COUNT(*)"+from, args...).Scan(&total); err != nil {
				return nil, 0, fmt.Errorf("count: %w", err)
			}
		}
		return page, total, nil
	}
	if match == nil {
		return nil, 0, ErrNeedsMatch
	}
	q1 := "SELECT " + t.cols + from + " AND " + t.alias + ".id > ? ORDER BY " + t.alias + ".id LIMIT ?"
	after := ""
	for {
		chunkArgs := append(append(make([]any, 0, len(args)+2), args...), after, candidateChunk)
		cands, err := readRows(ctx, s, t, q1, chunkArgs)
		if err != nil {
			return nil, 0, err
		}
		for _, c := range cands {
			onPage := total+1 >= start && len(page) < count
			ok, err := match(c, onPage)
			if err != nil {
				return nil, 0, err
			}
			if ok {
				total++
				if onPage {
					page = append(page, c)
				}
			}
		}
		if len(cands) < candidateChunk {
			return page, total, nil
		}
		after = t.id(cands[len(cands)-1])
	}
}

func readRows[T any](ctx context.Context, s *Store, t searchTable[T], q string, args []any) ([]T, error) {
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := t.scan(rows)
		if err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	return out, nil
}
