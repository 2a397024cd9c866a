// Package rules holds the decisions both sync stages share, as pure
// functions with no I/O: a member's effective spend limit, whether the
// deletion guard holds a poll back, and the groups a member is in through
// nesting. The poller (sync/poll) and the reconciler (sync/reconcile) read
// the store and call these; nothing here reads or writes anything.
package rules

import "slices"

// Where an effective limit came from. The values are those the roster
// stores and the API shows (store.SourceGroup, store.SourceTeamDefault).
const (
	SourceGroup       = "group"
	SourceTeamDefault = "team_default"
)

// Limit is an effective spend limit and where it came from.
type Limit struct {
	Cents     *int64 // nil is unlimited
	Source    string // SourceGroup or SourceTeamDefault
	GroupID   string // the group that set it, when Source is SourceGroup
	GroupName string
}

// Equal reports whether a and b are the same limit from the same source.
func (l Limit) Equal(o Limit) bool {
	return SameCents(l.Cents, o.Cents) && l.Source == o.Source && l.GroupID == o.GroupID && l.GroupName == o.GroupName
}

// EffectiveLimit applies the spend policy to a member in groups (every
// group they are in, nesting included): among those groups that have a
// limit in limits, the highest wins (unlimited, a nil limit, beats any
// number), even when it is lower than the team default; with no such group
// the team default applies. Ties go to the group whose name (from names)
// sorts first, then to the lower id, so the answer does not depend on the
// order of groups.
func EffectiveLimit(groups []string, limits map[string]*int64, names map[string]string, teamDefault *int64) Limit {
	var best *Limit
	for _, g := range groups {
		lim, ok := limits[g]
		if !ok {
			continue
		}
		cand := Limit{Cents: lim, Source: SourceGroup, GroupID: g, GroupName: names[g]}
		if best == nil || higher(cand, *best) {
			c := cand
			best = &c
		}
	}
	if best != nil {
		return *best
	}
	return Limit{Cents: teamDefault, Source: SourceTeamDefault}
}

// higher reports whether group limit a wins over b.
func higher(a, b Limit) bool {
	switch {
	case a.Cents == nil && b.Cents != nil:
		return true
	case a.Cents != nil && b.Cents == nil:
		return false
	case a.Cents != nil && b.Cents != nil && *a.Cents != *b.Cents:
		return *a.Cents > *b.Cents
	}
	if a.GroupName != b.GroupName {
		return a.GroupName < b.GroupName
	}
	return a.GroupID < b.GroupID
}

// SameCents reports whether two limits in cents are equal (nil is
// unlimited, equal only to nil).
func SameCents(a, b *int64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

// Guard is the deletion guard's limits for one poll, defaults applied
// (connectors.DeletionGuard.Limits).
type Guard struct {
	MaxRemovals int
	MaxFraction float64
	// FractionFloor is how many removals the fraction alone never holds;
	// below 1 it is 1.
	FractionFloor int
}

// Holds reports whether a poll that would take leaving members off a
// roster of active members must wait for an admin's approval: when it
// removes more than MaxRemovals (so 0 holds every removal), or more than
// MaxFraction of the active members. The fraction alone never holds a
// single removal (nor FractionFloor removals, when larger): in a directory
// of three, one person leaving is a third of it, and is ordinary.
func (g Guard) Holds(leaving, active int) bool {
	if leaving > g.MaxRemovals {
		return true
	}
	return active > 0 && leaving > max(1, g.FractionFloor) && float64(leaving) > g.MaxFraction*float64(active)
}

// Closure answers which groups a member is in, directly or through nested
// groups, over one read of a directory's memberships. A cycle ends the walk
// where it closes; there is no depth cut, so a chain of any length is
// followed to its top. Answers are memoised per group, so a directory's
// members cost about one walk of each group's ancestors.
//
// The slices it returns are shared between callers and must not be
// modified.
type Closure struct {
	parents map[string][]string
	exists  map[string]string
	memo    map[string][]string
}

// NewClosure returns the closure over parents, which maps each member id
// (user or group) to the groups that hold it directly. Only groups that are
// keys of exists are reported (memberships may name a group that is gone);
// the walk still passes through the others.
func NewClosure(parents map[string][]string, exists map[string]string) *Closure {
	return &Closure{parents: parents, exists: exists, memo: make(map[string][]string, len(exists))}
}

// Of returns the groups reached from direct (a member's direct groups):
// those groups and every group above them, sorted, each once.
func (c *Closure) Of(direct []string) []string {
	switch len(direct) {
	case 0:
		return nil
	case 1:
		return c.Ancestors(direct[0])
	}
	set := map[string]struct{}{}
	for _, g := range direct {
		for _, a := range c.Ancestors(g) {
			set[a] = struct{}{}
		}
	}
	out := make([]string, 0, len(set))
	for g := range set {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

// Ancestors returns g and every group above it, sorted.
func (c *Closure) Ancestors(g string) []string {
	if a, ok := c.memo[g]; ok {
		return a
	}
	var out []string
	seen := map[string]bool{g: true}
	stack := []string{g}
	for len(stack) > 0 {
		cur := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if _, ok := c.exists[cur]; ok {
			out = append(out, cur)
		}
		for _, p := range c.parents[cur] {
			if !seen[p] {
				seen[p] = true
				stack = append(stack, p)
			}
		}
	}
	slices.Sort(out)
	c.memo[g] = out
	return out
}
