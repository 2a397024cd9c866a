package reconcile

import (
	"context"
	"fmt"

	"github.com/roster-dev/roster/store"
)

// RemoveDirectory deletes a directory. Its members leave the roster and its
// groups go, with the same member.removed and group.deleted events a
// reconcile writes when a directory empties, all in the transaction that
// deletes the directory: the feed never shows members of a directory that
// no longer exists, nor loses their removal.
// It returns the events it appended.
func RemoveDirectory(ctx context.Context, s *store.Store, dirID string) ([]store.Event, error) {
	var changes *store.RosterChanges
	err := s.WithTx(ctx, func(tx *store.Tx) error {
		dir, err := tx.GetDirectory(ctx, dirID) // locks the directory on PostgreSQL
		if err != nil {
			return err
		}
		team, err := tx.GetTeam(ctx, dir.TeamID)
		if err != nil {
			return err
		}
		p, err := loadRoster(ctx, tx, team, dir)
		if err != nil {
			return err
		}
		changes = p.changes()
		if err := tx.ApplyRoster(ctx, team.ID, dirID, changes); err != nil {
			return err
		}
		return tx.DeleteDirectory(ctx, dirID)
	})
	if err != nil {
		return nil, fmt.Errorf("remove directory %s: %w", dirID, err)
	}
	return changes.Events, nil
}

// loadRoster reads what the roster holds of a directory and nothing of its
// mirror: planned, every member leaves and every group goes.
func loadRoster(ctx context.Context, tx *store.Tx, team *store.Team, dir *store.Directory) (*plan, error) {
	p := &plan{team: team, dir: dir, users: map[string]*userState{}, groups: map[string]*groupState{},
		limits: map[string]*int64{}, names: map[string]string{}}
	if err := tx.EachRosterMember(ctx, dir.ID, func(m *store.RosterMember) {
		p.user(m.UserID).cur = m
	}); err != nil {
		return nil, err
	}
	if err := tx.EachMemberGroup(ctx, dir.ID, func(l store.Link) {
		us := p.user(l.UserID)
		us.curGroups = append(us.curGroups, l.GroupID)
	}); err != nil {
		return nil, err
	}
	names, err := tx.RosterGroups(ctx, dir.ID)
	if err != nil {
		return nil, err
	}
	for g, n := range names {
		p.groups[g] = &groupState{rosterName: n, inRoster: true}
	}
	return p, nil
}
