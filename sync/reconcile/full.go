package reconcile

import (
	"context"
	"time"

	"github.com/roster-dev/roster/store"
	"github.com/roster-dev/roster/sync/rules"
)

// full reconciles the whole directory: loadFull reads the mirror and the
// roster from one snapshot without holding the writer, the plan computes
// the changes, and one transaction writes them and clears the items that
// were pending when the snapshot was read.
func (r *Reconciler) full(ctx context.Context, dirID string) (Result, error) {
	res := Result{Mode: "full"}
	dir, err := r.Store.GetDirectory(ctx, dirID)
	if err != nil {
		return res, err
	}
	res.TeamID, res.Type = dir.TeamID, dir.Type
	team, err := r.Store.GetTeam(ctx, dir.TeamID)
	if err != nil {
		return res, err
	}
	p, items, err := r.loadFull(ctx, team, dir)
	if err != nil {
		return res, err
	}
	planned := p.changes()
	r.beforeApply(dirID)
	var (
		changes *store.RosterChanges
		guard   *scimGuard
		locked  *store.Directory
	)
	err = r.Store.WithTx(ctx, func(tx *store.Tx) error {
		d, err := tx.GetDirectory(ctx, dirID) // locks the directory on PostgreSQL
		if err != nil {
			return err
		}
		now := time.Now()
		if guard, err = decide(ctx, tx, d, p, now); err != nil {
			return err
		}
		// The guard decides under the lock; the plan computed before it
		// holds only when nothing is held.
		changes = planned
		if p.hold {
			changes = p.changes()
		}
		if err := apply(ctx, tx, team.ID, dirID, changes, items); err != nil {
			return err
		}
		locked = d
		return settle(ctx, tx, d, guard, changes, now)
	})
	if err != nil {
		return res, err
	}
	r.observeGuard(locked, guard)
	res.Pending = len(items)
	res.counted(changes, guard)
	r.afterApply(dirID, dir.Type, items, changes.Events)
	return res, nil
}

// loadFull reads one consistent snapshot of the directory: every mirror
// user with the groups they are in through nesting, every roster member and
// link, every group's mirror and roster name, the team's limits, and the
// pending items it covers. Changes made after it stay pending (their items
// get a newer generation) and cause a follow-up run.
func (r *Reconciler) loadFull(ctx context.Context, team *store.Team, dir *store.Directory) (*plan, []store.DirtyRow, error) {
	dirID := dir.ID
	p := &plan{team: team, dir: dir, users: map[string]*userState{}, groups: map[string]*groupState{}}
	var items []store.DirtyRow
	err := r.Store.ReadSnapshot(ctx, func(rt *store.ReadTx) error {
		var err error
		if items, err = rt.PendingDirty(ctx, dirID); err != nil {
			return err
		}
		if p.limits, err = rt.GroupLimits(ctx, team.ID); err != nil {
			return err
		}
		if p.names, err = rt.MirrorGroupNames(ctx, dirID); err != nil {
			return err
		}
		if err := loadMirrorUsers(ctx, rt, dirID, p); err != nil {
			return err
		}
		if err := rt.EachRosterMember(ctx, dirID, func(m *store.RosterMember) {
			p.user(m.UserID).cur = m
		}); err != nil {
			return err
		}
		if err := rt.EachMemberGroup(ctx, dirID, func(l store.Link) {
			us := p.user(l.UserID)
			us.curGroups = append(us.curGroups, l.GroupID)
		}); err != nil {
			return err
		}
		rosterNames, err := rt.RosterGroups(ctx, dirID)
		if err != nil {
			return err
		}
		for g, n := range p.names {
			p.groups[g] = &groupState{mirrorName: n, inMirror: true}
		}
		for g, n := range rosterNames {
			gs := p.groups[g]
			if gs == nil {
				gs = &groupState{}
				p.groups[g] = gs
			}
			gs.rosterName, gs.inRoster = n, true
		}
		return nil
	})
	return p, items, err
}

// loadMirrorUsers reads every membership and every mirror user, giving each
// user the groups they are in through nesting. The membership graph is
// dropped when it returns, before the roster is read.
func loadMirrorUsers(ctx context.Context, rt *store.ReadTx, dirID string, p *plan) error {
	parents := map[string][]string{}
	if err := rt.EachMembership(ctx, dirID, func(m store.MembershipRow) {
		parents[m.MemberID] = append(parents[m.MemberID], m.GroupID)
	}); err != nil {
		return err
	}
	closure := rules.NewClosure(parents, p.names)
	return rt.EachMirrorUser(ctx, dirID, func(u store.MirrorUserLite) {
		u2 := u
		p.users[u.ID] = &userState{mirror: &u2, groups: closure.Of(parents[u.ID])}
	})
}
