package scimfilter

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// The filter-parser library allocates per input character, which makes even
// `userName eq "x"` costly next to the rest of a request. Almost every filter an identity provider sends is a
// single comparison, so fastCompare recognises exactly that shape, and
// nothing more: anything else, or anything it is not sure about, goes to the
// library. FuzzParse checks that both agree wherever fastCompare answers.

// fastCompare parses `attrPath SP+ op SP+ (string|true|false)` or
// `attrPath SP+ pr`. ok is false when s has another shape.
func fastCompare(s string) (c *Compare, ok bool) {
	i := strings.IndexByte(s, ' ')
	if i <= 0 {
		return nil, false
	}
	path, ok := fastAttrPath(s[:i])
	if !ok {
		return nil, false
	}
	rest := strings.TrimLeft(s[i:], " ")
	if len(rest) < 2 {
		return nil, false
	}
	op := Op(strings.ToLower(rest[:2]))
	rest = rest[2:]
	if op == Pr {
		if rest != "" {
			return nil, false
		}
		return &Compare{Path: path, Op: Pr}, true
	}
	switch op {
	case Eq, Ne, Co, Sw, Ew, Gt, Ge, Lt, Le:
	default:
		return nil, false
	}
	if rest == "" || rest[0] != ' ' {
		return nil, false
	}
	rest = strings.TrimLeft(rest, " ")
	var v any
	switch {
	case strings.EqualFold(rest, "true"):
		v = true
	case strings.EqualFold(rest, "false"):
		v = false
	default:
		str, ok := fastString(rest)
		if !ok {
			return nil, false
		}
		v = str
	}
	return &Compare{Path: path, Op: op, Value: v}, true
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// fastAttrName accepts ATTRNAME = ["$"] ALPHA *(ALPHA / DIGIT / "-" / "_").
func fastAttrName(s string) bool {
	if strings.HasPrefix(s, "$") {
		s = s[1:]
	}
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlpha(c) && !isDigit(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// fastAttrPath accepts [URN ":"] ATTRNAME ["." ATTRNAME], the URN being
// colon-separated segments of letters, digits, "-" and ".".
func fastAttrPath(s string) (AttrPath, bool) {
	var p AttrPath
	if k := strings.LastIndexByte(s, ':'); k >= 0 {
		uri := s[:k]
		for _, seg := range strings.Split(uri, ":") {
			if seg == "" {
				return p, false
			}
			for i := 0; i < len(seg); i++ {
				if c := seg[i]; !isAlpha(c) && !isDigit(c) && c != '-' && c != '.' {
					return p, false
				}
			}
		}
		p.URI, s = uri, s[k+1:]
	}
	name, sub, hasSub := strings.Cut(s, ".")
	if !fastAttrName(name) || hasSub && !fastAttrName(sub) {
		return p, false
	}
	p.Name, p.Sub = name, sub
	return p, true
}

// fastString decodes a complete JSON string literal that the library's
// grammar also accepts.
func fastString(s string) (string, bool) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' || !utf8.ValidString(s) {
		return "", false
	}
	body := s[1 : len(s)-1]
	escaped := false
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c < 0x20:
			return "", false
		case c == '"':
			return "", false
		case c == '\\':
			if i+1 >= len(body) {
				return "", false
			}
			i++
			switch body[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(body) {
					return "", false
				}
				for k := 1; k <= 4; k++ {
					if !isHex(body[i+k]) {
						return "", false
					}
				}
				i += 4
			default:
				return "", false
			}
			escaped = true
		}
	}
	if !escaped {
		return body, true
	}
	var out string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return "", false
	}
	return out, true
}
