package e2e

// SCIM that validates against the schema roster publishes: hostile input
// is refused with a 400 that names the attribute, while every quirk a real
// identity provider sends is still accepted (each rule below has the
// request an identity provider really sends next to it); writes that
// change nothing leave the resource and the roster alone.

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// refused sends a request that must fail with 400, the scimType and a
// detail naming what is wrong.
func (c *idp) refused(scimType, detail, method, path string, body any) {
	c.t.Helper()
	m := c.mustErr(400, scimType, method, path, body)
	if d, _ := m["detail"].(string); !strings.Contains(d, detail) {
		c.t.Fatalf("%s %s: detail %q does not name %q", method, path, d, detail)
	}
}

var _ = golden.add("SCIMHostileInput", func(t *testing.T, c *idp) {
	huge := strings.Repeat("a", 1<<20)
	for _, tc := range []struct {
		scimType, detail, body string
	}{
		{"invalidValue", "userName must be a string", `{"schemas": ["` + urnUser + `"], "userName": 123}`},
		{"invalidValue", "userName is 1048576 characters long; the limit is 256", `{"userName": "` + huge + `"}`},
		{"invalidSyntax", "name.givenName must be a single string", `{"userName": "x", "name": {"givenName": {"first": "X"}}}`},
		{"invalidValue", "schemas must include the User schema", `{"schemas": ["urn:bogus"], "userName": "x"}`},
		{"invalidValue", `"urn:bogus"`, `{"schemas": ["` + urnUser + `", "urn:bogus"], "userName": "x"}`},
		{"invalidValue", "schemas must include the User schema", `{"schemas": ["` + urnGroup + `"], "userName": "x"}`},
		{"invalidValue", `active must be true or false, got "maybe"`, `{"userName": "x", "active": "maybe"}`},
		{"invalidValue", "emails[1].value must be a string", `{"userName": "x", "emails": [{"value": "x@example.com"}, {"value": 7}]}`},
		{"invalidValue", "emails[0].value is 300 characters", `{"userName": "x", "emails": [{"value": "` + strings.Repeat("e", 300) + `"}]}`},
		{"invalidValue", "name.familyName is 257 characters", `{"userName": "x", "name": {"familyName": "` + strings.Repeat("é", 257) + `"}}`},
		{"invalidValue", "externalId must be a string", `{"userName": "x", "externalId": 157663}`},
		{"invalidValue", "title is 9000 characters long; the limit is 8192", `{"userName": "x", "title": "` + strings.Repeat("t", 9000) + `"}`},
		{"invalidValue", "phoneNumbers has 201 values; the limit is 200", `{"userName": "x", "phoneNumbers": [` + strings.TrimSuffix(strings.Repeat(`{"value": "1"},`, 201), ",") + `]}`},
		{"invalidValue", "the user is", `{"userName": "x", "urn:example:acme:2.0:User": {"blob": "` + strings.Repeat("b", 70<<10) + `"}}`},
		{"invalidSyntax", "displayName must be a single string, got an array", `{"userName": "x", "displayName": ["X"]}`},
		{"invalidValue", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber must be a string", `{"userName": "x", "` + urnEnterprise + `": {"employeeNumber": 42}}`},
		{"invalidSyntax", "urn:example:acme:2.0:User must be an object", `{"userName": "x", "urn:example:acme:2.0:User": "x"}`},
	} {
		c.refused(tc.scimType, tc.detail, "POST", "/Users", tc.body)
	}
	// The same rules hold for PUT and PATCH, and a refused write changes nothing.
	id := c.user("ann", "ann@example.com")
	before := c.must(200, "GET", "/Users/"+id, nil)
	c.refused("invalidValue", "userName must be a string", "PUT", "/Users/"+id, `{"userName": 123}`)
	c.refused("invalidSyntax", "name.givenName", "PUT", "/Users/"+id, `{"userName": "ann", "name": {"givenName": ["Ann"]}}`)
	c.refused("invalidValue", "userName is 300 characters", "PATCH", "/Users/"+id, map[string]any{"schemas": []string{urnPatchOp},
		"Operations": []any{map[string]any{"op": "replace", "path": "userName", "value": strings.Repeat("u", 300)}}})
	c.refused("invalidValue", "userName must be a string", "PATCH", "/Users/"+id, `{"schemas": ["`+urnPatchOp+`"], "Operations": [{"op": "replace", "path": "userName", "value": 123}]}`)
	c.refused("invalidValue", "givenName must be a string", "PATCH", "/Users/"+id, `{"schemas": ["`+urnPatchOp+`"], "Operations": [{"op": "replace", "path": "name.givenName", "value": {"x": 1}}]}`)
	c.refused("invalidValue", "active must be a boolean", "PATCH", "/Users/"+id, `{"schemas": ["`+urnPatchOp+`"], "Operations": [{"op": "Replace", "path": "active", "value": "maybe"}]}`)
	if after := c.must(200, "GET", "/Users/"+id, nil); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("a refused write changed the user:\n%v\n%v", before, after)
	}
	// Groups.
	c.refused("invalidValue", "displayName is 300 characters", "POST", "/Groups", `{"displayName": "`+strings.Repeat("g", 300)+`"}`)
	c.refused("invalidValue", "displayName must be a string", "POST", "/Groups", `{"displayName": 5}`)
	c.refused("invalidValue", "members[0].value must be a string", "POST", "/Groups", `{"displayName": "G", "members": [{"value": 5}]}`)
	c.refused("invalidValue", `"`+urnEnterprise+`"`, "POST", "/Groups", `{"schemas": ["`+urnGroup+`", "`+urnEnterprise+`"], "displayName": "G"}`)
	gid := c.group("Eng", id)
	c.refused("invalidValue", "displayName is 300 characters", "PATCH", "/Groups/"+gid, map[string]any{"schemas": []string{urnPatchOp},
		"Operations": []any{map[string]any{"op": "replace", "path": "displayName", "value": strings.Repeat("g", 300)}}})
	// Nothing refused reached the roster; in particular no 1 MiB name.
	c.roster("ann@example.com")
	c.waitGroups(map[string]int{"Eng": 1})
	for _, m := range c.r.Members(c.d.TeamID) {
		if n := len(fmt.Sprint(m["name"])); n > 256 {
			t.Fatalf("a member's name is %d bytes long", n)
		}
	}
})

// The quirks real identity providers send, each accepted.
var _ = golden.add("SCIMIdentityProviderQuirks", func(t *testing.T, c *idp) {
	boss := c.user("boss@contoso.com", "boss@contoso.com")
	// Entra: string booleans in any case, in POST and PATCH; the manager
	// as a bare id; capitalised ops.
	u := c.must(201, "POST", "/Users", `{"schemas": ["`+urnUser+`", "`+urnEnterprise+`"], "userName": "e1@contoso.com", "active": "True",
		"emails": [{"primary": "true", "type": "work", "value": "e1@contoso.com"}], "meta": {"resourceType": "User"}, "roles": [],
		"`+urnEnterprise+`": {"manager": "`+boss+`", "department": "Sales"}}`)
	like(t, "Entra create", u, `{"active": true, "emails": [{"primary": true, "type": "work", "value": "e1@contoso.com"}],
		"`+urnEnterprise+`": {"manager": {"value": "`+boss+`"}, "department": "Sales"}}`)
	e1 := u["id"].(string)
	for _, v := range []string{"False", "TRUE", "false", " True "} {
		got := c.patch(200, "/Users/"+e1, `{"op": "Replace", "path": "active", "value": "`+v+`"}`)
		if got["active"] != (strings.TrimSpace(strings.ToLower(v)) == "true") {
			t.Fatalf("active %q = %v", v, got["active"])
		}
	}
	c.patch(200, "/Users/"+e1, `{"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "`+c.user("b2@contoso.com", "b2@contoso.com")+`"}`)
	// Entra's group create with its ADSCIM schema, in both spellings.
	for i, urn := range []string{"http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group", "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/Group"} {
		c.must(201, "POST", "/Groups", fmt.Sprintf(`{"schemas": ["%s", "%s"], "externalId": "8aa1a0c0-%d", "displayName": "Entra %d", "meta": {"resourceType": "Group"}}`, urnGroup, urn, i, i))
	}
	// OneLogin: its core template's schema, empty strings for unset fields,
	// an empty manager.
	ol := c.must(201, "POST", "/Users", `{"schemas": ["urn:scim:schemas:core:2.0"], "userName": "kim@acme.test",
		"name": {"familyName": "Ito", "givenName": "Kim", "middleName": ""}, "emails": [{"value": "kim@acme.test"}], "title": "",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "", "manager": ""}}`)
	like(t, "OneLogin create", ol, `{"title": "", "name": {"middleName": ""}}`)
	// Okta: create with password, an empty groups list and one primary
	// email; clients that leave schemas out.
	c.must(201, "POST", "/Users", `{"schemas": ["`+urnUser+`"], "userName": "okta@okta.local", "password": "1mz050nq", "groups": [],
		"emails": [{"primary": true, "value": "okta@okta.local", "type": "work"}], "active": true}`)
	c.must(201, "POST", "/Users", `{"userName": "noschemas@example.com", "emails": {"value": "noschemas@example.com"}}`)
	c.must(201, "POST", "/Users", `{"schemas": [], "userName": "emptyschemas@example.com"}`)
	// An extension roster does not publish, listed and carried: kept.
	const ext = "urn:ietf:params:scim:schemas:extension:CustomExtension:2.0:User"
	x := c.must(201, "POST", "/Users", `{"schemas": ["`+urnUser+`", "`+ext+`"], "userName": "ext@example.com", "`+ext+`": {"costCode": 7}}`)
	like(t, "custom extension", x, `{"schemas": ["`+urnUser+`", "`+ext+`"], "`+ext+`": {"costCode": 7}}`)
	c.roster("boss@contoso.com", "b2@contoso.com", "e1@contoso.com", "kim@acme.test", "okta@okta.local", "noschemas@example.com", "emptyschemas@example.com", "ext@example.com")
	c.waitGroups(map[string]int{"Entra 0": 0, "Entra 1": 0})
})

// The one deliberate deviation from RFC 7644: a replace on a filtered path
// that matches nothing adds the value, as Entra expects (§3.5.2.3 says
// 400 noTarget).
var _ = golden.add("SCIMReplaceOnFilterMatchingNothingAdds", func(t *testing.T, c *idp) {
	id := c.user("ann", "ann@example.com")
	c.patch(200, "/Users/"+id, `{"op": "Replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"}`,
		`{"op": "Replace", "path": "emails[type eq \"home\"].value", "value": "ann@home.example"}`)
	like(t, "added", c.must(200, "GET", "/Users/"+id, nil), `{"phoneNumbers": [{"type": "mobile", "value": "+1 555 0100"}],
		"emails": [{"type": "work", "value": "ann@example.com", "primary": true}, {"type": "home", "value": "ann@home.example"}]}`)
	// A filter that cannot describe a new value stays noTarget.
	c.patch(400, "/Users/"+id, `{"op": "replace", "path": "emails[value co \"zzz\"].type", "value": "other"}`)
	c.roster("ann@example.com")
})

// Multi-valued attributes keep one primary value, the last one sent, and
// store exact duplicates once.
var _ = golden.add("SCIMPrimaryAndDuplicates", func(t *testing.T, c *idp) {
	u := c.must(201, "POST", "/Users", `{"userName": "ann", "emails": [
		{"value": "ann@old.example", "type": "work", "primary": true},
		{"value": "ann@example.com", "type": "work", "primary": true},
		{"value": "ANN@example.com", "type": "Work"},
		{"value": "ann@home.example", "type": "home"}]}`)
	want := `{"emails": [{"value": "ann@old.example", "type": "work", "primary": false}, {"value": "ann@example.com", "type": "work", "primary": true},
		{"value": "ann@home.example", "type": "home"}]}`
	like(t, "create", u, want)
	id := u["id"].(string)
	like(t, "read back", c.must(200, "GET", "/Users/"+id, nil), want)
	c.roster("ann@example.com")
	// PUT follows the same rule; the roster follows the primary.
	c.must(200, "PUT", "/Users/"+id, `{"userName": "ann", "emails": [{"value": "a@one.example", "primary": true}, {"value": "a@two.example", "primary": "True"}, {"value": "a@two.example"}]}`)
	like(t, "PUT", c.must(200, "GET", "/Users/"+id, nil), `{"emails": [{"value": "a@one.example", "primary": false}, {"value": "a@two.example", "primary": true}]}`)
	c.roster("a@two.example")
	// PATCH adding a new primary demotes the old one (RFC 7644 §3.5.2).
	c.patch(200, "/Users/"+id, `{"op": "add", "path": "emails", "value": [{"value": "a@three.example", "primary": true}]}`)
	like(t, "PATCH", c.must(200, "GET", "/Users/"+id, nil), `{"emails": [{"value": "a@one.example", "primary": false}, {"value": "a@two.example", "primary": false},
		{"value": "a@three.example", "primary": true}]}`)
	c.roster("a@three.example")
})

// eventCount waits until the team's event feed stops growing and returns
// its length.
func (c *idp) eventCount() int {
	c.t.Helper()
	count := func() int {
		return len(c.r.MustAdmin(200, "GET", "/teams/"+c.d.TeamID+"/events?limit=1000", nil)["events"].([]any))
	}
	n := count()
	for stable := 0; stable < 3; {
		time.Sleep(100 * time.Millisecond)
		if m := count(); m != n {
			n, stable = m, 0
		} else {
			stable++
		}
	}
	return n
}

// A PUT or PATCH that changes nothing keeps meta.version and
// meta.lastModified and writes no roster event.
var _ = golden.add("SCIMWritesThatChangeNothing", func(t *testing.T, c *idp) {
	ann := c.must(201, "POST", "/Users", `{"schemas": ["`+urnUser+`"], "userName": "ann@example.com", "displayName": "Ann Lee",
		"name": {"givenName": "Ann", "familyName": "Lee"}, "emails": [{"primary": true, "value": "ann@example.com", "type": "work"}],
		"externalId": "00ujl29u0le5T6Aj10h7", "locale": "en-US", "active": true}`)
	id := ann["id"].(string)
	bob := c.user("bob", "bob@example.com")
	gid := c.group("Eng", id)
	c.roster("ann@example.com", "bob@example.com")
	c.waitMember("ann@example.com", "Eng")
	events := c.eventCount()
	cur := c.must(200, "GET", "/Users/"+id, nil)
	meta := cur["meta"].(map[string]any)
	g := c.must(200, "GET", "/Groups/"+gid, nil)
	gmeta := g["meta"].(map[string]any)
	same := func(what string, m map[string]any, want map[string]any) {
		t.Helper()
		got := m["meta"].(map[string]any)
		if got["version"] != want["version"] || got["lastModified"] != want["lastModified"] {
			t.Fatalf("%s: meta %v, want version %v lastModified %v", what, got, want["version"], want["lastModified"])
		}
	}
	// Okta resends the whole profile: the GET answer with a new password.
	cur["password"] = "t1meMa$heen"
	for range 3 {
		same("resent PUT", c.must(200, "PUT", "/Users/"+id, cur), meta)
	}
	// Okta's PUT-only apps build the body themselves, without groups or meta.
	same("rebuilt PUT", c.must(200, "PUT", "/Users/"+id, `{"schemas": ["`+urnUser+`"], "userName": "ann@example.com", "displayName": "Ann Lee",
		"name": {"givenName": "Ann", "familyName": "Lee"}, "emails": [{"primary": true, "value": "ann@example.com", "type": "work"}],
		"externalId": "00ujl29u0le5T6Aj10h7", "locale": "en-US", "active": true, "groups": []}`), meta)
	// PATCHes to the current values, as Entra and Okta send them.
	same("PATCH", c.patch(200, "/Users/"+id, `{"op": "Replace", "path": "displayName", "value": "Ann Lee"}`, `{"op": "Replace", "path": "active", "value": "True"}`), meta)
	same("pathless PATCH", c.patch(200, "/Users/"+id, `{"op": "replace", "value": {"active": true, "name.givenName": "Ann"}}`), meta)
	same("re-adding an email", c.patch(200, "/Users/"+id, `{"op": "add", "path": "emails", "value": [{"value": "ann@example.com", "type": "work", "primary": true}]}`), meta)
	same("removing what is absent", c.patch(200, "/Users/"+id, `{"op": "remove", "path": "title"}`), meta)
	same("GET after", c.must(200, "GET", "/Users/"+id, nil), meta)
	// Groups: PUT of the GET answer, member deltas that are already so
	// (RFC 7644 §3.5.2.1), a rename to the current name.
	same("group PUT", c.must(200, "PUT", "/Groups/"+gid, g), gmeta)
	c.patch(204, "/Groups/"+gid, `{"op": "add", "path": "members", "value": [{"value": "`+id+`"}]}`)
	c.patch(204, "/Groups/"+gid, `{"op": "remove", "path": "members[value eq \"`+bob+`\"]"}`)
	c.patch(204, "/Groups/"+gid, `{"op": "Remove", "path": "members", "value": [{"value": "`+bob+`"}]}`)
	c.patch(204, "/Groups/"+gid, `{"op": "replace", "value": {"id": "`+gid+`", "displayName": "Eng"}}`)
	same("group after", c.must(200, "GET", "/Groups/"+gid, nil), gmeta)
	if n := c.eventCount(); n != events {
		t.Fatalf("writes that change nothing wrote %d roster events", n-events)
	}
	// A change still goes through, once.
	cur["displayName"] = "Ann L."
	put := c.must(200, "PUT", "/Users/"+id, cur)
	if put["meta"].(map[string]any)["version"] == meta["version"] {
		t.Fatalf("a changing PUT kept version %v", meta["version"])
	}
	c.waitName("ann@example.com", "Ann L.")
	if n := c.eventCount(); n != events+1 {
		t.Fatalf("a name change wrote %d events, want 1", n-events)
	}
})

// Resource-type path segments match case-insensitively: Microsoft's
// reference tests call /users.
var _ = golden.add("SCIMCaseInsensitivePaths", func(t *testing.T, c *idp) {
	resp := c.send("POST", "/users", `{"schemas": ["`+urnUser+`"], "userName": "ann@example.com"}`)
	if resp.Status != 201 || !strings.Contains(resp.Header.Get("Location"), "/Users/") {
		t.Fatalf("POST /users = %s, Location %q", resp, resp.Header.Get("Location"))
	}
	id := resp.JSON()["id"].(string)
	for _, p := range []string{"/users/" + id, "/USERS?filter=userName+eq+%22ann%40example.com%22", "/serviceproviderconfig", "/schemas", "/resourcetypes", "/resourceTypes/user", "/groups"} {
		c.must(200, "GET", p, nil)
	}
	gid := c.must(201, "POST", "/GROUPS", `{"displayName": "Eng"}`)["id"].(string)
	c.patch(204, "/groups/"+gid, `{"op": "add", "path": "members", "value": [{"value": "`+id+`"}]}`)
	m := c.must(200, "POST", "/bulk", `{"schemas": ["`+urnBulkReq+`"], "Operations": [{"method": "POST", "path": "/users", "bulkId": "b", "data": {"userName": "bob@example.com"}}]}`)
	like(t, "bulk on /users", m, `{"Operations": [{"status": "201", "location": "*"}]}`)
	c.mustErr(404, "", "GET", "/devices", nil)
	c.roster("ann@example.com", "bob@example.com")
	c.waitMember("ann@example.com", "Eng")
})

// /Schemas publishes the definitions writes are checked against.
var _ = golden.add("SCIMSchemasPublishTheChecks", func(t *testing.T, c *idp) {
	user := c.must(200, "GET", "/Schemas/"+urnUser, nil)
	attrs := map[string]map[string]any{}
	for _, a := range user["attributes"].([]any) {
		m := a.(map[string]any)
		attrs[m["name"].(string)] = m
	}
	b, _ := json.Marshal(attrs)
	like(t, "user schema", attrs, `{
		"userName": {"type": "string", "required": true, "uniqueness": "server", "multiValued": false},
		"name": {"type": "complex", "subAttributes": [{"name": "formatted"}, {"name": "familyName"}, {"name": "givenName"}, {"name": "middleName"},
			{"name": "honorificPrefix"}, {"name": "honorificSuffix"}]},
		"active": {"type": "boolean"},
		"password": {"mutability": "writeOnly", "returned": "never"},
		"groups": {"mutability": "readOnly", "multiValued": true},
		"profileUrl": {"type": "reference", "referenceTypes": ["external"]},
		"emails": {"type": "complex", "multiValued": true}
	}`)
	if _, ok := attrs["id"]; ok {
		t.Fatalf("the common attribute id is published in the User schema: %s", b)
	}
	// Each published type is enforced.
	c.refused("invalidValue", "active must be true or false", "POST", "/Users", `{"userName": "x", "active": "yes"}`)
	c.refused("invalidSyntax", "name must be an object", "POST", "/Users", `{"userName": "x", "name": "X"}`)
	c.refused("invalidSyntax", "emails must be an array", "POST", "/Users", `{"userName": "x", "emails": "x@example.com"}`)
	c.refused("invalidValue", "x509Certificates[0].value must be base64-encoded", "POST", "/Users", `{"userName": "x", "x509Certificates": [{"value": "*not base64*"}]}`)
	// Read-only and write-only attributes are accepted and not stored.
	u := c.must(201, "POST", "/Users", `{"userName": "x@example.com", "id": "chosen", "groups": [{"value": "g"}], "password": "pw", "meta": {"created": "2000-01-01T00:00:00Z"}}`)
	if u["id"] == "chosen" || u["groups"] != nil || u["password"] != nil || u["meta"].(map[string]any)["created"] == "2000-01-01T00:00:00Z" {
		t.Fatalf("read-only or write-only values were stored: %v", u)
	}
	c.roster("x@example.com")
})
