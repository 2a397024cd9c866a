package e2e

// OneLogin's SCIM Provisioner, as its documentation describes it: users are
// built from an admin-editable "SCIM JSON Template" (the core template names
// the non-standard schema "urn:scim:schemas:core:2.0", emails carry no type,
// unset fields arrive as empty strings), updates are full PUTs of that
// template, deprovisioning is a DELETE or a suspension (active false), and
// group memberships come from rules and are pushed as member add/remove
// PATCHes with value lists.

import (
	"testing"
)

// oneLoginUser is the SCIM v2 core template, filled in.
const oneLoginUser = `{
	"schemas": ["urn:scim:schemas:core:2.0"],
	"userName": "{{user}}",
	"name": {"familyName": "{{last}}", "givenName": "{{first}}"},
	"emails": [{"value": "{{mail}}"}]
}`

// oneLoginEnterpriseUser is the SCIM v2 enterprise template with one field
// the admin left empty.
const oneLoginEnterpriseUser = `{
	"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
	"userName": "{{user}}",
	"name": {"familyName": "{{last}}", "givenName": "{{first}}"},
	"emails": [{"value": "{{mail}}", "type": "work", "primary": true}],
	"title": "",
	"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "{{dept}}", "manager": ""}
}`

var _ = golden.add("OneLoginUsers", func(t *testing.T, c *idp) {
	core := c.must(201, "POST", "/Users", fill(oneLoginUser, "user", "kim@acme.test", "first", "Kim", "last", "Ito", "mail", "kim@acme.test"))
	like(t, "core template user", core, `{"userName": "kim@acme.test", "name": {"familyName": "Ito", "givenName": "Kim"}, "emails": [{"value": "kim@acme.test"}], "active": true}`)
	kim := core["id"].(string)
	ent := c.must(201, "POST", "/Users", fill(oneLoginEnterpriseUser, "user", "lee", "first", "Lee", "last", "Park", "mail", "lee@acme.test", "dept", "Ops"))
	like(t, "enterprise template user", ent, `{"userName": "lee", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Ops"}}`)
	if ext := ent[urnEnterprise].(map[string]any); ext["manager"] != nil {
		t.Fatalf("an empty manager is no manager: %v", ext)
	}
	lee := ent["id"].(string)
	m := c.roster("kim@acme.test", "lee@acme.test")
	if m["kim@acme.test"]["name"] != "Kim Ito" || m["lee@acme.test"]["name"] != "Lee Park" {
		t.Fatalf("roster = %v", m)
	}
	// Matching an existing account by userName.
	if total, res := c.list(filterPath("Users", `userName eq "KIM@acme.test"`)); total != 1 || res[0]["id"] != kim {
		t.Fatalf("lookup = %v", res)
	}
	// Update: the template again, as a PUT.
	c.must(200, "PUT", "/Users/"+kim, fill(oneLoginUser, "user", "kim@acme.test", "first", "Kimberly", "last", "Ito", "mail", "kimberly@acme.test"))
	m = c.roster("kimberly@acme.test", "lee@acme.test")
	if m["kimberly@acme.test"]["name"] != "Kimberly Ito" {
		t.Fatalf("after PUT = %v", m["kimberly@acme.test"])
	}
	// Suspension, as a PATCH and as a PUT with active false.
	c.patch(200, "/Users/"+kim, `{"op": "replace", "value": {"active": false}}`)
	c.roster("lee@acme.test")
	c.patch(200, "/Users/"+kim, `{"op": "replace", "value": {"active": true}}`)
	c.roster("kimberly@acme.test", "lee@acme.test")
	body := fill(oneLoginEnterpriseUser, "user", "lee", "first", "Lee", "last", "Park", "mail", "lee@acme.test", "dept", "Ops")
	body = body[:len(body)-1] + `, "active": false}`
	c.must(200, "PUT", "/Users/"+lee, body)
	c.roster("kimberly@acme.test")
	// Deletion.
	c.must(204, "DELETE", "/Users/"+kim, nil)
	c.mustErr(404, "", "GET", "/Users/"+kim, nil)
	c.roster()
})

var _ = golden.add("OneLoginGroups", func(t *testing.T, c *idp) {
	kim := c.user("kim@acme.test", "kim@acme.test")
	lee := c.user("lee@acme.test", "lee@acme.test")
	// OneLogin reads the app's groups to offer them in its rules, paged.
	c.group("Existing")
	if total, res := c.list("/Groups?startIndex=1&count=100"); total != 1 || res[0]["displayName"] != "Existing" {
		t.Fatalf("groups = %v", res)
	}
	gid := c.must(201, "POST", "/Groups", `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Support", "members": []}`)["id"].(string)
	c.setGroupLimit(gid, 0)
	c.patch(204, "/Groups/"+gid, `{"op": "add", "path": "members", "value": [{"value": "`+kim+`"}, {"value": "`+lee+`"}]}`)
	m := c.waitMember("kim@acme.test", "Support")
	if cents, src := limitOf(m); cents != 0.0 || src["type"] != "group" {
		t.Fatalf("a zero group limit is a limit: %v %v", cents, src)
	}
	c.patch(204, "/Groups/"+gid, `{"op": "remove", "path": "members", "value": [{"value": "`+kim+`"}]}`)
	if ids := c.memberIDs(gid); !equal(ids, []string{lee}) {
		t.Fatalf("after removal = %v", ids)
	}
	m = c.waitMember("kim@acme.test")
	if cents, _ := limitOf(m); cents != 10000.0 {
		t.Fatalf("kim's limit = %v", cents)
	}
	// A deleted user leaves every group.
	c.must(204, "DELETE", "/Users/"+lee, nil)
	if ids := c.memberIDs(gid); len(ids) != 0 {
		t.Fatalf("members after user delete = %v", ids)
	}
	c.waitGroups(map[string]int{"Existing": 0, "Support": 0})
	c.roster("kim@acme.test")
})
