// Package patch applies SCIM 2.0 PATCH operations (RFC 7644 §3.5.2) to
// resources decoded as map[string]any, accepting what identity providers
// actually send (Okta, Microsoft Entra ID in both its default and
// aadOptscim062020 modes, OneLogin, JumpCloud, Rippling), and splits Group
// PATCH requests into member deltas so that large groups are never loaded
// to change one membership.
//
// Where the RFC and identity providers differ, this package does what the
// providers need:
//
//   - op names are case-insensitive ("Add", "Replace", "Remove");
//   - string booleans ("True", "false") are accepted for boolean attributes
//     and stored as booleans (Entra's default dialect); a number or a
//     boolean sent for a string attribute is an invalidValue error;
//   - a value for a single-valued attribute may come wrapped in a
//     one-element array or as {"value": v};
//   - a complex attribute that has a "value" sub-attribute also accepts a
//     bare value: the manager given as "id" is stored as {"value": "id"};
//     an empty string or null removes it;
//   - replace (or add) with a value filter that matches nothing adds a new
//     value built from the filter's "attr eq literal" terms, e.g.
//     replace emails[type eq "work"].value adds {"type": "work", "value": ...}
//     (RFC 7644 says noTarget; Entra and Okta expect the value to be
//     created). noTarget is returned only when the filter cannot describe a
//     new value (e.g. it uses co or or);
//   - remove with a value list on a multi-valued attribute (Entra's
//     {"op":"Remove","path":"members","value":[{"value":"id"}]}) removes
//     only the listed values;
//   - remove of something absent, and remove with a filter matching nothing,
//     succeed without change (a replayed request is harmless);
//   - replacing a read-only attribute with its current value (Okta sends the
//     group's id in a pathless replace) is allowed; a different value is a
//     mutability error;
//   - attributes the schema does not describe are stored as given;
//     mutability of sub-attributes (members.display, manager.displayName)
//     is not enforced because providers send them.
package patch

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/roster-dev/roster/internal/scimfilter"
)

// Operation is one PATCH operation as decoded from JSON.
type Operation struct {
	Op    string `json:"op"`
	Path  string `json:"path,omitempty"`
	Value any    `json:"value,omitempty"`
}

// SCIM error types (RFC 7644 §3.12) returned by this package.
const (
	ScimInvalidPath   = "invalidPath"
	ScimNoTarget      = "noTarget"
	ScimInvalidValue  = "invalidValue"
	ScimMutability    = "mutability"
	ScimInvalidSyntax = "invalidSyntax"
)

// Error is a PATCH request that cannot be applied. The HTTP layer answers
// it with 400 and the scimType Type.
type Error struct {
	Type   string // scimType
	Detail string
	Index  int // index of the failing operation, -1 when not known
}

func (e *Error) Error() string {
	if e.Index >= 0 {
		return fmt.Sprintf("patch operation %d: %s (%s)", e.Index, e.Detail, e.Type)
	}
	return fmt.Sprintf("patch: %s (%s)", e.Detail, e.Type)
}

// ScimType is the RFC 7644 §3.12 scimType.
func (e *Error) ScimType() string { return e.Type }

// Status is the HTTP status for the error: 400.
func (e *Error) Status() int { return 400 }

func errf(typ, format string, args ...any) *Error {
	return &Error{Type: typ, Detail: fmt.Sprintf(format, args...), Index: -1}
}

// Apply applies ops in order to a copy of resource and returns the copy.
// It is atomic: on error resource is untouched and nothing is returned.
// Errors are *Error.
func Apply(resource map[string]any, ops []Operation, s Schema) (map[string]any, error) {
	res, _ := deepCopy(resource).(map[string]any)
	if res == nil {
		res = map[string]any{}
	}
	p := &patcher{s: s, res: res}
	for i, op := range ops {
		if err := p.apply(op); err != nil {
			err.Index = i
			return nil, err
		}
	}
	p.tidyExtensions()
	return res, nil
}

type patcher struct {
	s   Schema
	res map[string]any
}

func opName(op string) string { return strings.ToLower(strings.TrimSpace(op)) }

func (p *patcher) apply(op Operation) *Error {
	path := strings.TrimSpace(op.Path)
	switch opName(op.Op) {
	case "add":
		return p.set(path, op.Value, false)
	case "replace":
		return p.set(path, op.Value, true)
	case "remove":
		if path == "" {
			return errf(ScimNoTarget, "remove needs a path")
		}
		return p.remove(path, op.Value)
	default:
		return errf(ScimInvalidSyntax, "unknown op %q", op.Op)
	}
}

// set performs add (replace=false) or replace.
func (p *patcher) set(path string, value any, replace bool) *Error {
	if path != "" {
		return p.setPath(path, value, replace)
	}
	m, ok := value.(map[string]any)
	if !ok {
		return errf(ScimInvalidValue, "an operation without path needs an object value")
	}
	for _, k := range sortedKeys(m) {
		if strings.EqualFold(k, "schemas") {
			p.mergeSchemas(m[k])
			continue
		}
		if err := p.setPath(k, m[k], replace); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// target is a resolved path.
type target struct {
	extKey  string     // key of the extension object in the resource, "" for core
	whole   bool       // the path is the extension object itself
	def     *Attribute // nil when the schema does not describe the attribute
	key     string     // key of the attribute in its parent
	keyPath string     // scimfilter.AttrPath key of the attribute, for case-exactness
	sub     string     // sub-attribute, "" when none
	subDef  *Attribute
	filter  scimfilter.Expr
}

func (p *patcher) resolve(raw string) (*target, *Error) {
	path, err := scimfilter.ParsePath(raw)
	if err != nil {
		return nil, errf(ScimInvalidPath, "invalid path %q: %v", raw, err)
	}
	ap := path.Attr
	t := &target{filter: path.Filter}
	attrs := p.s.Attributes
	known := true
	if ext := ap.Extension(); ext != "" {
		full := ext + ":" + ap.Name
		if e := p.s.Extension(full); e != nil || p.s.Extension(ext) == nil && hasKey(p.res, full) {
			// The path names an extension object itself.
			if ap.Sub != "" || path.Filter != nil {
				return nil, errf(ScimInvalidPath, "invalid path %q", raw)
			}
			t.whole = true
			t.extKey = full
			if e != nil {
				t.extKey = e.URN
			}
			if k, ok := scimfilter.FindKey(p.res, t.extKey); ok {
				t.extKey = k
			}
			return t, nil
		}
		t.extKey = ext
		if e := p.s.Extension(ext); e != nil {
			t.extKey, attrs = e.URN, e.Attributes
		} else {
			known = false
		}
		if k, ok := scimfilter.FindKey(p.res, t.extKey); ok {
			t.extKey = k
		}
	}
	if known {
		t.def = find(attrs, ap.Name)
	}
	t.key = ap.Name
	if t.def != nil {
		t.key = t.def.Name
	}
	if parent := p.container(t, false); parent != nil {
		if k, ok := scimfilter.FindKey(parent, ap.Name); ok {
			t.key = k
		}
	}
	t.keyPath = scimfilter.AttrPath{URI: ap.URI, Name: ap.Name}.Key()
	if path.Filter != nil && t.def != nil && !t.def.MultiValued {
		return nil, errf(ScimInvalidPath, "%q is not multi-valued", ap.Name)
	}
	if ap.Sub != "" {
		if t.def != nil && t.def.Type != Complex {
			return nil, errf(ScimInvalidPath, "%q has no sub-attributes", ap.Name)
		}
		t.sub = ap.Sub
		if t.def != nil {
			if t.subDef = find(t.def.Sub, ap.Sub); t.subDef != nil {
				t.sub = t.subDef.Name
			}
		}
	}
	return t, nil
}

// unknownExtension tells whether path looks like the URN of an extension
// the schema does not describe (urn:...:CustomExtension:2.0:User): schema
// URNs end with a capitalised resource type name, attribute names do not
// start with a capital.
func (p *patcher) unknownExtension(path string) bool {
	path = strings.TrimSpace(path)
	if len(path) < 4 || !strings.EqualFold(path[:4], "urn:") || strings.ContainsAny(path, "[ ") ||
		scimfilter.IsCoreURN(path) || p.s.Extension(path) != nil {
		return false
	}
	i := strings.LastIndexByte(path, ':')
	if i < 0 || i+1 >= len(path) || strings.Contains(path[i:], ".") {
		return false
	}
	c := path[i+1]
	if c < 'A' || c > 'Z' {
		return false
	}
	// Not an attribute of a known extension either.
	return p.s.Extension(path[:i]) == nil
}

func hasKey(m map[string]any, k string) bool {
	_, ok := scimfilter.FindKey(m, k)
	return ok
}

// container returns the object holding t's attribute, creating an absent
// extension object when create is set; nil when it does not exist.
func (p *patcher) container(t *target, create bool) map[string]any {
	if t.extKey == "" {
		return p.res
	}
	if m, ok := p.res[t.extKey].(map[string]any); ok {
		return m
	}
	if !create {
		return nil
	}
	m := map[string]any{}
	p.res[t.extKey] = m
	return m
}

// caseExact returns the case-exactness function for matching the elements
// of t's attribute with a value filter.
func (p *patcher) caseExact(t *target) func(string) bool {
	return func(k string) bool { return p.s.CaseExact(t.keyPath + "." + k) }
}

func (p *patcher) setPath(path string, value any, replace bool) *Error {
	if m, ok := value.(map[string]any); ok && p.unknownExtension(path) {
		for _, k := range sortedKeys(m) {
			if err := p.setPath(path+":"+k, m[k], replace); err != nil {
				return err
			}
		}
		return nil
	}
	t, err := p.resolve(path)
	if err != nil {
		return err
	}
	if t.whole {
		m, ok := value.(map[string]any)
		if !ok {
			if value == nil && replace {
				delete(p.res, t.extKey)
				return nil
			}
			return errf(ScimInvalidValue, "%s needs an object value", t.extKey)
		}
		for _, k := range sortedKeys(m) {
			if err := p.setPath(t.extKey+":"+k, m[k], replace); err != nil {
				return err
			}
		}
		return nil
	}
	if t.def != nil && (t.def.Mutability == ReadOnly || t.def.Mutability == Immutable) {
		return p.setProtected(t, value)
	}
	switch {
	case t.filter != nil:
		return p.setFiltered(t, value)
	case t.sub != "":
		return p.setSub(t, value)
	case t.def != nil && t.def.MultiValued || t.def == nil && isList(value) && !replace:
		return p.setMulti(t, value, replace)
	default:
		return p.setSingle(t, value)
	}
}

func isList(v any) bool {
	_, ok := v.([]any)
	return ok
}

// setProtected allows writing a read-only or immutable attribute only with
// its current value (or, for immutable, when it has none yet).
func (p *patcher) setProtected(t *target, value any) *Error {
	parent := p.container(t, false)
	var cur any
	if parent != nil {
		cur = parent[t.key]
	}
	if t.filter == nil && t.sub == "" {
		nv, err := normalize(t.def, value)
		if err == nil && equal(cur, nv) {
			return nil
		}
		if t.def.Mutability == Immutable && cur == nil && err == nil {
			p.container(t, true)[t.key] = nv
			return nil
		}
	}
	return errf(ScimMutability, "%s is %s", t.def.Name, map[Mutability]string{ReadOnly: "read-only", Immutable: "immutable"}[t.def.Mutability])
}

func equal(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if reflect.DeepEqual(a, b) {
		return true
	}
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// setSingle sets a single-valued attribute (simple or complex).
func (p *patcher) setSingle(t *target, value any) *Error {
	nv, err := normalize(t.def, value)
	if err != nil {
		return err
	}
	if nv == nil {
		return p.removeSingle(t)
	}
	parent := p.container(t, true)
	cur, isMap := parent[t.key].(map[string]any)
	newMap, newIsMap := nv.(map[string]any)
	if isMap && newIsMap && t.def != nil && t.def.Type == Complex {
		// RFC 7644: sub-attributes not given are left unchanged, unless the
		// value identifies a different object (manager changed): then its
		// other sub-attributes are stale.
		if ov, ok := cur["value"]; ok {
			if nvv, ok := newMap["value"]; ok && !equal(ov, nvv) {
				parent[t.key] = newMap
				return nil
			}
		}
		for k, v := range newMap {
			if ck, ok := scimfilter.FindKey(cur, k); ok && ck != k {
				delete(cur, ck)
			}
			cur[k] = v
		}
		return nil
	}
	parent[t.key] = nv
	return nil
}

func (p *patcher) removeSingle(t *target) *Error {
	parent := p.container(t, false)
	if parent == nil {
		return nil
	}
	if cur, ok := parent[t.key]; ok && cur != nil && t.def != nil && t.def.Required {
		return errf(ScimMutability, "%s is required", t.def.Name)
	}
	delete(parent, t.key)
	return nil
}

// setSub sets name.sub: on a complex attribute, or on every value of a
// multi-valued one.
func (p *patcher) setSub(t *target, value any) *Error {
	nv, err := normalize(t.subDef, value)
	if err != nil {
		return err
	}
	parent := p.container(t, nv != nil)
	if parent == nil {
		return nil
	}
	if t.def != nil && t.def.MultiValued {
		list := elements(parent[t.key])
		if len(list) == 0 {
			if nv == nil {
				return nil
			}
			list = []any{map[string]any{}}
		}
		for i, el := range list {
			m, ok := el.(map[string]any)
			if !ok {
				continue
			}
			setKey(m, t.sub, nv)
			list[i] = m
		}
		p.storeList(t, parent, list, nil)
		return nil
	}
	m, ok := parent[t.key].(map[string]any)
	if !ok {
		if nv == nil {
			return nil
		}
		m = map[string]any{}
	}
	setKey(m, t.sub, nv)
	if len(m) == 0 {
		delete(parent, t.key)
	} else {
		parent[t.key] = m
	}
	return nil
}

// setKey sets (or, for nil, deletes) m[name], keeping an existing key's
// spelling.
func setKey(m map[string]any, name string, v any) {
	k := name
	if ek, ok := scimfilter.FindKey(m, name); ok {
		k = ek
	}
	if v == nil {
		delete(m, k)
		return
	}
	m[k] = v
}

// setMulti adds values to (replace=false) or replaces a multi-valued
// attribute.
func (p *patcher) setMulti(t *target, value any, replace bool) *Error {
	list, err := normalizeList(t.def, value)
	if err != nil {
		return err
	}
	parent := p.container(t, len(list) > 0 || !replace)
	if parent == nil {
		return nil
	}
	if replace {
		written := make([]int, len(list))
		for i := range list {
			written[i] = i
		}
		p.storeList(t, parent, list, written)
		return nil
	}
	cur := elements(parent[t.key])
	var written []int
	for _, el := range list {
		if i := indexOf(t.def, cur, el); i >= 0 {
			if em, ok := el.(map[string]any); ok {
				if cm, ok := cur[i].(map[string]any); ok {
					for k, v := range em {
						setKey(cm, k, v)
					}
				}
			}
			written = append(written, i)
			continue
		}
		cur = append(cur, el)
		written = append(written, len(cur)-1)
	}
	p.storeList(t, parent, cur, written)
	return nil
}

// setFiltered handles add/replace with a value filter: matching values get
// the sub-attribute (or the object) set; with no match a value is created
// from the filter.
func (p *patcher) setFiltered(t *target, value any) *Error {
	parent := p.container(t, true)
	list := elements(parent[t.key])
	elemDef := elementDef(t.def)
	var written []int
	for i, el := range list {
		m, ok := el.(map[string]any)
		if !ok {
			m = map[string]any{"value": el}
		}
		if !scimfilter.Match(t.filter, m, p.caseExact(t)) {
			continue
		}
		if _, ok := el.(map[string]any); !ok {
			if t.sub != "" && !strings.EqualFold(t.sub, "value") {
				return errf(ScimInvalidPath, "values of %s have no sub-attributes", t.key)
			}
		}
		nm, err := p.writeElement(t, m, value)
		if err != nil {
			return err
		}
		if _, ok := el.(map[string]any); !ok {
			list[i] = nm["value"]
		} else {
			list[i] = nm
		}
		written = append(written, i)
	}
	if written == nil {
		base, ok := fromFilter(t.filter)
		if !ok {
			return errf(ScimNoTarget, "no value of %s matches %s", t.key, t.filter)
		}
		nm, err := p.writeElement(t, base, value)
		if err != nil {
			return err
		}
		el, err := normalize(elemDef, nm)
		if err != nil {
			return err
		}
		if i := indexOf(t.def, list, el); i >= 0 {
			written = append(written, i)
		} else {
			list = append(list, el)
			written = append(written, len(list)-1)
		}
	}
	p.storeList(t, parent, list, written)
	return nil
}

// writeElement sets t.sub of m to value, or merges value into m.
func (p *patcher) writeElement(t *target, m map[string]any, value any) (map[string]any, *Error) {
	if t.sub != "" {
		nv, err := normalize(t.subDef, value)
		if err != nil {
			return nil, err
		}
		setKey(m, t.sub, nv)
		return m, nil
	}
	nv, err := normalize(elementDef(t.def), value)
	if err != nil {
		return nil, err
	}
	nm, ok := nv.(map[string]any)
	if !ok {
		if nv == nil {
			return m, nil
		}
		return nil, errf(ScimInvalidValue, "a value of %s must be an object", t.key)
	}
	for k, v := range nm {
		setKey(m, k, v)
	}
	return m, nil
}

// fromFilter builds the value a filter of "attr eq literal" terms joined by
// and describes.
func fromFilter(e scimfilter.Expr) (map[string]any, bool) {
	switch x := e.(type) {
	case *scimfilter.And:
		l, ok := fromFilter(x.Left)
		if !ok {
			return nil, false
		}
		r, ok := fromFilter(x.Right)
		if !ok {
			return nil, false
		}
		for k, v := range r {
			if lv, dup := l[k]; dup && !equal(lv, v) {
				return nil, false
			}
			l[k] = v
		}
		return l, true
	case *scimfilter.Compare:
		if x.Op != scimfilter.Eq || x.Value == nil || x.Path.URI != "" || x.Path.Sub != "" {
			return nil, false
		}
		return map[string]any{x.Path.Name: x.Value}, true
	}
	return nil, false
}

// storeList writes a multi-valued attribute back, enforcing a single
// primary value (among the written indexes, the last primary wins) and
// removing the attribute when empty.
func (p *patcher) storeList(t *target, parent map[string]any, list []any, written []int) {
	winner := -1
	for _, i := range written {
		if m, ok := list[i].(map[string]any); ok {
			if v, ok := scimfilter.Lookup(m, "primary"); ok && v == true {
				winner = i
			}
		}
	}
	if winner < 0 {
		// Keep at most one primary even if the stored data had several.
		for i, el := range list {
			if m, ok := el.(map[string]any); ok {
				if v, ok := scimfilter.Lookup(m, "primary"); ok && v == true {
					winner = i
					break
				}
			}
		}
	}
	out := list[:0:0]
	for i, el := range list {
		if m, ok := el.(map[string]any); ok {
			if i != winner {
				if k, ok := scimfilter.FindKey(m, "primary"); ok && m[k] == true {
					m[k] = false
				}
			}
			if len(m) == 0 {
				continue
			}
		}
		out = append(out, el)
	}
	if len(out) == 0 {
		delete(parent, t.key)
		return
	}
	parent[t.key] = out
}

func elements(v any) []any {
	switch v := v.(type) {
	case nil:
		return nil
	case []any:
		return append([]any(nil), v...)
	default:
		return []any{v}
	}
}

// elementDef is the definition of one value of a multi-valued attribute.
func elementDef(def *Attribute) *Attribute {
	if def == nil {
		return nil
	}
	d := *def
	d.MultiValued = false
	return &d
}

// identity is what makes two values of a multi-valued attribute the same:
// their "value" sub-attribute when they have one, else their content.
func identity(v any) string {
	if m, ok := v.(map[string]any); ok {
		if x, ok := scimfilter.Lookup(m, "value"); ok && x != nil {
			v = x
		}
	}
	if s, ok := v.(string); ok {
		return "v:" + s
	}
	b, _ := json.Marshal(v)
	return "j:" + string(b)
}

func indexOf(def *Attribute, list []any, el any) int {
	id := identity(el)
	fold := !valueCaseExact(def) && strings.HasPrefix(id, "v:")
	for i, x := range list {
		xid := identity(x)
		if xid == id || fold && strings.EqualFold(xid, id) {
			return i
		}
	}
	return -1
}

// valueCaseExact tells whether the values of def compare case-exactly.
func valueCaseExact(def *Attribute) bool {
	if def == nil {
		return true
	}
	if def.Type == Complex {
		if v := find(def.Sub, "value"); v != nil {
			return v.CaseExact
		}
		return true
	}
	return def.CaseExact
}

// remove performs a remove operation.
func (p *patcher) remove(path string, value any) *Error {
	t, err := p.resolve(path)
	if err != nil {
		return err
	}
	if t.whole {
		delete(p.res, t.extKey)
		return nil
	}
	if t.def != nil && t.def.Mutability == ReadOnly {
		return errf(ScimMutability, "%s is read-only", t.def.Name)
	}
	parent := p.container(t, false)
	if parent == nil {
		return nil
	}
	if t.def != nil && t.def.Mutability == Immutable && parent[t.key] != nil {
		return errf(ScimMutability, "%s is immutable", t.def.Name)
	}
	switch {
	case t.filter != nil:
		list := elements(parent[t.key])
		var kept []any
		for _, el := range list {
			m, ok := el.(map[string]any)
			if !ok {
				m = map[string]any{"value": el}
			}
			if !scimfilter.Match(t.filter, m, p.caseExact(t)) {
				kept = append(kept, el)
				continue
			}
			if t.sub != "" {
				if _, ok := el.(map[string]any); ok {
					setKey(m, t.sub, nil)
					kept = append(kept, m)
				}
			}
		}
		if len(list) > 0 {
			p.storeList(t, parent, kept, nil)
		}
		return nil
	case t.sub != "":
		if t.def != nil && t.def.MultiValued || isList(parent[t.key]) {
			list := elements(parent[t.key])
			for _, el := range list {
				if m, ok := el.(map[string]any); ok {
					setKey(m, t.sub, nil)
				}
			}
			if len(list) > 0 {
				p.storeList(t, parent, list, nil)
			}
			return nil
		}
		if m, ok := parent[t.key].(map[string]any); ok {
			setKey(m, t.sub, nil)
			if len(m) == 0 {
				delete(parent, t.key)
			}
		}
		return nil
	case (t.def != nil && t.def.MultiValued || isList(parent[t.key])) && value != nil:
		// Remove only the listed values (Entra's members removal).
		drop, err := normalizeList(t.def, value)
		if err != nil {
			return err
		}
		var kept []any
		for _, el := range elements(parent[t.key]) {
			if indexOf(t.def, drop, el) < 0 {
				kept = append(kept, el)
			}
		}
		p.storeList(t, parent, kept, nil)
		return nil
	default:
		return p.removeSingle(t)
	}
}

// mergeSchemas adds the URNs in v to the resource's schemas.
func (p *patcher) mergeSchemas(v any) {
	for _, u := range elements(v) {
		if s, ok := u.(string); ok {
			p.addSchema(s)
		}
	}
}

func (p *patcher) addSchema(urn string) {
	key, ok := scimfilter.FindKey(p.res, "schemas")
	if !ok {
		return
	}
	list := elements(p.res[key])
	for _, x := range list {
		if s, ok := x.(string); ok && strings.EqualFold(s, urn) {
			return
		}
	}
	p.res[key] = append(list, urn)
}

// tidyExtensions drops empty extension objects and keeps schemas listing
// exactly the extensions present (when the resource lists schemas).
func (p *patcher) tidyExtensions() {
	key, hasSchemas := scimfilter.FindKey(p.res, "schemas")
	for k, v := range p.res {
		if !strings.HasPrefix(strings.ToLower(k), "urn:") || scimfilter.IsCoreURN(k) {
			continue
		}
		m, ok := v.(map[string]any)
		if ok && len(m) == 0 || v == nil {
			delete(p.res, k)
			if hasSchemas {
				var kept []any
				for _, x := range elements(p.res[key]) {
					if s, ok := x.(string); !ok || !strings.EqualFold(s, k) {
						kept = append(kept, x)
					}
				}
				p.res[key] = kept
			}
			continue
		}
		if hasSchemas {
			p.addSchema(k)
		}
	}
}

// normalize converts a value for def: string booleans to booleans, scalars
// to strings for string attributes, a bare value to {"value": v} for complex
// attributes with a value sub-attribute, canonical sub-attribute names, null
// sub-attributes dropped. nil means "no value".
func normalize(def *Attribute, v any) (any, *Error) {
	if v == nil {
		return nil, nil
	}
	if def == nil {
		return deepCopy(v), nil
	}
	if def.MultiValued {
		list, err := normalizeList(def, v)
		if err != nil || len(list) == 0 {
			return nil, err
		}
		return list, nil
	}
	switch def.Type {
	case Complex:
		switch x := v.(type) {
		case map[string]any:
			out := map[string]any{}
			for _, k := range sortedKeys(x) {
				sd := find(def.Sub, k)
				name := k
				if sd != nil {
					name = sd.Name
				}
				nv, err := normalize(sd, x[k])
				if err != nil {
					return nil, err
				}
				if nv != nil {
					out[name] = nv
				}
			}
			for _, sd := range def.Sub {
				if _, ok := out[sd.Name]; sd.Required && !ok && len(out) > 0 {
					return nil, errf(ScimInvalidValue, "%s needs %s", def.Name, sd.Name)
				}
			}
			return out, nil
		case []any:
			if len(x) == 1 {
				return normalize(def, x[0])
			}
		default:
			if vd := find(def.Sub, "value"); vd != nil {
				if s, ok := x.(string); ok && s == "" {
					return nil, nil
				}
				nv, err := normalize(vd, x)
				if err != nil {
					return nil, err
				}
				return map[string]any{vd.Name: nv}, nil
			}
		}
		return nil, errf(ScimInvalidValue, "%s must be an object", def.Name)
	case Boolean:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			if b, ok := scimfilter.ParseBool(strings.TrimSpace(x)); ok {
				return b, nil
			}
		case []any:
			if len(x) == 1 {
				return normalize(def, unwrapValue(x[0]))
			}
		}
		return nil, errf(ScimInvalidValue, "%s must be a boolean, got %v", def.Name, v)
	case Integer, Decimal:
		switch x := v.(type) {
		case float64, json.Number, int, int64:
			return x, nil
		case string:
			if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
				return f, nil
			}
		}
		return nil, errf(ScimInvalidValue, "%s must be a number, got %v", def.Name, v)
	default:
		switch x := v.(type) {
		case string:
			return x, nil
		case []any:
			if len(x) == 1 {
				return normalize(def, unwrapValue(x[0]))
			}
		case map[string]any:
			if len(x) == 1 {
				if inner, ok := scimfilter.Lookup(x, "value"); ok {
					return normalize(def, inner)
				}
			}
		}
		return nil, errf(ScimInvalidValue, "%s must be a string, got %s", def.Name, kind(v))
	}
}

// kind names a decoded JSON value's type for error messages.
func kind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case float64, json.Number, int, int64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "null"
}

func unwrapValue(v any) any {
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		if inner, ok := scimfilter.Lookup(m, "value"); ok {
			return inner
		}
	}
	return v
}

// normalizeList normalizes the values for a multi-valued attribute, without
// duplicates. A single value is taken as a list of one.
func normalizeList(def *Attribute, v any) ([]any, *Error) {
	var out []any
	ed := elementDef(def)
	for _, el := range elements(v) {
		nv, err := normalize(ed, el)
		if err != nil {
			return nil, err
		}
		if nv == nil {
			continue
		}
		if m, ok := nv.(map[string]any); ok && len(m) == 0 {
			continue
		}
		if i := indexOf(def, out, nv); i >= 0 {
			out[i] = nv
			continue
		}
		out = append(out, nv)
	}
	return out, nil
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	default:
		return v
	}
}
