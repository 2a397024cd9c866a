package reconcile

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/roster-dev/roster/store"
	"github.com/roster-dev/roster/sync/rules"
)

// Event types this stage appends to the feed.
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
)

// userState is one member's state as a run sees it: what the mirror says
// (and the groups that gives them), and what the roster holds now.
type userState struct {
	mirror    *store.MirrorUserLite // nil when the directory no longer has the user
	groups    []string              // desired groups, sorted
	cur       *store.RosterMember   // nil when not in the roster
	curGroups []string
	// replaced says the member is held pending removal and the directory
	// added the same person (by email) again under a new id: the held
	// entry goes, the person stays through the new one.
	replaced bool
}

// groupState is one group's name in the mirror and in the roster.
type groupState struct {
	mirrorName string
	inMirror   bool
	rosterName string
	inRoster   bool
}

// plan is what a run read: the members and groups involved, with the
// team's policy. changes turns it into the roster writes and events.
type plan struct {
	team   *store.Team
	dir    *store.Directory
	limits map[string]*int64
	names  map[string]string // mirror group names
	users  map[string]*userState
	groups map[string]*groupState
	// hold keeps the members the mirror no longer wants on the roster,
	// marked pending removal (the SCIM deletion guard decided).
	hold bool
}

// user returns the state of a member, adding an empty one.
func (p *plan) user(id string) *userState {
	us := p.users[id]
	if us == nil {
		us = &userState{}
		p.users[id] = us
	}
	return us
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
	for _, gid := range slices.Sorted(maps.Keys(p.groups)) {
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
	for _, uid := range slices.Sorted(maps.Keys(p.users)) {
		u := p.users[uid]
		want := u.mirror != nil && u.mirror.Active
		if !want {
			if u.cur != nil && p.hold && !u.replaced {
				if !u.cur.PendingRemoval {
					c.HoldMembers = append(c.HoldMembers, uid)
				}
				continue
			}
			if u.cur != nil {
				c.DeleteMembers = append(c.DeleteMembers, uid)
				ev(&removed, EventMemberRemoved, eventData{Member: &memberRef{ID: uid, Email: u.cur.Email, Name: u.cur.Name}})
			}
			continue
		}
		lim := rules.EffectiveLimit(u.groups, p.limits, p.names, p.team.DefaultLimitCents)
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
		// A member held pending removal whom the directory wants again
		// is no longer pending.
		changed := u.cur.PendingRemoval
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
		for _, g := range slices.Sorted(slices.Values(u.curGroups)) {
			if !wantSet[g] {
				c.RemoveLinks = append(c.RemoveLinks, store.Link{UserID: uid, GroupID: g})
				name := p.names[g]
				if gs, ok := p.groups[g]; ok && name == "" {
					name = gs.rosterName
				}
				ev(&links, EventMembershipRemoved, eventData{MemberID: uid, Email: m.Email, Group: &groupRef{g, name}})
			}
		}
		old := rules.Limit{Cents: u.cur.LimitCents, Source: u.cur.LimitSource, GroupID: u.cur.LimitGroupID, GroupName: u.cur.LimitGroupName}
		if !old.Equal(lim) {
			if !rules.SameCents(old.Cents, lim.Cents) {
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

func limitJSON(l rules.Limit) limitRef {
	r := limitRef{PerUserCents: l.Cents, Source: limitSource{Type: l.Source}}
	if l.Source == rules.SourceGroup {
		id, name := l.GroupID, l.GroupName
		r.Source.GroupID, r.Source.GroupName = &id, &name
	}
	return r
}
