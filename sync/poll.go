package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/roster-dev/roster/metrics"
	"github.com/roster-dev/roster/store"
)

// Opener opens the Source of a polled directory from its stored settings.
type Opener func(ctx context.Context, dir *store.Directory, log *slog.Logger) (Source, error)

// GuardSettings is the deletion guard of a polled directory.
type GuardSettings struct {
	MaxRemovals int     `json:"max_removals" yaml:"max_removals"`
	MaxFraction float64 `json:"max_fraction" yaml:"max_fraction"`
}

// Guard defaults, as trusted sync engines set them.
const (
	DefaultMaxRemovals = 500
	DefaultMaxFraction = 0.2
)

// PollSettings are the settings every polled source shares, read from the
// directory's settings JSON.
type PollSettings struct {
	DeletionGuard *GuardSettings `json:"deletion_guard"`
	// FullSyncEvery is how often an incremental source lists everything
	// (to find deletions), e.g. "1h". Default 1h.
	FullSyncEvery string `json:"full_sync_every"`
}

// Review is what a held-back poll would have done, kept on the directory.
type Review struct {
	HeldAt       time.Time `json:"held_at"`
	WouldRemove  int       `json:"would_remove"`
	ActiveBefore int       `json:"active_before"`
	MaxRemovals  int       `json:"max_removals"`
	MaxFraction  float64   `json:"max_fraction"`
	Sample       []string  `json:"sample"` // some of the users who would leave
	// Approved lets the next poll apply removals despite the guard.
	Approved bool `json:"approved,omitempty"`
}

// Poller reads polled sources into the mirror.
type Poller struct {
	Store   *store.Store
	Metrics *metrics.Metrics
	Log     *slog.Logger
	// Openers maps a directory type to its source factory.
	Openers map[string]Opener
	// Trigger asks for a reconcile of the directory after a poll wrote.
	Trigger func(ctx context.Context, dirID string) error
}

// ErrNotPolled is returned for directories that are not polled (SCIM).
var ErrNotPolled = errors.New("directory is not polled")

// Poll reads a directory's source and writes what changed to the mirror. A
// failed or partial read changes nothing but the directory's state; a poll
// that would remove too many members is held for review.
func (p *Poller) Poll(ctx context.Context, dirID string) error {
	dir, err := p.Store.GetDirectory(ctx, dirID)
	if err != nil {
		return fmt.Errorf("poll %s: %w", dirID, err)
	}
	open, ok := p.Openers[dir.Type]
	if !ok {
		return fmt.Errorf("poll %s (%s): %w", dirID, dir.Type, ErrNotPolled)
	}
	log := p.logger().With("directory", dirID, "type", dir.Type)
	var ps PollSettings
	_ = json.Unmarshal(dir.Settings, &ps)
	if dir.State != store.StateNeedsReview {
		p.setState(ctx, dir, store.StateSyncing, "")
	}
	start := time.Now()
	kind, err := p.poll(ctx, dir, ps, open, log)
	if p.Metrics != nil {
		result := "ok"
		switch {
		case errors.Is(err, errHeld):
			result = "held"
		case err != nil:
			result = "error"
		}
		p.Metrics.Polls.WithLabelValues(dir.Type, kind, result).Inc()
		p.Metrics.PollDuration.WithLabelValues(dir.Type, kind).Observe(time.Since(start).Seconds())
	}
	if errors.Is(err, errHeld) {
		return nil
	}
	if err != nil {
		log.Warn("poll failed", "kind", kind, "err", err)
		// Stale beats wrong: the mirror is left as it was.
		if cur, gerr := p.Store.GetDirectory(ctx, dirID); gerr == nil {
			if cur.State != store.StateNeedsReview {
				cur.State = store.StateError
			}
			cur.LastError = err.Error()
			_ = p.Store.UpdateDirectory(ctx, cur)
		}
		return fmt.Errorf("poll %s: %w", dirID, err)
	}
	log.Info("poll done", "kind", kind, "duration", time.Since(start))
	if p.Trigger != nil {
		if err := p.Trigger(ctx, dirID); err != nil {
			log.Warn("trigger reconcile after poll", "err", err)
		}
	}
	return nil
}

var errHeld = errors.New("held by the deletion guard")

func (p *Poller) logger() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.Default()
}

func (p *Poller) setState(ctx context.Context, dir *store.Directory, state, lastErr string) {
	dir.State = state
	if lastErr != "" {
		dir.LastError = lastErr
	}
	if err := p.Store.UpdateDirectory(ctx, dir); err != nil {
		p.logger().Warn("set directory state", "directory", dir.ID, "err", err)
	}
}

func (p *Poller) poll(ctx context.Context, dir *store.Directory, ps PollSettings, open Opener, log *slog.Logger) (string, error) {
	src, err := open(ctx, dir, log)
	if err != nil {
		return "full", fmt.Errorf("connect: %w", err)
	}
	if c, ok := src.(Closer); ok {
		defer c.Close()
	}
	every := time.Hour
	if d, err := time.ParseDuration(ps.FullSyncEvery); err == nil && d > 0 {
		every = d
	}
	if ds, ok := src.(DeltaSource); ok && len(dir.Cursor) > 0 && dir.LastFullAt != nil && time.Since(*dir.LastFullAt) < every {
		delta, cursor, err := ds.Changes(ctx, dir.Cursor)
		if err == nil {
			return "incremental", p.apply(ctx, dir, ps, nil, delta, cursor, false)
		}
		if !errors.Is(err, ErrResync) {
			return "incremental", err
		}
		log.Info("incremental cursor no longer valid; listing everything", "reason", err)
	}
	snap, cursor, err := src.Full(ctx)
	if err != nil {
		return "full", err
	}
	return "full", p.apply(ctx, dir, ps, snap, nil, cursor, true)
}

// mirrorState is what the mirror holds of the entries a poll touches: all
// of them for a full listing, only those named in a delta otherwise.
type mirrorState struct {
	users  map[string]store.MirrorUserLite
	groups map[string]string
	// members of each loaded group, by id
	members map[string]map[string]string
	// memberTypes resolves member ids outside users and groups.
	memberTypes map[string]string
	activeCount int
	// countActive, when set, counts active users on demand (deltas need
	// the count only when they remove someone).
	countActive func() (int, error)
}

// readMirrorFor loads only what a delta touches, so an incremental poll
// costs in proportion to its changes.
func (p *Poller) readMirrorFor(ctx context.Context, dirID string, d *Delta) (*mirrorState, error) {
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

// apply writes a full snapshot or a delta to the mirror in one transaction,
// after the deletion guard had its say.
func (p *Poller) apply(ctx context.Context, dir *store.Directory, ps PollSettings, snap *Snapshot, delta *Delta, cursor json.RawMessage, full bool) error {
	var cur *mirrorState
	var err error
	if snap != nil || delta.Present != nil {
		cur, err = p.readMirror(ctx, dir.ID)
	} else {
		cur, err = p.readMirrorFor(ctx, dir.ID, delta)
	}
	if err != nil {
		return fmt.Errorf("read mirror: %w", err)
	}
	// What the directory should hold after this poll.
	users := map[string]SourceUser{}
	groups := map[string]SourceGroup{}
	deleteUsers := map[string]bool{}
	deleteGroups := map[string]bool{}
	var skipped []Skipped
	if snap != nil {
		for _, u := range snap.Users {
			users[u.ExternalID] = u
		}
		for _, g := range snap.Groups {
			groups[g.ExternalID] = g
		}
		for id := range cur.users {
			if _, ok := users[id]; !ok {
				deleteUsers[id] = true
			}
		}
		for id := range cur.groups {
			if _, ok := groups[id]; !ok {
				deleteGroups[id] = true
			}
		}
		skipped = snap.Skipped
	} else {
		for _, u := range delta.Users {
			users[u.ExternalID] = u
		}
		for _, g := range delta.Groups {
			groups[g.ExternalID] = g
		}
		for _, id := range delta.DeletedUsers {
			if _, ok := cur.users[id]; ok {
				deleteUsers[id] = true
			}
			delete(users, id)
		}
		for _, id := range delta.DeletedGroups {
			if _, ok := cur.groups[id]; ok {
				deleteGroups[id] = true
			}
			delete(groups, id)
		}
		if delta.Present != nil {
			for id := range cur.users {
				if _, ok := delta.Present[id]; !ok {
					if _, up := users[id]; !up {
						deleteUsers[id] = true
					}
				}
			}
			for id := range cur.groups {
				if _, ok := delta.Present[id]; !ok {
					if _, up := groups[id]; !up {
						deleteGroups[id] = true
					}
				}
			}
		}
		skipped = delta.Skipped
	}
	// Deletion guard: count active users who would leave.
	var leaving []string
	for id, u := range cur.users {
		if !u.Active {
			continue
		}
		if deleteUsers[id] {
			leaving = append(leaving, id)
		} else if nu, ok := users[id]; ok && !nu.Active {
			leaving = append(leaving, id)
		}
	}
	activeBefore := cur.activeCount
	if cur.countActive != nil && len(leaving) > 0 {
		if activeBefore, err = cur.countActive(); err != nil {
			return fmt.Errorf("count members: %w", err)
		}
	}
	guard := GuardSettings{MaxRemovals: DefaultMaxRemovals, MaxFraction: DefaultMaxFraction}
	if ps.DeletionGuard != nil {
		if ps.DeletionGuard.MaxRemovals > 0 {
			guard.MaxRemovals = ps.DeletionGuard.MaxRemovals
		}
		if ps.DeletionGuard.MaxFraction > 0 {
			guard.MaxFraction = ps.DeletionGuard.MaxFraction
		}
	}
	var review Review
	_ = json.Unmarshal(dir.Review, &review)
	approved := dir.State == store.StateNeedsReview && review.Approved
	tooMany := len(leaving) > guard.MaxRemovals ||
		(activeBefore > 0 && float64(len(leaving)) > guard.MaxFraction*float64(activeBefore) && len(leaving) > 1)
	if tooMany && !approved {
		return p.hold(ctx, dir, cur, leaving, activeBefore, guard)
	}

	now := time.Now()
	err = p.Store.WithTx(ctx, func(tx *store.Tx) error {
		var fresh []*store.User
		for _, id := range sortedKeys(users) {
			su := users[id]
			old, exists := cur.users[id]
			if exists && old.UserName == su.UserName && old.Email == su.Email && old.DisplayName == su.DisplayName &&
				old.GivenName == su.GivenName && old.FamilyName == su.FamilyName && old.Active == su.Active {
				continue
			}
			u := &store.User{DirectoryID: dir.ID, ID: id, ExternalID: su.ExternalID, UserName: su.UserName, DisplayName: su.DisplayName,
				GivenName: su.GivenName, FamilyName: su.FamilyName, Email: su.Email, Active: su.Active}
			if su.Email != "" {
				u.Emails = []store.Email{{Value: su.Email, Type: "work", Primary: true}}
			}
			u.Resource = sourceResource(su)
			if !exists {
				fresh = append(fresh, u)
				continue
			}
			if prev, err := tx.GetUser(ctx, dir.ID, id); err == nil {
				u.Version, u.CreatedAt = prev.Version, prev.CreatedAt
			}
			if err := tx.PutUser(ctx, u, now); err != nil {
				return fmt.Errorf("user %s: %w", id, err)
			}
		}
		if err := tx.InsertUsers(ctx, fresh, now); err != nil {
			return err
		}
		for _, id := range sortedKeys(deleteUsers) {
			if err := tx.DeleteUser(ctx, dir.ID, id, now); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		// Groups: first make every group exist, then set members, so
		// groups of groups resolve.
		known := func(id string) (string, bool) {
			if _, ok := users[id]; ok {
				return store.MemberUser, true
			}
			if _, ok := groups[id]; ok {
				return store.MemberGroup, true
			}
			if deleteUsers[id] || deleteGroups[id] {
				return "", false
			}
			if _, ok := cur.users[id]; ok {
				return store.MemberUser, true
			}
			if _, ok := cur.groups[id]; ok {
				return store.MemberGroup, true
			}
			if t, ok := cur.memberTypes[id]; ok {
				return t, true
			}
			return "", false
		}
		for _, id := range sortedKeys(groups) {
			sg := groups[id]
			name, exists := cur.groups[id]
			if !exists || name != sg.Name {
				g := &store.Group{DirectoryID: dir.ID, ID: id, ExternalID: sg.ExternalID, DisplayName: sg.Name}
				if exists {
					if prev, err := tx.GetGroup(ctx, dir.ID, id, false); err == nil {
						g.Version, g.CreatedAt = prev.Version, prev.CreatedAt
					}
				}
				if err := tx.PutGroup(ctx, g, now); err != nil {
					return fmt.Errorf("group %s: %w", id, err)
				}
			}
		}
		var newRows []store.MembershipRow
		for _, id := range sortedKeys(groups) {
			sg := groups[id]
			want := map[string]string{}
			for _, m := range sg.Members {
				if t, ok := known(m); ok && m != id {
					want[m] = t
				}
			}
			have := cur.members[id]
			if _, existed := cur.groups[id]; !existed {
				for m, t := range want {
					newRows = append(newRows, store.MembershipRow{GroupID: id, MemberID: m, MemberType: t})
				}
				continue
			}
			var add []store.Member
			var remove []string
			for m, t := range want {
				if _, ok := have[m]; !ok {
					add = append(add, store.Member{ID: m, Type: t})
				}
			}
			for m := range have {
				if _, ok := want[m]; !ok {
					remove = append(remove, m)
				}
			}
			sort.Slice(add, func(i, j int) bool { return add[i].ID < add[j].ID })
			sort.Strings(remove)
			if _, err := tx.RemoveMembers(ctx, dir.ID, id, remove, now); err != nil {
				return err
			}
			if _, err := tx.AddMembers(ctx, dir.ID, id, add, now); err != nil {
				return err
			}
		}
		if err := tx.InsertMemberships(ctx, dir.ID, newRows, now); err != nil {
			return err
		}
		if len(newRows) > 0 {
			// Members of new groups: mark the whole directory when many,
			// else each member.
			if len(newRows) > 5000 {
				if err := tx.MarkDirty(ctx, dir.ID, store.DirtyAll, "", now); err != nil {
					return err
				}
			} else {
				var us []string
				for _, m := range newRows {
					if m.MemberType == store.MemberGroup {
						if err := tx.MarkDirty(ctx, dir.ID, store.DirtySubtree, m.MemberID, now); err != nil {
							return err
						}
						continue
					}
					us = append(us, m.MemberID)
				}
				if err := tx.MarkDirtyMany(ctx, dir.ID, store.DirtyUser, us, now); err != nil {
					return err
				}
			}
		}
		for _, id := range sortedKeys(deleteGroups) {
			if err := tx.DeleteGroup(ctx, dir.ID, id, now); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		d, err := tx.GetDirectory(ctx, dir.ID)
		if err != nil {
			return err
		}
		d.State, d.LastError, d.Review = store.StateOK, "", nil
		if len(skipped) > 0 {
			d.LastError = fmt.Sprintf("%d entries skipped, e.g. %s: %s", len(skipped), skipped[0].ID, skipped[0].Reason)
		}
		t := now.UTC()
		d.LastSyncAt = &t
		if cursor != nil {
			d.Cursor = cursor
			d.CursorKind = cursorKind(cursor)
		} else if full {
			d.Cursor, d.CursorKind = nil, "full"
		}
		if full {
			d.LastFullAt = &t
		}
		if approved {
			b, _ := json.Marshal(map[string]any{"applied_removals": len(leaving), "approved_at": t})
			if err := tx.AppendEvents(ctx, d.TeamID, []store.Event{{DirectoryID: d.ID, Type: EventDirectoryApproved, OccurredAt: t, Data: withIDs(b, d)}}); err != nil {
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
	return nil
}

func withIDs(b []byte, d *store.Directory) json.RawMessage {
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	m["team_id"], m["directory_id"] = d.TeamID, d.ID
	out, _ := json.Marshal(m)
	return out
}

func (p *Poller) hold(ctx context.Context, dir *store.Directory, cur *mirrorState, leaving []string, activeBefore int, guard GuardSettings) error {
	sort.Strings(leaving)
	sample := []string{}
	for _, id := range leaving {
		if len(sample) == 20 {
			break
		}
		u := cur.users[id]
		label := u.Email
		if label == "" {
			label = u.UserName
		}
		sample = append(sample, label)
	}
	rv := Review{HeldAt: time.Now().UTC(), WouldRemove: len(leaving), ActiveBefore: activeBefore, MaxRemovals: guard.MaxRemovals, MaxFraction: guard.MaxFraction, Sample: sample}
	b, _ := json.Marshal(rv)
	wasHeld := dir.State == store.StateNeedsReview
	err := p.Store.WithTx(ctx, func(tx *store.Tx) error {
		d, err := tx.GetDirectory(ctx, dir.ID)
		if err != nil {
			return err
		}
		d.State, d.Review = store.StateNeedsReview, b
		d.LastError = fmt.Sprintf("deletion guard: this poll would remove %d of %d members (limits: %d or %.0f%%); approve it or fix the source",
			len(leaving), activeBefore, guard.MaxRemovals, guard.MaxFraction*100)
		if !wasHeld {
			if err := tx.AppendEvents(ctx, d.TeamID, []store.Event{{DirectoryID: d.ID, Type: EventDirectoryHeld, OccurredAt: rv.HeldAt, Data: withIDs(b, d)}}); err != nil {
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
		p.Metrics.DeletionGuardTrips.WithLabelValues(dir.Type).Inc()
	}
	p.logger().Warn("poll held by the deletion guard", "directory", dir.ID, "would_remove", len(leaving), "active", activeBefore)
	return errHeld
}

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

// ErrNothingToApprove is returned by Approve when no poll is held.
var ErrNothingToApprove = errors.New("no poll is held for review")

func cursorKind(c json.RawMessage) string {
	var k struct {
		Kind string `json:"kind"`
	}
	if json.Unmarshal(c, &k) == nil && k.Kind != "" {
		return k.Kind
	}
	return "incremental"
}

func sourceResource(u SourceUser) json.RawMessage {
	r := map[string]any{"userName": u.UserName, "active": u.Active}
	if u.ExternalID != "" {
		r["externalId"] = u.ExternalID
	}
	if u.DisplayName != "" {
		r["displayName"] = u.DisplayName
	}
	if u.GivenName != "" || u.FamilyName != "" {
		r["name"] = map[string]any{"givenName": u.GivenName, "familyName": u.FamilyName}
	}
	if u.Email != "" {
		r["emails"] = []any{map[string]any{"value": u.Email, "type": "work", "primary": true}}
	}
	if len(u.Attrs) > 0 {
		r["urn:roster:source"] = u.Attrs
	}
	b, _ := json.Marshal(r)
	return b
}
