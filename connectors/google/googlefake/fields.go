package googlefake

import (
	"fmt"
	"strings"
)

// selection is a parsed partial-response "fields" parameter: for each
// selected key, the selection below it (nil: the whole value).
type selection map[string]selection

// parseFields parses Google's partial-response syntax: a comma-separated
// list of field paths, "a/b" selecting b inside a, "a(b,c)" selecting b and c
// inside a, "*" selecting every key at its level.
func parseFields(s string) (selection, error) {
	p := &fieldParser{s: s}
	sel, err := p.list()
	if err != nil {
		return nil, err
	}
	if p.i != len(p.s) {
		return nil, fmt.Errorf("unexpected %q at %d", p.s[p.i], p.i)
	}
	return sel, nil
}

type fieldParser struct {
	s string
	i int
}

func (p *fieldParser) list() (selection, error) {
	sel := selection{}
	for {
		if err := p.field(sel); err != nil {
			return nil, err
		}
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
			continue
		}
		return sel, nil
	}
}

func (p *fieldParser) field(into selection) error {
	name := p.name()
	if name == "" {
		return fmt.Errorf("empty field name at %d", p.i)
	}
	if p.i < len(p.s) && p.s[p.i] == '/' {
		p.i++
		sub := into[name]
		if sub == nil {
			sub = selection{}
		}
		if err := p.field(sub); err != nil {
			return err
		}
		into[name] = sub
		return nil
	}
	if p.i < len(p.s) && p.s[p.i] == '(' {
		p.i++
		sub, err := p.list()
		if err != nil {
			return err
		}
		if p.i >= len(p.s) || p.s[p.i] != ')' {
			return fmt.Errorf("missing ) at %d", p.i)
		}
		p.i++
		merge(into, name, sub)
		return nil
	}
	into[name] = nil
	return nil
}

func merge(into selection, name string, sub selection) {
	cur, ok := into[name]
	if ok && cur == nil {
		return // already whole
	}
	if cur == nil {
		into[name] = sub
		return
	}
	for k, v := range sub {
		merge(cur, k, v)
	}
}

func (p *fieldParser) name() string {
	start := p.i
	for p.i < len(p.s) && !strings.ContainsRune(",/()", rune(p.s[p.i])) {
		p.i++
	}
	return strings.TrimSpace(p.s[start:p.i])
}

// apply keeps only the selected parts of v (maps and slices of maps, as
// encoding/json decodes them or as the fake builds them).
func (sel selection) apply(v any) any {
	if sel == nil {
		return v
	}
	switch t := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, sub := range sel {
			if k == "*" {
				for kk, vv := range t {
					if _, named := sel[kk]; !named {
						out[kk] = sub.apply(vv)
					}
				}
				continue
			}
			if vv, ok := t[k]; ok {
				out[k] = sub.apply(vv)
			}
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = sel.apply(e)
		}
		return out
	default:
		return v
	}
}
