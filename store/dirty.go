package store

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// Dirty kinds: what the reconciler must look at again.
const (
	DirtyUser    = "user"    // one user's membership, profile or limit
	DirtyGroup   = "group"   // a group's existence or name
	DirtySubtree = "subtree" // every user under a group (nesting or limit changed)
	DirtyAll     = "all"     // the whole directory
)

// DirtyRow is one pending reconcile item.
type DirtyRow struct {
	Kind     string
	ObjectID string
	Gen      int64
	Observed time.Time
}

// MarkDirty records that the reconciler must look at an object again.
// Marking an object that is already marked keeps its first observation
// time (lag is measured from it) and gives it a new generation, so that a
// reconcile that read the older mark does not clear this one; marking twice
// is the same as marking once.
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

// markMembersDirty marks what a change of group members dirties: each user
// member, and everyone under each group member.
func (tx *Tx) markMembersDirty(ctx context.Context, dirID string, ms []Member, observed time.Time) error {
	var users, groups []string
	for _, m := range ms {
		if m.Type == MemberGroup {
			groups = append(groups, m.ID)
		} else {
			users = append(users, m.ID)
		}
	}
	if err := tx.MarkDirtyMany(ctx, dirID, DirtySubtree, groups, observed); err != nil {
		return err
	}
	return tx.MarkDirtyMany(ctx, dirID, DirtyUser, users, observed)
}

var genCounter atomic.Int64

func init() { genCounter.Store(time.Now().UnixNano()) }

// nextGen returns a number unique to this write, for dirty-row bookkeeping.
func nextGen() int64 { return genCounter.Add(1) }

// PendingDirty reads every pending reconcile item of a directory.
func (r *reads) PendingDirty(ctx context.Context, dirID string) ([]DirtyRow, error) {
	return r.pendingDirty(ctx, "SELECT kind, object_id, gen, observed_at FROM dirty WHERE directory_id = ?", dirID)
}

// PendingDirtyFirst reads up to n pending items of a directory, in key
// order (a whole-directory item first).
func (r *reads) PendingDirtyFirst(ctx context.Context, dirID string, n int) ([]DirtyRow, error) {
	return r.pendingDirty(ctx, "SELECT kind, object_id, gen, observed_at FROM dirty WHERE directory_id = ? ORDER BY kind, object_id LIMIT ?", dirID, n)
}

// CountDirty counts a directory's pending items.
func (r *reads) CountDirty(ctx context.Context, dirID string) (int, error) {
	var n int
	err := r.on.queryRow(ctx, "SELECT COUNT(*) FROM dirty WHERE directory_id = ?", dirID).Scan(&n)
	return n, err
}

func (r *reads) pendingDirty(ctx context.Context, q string, args ...any) ([]DirtyRow, error) {
	rows, err := r.on.query(ctx, q, args...)
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

// DirtyDirectories lists directories with changes not yet reconciled, and the
// oldest observation time of each.
func (r *reads) DirtyDirectories(ctx context.Context) (map[string]time.Time, error) {
	rows, err := r.on.query(ctx, "SELECT directory_id, MIN(observed_at) FROM dirty GROUP BY directory_id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var id string
		var at int64
		if err := rows.Scan(&id, &at); err != nil {
			return nil, err
		}
		out[id] = fromMicros(at)
	}
	return out, rows.Err()
}

// PendingItem reports whether an item is still waiting for the reconciler.
func (r *reads) PendingItem(ctx context.Context, dirID, kind, objectID string) (bool, error) {
	var n int
	err := r.on.queryRow(ctx, "SELECT COUNT(*) FROM dirty WHERE directory_id = ? AND kind = ? AND object_id = ?", dirID, kind, objectID).Scan(&n)
	return n > 0, err
}
