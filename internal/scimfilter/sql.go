package scimfilter

import (
	"strings"
)

// Kind tells ToSQL how a column stores an attribute and so how to compare.
type Kind int

// Column kinds.
const (
	// StringFold: a case-insensitive string attribute whose column holds
	// Fold(value) (e.g. user_name_lower); compared with a folded argument, so
	// an index on the column is used.
	StringFold Kind = iota + 1
	// StringCI: a case-insensitive string attribute stored as given; compared
	// as LOWER(col) (see lowerSQL). Only arguments that are pure ASCII are
	// translated, because SQLite's LOWER folds ASCII only.
	StringCI
	// StringExact: a case-exact string attribute (id, externalId).
	StringExact
	// Bool: a boolean column; arguments are Go bools.
	Bool
	// TimeMicros: a date-time stored as BIGINT Unix microseconds.
	TimeMicros
)

// Column maps an attribute to an SQL expression.
type Column struct {
	Expr string // e.g. "u.user_name_lower"
	Kind Kind
}

// MultiValued maps a multi-valued attribute to a child table, queried with
// EXISTS (SELECT 1 FROM <Table> WHERE <Join> AND <condition>).
type MultiValued struct {
	Table string // e.g. "mirror_user_emails e"
	Join  string // correlation with the outer row, e.g. "e.user_id = u.id"
	// Sub maps lower-cased sub-attribute names to the child table's columns.
	Sub map[string]Column
	// Default is the sub-attribute compared when the attribute is compared
	// without one ("emails eq ..." compares "value").
	Default string
}

// Mapping tells ToSQL which attributes it can translate. The store package
// may build its own; UserMapping and GroupMapping match roster's schema.
//
// Assumptions the SQL relies on to agree with Match: an absent attribute is
// NULL (or, for strings, ”); StringFold columns hold Fold(value); Bool
// columns hold the attribute as a boolean (IdPs' "True"/"False" strings
// converted); TimeMicros columns hold ParseTime(value); a multi-valued
// attribute has one child row per element (also for an element whose value
// is empty), with NULL for absent sub-attributes.
type Mapping struct {
	// Columns maps AttrPath.Key() values ("username", "name.givenname",
	// "meta.lastmodified", "urn:...:enterprise:2.0:user:employeenumber") to
	// columns.
	Columns map[string]Column
	// Multi maps lower-cased multi-valued attribute names ("emails",
	// "members", or "urn:...:name" for an extension's) to child tables.
	Multi map[string]MultiValued
}

// UserMapping translates user filters for roster's mirror tables, with the
// users table aliased u.
var UserMapping = Mapping{
	Columns: map[string]Column{
		"id":                {"u.id", StringExact},
		"externalid":        {"u.external_id", StringExact},
		"username":          {"u.user_name_lower", StringFold},
		"displayname":       {"u.display_name", StringCI},
		"name.givenname":    {"u.given_name", StringCI},
		"name.familyname":   {"u.family_name", StringCI},
		"active":            {"u.active", Bool},
		"meta.created":      {"u.created_at", TimeMicros},
		"meta.lastmodified": {"u.updated_at", TimeMicros},
	},
	Multi: map[string]MultiValued{
		"emails": {
			Table: "mirror_user_emails e",
			Join:  "e.directory_id = u.directory_id AND e.user_id = u.id",
			Sub: map[string]Column{
				"value":   {"e.value_lower", StringFold},
				"type":    {"e.type", StringCI},
				"primary": {"e.is_primary", Bool},
			},
			Default: "value",
		},
	},
}

// GroupMapping translates group filters for roster's mirror tables, with the
// groups table aliased g.
var GroupMapping = Mapping{
	Columns: map[string]Column{
		"id":                {"g.id", StringExact},
		"externalid":        {"g.external_id", StringExact},
		"displayname":       {"g.display_name_lower", StringFold},
		"meta.created":      {"g.created_at", TimeMicros},
		"meta.lastmodified": {"g.updated_at", TimeMicros},
	},
	Multi: map[string]MultiValued{
		"members": {
			Table: "mirror_members m",
			Join:  "m.directory_id = g.directory_id AND m.group_id = g.id",
			Sub: map[string]Column{
				"value": {"m.member_id", StringExact},
			},
			Default: "value",
		},
	},
}

// frag is an SQL condition with its arguments; constant conditions are
// tracked to simplify.
type frag struct {
	sql  string
	args []any
	k    int // +1 always true, -1 always false, 0 otherwise
}

var (
	fTrue  = frag{sql: "1=1", k: 1}
	fFalse = frag{sql: "1=0", k: -1}
)

// approx is a translation: sup selects a superset of the matching rows, sub
// a subset; they are equal (and exact true) when the translation is exact.
// Keeping both lets NOT stay correct: NOT of a subset is a superset.
type approx struct {
	sup, sub frag
	exact    bool
}

func exactly(f frag) approx               { return approx{sup: f, sub: f, exact: true} }
func untranslatable() approx              { return approx{sup: fTrue, sub: fFalse} }
func leaf(sql string, args ...any) approx { return exactly(frag{sql: sql, args: args}) }

func and(a, b frag) frag {
	switch {
	case a.k < 0 || b.k < 0:
		return fFalse
	case a.k > 0:
		return b
	case b.k > 0:
		return a
	}
	return frag{sql: "(" + a.sql + " AND " + b.sql + ")", args: concat(a.args, b.args)}
}

func or(a, b frag) frag {
	switch {
	case a.k > 0 || b.k > 0:
		return fTrue
	case a.k < 0:
		return b
	case b.k < 0:
		return a
	}
	return frag{sql: "(" + a.sql + " OR " + b.sql + ")", args: concat(a.args, b.args)}
}

// not negates f; a NULL (unknown) operand counts as false, as in Match.
func not(f frag) frag {
	switch {
	case f.k > 0:
		return fFalse
	case f.k < 0:
		return fTrue
	}
	return frag{sql: "NOT COALESCE(" + f.sql + ", 1=0)", args: f.args}
}

func exists(mv MultiValued, f frag) frag {
	if f.k < 0 {
		return fFalse
	}
	cond := mv.Join
	if f.k == 0 {
		cond = "(" + mv.Join + ") AND " + f.sql
	}
	return frag{sql: "EXISTS (SELECT 1 FROM " + mv.Table + " WHERE " + cond + ")", args: f.args}
}

func concat(a, b []any) []any {
	out := make([]any, 0, len(a)+len(b))
	return append(append(out, a...), b...)
}

// ToSQL translates e into an SQL condition with '?' placeholders (in args
// order; no other '?' appears in cond), portable to SQLite and PostgreSQL.
//
// When exact is true, cond selects exactly the rows whose resources Match
// (with DefaultCaseExact, or a caseExact agreeing with the Mapping's kinds).
// When false, part of the filter could not be translated and cond selects a
// superset: the caller must post-filter the rows with Match. cond never
// excludes a matching row. Untranslatable parts are attributes missing
// from m, ordering comparisons on strings (collations differ between
// databases), substring operators on case-exact or date-time columns,
// non-ASCII arguments on StringCI columns, and values of the wrong type.
func ToSQL(e Expr, m Mapping) (cond string, args []any, exact bool) {
	a := toSQL(e, m, nil)
	return a.sup.sql, a.sup.args, a.exact
}

// toSQL translates e; mv is the enclosing multi-valued attribute inside a
// value filter (paths are then relative to its elements).
func toSQL(e Expr, m Mapping, mv *MultiValued) approx {
	switch x := e.(type) {
	case *And:
		l, r := toSQL(x.Left, m, mv), toSQL(x.Right, m, mv)
		return approx{sup: and(l.sup, r.sup), sub: and(l.sub, r.sub), exact: l.exact && r.exact}
	case *Or:
		l, r := toSQL(x.Left, m, mv), toSQL(x.Right, m, mv)
		return approx{sup: or(l.sup, r.sup), sub: or(l.sub, r.sub), exact: l.exact && r.exact}
	case *Not:
		in := toSQL(x.X, m, mv)
		return approx{sup: not(in.sub), sub: not(in.sup), exact: in.exact}
	case *ValuePath:
		if mv != nil {
			return untranslatable()
		}
		child, ok := m.multi(x.Path)
		if !ok {
			return untranslatable()
		}
		in := toSQL(x.Filter, m, &child)
		return approx{sup: exists(child, in.sup), sub: exists(child, in.sub), exact: in.exact}
	case *Compare:
		if mv != nil {
			if x.Path.Sub != "" {
				return untranslatable()
			}
			col, ok := mv.Sub[strings.ToLower(x.Path.Name)]
			if !ok {
				return untranslatable()
			}
			return compareSQL(col, x.Op, x.Value)
		}
		if col, ok := m.Columns[x.Path.Key()]; ok {
			return compareSQL(col, x.Op, x.Value)
		}
		child, ok := m.multi(x.Path)
		if !ok {
			return untranslatable()
		}
		sub := x.Path.Sub
		if sub == "" {
			sub = child.Default
		}
		col, ok := child.Sub[strings.ToLower(sub)]
		if x.Op == Pr && x.Path.Sub == "" {
			// Some element is non-empty: any row is a superset; a row with
			// a non-empty default sub-attribute a subset.
			a := approx{sup: exists(child, fTrue), sub: fFalse}
			if ok {
				a.sub = exists(child, compareSQL(col, Pr, nil).sub)
			}
			return a
		}
		if !ok {
			return untranslatable()
		}
		if x.Op == Ne {
			// ne is "no value equals".
			in := compareSQL(col, Eq, x.Value)
			return approx{sup: not(exists(child, in.sub)), sub: not(exists(child, in.sup)), exact: in.exact}
		}
		if x.Op == Eq && x.Value == nil {
			return untranslatable()
		}
		in := compareSQL(col, x.Op, x.Value)
		return approx{sup: exists(child, in.sup), sub: exists(child, in.sub), exact: in.exact}
	}
	return untranslatable()
}

func (m Mapping) multi(p AttrPath) (MultiValued, bool) {
	k := strings.ToLower(p.Name)
	if ext := p.Extension(); ext != "" {
		k = strings.ToLower(ext) + ":" + k
	}
	mv, ok := m.Multi[k]
	return mv, ok
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// likePattern escapes LIKE wildcards for ESCAPE '\'.
func likePattern(op Op, s string) string {
	s = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
	switch op {
	case Co:
		return "%" + s + "%"
	case Sw:
		return s + "%"
	default:
		return "%" + s
	}
}

const likeEscape = ` ESCAPE '\'`

// lowerSQL folds col in SQL the way Fold does for the purpose of comparing
// with an ASCII argument: SQLite's LOWER folds ASCII only, which agrees with
// Fold except for the only two non-ASCII characters Fold maps to ASCII,
// U+0130 (İ → i) and U+212A (Kelvin sign → k); they are replaced first.
func lowerSQL(col string) string {
	return "LOWER(REPLACE(REPLACE(" + col + ", '\u0130', 'i'), '\u212A', 'k'))"
}

// compareSQL translates one comparison on a single-valued column. Every
// exact result is NULL only where Match is false, so NOT can wrap it.
func compareSQL(col Column, op Op, value any) approx {
	c := col.Expr
	if op == Pr {
		switch col.Kind {
		case StringFold, StringCI, StringExact:
			return leaf("(" + c + " IS NOT NULL AND " + c + " <> '')")
		case Bool, TimeMicros:
			return leaf(c + " IS NOT NULL")
		}
		return untranslatable()
	}
	switch col.Kind {
	case StringFold, StringCI, StringExact:
		s, ok := value.(string)
		if !ok {
			return untranslatable()
		}
		if _, isTime := ParseTime(s); isTime && op != Co && op != Sw && op != Ew {
			// Match compares date-time strings as instants.
			return untranslatable()
		}
		switch col.Kind {
		case StringFold:
			s = Fold(s)
		case StringCI:
			if !isASCII(s) {
				return untranslatable()
			}
			s = Fold(s)
			c = lowerSQL(c)
		}
		switch op {
		case Eq:
			return leaf(c+" = ?", s)
		case Ne:
			return leaf("("+c+" IS NULL OR "+c+" <> ?)", s)
		case Co, Sw, Ew:
			f := frag{sql: c + " LIKE ?" + likeEscape, args: []any{likePattern(op, s)}}
			if col.Kind == StringExact {
				// SQLite's LIKE ignores ASCII case: a superset only.
				return approx{sup: f, sub: fFalse}
			}
			return exactly(f)
		}
		return untranslatable()
	case Bool:
		var b bool
		switch v := value.(type) {
		case bool:
			b = v
		case string:
			var ok bool
			if b, ok = ParseBool(v); !ok {
				return untranslatable()
			}
		default:
			return untranslatable()
		}
		switch op {
		case Eq:
			return leaf(c+" = ?", b)
		case Ne:
			return leaf("("+c+" IS NULL OR "+c+" <> ?)", b)
		}
		return untranslatable()
	case TimeMicros:
		s, ok := value.(string)
		if !ok {
			return untranslatable()
		}
		t, ok := ParseTime(s)
		if !ok {
			return untranslatable()
		}
		switch op {
		case Eq:
			return leaf(c+" = ?", t)
		case Ne:
			return leaf("("+c+" IS NULL OR "+c+" <> ?)", t)
		case Gt:
			return leaf(c+" > ?", t)
		case Ge:
			return leaf(c+" >= ?", t)
		case Lt:
			return leaf(c+" < ?", t)
		case Le:
			return leaf(c+" <= ?", t)
		}
		return untranslatable()
	}
	return untranslatable()
}
