package e2e

// Okta, as its public "SCIM 2.0 protocol reference" and "Build a SCIM
// provisioning integration" guides describe the requests it sends: an
// existence check by userName filter before each create, create with a
// password and an (empty) groups list, GET then a full PUT to update,
// pathless replace of active to deactivate and reactivate, and Group Push
// (create, rename with {"id","displayName"}, add and filtered remove in one
// PATCH, member replacement, delete).

import (
	"net/url"
	"testing"
)

var _ = golden.add("OktaUserLifecycle", func(t *testing.T, c *idp) {
	// Test connection / import: a first page of users.
	if total, res := c.list("/Users?startIndex=1&count=2"); total != 0 || len(res) != 0 {
		t.Fatalf("empty directory lists %d", total)
	}
	exists := "/Users?filter=" + url.PathEscape(`userName eq "test.user@okta.local"`) + "&startIndex=1&count=100"
	m := c.must(200, "GET", exists, nil)
	like(t, "existence check, none", m, `{"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0, "startIndex": 1, "itemsPerPage": 0, "Resources": []}`)

	created := c.must(201, "POST", "/Users", `{
			"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
			"userName": "test.user@okta.local",
			"name": {"givenName": "Test", "familyName": "User"},
			"emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
			"displayName": "Test User",
			"locale": "en-US",
			"externalId": "00ujl29u0le5T6Aj10h7",
			"groups": [],
			"password": "1mz050nq",
			"active": true
		}`)
	like(t, "create response", created, `{
			"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "*",
			"userName": "test.user@okta.local", "name": {"givenName": "Test", "familyName": "User"},
			"emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
			"displayName": "Test User", "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7", "active": true,
			"meta": {"resourceType": "User", "created": "*", "lastModified": "*", "location": "*"}}`)
	absent(t, "create response", created, "password")
	id := created["id"].(string)
	m2 := c.roster("test.user@okta.local")["test.user@okta.local"]
	if m2["name"] != "Test User" {
		t.Fatalf("roster member = %v", m2)
	}
	if cents, src := limitOf(m2); cents != 10000.0 || src["type"] != "team_default" {
		t.Fatalf("limit = %v %v", cents, src)
	}
	// The existence check now finds the user (userName compared
	// case-insensitively, as Okta's usernames are).
	m = c.must(200, "GET", "/Users?filter="+url.QueryEscape(`userName eq "Test.User@OKTA.local"`)+"&startIndex=1&count=100", nil)
	if total, res := listOf(t, m); total != 1 || res[0]["id"] != id {
		t.Fatalf("existence check = %v", m)
	}
	// A retried create is a conflict, never a duplicate.
	c.mustErr(409, "uniqueness", "POST", "/Users", `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "test.user@okta.local", "active": true}`)

	// Update: GET, then PUT the whole user back with changes.
	cur := c.must(200, "GET", "/Users/"+id, nil)
	cur["name"] = map[string]any{"givenName": "Another", "middleName": "", "familyName": "User"}
	cur["displayName"] = "Another User"
	cur["emails"] = []any{map[string]any{"primary": true, "value": "another.user@okta.local", "type": "work"}}
	cur["groups"] = []any{}
	cur["password"] = "t1meMa$heen"
	put := c.must(200, "PUT", "/Users/"+id, cur)
	like(t, "PUT response", put, `{"id": "`+id+`", "displayName": "Another User", "name": {"givenName": "Another", "familyName": "User"},
			"emails": [{"value": "another.user@okta.local"}], "active": true, "externalId": "00ujl29u0le5T6Aj10h7"}`)
	absent(t, "PUT response", put, "password")
	m2 = c.roster("another.user@okta.local")["another.user@okta.local"]
	if m2["name"] != "Another User" || m2["id"] != id {
		t.Fatalf("roster after PUT = %v", m2)
	}

	// Password sync is a pathless replace of password only: accepted, never echoed.
	pw := c.patch(200, "/Users/"+id, `{"op": "replace", "value": {"password": "new-Passw0rd"}}`)
	absent(t, "password PATCH", pw, "password")

	// Deactivate with a pathless replace.
	deact := c.patch(200, "/Users/"+id, `{"op": "replace", "value": {"active": false}}`)
	like(t, "deactivated", deact, `{"id": "`+id+`", "active": false, "userName": "test.user@okta.local"}`)
	c.roster()
	if u := c.must(200, "GET", "/Users/"+id, nil); u["active"] != false {
		t.Fatalf("deactivated user over SCIM = %v", u)
	}
	// Okta's import reads inactive users too.
	if total, _ := c.list("/Users?startIndex=1&count=100"); total != 1 {
		t.Fatalf("list after deactivation = %d", total)
	}
	// Reactivate.
	c.patch(200, "/Users/"+id, `{"op": "replace", "value": {"active": true}}`)
	c.roster("another.user@okta.local")
	// Deactivation by full PUT with active false (Okta's PUT-only apps).
	cur = c.must(200, "GET", "/Users/"+id, nil)
	cur["active"] = false
	c.must(200, "PUT", "/Users/"+id, cur)
	c.roster()
})

var _ = golden.add("OktaGroupPush", func(t *testing.T, c *idp) {
	u1 := c.user("test.user@okta.local", "test.user@okta.local")
	u2 := c.user("jane.doe@okta.local", "jane.doe@okta.local")
	u3 := c.user("sam.ray@okta.local", "sam.ray@okta.local")
	// Okta reads groups before pushing: with members, paged.
	if total, _ := c.list("/Groups?startIndex=1&count=100"); total != 0 {
		t.Fatalf("groups before push = %d", total)
	}
	g := c.must(201, "POST", "/Groups", `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Test SCIMv2", "members": []}`)
	like(t, "group create", g, `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "*", "displayName": "Test SCIMv2", "members": [],
			"meta": {"resourceType": "Group", "created": "*", "lastModified": "*", "location": "*"}}`)
	gid := g["id"].(string)
	c.setGroupLimit(gid, 5000)
	c.waitGroups(map[string]int{"Test SCIMv2": 0})

	// Push members.
	c.patch(204, "/Groups/"+gid, `{"op": "add", "path": "members", "value": [
			{"value": "`+u1+`", "display": "test.user@okta.local"},
			{"value": "`+u2+`", "display": "jane.doe@okta.local"}]}`)
	m := c.waitMember("test.user@okta.local", "Test SCIMv2")
	if cents, src := limitOf(m); cents != 5000.0 || src["type"] != "group" || src["group_name"] != "Test SCIMv2" {
		t.Fatalf("limit = %v %v", cents, src)
	}
	c.waitGroups(map[string]int{"Test SCIMv2": 2})

	// Rename: pathless replace carrying the group's own id.
	c.patch(204, "/Groups/"+gid, `{"op": "replace", "value": {"id": "`+gid+`", "displayName": "Engineering"}}`)
	if got := c.must(200, "GET", "/Groups/"+gid, nil); got["displayName"] != "Engineering" || len(idsOf(got["members"])) != 2 {
		t.Fatalf("after rename = %v", got)
	}
	m = c.waitMember("jane.doe@okta.local", "Engineering")
	if _, src := limitOf(m); src["group_name"] != "Engineering" {
		t.Fatalf("limit source after rename = %v", src)
	}
	// A different id in that object is refused (id is read-only).
	c.patch(400, "/Groups/"+gid, `{"op": "replace", "value": {"id": "someone-else", "displayName": "Hijack"}}`)

	// Add one and remove another in a single PATCH.
	c.patch(204, "/Groups/"+gid,
		`{"op": "add", "path": "members", "value": [{"value": "`+u3+`", "display": "sam.ray@okta.local"}]}`,
		`{"op": "remove", "path": "members[value eq \"`+u1+`\"]"}`)
	if got := c.memberIDs(gid); !equal(got, sorted(u2, u3)) {
		t.Fatalf("members = %v", got)
	}
	m = c.waitMember("test.user@okta.local")
	if cents, src := limitOf(m); cents != 10000.0 || src["type"] != "team_default" {
		t.Fatalf("limit after removal = %v %v", cents, src)
	}
	c.waitMember("sam.ray@okta.local", "Engineering")

	// Full member replacement, as a PATCH replace and as a PUT.
	c.patch(204, "/Groups/"+gid, `{"op": "replace", "path": "members", "value": [{"value": "`+u1+`"}, {"value": "`+u3+`"}]}`)
	if got := c.memberIDs(gid); !equal(got, sorted(u1, u3)) {
		t.Fatalf("members after replace = %v", got)
	}
	c.waitGroups(map[string]int{"Engineering": 2})
	c.waitMember("jane.doe@okta.local")
	put := c.must(200, "PUT", "/Groups/"+gid, `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "`+gid+`",
			"displayName": "Engineering", "members": [{"value": "`+u2+`", "display": "jane.doe@okta.local"}]}`)
	if ids := idsOf(put["members"]); !equal(ids, []string{u2}) {
		t.Fatalf("PUT members = %v", put)
	}
	c.waitMember("jane.doe@okta.local", "Engineering")
	c.waitMember("sam.ray@okta.local")
	c.waitGroups(map[string]int{"Engineering": 1})

	// Unlinking a pushed group in Okta deletes it.
	c.must(204, "DELETE", "/Groups/"+gid, nil)
	c.mustErr(404, "", "GET", "/Groups/"+gid, nil)
	c.waitGroups(map[string]int{})
	m = c.waitMember("jane.doe@okta.local")
	if cents, _ := limitOf(m); cents != 10000.0 {
		t.Fatalf("limit after group delete = %v", cents)
	}
	c.roster("test.user@okta.local", "jane.doe@okta.local", "sam.ray@okta.local")
})

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
