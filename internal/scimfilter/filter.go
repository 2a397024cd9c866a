// Package scimfilter parses SCIM 2.0 filter expressions (RFC 7644 §3.4.2.2)
// and evaluates them against resources decoded as map[string]any. The store
// translates the parsed filters to SQL against its own tables.
//
// Parsing is delegated to github.com/scim2/filter-parser/v2. A thin
// pre-processing step works around what that parser does not accept although
// RFC 7644 allows it or identity providers send it:
//
//   - value paths are handled here: the bracketed filter is parsed as a full
//     filter (the library accepts at most two comparisons joined by one
//     and/or, without parentheses), and a value path may be followed by a
//     sub-attribute and a comparison, as in
//     emails[type eq "work"].value eq "x" (PATCH path syntax, also sent in
//     filters by some clients);
//   - JSON string escapes are decoded (the library returns them raw) and
//     lower-case hex digits in \u escapes are accepted;
//   - surrounding white space, tabs and new lines are tolerated.
package scimfilter

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	fp "github.com/scim2/filter-parser/v2"
)

// Limits that keep parsing cheap on hostile input.
const (
	MaxFilterLength = 8 << 10 // bytes
	MaxDepth        = 32      // nested parentheses
)

// Op is a comparison operator, always lower case.
type Op string

// Comparison operators of RFC 7644 §3.4.2.2.
const (
	Eq Op = "eq"
	Ne Op = "ne"
	Co Op = "co"
	Sw Op = "sw"
	Ew Op = "ew"
	Gt Op = "gt"
	Ge Op = "ge"
	Lt Op = "lt"
	Le Op = "le"
	Pr Op = "pr"
)

// CoreSchemaPrefix is the prefix of the core schema URNs
// (urn:ietf:params:scim:schemas:core:2.0:User, ...:Group). An attribute path
// qualified with a core schema URN refers to the top-level attribute.
const CoreSchemaPrefix = "urn:ietf:params:scim:schemas:core:2.0:"

// IsCoreURN reports whether urn names a core schema (case-insensitive).
func IsCoreURN(urn string) bool {
	return len(urn) >= len(CoreSchemaPrefix) && strings.EqualFold(urn[:len(CoreSchemaPrefix)], CoreSchemaPrefix)
}

// AttrPath is an attribute path: an optional schema URN, an attribute name
// and an optional sub-attribute name, all as written in the filter.
type AttrPath struct {
	URI  string // schema URN without the trailing colon; "" when absent
	Name string
	Sub  string
}

// Extension returns the extension schema URN the path is qualified with, or
// "" for unqualified and core-schema-qualified paths.
func (p AttrPath) Extension() string {
	if p.URI == "" || IsCoreURN(p.URI) {
		return ""
	}
	return p.URI
}

// Key returns the canonical lower-cased form of the path used for mappings
// and case-exactness look-ups: the core schema URN is dropped, an extension
// URN is kept ("urn:...:enterprise:2.0:user:employeenumber"), and the
// sub-attribute is joined with a dot ("name.givenname").
func (p AttrPath) Key() string {
	k := strings.ToLower(p.Name)
	if p.Sub != "" {
		k += "." + strings.ToLower(p.Sub)
	}
	if ext := p.Extension(); ext != "" {
		k = strings.ToLower(ext) + ":" + k
	}
	return k
}

func (p AttrPath) String() string {
	s := p.Name
	if p.URI != "" {
		s = p.URI + ":" + s
	}
	if p.Sub != "" {
		s += "." + p.Sub
	}
	return s
}

// Expr is a parsed filter: *And, *Or, *Not, *Compare or *ValuePath.
type Expr interface {
	String() string
	isExpr()
}

// And is "Left and Right".
type And struct{ Left, Right Expr }

// Or is "Left or Right".
type Or struct{ Left, Right Expr }

// Not is "not (X)".
type Not struct{ X Expr }

// Compare is an attribute expression: Path Op Value, or "Path pr".
// Value is a string, a float64, a bool or nil (the literal null); it is nil
// for Pr.
type Compare struct {
	Path  AttrPath
	Op    Op
	Value any
}

// ValuePath is attr[Filter]: true when some value of the multi-valued (or
// complex) attribute Path satisfies Filter, whose attribute paths are
// relative to that value. A value path followed by a sub-attribute and a
// comparison (emails[type eq "work"].value eq "x") is represented as
// ValuePath{emails, And{type eq "work", value eq "x"}}, which has the same
// meaning.
type ValuePath struct {
	Path   AttrPath // Sub is always empty
	Filter Expr
}

// Mentions says whether e compares or selects the top-level attribute name
// (core schema, any case), itself or one of its sub-attributes; the paths
// inside a value filter are relative to their value and do not count.
func Mentions(e Expr, name string) bool {
	top := func(p AttrPath) bool { return p.Extension() == "" && strings.EqualFold(p.Name, name) }
	switch x := e.(type) {
	case *And:
		return Mentions(x.Left, name) || Mentions(x.Right, name)
	case *Or:
		return Mentions(x.Left, name) || Mentions(x.Right, name)
	case *Not:
		return Mentions(x.X, name)
	case *Compare:
		return top(x.Path)
	case *ValuePath:
		return top(x.Path)
	}
	return false
}

func (*And) isExpr()       {}
func (*Or) isExpr()        {}
func (*Not) isExpr()       {}
func (*Compare) isExpr()   {}
func (*ValuePath) isExpr() {}

func (e *And) String() string {
	return paren(e.Left, true) + " and " + paren(e.Right, true)
}

func (e *Or) String() string { return e.Left.String() + " or " + e.Right.String() }

func (e *Not) String() string { return "not (" + e.X.String() + ")" }

func (e *ValuePath) String() string { return e.Path.String() + "[" + e.Filter.String() + "]" }

func (e *Compare) String() string {
	if e.Op == Pr {
		return e.Path.String() + " pr"
	}
	return e.Path.String() + " " + string(e.Op) + " " + literal(e.Value)
}

func paren(e Expr, inAnd bool) string {
	if _, ok := e.(*Or); ok && inAnd {
		return "(" + e.String() + ")"
	}
	return e.String()
}

// literal renders a comparison value in filter syntax.
func literal(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case string:
		return quote(v)
	default:
		return quote(fmt.Sprint(v))
	}
}

// quote writes s as a filter string literal (JSON string syntax).
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Error is a filter that cannot be parsed or is not meaningful. The HTTP
// layer answers it with 400 and scimType invalidFilter.
type Error struct {
	Filter string
	Detail string
}

func (e *Error) Error() string { return "invalid filter: " + e.Detail }

// ScimType is the RFC 7644 §3.12 scimType of the error: "invalidFilter".
func (e *Error) ScimType() string { return "invalidFilter" }

// Status is the HTTP status for the error: 400.
func (e *Error) Status() int { return 400 }

func errorf(filter, format string, args ...any) *Error {
	return &Error{Filter: filter, Detail: fmt.Sprintf(format, args...)}
}

// Parse parses a SCIM filter. Operators, "and", "or", "not", "true", "false"
// and "null" are case-insensitive. Errors are *Error.
func Parse(s string) (e Expr, err error) {
	if len(s) > MaxFilterLength {
		return nil, errorf(s, "filter longer than %d bytes", MaxFilterLength)
	}
	defer func() {
		if r := recover(); r != nil {
			e, err = nil, errorf(s, "cannot parse filter: %v", r)
		}
	}()
	return parse(s, true, true)
}

// valuePathRef records a value path cut out of the filter text.
type valuePathRef struct {
	path   AttrPath
	filter Expr
}

// parse parses s; outer tells whether value paths are allowed (they are not
// inside a value path); fast enables fastCompare.
func parse(s string, outer, fast bool) (Expr, error) {
	if outer && !utf8.ValidString(s) {
		return nil, errorf(strings.ToValidUTF8(s, "\uFFFD"), "filter is not valid UTF-8")
	}
	orig := s
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errorf(orig, "empty filter")
	}
	prefix := placeholderPrefix(s)
	text, refs, err := rewrite(s, prefix, outer, fast)
	if err != nil {
		return nil, err
	}
	if c, ok := fastCompare(text); ok && fast {
		return finishCompare(orig, c, prefix, refs)
	}
	lib, err := fp.ParseFilterNumber([]byte(text))
	if err != nil {
		return nil, syntaxError(orig)
	}
	return convert(orig, lib, prefix, refs)
}

// syntaxError words a parser failure for the client: the parser's own
// message names its grammar rules and points at where it began
// backtracking, which helps no one, so the answer says what a filter looks
// like instead.
func syntaxError(orig string) *Error {
	return errorf(orig, `cannot parse %q: a filter is an attribute, an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) and a value, such as userName eq "ann@example.com", joined with and, or, not and parentheses`, orig)
}

// placeholderPrefix returns an attribute name prefix that does not occur in s.
func placeholderPrefix(s string) string {
	low := strings.ToLower(s)
	p := "$rostervp"
	for strings.Contains(low, p) {
		p += "x"
	}
	return p
}

func isAttrChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == ':' || c == '.' || c == '_' || c == '-' || c == '$'
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// scanString copies the string literal starting at s[i] == '"' to out
// (upper-casing \u hex digits) and returns the index after its closing quote.
func scanString(s string, i int, out *strings.Builder) (int, bool) {
	out.WriteByte('"')
	i++
	for i < len(s) {
		c := s[i]
		switch c {
		case '\\':
			out.WriteByte(c)
			i++
			if i >= len(s) {
				return i, false
			}
			out.WriteByte(s[i])
			if s[i] != 'u' {
				i++
				continue
			}
			j := i + 1
			for j < len(s) && j <= i+4 && isHex(s[j]) {
				out.WriteString(strings.ToUpper(s[j : j+1]))
				j++
			}
			i = j
		case '"':
			out.WriteByte(c)
			return i + 1, true
		default:
			out.WriteByte(c)
			i++
		}
	}
	return i, false
}

// rewrite normalises white space outside string literals, checks nesting,
// and replaces each value path attr[filter] (optionally followed by .sub)
// with a placeholder attribute that convert turns back into a ValuePath.
func rewrite(s, prefix string, outer, fast bool) (string, []valuePathRef, error) {
	var out strings.Builder
	var refs []valuePathRef
	depth := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"':
			var ok bool
			if i, ok = scanString(s, i, &out); !ok {
				return "", nil, errorf(s, "unterminated string")
			}
		case c == '\t' || c == '\n' || c == '\r':
			out.WriteByte(' ')
			i++
		case c == '(':
			depth++
			if depth > MaxDepth {
				return "", nil, errorf(s, "parentheses nested deeper than %d", MaxDepth)
			}
			out.WriteByte(c)
			i++
		case c == ')':
			depth--
			out.WriteByte(c)
			i++
		case c == ']':
			return "", nil, errorf(s, "unexpected ']'")
		case c == '[':
			if !outer {
				return "", nil, errorf(s, "value filters cannot be nested")
			}
			// The attribute path is the tail of what was written so far.
			before := strings.TrimRight(out.String(), " ")
			k := len(before)
			for k > 0 && isAttrChar(before[k-1]) {
				k--
			}
			attrText := before[k:]
			if attrText == "" {
				return "", nil, errorf(s, "'[' without an attribute name")
			}
			ap, err := parseAttrPath(attrText)
			if err != nil {
				return "", nil, errorf(s, "invalid attribute path %q before '['", attrText)
			}
			if ap.Sub != "" {
				return "", nil, errorf(s, "value filter on sub-attribute %q", attrText)
			}
			end, err := closingBracket(s, i)
			if err != nil {
				return "", nil, err
			}
			inner, err := parse(s[i+1:end], false, fast)
			if err != nil {
				return "", nil, err
			}
			out.Reset()
			out.WriteString(before[:k])
			out.WriteString(prefix + strconv.Itoa(len(refs)))
			refs = append(refs, valuePathRef{path: ap, filter: inner})
			i = end + 1
			if i < len(s) && s[i] == '.' {
				// .sub: keep it, the comparison that follows stays in place.
				out.WriteByte('.')
				i++
			} else {
				out.WriteString(" pr")
			}
		default:
			out.WriteByte(c)
			i++
		}
	}
	if depth != 0 {
		return "", nil, errorf(s, "unbalanced parentheses")
	}
	return out.String(), refs, nil
}

// closingBracket returns the index of the ']' closing the '[' at s[open].
func closingBracket(s string, open int) (int, error) {
	var sink strings.Builder
	for i := open + 1; i < len(s); {
		switch s[i] {
		case '"':
			var ok bool
			if i, ok = scanString(s, i, &sink); !ok {
				return 0, errorf(s, "unterminated string")
			}
		case '[':
			return 0, errorf(s, "value filters cannot be nested")
		case ']':
			return i, nil
		default:
			i++
		}
	}
	return 0, errorf(s, "missing ']'")
}

func parseAttrPath(s string) (AttrPath, error) {
	// The library costs tens of microseconds a call, and every group
	// PATCH parses "members"; fastAttrPath agrees with it (FuzzPath).
	if ap, ok := fastAttrPath(s); ok {
		return ap, nil
	}
	return libraryAttrPath(s)
}

func libraryAttrPath(s string) (AttrPath, error) {
	lp, err := fp.ParseAttrPath([]byte(s))
	if err != nil {
		return AttrPath{}, err
	}
	return AttrPath{URI: lp.URI(), Name: lp.AttributeName, Sub: lp.SubAttributeName()}, nil
}

// convert turns the library's tree into ours.
func convert(orig string, e fp.Expression, prefix string, refs []valuePathRef) (Expr, error) {
	switch x := e.(type) {
	case *fp.LogicalExpression:
		l, err := convert(orig, x.Left, prefix, refs)
		if err != nil {
			return nil, err
		}
		r, err := convert(orig, x.Right, prefix, refs)
		if err != nil {
			return nil, err
		}
		if strings.EqualFold(string(x.Operator), "or") {
			return &Or{l, r}, nil
		}
		return &And{l, r}, nil
	case *fp.NotExpression:
		inner, err := convert(orig, x.Expression, prefix, refs)
		if err != nil {
			return nil, err
		}
		return &Not{inner}, nil
	case *fp.AttributeExpression:
		c := &Compare{
			Path: AttrPath{URI: x.AttributePath.URI(), Name: x.AttributePath.AttributeName, Sub: x.AttributePath.SubAttributeName()},
			Op:   Op(strings.ToLower(string(x.Operator))),
		}
		if c.Op != Pr {
			v, err := convertValue(orig, x.CompareValue)
			if err != nil {
				return nil, err
			}
			c.Value = v
		}
		return finishCompare(orig, c, prefix, refs)
	case *fp.ValuePath:
		// Not produced: brackets are rewritten before the library sees them.
		return nil, errorf(orig, "unexpected value path")
	default:
		return nil, errorf(orig, "unexpected expression %T", e)
	}
}

// finishCompare checks c and turns a placeholder back into its value path.
func finishCompare(orig string, c *Compare, prefix string, refs []valuePathRef) (Expr, error) {
	if c.Op != Pr {
		if err := checkCompare(orig, c); err != nil {
			return nil, err
		}
	}
	if name := strings.ToLower(c.Path.Name); c.Path.URI == "" && strings.HasPrefix(name, prefix) {
		n, err := strconv.Atoi(name[len(prefix):])
		if err != nil || n < 0 || n >= len(refs) {
			return nil, errorf(orig, "invalid attribute name %q", c.Path.Name)
		}
		ref := refs[n]
		if c.Path.Sub == "" {
			if c.Op != Pr {
				return nil, errorf(orig, "comparison on a value path needs a sub-attribute")
			}
			return &ValuePath{Path: ref.path, Filter: ref.filter}, nil
		}
		sub := &Compare{Path: AttrPath{Name: c.Path.Sub}, Op: c.Op, Value: c.Value}
		return &ValuePath{Path: ref.path, Filter: &And{ref.filter, sub}}, nil
	}
	return c, nil
}

func convertValue(orig string, v any) (any, error) {
	switch v := v.(type) {
	case nil, bool:
		return v, nil
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, errorf(orig, "number %s out of range", v)
		}
		return f, nil
	case int:
		return float64(v), nil
	case float64:
		return v, nil
	case string:
		var s string
		if err := json.Unmarshal([]byte(`"`+v+`"`), &s); err != nil {
			return nil, errorf(orig, "invalid string literal %q", v)
		}
		return s, nil
	default:
		return nil, errorf(orig, "unexpected value %v", v)
	}
}

// checkCompare rejects comparisons RFC 7644 says fail with invalidFilter:
// ordering on booleans or null, and substring operators on non-strings.
func checkCompare(orig string, c *Compare) error {
	switch c.Op {
	case Eq, Ne:
		return nil
	case Gt, Ge, Lt, Le:
		switch c.Value.(type) {
		case string, float64:
			return nil
		}
		return errorf(orig, "%s cannot compare %s", c.Op, literal(c.Value))
	case Co, Sw, Ew:
		if _, ok := c.Value.(string); ok {
			return nil
		}
		return errorf(orig, "%s needs a string, got %s", c.Op, literal(c.Value))
	default:
		return errorf(orig, "unknown operator %q", c.Op)
	}
}

// Path is a PATCH operation path (RFC 7644 §3.5.2): attrPath, or
// attrPath[valFilter] optionally followed by .subAttr. Attr.Sub holds the
// sub-attribute in both forms; Filter is nil when there is no value filter.
type Path struct {
	Attr   AttrPath
	Filter Expr
}

func (p Path) String() string {
	if p.Filter == nil {
		return p.Attr.String()
	}
	s := AttrPath{URI: p.Attr.URI, Name: p.Attr.Name}.String() + "[" + p.Filter.String() + "]"
	if p.Attr.Sub != "" {
		s += "." + p.Attr.Sub
	}
	return s
}

// ParsePath parses a PATCH path. Errors are *Error.
func ParsePath(s string) (p Path, err error) {
	if len(s) > MaxFilterLength {
		return Path{}, errorf(s, "path longer than %d bytes", MaxFilterLength)
	}
	defer func() {
		if r := recover(); r != nil {
			p, err = Path{}, errorf(s, "cannot parse path: %v", r)
		}
	}()
	t := strings.TrimSpace(s)
	open := -1
	for i := 0; i < len(t); i++ {
		if t[i] == '[' {
			open = i
			break
		}
		if t[i] == '"' || t[i] == ']' {
			return Path{}, errorf(s, "invalid path")
		}
	}
	if open < 0 {
		ap, err := parseAttrPath(t)
		if err != nil {
			return Path{}, errorf(s, "invalid path: %v", err)
		}
		return Path{Attr: ap}, nil
	}
	ap, err := parseAttrPath(strings.TrimRight(t[:open], " "))
	if err != nil {
		return Path{}, errorf(s, "invalid path: %v", err)
	}
	if ap.Sub != "" {
		return Path{}, errorf(s, "value filter on sub-attribute")
	}
	end, err := closingBracket(t, open)
	if err != nil {
		return Path{}, err
	}
	f, err := parse(t[open+1:end], false, true)
	if err != nil {
		return Path{}, err
	}
	rest := t[end+1:]
	if rest != "" {
		if rest[0] != '.' {
			return Path{}, errorf(s, "unexpected %q after ']'", rest)
		}
		sub, err := parseAttrPath(rest[1:])
		if err != nil || sub.URI != "" || sub.Sub != "" {
			return Path{}, errorf(s, "invalid sub-attribute %q", rest[1:])
		}
		ap.Sub = sub.Name
	}
	return Path{Attr: ap, Filter: f}, nil
}
