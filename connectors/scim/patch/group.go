package patch

import (
	"strings"

	"github.com/roster-dev/roster/internal/scimfilter"
)

// Member is a group member as sent in a PATCH: Value is the member's id;
// Type ("User" or "Group") and Display are as given, possibly empty.
type Member struct {
	Value   string
	Type    string
	Display string
}

// GroupPatch is a Group PATCH split for a store that keeps memberships as
// rows: the net effect on members, and the operations on everything else.
//
// The member operations are folded in request order into one of two forms:
//
//   - ReplaceMembers: the group's members become exactly Members (empty
//     Members: remove all members); Add and Remove are empty;
//   - otherwise: add the Add members (already-present ones stay as they are)
//     and remove the Remove ids (absent ones are ignored); an id is never in
//     both.
//
// Ops holds the remaining operations, to be applied with Apply(group
// without members, Ops, GroupSchema).
//
// NeedsMembers is set when a member operation cannot be expressed as a
// delta (a filter other than value eq "id" joined by or, a member
// sub-attribute path): the caller must then load the members and Apply the
// whole request to the full group; the other fields are then empty.
type GroupPatch struct {
	ReplaceMembers bool
	Members        []Member
	Add            []Member
	Remove         []string
	Ops            []Operation
	NeedsMembers   bool
}

// RemoveAllMembers tells whether the patch removes every member (and adds
// none).
func (g GroupPatch) RemoveAllMembers() bool { return g.ReplaceMembers && len(g.Members) == 0 }

// SplitGroupPatch splits a Group PATCH request. It handles, besides plain
// add/replace/remove of members: remove with members[value eq "id"] (also
// or-joined), Entra's remove with a value list, pathless add/replace whose
// object holds "members" and other attributes (Okta's
// {"op":"replace","value":{"id":"...","displayName":"new"}}: the id goes to
// Ops, where Apply accepts it when it equals the group's). Errors are
// *Error.
func SplitGroupPatch(ops []Operation) (GroupPatch, error) {
	var d delta
	var rest []Operation
	for i, op := range ops {
		name := opName(op.Op)
		path := strings.TrimSpace(op.Path)
		if path == "" {
			m, ok := op.Value.(map[string]any)
			if !ok || (name != "add" && name != "replace") {
				rest = append(rest, op) // Apply reports the error
				continue
			}
			other := map[string]any{}
			for k, v := range m {
				if isMembersKey(k) {
					if err := d.memberOp(name, v); err != nil {
						err.Index = i
						return GroupPatch{}, err
					}
					continue
				}
				if isMembersPath(k) {
					return GroupPatch{NeedsMembers: true}, nil
				}
				other[k] = v
			}
			if len(other) > 0 {
				rest = append(rest, Operation{Op: op.Op, Value: other})
			}
			continue
		}
		if !isMembersPath(path) {
			rest = append(rest, op)
			continue
		}
		p, err := scimfilter.ParsePath(path)
		if err != nil {
			return GroupPatch{}, &Error{Type: ScimInvalidPath, Detail: err.Error(), Index: i}
		}
		switch {
		case p.Filter == nil && p.Attr.Sub == "":
			if name == "remove" && op.Value == nil {
				d.replace(nil)
				continue
			}
			if err := d.memberOp(name, op.Value); err != nil {
				err.Index = i
				return GroupPatch{}, err
			}
		case p.Filter != nil && p.Attr.Sub == "" && name == "remove":
			ids, ok := memberIDs(p.Filter)
			if !ok {
				return GroupPatch{NeedsMembers: true}, nil
			}
			d.remove(ids)
		default:
			if name != "add" && name != "replace" && name != "remove" {
				return GroupPatch{}, &Error{Type: ScimInvalidSyntax, Detail: "unknown op " + op.Op, Index: i}
			}
			return GroupPatch{NeedsMembers: true}, nil
		}
	}
	g := GroupPatch{Ops: rest, ReplaceMembers: d.replacing}
	if d.replacing {
		g.Members = d.set.list()
	} else {
		g.Add = d.add.list()
		for _, m := range d.del.list() {
			g.Remove = append(g.Remove, m.Value)
		}
	}
	return g, nil
}

func isMembersKey(k string) bool {
	k = strings.TrimSpace(k)
	if i := strings.LastIndexByte(k, ':'); i >= 0 && scimfilter.IsCoreURN(k[:i]) {
		k = k[i+1:]
	}
	return strings.EqualFold(k, "members")
}

// isMembersPath tells whether a path designates members or part of them.
func isMembersPath(path string) bool {
	p, err := scimfilter.ParsePath(path)
	if err != nil {
		return false
	}
	return p.Attr.Extension() == "" && strings.EqualFold(p.Attr.Name, "members")
}

// memberIDs extracts the ids from value eq "id" [or value eq "id2" ...].
func memberIDs(e scimfilter.Expr) ([]string, bool) {
	switch x := e.(type) {
	case *scimfilter.Or:
		l, ok := memberIDs(x.Left)
		if !ok {
			return nil, false
		}
		r, ok := memberIDs(x.Right)
		return append(l, r...), ok
	case *scimfilter.Compare:
		s, ok := x.Value.(string)
		if x.Op != scimfilter.Eq || !ok || x.Path.Sub != "" || x.Path.URI != "" || !strings.EqualFold(x.Path.Name, "value") {
			return nil, false
		}
		return []string{s}, true
	}
	return nil, false
}

// memberSet is an insertion-ordered set of members by id.
type memberSet struct {
	order []string
	by    map[string]Member
}

func (s *memberSet) put(m Member) {
	if s.by == nil {
		s.by = map[string]Member{}
	}
	if _, ok := s.by[m.Value]; !ok {
		s.order = append(s.order, m.Value)
	}
	s.by[m.Value] = m
}

func (s *memberSet) drop(id string) { delete(s.by, id) }

func (s *memberSet) list() []Member {
	var out []Member
	seen := map[string]bool{}
	for _, id := range s.order {
		if m, ok := s.by[id]; ok && !seen[id] {
			seen[id] = true
			out = append(out, m)
		}
	}
	return out
}

type delta struct {
	replacing     bool
	set, add, del memberSet
}

func (d *delta) replace(ms []Member) {
	d.replacing = true
	d.set, d.add, d.del = memberSet{}, memberSet{}, memberSet{}
	for _, m := range ms {
		d.set.put(m)
	}
}

func (d *delta) addMembers(ms []Member) {
	for _, m := range ms {
		if d.replacing {
			d.set.put(m)
			continue
		}
		d.del.drop(m.Value)
		d.add.put(m)
	}
}

func (d *delta) remove(ids []string) {
	for _, id := range ids {
		if d.replacing {
			d.set.drop(id)
			continue
		}
		d.add.drop(id)
		d.del.put(Member{Value: id})
	}
}

// memberOp applies add/replace/remove of the members attribute with a value.
func (d *delta) memberOp(op string, value any) *Error {
	ms, err := parseMembers(value)
	if err != nil {
		return err
	}
	switch op {
	case "add":
		d.addMembers(ms)
	case "replace":
		d.replace(ms)
	case "remove":
		ids := make([]string, len(ms))
		for i, m := range ms {
			ids[i] = m.Value
		}
		d.remove(ids)
	default:
		return errf(ScimInvalidSyntax, "unknown op %q", op)
	}
	return nil
}

// parseMembers reads member values: objects with "value" (other keys,
// "$ref": null included, are optional) or bare ids.
func parseMembers(v any) ([]Member, *Error) {
	def := find(GroupSchema.Attributes, "members")
	list, err := normalizeList(def, v)
	if err != nil {
		return nil, err
	}
	out := make([]Member, 0, len(list))
	for _, el := range list {
		m, _ := el.(map[string]any)
		id, _ := m["value"].(string)
		if strings.TrimSpace(id) == "" {
			return nil, errf(ScimInvalidValue, "a member needs a value (its id)")
		}
		typ, _ := m["type"].(string)
		disp, _ := m["display"].(string)
		out = append(out, Member{Value: id, Type: typ, Display: disp})
	}
	return out, nil
}
