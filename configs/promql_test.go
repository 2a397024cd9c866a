package configs

import (
	"slices"
	"strings"
)

// metricNames returns the metric names a PromQL expression selects, in the
// order they appear (repeats kept once).
//
// It is a small tokenizer, not a parser: Prometheus's own parser
// (github.com/prometheus/prometheus/promql/parser) lives in a module whose
// go.mod requires some 250 modules (service discovery clients, cloud SDKs),
// too much to add for a test that only needs names. What a name is here:
// an identifier that is not a keyword, an aggregation, a function (followed
// by "("), a label name (inside {...} or the list after by, without, on,
// ignoring, group_left, group_right), a duration or a number, and not inside
// a string, a range [...] or a Grafana variable ($name).
func metricNames(expr string) []string {
	var names []string
	i := 0
	for i < len(expr) {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(expr, i)
		case c == '{':
			i = skipUntil(expr, i, '}')
		case c == '[':
			i = skipUntil(expr, i, ']')
		case c == '$':
			i++
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '{' || expr[i] == '}') {
				i++
			}
		case isDigit(c) || c == '.' && i+1 < len(expr) && isDigit(expr[i+1]):
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.') {
				i++
			}
		case isIdentStart(c):
			start := i
			for i < len(expr) && isIdent(expr[i]) {
				i++
			}
			word := expr[start:i]
			next := skipSpace(expr, i)
			lower := strings.ToLower(word)
			switch {
			case labelLists[lower]:
				if next < len(expr) && expr[next] == '(' {
					i = skipUntil(expr, next, ')')
				}
			case lower == "offset":
				// The duration after it: skip the next token.
				i = next
				for i < len(expr) && (isIdent(expr[i]) || expr[i] == '-') {
					i++
				}
			case keywords[lower] || aggregations[lower]:
			case next < len(expr) && expr[next] == '(':
				// A function call.
			default:
				if !slices.Contains(names, word) {
					names = append(names, word)
				}
			}
		default:
			i++
		}
	}
	return names
}

var (
	labelLists   = set("by", "without", "on", "ignoring", "group_left", "group_right")
	keywords     = set("and", "or", "unless", "bool", "atan2", "inf", "nan")
	aggregations = set("sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
		"bottomk", "topk", "quantile", "limitk", "limit_ratio")
)

func set(words ...string) map[string]bool {
	m := map[string]bool{}
	for _, w := range words {
		m[w] = true
	}
	return m
}

// skipString returns the index after the string literal starting at i.
func skipString(s string, i int) int {
	q := s[i]
	for i++; i < len(s); i++ {
		if s[i] == '\\' && q != '`' {
			i++
			continue
		}
		if s[i] == q {
			return i + 1
		}
	}
	return len(s)
}

// skipUntil returns the index after the close that ends the bracket at i,
// stepping over strings and nested brackets of the same kind.
func skipUntil(s string, i int, close byte) int {
	open, depth := s[i], 0
	for i < len(s) {
		switch s[i] {
		case '"', '\'', '`':
			i = skipString(s, i)
			continue
		case open:
			depth++
		case close:
			depth--
			if depth == 0 {
				return i + 1
			}
		}
		i++
	}
	return len(s)
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
func isIdent(c byte) bool { return isIdentStart(c) || isDigit(c) }
