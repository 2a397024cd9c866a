package poll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/roster-dev/roster/metrics"
	"github.com/roster-dev/roster/store"
	"github.com/roster-dev/roster/sync/rules"
)

// reviewSample is how many of the users a held poll would remove the
// review names, enough for an admin to recognise what went wrong.
const reviewSample = 20

// Review is what a held-back poll would have done, kept on the directory.
type Review = rules.Review

// hold records a poll the deletion guard held back: the directory goes to
// needs_review with what the poll would remove, and the feed says so once
// (a poll held again while the review is open appends nothing). The mirror
// is not touched.
func (p *Poller) hold(ctx context.Context, dir *store.Directory, cur *mirrorState, leaving []string, active int, guard rules.Guard) error {
	sample := []string{}
	for _, id := range leaving {
		if len(sample) == reviewSample {
			break
		}
		u := cur.users[id]
		label := u.Email
		if label == "" {
			label = u.UserName
		}
		sample = append(sample, label)
	}
	rv := Review{HeldAt: time.Now().UTC(), WouldRemove: len(leaving), ActiveBefore: active,
		MaxRemovals: guard.MaxRemovals, MaxFraction: guard.MaxFraction, Sample: sample}
	b, _ := json.Marshal(rv)
	wasHeld := dir.State == store.StateNeedsReview
	err := p.Store.WithTx(ctx, func(tx *store.Tx) error {
		d, err := tx.GetDirectory(ctx, dir.ID)
		if err != nil {
			return err
		}
		d.State, d.Review = store.StateNeedsReview, b
		d.LastError = fmt.Sprintf("deletion guard: this poll would remove %d of %d members (limits: %d or %.0f%%); approve it or fix the source",
			len(leaving), active, guard.MaxRemovals, guard.MaxFraction*100)
		if !wasHeld {
			ev := store.Event{DirectoryID: d.ID, Type: EventDirectoryHeld, OccurredAt: rv.HeldAt, Data: withIDs(b, d)}
			if err := tx.AppendEvents(ctx, d.TeamID, []store.Event{ev}); err != nil {
				return err
			}
		}
		if err := tx.UpdateDirectory(ctx, d); err != nil {
			return err
		}
		*dir = *d
		return nil
	})
	if err != nil {
		return err
	}
	if p.Metrics != nil && !wasHeld {
		p.Metrics.DeletionGuardHolds.WithLabelValues(dir.Type, metrics.GuardPoll).Inc()
	}
	return errHeld
}

// ErrNothingToApprove is returned by Approve when no poll is held.
var ErrNothingToApprove = errors.New("no poll is held for review")

// Approve lets the next poll of a held directory apply its removals.
func Approve(ctx context.Context, s *store.Store, dirID string) error {
	return s.WithTx(ctx, func(tx *store.Tx) error {
		d, err := tx.GetDirectory(ctx, dirID)
		if err != nil {
			return err
		}
		if d.State != store.StateNeedsReview {
			return ErrNothingToApprove
		}
		var rv Review
		_ = json.Unmarshal(d.Review, &rv)
		rv.Approved = true
		d.Review, _ = json.Marshal(rv)
		return tx.UpdateDirectory(ctx, d)
	})
}
