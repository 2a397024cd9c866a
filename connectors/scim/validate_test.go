package scim

import (
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/roster-dev/roster/connectors/scim/patch"
	"github.com/roster-dev/roster/store"
)

func decode(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return m
}

// canonJSON is v as JSON, decoded and encoded again so that maps built in
// Go and decoded ones compare equal.
func canonJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var x any
	_ = json.Unmarshal(b, &x)
	b, _ = json.Marshal(x)
	return string(b)
}

func TestValidateStores(t *testing.T) {
	for _, c := range []struct {
		name, in, want string
	}{
		{
			name: "Okta create: password, groups and meta are not stored; names canonical",
			in: `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"USERNAME":"a@x","name":{"GivenName":"A","familyName":"B"},
				"emails":[{"primary":true,"value":"a@x","type":"work"}],"password":"pw","groups":[],"active":true,"meta":{"resourceType":"User"}}`,
			want: `{"active":true,"emails":[{"primary":true,"type":"work","value":"a@x"}],"name":{"familyName":"B","givenName":"A"},"userName":"a@x"}`,
		},
		{
			name: "Entra string booleans, in any case",
			in:   `{"userName":"a","active":"False","emails":[{"value":"a@x","primary":"TRUE"}]}`,
			want: `{"active":false,"emails":[{"primary":true,"value":"a@x"}],"userName":"a"}`,
		},
		{
			name: "manager as a bare id; OneLogin's empty manager is none",
			in:   `{"userName":"a","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":"m-1","department":"R&D"}}`,
			want: `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"R&D","manager":{"value":"m-1"}},"userName":"a"}`,
		},
		{
			name: "an empty manager and nothing else leaves no extension",
			in:   `{"userName":"a","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":"","costCenter":null}}`,
			want: `{"userName":"a"}`,
		},
		{
			name: "the manager's read-only displayName is ignored",
			in:   `{"userName":"a","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"m","displayName":"Boss"}}}`,
			want: `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"m"}},"userName":"a"}`,
		},
		{
			name: "one email sent bare is a list of one; empty lists and nulls are dropped",
			in:   `{"userName":"a","emails":{"value":"a@x"},"roles":[],"title":null,"nickName":""}`,
			want: `{"emails":[{"value":"a@x"}],"nickName":"","userName":"a"}`,
		},
		{
			name: "unknown attributes and extensions are kept as sent",
			in:   `{"userName":"a","customThing":{"a":[1,2]},"urn:example:acme:2.0:User":{"badge":7},"emails":[{"value":"a@x","verified":true}]}`,
			want: `{"customThing":{"a":[1,2]},"emails":[{"value":"a@x","verified":true}],"urn:example:acme:2.0:User":{"badge":7},"userName":"a"}`,
		},
		{
			name: "exact duplicates stored once; a primary duplicate makes its first copy primary",
			in: `{"userName":"a","emails":[{"value":"a@x","type":"work"},{"value":"b@x","type":"home"},{"value":"A@X","type":"Work","primary":true},
				{"value":"a@x","type":"home"}]}`,
			want: `{"emails":[{"primary":true,"type":"work","value":"a@x"},{"type":"home","value":"b@x"},{"type":"home","value":"a@x"}],"userName":"a"}`,
		},
		{
			name: "two primaries: the last one sent is kept, the other demoted",
			in:   `{"userName":"a","emails":[{"value":"a@x","primary":true},{"value":"b@x","primary":true},{"value":"c@x"}],"phoneNumbers":[{"value":"1","primary":true}]}`,
			want: `{"emails":[{"primary":false,"value":"a@x"},{"primary":true,"value":"b@x"},{"value":"c@x"}],"phoneNumbers":[{"primary":true,"value":"1"}],"userName":"a"}`,
		},
		{
			name: "addresses without a value sub-attribute are duplicates when equal but for primary",
			in:   `{"userName":"a","addresses":[{"locality":"Oslo","type":"work"},{"locality":"Oslo","type":"work","primary":true}]}`,
			want: `{"addresses":[{"locality":"Oslo","primary":true,"type":"work"}],"userName":"a"}`,
		},
		{
			name: "certificates are base64, wrapped or not",
			in:   `{"userName":"a","x509Certificates":[{"value":"MIIB\nAAAA"},{"value":"MIIBAA"}]}`,
			want: `{"userName":"a","x509Certificates":[{"value":"MIIB\nAAAA"},{"value":"MIIBAA"}]}`,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, serr := validate(decode(t, c.in), userKind)
			if serr != nil {
				t.Fatalf("validate: %v", serr)
			}
			if got := canonJSON(t, v.res); got != canonJSON(t, decode(t, c.want)) {
				t.Errorf("stored\n got %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestValidateRefuses(t *testing.T) {
	long := strings.Repeat("é", MaxNameLength+1)
	for _, c := range []struct {
		name, in, scimType, detail string
	}{
		{"userName as a number", `{"userName":123}`, "invalidValue", "userName must be a string, got a number"},
		{"userName missing", `{"name":{"givenName":"x"}}`, "invalidValue", "userName is required"},
		{"userName blank", `{"userName":"  "}`, "invalidValue", "userName is required"},
		{"userName too long", `{"userName":"` + long + `"}`, "invalidValue", "userName is 257 characters long; the limit is 256"},
		{"givenName as an object", `{"userName":"a","name":{"givenName":{"x":1}}}`, "invalidSyntax", "name.givenName must be a single string, got an object"},
		{"familyName too long", `{"userName":"a","name":{"familyName":"` + long + `"}}`, "invalidValue", "name.familyName is 257 characters"},
		{"name as a string", `{"userName":"a","name":"A B"}`, "invalidSyntax", "name must be an object"},
		{"active maybe", `{"userName":"a","active":"maybe"}`, "invalidValue", `active must be true or false, got "maybe"`},
		{"active as a number", `{"userName":"a","active":1}`, "invalidValue", "active must be true or false, got a number"},
		{"emails as a string", `{"userName":"a","emails":"a@x"}`, "invalidSyntax", "emails must be an array"},
		{"an email value as a number", `{"userName":"a","emails":[{"value":"a@x"},{"value":5}]}`, "invalidValue", "emails[1].value must be a string"},
		{"an email value too long", `{"userName":"a","emails":[{"value":"` + long + `"}]}`, "invalidValue", "emails[0].value is 257 characters"},
		{"primary maybe", `{"userName":"a","emails":[{"value":"a@x","primary":"yes"}]}`, "invalidValue", "emails[0].primary must be true or false"},
		{"an array element that is an array", `{"userName":"a","emails":[["a@x"]]}`, "invalidSyntax", "emails[0] must be an object"},
		{"too many values", `{"userName":"a","phoneNumbers":[` + strings.TrimSuffix(strings.Repeat(`{"value":"1"},`, MaxValues+1), ",") + `]}`, "invalidValue", "phoneNumbers has 201 values; the limit is 200"},
		{"title too long", `{"userName":"a","title":"` + strings.Repeat("t", MaxStringLength+1) + `"}`, "invalidValue", "title is 8193 characters long; the limit is 8192"},
		{"externalId as a number", `{"userName":"a","externalId":157663}`, "invalidValue", "externalId must be a string"},
		{"displayName as an array", `{"userName":"a","displayName":["A"]}`, "invalidSyntax", "displayName must be a single string, got an array"},
		{"enterprise extension as a string", `{"userName":"a","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":"Sales"}`, "invalidSyntax", "enterprise:2.0:User must be an object"},
		{"employeeNumber as a number", `{"userName":"a","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":42}}`, "invalidValue", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber must be a string"},
		{"manager as a number", `{"userName":"a","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":7}}`, "invalidSyntax", "User:manager must be an object"},
		{"an unknown extension that is not an object", `{"userName":"a","urn:example:acme:2.0:User":"x"}`, "invalidSyntax", "urn:example:acme:2.0:User must be an object"},
		{"core attributes under the core URN", `{"userName":"a","urn:ietf:params:scim:schemas:core:2.0:User":{"title":"x"}}`, "invalidSyntax", "core attributes belong at the top level"},
		{"a certificate that is not base64", `{"userName":"a","x509Certificates":[{"value":"not base64!"}]}`, "invalidValue", "x509Certificates[0].value must be base64-encoded"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, serr := validate(decode(t, c.in), userKind)
			if serr == nil {
				t.Fatalf("validate accepted %s", clip(c.in))
			}
			if serr.Status != 400 || serr.ScimType != c.scimType || !strings.Contains(serr.Detail, c.detail) {
				t.Errorf("error = %d %s %q; want 400 %s with %q", serr.Status, serr.ScimType, serr.Detail, c.scimType, c.detail)
			}
		})
	}
}

func TestValidateGroup(t *testing.T) {
	v, serr := validate(decode(t, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"id":"g","displayName":" Eng ","externalId":"x",
		"members":[{"value":"u1","display":"Ann","$ref":null},"u2",{"value":"u1","type":"User"}],"meta":{"resourceType":"Group"}}`), groupKind)
	if serr != nil {
		t.Fatalf("validate: %v", serr)
	}
	if d := cmp.Diff([]string{"u1", "u2"}, v.members); d != "" || !v.hasMembers {
		t.Errorf("members (-want +got): %s (hasMembers %v)", d, v.hasMembers)
	}
	if got := canonJSON(t, v.res); got != `{"displayName":" Eng ","externalId":"x"}` {
		t.Errorf("stored %s", got)
	}
	for _, c := range []struct{ in, scimType, detail string }{
		{`{"displayName":7}`, "invalidValue", "displayName must be a string"},
		{`{"displayName":"` + strings.Repeat("g", MaxNameLength+1) + `"}`, "invalidValue", "displayName is 257 characters"},
		{`{"members":[]}`, "invalidValue", "displayName is required"},
		{`{"displayName":"G","members":[{"value":5}]}`, "invalidValue", "members[0].value must be a string"},
		{`{"displayName":"G","members":[{"display":"x"}]}`, "invalidValue", "members[0].value is required"},
		{`{"displayName":"G","members":"u1"}`, "invalidSyntax", "members must be an array"},
	} {
		_, serr := validate(decode(t, c.in), groupKind)
		if serr == nil || serr.ScimType != c.scimType || !strings.Contains(serr.Detail, c.detail) {
			t.Errorf("validate(%s) = %v; want %s with %q", clip(c.in), serr, c.scimType, c.detail)
		}
	}
	// Many members are fine: a group's members are not bounded by MaxValues.
	var b strings.Builder
	b.WriteString(`{"displayName":"Big","members":[`)
	for i := range 2 * MaxValues {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"value":"u` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + `"}`)
	}
	b.WriteString(`]}`)
	if _, serr := validate(decode(t, b.String()), groupKind); serr != nil {
		t.Errorf("a large group: %v", serr)
	}
}

func TestCheckSchemas(t *testing.T) {
	const user, ent = URNUser, URNEnterprise
	for _, c := range []struct {
		name, in string
		k        kind
		scimType string // "" when accepted
	}{
		{"core", `{"schemas":["` + user + `"]}`, userKind, ""},
		{"core in another case", `{"schemas":["URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER"]}`, userKind, ""},
		{"core and enterprise without its object", `{"schemas":["` + user + `","` + ent + `"]}`, userKind, ""},
		{"no schemas", `{"userName":"a"}`, userKind, ""},
		{"an empty list", `{"schemas":[]}`, userKind, ""},
		{"OneLogin's core template", `{"schemas":["urn:scim:schemas:core:2.0"]}`, userKind, ""},
		{"an extension the body carries", `{"schemas":["` + user + `","urn:example:acme:2.0:User"],"urn:example:acme:2.0:User":{"a":1}}`, userKind, ""},
		{"Entra's ADSCIM group schema", `{"schemas":["` + URNGroup + `","http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"]}`, groupKind, ""},
		{"Entra's older ADSCIM group schema", `{"schemas":["` + URNGroup + `","http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/Group"]}`, groupKind, ""},
		{"a bogus URN alone", `{"schemas":["urn:bogus"]}`, userKind, "invalidValue"},
		{"a bogus URN next to the core", `{"schemas":["` + user + `","urn:bogus"]}`, userKind, "invalidValue"},
		{"an extension it names but does not carry", `{"schemas":["` + user + `","urn:example:acme:2.0:User"]}`, userKind, "invalidValue"},
		{"the group schema on a user", `{"schemas":["` + URNGroup + `"]}`, userKind, "invalidValue"},
		{"the user schema on a group", `{"schemas":["` + URNGroup + `","` + user + `"]}`, groupKind, "invalidValue"},
		{"the enterprise extension on a group", `{"schemas":["` + URNGroup + `","` + ent + `"]}`, groupKind, "invalidValue"},
		{"the ADSCIM group schema on a user", `{"schemas":["` + user + `","http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/Group"]}`, userKind, "invalidValue"},
		{"a message URN", `{"schemas":["` + user + `","` + URNPatchOp + `"]}`, userKind, "invalidValue"},
		{"a string", `{"schemas":"` + user + `"}`, userKind, "invalidSyntax"},
		{"a number in the list", `{"schemas":["` + user + `",1]}`, userKind, "invalidSyntax"},
	} {
		t.Run(c.name, func(t *testing.T) {
			serr := checkSchemas(decode(t, c.in), c.k)
			switch {
			case c.scimType == "" && serr != nil:
				t.Errorf("refused: %v", serr)
			case c.scimType != "" && (serr == nil || serr.ScimType != c.scimType || serr.Status != 400):
				t.Errorf("checkSchemas = %v; want 400 %s", serr, c.scimType)
			}
		})
	}
}

// checkValidated holds for every resource validate accepts: stored again,
// it is stored as it is (so a GET sent back as a PUT changes nothing), it
// fits the limits, and no multi-valued attribute has two primary values.
func checkValidated(t *testing.T, k kind, v validated) {
	t.Helper()
	b, serr := storedJSON("resource", v.res)
	if serr != nil {
		return // over the size bound: refused by the caller
	}
	var again map[string]any
	if err := json.Unmarshal(b, &again); err != nil {
		t.Fatalf("stored JSON does not decode: %v", err)
	}
	if k.memberRows && v.hasMembers {
		ms := make([]any, len(v.members))
		for i, id := range v.members {
			ms[i] = map[string]any{"value": id}
		}
		again["members"] = ms
	}
	v2, serr := validate(again, k)
	if serr != nil {
		t.Fatalf("a stored resource is refused when sent again: %v\n%s", serr, b)
	}
	if !reflect.DeepEqual(v2.members, v.members) {
		t.Fatalf("members changed when sent again: %v then %v", v.members, v2.members)
	}
	if b2, _ := json.Marshal(v2.res); string(b2) != string(b) {
		t.Fatalf("not stable when sent again:\n%s\n%s", b, b2)
	}
	for name, x := range v.res {
		if strings.EqualFold(name, "id") || strings.EqualFold(name, "meta") || strings.EqualFold(name, "schemas") ||
			k.memberRows && strings.EqualFold(name, "members") || !k.memberRows && strings.EqualFold(name, "password") {
			t.Fatalf("%s is stored", name)
		}
		list, ok := x.([]any)
		if !ok || patch.Find(k.schema.Attributes, name) == nil {
			continue // undescribed attributes are kept as sent
		}
		primaries := 0
		for _, el := range list {
			if m, ok := el.(map[string]any); ok && m["primary"] == true {
				primaries++
			}
		}
		if primaries > 1 {
			t.Fatalf("%s has %d primary values", name, primaries)
		}
	}
}

func FuzzValidate(f *testing.F) {
	for _, s := range []string{
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"test.user@okta.local","name":{"givenName":"Test","familyName":"User"},
			"emails":[{"primary":true,"value":"test.user@okta.local","type":"work"}],"displayName":"Test User","locale":"en-US",
			"externalId":"00ujl29u0le5T6Aj10h7","groups":[],"password":"1mz050nq","active":true}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
			"externalId":"0a21f0f2","userName":"Test_User@contoso.com","active":"True","displayName":"A B",
			"emails":[{"primary":true,"type":"work","value":"a@contoso.com"},{"value":"A@contoso.com","type":"WORK","primary":"false"}],
			"meta":{"resourceType":"User"},"name":{"formatted":"A B","familyName":"B","givenName":"A"},"roles":[],
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Sales","employeeNumber":"1234","manager":"m-1"}}`,
		`{"schemas":["urn:scim:schemas:core:2.0"],"userName":"kim","name":{"familyName":"Ito","givenName":"Kim"},"emails":[{"value":"kim@acme.test"}],"title":""}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group","http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/Group"],
			"externalId":"8aa1a0c0","displayName":"Sales Team","meta":{"resourceType":"Group"},"members":[{"value":"u1","$ref":null},"u2"]}`,
		`{"userName":"a","addresses":[{"locality":"Oslo","primary":true},{"locality":"Oslo"}],"x509Certificates":[{"value":"MIIB"}],
			"urn:example:acme:2.0:User":{"badge":"B-17","clearance":{"level":3}},"photos":[{"value":"https://x/p.png","primary":true}]}`,
		`{"userName":123,"name":{"givenName":{}},"schemas":["urn:bogus"],"active":"maybe"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var m map[string]any
		if json.Unmarshal(body, &m) != nil || m == nil {
			return
		}
		for _, k := range []kind{userKind, groupKind} {
			if serr := checkSchemas(m, k); serr != nil && (serr.Status != 400 || serr.Detail == "" ||
				serr.ScimType != "invalidValue" && serr.ScimType != "invalidSyntax") {
				t.Fatalf("checkSchemas error %+v", serr)
			}
			v, serr := validate(m, k)
			if serr != nil {
				if serr.Status != 400 || serr.Detail == "" || serr.ScimType != "invalidValue" && serr.ScimType != "invalidSyntax" {
					t.Fatalf("validate error %+v", serr)
				}
				continue
			}
			checkValidated(t, k, v)
		}
		checkRoundTrip(t, m)
	})
}

// checkRoundTrip holds for every resource roster stores: its GET answer,
// sent back as a PUT body (as Okta does), is accepted and stores the same.
func checkRoundTrip(t *testing.T, m map[string]any) {
	t.Helper()
	s := NewServer(Options{PublicURL: "https://roster.test"})
	r := httptest.NewRequest("GET", "https://roster.test/scim/v2/d/Users/u", nil)
	if u, serr := userFromResource("d", "u", m); serr == nil {
		body, err := json.Marshal(s.userJSON(r, u))
		if err != nil {
			t.Fatalf("GET answer does not marshal: %v", err)
		}
		u2, serr := userFromBody("d", "u", body)
		if serr != nil {
			t.Fatalf("the GET answer sent back is refused: %v\n%s", serr, body)
		}
		if !sameUser(u, u2) {
			t.Fatalf("the GET answer sent back changes the user:\n%s\n%s", u.Resource, u2.Resource)
		}
	}
	if g, v, serr := groupFromResource("d", "g", m); serr == nil {
		members := make([]store.Member, len(v.members))
		for i, id := range v.members {
			members[i] = store.Member{ID: id, Type: store.MemberUser}
		}
		body, err := json.Marshal(s.groupJSON(r, g, members))
		if err != nil {
			t.Fatalf("GET answer does not marshal: %v", err)
		}
		g2, v2, serr := groupFromBody("d", "g", body)
		if serr != nil {
			t.Fatalf("the GET answer sent back is refused: %v\n%s", serr, body)
		}
		if !sameGroup(g, g2) || !sameMembers(members, v2.members) {
			t.Fatalf("the GET answer sent back changes the group:\n%s\n%s", g.Resource, g2.Resource)
		}
	}
}
