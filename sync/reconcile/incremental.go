package reconcile

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/roster-dev/roster/store"
	"github.com/roster-dev/roster/sync/rules"
)

// chunkItems is how many pending items one incremental transaction takes.
// The transaction holds SQLite's single writer, and every SCIM write waits
// while it runs; in small chunks the requests' batches interleave with a
// long run instead of queueing behind it.
const chunkItems = 64

// incrementalChunks applies what is pending in transactions of chunkItems
// items each, until nothing is left (or a full run is due).
func (r *Reconciler) incrementalChunks(ctx context.Context, dirID string) (Result, error) {
	n, err := r.Store.CountDirty(ctx, dirID)
	if err != nil {
		return Result{}, err
	}
	if n > r.incrementalMax() {
		return Result{}, errUseFull // in bulk a full run is cheaper
	}
	total := Result{Mode: "none"}
	// As many chunks as were pending when the run began: items marked
	// since are left to the follow-up run their writes triggered, so a
	// steady stream of writes cannot keep one run going.
	for chunks := n/chunkItems + 1; chunks > 0; chunks-- {
		res, more, err := r.incremental(ctx, dirID, chunkItems)
		if err != nil {
			return total, err
		}
		if res.Mode != "none" {
			total.Mode = res.Mode
		}
		total.add(res)
		if !more {
			break
		}
	}
	return total, nil
}

// incremental applies up to maxItems pending items in one transaction:
// readPending says which members they touch, loadIncremental reads those
// members' mirror and roster state into a plan, the plan computes the
// changes, and apply writes them. more reports that items are left.
func (r *Reconciler) incremental(ctx context.Context, dirID string, maxItems int) (res Result, more bool, err error) {
	var (
		dir     *store.Directory
		pending *pendingSet
		changes *store.RosterChanges
		guard   *scimGuard
	)
	err = r.Store.WithTx(ctx, func(tx *store.Tx) error {
		var err error
		if dir, err = tx.GetDirectory(ctx, dirID); err != nil {
			return err
		}
		if pending, err = readPending(ctx, tx, dirID, maxItems, r.incrementalMax()); err != nil || len(pending.items) == 0 {
			return err
		}
		team, err := tx.GetTeam(ctx, dir.TeamID)
		if err != nil {
			return err
		}
		if err := pending.addLimitSources(ctx, tx, team.ID, dirID, r.incrementalMax()); err != nil {
			return err
		}
		p, err := loadIncremental(ctx, tx, team, dir, pending)
		if err != nil {
			return err
		}
		now := time.Now()
		if guard, err = decide(ctx, tx, dir, p, now); err != nil {
			return err
		}
		changes = p.changes()
		r.beforeApply(dirID)
		if err := apply(ctx, tx, team.ID, dirID, changes, pending.items); err != nil {
			return err
		}
		if err := settle(ctx, tx, dir, guard, changes, now); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return Result{Mode: "incremental"}, false, err
	}
	r.observeGuard(dir, guard)
	// A run with nothing pending is a successful reconcile too: it
	// updates the directory's last-reconcile time.
	var events []store.Event
	if changes != nil {
		events = changes.Events
	}
	r.afterApply(dirID, dir.Type, pending.items, events)
	res = Result{Mode: "none", TeamID: dir.TeamID, Type: dir.Type}
	if len(pending.items) == 0 {
		return res, false, nil
	}
	res.Mode, res.Pending = "incremental", len(pending.items)
	res.counted(changes, guard)
	return res, pending.more, nil
}

// pendingSet is one chunk of a directory's pending items and the members
// and groups they name.
type pendingSet struct {
	items  []store.DirtyRow
	more   bool            // items are left after this chunk
	users  map[string]bool // members to recompute
	groups map[string]bool // groups created, renamed or deleted
}

// readPending takes up to maxItems pending items and expands them to the
// members they concern: a user item is that user, a subtree item every user
// under the group. It returns errUseFull when an item asks for a full run
// or the members exceed limitMax.
func readPending(ctx context.Context, tx *store.Tx, dirID string, maxItems, limitMax int) (*pendingSet, error) {
	items, err := tx.PendingDirtyFirst(ctx, dirID, maxItems+1)
	if err != nil {
		return nil, err
	}
	ps := &pendingSet{items: items, users: map[string]bool{}, groups: map[string]bool{}}
	if len(items) > maxItems {
		ps.items, ps.more = items[:maxItems], true
	}
	for _, it := range ps.items {
		switch it.Kind {
		case store.DirtyAll:
			return nil, errUseFull
		case store.DirtyUser:
			ps.users[it.ObjectID] = true
		case store.DirtyGroup:
			ps.groups[it.ObjectID] = true
		case store.DirtySubtree:
			under, err := tx.UsersUnder(ctx, dirID, it.ObjectID)
			if err != nil {
				return nil, err
			}
			for _, u := range under {
				ps.users[u] = true
			}
		}
		if len(ps.users) > limitMax {
			return nil, errUseFull
		}
	}
	return ps, nil
}

// addLimitSources adds the members under each pending group that sets a
// spend limit: renaming such a group renames the limit source of everyone
// under it.
func (ps *pendingSet) addLimitSources(ctx context.Context, tx *store.Tx, teamID, dirID string, limitMax int) error {
	withLimits, err := tx.GroupLimitsFor(ctx, teamID, slices.Sorted(maps.Keys(ps.groups)))
	if err != nil {
		return err
	}
	for g := range ps.groups {
		if _, ok := withLimits[g]; !ok {
			continue
		}
		under, err := tx.UsersUnder(ctx, dirID, g)
		if err != nil {
			return err
		}
		for _, u := range under {
			ps.users[u] = true
		}
	}
	if len(ps.users) > limitMax {
		return errUseFull
	}
	return nil
}

// loadIncremental reads what planning the pending members needs: their
// mirror entries and every group above them, their roster rows and links,
// the names and limits of every group involved (old and new groups, the
// pending groups, the limit sources), and the pending groups' roster names.
func loadIncremental(ctx context.Context, tx *store.Tx, team *store.Team, dir *store.Directory, ps *pendingSet) (*plan, error) {
	dirID := dir.ID
	p := &plan{team: team, dir: dir, users: map[string]*userState{}, groups: map[string]*groupState{}}
	ids := slices.Sorted(maps.Keys(ps.users))
	mirror, err := tx.MirrorUsersLite(ctx, dirID, ids)
	if err != nil {
		return nil, err
	}
	parents, walked, err := parentsOf(ctx, tx, dirID, ids)
	if err != nil {
		return nil, err
	}
	cur, err := tx.RosterMembers(ctx, dirID, ids)
	if err != nil {
		return nil, err
	}
	curLinks, err := tx.MemberGroupsOf(ctx, dirID, ids)
	if err != nil {
		return nil, err
	}
	involved := maps.Clone(walked)
	for _, gs := range curLinks {
		for _, g := range gs {
			involved[g] = true
		}
	}
	for g := range ps.groups {
		involved[g] = true
	}
	gids := slices.Sorted(maps.Keys(involved))
	if p.names, err = tx.MirrorGroupNamesFor(ctx, dirID, gids); err != nil {
		return nil, err
	}
	if p.limits, err = tx.GroupLimitsFor(ctx, team.ID, gids); err != nil {
		return nil, err
	}
	rosterNames, err := tx.RosterGroupsFor(ctx, dirID, slices.Sorted(maps.Keys(ps.groups)))
	if err != nil {
		return nil, err
	}
	for g := range ps.groups {
		gs := &groupState{}
		gs.mirrorName, gs.inMirror = p.names[g]
		gs.rosterName, gs.inRoster = rosterNames[g]
		p.groups[g] = gs
	}
	closure := rules.NewClosure(parents, p.names)
	for _, id := range ids {
		us := &userState{cur: cur[id], curGroups: curLinks[id]}
		if m, ok := mirror[id]; ok {
			us.mirror = &m
			us.groups = closure.Of(parents[id])
		}
		p.users[id] = us
	}
	return p, nil
}

// parentsOf walks up the group graph from ids, one query per level, and
// returns each walked id's direct groups and every id walked (ids
// included). Each group is queried once, so cycles end the walk.
func parentsOf(ctx context.Context, tx *store.Tx, dirID string, ids []string) (map[string][]string, map[string]bool, error) {
	parents := map[string][]string{}
	walked := map[string]bool{}
	frontier := ids
	for len(frontier) > 0 {
		ps, err := tx.ParentGroups(ctx, dirID, frontier)
		if err != nil {
			return nil, nil, err
		}
		for _, id := range frontier {
			walked[id] = true
		}
		var next []string
		for child, gs := range ps {
			parents[child] = gs
			for _, g := range gs {
				if !walked[g] {
					walked[g] = true
					next = append(next, g)
				}
			}
		}
		frontier = next
	}
	return parents, walked, nil
}
