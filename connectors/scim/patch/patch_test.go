package patch

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func obj(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return m
}

// ops decodes a PatchOp request body and returns its operations.
func ops(t testing.TB, body string) []Operation {
	t.Helper()
	var req struct {
		Operations []Operation `json:"Operations"`
	}
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return req.Operations
}

func canon(t testing.TB, v any) string {
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

const user = `{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
  "id": "2819c223",
  "externalId": "ext-1",
  "userName": "bjensen@example.com",
  "name": {"givenName": "Barbara", "familyName": "Jensen"},
  "displayName": "Babs",
  "active": true,
  "emails": [
    {"value": "bjensen@example.com", "type": "work", "primary": true},
    {"value": "babs@jensen.org", "type": "home"}
  ],
  "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z"}
}`

const group = `{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
  "id": "g1",
  "displayName": "Engineering",
  "members": [{"value": "u1", "display": "A"}, {"value": "u2"}]
}`

func TestApply(t *testing.T) {
	tests := []struct {
		name     string
		resource string
		schema   Schema
		body     string
		check    map[string]string // JSON of resource[key] ("-" for absent)
	}{
		{
			name: "entra update user, default mode", resource: user, schema: UserSchema,
			body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
				{"op":"Replace","path":"emails[type eq \"work\"].value","value":"updatedEmail@microsoft.com"},
				{"op":"Replace","path":"name.familyName","value":"updatedFamilyName"},
				{"op":"Replace","path":"userName","value":"5b50642d@testuser.com"},
				{"op":"Add","path":"externalId","value":"0a21f0f2"},
				{"op":"Add","path":"addresses[type eq \"work\"].streetAddress","value":"1 Main St"},
				{"op":"Add","path":"phoneNumbers[type eq \"mobile\"].value","value":"+1 555"}]}`,
			check: map[string]string{
				"emails":       `[{"primary":true,"type":"work","value":"updatedEmail@microsoft.com"},{"type":"home","value":"babs@jensen.org"}]`,
				"name":         `{"familyName":"updatedFamilyName","givenName":"Barbara"}`,
				"userName":     `"5b50642d@testuser.com"`,
				"externalId":   `"0a21f0f2"`,
				"addresses":    `[{"streetAddress":"1 Main St","type":"work"}]`,
				"phoneNumbers": `[{"type":"mobile","value":"+1 555"}]`,
			},
		},
		{
			name: "entra disable user with string boolean", resource: user, schema: UserSchema,
			body:  `{"Operations":[{"op":"Replace","path":"active","value":"False"}]}`,
			check: map[string]string{"active": `false`},
		},
		{
			name: "entra enable user with string boolean in pathless add", resource: `{"userName":"x","active":false}`, schema: UserSchema,
			body:  `{"Operations":[{"op":"Add","value":{"active":"True"}}]}`,
			check: map[string]string{"active": `true`},
		},
		{
			name: "okta deactivate", resource: user, schema: UserSchema,
			body:  `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`,
			check: map[string]string{"active": `false`, "userName": `"bjensen@example.com"`},
		},
		{
			name: "entra aadOptscim062020 pathless replace with dotted, filtered and URN keys", resource: user, schema: UserSchema,
			body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{
				"displayName":"New Name",
				"emails[type eq \"work\"].value":"new@example.com",
				"name.givenName":"Barb",
				"name.familyName":"J",
				"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"42",
				"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager":"m-1",
				"active":false}}]}`,
			check: map[string]string{
				"displayName": `"New Name"`,
				"emails":      `[{"primary":true,"type":"work","value":"new@example.com"},{"type":"home","value":"babs@jensen.org"}]`,
				"name":        `{"familyName":"J","givenName":"Barb"}`,
				"active":      `false`,
				EnterpriseURN: `{"employeeNumber":"42","manager":{"value":"m-1"}}`,
				"schemas":     `["urn:ietf:params:scim:schemas:core:2.0:User","` + EnterpriseURN + `"]`,
			},
		},
		{
			name: "aadOptscim062020 add single-valued", resource: user, schema: UserSchema,
			body:  `{"Operations":[{"op":"add","value":{"nickName":"Babs"}}]}`,
			check: map[string]string{"nickName": `"Babs"`},
		},
		{
			name: "manager bare id then object then removal", resource: user, schema: UserSchema,
			body: `{"Operations":[
				{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"m-1"},
				{"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":{"value":"m-2","$ref":null}},
				{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"Sales"}]}`,
			check: map[string]string{EnterpriseURN: `{"department":"Sales","manager":{"value":"m-2"}}`},
		},
		{
			name: "manager removed", resource: `{"userName":"x","schemas":["` + UserURN + `","` + EnterpriseURN + `"],"` + EnterpriseURN + `":{"manager":{"value":"m"}}}`, schema: UserSchema,
			body:  `{"Operations":[{"op":"Remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"}]}`,
			check: map[string]string{EnterpriseURN: `-`, "schemas": `["` + UserURN + `"]`},
		},
		{
			name: "manager cleared with empty string", resource: `{"userName":"x","` + EnterpriseURN + `":{"manager":{"value":"m"},"department":"d"}}`, schema: UserSchema,
			body:  `{"Operations":[{"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":""}]}`,
			check: map[string]string{EnterpriseURN: `{"department":"d"}`},
		},
		{
			name: "pathless extension object", resource: user, schema: UserSchema,
			body:  `{"Operations":[{"op":"add","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"R&D","manager":{"value":"m-9"}}}}]}`,
			check: map[string]string{EnterpriseURN: `{"department":"R\u0026D","manager":{"value":"m-9"}}`},
		},
		{
			name: "custom extension attribute", resource: user, schema: UserSchema,
			body: `{"Operations":[
				{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User:costCode","value":"7"},
				{"op":"add","value":{"urn:ietf:params:scim:schemas:extension:Other:2.0:User":{"tier":"gold"}}}]}`,
			check: map[string]string{
				"urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User": `{"costCode":"7"}`,
				"urn:ietf:params:scim:schemas:extension:Other:2.0:User":     `{"tier":"gold"}`,
			},
		},
		{
			name: "primary true on one email clears the others", resource: user, schema: UserSchema,
			body:  `{"Operations":[{"op":"replace","path":"emails[type eq \"home\"].primary","value":"true"}]}`,
			check: map[string]string{"emails": `[{"primary":false,"type":"work","value":"bjensen@example.com"},{"primary":true,"type":"home","value":"babs@jensen.org"}]`},
		},
		{
			name: "add email as primary", resource: user, schema: UserSchema,
			body:  `{"Operations":[{"op":"add","path":"emails","value":[{"value":"new@x.com","type":"other","primary":true}]}]}`,
			check: map[string]string{"emails": `[{"primary":false,"type":"work","value":"bjensen@example.com"},{"type":"home","value":"babs@jensen.org"},{"primary":true,"type":"other","value":"new@x.com"}]`},
		},
		{
			name: "add existing email (other case) does not duplicate", resource: user, schema: UserSchema,
			body:  `{"Operations":[{"op":"add","path":"emails","value":[{"value":"BABS@jensen.org"}]}]}`,
			check: map[string]string{"emails": `[{"primary":true,"type":"work","value":"bjensen@example.com"},{"type":"home","value":"BABS@jensen.org"}]`},
		},
		{
			name: "replace emails", resource: user, schema: UserSchema,
			body:  `{"Operations":[{"op":"replace","path":"emails","value":[{"value":"a@x","primary":"True","type":"work"},{"value":"a@x"}]}]}`,
			check: map[string]string{"emails": `[{"value":"a@x"}]`},
		},
		{
			name: "remove email by filter, and a filter matching nothing", resource: user, schema: UserSchema,
			body: `{"Operations":[{"op":"remove","path":"emails[type eq \"work\"]"},
				{"op":"remove","path":"emails[type eq \"nope\"]"},
				{"op":"remove","path":"nickName"}]}`,
			check: map[string]string{"emails": `[{"type":"home","value":"babs@jensen.org"}]`},
		},
		{
			name: "remove last email removes the attribute", resource: user, schema: UserSchema,
			body:  `{"Operations":[{"op":"remove","path":"emails[value ew \".com\" or value ew \".org\"]"}]}`,
			check: map[string]string{"emails": `-`},
		},
		{
			name: "remove a sub-attribute of matching values", resource: user, schema: UserSchema,
			body:  `{"Operations":[{"op":"remove","path":"emails[type eq \"work\"].primary"}]}`,
			check: map[string]string{"emails": `[{"type":"work","value":"bjensen@example.com"},{"type":"home","value":"babs@jensen.org"}]`},
		},
		{
			name: "attribute names are case-insensitive and keep their spelling", resource: `{"UserName":"x","NAME":{"GivenName":"a"}}`, schema: UserSchema,
			body: `{"Operations":[{"op":"replace","path":"username","value":"y"},
				{"op":"replace","path":"name.givenname","value":"b"},
				{"op":"add","path":"NICKNAME","value":"n"},
				{"op":"add","path":"urn:ietf:params:scim:schemas:core:2.0:User:TITLE","value":"t"}]}`,
			check: map[string]string{"UserName": `"y"`, "NAME": `{"GivenName":"b"}`, "nickName": `"n"`, "title": `"t"`},
		},
		{
			name: "replacing id with the same value is tolerated", resource: user, schema: UserSchema,
			body:  `{"Operations":[{"op":"replace","value":{"id":"2819c223","displayName":"X"}}]}`,
			check: map[string]string{"id": `"2819c223"`, "displayName": `"X"`},
		},
		{
			name: "group: okta rename with id", resource: group, schema: GroupSchema,
			body:  `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"id":"g1","displayName":"Test SCIMv2"}}]}`,
			check: map[string]string{"displayName": `"Test SCIMv2"`, "id": `"g1"`},
		},
		{
			name: "group: entra add member with $ref null, twice", resource: group, schema: GroupSchema,
			body: `{"Operations":[{"op":"Add","path":"members","value":[{"$ref":null,"value":"u3"}]},
				{"op":"Add","path":"members","value":[{"$ref":null,"value":"u3"},{"value":"u1"}]}]}`,
			check: map[string]string{"members": `[{"display":"A","value":"u1"},{"value":"u2"},{"value":"u3"}]`},
		},
		{
			name: "group: entra legacy remove with value list", resource: group, schema: GroupSchema,
			body:  `{"Operations":[{"op":"Remove","path":"members","value":[{"$ref":null,"value":"u1"},{"value":"nope"}]}]}`,
			check: map[string]string{"members": `[{"value":"u2"}]`},
		},
		{
			name: "group: okta remove by filter", resource: group, schema: GroupSchema,
			body:  `{"Operations":[{"op":"remove","path":"members[value eq \"u2\"]"}]}`,
			check: map[string]string{"members": `[{"display":"A","value":"u1"}]`},
		},
		{
			name: "group: member ids are case-exact", resource: group, schema: GroupSchema,
			body:  `{"Operations":[{"op":"remove","path":"members[value eq \"U2\"]"},{"op":"add","path":"members","value":["U1"]}]}`,
			check: map[string]string{"members": `[{"display":"A","value":"u1"},{"value":"u2"},{"value":"U1"}]`},
		},
		{
			name: "group: remove all members", resource: group, schema: GroupSchema,
			body:  `{"Operations":[{"op":"remove","path":"members"}]}`,
			check: map[string]string{"members": `-`, "displayName": `"Engineering"`},
		},
		{
			name: "group: replace members", resource: group, schema: GroupSchema,
			body:  `{"Operations":[{"op":"replace","path":"members","value":[{"value":"u9","type":"User"}]}]}`,
			check: map[string]string{"members": `[{"type":"User","value":"u9"}]`},
		},
		{
			name: "unknown attributes are kept", resource: `{"userName":"x"}`, schema: UserSchema,
			body:  `{"Operations":[{"op":"add","path":"customThing","value":{"a":1}},{"op":"add","path":"tags","value":["a","b"]},{"op":"add","path":"tags","value":["b","c"]}]}`,
			check: map[string]string{"customThing": `{"a":1}`, "tags": `["a","b","c"]`},
		},
		{
			name: "replace with null removes", resource: user, schema: UserSchema,
			body:  `{"Operations":[{"op":"replace","path":"displayName","value":null},{"op":"replace","path":"name.givenName"}]}`,
			check: map[string]string{"displayName": `-`, "name": `{"familyName":"Jensen"}`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := obj(t, tc.resource)
			before := canon(t, res)
			out, err := Apply(res, ops(t, tc.body), tc.schema)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if canon(t, res) != before {
				t.Fatalf("Apply modified its input")
			}
			// Replaying the request changes nothing more.
			again, err := Apply(out, ops(t, tc.body), tc.schema)
			if err != nil || canon(t, again) != canon(t, out) {
				t.Errorf("replay: %v\n  %s\n  %s", err, canon(t, again), canon(t, out))
			}
			for k, want := range tc.check {
				v, ok := out[k]
				got := "-"
				if ok {
					got = canon(t, v)
				}
				if got != want {
					t.Errorf("%s = %s, want %s", k, got, want)
				}
			}
		})
	}
}

func TestApplyErrors(t *testing.T) {
	tests := []struct {
		name, resource string
		schema         Schema
		body           string
		scimType       string
		index          int
	}{
		{"atomic: a later op fails", user, UserSchema, `{"Operations":[{"op":"replace","path":"displayName","value":"changed"},{"op":"replace","path":"id","value":"other"}]}`, ScimMutability, 1},
		{"replace meta", user, UserSchema, `{"Operations":[{"op":"replace","path":"meta.lastModified","value":"2020-01-01T00:00:00Z"}]}`, ScimMutability, 0},
		{"remove id", user, UserSchema, `{"Operations":[{"op":"remove","path":"id"}]}`, ScimMutability, 0},
		{"remove required userName", user, UserSchema, `{"Operations":[{"op":"remove","path":"userName"}]}`, ScimMutability, 0},
		{"remove required displayName", group, GroupSchema, `{"Operations":[{"op":"Remove","path":"displayName"}]}`, ScimMutability, 0},
		{"add groups (read-only)", user, UserSchema, `{"Operations":[{"op":"add","path":"groups","value":[{"value":"g"}]}]}`, ScimMutability, 0},
		{"remove without path", user, UserSchema, `{"Operations":[{"op":"remove"}]}`, ScimNoTarget, 0},
		{"bad path", user, UserSchema, `{"Operations":[{"op":"add","path":"emails[type eq","value":"x"}]}`, ScimInvalidPath, 0},
		{"bad path key in pathless", user, UserSchema, `{"Operations":[{"op":"add","value":{"a b":"x"}}]}`, ScimInvalidPath, 0},
		{"filter on single-valued", user, UserSchema, `{"Operations":[{"op":"replace","path":"userName[value eq \"x\"]","value":"x"}]}`, ScimInvalidPath, 0},
		{"sub-attribute of simple", user, UserSchema, `{"Operations":[{"op":"replace","path":"userName.x","value":"x"}]}`, ScimInvalidPath, 0},
		{"unknown op", user, UserSchema, `{"Operations":[{"op":"move","path":"userName","value":"x"}]}`, ScimInvalidSyntax, 0},
		{"not a boolean", user, UserSchema, `{"Operations":[{"op":"replace","path":"active","value":"maybe"}]}`, ScimInvalidValue, 0},
		{"pathless non-object", user, UserSchema, `{"Operations":[{"op":"replace","value":"x"}]}`, ScimInvalidValue, 0},
		{"complex given a list", user, UserSchema, `{"Operations":[{"op":"replace","path":"name","value":[1,2]}]}`, ScimInvalidValue, 0},
		{"filter that cannot create", user, UserSchema, `{"Operations":[{"op":"replace","path":"emails[type co \"x\"].value","value":"v"}]}`, ScimNoTarget, 0},
		{"a number for a string", user, UserSchema, `{"Operations":[{"op":"replace","path":"userName","value":123}]}`, ScimInvalidValue, 0},
		{"a boolean for a string in an extension", user, UserSchema, `{"Operations":[{"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber","value":true}]}`, ScimInvalidValue, 0},
		{"an object for a sub-attribute", user, UserSchema, `{"Operations":[{"op":"replace","path":"name.givenName","value":{"a":1}}]}`, ScimInvalidValue, 0},
		{"member without value", group, GroupSchema, `{"Operations":[{"op":"add","path":"members","value":[{"display":"x"}]}]}`, ScimInvalidValue, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := obj(t, tc.resource)
			before := canon(t, res)
			out, err := Apply(res, ops(t, tc.body), tc.schema)
			if err == nil {
				t.Fatalf("Apply = %v, want error", out)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v", err, err)
			}
			if pe.ScimType() != tc.scimType || pe.Index != tc.index || pe.Status() != 400 {
				t.Errorf("error %v: type %s index %d, want %s %d", err, pe.ScimType(), pe.Index, tc.scimType, tc.index)
			}
			if out != nil || canon(t, res) != before {
				t.Errorf("failed Apply changed something")
			}
		})
	}
}

func TestApplyNilResource(t *testing.T) {
	out, err := Apply(nil, []Operation{{Op: "add", Path: "userName", Value: "x"}}, UserSchema)
	if err != nil || out["userName"] != "x" {
		t.Fatalf("%v %v", out, err)
	}
}

func TestSplitGroupPatch(t *testing.T) {
	tests := []struct {
		name string
		body string
		want GroupPatch
	}{
		{
			name: "entra add",
			body: `{"Operations":[{"op":"Add","path":"members","value":[{"$ref":null,"value":"f648f8d5"}]}]}`,
			want: GroupPatch{Add: []Member{{Value: "f648f8d5"}}},
		},
		{
			name: "entra legacy remove",
			body: `{"Operations":[{"op":"Remove","path":"members","value":[{"$ref":null,"value":"f648f8d5"},{"value":"a"}]}]}`,
			want: GroupPatch{Remove: []string{"f648f8d5", "a"}},
		},
		{
			name: "okta and entra compliant remove by filter",
			body: `{"Operations":[{"op":"remove","path":"members[value eq \"89bb1940\"]"},{"op":"remove","path":"members[value eq \"x\" or value eq \"y\"]"}]}`,
			want: GroupPatch{Remove: []string{"89bb1940", "x", "y"}},
		},
		{
			name: "okta add with display and type",
			body: `{"Operations":[{"op":"add","path":"members","value":[{"value":"u1","display":"a@x","type":"User"},"u2"]}]}`,
			want: GroupPatch{Add: []Member{{Value: "u1", Display: "a@x", Type: "User"}, {Value: "u2"}}},
		},
		{
			name: "okta rename with id",
			body: `{"Operations":[{"op":"replace","value":{"id":"g1","displayName":"New"}}]}`,
			want: GroupPatch{Ops: []Operation{{Op: "replace", Value: map[string]any{"id": "g1", "displayName": "New"}}}},
		},
		{
			name: "pathless replace with members and displayName",
			body: `{"Operations":[{"op":"replace","value":{"displayName":"New","members":[{"value":"u1"}]}}]}`,
			want: GroupPatch{ReplaceMembers: true, Members: []Member{{Value: "u1"}}, Ops: []Operation{{Op: "replace", Value: map[string]any{"displayName": "New"}}}},
		},
		{
			name: "pathless add with only members",
			body: `{"Operations":[{"op":"add","value":{"members":[{"value":"u1"}]}}]}`,
			want: GroupPatch{Add: []Member{{Value: "u1"}}},
		},
		{
			name: "replace members",
			body: `{"Operations":[{"op":"replace","path":"members","value":[{"value":"a"},{"value":"b"},{"value":"a"}]}]}`,
			want: GroupPatch{ReplaceMembers: true, Members: []Member{{Value: "a"}, {Value: "b"}}},
		},
		{
			name: "replace members with nothing",
			body: `{"Operations":[{"op":"replace","path":"members","value":[]}]}`,
			want: GroupPatch{ReplaceMembers: true},
		},
		{
			name: "remove all then add",
			body: `{"Operations":[{"op":"remove","path":"members"},{"op":"add","path":"members","value":[{"value":"a"}]},{"op":"Replace","path":"displayName","value":"D"}]}`,
			want: GroupPatch{ReplaceMembers: true, Members: []Member{{Value: "a"}}, Ops: []Operation{{Op: "Replace", Path: "displayName", Value: "D"}}},
		},
		{
			name: "add then remove, remove then add",
			body: `{"Operations":[{"op":"add","path":"members","value":[{"value":"a"},{"value":"b"}]},{"op":"remove","path":"members[value eq \"a\"]"},{"op":"remove","path":"members","value":[{"value":"c"}]},{"op":"add","path":"members","value":[{"value":"c"}]}]}`,
			want: GroupPatch{Add: []Member{{Value: "b"}, {Value: "c"}}, Remove: []string{"a"}},
		},
		{
			name: "urn-qualified members path",
			body: `{"Operations":[{"op":"add","path":"urn:ietf:params:scim:schemas:core:2.0:Group:members","value":[{"value":"a"}]}]}`,
			want: GroupPatch{Add: []Member{{Value: "a"}}},
		},
		{
			name: "filter other than value eq needs the members",
			body: `{"Operations":[{"op":"remove","path":"members[type eq \"Group\"]"}]}`,
			want: GroupPatch{NeedsMembers: true},
		},
		{
			name: "member sub-attribute needs the members",
			body: `{"Operations":[{"op":"replace","path":"members[value eq \"a\"].display","value":"x"}]}`,
			want: GroupPatch{NeedsMembers: true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SplitGroupPatch(ops(t, tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
	if _, err := SplitGroupPatch(ops(t, `{"Operations":[{"op":"add","path":"members","value":[{"display":"x"}]}]}`)); err == nil {
		t.Error("member without value accepted")
	}
	g, _ := SplitGroupPatch(ops(t, `{"Operations":[{"op":"remove","path":"members"}]}`))
	if !g.RemoveAllMembers() {
		t.Error("remove members is not remove all")
	}
}

// The delta and Apply on the full group agree.
func TestSplitAgreesWithApply(t *testing.T) {
	bodies := []string{
		`{"Operations":[{"op":"Add","path":"members","value":[{"value":"u3"},{"value":"u1"}]}]}`,
		`{"Operations":[{"op":"Remove","path":"members","value":[{"value":"u1"}]}]}`,
		`{"Operations":[{"op":"remove","path":"members[value eq \"u2\" or value eq \"u9\"]"},{"op":"add","path":"members","value":["u2"]}]}`,
		`{"Operations":[{"op":"remove","path":"members"},{"op":"add","path":"members","value":[{"value":"a"}]}]}`,
		`{"Operations":[{"op":"replace","value":{"displayName":"New","members":[{"value":"u1"},{"value":"z"}]}}]}`,
		`{"Operations":[{"op":"add","path":"members","value":[{"value":"a"}]},{"op":"remove","path":"members[value eq \"a\"]"}]}`,
	}
	for _, body := range bodies {
		o := ops(t, body)
		full, err := Apply(obj(t, group), o, GroupSchema)
		if err != nil {
			t.Fatal(err)
		}
		split, err := SplitGroupPatch(o)
		if err != nil {
			t.Fatal(err)
		}
		members := map[string]bool{"u1": true, "u2": true}
		if split.ReplaceMembers {
			members = map[string]bool{}
			for _, m := range split.Members {
				members[m.Value] = true
			}
		}
		for _, m := range split.Add {
			members[m.Value] = true
		}
		for _, id := range split.Remove {
			delete(members, id)
		}
		want := map[string]bool{}
		for _, el := range elements(full["members"]) {
			want[el.(map[string]any)["value"].(string)] = true
		}
		if !reflect.DeepEqual(members, want) {
			t.Errorf("%s: delta gives %v, Apply %v", body, members, want)
		}
		rest, err := Apply(map[string]any{"id": "g1", "displayName": "Engineering"}, split.Ops, GroupSchema)
		if err != nil {
			t.Fatal(err)
		}
		if rest["displayName"] != full["displayName"] {
			t.Errorf("%s: displayName %v vs %v", body, rest["displayName"], full["displayName"])
		}
	}
}

func TestSchemaCaseExact(t *testing.T) {
	for k, want := range map[string]bool{
		"id": true, "externalid": true, "username": false, "emails.value": false,
		strings.ToLower(EnterpriseURN) + ":manager.value": true, "unknown": false,
	} {
		if UserSchema.CaseExact(k) != want {
			t.Errorf("CaseExact(%q) != %v", k, want)
		}
	}
	if !GroupSchema.CaseExact("members.value") {
		t.Error("members.value should be case-exact")
	}
}
