package scim

import (
	"strings"
)

// projection applies attributes / excludedAttributes (RFC 7644 §3.4.2.5).
// Names are kept lower-cased with core schema URNs stripped: "name",
// "name.givenname", "emails.value", "urn:...:enterprise:2.0:user",
// "urn:...:enterprise:2.0:user:manager.value". A sub-attribute selects or
// drops only that part of its parent.
type projection struct {
	include map[string]bool // nil: no attributes parameter
	exclude map[string]bool
}

func parseProjection(q map[string][]string) projection {
	p := projection{}
	split := func(v string) map[string]bool {
		out := map[string]bool{}
		for _, a := range strings.Split(v, ",") {
			a = strings.ToLower(strings.TrimSpace(a))
			if a == "" {
				continue
			}
			for _, core := range []string{strings.ToLower(URNUser) + ":", strings.ToLower(URNGroup) + ":"} {
				a = strings.TrimPrefix(a, core)
			}
			out[a] = true
		}
		return out
	}
	for k, vs := range q {
		switch strings.ToLower(k) {
		case "attributes":
			p.include = split(strings.Join(vs, ","))
		case "excludedattributes":
			p.exclude = split(strings.Join(vs, ","))
		}
	}
	return p
}

// wants reports whether an attribute is returned, wholly or in part (used
// to skip loading members).
func (p projection) wants(attr string) bool {
	a := strings.ToLower(attr)
	if p.include != nil {
		if p.include[a] {
			return true
		}
		for k := range p.include {
			if strings.HasPrefix(k, a+".") {
				return true
			}
		}
		return false
	}
	return !p.exclude[a]
}

// subs returns what set names about the top-level attribute lk: whole when
// the attribute itself is named, else the named parts (sub-attribute names,
// or for an extension "attr" and "attr.sub" paths).
func subs(set map[string]bool, lk string) (whole bool, parts []string) {
	if set[lk] {
		return true, nil
	}
	sep := "."
	if strings.HasPrefix(lk, "urn:") {
		sep = ":"
	}
	for k := range set {
		if rest, ok := strings.CutPrefix(k, lk+sep); ok && rest != "" {
			parts = append(parts, rest)
		}
	}
	return false, parts
}

// pick keeps (keep true) or drops the named parts of v: a complex value, a
// list of complex values, or for extensions a complex value whose parts may
// themselves be "attr.sub".
func pick(v any, parts []string, keep bool) any {
	switch t := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range t {
			lk := strings.ToLower(k)
			whole, sub := false, []string(nil)
			for _, part := range parts {
				if part == lk {
					whole = true
				} else if rest, ok := strings.CutPrefix(part, lk+"."); ok {
					sub = append(sub, rest)
				}
			}
			switch {
			case whole && keep:
				out[k] = x
			case whole:
			case len(sub) > 0:
				if y := pick(x, sub, keep); y != nil {
					out[k] = y
				}
			case !keep:
				out[k] = x
			}
		}
		if keep && len(out) == 0 {
			return nil
		}
		return out
	case []any:
		out := make([]any, 0, len(t))
		for _, x := range t {
			if y := pick(x, parts, keep); y != nil {
				out = append(out, y)
			}
		}
		if keep && len(out) == 0 {
			return nil
		}
		return out
	}
	if keep {
		return nil
	}
	return v
}

func (p projection) apply(m map[string]any) map[string]any {
	if p.include == nil && p.exclude == nil {
		return m
	}
	out := map[string]any{}
	for k, v := range m {
		lk := strings.ToLower(k)
		if lk == "id" || lk == "schemas" {
			out[k] = v // returned always
			continue
		}
		if p.include != nil {
			whole, parts := subs(p.include, lk)
			switch {
			case whole:
				out[k] = v
			case len(parts) > 0:
				if x := pick(v, parts, true); x != nil {
					out[k] = x
				}
			}
			continue
		}
		whole, parts := subs(p.exclude, lk)
		switch {
		case whole:
		case len(parts) > 0:
			out[k] = pick(v, parts, false)
		default:
			out[k] = v
		}
	}
	return out
}
