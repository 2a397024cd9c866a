package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/roster-dev/roster/metrics"
	"github.com/roster-dev/roster/store"
)

// Event types of the feed.
const (
	EventMemberAdded       = "member.added"
	EventMemberRemoved     = "member.removed"
	EventMemberUpdated     = "member.updated"
	EventGroupCreated      = "group.created"
	EventGroupRenamed      = "group.renamed"
	EventGroupDeleted      = "group.deleted"
	EventMembershipAdded   = "membership.added"
	EventMembershipRemoved = "membership.removed"
	EventLimitChanged      = "spend_limit.changed"
	EventDirectoryHeld     = "directory.needs_review"
	EventDirectoryApproved = "directory.approved"
)

// Reconciler makes a directory's roster match its mirror and the team's spend
// policy. It is level-triggered: it reads what is pending and applies the
// difference and its events in one transaction, so running it again, or
// after a crash, changes nothing more.
type Reconciler struct {
	Store   *store.Store
	Metrics *metrics.Metrics
	Log     *slog.Logger
	// IncrementalMax is the number of pending users above which a run
	// reads the whole directory instead (cheaper in bulk). Default 20,000.
	IncrementalMax int
	// BeforeApply, when set, runs after the changes are computed and before
	// they are written (tests use it to crash or stall mid-run).
	BeforeApply func(dirID string)
}

// Result says what a reconcile did.
type Result struct {
	Mode    string // "incremental", "full" or "none"
	Changes int    // roster events written
	Pending int    // pending items consumed
}

// Reconcile applies what is pending for one directory. A directory marked
// wholly dirty, or with many pending users, is reconciled in full.
func (r *Reconciler) Reconcile(ctx context.Context, dirID string) (Result, error) {
	start := time.Now()
	res, err := r.incrementalChunks(ctx, dirID)
	if errors.Is(err, errUseFull) {
		res, err = r.full(ctx, dirID)
	}
	r.observe(res.Mode, start, err)
	if err != nil {
		return res, fmt.Errorf("reconcile %s: %w", dirID, err)
	}
	return res, nil
}

// Full reconciles the whole directory, pending or not (the safety net).
func (r *Reconciler) Full(ctx context.Context, dirID string) (Result, error) {
	start := time.Now()
	res, err := r.full(ctx, dirID)
	r.observe("full", start, err)
	if err != nil {
		return res, fmt.Errorf("full reconcile %s: %w", dirID, err)
	}
	return res, nil
}

func (r *Reconciler) observe(mode string, start time.Time, err error) {
	if r.Metrics == nil || mode == "" {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	r.Metrics.Reconciles.WithLabelValues(mode, result).Inc()
	r.Metrics.ReconcileDuration.WithLabelValues(mode).Observe(time.Since(start).Seconds())
}

var errUseFull = errors.New("use full reconcile")

func (r *Reconciler) logger() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.Default()
}

func (r *Reconciler) incrementalMax() int {
	if r.IncrementalMax > 0 {
		return r.IncrementalMax
	}
	return 20000
}

// chunkItems is how many pending items one incremental transaction takes.
// The transaction holds SQLite's single writer; under a stream of SCIM
// writes a run of a few hundred users held it for milliseconds while every
// request waited. In chunks the requests' batches interleave with the run.
const chunkItems = 64

// incrementalChunks applies what is pending in transactions of chunkItems
// items each, until nothing is left (or a full run is due).
func (r *Reconciler) incrementalChunks(ctx context.Context, dirID string) (Result, error) {
	limitMax := r.incrementalMax()
	n, err := r.Store.CountDirty(ctx, dirID)
	if err != nil {
		return Result{}, err
	}
	if n > limitMax {
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
		total.Changes += res.Changes
		total.Pending += res.Pending
		if !more {
			break
		}
	}
	return total, nil
}

func (r *Reconciler) incremental(ctx context.Context, dirID string, maxItems int) (Result, bool, error) {
	res := Result{Mode: "incremental"}
	more := false
	var applied []store.DirtyRow
	var dirType string
	var nEvents int
	var evTypes []string
	err := r.Store.WithTx(ctx, func(tx *store.Tx) error {
		dir, err := tx.GetDirectory(ctx, dirID)
		if err != nil {
			return err
		}
		dirType = dir.Type
		items, err := tx.PendingDirtyFirst(ctx, dirID, maxItems+1)
		if err != nil {
			return err
		}
		if len(items) > maxItems {
			items, more = items[:maxItems], true
		}
		if len(items) == 0 {
			res.Mode = "none"
			return nil
		}
		limitMax := r.incrementalMax()
		users := map[string]bool{}
		groups := map[string]bool{}
		for _, it := range items {
			switch it.Kind {
			case store.DirtyAll:
				return errUseFull
			case store.DirtyUser:
				users[it.ObjectID] = true
			case store.DirtyGroup:
				groups[it.ObjectID] = true
			case store.DirtySubtree:
				under, err := tx.UsersUnder(ctx, dirID, it.ObjectID)
				if err != nil {
					return err
				}
				for _, u := range under {
					users[u] = true
				}
			}
			if len(users) > limitMax {
				return errUseFull
			}
		}
		team, err := tx.GetTeam(ctx, dir.TeamID)
		if err != nil {
			return err
		}
		p := &plan{team: team, dir: dir, users: map[string]*userState{}, groups: map[string]*groupState{}}
		// A renamed group that sets limits renames the limit source of
		// everyone under it.
		dirtyLimits, err := tx.GroupLimitsFor(ctx, team.ID, keys(groups))
		if err != nil {
			return err
		}
		for g := range groups {
			if _, ok := dirtyLimits[g]; !ok {
				continue
			}
			under, err := tx.UsersUnder(ctx, dirID, g)
			if err != nil {
				return err
			}
			for _, u := range under {
				users[u] = true
			}
		}
		if len(users) > limitMax {
			return errUseFull
		}
		ids := keys(users)
		mirror, err := tx.MirrorUsersLite(ctx, dirID, ids)
		if err != nil {
			return err
		}
		parents := map[string][]string{}
		frontier := ids
		queried := map[string]bool{}
		for len(frontier) > 0 {
			ps, err := tx.ParentGroups(ctx, dirID, frontier)
			if err != nil {
				return err
			}
			var next []string
			for _, id := range frontier {
				queried[id] = true
			}
			for child, gs := range ps {
				parents[child] = gs
				for _, g := range gs {
					if !queried[g] {
						queried[g] = true
						next = append(next, g)
					}
				}
			}
			frontier = next
		}
		cur, err := tx.RosterMembers(ctx, dirID, ids)
		if err != nil {
			return err
		}
		curLinks, err := tx.MemberGroupsOf(ctx, dirID, ids)
		if err != nil {
			return err
		}
		// Names of every group involved: the users' groups old and new,
		// the dirty groups, the limit sources.
		involved := map[string]bool{}
		for g := range queried {
			involved[g] = true
		}
		for _, gs := range curLinks {
			for _, g := range gs {
				involved[g] = true
			}
		}
		for g := range groups {
			involved[g] = true
		}
		gids := keys(involved)
		if p.names, err = tx.MirrorGroupNamesFor(ctx, dirID, gids); err != nil {
			return err
		}
		if p.limits, err = tx.GroupLimitsFor(ctx, team.ID, gids); err != nil {
			return err
		}
		rosterNames, err := tx.RosterGroupsFor(ctx, dirID, keys(groups))
		if err != nil {
			return err
		}
		for g := range groups {
			gs := &groupState{}
			gs.mirrorName, gs.inMirror = p.names[g]
			gs.rosterName, gs.inRoster = rosterNames[g]
			p.groups[g] = gs
		}
		memo := map[string][]string{}
		for _, id := range ids {
			us := &userState{cur: cur[id], curGroups: curLinks[id]}
			if m, ok := mirror[id]; ok {
				us.mirror = &m
				us.groups = closure(parents[id], parents, p.names, memo)
			}
			p.users[id] = us
		}
		changes := p.changes()
		if r.BeforeApply != nil {
			r.BeforeApply(dirID)
		}
		if err := tx.ApplyRoster(ctx, team.ID, dirID, changes); err != nil {
			return err
		}
		if err := tx.ClearDirty(ctx, dirID, items); err != nil {
			return err
		}
		applied, nEvents, evTypes = items, len(changes.Events), eventTypes(changes.Events)
		return nil
	})
	if err != nil {
		return res, false, err
	}
	res.Changes, res.Pending = nEvents, len(applied)
	r.afterApply(dirID, dirType, applied, evTypes)
	return res, more, nil
}

func (r *Reconciler) full(ctx context.Context, dirID string) (Result, error) {
	res := Result{Mode: "full"}
	dir, err := r.Store.GetDirectory(ctx, dirID)
	if err != nil {
		return res, err
	}
	team, err := r.Store.GetTeam(ctx, dir.TeamID)
	if err != nil {
		return res, err
	}
	p := &plan{team: team, dir: dir, users: map[string]*userState{}, groups: map[string]*groupState{}}
	var items []store.DirtyRow
	// Read one consistent snapshot without holding the writer; changes
	// made after it stay pending (their dirty rows get a newer gen) and
	// cause a follow-up run.
	err = r.Store.ReadSnapshot(ctx, func(rt *store.ReadTx) error {
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
		parents := map[string][]string{}
		if err := rt.EachMembership(ctx, dirID, func(m store.MembershipRow) {
			parents[m.MemberID] = append(parents[m.MemberID], m.GroupID)
		}); err != nil {
			return err
		}
		memo := make(map[string][]string, len(p.names))
		if err := rt.EachMirrorUser(ctx, dirID, func(u store.MirrorUserLite) {
			u2 := u
			p.users[u.ID] = &userState{mirror: &u2, groups: closure(parents[u.ID], parents, p.names, memo)}
		}); err != nil {
			return err
		}
		parents = nil
		if err := rt.EachRosterMember(ctx, dirID, func(m *store.RosterMember) {
			us := p.users[m.UserID]
			if us == nil {
				us = &userState{}
				p.users[m.UserID] = us
			}
			us.cur = m
		}); err != nil {
			return err
		}
		if err := rt.EachMemberGroup(ctx, dirID, func(l store.Link) {
			us := p.users[l.UserID]
			if us == nil {
				us = &userState{}
				p.users[l.UserID] = us
			}
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
	if err != nil {
		return res, err
	}
	changes := p.changes()
	if r.BeforeApply != nil {
		r.BeforeApply(dirID)
	}
	err = r.Store.WithTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.GetDirectory(ctx, dirID); err != nil { // locks the directory on PostgreSQL
			return err
		}
		if err := tx.ApplyRoster(ctx, team.ID, dirID, changes); err != nil {
			return err
		}
		return tx.ClearDirty(ctx, dirID, items)
	})
	if err != nil {
		return res, err
	}
	res.Changes, res.Pending = len(changes.Events), len(items)
	r.afterApply(dirID, dir.Type, items, eventTypes(changes.Events))
	return res, nil
}

func (r *Reconciler) afterApply(dirID, dirType string, items []store.DirtyRow, evTypes []string) {
	if r.Metrics == nil {
		return
	}
	now := time.Now()
	lag := r.Metrics.SyncLag.WithLabelValues(dirType)
	for _, it := range items {
		lag.Observe(now.Sub(it.Observed).Seconds())
	}
	for _, t := range evTypes {
		r.Metrics.RosterChanges.WithLabelValues(t).Inc()
	}
	r.Metrics.LastReconcile.WithLabelValues(dirID, dirType).Set(float64(now.UnixNano()) / 1e9)
}

func eventTypes(evs []store.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

// closure returns the groups reached from direct through parents, sorted,
// keeping only groups that exist (have a name). Cycles are tolerated.
func closure(direct []string, parents map[string][]string, names map[string]string, memo map[string][]string) []string {
	if len(direct) == 0 {
		return nil
	}
	if len(direct) == 1 {
		return ancestors(direct[0], parents, names, memo)
	}
	set := map[string]struct{}{}
	for _, g := range direct {
		for _, a := range ancestors(g, parents, names, memo) {
			set[a] = struct{}{}
		}
	}
	out := make([]string, 0, len(set))
	for g := range set {
		out = append(out, g)
	}
	sort.Strings(out)
	return out
}

// ancestors returns g and every group above it, memoised per group.
func ancestors(g string, parents map[string][]string, names map[string]string, memo map[string][]string) []string {
	if a, ok := memo[g]; ok {
		return a
	}
	var out []string
	seen := map[string]bool{g: true}
	stack := []string{g}
	for len(stack) > 0 {
		cur := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if _, ok := names[cur]; ok {
			out = append(out, cur)
		}
		for _, p := range parents[cur] {
			if !seen[p] {
				seen[p] = true
				stack = append(stack, p)
			}
		}
	}
	sort.Strings(out)
	memo[g] = out
	return out
}

type userState struct {
	mirror    *store.MirrorUserLite // nil when the directory no longer has the user
	groups    []string              // desired groups, sorted
	cur       *store.RosterMember   // nil when not in the roster
	curGroups []string
}

type groupState struct {
	mirrorName string
	inMirror   bool
	rosterName string
	inRoster   bool
}

type plan struct {
	team   *store.Team
	dir    *store.Directory
	limits map[string]*int64
	names  map[string]string // mirror group names
	users  map[string]*userState
	groups map[string]*groupState
}

// memberName is how the roster names a person.
func memberName(u *store.MirrorUserLite) string {
	if u.DisplayName != "" {
		return u.DisplayName
	}
	if n := strings.TrimSpace(u.GivenName + " " + u.FamilyName); n != "" {
		return n
	}
	return u.UserName
}

// changes computes what to write, and the events, in a stable order.
func (p *plan) changes() *store.RosterChanges {
	c := &store.RosterChanges{}
	now := time.Now().UTC()
	var created, renamed, deleted, added, updated, links, limits, removed []store.Event
	ev := func(list *[]store.Event, typ string, data eventData) {
		data.TeamID, data.DirectoryID = p.team.ID, p.dir.ID
		b, _ := json.Marshal(data)
		*list = append(*list, store.Event{TeamID: p.team.ID, DirectoryID: p.dir.ID, Type: typ, OccurredAt: now, Data: b})
	}
	for _, gid := range sortedKeys(p.groups) {
		g := p.groups[gid]
		switch {
		case g.inMirror && !g.inRoster:
			c.UpsertGroups = append(c.UpsertGroups, store.RosterGroup{GroupID: gid, Name: g.mirrorName})
			ev(&created, EventGroupCreated, eventData{Group: &groupRef{gid, g.mirrorName}})
		case g.inMirror && g.inRoster && g.mirrorName != g.rosterName:
			c.UpsertGroups = append(c.UpsertGroups, store.RosterGroup{GroupID: gid, Name: g.mirrorName})
			ev(&renamed, EventGroupRenamed, eventData{Group: &groupRef{gid, g.mirrorName}, OldName: g.rosterName})
		case !g.inMirror && g.inRoster:
			c.DeleteGroups = append(c.DeleteGroups, gid)
			c.RemoveLimitsFor = append(c.RemoveLimitsFor, gid)
			ev(&deleted, EventGroupDeleted, eventData{Group: &groupRef{gid, g.rosterName}})
		}
	}
	for _, uid := range sortedKeys(p.users) {
		u := p.users[uid]
		want := u.mirror != nil && u.mirror.Active
		if !want {
			if u.cur != nil {
				c.DeleteMembers = append(c.DeleteMembers, uid)
				ev(&removed, EventMemberRemoved, eventData{Member: &memberRef{ID: uid, Email: u.cur.Email, Name: u.cur.Name}})
			}
			continue
		}
		lim := EffectiveLimit(u.groups, p.limits, p.names, p.team.DefaultLimitCents)
		m := &store.RosterMember{
			UserID: uid, TeamID: p.team.ID, Email: u.mirror.Email, Name: memberName(u.mirror),
			LimitCents: lim.Cents, LimitSource: lim.Source, LimitGroupID: lim.GroupID, LimitGroupName: lim.GroupName,
		}
		if u.cur == nil {
			c.UpsertMembers = append(c.UpsertMembers, m)
			for _, g := range u.groups {
				c.AddLinks = append(c.AddLinks, store.Link{UserID: uid, GroupID: g})
			}
			ev(&added, EventMemberAdded, eventData{Member: memberAdded{ID: uid, Email: m.Email, Name: m.Name, Groups: p.groupList(u.groups), SpendLimit: limitJSON(lim)}})
			continue
		}
		m.AddedAt = u.cur.AddedAt
		changed := false
		if m.Email != u.cur.Email || m.Name != u.cur.Name {
			diff := map[string]oldNew{}
			if m.Email != u.cur.Email {
				diff["email"] = oldNew{u.cur.Email, m.Email}
			}
			if m.Name != u.cur.Name {
				diff["name"] = oldNew{u.cur.Name, m.Name}
			}
			ev(&updated, EventMemberUpdated, eventData{MemberID: uid, Email: m.Email, Changes: diff})
			changed = true
		}
		have := map[string]bool{}
		for _, g := range u.curGroups {
			have[g] = true
		}
		wantSet := map[string]bool{}
		for _, g := range u.groups {
			wantSet[g] = true
			if !have[g] {
				c.AddLinks = append(c.AddLinks, store.Link{UserID: uid, GroupID: g})
				ev(&links, EventMembershipAdded, eventData{MemberID: uid, Email: m.Email, Group: &groupRef{g, p.names[g]}})
			}
		}
		sortedCur := append([]string(nil), u.curGroups...)
		sort.Strings(sortedCur)
		for _, g := range sortedCur {
			if !wantSet[g] {
				c.RemoveLinks = append(c.RemoveLinks, store.Link{UserID: uid, GroupID: g})
				name := p.names[g]
				if gs, ok := p.groups[g]; ok && name == "" {
					name = gs.rosterName
				}
				ev(&links, EventMembershipRemoved, eventData{MemberID: uid, Email: m.Email, Group: &groupRef{g, name}})
			}
		}
		old := Limit{Cents: u.cur.LimitCents, Source: u.cur.LimitSource, GroupID: u.cur.LimitGroupID, GroupName: u.cur.LimitGroupName}
		if !sameCents(old.Cents, lim.Cents) || old.Source != lim.Source || old.GroupID != lim.GroupID || old.GroupName != lim.GroupName {
			if !sameCents(old.Cents, lim.Cents) {
				oldL, newL := limitJSON(old), limitJSON(lim)
				ev(&limits, EventLimitChanged, eventData{MemberID: uid, Email: m.Email, Old: &oldL, New: &newL})
			}
			changed = true
		}
		if changed {
			c.UpsertMembers = append(c.UpsertMembers, m)
		}
	}
	for _, list := range [][]store.Event{created, renamed, added, updated, links, limits, removed, deleted} {
		c.Events = append(c.Events, list...)
	}
	return c
}

func (p *plan) groupList(ids []string) []groupRef {
	out := make([]groupRef, 0, len(ids))
	for _, g := range ids {
		out = append(out, groupRef{g, p.names[g]})
	}
	return out
}

// eventData is the data of every feed event; each type fills its part.
type eventData struct {
	TeamID      string            `json:"team_id"`
	DirectoryID string            `json:"directory_id"`
	Member      any               `json:"member,omitempty"`
	MemberID    string            `json:"member_id,omitempty"`
	Email       string            `json:"email,omitempty"`
	Group       *groupRef         `json:"group,omitempty"`
	OldName     string            `json:"old_name,omitempty"`
	Changes     map[string]oldNew `json:"changes,omitempty"`
	Old         *limitRef         `json:"old,omitempty"`
	New         *limitRef         `json:"new,omitempty"`
}

type memberRef struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
}

type memberAdded struct {
	ID         string     `json:"id"`
	Email      string     `json:"email"`
	Name       string     `json:"name"`
	Groups     []groupRef `json:"groups"`
	SpendLimit limitRef   `json:"spend_limit"`
}

type groupRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type oldNew struct {
	Old string `json:"old"`
	New string `json:"new"`
}

// limitRef is the API and event shape of an effective limit.
type limitRef struct {
	PerUserCents *int64      `json:"per_user_cents"`
	Source       limitSource `json:"source"`
}

type limitSource struct {
	Type      string  `json:"type"`
	GroupID   *string `json:"group_id"`
	GroupName *string `json:"group_name"`
}

func limitJSON(l Limit) limitRef {
	r := limitRef{PerUserCents: l.Cents, Source: limitSource{Type: l.Source}}
	if l.Source == store.SourceGroup {
		id, name := l.GroupID, l.GroupName
		r.Source.GroupID, r.Source.GroupName = &id, &name
	}
	return r
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
