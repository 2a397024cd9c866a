// Package sync turns what directories say (the mirror) into the roster: who is
// a member, which groups they are in, and what each may spend. It also runs
// polls of pull-based sources (Source) into the mirror.
package sync

import "github.com/roster-dev/roster/store"

// Limit is an effective spend limit and where it came from.
type Limit struct {
	Cents     *int64 // nil is unlimited
	Source    string // store.SourceGroup or store.SourceTeamDefault
	GroupID   string
	GroupName string
}

// EffectiveLimit applies the spend policy: among the member's groups that
// have a limit, the highest wins (unlimited beats any number), even when it
// is lower than the team default; with no such group the team default
// applies. Ties go to the group whose name sorts first, then its id, so the
// answer is stable.
func EffectiveLimit(groups []string, limits map[string]*int64, names map[string]string, teamDefault *int64) Limit {
	var best *Limit
	for _, g := range groups {
		lim, ok := limits[g]
		if !ok {
			continue
		}
		cand := Limit{Cents: lim, Source: store.SourceGroup, GroupID: g, GroupName: names[g]}
		if best == nil || higher(cand, *best) {
			c := cand
			best = &c
		}
	}
	if best != nil {
		return *best
	}
	return Limit{Cents: teamDefault, Source: store.SourceTeamDefault}
}

// higher reports whether a wins over b.
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

func sameCents(a, b *int64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}
