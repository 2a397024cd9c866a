package e2e

// Microsoft Entra ID, as "Tutorial: Develop and plan provisioning for a SCIM
// endpoint" and "Known issues and resolutions with SCIM 2.0 protocol
// compliance" describe it. Entra has two PATCH dialects: the default one of
// non-gallery "scim" jobs (capitalised ops, booleans as strings, member
// removal with a value list on path "members") and the compliant one a tenant
// gets with the aadOptscim062020 feature flag (lower-case ops, real booleans,
// members[value eq "..."] removal, multi-attribute replace as one pathless
// operation with dotted and URN-qualified keys). roster must accept both,
// and each dialect is played here against a fresh directory.

import (
	"net/url"
	"testing"
)

// entraUser is the create body from Entra's tutorial (ids are Entra's).
const entraUser = `{
	"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
	"externalId": "{{ext}}",
	"userName": "{{upn}}",
	"active": true,
	"displayName": "{{display}}",
	"emails": [{"primary": true, "type": "work", "value": "{{mail}}"}],
	"meta": {"resourceType": "User"},
	"name": {"formatted": "{{display}}", "familyName": "{{family}}", "givenName": "{{given}}"},
	"roles": [],
	"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Sales", "employeeNumber": "{{num}}"}
}`

func entraCreate(c *idp, upn, mail, given, family, ext, num string) string {
	c.t.Helper()
	// Entra first looks the user up by its matching attribute.
	m := c.must(200, "GET", "/Users?filter=userName+eq+%22"+url.QueryEscape(upn)+"%22", nil)
	if total, _ := listOf(c.t, m); total != 0 {
		c.t.Fatalf("user %s exists before create", upn)
	}
	body := fill(entraUser, "ext", ext, "upn", upn, "mail", mail, "given", given, "family", family, "display", given+" "+family, "num", num)
	created := c.must(201, "POST", "/Users", body)
	like(c.t, "Entra create", created, fill(`{"id": "*", "externalId": "{{ext}}", "userName": "{{upn}}", "active": true,
		"emails": [{"primary": true, "type": "work", "value": "{{mail}}"}], "name": {"familyName": "{{family}}", "givenName": "{{given}}"},
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Sales", "employeeNumber": "{{num}}"},
		"meta": {"resourceType": "User", "location": "*", "version": "*"}}`, "ext", ext, "upn", upn, "mail", mail, "given", given, "family", family, "num", num))
	return created["id"].(string)
}

var _ = golden.add("EntraTestConnection", func(t *testing.T, c *idp) {
	// "Test Connection" queries a user that does not exist, with a
	// random GUID, +-encoded.
	m := c.must(200, "GET", "/Users?filter=userName+eq+%2290ee72d2-4f55-4b2b-9a2b-4b6f2b1e5e5e%22", nil)
	like(t, "test connection", m, `{"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0, "Resources": []}`)
	c.must(200, "GET", "/Groups?excludedAttributes=members&filter=displayName+eq+%22f9b1c7a4%22", nil)
	c.must(200, "GET", "/ServiceProviderConfig", nil)
	c.roster()
})

var _ = golden.add("EntraUsersDefaultDialect", func(t *testing.T, c *idp) {
	boss := entraCreate(c, "boss@contoso.com", "boss@contoso.com", "Bo", "Ss", "e2f1c3d4-0001", "1")
	id := entraCreate(c, "Test_User_ab6490ee@contoso.com", "test_user_fd0ea19b@contoso.com", "givenName", "familyName", "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef", "1234")
	m := c.roster("boss@contoso.com", "test_user_fd0ea19b@contoso.com")["test_user_fd0ea19b@contoso.com"]
	if m["name"] != "givenName familyName" {
		t.Fatalf("roster member = %v", m)
	}
	// Lookups Entra makes: by userName (+-encoded), externalId, work email.
	for _, q := range []string{
		"/Users?filter=userName+eq+%22Test_User_ab6490ee%40contoso.com%22",
		"/Users?filter=" + url.QueryEscape(`externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"`),
		"/Users?filter=" + url.QueryEscape(`emails[type eq "work"].value eq "test_user_fd0ea19b@contoso.com"`),
	} {
		if total, res := c.list(q); total != 1 || res[0]["id"] != id {
			t.Fatalf("%s = %d", q, total)
		}
	}
	// Attribute updates, one operation per attribute, capitalised.
	c.patch(200, "/Users/"+id,
		`{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updated.email@contoso.com"}`,
		`{"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}`,
		`{"op": "Replace", "path": "displayName", "value": "givenName updatedFamilyName"}`,
		`{"op": "Add", "path": "nickName", "value": "Babs"}`,
		`{"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"}`,
		`{"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Marketing"}`)
	got := c.must(200, "GET", "/Users/"+id, nil)
	like(t, "after default-dialect PATCH", got, `{"emails": [{"primary": true, "type": "work", "value": "updated.email@contoso.com"}],
			"name": {"familyName": "updatedFamilyName", "givenName": "givenName"}, "nickName": "Babs",
			"phoneNumbers": [{"type": "mobile", "value": "+1 555 0100"}],
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Marketing", "employeeNumber": "1234"}}`)
	m = c.roster("boss@contoso.com", "updated.email@contoso.com")["updated.email@contoso.com"]
	if m["name"] != "givenName updatedFamilyName" {
		t.Fatalf("roster after PATCH = %v", m)
	}
	// The multi-attribute replace: one pathless operation with dotted
	// and URN-qualified keys, manager as a bare id.
	c.patch(200, "/Users/"+id, `{"op": "Replace", "value": {
			"displayName": "Ysmw Bncah",
			"name.givenName": "Ysmw",
			"name.familyName": "Bncah",
			"emails[type eq \"work\"].value": "ysmw@contoso.com",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "5678",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager": "`+boss+`"}}`)
	got = c.must(200, "GET", "/Users/"+id, nil)
	like(t, "after pathless replace", got, `{"displayName": "Ysmw Bncah", "name": {"givenName": "Ysmw", "familyName": "Bncah"},
			"emails": [{"type": "work", "value": "ysmw@contoso.com", "primary": true}],
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "5678", "department": "Marketing", "manager": {"value": "`+boss+`"}}}`)
	absent(t, "dotted keys are applied, not stored", got, "name.givenName", "name.familyName", "emails[type eq \"work\"].value",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager")
	m = c.roster("boss@contoso.com", "ysmw@contoso.com")["ysmw@contoso.com"]
	if m["name"] != "Ysmw Bncah" {
		t.Fatalf("roster after pathless replace = %v", m)
	}
	// Disable with a string boolean; the user stays readable.
	dis := c.patch(200, "/Users/"+id, `{"op": "Replace", "path": "active", "value": "False"}`)
	if dis["active"] != false {
		t.Fatalf("disable = %v", dis)
	}
	c.roster("boss@contoso.com")
	if total, _ := c.list("/Users?filter=" + url.QueryEscape(`active eq false`)); total != 1 {
		t.Fatalf("active eq false = %d", total)
	}
	// Restore (a soft-deleted user comes back).
	c.patch(200, "/Users/"+id, `{"op": "Replace", "path": "active", "value": "True"}`)
	c.roster("boss@contoso.com", "ysmw@contoso.com")
	// Hard delete; Entra may send it twice.
	c.must(204, "DELETE", "/Users/"+id, nil)
	c.mustErr(404, "", "DELETE", "/Users/"+id, nil)
	c.mustErr(404, "", "GET", "/Users/"+id, nil)
	c.roster("boss@contoso.com")
})

var _ = golden.add("EntraUsersCompliantDialect", func(t *testing.T, c *idp) {
	boss := entraCreate(c, "boss@contoso.com", "boss@contoso.com", "Bo", "Ss", "e2f1c3d4-0001", "1")
	id := entraCreate(c, "pvlo@contoso.com", "pvlo@contoso.com", "Pv", "Lo", "7f4bc1a3-285e-48ae-8202-5accb43efb0e", "77")
	c.patch(200, "/Users/"+id, `{"op": "add", "path": "nickName", "value": "Babs"}`)
	c.patch(200, "/Users/"+id, `{"op": "replace", "value": {
			"displayName": "Pvlo Updated",
			"emails[type eq \"work\"].value": "pvlo.updated@contoso.com",
			"name.givenName": "Pvlo",
			"name.familyName": "Updated"}}`)
	got := c.must(200, "GET", "/Users/"+id, nil)
	like(t, "compliant replace", got, `{"displayName": "Pvlo Updated", "nickName": "Babs", "name": {"givenName": "Pvlo", "familyName": "Updated"},
			"emails": [{"type": "work", "value": "pvlo.updated@contoso.com", "primary": true}]}`)
	c.roster("boss@contoso.com", "pvlo.updated@contoso.com")
	// Manager as an object, then removed.
	c.patch(200, "/Users/"+id, `{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": {"value": "`+boss+`"}}`)
	like(t, "manager set", c.must(200, "GET", "/Users/"+id, nil), `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "`+boss+`"}}}`)
	if total, res := c.list(filterPath("Users", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "`+boss+`"`)); total != 1 || res[0]["id"] != id {
		t.Fatalf("filter by manager = %d", total)
	}
	c.patch(200, "/Users/"+id, `{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"}`)
	got = c.must(200, "GET", "/Users/"+id, nil)
	if ext, _ := got[urnEnterprise].(map[string]any); ext == nil || ext["manager"] != nil || ext["employeeNumber"] != "77" {
		t.Fatalf("after manager removal = %v", got)
	}
	// Manager back as a bare id, then cleared with an empty string.
	c.patch(200, "/Users/"+id, `{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "`+boss+`"}`)
	like(t, "manager bare id", c.must(200, "GET", "/Users/"+id, nil), `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "`+boss+`"}}}`)
	c.patch(200, "/Users/"+id, `{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": ""}`)
	if ext, _ := c.must(200, "GET", "/Users/"+id, nil)[urnEnterprise].(map[string]any); ext["manager"] != nil {
		t.Fatalf("manager after clearing = %v", ext)
	}
	// Disable with a real boolean, pathless; restore.
	c.patch(200, "/Users/"+id, `{"op": "replace", "value": {"active": false}}`)
	c.roster("boss@contoso.com")
	c.patch(200, "/Users/"+id, `{"op": "replace", "path": "active", "value": true}`)
	c.roster("boss@contoso.com", "pvlo.updated@contoso.com")
	c.must(204, "DELETE", "/Users/"+id, nil)
	c.mustErr(404, "", "DELETE", "/Users/"+id, nil)
	c.roster("boss@contoso.com")
})

type entraDialect struct {
	add  func(id string) string
	drop func(id string) string
}

var (
	_ = golden.add("EntraGroupsDefault", entraGroups(entraDialect{
		func(id string) string {
			return `{"op": "Add", "path": "members", "value": [{"$ref": null, "value": "` + id + `"}]}`
		}, func(id string) string {
			return `{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "` + id + `"}]}`
		}}))
	_ = golden.add("EntraGroupsAadOptscim062020", entraGroups(entraDialect{
		func(id string) string {
			return `{"op": "add", "path": "members", "value": [{"value": "` + id + `"}]}`
		}, func(id string) string {
			return `{"op": "remove", "path": "members[value eq \"` + id + `\"]"}`
		}}))
)

func entraGroups(dialect entraDialect) func(t *testing.T, c *idp) {
	return func(t *testing.T, c *idp) {
		a := entraCreate(c, "a@contoso.com", "a@contoso.com", "A", "One", "ext-a", "1")
		b := entraCreate(c, "b@contoso.com", "b@contoso.com", "B", "Two", "ext-b", "2")
		d := entraCreate(c, "d@contoso.com", "d@contoso.com", "D", "Three", "ext-d", "3")
		// Entra looks the group up by displayName without members first.
		if total, _ := c.list("/Groups?excludedAttributes=members&filter=displayName+eq+%22Sales%20Team%22"); total != 0 {
			t.Fatalf("group exists before create")
		}
		g := c.must(201, "POST", "/Groups", `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/Group"],
					"externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159", "displayName": "Sales Team", "meta": {"resourceType": "Group"}}`)
		like(t, "group create", g, `{"id": "*", "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159", "displayName": "Sales Team", "meta": {"resourceType": "Group"}}`)
		gid := g["id"].(string)
		got := c.must(200, "GET", "/Groups/"+gid+"?excludedAttributes=members", nil)
		absent(t, "group without members", got, "members")
		c.setGroupLimit(gid, 7500)
		// Members in one request and in several.
		c.patch(204, "/Groups/"+gid, dialect.add(a))
		c.patch(204, "/Groups/"+gid, dialect.add(b), dialect.add(d))
		c.waitGroups(map[string]int{"Sales Team": 3})
		m := c.waitMember("b@contoso.com", "Sales Team")
		if cents, _ := limitOf(m); cents != 7500.0 {
			t.Fatalf("limit = %v", cents)
		}
		// The group read with excludedAttributes=members, by filter.
		_, res := c.list("/Groups?excludedAttributes=members&filter=displayName+eq+%22Sales%20Team%22")
		if len(res) != 1 || res[0]["id"] != gid {
			t.Fatalf("group by name = %v", res)
		}
		absent(t, "listed group without members", res[0], "members")
		// Removing one member removes only that member.
		c.patch(204, "/Groups/"+gid, dialect.drop(b))
		if ids := c.memberIDs(gid); !equal(ids, sorted(a, d)) {
			t.Fatalf("after removing b: %v", ids)
		}
		c.waitGroups(map[string]int{"Sales Team": 2})
		c.waitMember("b@contoso.com")
		c.waitMember("a@contoso.com", "Sales Team")
		// Rename.
		c.patch(204, "/Groups/"+gid, `{"op": "Replace", "path": "displayName", "value": "Sales EMEA"}`)
		c.waitGroups(map[string]int{"Sales EMEA": 2})
		// Removing a member who was already removed, and re-adding one
		// present, change nothing.
		c.patch(204, "/Groups/"+gid, dialect.drop(b), dialect.add(a))
		if ids := c.memberIDs(gid); !equal(ids, sorted(a, d)) {
			t.Fatalf("after replay: %v", ids)
		}
		// A deactivated member stays in the SCIM group but leaves the roster.
		c.patch(200, "/Users/"+d, `{"op": "Replace", "path": "active", "value": "False"}`)
		c.waitGroups(map[string]int{"Sales EMEA": 1})
		c.patch(200, "/Users/"+d, `{"op": "Replace", "path": "active", "value": "True"}`)
		c.waitMember("d@contoso.com", "Sales EMEA")
		c.must(204, "DELETE", "/Groups/"+gid, nil)
		c.mustErr(404, "", "DELETE", "/Groups/"+gid, nil)
		c.waitGroups(map[string]int{})
		c.roster("a@contoso.com", "b@contoso.com", "d@contoso.com")
	}
}
