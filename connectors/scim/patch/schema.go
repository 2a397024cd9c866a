package patch

import (
	"strings"

	"github.com/roster-dev/roster/internal/scimfilter"
)

// Type is an attribute's data type (RFC 7643 §2.3).
type Type int

// Attribute types.
const (
	String Type = iota
	Boolean
	Decimal
	Integer
	DateTime
	Reference
	Binary
	Complex
)

// Mutability of an attribute (RFC 7643 §2.2).
type Mutability int

// Mutability values; the zero value is readWrite.
const (
	ReadWrite Mutability = iota
	ReadOnly
	Immutable
	WriteOnly
)

func (t Type) String() string {
	switch t {
	case Boolean:
		return "boolean"
	case Decimal:
		return "decimal"
	case Integer:
		return "integer"
	case DateTime:
		return "dateTime"
	case Reference:
		return "reference"
	case Binary:
		return "binary"
	case Complex:
		return "complex"
	}
	return "string"
}

func (m Mutability) String() string {
	switch m {
	case ReadOnly:
		return "readOnly"
	case Immutable:
		return "immutable"
	case WriteOnly:
		return "writeOnly"
	}
	return "readWrite"
}

// Returned says when an attribute is returned (RFC 7643 §7).
type Returned int

// Returned values; the zero value is default.
const (
	ReturnedDefault Returned = iota
	ReturnedAlways
	ReturnedNever
	ReturnedRequest
)

func (r Returned) String() string {
	switch r {
	case ReturnedAlways:
		return "always"
	case ReturnedNever:
		return "never"
	case ReturnedRequest:
		return "request"
	}
	return "default"
}

// Uniqueness says how an attribute's values are unique (RFC 7643 §7).
type Uniqueness int

// Uniqueness values; the zero value is none.
const (
	UniqueNone Uniqueness = iota
	UniqueServer
	UniqueGlobal
)

func (u Uniqueness) String() string {
	switch u {
	case UniqueServer:
		return "server"
	case UniqueGlobal:
		return "global"
	}
	return "none"
}

// Attribute describes one attribute or sub-attribute. The same definitions
// are published at /Schemas, applied by PATCH and checked on every write,
// so what roster says it accepts and what it accepts cannot drift apart.
type Attribute struct {
	Name        string // canonical spelling
	Type        Type
	MultiValued bool
	Required    bool
	CaseExact   bool
	Mutability  Mutability
	Returned    Returned
	Uniqueness  Uniqueness
	// ReferenceTypes are the kinds of resource a reference points at
	// ("User", "Group", "external", "uri").
	ReferenceTypes []string
	Sub            []Attribute // sub-attributes of a complex attribute
}

// Find returns the attribute of attrs named name (case-insensitive), or nil.
func Find(attrs []Attribute, name string) *Attribute { return find(attrs, name) }

// Extension is a schema extension whose attributes live in the resource's
// top-level object named by the URN.
type Extension struct {
	URN        string
	Attributes []Attribute
}

// Schema describes a resource type: its core schema and its extensions.
// Attributes not described are accepted and stored as given (identity
// providers send custom attributes; rejecting them would fail provisioning).
type Schema struct {
	URN        string
	Attributes []Attribute
	Extensions []Extension
}

// Core and extension schema URNs.
const (
	UserURN       = "urn:ietf:params:scim:schemas:core:2.0:User"
	GroupURN      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	EnterpriseURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
)

func find(attrs []Attribute, name string) *Attribute {
	for i := range attrs {
		if strings.EqualFold(attrs[i].Name, name) {
			return &attrs[i]
		}
	}
	return nil
}

// Extension returns the extension with the URN (case-insensitive).
func (s Schema) Extension(urn string) *Extension {
	for i := range s.Extensions {
		if strings.EqualFold(s.Extensions[i].URN, urn) {
			return &s.Extensions[i]
		}
	}
	return nil
}

// Attribute returns the definition of the attribute at p (whose Sub, if any,
// is ignored), or nil when the schema does not describe it.
func (s Schema) Attribute(p scimfilter.AttrPath) *Attribute {
	if ext := p.Extension(); ext != "" {
		e := s.Extension(ext)
		if e == nil {
			return nil
		}
		return find(e.Attributes, p.Name)
	}
	return find(s.Attributes, p.Name)
}

// CaseExact reports whether the attribute with the given scimfilter.AttrPath
// Key ("username", "emails.value", "urn:...:user:manager.value") compares
// case-exactly; it can be passed to scimfilter.Match. Attributes the schema does
// not describe follow scimfilter.DefaultCaseExact.
func (s Schema) CaseExact(key string) bool {
	k := strings.ToLower(key)
	attrs := s.Attributes
	for _, e := range s.Extensions {
		if p := strings.ToLower(e.URN) + ":"; strings.HasPrefix(k, p) {
			attrs, k = e.Attributes, k[len(p):]
			break
		}
	}
	name, sub, hasSub := strings.Cut(k, ".")
	a := find(attrs, name)
	if a != nil && hasSub {
		a = find(a.Sub, sub)
	}
	if a == nil {
		return scimfilter.DefaultCaseExact(key)
	}
	return a.CaseExact
}

func str(name string) Attribute { return Attribute{Name: name} }

func multi(name string, sub ...Attribute) Attribute {
	return Attribute{Name: name, Type: Complex, MultiValued: true, Sub: sub}
}

var (
	typeAttr    = str("type")
	primaryAttr = Attribute{Name: "primary", Type: Boolean}
	displayAttr = str("display")
)

func valueList(name string) Attribute {
	return multi(name, str("value"), displayAttr, typeAttr, primaryAttr)
}

// Common attributes every resource has (RFC 7643 §3.1) that no schema
// defines: /Schemas leaves them out.
var Common = []string{"id", "meta"}

// withCommon puts the attributes every resource has (RFC 7643 §3.1) before
// a resource's own.
func withCommon(own []Attribute) []Attribute {
	return append([]Attribute{
		{Name: "id", CaseExact: true, Mutability: ReadOnly, Returned: ReturnedAlways, Uniqueness: UniqueServer},
		{Name: "externalId", CaseExact: true},
		{Name: "meta", Type: Complex, Mutability: ReadOnly, Sub: []Attribute{
			str("resourceType"), {Name: "created", Type: DateTime}, {Name: "lastModified", Type: DateTime},
			{Name: "location", Type: Reference, CaseExact: true}, {Name: "version", CaseExact: true},
		}},
	}, own...)
}

// UserSchema is the core User schema (RFC 7643 §4.1) with the enterprise
// User extension (§4.3), as roster uses them.
var UserSchema = Schema{
	URN: UserURN,
	Attributes: withCommon([]Attribute{
		{Name: "userName", Required: true, Uniqueness: UniqueServer},
		{Name: "name", Type: Complex, Sub: []Attribute{
			str("formatted"), str("familyName"), str("givenName"), str("middleName"),
			str("honorificPrefix"), str("honorificSuffix"),
		}},
		str("displayName"), str("nickName"),
		{Name: "profileUrl", Type: Reference, ReferenceTypes: []string{"external"}},
		str("title"), str("userType"), str("preferredLanguage"), str("locale"), str("timezone"),
		{Name: "active", Type: Boolean},
		{Name: "password", Mutability: WriteOnly, Returned: ReturnedNever, CaseExact: true},
		valueList("emails"),
		valueList("phoneNumbers"),
		valueList("ims"),
		multi("photos", Attribute{Name: "value", Type: Reference, CaseExact: true, ReferenceTypes: []string{"external"}}, displayAttr, typeAttr, primaryAttr),
		multi("addresses", str("formatted"), str("streetAddress"), str("locality"), str("region"),
			str("postalCode"), str("country"), typeAttr, primaryAttr),
		{Name: "groups", Type: Complex, MultiValued: true, Mutability: ReadOnly, Sub: []Attribute{
			{Name: "value", CaseExact: true, Mutability: ReadOnly},
			{Name: "$ref", Type: Reference, CaseExact: true, Mutability: ReadOnly, ReferenceTypes: []string{"User", "Group"}},
			{Name: "display", Mutability: ReadOnly}, {Name: "type", Mutability: ReadOnly},
		}},
		valueList("entitlements"),
		valueList("roles"),
		multi("x509Certificates", Attribute{Name: "value", Type: Binary, CaseExact: true}, displayAttr, typeAttr, primaryAttr),
	}),
	Extensions: []Extension{{
		URN: EnterpriseURN,
		Attributes: []Attribute{
			str("employeeNumber"), str("costCenter"), str("organization"), str("division"), str("department"),
			{Name: "manager", Type: Complex, Sub: []Attribute{
				{Name: "value", CaseExact: true},
				{Name: "$ref", Type: Reference, CaseExact: true, ReferenceTypes: []string{"User"}},
				{Name: "displayName", Mutability: ReadOnly},
			}},
		},
	}},
}

// GroupSchema is the core Group schema (RFC 7643 §4.2). Member values are
// resource ids and compare case-exactly.
var GroupSchema = Schema{
	URN: GroupURN,
	Attributes: withCommon([]Attribute{
		{Name: "displayName", Required: true, Uniqueness: UniqueServer},
		{Name: "members", Type: Complex, MultiValued: true, Sub: []Attribute{
			{Name: "value", CaseExact: true, Required: true, Mutability: Immutable},
			{Name: "$ref", Type: Reference, CaseExact: true, Mutability: Immutable, ReferenceTypes: []string{"User", "Group"}},
			{Name: "display", Mutability: ReadOnly},
			{Name: "type", Mutability: Immutable},
		}},
	}),
}
