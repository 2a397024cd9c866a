package oktafake

import (
	"fmt"
	"strings"
	"time"
	"unicode"
)

// The filter expressions Okta accepts in filter= (users, groups, System
// Log): attribute operator "value", joined by and / or, with parentheses.
// Operators: eq, gt, ge, lt, le, sw, co, ew, pr. Which attributes each
// endpoint allows is the caller's resolver.

type expr interface {
	eval(get func(attr string) (string, bool)) bool
}

type orExpr struct{ l, r expr }
type andExpr struct{ l, r expr }
type cmpExpr struct {
	attr, op, val string
}

func (e orExpr) eval(g func(string) (string, bool)) bool  { return e.l.eval(g) || e.r.eval(g) }
func (e andExpr) eval(g func(string) (string, bool)) bool { return e.l.eval(g) && e.r.eval(g) }

func (e cmpExpr) eval(g func(string) (string, bool)) bool {
	v, ok := g(e.attr)
	if e.op == "pr" {
		return ok && v != ""
	}
	if !ok {
		return false
	}
	switch e.op {
	case "eq":
		return v == e.val
	case "sw":
		return strings.HasPrefix(v, e.val)
	case "co":
		return strings.Contains(v, e.val)
	case "ew":
		return strings.HasSuffix(v, e.val)
	}
	c := compare(v, e.val)
	switch e.op {
	case "gt":
		return c > 0
	case "ge":
		return c >= 0
	case "lt":
		return c < 0
	case "le":
		return c <= 0
	}
	return false
}

// compare orders timestamps by time and everything else as strings.
func compare(a, b string) int {
	ta, errA := time.Parse(time.RFC3339Nano, a)
	tb, errB := time.Parse(time.RFC3339Nano, b)
	if errA == nil && errB == nil {
		return ta.Compare(tb)
	}
	return strings.Compare(a, b)
}

// parseFilter parses s; allowed reports whether an attribute may be used.
func parseFilter(s string, allowed func(attr string) bool) (expr, error) {
	p := &parser{toks: tokenize(s), allowed: allowed}
	if p.err != nil {
		return nil, p.err
	}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, fmt.Errorf("unexpected %q", p.toks[p.pos])
	}
	return e, nil
}

type parser struct {
	toks    []string
	pos     int
	err     error
	allowed func(string) bool
}

func (p *parser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *parser) next() string {
	t := p.peek()
	p.pos++
	return t
}

func (p *parser) or() (expr, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for strings.EqualFold(p.peek(), "or") {
		p.next()
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = orExpr{l, r}
	}
	return l, nil
}

func (p *parser) and() (expr, error) {
	l, err := p.factor()
	if err != nil {
		return nil, err
	}
	for strings.EqualFold(p.peek(), "and") {
		p.next()
		r, err := p.factor()
		if err != nil {
			return nil, err
		}
		l = andExpr{l, r}
	}
	return l, nil
}

func (p *parser) factor() (expr, error) {
	t := p.next()
	if t == "(" {
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.next() != ")" {
			return nil, fmt.Errorf("missing )")
		}
		return e, nil
	}
	if t == "" || t == ")" || strings.HasPrefix(t, `"`) {
		return nil, fmt.Errorf("expected an attribute, got %q", t)
	}
	if p.allowed != nil && !p.allowed(t) {
		return nil, fmt.Errorf("attribute %q is not supported", t)
	}
	op := strings.ToLower(p.next())
	switch op {
	case "pr":
		return cmpExpr{attr: t, op: op}, nil
	case "eq", "gt", "ge", "lt", "le", "sw", "co", "ew":
	default:
		return nil, fmt.Errorf("unknown operator %q", op)
	}
	v := p.next()
	if !strings.HasPrefix(v, `"`) {
		return nil, fmt.Errorf("expected a quoted value after %s %s", t, op)
	}
	return cmpExpr{attr: t, op: op, val: strings.ReplaceAll(strings.Trim(v, `"`), `\"`, `"`)}, nil
}

func tokenize(s string) []string {
	var toks []string
	rs := []rune(s)
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case unicode.IsSpace(r):
			i++
		case r == '(' || r == ')':
			toks = append(toks, string(r))
			i++
		case r == '"':
			j := i + 1
			for j < len(rs) && (rs[j] != '"' || rs[j-1] == '\\') {
				j++
			}
			if j < len(rs) {
				j++
			}
			toks = append(toks, string(rs[i:j]))
			i = j
		default:
			j := i
			for j < len(rs) && !unicode.IsSpace(rs[j]) && rs[j] != '(' && rs[j] != ')' && rs[j] != '"' {
				j++
			}
			toks = append(toks, string(rs[i:j]))
			i = j
		}
	}
	return toks
}
