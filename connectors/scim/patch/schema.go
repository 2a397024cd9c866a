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

// Attribute describes one attribute or sub-attribute.
type Attribute struct {
	Name        string // canonical spelling
	Type        Type
	MultiValued bool
	Required    bool
	CaseExact   bool
	Mutability  Mutability
	Sub         []Attribute // sub-attributes of a complex attribute
}

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

// withCommon puts the attributes every resource has (RFC 7643 §3.1) before
// a resource's own.
func withCommon(own []Attribute) []Attribute {
	return append([]Attribute{
		{Name: "id", CaseExact: true, Mutability: ReadOnly},
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
		{Name: "userName", Required: true},
		{Name: "name", Type: Complex, Sub: []Attribute{
			str("formatted"), str("familyName"), str("givenName"), str("middleName"),
			str("honorificPrefix"), str("honorificSuffix"),
		}},
		str("displayName"), str("nickName"),
		{Name: "profileUrl", Type: Reference},
		str("title"), str("userType"), str("preferredLanguage"), str("locale"), str("timezone"),
		{Name: "active", Type: Boolean},
		{Name: "password", Mutability: WriteOnly, CaseExact: true},
		valueList("emails"),
		valueList("phoneNumbers"),
		valueList("ims"),
		multi("photos", Attribute{Name: "value", Type: Reference, CaseExact: true}, displayAttr, typeAttr, primaryAttr),
		multi("addresses", str("formatted"), str("streetAddress"), str("locality"), str("region"),
			str("postalCode"), str("country"), typeAttr, primaryAttr),
		{Name: "groups", Type: Complex, MultiValued: true, Mutability: ReadOnly, Sub: []Attribute{
			{Name: "value", CaseExact: true}, {Name: "$ref", Type: Reference, CaseExact: true}, displayAttr, typeAttr,
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
				{Name: "$ref", Type: Reference, CaseExact: true},
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
		{Name: "displayName", Required: true},
		{Name: "members", Type: Complex, MultiValued: true, Sub: []Attribute{
			{Name: "value", CaseExact: true, Required: true, Mutability: Immutable},
			{Name: "$ref", Type: Reference, CaseExact: true, Mutability: Immutable},
			{Name: "display", Mutability: ReadOnly},
			{Name: "type", Mutability: Immutable},
		}},
	}),
}
