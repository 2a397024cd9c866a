package poll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/roster-dev/roster/store"
)

// write applies a plan to the mirror, with the directory's new cursor and
// state, in one transaction. Groups are written before memberships, so
// groups of groups resolve, and deleted after them. approved says the
// plan's removals were held and then approved; the feed records that.
func (p *Poller) write(ctx context.Context, dir *store.Directory, pl *pollPlan, l listing, approved bool) error {
	now := time.Now()
	return p.Store.WithTx(ctx, func(tx *store.Tx) error {
		if err := writeUsers(ctx, tx, dir.ID, pl, now); err != nil {
			return err
		}
		if err := writeGroups(ctx, tx, dir.ID, pl, now); err != nil {
			return err
		}
		if err := writeMemberships(ctx, tx, dir.ID, pl, now); err != nil {
			return err
		}
		for _, id := range pl.deleteGroups {
			if err := tx.DeleteGroup(ctx, dir.ID, id, now); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		return finishDirectory(ctx, tx, dir, pl, l, approved, now)
	})
}

// writeUsers writes changed users one by one, new users in one batch, and
// deletes the users the directory lost.
func writeUsers(ctx context.Context, tx *store.Tx, dirID string, pl *pollPlan, now time.Time) error {
	for _, u := range pl.changedUsers {
		if err := tx.PutUser(ctx, u, now); err != nil {
			return fmt.Errorf("user %s: %w", u.ID, err)
		}
	}
	if err := tx.InsertUsers(ctx, pl.newUsers, now); err != nil {
		return err
	}
	for _, id := range pl.deleteUsers {
		if err := tx.DeleteUser(ctx, dirID, id, now); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}

// writeGroups writes new and renamed groups.
func writeGroups(ctx context.Context, tx *store.Tx, dirID string, pl *pollPlan, now time.Time) error {
	for _, gp := range pl.putGroups {
		g := gp.group
		if err := tx.PutGroup(ctx, g, now); err != nil {
			return fmt.Errorf("group %s: %w", g.ID, err)
		}
	}
	return nil
}

// writeMemberships changes the direct members of known groups and inserts
// the members of new groups in one batch; the store marks what each write
// dirties.
func writeMemberships(ctx context.Context, tx *store.Tx, dirID string, pl *pollPlan, now time.Time) error {
	for _, mc := range pl.memberChanges {
		if _, err := tx.RemoveMembers(ctx, dirID, mc.groupID, mc.remove, now); err != nil {
			return err
		}
		if _, err := tx.AddMembers(ctx, dirID, mc.groupID, mc.add, now); err != nil {
			return err
		}
	}
	if len(pl.newGroupRows) == 0 {
		return nil
	}
	return tx.InsertMemberships(ctx, dirID, pl.newGroupRows, now)
}

// finishDirectory records the poll on the directory: state ok (with a note
// of skipped entries), the sync time, the cursor to continue from, and the
// approval event when held removals were applied.
func finishDirectory(ctx context.Context, tx *store.Tx, dir *store.Directory, pl *pollPlan, l listing, approved bool, now time.Time) error {
	d, err := tx.GetDirectory(ctx, dir.ID)
	if err != nil {
		return err
	}
	d.State, d.LastError, d.Review = store.StateOK, "", nil
	if len(pl.skipped) > 0 {
		d.LastError = fmt.Sprintf("%d entries skipped, e.g. %s: %s", len(pl.skipped), pl.skipped[0].ID, pl.skipped[0].Reason)
	}
	t := now.UTC()
	d.LastSyncAt = &t
	switch {
	case l.cursor != nil:
		d.Cursor, d.CursorKind = l.cursor, cursorKind(l.cursor)
	case l.full():
		d.Cursor, d.CursorKind = nil, "full"
	}
	if l.full() {
		d.LastFullAt = &t
	}
	if approved {
		b, _ := json.Marshal(map[string]any{"applied_removals": len(pl.leaving), "approved_at": t})
		ev := store.Event{DirectoryID: d.ID, Type: EventDirectoryApproved, OccurredAt: t, Data: withIDs(b, d)}
		if err := tx.AppendEvents(ctx, d.TeamID, []store.Event{ev}); err != nil {
			return err
		}
	}
	if err := tx.UpdateDirectory(ctx, d); err != nil {
		return err
	}
	*dir = *d
	return nil
}
