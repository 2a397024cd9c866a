package reconcile

import (
	"context"
	"slices"
	"time"

	"github.com/roster-dev/roster/store"
)

// Spend-limit changes are written here, with what they invalidate, so that
// one place decides which members a change can move: a team default can
// move every member of every directory of the team; a group's limit, the
// members under the group (nested groups included). The caller triggers a
// reconcile of Pending.Directories and may Wait for the roster to show it.

// Pending names what a change left for the reconciler: the pending items
// whose consumption means the roster shows the change.
type Pending struct {
	items []pendingItem
}

type pendingItem struct {
	dirID, kind, objectID string
}

// Directories returns the directories to reconcile, each once, sorted.
func (p Pending) Directories() []string {
	var out []string
	for _, it := range p.items {
		out = append(out, it.dirID)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// waitPoll is how often Wait looks at the pending items: short, since the
// reconcile it waits for usually takes a few milliseconds.
const waitPoll = 5 * time.Millisecond

// Wait returns once the reconciler has consumed every item, or when ctx is
// done (give it a deadline: an API answer waits boundedly). A store error
// ends the wait early. Either way the change itself is safe in the store.
func (p Pending) Wait(ctx context.Context, s *store.Store) error {
	for _, it := range p.items {
		for {
			left, err := s.PendingItem(ctx, it.dirID, it.kind, it.objectID)
			if err != nil {
				return err
			}
			if !left {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(waitPoll):
			}
		}
	}
	return nil
}

// SetTeamDefault sets a team's default spend limit (nil is unlimited) and,
// in the same transaction, marks every directory of the team for a full
// reconcile: any member may fall back on the default. It returns the
// updated team, or store.ErrNotFound.
func SetTeamDefault(ctx context.Context, s *store.Store, teamID string, cents *int64) (*store.Team, Pending, error) {
	var (
		team    *store.Team
		pending Pending
	)
	err := s.WithTx(ctx, func(tx *store.Tx) error {
		t, err := tx.GetTeam(ctx, teamID)
		if err != nil {
			return err
		}
		t.DefaultLimitCents = cents
		if err := tx.UpdateTeam(ctx, t); err != nil {
			return err
		}
		dirs, err := s.ListDirectories(ctx, t.ID)
		if err != nil {
			return err
		}
		now := time.Now()
		pending = Pending{}
		for _, d := range dirs {
			if err := tx.MarkDirty(ctx, d.ID, store.DirtyAll, "", now); err != nil {
				return err
			}
			pending.items = append(pending.items, pendingItem{d.ID, store.DirtyAll, ""})
		}
		team = t
		return nil
	})
	if err != nil {
		return nil, Pending{}, err
	}
	return team, pending, nil
}

// SetGroupLimit sets (has) or removes a group's spend limit (cents nil with
// has is unlimited) and, in the same transaction, marks the members under
// the group. It returns store.ErrNotFound when the team has no such group.
func SetGroupLimit(ctx context.Context, s *store.Store, teamID, groupID string, has bool, cents *int64) (Pending, error) {
	var dirID string
	err := s.WithTx(ctx, func(tx *store.Tx) error {
		var err error
		if dirID, err = tx.GroupDirectory(ctx, teamID, groupID); err != nil {
			return err
		}
		if err := tx.SetGroupLimit(ctx, teamID, groupID, has, cents); err != nil {
			return err
		}
		return tx.MarkDirty(ctx, dirID, store.DirtySubtree, groupID, time.Now())
	})
	if err != nil {
		return Pending{}, err
	}
	return Pending{items: []pendingItem{{dirID, store.DirtySubtree, groupID}}}, nil
}
