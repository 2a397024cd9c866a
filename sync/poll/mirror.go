package poll

import (
	"context"

	"github.com/roster-dev/roster/store"
)

// mirrorState is what the mirror holds of the entries a poll touches: all
// of them for a full listing, only those named in a delta otherwise.
type mirrorState struct {
	users  map[string]store.MirrorUserLite
	groups map[string]string // group id → name
	// members of each loaded group: member id → member type
	members map[string]map[string]string
	// memberTypes resolves member ids named by the listing that are
	// neither loaded users nor loaded groups.
	memberTypes map[string]string
	activeCount int
	// countActive, when set, counts active users on demand: a delta
	// needs the count only when it removes someone.
	countActive func() (int, error)
}

// active returns how many active members the directory has before the
// poll, for the deletion guard's fraction; leaving is how many the poll
// would remove.
func (ms *mirrorState) active(leaving int) (int, error) {
	if ms.countActive != nil && leaving > 0 {
		return ms.countActive()
	}
	return ms.activeCount, nil
}

// loadMirror reads what planning the listing needs: the whole mirror, or
// only what a delta names, so that an incremental poll costs in proportion
// to its changes.
func (p *Poller) loadMirror(ctx context.Context, dirID string, l listing) (*mirrorState, error) {
	if l.needsWholeMirror() {
		return p.readMirror(ctx, dirID)
	}
	return p.readMirrorFor(ctx, dirID, l)
}

// readMirrorFor loads the users and groups a delta names, the current
// members of the groups it lists, and the types of the other members it
// names.
func (p *Poller) readMirrorFor(ctx context.Context, dirID string, l listing) (*mirrorState, error) {
	d := l.delta
	ms := &mirrorState{members: map[string]map[string]string{}}
	var userIDs, groupIDs []string
	for _, u := range d.Users {
		userIDs = append(userIDs, u.ExternalID)
	}
	userIDs = append(userIDs, d.DeletedUsers...)
	for _, g := range d.Groups {
		groupIDs = append(groupIDs, g.ExternalID)
	}
	groupIDs = append(groupIDs, d.DeletedGroups...)
	var err error
	if ms.users, err = p.Store.MirrorUsersLite(ctx, dirID, userIDs); err != nil {
		return nil, err
	}
	if ms.groups, err = p.Store.MirrorGroupNamesFor(ctx, dirID, groupIDs); err != nil {
		return nil, err
	}
	inDelta := map[string]bool{}
	for _, id := range userIDs {
		inDelta[id] = true
	}
	for _, id := range groupIDs {
		inDelta[id] = true
	}
	var others []string
	for _, g := range d.Groups {
		if _, ok := ms.groups[g.ExternalID]; ok {
			cur, err := p.Store.ListMembers(ctx, dirID, g.ExternalID)
			if err != nil {
				return nil, err
			}
			set := make(map[string]string, len(cur))
			for _, m := range cur {
				set[m.ID] = m.Type
			}
			ms.members[g.ExternalID] = set
		}
		for _, m := range g.Members {
			if !inDelta[m] {
				inDelta[m] = true
				others = append(others, m)
			}
		}
	}
	if ms.memberTypes, err = p.Store.MemberTypes(ctx, dirID, others); err != nil {
		return nil, err
	}
	ms.countActive = func() (int, error) { return p.Store.CountActiveUsers(ctx, dirID) }
	return ms, nil
}

// readMirror loads every user, group and membership of the directory from
// one consistent snapshot.
func (p *Poller) readMirror(ctx context.Context, dirID string) (*mirrorState, error) {
	ms := &mirrorState{users: map[string]store.MirrorUserLite{}, members: map[string]map[string]string{}}
	err := p.Store.ReadSnapshot(ctx, func(rt *store.ReadTx) error {
		if err := rt.EachMirrorUser(ctx, dirID, func(u store.MirrorUserLite) {
			ms.users[u.ID] = u
			if u.Active {
				ms.activeCount++
			}
		}); err != nil {
			return err
		}
		var err error
		if ms.groups, err = rt.MirrorGroupNames(ctx, dirID); err != nil {
			return err
		}
		return rt.EachMembership(ctx, dirID, func(m store.MembershipRow) {
			set := ms.members[m.GroupID]
			if set == nil {
				set = map[string]string{}
				ms.members[m.GroupID] = set
			}
			set[m.MemberID] = m.MemberType
		})
	})
	return ms, err
}
