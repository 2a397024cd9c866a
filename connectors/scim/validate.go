package scim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/roster-dev/roster/connectors/scim/patch"
	"github.com/roster-dev/roster/internal/scimfilter"
)

// Limits on what one resource may hold. Names and identifiers end up in
// every roster answer and event, so they are bounded well below the body
// limit; each bound is far above what an identity provider sends.
const (
	// MaxNameLength bounds identifiers and names, in characters: userName,
	// displayName, nickName, externalId, name.*, email values, member and
	// manager ids.
	MaxNameLength = 256
	// MaxStringLength bounds every other string value, in characters
	// (titles, addresses, URLs, certificates).
	MaxStringLength = 8192
	// MaxValues bounds the values of one multi-valued attribute. A group's
	// members are not bounded by it (they are rows, bounded by the body
	// limit): a PUT of a large group lists them all.
	MaxValues = 200
	// MaxResourceBytes bounds a resource as stored: its JSON, without a
	// group's members.
	MaxResourceBytes = 64 << 10
)

// nameKeys are the attributes (as lower-cased paths) bounded by
// MaxNameLength; every name.* sub-attribute is too.
var nameKeys = map[string]bool{
	"username": true, "displayname": true, "nickname": true, "externalid": true,
	"emails.value": true, "members.value": true, "manager.value": true,
}

func maxLength(key string) int {
	if nameKeys[key] || strings.HasPrefix(key, "name.") {
		return MaxNameLength
	}
	return MaxStringLength
}

// kind is what a write to one resource type is checked against: the schema
// /Schemas publishes for it, and the schema URIs identity providers list
// that roster accepts although it does not publish them.
type kind struct {
	name   string // "User" or "Group", for messages
	core   string // the core schema URN
	schema patch.Schema
	// quirkURIs are schema URIs that real clients list (see README, SCIM
	// leniencies); coreQuirks stand for the core schema.
	quirkURIs  []string
	coreQuirks []string
	// memberRows: the members attribute is kept as rows, not in the
	// resource.
	memberRows bool
}

// oneLoginCore is the schema OneLogin's SCIM v2 core template lists in
// place of the User core schema.
const oneLoginCore = "urn:scim:schemas:core:2.0"

var (
	userKind = kind{name: "User", core: URNUser, schema: patch.UserSchema, coreQuirks: []string{oneLoginCore}}
	// Entra's group create lists its own ADSCIM group schema next to the
	// core one, in two spellings over the years.
	groupKind = kind{name: "Group", core: URNGroup, schema: patch.GroupSchema, memberRows: true, coreQuirks: []string{oneLoginCore},
		quirkURIs: []string{
			"http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/Group",
			"http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group",
		}}
)

func containsFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, s) })
}

// checkSchemas checks the schemas attribute of a POST or PUT body: it must
// name the resource's core schema, and every other URI must be an
// extension roster publishes for the resource, one the body carries (kept
// as sent), or a known client quirk. A body without schemas (or with an
// empty list) is read as the core schema.
func checkSchemas(m map[string]any, k kind) *scimError {
	sk, ok := key(m, "schemas")
	if !ok || m[sk] == nil {
		return nil
	}
	list, ok := m[sk].([]any)
	if !ok {
		return errf(http.StatusBadRequest, "invalidSyntax", "schemas must be an array of schema URIs, got %s", jsonKind(m[sk]))
	}
	if len(list) == 0 {
		return nil
	}
	uris := make([]string, len(list))
	core := false
	for i, x := range list {
		s, ok := x.(string)
		if !ok {
			return errf(http.StatusBadRequest, "invalidSyntax", "schemas[%d] must be a schema URI string, got %s", i, jsonKind(x))
		}
		uris[i] = s
		core = core || strings.EqualFold(s, k.core) || containsFold(k.coreQuirks, s)
	}
	if !core {
		return errf(http.StatusBadRequest, "invalidValue", "schemas must include the %s schema %s", k.name, k.core)
	}
	for _, s := range uris {
		if strings.EqualFold(s, k.core) || containsFold(k.coreQuirks, s) || containsFold(k.quirkURIs, s) || k.schema.Extension(s) != nil {
			continue
		}
		if ek, ok := key(m, s); ok && !scimfilter.IsCoreURN(s) {
			if _, isObj := m[ek].(map[string]any); isObj {
				continue // an extension the body carries, kept as sent
			}
		}
		return errf(http.StatusBadRequest, "invalidValue", "schemas lists %q, which is neither the %s schema, an extension roster publishes for it, nor an extension object this request carries", s, k.name)
	}
	return nil
}

// validated is a resource as roster stores it.
type validated struct {
	res map[string]any
	// members are a group's member ids, in order, each once;
	// hasMembers tells whether the resource named its members at all.
	members    []string
	hasMembers bool
}

// validate checks a resource against the schema roster publishes for its
// type and returns it as stored: attributes with their canonical names,
// booleans as booleans, read-only and write-only attributes dropped (RFC
// 7644 §3.3: ignored), null and empty values dropped, multi-valued
// attributes with their exact duplicates stored once and at most one
// primary value. Attributes and extensions the schema does not describe
// are kept as sent. A wrong JSON shape (an object where a string belongs,
// a string where an array belongs) is invalidSyntax; a value of the wrong
// type or over a limit is invalidValue; each error names the attribute.
// The schemas attribute is not looked at (checkSchemas does).
func validate(m map[string]any, k kind) (validated, *scimError) {
	var v validated
	out := make(map[string]any, len(m))
	for _, name := range sortedKeys(m) {
		val := m[name]
		if strings.EqualFold(name, "schemas") {
			continue
		}
		if ext := k.schema.Extension(name); ext != nil {
			res, serr := validateExtension(ext, val)
			if serr != nil {
				return validated{}, serr
			}
			if res != nil {
				out[ext.URN] = res
			}
			continue
		}
		if len(name) >= 4 && strings.EqualFold(name[:4], "urn:") {
			if scimfilter.IsCoreURN(name) {
				return validated{}, errf(http.StatusBadRequest, "invalidSyntax", "%s: core attributes belong at the top level of the resource, not in an object named by the schema", name)
			}
			if val == nil {
				continue
			}
			if _, ok := val.(map[string]any); !ok {
				return validated{}, errf(http.StatusBadRequest, "invalidSyntax", "%s must be an object holding the extension's attributes, got %s", name, jsonKind(val))
			}
			out[name] = val // an extension roster does not describe: kept as sent
			continue
		}
		def := patch.Find(k.schema.Attributes, name)
		switch {
		case def == nil:
			if val != nil {
				out[name] = val // an attribute roster does not describe: kept as sent
			}
			continue
		case k.memberRows && def.Name == "members":
			ids, serr := memberIDs(def, val)
			if serr != nil {
				return validated{}, serr
			}
			v.members, v.hasMembers = ids, true
			continue
		case def.Mutability == patch.ReadOnly || def.Mutability == patch.WriteOnly:
			continue
		}
		nv, serr := checkValue(def.Name, strings.ToLower(def.Name), def, val)
		if serr != nil {
			return validated{}, serr
		}
		if nv != nil {
			out[def.Name] = nv
		}
	}
	for _, def := range k.schema.Attributes {
		if !def.Required || def.Mutability == patch.ReadOnly {
			continue
		}
		x, present := out[def.Name]
		if s, isStr := x.(string); !present || isStr && strings.TrimSpace(s) == "" {
			return validated{}, errf(http.StatusBadRequest, "invalidValue", "%s is required", def.Name)
		}
	}
	v.res = out
	return v, nil
}

func validateExtension(ext *patch.Extension, val any) (map[string]any, *scimError) {
	if val == nil {
		return nil, nil
	}
	obj, ok := val.(map[string]any)
	if !ok {
		return nil, errf(http.StatusBadRequest, "invalidSyntax", "%s must be an object holding the extension's attributes, got %s", ext.URN, jsonKind(val))
	}
	out := make(map[string]any, len(obj))
	for _, name := range sortedKeys(obj) {
		x := obj[name]
		def := patch.Find(ext.Attributes, name)
		if def == nil {
			if x != nil {
				out[name] = x
			}
			continue
		}
		if def.Mutability == patch.ReadOnly || def.Mutability == patch.WriteOnly {
			continue
		}
		nv, serr := checkValue(ext.URN+":"+def.Name, strings.ToLower(def.Name), def, x)
		if serr != nil {
			return nil, serr
		}
		if nv != nil {
			out[def.Name] = nv
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// checkValue checks one attribute's value; path names it in errors
// ("emails[1].value"), key is its lower-cased schema path ("emails.value").
// A nil result means no value.
func checkValue(path, key string, def *patch.Attribute, v any) (any, *scimError) {
	if v == nil {
		return nil, nil
	}
	if def.MultiValued {
		return checkMulti(path, key, def, v)
	}
	if def.Type == patch.Complex {
		return checkComplex(path, key, def, v, false)
	}
	return checkScalar(path, key, def, v)
}

// checkComplex checks a complex value: one of a multi-valued attribute
// when element is set.
func checkComplex(path, key string, def *patch.Attribute, v any, element bool) (any, *scimError) {
	valueDef := patch.Find(def.Sub, "value")
	m, ok := v.(map[string]any)
	if !ok {
		// A bare value where the attribute has a value sub-attribute is
		// {"value": v}: Entra sends the manager as a bare id.
		if s, isStr := v.(string); isStr && valueDef != nil {
			if s == "" {
				return nil, nil
			}
			nv, serr := checkScalar(path+".value", key+".value", valueDef, s)
			if serr != nil {
				return nil, serr
			}
			return map[string]any{valueDef.Name: nv}, nil
		}
		return nil, errf(http.StatusBadRequest, "invalidSyntax", "%s must be an object, got %s", path, jsonKind(v))
	}
	out := make(map[string]any, len(m))
	for _, name := range sortedKeys(m) {
		x := m[name]
		sd := patch.Find(def.Sub, name)
		if sd == nil {
			if x != nil {
				out[name] = x // a sub-attribute roster does not describe: kept as sent
			}
			continue
		}
		if sd.Mutability == patch.ReadOnly || sd.Mutability == patch.WriteOnly {
			continue
		}
		nv, serr := checkValue(path+"."+sd.Name, key+"."+strings.ToLower(sd.Name), sd, x)
		if serr != nil {
			return nil, serr
		}
		if nv != nil {
			out[sd.Name] = nv
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	if !element && valueDef != nil {
		// A single complex value is identified by its value (the
		// manager's id): without one there is nothing to point at, as
		// OneLogin's empty "manager": "" says.
		if s, _ := out[valueDef.Name].(string); s == "" {
			return nil, nil
		}
	}
	return out, nil
}

func checkMulti(path, key string, def *patch.Attribute, v any) (any, *scimError) {
	var list []any
	switch x := v.(type) {
	case []any:
		list = x
	case map[string]any:
		if def.Type != patch.Complex {
			return nil, errf(http.StatusBadRequest, "invalidSyntax", "%s must be an array, got an object", path)
		}
		list = []any{x} // one value sent bare
	default:
		return nil, errf(http.StatusBadRequest, "invalidSyntax", "%s must be an array, got %s", path, jsonKind(v))
	}
	if len(list) > MaxValues {
		return nil, errf(http.StatusBadRequest, "invalidValue", "%s has %d values; the limit is %d", path, len(list), MaxValues)
	}
	elem := *def
	elem.MultiValued = false
	out := make([]any, 0, len(list))
	for i, el := range list {
		if el == nil {
			continue
		}
		elPath := fmt.Sprintf("%s[%d]", path, i)
		var nv any
		var serr *scimError
		if def.Type == patch.Complex {
			nv, serr = checkComplex(elPath, key, &elem, el, true)
		} else {
			nv, serr = checkScalar(elPath, key, &elem, el)
		}
		if serr != nil {
			return nil, serr
		}
		if nv != nil {
			out = append(out, nv)
		}
	}
	if def.Type == patch.Complex {
		out = dedupeValues(def, out)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// dedupeValues stores exact duplicates (same type and value) once and
// keeps at most one primary value: the last one sent (RFC 7643 §2.4 allows
// one; RFC 7644 §3.5.2 has a PATCH that sets a new primary demote the
// others, and the same rule applies to every write). A duplicate that is
// primary makes the value it duplicates primary.
func dedupeValues(def *patch.Attribute, list []any) []any {
	valueDef := patch.Find(def.Sub, "value")
	hasPrimary := patch.Find(def.Sub, "primary") != nil
	seen := make(map[string]int, len(list))
	out := list[:0]
	primary := -1
	for _, el := range list {
		m, ok := el.(map[string]any)
		if !ok {
			out = append(out, el)
			continue
		}
		isPrimary := hasPrimary && m["primary"] == true
		id := valueIdentity(valueDef, m)
		if i, dup := seen[id]; dup {
			if isPrimary {
				primary = i
			}
			continue
		}
		seen[id] = len(out)
		if isPrimary {
			primary = len(out)
		}
		out = append(out, m)
	}
	if hasPrimary {
		for i, el := range out {
			m, ok := el.(map[string]any)
			if !ok {
				continue
			}
			switch {
			case i == primary:
				m["primary"] = true
			case m["primary"] == true:
				m["primary"] = false
			}
		}
	}
	return out
}

// valueIdentity is what makes two values of a multi-valued attribute exact
// duplicates: their type and value (folded when the value compares
// case-insensitively), or for values without a value sub-attribute (an
// address) everything but primary.
func valueIdentity(valueDef *patch.Attribute, m map[string]any) string {
	if valueDef == nil {
		rest := make(map[string]any, len(m))
		for k, x := range m {
			if k != "primary" {
				rest[k] = x
			}
		}
		b, _ := json.Marshal(rest)
		return string(b)
	}
	typ, _ := m["type"].(string)
	val, _ := m[valueDef.Name].(string)
	if !valueDef.CaseExact {
		val = strings.ToLower(val)
	}
	return strings.ToLower(typ) + "\x00" + val
}

func checkScalar(path, key string, def *patch.Attribute, v any) (any, *scimError) {
	switch v.(type) {
	case map[string]any, []any:
		return nil, errf(http.StatusBadRequest, "invalidSyntax", "%s must be a single %s, got %s", path, def.Type, jsonKind(v))
	}
	switch def.Type {
	case patch.Boolean:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			// Entra's default dialect sends "True" and "False".
			if b, ok := scimfilter.ParseBool(strings.TrimSpace(x)); ok {
				return b, nil
			}
			return nil, errf(http.StatusBadRequest, "invalidValue", "%s must be true or false, got %q", path, clip(x))
		}
		return nil, errf(http.StatusBadRequest, "invalidValue", "%s must be true or false, got %s", path, jsonKind(v))
	case patch.Decimal:
		if f, ok := v.(float64); ok {
			return f, nil
		}
		return nil, errf(http.StatusBadRequest, "invalidValue", "%s must be a number, got %s", path, jsonKind(v))
	case patch.Integer:
		if f, ok := v.(float64); ok && f == float64(int64(f)) {
			return f, nil
		}
		return nil, errf(http.StatusBadRequest, "invalidValue", "%s must be an integer, got %s", path, jsonKind(v))
	}
	s, ok := v.(string)
	if !ok {
		return nil, errf(http.StatusBadRequest, "invalidValue", "%s must be a string, got %s", path, jsonKind(v))
	}
	if limit := maxLength(key); len(s) > limit {
		if n := utf8.RuneCountInString(s); n > limit {
			return nil, errf(http.StatusBadRequest, "invalidValue", "%s is %d characters long; the limit is %d", path, n, limit)
		}
	}
	switch def.Type {
	case patch.DateTime:
		if !isDateTime(s) {
			return nil, errf(http.StatusBadRequest, "invalidValue", "%s must be a date-time such as 2024-05-01T12:00:00Z, got %q", path, clip(s))
		}
	case patch.Binary:
		if !isBase64(s) {
			return nil, errf(http.StatusBadRequest, "invalidValue", "%s must be base64-encoded", path)
		}
	}
	return s, nil
}

// clip shortens a value quoted in an error message.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	for i := max; i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i] + "..."
		}
	}
	return ""
}

// isDateTime accepts xsd:dateTime (RFC 7643 §2.3.5): RFC 3339, the time
// zone optional.
func isDateTime(s string) bool {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if _, err := time.Parse(layout, s); err == nil {
			return true
		}
	}
	return false
}

// isBase64 accepts base64 with or without padding and line breaks (PEM
// bodies are wrapped), standard or URL alphabet.
func isBase64(s string) bool {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if _, err := enc.DecodeString(s); err == nil {
			return true
		}
	}
	return false
}

// memberIDs reads a group's members attribute: [{"value": id}, ...], a
// single object, or bare ids ({"value": id} given bare, as for the
// manager). It returns the ids in order, each once.
func memberIDs(def *patch.Attribute, v any) ([]string, *scimError) {
	var list []any
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []any:
		list = x
	case map[string]any:
		list = []any{x}
	default:
		return nil, errf(http.StatusBadRequest, "invalidSyntax", "members must be an array of {\"value\": id}, got %s", jsonKind(v))
	}
	elem := *def
	elem.MultiValued = false
	var ids []string
	seen := make(map[string]bool, len(list))
	for i, el := range list {
		path := fmt.Sprintf("members[%d]", i)
		if el == nil {
			continue
		}
		nv, serr := checkComplex(path, "members", &elem, el, true)
		if serr != nil {
			return nil, serr
		}
		m, _ := nv.(map[string]any)
		id, _ := m["value"].(string)
		id = strings.TrimSpace(id)
		if id == "" {
			return nil, errf(http.StatusBadRequest, "invalidValue", "%s.value is required: the member's id", path)
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// storedJSON marshals a validated resource and checks its size.
func storedJSON(what string, m map[string]any) ([]byte, *scimError) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, errf(http.StatusBadRequest, "invalidValue", "%s cannot be stored: %v", what, err)
	}
	if len(b) > MaxResourceBytes {
		return nil, errf(http.StatusBadRequest, "invalidValue", "the %s is %d bytes as stored; the limit is %d bytes (%d KiB)", what, len(b), MaxResourceBytes, MaxResourceBytes>>10)
	}
	return b, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
