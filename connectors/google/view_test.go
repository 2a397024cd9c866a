package google

import (
	"slices"

	"github.com/roster-dev/roster/connectors"
)

// snapshotView indexes a snapshot for assertions.
type snapshotView struct {
	*connectors.Snapshot
	users  map[string]connectors.User
	groups map[string]connectors.Group
}

func view(s *connectors.Snapshot) snapshotView {
	v := snapshotView{Snapshot: s, users: map[string]connectors.User{}, groups: map[string]connectors.Group{}}
	for _, u := range s.Users {
		v.users[u.ExternalID] = u
	}
	for _, g := range s.Groups {
		v.groups[g.ExternalID] = g
	}
	return v
}

// members returns a group's members, sorted.
func (v snapshotView) members(groupID string) []string {
	m := slices.Clone(v.groups[groupID].Members)
	slices.Sort(m)
	return m
}

func sorted(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}
