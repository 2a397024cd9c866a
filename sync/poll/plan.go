package poll

import (
	"encoding/json"
	"maps"
	"slices"

	"github.com/roster-dev/roster/connectors"
	"github.com/roster-dev/roster/store"
)

// pollPlan is what one listing changes in the mirror, decided in memory
// from the listing and the mirror's state before anything is written. Every
// list is in id order, so a poll writes in the same order each time.
type pollPlan struct {
	// changedUsers are in the mirror with other attributes; newUsers are
	// not in it yet (they go in as one batch).
	changedUsers []*store.User
	newUsers     []*store.User
	deleteUsers  []string
	// putGroups are groups new to the mirror or renamed.
	putGroups []groupPut
	// memberChanges are the direct-member changes of groups already in
	// the mirror; newGroupRows are the direct members of groups new to it.
	memberChanges []memberChange
	newGroupRows  []store.MembershipRow
	deleteGroups  []string
	// leaving are the active users this poll takes off the roster
	// (deleted, or disabled): what the deletion guard counts.
	leaving []string
	skipped []connectors.Skipped
}

type groupPut struct {
	group   *store.Group
	existed bool // in the mirror before: a rename
}

type memberChange struct {
	groupID string
	add     []store.Member
	remove  []string
}

// target is what the directory holds after the listing: every user and
// group the listing gives whole, and what it makes disappear.
type target struct {
	users        map[string]connectors.User
	groups       map[string]connectors.Group
	deleteUsers  map[string]bool
	deleteGroups map[string]bool
	skipped      []connectors.Skipped
}

// planPoll decides what the listing changes in the mirror.
func planPoll(dirID string, cur *mirrorState, l listing) *pollPlan {
	t := targetOf(cur, l)
	pl := &pollPlan{
		deleteUsers:  slices.Sorted(maps.Keys(t.deleteUsers)),
		deleteGroups: slices.Sorted(maps.Keys(t.deleteGroups)),
		leaving:      leaving(cur, t),
		skipped:      t.skipped,
	}
	pl.planUsers(dirID, cur, t)
	pl.planGroups(dirID, cur, t)
	return pl
}

// targetOf decides what the directory holds after the listing. A full
// listing replaces the mirror: what it lacks is deleted. A delta changes
// only what it names, except that a Present set deletes everything it
// lacks, too.
func targetOf(cur *mirrorState, l listing) target {
	t := target{
		users: map[string]connectors.User{}, groups: map[string]connectors.Group{},
		deleteUsers: map[string]bool{}, deleteGroups: map[string]bool{},
	}
	if s := l.snap; s != nil {
		for _, u := range s.Users {
			t.users[u.ExternalID] = u
		}
		for _, g := range s.Groups {
			t.groups[g.ExternalID] = g
		}
		for id := range cur.users {
			if _, ok := t.users[id]; !ok {
				t.deleteUsers[id] = true
			}
		}
		for id := range cur.groups {
			if _, ok := t.groups[id]; !ok {
				t.deleteGroups[id] = true
			}
		}
		t.skipped = s.Skipped
		return t
	}
	d := l.delta
	for _, u := range d.Users {
		t.users[u.ExternalID] = u
	}
	for _, g := range d.Groups {
		t.groups[g.ExternalID] = g
	}
	for _, id := range d.DeletedUsers {
		if _, ok := cur.users[id]; ok {
			t.deleteUsers[id] = true
		}
		delete(t.users, id)
	}
	for _, id := range d.DeletedGroups {
		if _, ok := cur.groups[id]; ok {
			t.deleteGroups[id] = true
		}
		delete(t.groups, id)
	}
	if d.Present != nil {
		for id := range cur.users {
			if _, ok := d.Present[id]; !ok {
				if _, up := t.users[id]; !up {
					t.deleteUsers[id] = true
				}
			}
		}
		for id := range cur.groups {
			if _, ok := d.Present[id]; !ok {
				if _, up := t.groups[id]; !up {
					t.deleteGroups[id] = true
				}
			}
		}
	}
	t.skipped = d.Skipped
	return t
}

// leaving lists the active users the target takes off the roster: deleted,
// or listed as inactive.
func leaving(cur *mirrorState, t target) []string {
	var out []string
	for id, u := range cur.users {
		if !u.Active {
			continue
		}
		if t.deleteUsers[id] {
			out = append(out, id)
		} else if nu, ok := t.users[id]; ok && !nu.Active {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// planUsers decides which listed users to write: those new to the mirror,
// and those whose attributes differ from what it holds.
func (pl *pollPlan) planUsers(dirID string, cur *mirrorState, t target) {
	for _, id := range slices.Sorted(maps.Keys(t.users)) {
		su := t.users[id]
		old, exists := cur.users[id]
		if exists && old.UserName == su.UserName && old.Email == su.Email && old.DisplayName == su.DisplayName &&
			old.GivenName == su.GivenName && old.FamilyName == su.FamilyName && old.Active == su.Active {
			continue
		}
		u := mirrorUser(dirID, su)
		if exists {
			pl.changedUsers = append(pl.changedUsers, u)
		} else {
			pl.newUsers = append(pl.newUsers, u)
		}
	}
}

// planGroups decides which listed groups to write (new or renamed) and how
// each one's direct members change. A member is kept only when the
// directory still holds it after the poll (so a dangling id is dropped),
// and a group never holds itself.
func (pl *pollPlan) planGroups(dirID string, cur *mirrorState, t target) {
	memberType := func(id string) (string, bool) {
		if _, ok := t.users[id]; ok {
			return store.MemberUser, true
		}
		if _, ok := t.groups[id]; ok {
			return store.MemberGroup, true
		}
		if t.deleteUsers[id] || t.deleteGroups[id] {
			return "", false
		}
		if _, ok := cur.users[id]; ok {
			return store.MemberUser, true
		}
		if _, ok := cur.groups[id]; ok {
			return store.MemberGroup, true
		}
		if typ, ok := cur.memberTypes[id]; ok {
			return typ, true
		}
		return "", false
	}
	for _, id := range slices.Sorted(maps.Keys(t.groups)) {
		sg := t.groups[id]
		name, existed := cur.groups[id]
		if !existed || name != sg.Name {
			pl.putGroups = append(pl.putGroups, groupPut{
				group:   &store.Group{DirectoryID: dirID, ID: id, ExternalID: sg.ExternalID, DisplayName: sg.Name},
				existed: existed,
			})
		}
		want := map[string]string{}
		for _, m := range sg.Members {
			if typ, ok := memberType(m); ok && m != id {
				want[m] = typ
			}
		}
		if !existed {
			for _, m := range slices.Sorted(maps.Keys(want)) {
				pl.newGroupRows = append(pl.newGroupRows, store.MembershipRow{GroupID: id, MemberID: m, MemberType: want[m]})
			}
			continue
		}
		have := cur.members[id]
		mc := memberChange{groupID: id}
		for _, m := range slices.Sorted(maps.Keys(want)) {
			if _, ok := have[m]; !ok {
				mc.add = append(mc.add, store.Member{ID: m, Type: want[m]})
			}
		}
		for _, m := range slices.Sorted(maps.Keys(have)) {
			if _, ok := want[m]; !ok {
				mc.remove = append(mc.remove, m)
			}
		}
		if len(mc.add) > 0 || len(mc.remove) > 0 {
			pl.memberChanges = append(pl.memberChanges, mc)
		}
	}
}

// mirrorUser is a listed user as the mirror keeps them, with a SCIM-shaped
// resource so the SCIM endpoint can show polled users too.
func mirrorUser(dirID string, su connectors.User) *store.User {
	u := &store.User{DirectoryID: dirID, ID: su.ExternalID, ExternalID: su.ExternalID, UserName: su.UserName, DisplayName: su.DisplayName,
		GivenName: su.GivenName, FamilyName: su.FamilyName, Email: su.Email, Active: su.Active}
	if su.Email != "" {
		u.Emails = []store.Email{{Value: su.Email, Type: "work", Primary: true}}
	}
	u.Resource = sourceResource(su)
	return u
}

func sourceResource(u connectors.User) json.RawMessage {
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

// count adds what the plan wrote to the poll's result.
func (pl *pollPlan) count(res *Result) {
	res.Users += len(pl.changedUsers) + len(pl.newUsers) + len(pl.deleteUsers)
	res.Groups += len(pl.putGroups) + len(pl.deleteGroups)
	res.Memberships += len(pl.newGroupRows)
	for _, mc := range pl.memberChanges {
		res.Memberships += len(mc.add) + len(mc.remove)
	}
	res.Skipped += len(pl.skipped)
}
