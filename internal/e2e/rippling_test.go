package e2e

// Rippling's custom SCIM app, as its setup guides describe it: "Test
// connection" reads /ServiceProviderConfig; the app declares "Supports
// Pagination", "Create & Delete Groups", "Use PATCH to edit Groups" and
// optionally "Mutually Exclusive Groups"; the attributes it sends are
// externalId, the primary email, name.givenName, name.familyName and
// employeeNumber (enterprise extension); requests that failed are retried,
// so a create may arrive twice; termination deactivates or deletes.

import (
	"fmt"
	"testing"
)

const ripplingUser = `{
	"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
	"externalId": "{{ext}}",
	"userName": "{{mail}}",
	"name": {"givenName": "{{first}}", "familyName": "{{last}}"},
	"emails": [{"value": "{{mail}}", "primary": true}],
	"active": true,
	"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "{{num}}"}
}`

var _ = golden.add("RipplingProvisioning", func(t *testing.T, c *idp) {
	like(t, "test connection", c.must(200, "GET", "/ServiceProviderConfig", nil), `{"patch": {"supported": true}, "filter": {"supported": true}}`)
	var ids []string
	var emails []string
	for i := range 5 {
		mail := fmt.Sprintf("emp%d@rippling.test", i)
		body := fill(ripplingUser, "ext", fmt.Sprintf("rp-%d", i), "mail", mail, "first", "Emp", "last", fmt.Sprint(i), "num", fmt.Sprint(1000+i))
		ids = append(ids, c.must(201, "POST", "/Users", body)["id"].(string))
		emails = append(emails, mail)
	}
	// A retried create conflicts; the user is then found by externalId.
	retry := fill(ripplingUser, "ext", "rp-0", "mail", "emp0@rippling.test", "first", "Emp", "last", "0", "num", "1000")
	c.mustErr(409, "uniqueness", "POST", "/Users", retry)
	if total, res := c.list(filterPath("Users", `externalId eq "rp-0"`)); total != 1 || res[0]["id"] != ids[0] {
		t.Fatalf("by externalId = %v", res)
	}
	c.roster(emails...)
	// Paging through users two at a time.
	seen := map[string]bool{}
	for start := 1; start <= 5; start += 2 {
		total, res := c.list(fmt.Sprintf("/Users?startIndex=%d&count=2", start))
		if total != 5 {
			t.Fatalf("total = %d", total)
		}
		for _, u := range res {
			seen[u["id"].(string)] = true
		}
	}
	if len(seen) != 5 {
		t.Fatalf("paging saw %d users", len(seen))
	}
	// Profile change by PATCH replace.
	c.patch(200, "/Users/"+ids[1], `{"op": "replace", "path": "name.familyName", "value": "Renamed"}`,
		`{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "2001"}`)
	c.waitName("emp1@rippling.test", "Emp Renamed")
	like(t, "employeeNumber", c.must(200, "GET", "/Users/"+ids[1], nil), `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "2001"}}`)
	// Mutually exclusive groups: moving someone is a remove from one
	// group and an add to another.
	sales := c.must(201, "POST", "/Groups", `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Sales",
			"members": [{"value": "`+ids[0]+`"}, {"value": "`+ids[1]+`"}]}`)["id"].(string)
	support := c.must(201, "POST", "/Groups", `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Support",
			"members": [{"value": "`+ids[2]+`"}]}`)["id"].(string)
	c.setGroupLimit(sales, 50000)
	c.setGroupLimit(support, 2000)
	c.waitMember("emp1@rippling.test", "Sales")
	c.patch(204, "/Groups/"+sales, `{"op": "remove", "path": "members[value eq \"`+ids[1]+`\"]"}`)
	c.patch(204, "/Groups/"+support, `{"op": "add", "path": "members", "value": [{"value": "`+ids[1]+`"}]}`)
	m := c.waitMember("emp1@rippling.test", "Support")
	if cents, src := limitOf(m); cents != 2000.0 || src["group_name"] != "Support" {
		t.Fatalf("moved member's limit = %v %v", cents, src)
	}
	c.waitGroups(map[string]int{"Sales": 1, "Support": 2})
	// Termination: deactivate one, delete another.
	c.patch(200, "/Users/"+ids[3], `{"op": "replace", "path": "active", "value": false}`)
	c.must(204, "DELETE", "/Users/"+ids[2], nil)
	c.roster("emp0@rippling.test", "emp1@rippling.test", "emp4@rippling.test")
	c.waitGroups(map[string]int{"Sales": 1, "Support": 1})
	// Groups deleted in Rippling.
	c.must(204, "DELETE", "/Groups/"+sales, nil)
	c.waitMember("emp0@rippling.test")
	c.waitGroups(map[string]int{"Support": 1})
})
