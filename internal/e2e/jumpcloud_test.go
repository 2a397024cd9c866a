package e2e

// JumpCloud's custom SCIM identity management integration, as its
// documentation describes it: "Test Connection" creates a test user and a
// test group and deletes them again; a JumpCloud user group takes over an
// existing application group of the same name (found by a displayName
// filter); empty groups are not created, so a group arrives with members;
// renames are supported; memberships change with member add/remove PATCHes
// carrying value lists (no filter); deleting the user group in JumpCloud
// deletes the application group; suspended users are deactivated.

import (
	"net/url"
	"testing"
)

var _ = golden.add("JumpCloudTestConnection", func(t *testing.T, c *idp) {
	u := c.must(201, "POST", "/Users", `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "jc-test-user@example.com",
			"name": {"givenName": "JumpCloud", "familyName": "Test"}, "emails": [{"value": "jc-test-user@example.com", "type": "work", "primary": true}], "active": true}`)
	g := c.must(201, "POST", "/Groups", `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "JumpCloud Test Group"}`)
	c.roster("jc-test-user@example.com")
	c.must(204, "DELETE", "/Groups/"+g["id"].(string), nil)
	c.must(204, "DELETE", "/Users/"+u["id"].(string), nil)
	c.roster()
	c.waitGroups(map[string]int{})
	if total, _ := c.list("/Users"); total != 0 {
		t.Fatalf("test user left behind")
	}
})

var _ = golden.add("JumpCloudGroupSync", func(t *testing.T, c *idp) {
	ada := c.user("ada@example.com", "ada@example.com")
	ben := c.user("ben@example.com", "ben@example.com")
	cy := c.user("cy@example.com", "cy@example.com")
	// An application group already exists (pushed earlier by someone else).
	old := c.group("Designers", ben)
	// Takeover: JumpCloud finds the group by name and makes it match.
	_, res := c.list("/Groups?filter=" + url.QueryEscape(`displayName eq "Designers"`))
	if len(res) != 1 || res[0]["id"] != old {
		t.Fatalf("group by name = %v", res)
	}
	c.patch(204, "/Groups/"+old, `{"op": "add", "path": "members", "value": [{"value": "`+ada+`"}]}`)
	c.patch(204, "/Groups/"+old, `{"op": "remove", "path": "members", "value": [{"value": "`+ben+`"}]}`)
	if ids := c.memberIDs(old); !equal(ids, []string{ada}) {
		t.Fatalf("after takeover = %v", ids)
	}
	// A new user group arrives with its members.
	eng := c.must(201, "POST", "/Groups", `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Engineers",
			"members": [{"value": "`+ben+`"}, {"value": "`+cy+`"}]}`)["id"].(string)
	c.setGroupLimit(eng, 30000)
	c.setGroupLimit(old, 1000)
	c.waitGroups(map[string]int{"Designers": 1, "Engineers": 2})
	m := c.waitMember("cy@example.com", "Engineers")
	if cents, _ := limitOf(m); cents != 30000.0 {
		t.Fatalf("cy's limit = %v", cents)
	}
	// Rename.
	c.patch(204, "/Groups/"+eng, `{"op": "replace", "path": "displayName", "value": "Platform Engineers"}`)
	m = c.waitMember("ben@example.com", "Platform Engineers")
	if _, src := limitOf(m); src["group_name"] != "Platform Engineers" {
		t.Fatalf("limit source = %v", src)
	}
	// Suspended in JumpCloud: deactivated; back: reactivated with groups.
	c.patch(200, "/Users/"+ben, `{"op": "replace", "path": "active", "value": false}`)
	c.roster("ada@example.com", "cy@example.com")
	c.waitGroups(map[string]int{"Designers": 1, "Platform Engineers": 1})
	c.patch(200, "/Users/"+ben, `{"op": "replace", "path": "active", "value": true}`)
	c.waitMember("ben@example.com", "Platform Engineers")
	// Group deleted in JumpCloud.
	c.must(204, "DELETE", "/Groups/"+eng, nil)
	m = c.waitMember("cy@example.com")
	if cents, src := limitOf(m); cents != 10000.0 || src["type"] != "team_default" {
		t.Fatalf("after group delete = %v %v", cents, src)
	}
	m = c.waitMember("ada@example.com", "Designers")
	if cents, _ := limitOf(m); cents != 1000.0 {
		t.Fatalf("ada's limit = %v", cents)
	}
	c.waitGroups(map[string]int{"Designers": 1})
})
