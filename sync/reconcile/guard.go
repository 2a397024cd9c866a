package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/roster-dev/roster/connectors"
	"github.com/roster-dev/roster/metrics"
	"github.com/roster-dev/roster/store"
	"github.com/roster-dev/roster/sync/rules"
)

// The SCIM deletion guard. An identity provider pushes removals one request
// at a time, so no single request looks like a mass unassign; the guard
// counts the members that left a SCIM directory's roster within a window
// instead. Once a run would push that count past the limits, the run's
// removals are held: the mirror already records the truth, the members stay
// on the roster marked pending removal, and the directory goes to
// needs_review with the poll guard's review, event and metric. While the
// review is open every removal is held. It closes when no member is pending
// any more: an admin approved (the next run applies the removals) or the
// identity provider brought everyone back.
//
// The held state is the members' pending_removal flag and the directory's
// state and review, all in the store, so a restart keeps it. Every run
// recomputes from the mirror, so a person the identity provider brings back
// is simply wanted again and no longer pending.

// reviewSample is how many held members the review names.
const reviewSample = 20

// scimGuard is one run's view of a SCIM directory's deletion guard.
type scimGuard struct {
	limits   rules.Guard
	window   time.Duration
	held     bool // the directory's review is open and not approved
	approved bool // an admin approved the open review
	tripped  bool // this run opened the review
	recent   int  // removals applied within the window before this run
	review   rules.Review
}

// guardOf returns the deletion guard of a SCIM directory that has it on,
// else nil.
func guardOf(dir *store.Directory) *scimGuard {
	if dir.Type != "scim" {
		return nil
	}
	g := connectors.LoadSCIMSettings(dir.Settings).DeletionGuard
	if !g.Enabled {
		return nil
	}
	n, f, w := g.Limits()
	sg := &scimGuard{limits: rules.Guard{MaxRemovals: n, MaxFraction: f, FractionFloor: connectors.SCIMFractionFloor}, window: w}
	if dir.State == store.StateNeedsReview {
		_ = json.Unmarshal(dir.Review, &sg.review)
		sg.approved = sg.review.Approved
		sg.held = !sg.approved
	}
	return sg
}

// leaving lists the members a plan would take off the roster that are not
// already held.
func (p *plan) leaving() []string {
	var out []string
	for id, u := range p.users {
		if u.cur != nil && !u.cur.PendingRemoval && (u.mirror == nil || !u.mirror.Active) {
			out = append(out, id)
		}
	}
	return out
}

// decide sets whether the plan's removals are held, inside the writing
// transaction (dir is the row it locked). It returns nil when the
// directory has no guard on.
func decide(ctx context.Context, tx *store.Tx, dir *store.Directory, p *plan, now time.Time) (*scimGuard, error) {
	g := guardOf(dir)
	p.hold = false
	if g == nil {
		return nil, nil
	}
	switch {
	case g.approved:
		return g, nil
	case g.held:
		p.hold = true
		return g, replaced(ctx, tx, dir, p)
	}
	leaving := len(p.leaving())
	if leaving == 0 {
		return g, nil
	}
	recent, err := tx.CountRemovals(ctx, dir.ID, now.Add(-g.window))
	if err != nil {
		return nil, err
	}
	counts, err := tx.CountGuard(ctx, dir.ID)
	if err != nil {
		return nil, err
	}
	g.recent = recent
	// The directory's size is taken at the start of the window: the
	// members now, and those who left within it.
	if g.limits.Holds(recent+leaving, counts.Members+recent) {
		p.hold, g.tripped = true, true
	}
	return g, nil
}

// replaced adds to a held plan the members pending removal whom the plan
// adds again under a new id with the same email (an identity provider that
// deleted a person and then created them anew with POST): the person is
// back, so the held entry is removed rather than kept pending beside them.
func replaced(ctx context.Context, tx *store.Tx, dir *store.Directory, p *plan) error {
	var emails []string
	for _, u := range p.users {
		if u.cur == nil && u.mirror != nil && u.mirror.Active && u.mirror.Email != "" {
			emails = append(emails, u.mirror.Email)
		}
	}
	if len(emails) == 0 {
		return nil
	}
	held, err := tx.PendingMembersByEmail(ctx, dir.ID, emails)
	if err != nil {
		return err
	}
	for _, m := range held {
		if us := p.users[m.UserID]; us != nil && us.mirror != nil && us.mirror.Active {
			continue // wanted again under its own id
		}
		p.users[m.UserID] = &userState{cur: m, replaced: true}
	}
	return nil
}

// settle records what a run did with the guard, in its transaction after
// the roster was written: the removals it applied go to the log; a held run
// opens or refreshes the review; a directory with nothing pending any more
// closes it (with the approval event when an admin approved). The guard is
// settled for a SCIM directory under review even once the guard is off, so
// turning it off while removals are held does not leave the review open.
func settle(ctx context.Context, tx *store.Tx, dir *store.Directory, g *scimGuard, c *store.RosterChanges, now time.Time) error {
	if g != nil && len(c.DeleteMembers) > 0 {
		if err := tx.LogRemovals(ctx, dir.ID, c.DeleteMembers, now, now.Add(-g.window)); err != nil {
			return err
		}
	}
	if dir.Type != "scim" || (dir.State != store.StateNeedsReview && (g == nil || !g.tripped)) {
		return nil
	}
	counts, err := tx.CountGuard(ctx, dir.ID)
	if err != nil {
		return err
	}
	if counts.Pending == 0 {
		var open rules.Review
		_ = json.Unmarshal(dir.Review, &open)
		approved := dir.State == store.StateNeedsReview && open.Approved
		dir.State, dir.Review, dir.LastError = store.StateOK, nil, ""
		if approved {
			b, _ := json.Marshal(map[string]any{"applied_removals": len(c.DeleteMembers), "approved_at": now.UTC(),
				"team_id": dir.TeamID, "directory_id": dir.ID})
			ev := store.Event{DirectoryID: dir.ID, Type: rules.EventDirectoryApproved, OccurredAt: now.UTC(), Data: b}
			if err := tx.AppendEvents(ctx, dir.TeamID, []store.Event{ev}); err != nil {
				return err
			}
			// The approved removals are the admin's decision: they do not
			// count against the next window.
			if err := tx.ForgetRemovals(ctx, dir.ID); err != nil {
				return err
			}
		}
		return tx.UpdateDirectory(ctx, dir)
	}
	if g == nil || g.approved {
		// Approved but not all applied yet (this run saw only some of
		// the held members): the next run goes on.
		return nil
	}
	sample, err := tx.PendingRemovals(ctx, dir.ID, reviewSample)
	if err != nil {
		return err
	}
	rv := g.review
	if g.tripped {
		rv = rules.Review{HeldAt: now.UTC(), ActiveBefore: counts.Members + g.recent}
	}
	rv.WouldRemove, rv.Sample = counts.Pending, sample
	rv.MaxRemovals, rv.MaxFraction = g.limits.MaxRemovals, g.limits.MaxFraction
	b, _ := json.Marshal(rv)
	dir.State, dir.Review = store.StateNeedsReview, b
	dir.LastError = fmt.Sprintf("deletion guard: the identity provider removed %d members within %s (limits: %d or %.0f%% of %d); %d removals are held, approve them or fix the assignment in the identity provider",
		counts.Pending+g.recent, g.window, g.limits.MaxRemovals, g.limits.MaxFraction*100, rv.ActiveBefore, counts.Pending)
	if g.tripped {
		var data map[string]any
		_ = json.Unmarshal(b, &data)
		data["team_id"], data["directory_id"] = dir.TeamID, dir.ID
		eb, _ := json.Marshal(data)
		ev := store.Event{DirectoryID: dir.ID, Type: rules.EventDirectoryHeld, OccurredAt: rv.HeldAt, Data: eb}
		if err := tx.AppendEvents(ctx, dir.TeamID, []store.Event{ev}); err != nil {
			return err
		}
	}
	return tx.UpdateDirectory(ctx, dir)
}

// observeGuard counts a trip once its run committed.
func (r *Reconciler) observeGuard(dir *store.Directory, g *scimGuard) {
	if g == nil || !g.tripped {
		return
	}
	if r.Metrics != nil {
		r.Metrics.DeletionGuardHolds.WithLabelValues(dir.Type, metrics.GuardSCIM).Inc()
	}
}
