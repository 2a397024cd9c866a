package store

import (
	"strings"

	"github.com/roster-dev/roster/internal/scimfilter"
)

// This file translates parsed SCIM filters to SQL conditions on the mirror
// tables, so that list requests are answered through the indexes.

// sqlKind tells filterSQL how a column stores an attribute and so how to
// compare.
type sqlKind int

// Column kinds.
const (
	// kindFold: a case-insensitive string attribute whose column holds
	// Fold(value) (e.g. user_name_lower); compared with a folded argument, so
	// an index on the column is used.
	kindFold sqlKind = iota + 1
	// kindCI: a case-insensitive string attribute stored as given; compared
	// as LOWER(col) (see lowerSQL). Only arguments that are pure ASCII are
	// translated, because SQLite's LOWER folds ASCII only.
	kindCI
	// kindExact: a case-exact string attribute (id, externalId).
	kindExact
	// kindBool: a boolean column; arguments are Go bools.
	kindBool
	// kindTime: a date-time stored as BIGINT Unix microseconds.
	kindTime
)

// sqlColumn maps an attribute to an SQL expression.
type sqlColumn struct {
	expr string // e.g. "u.user_name_lower"
	kind sqlKind
}

// sqlMulti maps a multi-valued attribute to a child table, queried with
// EXISTS (SELECT 1 FROM <table> WHERE <join> AND <condition>).
type sqlMulti struct {
	table string // e.g. "mirror_user_emails e"
	join  string // correlation with the outer row, e.g. "e.user_id = u.id"
	// sub maps lower-cased sub-attribute names to the child table's columns.
	sub map[string]sqlColumn
	// dflt is the sub-attribute compared when the attribute is compared
	// without one ("emails eq ..." compares "value").
	dflt string
}

// sqlMapping tells filterSQL which attributes it can translate.
//
// Assumptions the SQL relies on to agree with scimfilter.Match: an absent
// attribute is NULL (or, for strings, the empty string); kindFold columns hold
// Fold(value); kindBool columns hold the attribute as a boolean (IdPs'
// "True"/"False" strings converted); kindTime columns hold ParseTime(value);
// a multi-valued attribute has one child row per element (also for an
// element whose value is empty), with NULL for absent sub-attributes.
type sqlMapping struct {
	// columns maps AttrPath.Key() values ("username", "name.givenname",
	// "meta.lastmodified", "urn:...:enterprise:2.0:user:employeenumber") to
	// columns.
	columns map[string]sqlColumn
	// multi maps lower-cased multi-valued attribute names ("emails",
	// "members", or "urn:...:name" for an extension's) to child tables.
	multi map[string]sqlMulti
}

// userSQL translates user filters for the mirror tables, with the users
// table aliased u.
var userSQL = sqlMapping{
	columns: map[string]sqlColumn{
		"id":                {"u.id", kindExact},
		"externalid":        {"u.external_id", kindExact},
		"username":          {"u.user_name_lower", kindFold},
		"displayname":       {"u.display_name", kindCI},
		"name.givenname":    {"u.given_name", kindCI},
		"name.familyname":   {"u.family_name", kindCI},
		"active":            {"u.active", kindBool},
		"meta.created":      {"u.created_at", kindTime},
		"meta.lastmodified": {"u.updated_at", kindTime},
	},
	multi: map[string]sqlMulti{
		"emails": {
			table: "mirror_user_emails e",
			join:  "e.directory_id = u.directory_id AND e.user_id = u.id",
			sub: map[string]sqlColumn{
				"value":   {"e.value_lower", kindFold},
				"type":    {"e.type", kindCI},
				"primary": {"e.is_primary", kindBool},
			},
			dflt: "value",
		},
	},
}

// groupSQL translates group filters for the mirror tables, with the groups
// table aliased g.
var groupSQL = sqlMapping{
	columns: map[string]sqlColumn{
		"id":                {"g.id", kindExact},
		"externalid":        {"g.external_id", kindExact},
		"displayname":       {"g.display_name_lower", kindFold},
		"meta.created":      {"g.created_at", kindTime},
		"meta.lastmodified": {"g.updated_at", kindTime},
	},
	multi: map[string]sqlMulti{
		"members": {
			table: "mirror_members m",
			join:  "m.directory_id = g.directory_id AND m.group_id = g.id",
			sub: map[string]sqlColumn{
				"value": {"m.member_id", kindExact},
			},
			dflt: "value",
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

func fragAnd(a, b frag) frag {
	switch {
	case a.k < 0 || b.k < 0:
		return fFalse
	case a.k > 0:
		return b
	case b.k > 0:
		return a
	}
	return frag{sql: "(" + a.sql + " AND " + b.sql + ")", args: concatArgs(a.args, b.args)}
}

func fragOr(a, b frag) frag {
	switch {
	case a.k > 0 || b.k > 0:
		return fTrue
	case a.k < 0:
		return b
	case b.k < 0:
		return a
	}
	return frag{sql: "(" + a.sql + " OR " + b.sql + ")", args: concatArgs(a.args, b.args)}
}

// fragNot negates f; a NULL (unknown) operand counts as false, as in Match.
func fragNot(f frag) frag {
	switch {
	case f.k > 0:
		return fFalse
	case f.k < 0:
		return fTrue
	}
	return frag{sql: "NOT COALESCE(" + f.sql + ", 1=0)", args: f.args}
}

func fragExists(mv sqlMulti, f frag) frag {
	if f.k < 0 {
		return fFalse
	}
	cond := mv.join
	if f.k == 0 {
		cond = "(" + mv.join + ") AND " + f.sql
	}
	return frag{sql: "EXISTS (SELECT 1 FROM " + mv.table + " WHERE " + cond + ")", args: f.args}
}

func concatArgs(a, b []any) []any {
	out := make([]any, 0, len(a)+len(b))
	return append(append(out, a...), b...)
}

// filterSQL translates e into an SQL condition with '?' placeholders (in
// args order; no other '?' appears in cond), portable to SQLite and
// PostgreSQL.
//
// When exact is true, cond selects exactly the rows whose resources Match
// (with DefaultCaseExact, or a caseExact agreeing with the mapping's kinds).
// When false, part of the filter could not be translated and cond selects a
// superset: the caller must post-filter the rows with Match. cond never
// excludes a matching row. Untranslatable parts are attributes missing
// from m, ordering comparisons on strings (collations differ between
// databases), substring operators on case-exact or date-time columns,
// non-ASCII arguments on kindCI columns, and values of the wrong type.
func filterSQL(e scimfilter.Expr, m sqlMapping) (cond string, args []any, exact bool) {
	a := translate(e, m, nil)
	return a.sup.sql, a.sup.args, a.exact
}

// translate translates e; mv is the enclosing multi-valued attribute inside
// a value filter (paths are then relative to its elements).
func translate(e scimfilter.Expr, m sqlMapping, mv *sqlMulti) approx {
	switch x := e.(type) {
	case *scimfilter.And:
		l, r := translate(x.Left, m, mv), translate(x.Right, m, mv)
		return approx{sup: fragAnd(l.sup, r.sup), sub: fragAnd(l.sub, r.sub), exact: l.exact && r.exact}
	case *scimfilter.Or:
		l, r := translate(x.Left, m, mv), translate(x.Right, m, mv)
		return approx{sup: fragOr(l.sup, r.sup), sub: fragOr(l.sub, r.sub), exact: l.exact && r.exact}
	case *scimfilter.Not:
		in := translate(x.X, m, mv)
		return approx{sup: fragNot(in.sub), sub: fragNot(in.sup), exact: in.exact}
	case *scimfilter.ValuePath:
		if mv != nil {
			return untranslatable()
		}
		child, ok := m.multiValued(x.Path)
		if !ok {
			return untranslatable()
		}
		in := translate(x.Filter, m, &child)
		return approx{sup: fragExists(child, in.sup), sub: fragExists(child, in.sub), exact: in.exact}
	case *scimfilter.Compare:
		if mv != nil {
			if x.Path.Sub != "" {
				return untranslatable()
			}
			col, ok := mv.sub[strings.ToLower(x.Path.Name)]
			if !ok {
				return untranslatable()
			}
			return compareSQL(col, x.Op, x.Value)
		}
		if col, ok := m.columns[x.Path.Key()]; ok {
			return compareSQL(col, x.Op, x.Value)
		}
		child, ok := m.multiValued(x.Path)
		if !ok {
			return untranslatable()
		}
		sub := x.Path.Sub
		if sub == "" {
			sub = child.dflt
		}
		col, ok := child.sub[strings.ToLower(sub)]
		if x.Op == scimfilter.Pr && x.Path.Sub == "" {
			// Some element is non-empty: any row is a superset; a row with
			// a non-empty default sub-attribute a subset.
			a := approx{sup: fragExists(child, fTrue), sub: fFalse}
			if ok {
				a.sub = fragExists(child, compareSQL(col, scimfilter.Pr, nil).sub)
			}
			return a
		}
		if !ok {
			return untranslatable()
		}
		if x.Op == scimfilter.Ne {
			// ne is "no value equals".
			in := compareSQL(col, scimfilter.Eq, x.Value)
			return approx{sup: fragNot(fragExists(child, in.sub)), sub: fragNot(fragExists(child, in.sup)), exact: in.exact}
		}
		if x.Op == scimfilter.Eq && x.Value == nil {
			return untranslatable()
		}
		in := compareSQL(col, x.Op, x.Value)
		return approx{sup: fragExists(child, in.sup), sub: fragExists(child, in.sub), exact: in.exact}
	}
	return untranslatable()
}

func (m sqlMapping) multiValued(p scimfilter.AttrPath) (sqlMulti, bool) {
	k := strings.ToLower(p.Name)
	if ext := p.Extension(); ext != "" {
		k = strings.ToLower(ext) + ":" + k
	}
	mv, ok := m.multi[k]
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
func likePattern(op scimfilter.Op, s string) string {
	s = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
	switch op {
	case scimfilter.Co:
		return "%" + s + "%"
	case scimfilter.Sw:
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
func compareSQL(col sqlColumn, op scimfilter.Op, value any) approx {
	c := col.expr
	if op == scimfilter.Pr {
		switch col.kind {
		case kindFold, kindCI, kindExact:
			return leaf("(" + c + " IS NOT NULL AND " + c + " <> '')")
		case kindBool, kindTime:
			return leaf(c + " IS NOT NULL")
		}
		return untranslatable()
	}
	switch col.kind {
	case kindFold, kindCI, kindExact:
		s, ok := value.(string)
		if !ok {
			return untranslatable()
		}
		if _, isTime := scimfilter.ParseTime(s); isTime && op != scimfilter.Co && op != scimfilter.Sw && op != scimfilter.Ew {
			// Match compares date-time strings as instants.
			return untranslatable()
		}
		switch col.kind {
		case kindFold:
			s = scimfilter.Fold(s)
		case kindCI:
			if !isASCII(s) {
				return untranslatable()
			}
			s = scimfilter.Fold(s)
			c = lowerSQL(c)
		}
		switch op {
		case scimfilter.Eq:
			return leaf(c+" = ?", s)
		case scimfilter.Ne:
			return leaf("("+c+" IS NULL OR "+c+" <> ?)", s)
		case scimfilter.Co, scimfilter.Sw, scimfilter.Ew:
			f := frag{sql: c + " LIKE ?" + likeEscape, args: []any{likePattern(op, s)}}
			if col.kind == kindExact {
				// SQLite's LIKE ignores ASCII case: a superset only.
				return approx{sup: f, sub: fFalse}
			}
			return exactly(f)
		}
		return untranslatable()
	case kindBool:
		var b bool
		switch v := value.(type) {
		case bool:
			b = v
		case string:
			var ok bool
			if b, ok = scimfilter.ParseBool(v); !ok {
				return untranslatable()
			}
		default:
			return untranslatable()
		}
		switch op {
		case scimfilter.Eq:
			return leaf(c+" = ?", b)
		case scimfilter.Ne:
			return leaf("("+c+" IS NULL OR "+c+" <> ?)", b)
		}
		return untranslatable()
	case kindTime:
		s, ok := value.(string)
		if !ok {
			return untranslatable()
		}
		t, ok := scimfilter.ParseTime(s)
		if !ok {
			return untranslatable()
		}
		switch op {
		case scimfilter.Eq:
			return leaf(c+" = ?", t)
		case scimfilter.Ne:
			return leaf("("+c+" IS NULL OR "+c+" <> ?)", t)
		case scimfilter.Gt:
			return leaf(c+" > ?", t)
		case scimfilter.Ge:
			return leaf(c+" >= ?", t)
		case scimfilter.Lt:
			return leaf(c+" < ?", t)
		case scimfilter.Le:
			return leaf(c+" <= ?", t)
		}
		return untranslatable()
	}
	return untranslatable()
}
