package scimfilter

import (
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// DefaultCaseExact is the case-exactness roster uses: identifiers (id,
// externalId, member and group references, manager ids, $ref) compare
// exactly, everything else (userName, emails, displayName, ...) ignoring
// case. attrPath is an AttrPath.Key() such as "username" or "emails.value".
func DefaultCaseExact(attrPath string) bool {
	k := strings.ToLower(attrPath)
	if i := strings.LastIndexByte(k, ':'); i >= 0 {
		k = k[i+1:]
	}
	switch k {
	case "id", "externalid", "members.value", "groups.value", "manager.value":
		return true
	}
	return strings.HasSuffix(k, "$ref")
}

// Fold is the case folding Match uses for case-insensitive comparisons.
// Columns that hold a folded copy of a value (Mapping kind StringFold) must
// be filled with it.
func Fold(s string) string { return strings.ToLower(s) }

// Match reports whether resource satisfies e, following RFC 7644 §3.4.2.2:
//
//   - attribute names are case-insensitive; a core schema URN prefix is
//     ignored, an extension URN selects the resource's top-level object of
//     that name (case-insensitive);
//   - a multi-valued attribute matches when any of its values does; comparing
//     a complex attribute without a sub-attribute ("emails eq ...") compares
//     its "value" sub-attribute;
//   - ne is the negation of eq: it also matches when the attribute is absent;
//     "eq null" matches when the attribute is absent (not pr);
//   - strings compare ignoring case unless caseExact(path.Key()) says
//     otherwise (nil means DefaultCaseExact); two strings that both parse as
//     RFC 3339 date-times compare as instants, at microsecond precision (the
//     store's); booleans also match the strings "true"/"false" in any case,
//     stored or in the filter; numbers compare numerically, also against
//     numeric strings;
//   - gt/ge/lt/le on a boolean or a complex value (with no "value") are false
//     (Parse already rejects them with a boolean or null literal);
//   - pr is false for null, "", [] and {}.
func Match(e Expr, resource map[string]any, caseExact func(attrPath string) bool) bool {
	if caseExact == nil {
		caseExact = DefaultCaseExact
	}
	m := matcher{caseExact: caseExact}
	return m.eval(e, resource, "", true)
}

type matcher struct {
	caseExact func(string) bool
}

// eval evaluates e on obj. prefix is the key of the enclosing multi-valued
// attribute plus "." inside a value filter; top is true at resource level,
// where schema URNs are resolved.
func (m matcher) eval(e Expr, obj map[string]any, prefix string, top bool) bool {
	switch x := e.(type) {
	case *And:
		return m.eval(x.Left, obj, prefix, top) && m.eval(x.Right, obj, prefix, top)
	case *Or:
		return m.eval(x.Left, obj, prefix, top) || m.eval(x.Right, obj, prefix, top)
	case *Not:
		return !m.eval(x.X, obj, prefix, top)
	case *Compare:
		return m.compare(x, obj, prefix, top)
	case *ValuePath:
		root, ok := resolveRoot(obj, x.Path, top)
		if !ok {
			return false
		}
		v, _ := Lookup(root, x.Path.Name)
		inner := prefix + AttrPath{URI: x.Path.URI, Name: x.Path.Name}.Key() + "."
		for _, el := range elements(v) {
			el2, ok := el.(map[string]any)
			if !ok {
				// A simple multi-valued attribute: its values are "value".
				el2 = map[string]any{"value": el}
			}
			if m.eval(x.Filter, el2, inner, false) {
				return true
			}
		}
		return false
	}
	return false
}

// Lookup returns the value of key in m, matching the name
// case-insensitively (an exact match wins; among several case variants the
// smallest key in byte order is used, so the result is deterministic).
func Lookup(m map[string]any, key string) (any, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	k, ok := FindKey(m, key)
	if !ok {
		return nil, false
	}
	return m[k], true
}

// FindKey returns the key of m equal to name ignoring case (see Lookup).
func FindKey(m map[string]any, name string) (string, bool) {
	if _, ok := m[name]; ok {
		return name, true
	}
	var found []string
	for k := range m {
		if strings.EqualFold(k, name) {
			found = append(found, k)
		}
	}
	if len(found) == 0 {
		return "", false
	}
	sort.Strings(found)
	return found[0], true
}

// resolveRoot returns the object holding p.Name: the resource itself, or the
// extension object named by p's URN.
func resolveRoot(obj map[string]any, p AttrPath, top bool) (map[string]any, bool) {
	ext := p.Extension()
	if !top || ext == "" {
		return obj, true
	}
	v, ok := Lookup(obj, ext)
	if !ok {
		return nil, false
	}
	m, ok := v.(map[string]any)
	return m, ok
}

// elements flattens a value into its elements: an array's items, a single
// value as itself, nothing for null.
func elements(v any) []any {
	switch v := v.(type) {
	case nil:
		return nil
	case []any:
		return v
	case []map[string]any:
		out := make([]any, len(v))
		for i := range v {
			out[i] = v[i]
		}
		return out
	case []string:
		out := make([]any, len(v))
		for i := range v {
			out[i] = v[i]
		}
		return out
	default:
		return []any{v}
	}
}

// values collects the values at p: for name.sub, the sub-attribute of every
// element. Complex elements are returned as maps.
func values(obj map[string]any, p AttrPath, top bool) []any {
	root, ok := resolveRoot(obj, p, top)
	if !ok {
		return nil
	}
	v, ok := Lookup(root, p.Name)
	if !ok {
		return nil
	}
	if p.Sub == "" {
		return elements(v)
	}
	var out []any
	for _, el := range elements(v) {
		if m, ok := el.(map[string]any); ok {
			if sv, ok := Lookup(m, p.Sub); ok {
				out = append(out, elements(sv)...)
			}
		}
	}
	return out
}

func present(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case string:
		return v != ""
	case []any:
		for _, x := range v {
			if present(x) {
				return true
			}
		}
		return false
	case map[string]any:
		for _, x := range v {
			if present(x) {
				return true
			}
		}
		return false
	}
	return true
}

func (m matcher) compare(c *Compare, obj map[string]any, prefix string, top bool) bool {
	vals := values(obj, c.Path, top)
	if c.Op == Pr {
		for _, v := range vals {
			if present(v) {
				return true
			}
		}
		return false
	}
	key := prefix + c.Path.Key()
	// Complex values compare through their "value" sub-attribute.
	scalars := vals[:0:0]
	for _, v := range vals {
		if mv, ok := v.(map[string]any); ok {
			key = prefix + c.Path.Key() + ".value"
			if x, ok := Lookup(mv, "value"); ok {
				scalars = append(scalars, elements(x)...)
			}
			continue
		}
		scalars = append(scalars, v)
	}
	fold := !m.caseExact(key)
	switch {
	case c.Op == Ne:
		return !anyMatch(scalars, Eq, c.Value, fold)
	case c.Op == Eq && c.Value == nil:
		for _, v := range scalars {
			if present(v) {
				return false
			}
		}
		return true
	}
	return anyMatch(scalars, c.Op, c.Value, fold)
}

func anyMatch(vals []any, op Op, want any, fold bool) bool {
	for _, v := range vals {
		if compareOne(v, op, want, fold) {
			return true
		}
	}
	return false
}

// ParseBool accepts JSON booleans' spellings in any case ("True", "FALSE").
func ParseBool(s string) (bool, bool) {
	switch {
	case strings.EqualFold(s, "true"):
		return true, true
	case strings.EqualFold(s, "false"):
		return false, true
	}
	return false, false
}

func asBool(v any) (bool, bool) {
	switch v := v.(type) {
	case bool:
		return v, true
	case string:
		return ParseBool(v)
	}
	return false, false
}

func parseNumber(s string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

func asNumber(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case float32:
		return float64(v), true
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	case int32:
		return float64(v), true
	case json.Number:
		return parseNumber(string(v))
	case string:
		return parseNumber(v)
	}
	return 0, false
}

// ParseTime parses an RFC 3339 date-time and returns it as Unix
// microseconds, the precision timestamps are compared at.
func ParseTime(s string) (int64, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, false
	}
	return t.UnixMicro(), true
}

func compareOne(v any, op Op, want any, fold bool) bool {
	switch w := want.(type) {
	case bool:
		b, ok := asBool(v)
		return ok && op == Eq && b == w
	case float64:
		switch v.(type) {
		case bool, map[string]any, []any, nil:
			return false
		}
		f, ok := asNumber(v)
		return ok && ordered(op, cmpFloat(f, w))
	case string:
		switch v := v.(type) {
		case bool:
			b, ok := ParseBool(w)
			return ok && op == Eq && v == b
		case string:
			return compareStrings(v, op, w, fold)
		case nil, map[string]any, []any:
			return false
		default:
			f, ok := asNumber(v)
			if !ok {
				return false
			}
			wf, ok := parseNumber(w)
			return ok && ordered(op, cmpFloat(f, wf))
		}
	}
	return false
}

func compareStrings(v string, op Op, w string, fold bool) bool {
	switch op {
	case Eq, Gt, Ge, Lt, Le:
		if tv, ok := ParseTime(v); ok {
			if tw, ok := ParseTime(w); ok {
				return ordered(op, cmpInt(tv, tw))
			}
		}
	}
	if fold {
		v, w = Fold(v), Fold(w)
	}
	switch op {
	case Co:
		return strings.Contains(v, w)
	case Sw:
		return strings.HasPrefix(v, w)
	case Ew:
		return strings.HasSuffix(v, w)
	}
	return ordered(op, strings.Compare(v, w))
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func ordered(op Op, c int) bool {
	switch op {
	case Eq:
		return c == 0
	case Gt:
		return c > 0
	case Ge:
		return c >= 0
	case Lt:
		return c < 0
	case Le:
		return c <= 0
	}
	return false
}
