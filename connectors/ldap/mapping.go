package ldap

import (
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/roster-dev/roster/connectors"
)

// schema is the attribute names and filters in effect for one flavor.
type schema struct {
	flavor                                                 string
	id, username, email, given, family, display, groupName string
	members                                                []string
	userFilter, groupFilter                                string
	binaryID                                               bool
	nested                                                 bool
}

func newSchema(c *Config, flavor string) *schema {
	a := c.Attributes
	pick := func(v, def string) string {
		if v != "" {
			return v
		}
		return def
	}
	sc := &schema{flavor: flavor, nested: c.nestedGroups()}
	if flavor == FlavorActiveDirectory {
		sc.id = pick(a.ID, "objectGUID")
		sc.username = pick(a.Username, "sAMAccountName")
		sc.userFilter = pick(c.UserFilter, "(&(objectCategory=person)(objectClass=user))")
		sc.groupFilter = pick(c.GroupFilter, "(objectClass=group)")
		sc.members = []string{pick(a.Member, "member")}
	} else {
		sc.id = pick(a.ID, "entryUUID")
		sc.username = pick(a.Username, "uid")
		sc.userFilter = pick(c.UserFilter, "(|(objectClass=inetOrgPerson)(objectClass=person))")
		sc.groupFilter = pick(c.GroupFilter, "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))")
		if a.Member != "" {
			sc.members = []string{a.Member}
		} else {
			sc.members = []string{"member", "uniqueMember"}
		}
	}
	sc.email = pick(a.Email, "mail")
	sc.given = pick(a.GivenName, "givenName")
	sc.family = pick(a.FamilyName, "sn")
	sc.display = pick(a.DisplayName, "displayName")
	sc.groupName = pick(a.GroupName, "cn")
	sc.binaryID = strings.EqualFold(sc.id, "objectGUID")
	sc.userFilter = wrapFilter(sc.userFilter)
	sc.groupFilter = wrapFilter(sc.groupFilter)
	return sc
}

func wrapFilter(f string) string {
	f = strings.TrimSpace(f)
	if !strings.HasPrefix(f, "(") {
		return "(" + f + ")"
	}
	return f
}

func (sc *schema) userAttrs() []string {
	attrs := []string{sc.id, sc.username, sc.email, sc.given, sc.family, sc.display, "cn"}
	if sc.flavor == FlavorActiveDirectory {
		attrs = append(attrs, "userAccountControl")
	}
	return dedupFold(attrs)
}

func (sc *schema) groupAttrs() []string {
	return dedupFold(append([]string{sc.id, sc.groupName}, sc.members...))
}

func dedupFold(in []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range in {
		k := strings.ToLower(s)
		if s == "" || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, s)
	}
	return out
}

// entryID returns the entry's stable id, or "".
func (sc *schema) entryID(e *goldap.Entry) string {
	if sc.binaryID {
		raw := e.GetEqualFoldRawAttributeValue(sc.id)
		if len(raw) != 16 {
			return ""
		}
		return FormatGUID(raw)
	}
	v := strings.TrimSpace(e.GetEqualFoldAttributeValue(sc.id))
	if strings.EqualFold(sc.id, "entryUUID") {
		v = strings.ToLower(v)
	}
	return v
}

// FormatGUID renders an Active Directory objectGUID (16 bytes, the first
// three fields little-endian) as the canonical lower-case GUID string, e.g.
// "3f2504e0-4f89-11d3-9a0c-0305e82c3301".
func FormatGUID(b []byte) string {
	if len(b) != 16 {
		return hex.EncodeToString(b)
	}
	var o [16]byte
	o[0], o[1], o[2], o[3] = b[3], b[2], b[1], b[0]
	o[4], o[5] = b[5], b[4]
	o[6], o[7] = b[7], b[6]
	copy(o[8:], b[8:])
	h := hex.EncodeToString(o[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// guidBytes is FormatGUID's inverse (for filters on objectGUID).
func guidBytes(s string) ([]byte, error) {
	h := strings.ReplaceAll(s, "-", "")
	raw, err := hex.DecodeString(h)
	if err != nil || len(raw) != 16 {
		return nil, fmt.Errorf("not a GUID: %q", s)
	}
	b := make([]byte, 16)
	b[0], b[1], b[2], b[3] = raw[3], raw[2], raw[1], raw[0]
	b[4], b[5] = raw[5], raw[4]
	b[6], b[7] = raw[7], raw[6]
	copy(b[8:], raw[8:])
	return b, nil
}

// idFilter is an equality filter on the id attribute.
func (sc *schema) idFilter(id string) string {
	if sc.binaryID {
		b, err := guidBytes(id)
		if err != nil {
			return ""
		}
		var sb strings.Builder
		sb.WriteString("(" + sc.id + "=")
		for _, c := range b {
			fmt.Fprintf(&sb, `\%02x`, c)
		}
		sb.WriteString(")")
		return sb.String()
	}
	return "(" + sc.id + "=" + goldap.EscapeFilter(id) + ")"
}

// user maps an entry; it returns a Skipped reason when the entry is
// unusable.
func (sc *schema) user(e *goldap.Entry) (connectors.User, *connectors.Skipped) {
	id := sc.entryID(e)
	if id == "" {
		return connectors.User{}, &connectors.Skipped{ID: e.DN, Reason: fmt.Sprintf("no %s attribute (stable id)", sc.id)}
	}
	email := strings.ToLower(strings.TrimSpace(e.GetEqualFoldAttributeValue(sc.email)))
	if email == "" {
		return connectors.User{}, &connectors.Skipped{ID: id, Reason: fmt.Sprintf("no email (%s attribute empty) at %s", sc.email, e.DN)}
	}
	u := connectors.User{
		ExternalID:  id,
		UserName:    e.GetEqualFoldAttributeValue(sc.username),
		Email:       email,
		GivenName:   e.GetEqualFoldAttributeValue(sc.given),
		FamilyName:  e.GetEqualFoldAttributeValue(sc.family),
		DisplayName: e.GetEqualFoldAttributeValue(sc.display),
		Active:      true,
		Attrs:       map[string]any{"dn": e.DN},
	}
	if u.DisplayName == "" {
		u.DisplayName = e.GetEqualFoldAttributeValue("cn")
	}
	if u.DisplayName == "" {
		u.DisplayName = strings.TrimSpace(u.GivenName + " " + u.FamilyName)
	}
	if u.UserName == "" {
		u.UserName = email
	}
	if sc.flavor == FlavorActiveDirectory {
		if v := e.GetEqualFoldAttributeValue("userAccountControl"); v != "" {
			uac, err := strconv.ParseInt(v, 10, 64)
			if err == nil && uac&0x2 != 0 {
				u.Active = false
			}
		}
	}
	return u, nil
}

// memberRef is what a member DN points at.
type memberRef struct {
	id    string
	group bool
}

// normDN returns a comparison key for a DN: attribute types and values
// lower-cased, spaces around separators removed, values re-escaped.
func normDN(s string) string {
	s = strings.TrimSpace(s)
	if k, ok := simpleDN(s); ok {
		return k
	}
	return normDNSlow(s)
}

func normDNSlow(s string) string {
	d, err := goldap.ParseDN(s)
	if err != nil || len(d.RDNs) == 0 {
		return strings.ToLower(s)
	}
	var b strings.Builder
	for i, rdn := range d.RDNs {
		if i > 0 {
			b.WriteByte(',')
		}
		parts := make([]string, len(rdn.Attributes))
		for j, a := range rdn.Attributes {
			parts[j] = strings.ToLower(strings.TrimSpace(a.Type)) + "=" + escapeDNValue(strings.ToLower(a.Value))
		}
		sort.Strings(parts)
		b.WriteString(strings.Join(parts, "+"))
	}
	return b.String()
}

// simpleDN is normDN's fast path for ASCII DNs without escapes, quotes,
// multi-valued RDNs or hex values: lower-case and drop spaces around the
// separators. It gives the same key as the slow path.
func simpleDN(s string) (string, bool) {
	if s == "" {
		return "", true
	}
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r >= 0x80 || r == '\\' || r == '"' || r == '+' || r == '#' || r == '<' || r == '>' || r == ';' {
			return "", false
		}
	}
	for _, rdn := range strings.Split(s, ",") {
		t, v, ok := strings.Cut(rdn, "=")
		t, v = strings.TrimSpace(t), strings.TrimSpace(v)
		if !ok || t == "" || v == "" || strings.Contains(v, "=") {
			return "", false
		}
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = append(b, strings.ToLower(t)...)
		b = append(b, '=')
		b = append(b, strings.ToLower(v)...)
	}
	return string(b), true
}

func escapeDNValue(v string) string {
	var b strings.Builder
	for _, r := range v {
		switch r {
		case ',', '+', '"', '\\', '<', '>', ';', '=', '#':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// memberDN strips the optional "#'0101'B" unique identifier that
// uniqueMember values may carry.
func memberDN(v string) string {
	if i := strings.LastIndex(v, "#'"); i > 0 && strings.HasSuffix(v, "'B") {
		return v[:i]
	}
	return v
}

// inScope reports whether dn is base or below it.
func inScope(base *goldap.DN, dn string) bool {
	if base == nil {
		return true
	}
	d, err := goldap.ParseDN(dn)
	if err != nil {
		return strings.HasSuffix(strings.ToLower(dn), strings.ToLower(base.String()))
	}
	return base.EqualFold(d) || base.AncestorOfFold(d)
}
