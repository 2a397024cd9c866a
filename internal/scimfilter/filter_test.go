package scimfilter

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

func decode(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return m
}

var bjensen = `{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "` + enterprise + `"],
  "id": "2819c223-7f76-453a-919d-413861904646",
  "externalId": "00u1abcdEFGH",
  "userName": "BJensen@example.com",
  "displayName": "Babs Jensen",
  "title": "Tour Guide",
  "name": {"givenName": "Barbara", "familyName": "Jensen"},
  "active": true,
  "emails": [
    {"value": "bjensen@example.com", "type": "work", "primary": true},
    {"value": "babs@jensen.org", "type": "home"}
  ],
  "meta": {"created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34.123456Z"},
  "` + enterprise + `": {"employeeNumber": "701984", "department": "Tour Operations", "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}},
  "loginCount": 42
}`

var stringBools = `{"userName": "entra@example.com", "active": "False", "emails": [{"value": "e@x.com", "type": "work", "primary": "True"}]}`

var group = `{"id": "g1", "displayName": "Engineering", "members": [{"value": "u1", "display": "A"}, {"value": "U2"}]}`

func TestParseAndMatch(t *testing.T) {
	tests := []struct {
		filter   string
		resource string
		want     bool
	}{
		// Real IdP filters.
		{`userName eq "bjensen@example.com"`, bjensen, true},
		{`userName eq "BJENSEN@EXAMPLE.COM"`, bjensen, true},
		{`userName EQ "bjensen@example.com"`, bjensen, true},
		{`userName Eq "other@example.com"`, bjensen, false},
		{`externalId eq "00u1abcdEFGH"`, bjensen, true},
		{`externalId eq "00u1abcdefgh"`, bjensen, false}, // case-exact
		{`id eq "2819c223-7f76-453a-919d-413861904646"`, bjensen, true},
		{`emails[type eq "work"].value eq "bjensen@example.com"`, bjensen, true},
		{`emails[type eq "work"].value eq "babs@jensen.org"`, bjensen, false},
		{`emails[type eq "work" and primary eq true].value eq "BJENSEN@example.com"`, bjensen, true},
		{`emails[type eq "home" and primary eq true].value eq "babs@jensen.org"`, bjensen, false},
		{`emails[type eq "work"]`, bjensen, true},
		{`emails[type eq "other"]`, bjensen, false},
		{`emails[type eq "work" and primary eq true and value ew "example.com"]`, bjensen, true},
		{`emails[not (type eq "work")]`, bjensen, true},
		{`emails[(type eq "x" or type eq "home") and value co "jensen"]`, bjensen, true},
		{`emails eq "babs@jensen.org"`, bjensen, true},
		{`emails.value eq "babs@jensen.org"`, bjensen, true},
		{`emails.type eq "home"`, bjensen, true},
		{`emails co "jensen.org"`, bjensen, true},
		{`emails ne "babs@jensen.org"`, bjensen, false},
		{`emails ne "nobody@x.com"`, bjensen, true},
		{`displayName eq "Engineering"`, group, true},
		{`displayName eq "engineering"`, group, true},
		{`members[value eq "u1"]`, group, true},
		{`members[value eq "U1"]`, group, false},
		{`members eq "U2"`, group, true},
		{`members.value eq "u2"`, group, false},
		{`userName sw "b" and not (active eq false)`, bjensen, true},
		{`userName sw "j" and not (active eq false)`, bjensen, false},
		{`userName sw "e" and not (active eq false)`, stringBools, false},
		{`meta.lastModified gt "2011-05-13T04:42:34Z"`, bjensen, true},
		{`meta.lastModified gt "2011-05-13T04:42:34.123456Z"`, bjensen, false},
		{`meta.lastModified ge "2011-05-13T06:42:34.123456+02:00"`, bjensen, true},
		{`meta.lastModified lt "2011-05-13T04:42:34Z"`, bjensen, false},
		{`meta.created eq "2010-01-23T04:56:22.000Z"`, bjensen, true},
		{`title pr or ` + enterprise + `:department eq "x"`, bjensen, true},
		{`nickName pr or ` + enterprise + `:department eq "tour operations"`, bjensen, true},
		{`nickName pr or ` + enterprise + `:department eq "x"`, bjensen, false},
		{enterprise + `:employeeNumber eq "701984"`, bjensen, true},
		{strings.ToUpper(enterprise) + `:EMPLOYEENUMBER eq "701984"`, bjensen, true},
		{enterprise + `:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d"`, bjensen, true},
		{enterprise + `:manager eq "26118915-6090-4610-87e4-49d8ca9f808d"`, bjensen, true},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bjensen@example.com"`, bjensen, true},
		{`urn:ietf:params:scim:schemas:core:2.0:User:name.givenName sw "bar"`, bjensen, true},
		{`userName eq "Test_User_0a1b2c3d-4e5f-6789-abcd-ef0123456789"`, `{"userName":"Test_User_0a1b2c3d-4e5f-6789-abcd-ef0123456789"}`, true},
		{`userName eq "a+b@x.com"`, `{"userName":"A+B@x.com"}`, true},
		{`USERNAME eq "a+b@x.com"`, `{"username":"a+b@x.com"}`, true},
		// Precedence: and binds tighter than or.
		{`title pr and userName eq "x" or active eq true`, bjensen, true},
		{`title pr and (userName eq "x" or active eq false)`, bjensen, false},
		{`not (title pr) or displayName co "babs"`, bjensen, true},
		{`not(title pr)`, bjensen, false},
		// Booleans, also as strings.
		{`active eq true`, bjensen, true},
		{`active eq "True"`, bjensen, true},
		{`active eq false`, stringBools, true},
		{`active eq "false"`, stringBools, true},
		{`active ne true`, stringBools, true},
		{`active ne true`, `{}`, true},
		{`emails[primary eq true].value eq "e@x.com"`, stringBools, true},
		{`active gt "a"`, bjensen, false},
		// Numbers.
		{`loginCount gt 41`, bjensen, true},
		{`loginCount eq 42.0`, bjensen, true},
		{`loginCount le 4.2e1`, bjensen, true},
		{`loginCount lt "42"`, bjensen, false},
		{enterprise + `:employeeNumber eq 701984`, bjensen, true},
		// Presence.
		{`title pr`, `{"title": ""}`, false},
		{`title pr`, `{"title": null}`, false},
		{`emails pr`, `{"emails": []}`, false},
		{`emails pr`, bjensen, true},
		{`name pr`, `{"name": {}}`, false},
		{`title eq null`, `{}`, true},
		{`title eq null`, bjensen, false},
		{`title ne null`, bjensen, true},
		// String operators.
		{`title co "our g"`, bjensen, true},
		{`title sw "TOUR"`, bjensen, true},
		{`title ew "guide"`, bjensen, true},
		{`title gt "tour"`, bjensen, true},
		{`title lt "tour"`, bjensen, false},
		{`name gt "a"`, bjensen, false},
		// Escapes in strings.
		{`title eq "a\"b\\c"`, `{"title": "a\"b\\c"}`, true},
		{`title eq "\u00e9t\u00C9"`, `{"title": "été"}`, true},
		// White space.
		{"  userName\teq \"bjensen@example.com\"  ", bjensen, true},
		{`userName  eq  "bjensen@example.com"`, bjensen, true},
		{`emails [ type eq "work" ]`, bjensen, true},
	}
	for _, tc := range tests {
		e, err := Parse(tc.filter)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.filter, err)
			continue
		}
		res := decode(t, tc.resource)
		if got := Match(e, res, nil); got != tc.want {
			t.Errorf("Match(%q) = %v, want %v (parsed %s)", tc.filter, got, tc.want, e)
		}
		// Printing and parsing again keeps the meaning.
		e2, err := Parse(e.String())
		if err != nil {
			t.Errorf("Parse(String()) of %q = %q: %v", tc.filter, e.String(), err)
			continue
		}
		if e2.String() != e.String() {
			t.Errorf("round trip %q: %q != %q", tc.filter, e2.String(), e.String())
		}
		if Match(e2, res, nil) != tc.want {
			t.Errorf("round trip %q changed the result", tc.filter)
		}
	}
}

func TestParseErrors(t *testing.T) {
	bad := []string{
		``,
		`   `,
		`userName`,
		`userName eq`,
		`userName xx "a"`,
		`userName eq "a`,
		`userName eq 'a'`,
		`userName eq "a" and`,
		`(userName eq "a"`,
		`userName eq "a")`,
		`emails[type eq "work"`,
		`emails]`,
		`[type eq "work"]`,
		`emails[type eq "work"] eq "x"`,
		`emails[types[x eq "y"]]`,
		`name.givenName[x eq "y"]`,
		`active gt true`,
		`active lt null`,
		`title co 1`,
		`title sw true`,
		`x eq 1e999`,
		`filter=userName eq "x"`,
		strings.Repeat("(", MaxDepth+1) + `a pr` + strings.Repeat(")", MaxDepth+1),
		strings.Repeat("a", MaxFilterLength+1),
	}
	for _, s := range bad {
		e, err := Parse(s)
		if err == nil {
			t.Errorf("Parse(%q) = %s, want error", s, e)
			continue
		}
		var fe *Error
		if !errors.As(err, &fe) || fe.ScimType() != "invalidFilter" || fe.Status() != 400 {
			t.Errorf("Parse(%q): error %T %v is not an invalidFilter *Error", s, err, err)
		}
		// The detail is for the person reading the identity provider's
		// log: none of the parser library's grammar rule names.
		if strings.Contains(err.Error(), "op.") || strings.Contains(err.Error(), "func") || strings.Contains(err.Error(), "conflict") {
			t.Errorf("Parse(%q): detail %q shows the parser's internals", s, err)
		}
	}
	_, err := Parse(`userName xx "a"`)
	if want := `cannot parse "userName xx \"a\"": a filter is an attribute, an operator`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Parse with an unknown operator: %v, want a detail containing %s", err, want)
	}
}

func TestParseStructure(t *testing.T) {
	e, err := Parse(`a eq "1" or b eq "2" and c eq "3"`)
	if err != nil {
		t.Fatal(err)
	}
	or, ok := e.(*Or)
	if !ok {
		t.Fatalf("got %T, want *Or", e)
	}
	if _, ok := or.Right.(*And); !ok {
		t.Fatalf("right of or is %T, want *And", or.Right)
	}
	e, err = Parse(`emails[type eq "work"].value eq "x"`)
	if err != nil {
		t.Fatal(err)
	}
	vp, ok := e.(*ValuePath)
	if !ok || vp.Path.Name != "emails" {
		t.Fatalf("got %#v", e)
	}
	e, err = Parse(enterprise + `:employeeNumber eq "1"`)
	if err != nil {
		t.Fatal(err)
	}
	c := e.(*Compare)
	if c.Path.URI != enterprise || c.Path.Name != "employeeNumber" || c.Path.Key() != strings.ToLower(enterprise)+":employeenumber" {
		t.Fatalf("got %#v key %q", c.Path, c.Path.Key())
	}
	e, _ = Parse(`urn:ietf:params:scim:schemas:core:2.0:User:name.givenName eq "x"`)
	if k := e.(*Compare).Path.Key(); k != "name.givenname" {
		t.Fatalf("key %q", k)
	}
	e, _ = Parse(`x eq 5`)
	if v, ok := e.(*Compare).Value.(float64); !ok || v != 5 {
		t.Fatalf("value %#v", e.(*Compare).Value)
	}
}

func TestParsePath(t *testing.T) {
	tests := []struct{ in, want string }{
		{`userName`, `userName`},
		{`name.givenName`, `name.givenName`},
		{`emails[type eq "work"].value`, `emails[type eq "work"].value`},
		{`emails[type eq "work" and primary eq true]`, `emails[type eq "work" and primary eq true]`},
		{`members[value eq "2819c223"]`, `members[value eq "2819c223"]`},
		{enterprise + `:manager`, enterprise + `:manager`},
		{enterprise + `:manager.value`, enterprise + `:manager.value`},
		{`urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq "work"].value`, `urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq "work"].value`},
		{` addresses[type eq "work"].streetAddress `, `addresses[type eq "work"].streetAddress`},
	}
	for _, tc := range tests {
		p, err := ParsePath(tc.in)
		if err != nil {
			t.Errorf("ParsePath(%q): %v", tc.in, err)
			continue
		}
		if p.String() != tc.want {
			t.Errorf("ParsePath(%q) = %q, want %q", tc.in, p.String(), tc.want)
		}
	}
	for _, bad := range []string{``, `emails[`, `emails[type eq "work"]value`, `emails[type eq "work"].`, `emails[type eq "work"].a.b`, `"x"`, `a b`, `name.givenName[x eq "1"]`} {
		if p, err := ParsePath(bad); err == nil {
			t.Errorf("ParsePath(%q) = %v, want error", bad, p)
		}
	}
}

func TestDefaultCaseExact(t *testing.T) {
	for k, want := range map[string]bool{
		"id": true, "externalid": true, "username": false, "emails.value": false,
		"members.value": true, strings.ToLower(enterprise) + ":manager.value": true, "members.$ref": true,
	} {
		if DefaultCaseExact(k) != want {
			t.Errorf("DefaultCaseExact(%q) != %v", k, want)
		}
	}
}

func TestMentions(t *testing.T) {
	for f, want := range map[string]bool{
		`groups.value eq "g1"`:                                 true,
		`userName eq "x" or not (GROUPS pr)`:                   true,
		`groups[display eq "Eng"]`:                             true,
		`urn:ietf:params:scim:schemas:core:2.0:User:groups pr`: true,
		`userName eq "groups"`:                                 false,
		`emails[type eq "groups"]`:                             false,
		`members[value eq "x"]`:                                false,
		`urn:example:ext:1.0:User:groups pr`:                   false,
	} {
		e, err := Parse(f)
		if err != nil {
			t.Fatalf("Parse(%q): %v", f, err)
		}
		if got := Mentions(e, "groups"); got != want {
			t.Errorf("Mentions(%q, groups) = %v, want %v", f, got, want)
		}
	}
}
