package e2e

// Generic RFC 7643/7644 conformance of the SCIM endpoint, each case also
// checking the roster it leads to.

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/roster-dev/roster/config"
)

var _ = golden.add("SCIMDiscovery", func(t *testing.T, c *idp) {
	spc := c.must(200, "GET", "/ServiceProviderConfig", nil)
	like(t, "ServiceProviderConfig", spc, `{
			"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
			"patch": {"supported": true},
			"bulk": {"supported": true, "maxOperations": "*", "maxPayloadSize": "*"},
			"filter": {"supported": true, "maxResults": "*"},
			"changePassword": {"supported": false},
			"sort": {"supported": false},
			"etag": {"supported": true},
			"authenticationSchemes": [{"type": "oauthbearertoken", "name": "*", "description": "*"}]
		}`)
	total, schemas := c.list("/Schemas")
	ids := []string{}
	for _, s := range schemas {
		ids = append(ids, s["id"].(string))
		if len(s["attributes"].([]any)) == 0 {
			t.Fatalf("schema %v has no attributes", s["id"])
		}
	}
	if total != 3 || strings.Join(sorted(ids...), " ") != strings.Join(sorted(urnGroup, urnUser, urnEnterprise), " ") {
		t.Fatalf("/Schemas = %d %v", total, ids)
	}
	one := c.must(200, "GET", "/Schemas/"+urnUser, nil)
	if one["id"] != urnUser || one["name"] != "User" {
		t.Fatalf("/Schemas/{user} = %v", one)
	}
	_, types := c.list("/ResourceTypes")
	like(t, "ResourceTypes", map[string]any{"Resources": types}, `{"Resources": [
			{"id": "User", "name": "User", "endpoint": "/Users", "schema": "urn:ietf:params:scim:schemas:core:2.0:User",
			 "schemaExtensions": [{"schema": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "required": false}]},
			{"id": "Group", "name": "Group", "endpoint": "/Groups", "schema": "urn:ietf:params:scim:schemas:core:2.0:Group"}
		]}`)
	c.must(200, "GET", "/ResourceTypes/User", nil)
	c.mustErr(404, "", "GET", "/ResourceTypes/Device", nil)
	c.mustErr(404, "", "GET", "/Devices", nil)
	c.mustErr(501, "", "GET", "/Me", nil)
	c.mustErr(405, "", "POST", "/ServiceProviderConfig", `{}`)
	// No token: 401, still a SCIM error.
	resp := c.r.Do("GET", c.d.BaseURL+"/Users", "", nil)
	if resp.Status != 401 {
		t.Fatalf("no token = %s", resp)
	}
	checkSCIMError(t, resp, 401)
})

var _ = golden.add("SCIMPaging", func(t *testing.T, c *idp) {
	var emails []string
	for i := range 7 {
		e := fmt.Sprintf("p%d@example.com", i)
		c.user(fmt.Sprintf("p%d", i), e)
		emails = append(emails, e)
	}
	c.user("q0", "q0@example.com")
	c.roster(append(emails, "q0@example.com")...)
	f := url.QueryEscape(`userName sw "p"`)
	seen := map[string]bool{}
	var order []string
	for _, start := range []int{1, 4, 7} {
		m := c.must(200, "GET", fmt.Sprintf("/Users?filter=%s&startIndex=%d&count=3", f, start), nil)
		total, res := listOf(t, m)
		want := min(3, 7-start+1)
		if total != 7 || len(res) != want || m["startIndex"] != float64(start) {
			t.Fatalf("page at %d = total %d, %d items, startIndex %v; want 7, %d, %d", start, total, len(res), m["startIndex"], want, start)
		}
		for _, u := range res {
			if seen[u["id"].(string)] {
				t.Fatalf("user %v on two pages", u["userName"])
			}
			seen[u["id"].(string)] = true
			order = append(order, u["id"].(string))
		}
	}
	if len(seen) != 7 {
		t.Fatalf("pages covered %d users, want 7", len(seen))
	}
	// Stable order: the same walk again gives the same sequence.
	_, all := c.list("/Users?filter=" + f + "&count=100")
	for i, u := range all {
		if u["id"] != order[i] {
			t.Fatalf("order differs between a paged and a full read at %d", i)
		}
	}
	// Past the end: no resources, true total.
	m := c.must(200, "GET", "/Users?startIndex=20&count=5", nil)
	if total, res := listOf(t, m); total != 8 || len(res) != 0 {
		t.Fatalf("past the end = %d %d", total, len(res))
	}
	// count=0: only the total.
	m = c.must(200, "GET", "/Users?count=0", nil)
	if total, res := listOf(t, m); total != 8 || len(res) != 0 {
		t.Fatalf("count=0 = %d %d", total, len(res))
	}
	// startIndex < 1 is 1; negative count is 0 (RFC 7644 §3.4.2.4).
	if total, res := c.list("/Users?startIndex=0&count=2"); total != 8 || len(res) != 2 {
		t.Fatalf("startIndex=0 = %d %d", total, len(res))
	}
	if total, res := c.list("/Users?count=-3"); total != 8 || len(res) != 0 {
		t.Fatalf("count=-3 = %d %d", total, len(res))
	}
	c.mustErr(400, "", "GET", "/Users?count=lots", nil)
	// Groups page the same way.
	for i := range 3 {
		c.group(fmt.Sprintf("G%d", i))
	}
	if total, res := c.list("/Groups?startIndex=2&count=1"); total != 3 || len(res) != 1 {
		t.Fatalf("group page = %d %d", total, len(res))
	}
	c.waitGroups(map[string]int{"G0": 0, "G1": 0, "G2": 0})
})

var _ = golden.add("SCIMAttributesProjection", func(t *testing.T, c *idp) {
	u := c.must(201, "POST", "/Users", `{
			"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
			"userName": "ann", "name": {"givenName": "Ann", "familyName": "Lee"}, "title": "Engineer",
			"emails": [{"value": "ann@example.com", "type": "work", "primary": true}],
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D", "costCenter": "42"}
		}`)
	id := u["id"].(string)
	got := c.must(200, "GET", "/Users/"+id+"?attributes=userName", nil)
	if got["userName"] != "ann" || got["id"] != id {
		t.Fatalf("attributes=userName = %v", got)
	}
	absent(t, "attributes=userName", got, "emails", "name", "title", urnEnterprise)
	got = c.must(200, "GET", "/Users/"+id+"?excludedAttributes=emails,title", nil)
	absent(t, "excludedAttributes=emails,title", got, "emails", "title")
	if got["userName"] != "ann" || got["name"] == nil {
		t.Fatalf("excludedAttributes keeps the rest: %v", got)
	}
	got = c.must(200, "GET", "/Users/"+id+"?attributes=name.givenName", nil)
	like(t, "attributes=name.givenName", got, `{"name": {"givenName": "Ann"}}`)
	if _, ok := got["name"].(map[string]any)["familyName"]; ok {
		t.Fatalf("attributes=name.givenName returned familyName: %v", got)
	}
	got = c.must(200, "GET", "/Users/"+id+"?excludedAttributes=name.familyName,emails.type", nil)
	like(t, "excludedAttributes=name.familyName,emails.type", got, `{"name": {"givenName": "Ann"}, "emails": [{"value": "ann@example.com", "primary": true}], "title": "Engineer"}`)
	if got["name"].(map[string]any)["familyName"] != nil || got["emails"].([]any)[0].(map[string]any)["type"] != nil {
		t.Fatalf("excluded sub-attributes returned: %v", got)
	}
	got = c.must(200, "GET", "/Users/"+id+"?attributes=emails.value,"+url.QueryEscape(urnUser+":userName"), nil)
	like(t, "attributes=emails.value", got, `{"userName": "ann", "emails": [{"value": "ann@example.com"}]}`)
	if len(got["emails"].([]any)[0].(map[string]any)) != 1 {
		t.Fatalf("attributes=emails.value returned more: %v", got)
	}
	got = c.must(200, "GET", "/Users/"+id+"?attributes="+url.QueryEscape(urnEnterprise+":department"), nil)
	like(t, "attributes=enterprise:department", got, `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"}}`)
	_, res := c.list("/Users?attributes=userName,emails")
	if len(res) != 1 || res[0]["emails"] == nil || res[0]["name"] != nil {
		t.Fatalf("list with attributes = %v", res)
	}
	gid := c.group("Eng", id)
	g := c.must(200, "GET", "/Groups/"+gid+"?excludedAttributes=members", nil)
	absent(t, "group excludedAttributes=members", g, "members")
	if g["displayName"] != "Eng" {
		t.Fatalf("group = %v", g)
	}
	_, gs := c.list("/Groups?excludedAttributes=members")
	absent(t, "group list excludedAttributes=members", gs[0], "members")
	_, gs = c.list("/Groups?attributes=members")
	if ids := idsOf(gs[0]["members"]); len(ids) != 1 || ids[0] != id {
		t.Fatalf("group list attributes=members = %v", gs)
	}
	absent(t, "group list attributes=members", gs[0], "displayName")
	c.waitMember("ann@example.com", "Eng")
})

var _ = golden.add("SCIMFilters", func(t *testing.T, c *idp) {
	mk := func(body string) string { return c.must(201, "POST", "/Users", body)["id"].(string) }
	ann := mk(`{"userName": "Ann.Lee@Example.com", "externalId": "ext-ann", "name": {"givenName": "Ann", "familyName": "Lee"},
			"emails": [{"value": "ann@example.com", "type": "work", "primary": true}, {"value": "ann@home.example", "type": "home"}]}`)
	bob := mk(`{"userName": "bob", "externalId": "ext-bob", "displayName": "Bob Stone", "name": {"givenName": "Bob"},
			"emails": [{"value": "bob@example.com", "type": "work"}]}`)
	cid := mk(`{"userName": "cid", "active": false, "emails": [{"value": "cid@example.com", "type": "work"}]}`)
	c.roster("ann@example.com", "bob@example.com")
	g := c.group("Engineering", ann, bob)
	c.group("Sales", cid)
	cases := []struct {
		filter string
		want   []string
	}{
		{`userName eq "ann.lee@example.com"`, []string{ann}},
		{`USERNAME EQ "ANN.LEE@EXAMPLE.COM"`, []string{ann}},
		{`userName ne "bob"`, []string{ann, cid}},
		{`userName co "lee@"`, []string{ann}},
		{`userName sw "B"`, []string{bob}},
		{`userName ew ".com"`, []string{ann}},
		{`displayName pr`, []string{bob}},
		{`externalId eq "ext-bob"`, []string{bob}},
		{`externalId eq "EXT-BOB"`, nil}, // caseExact
		{`active eq false`, []string{cid}},
		{`active eq true and name.givenName sw "a"`, []string{ann}},
		{`userName eq "bob" or userName eq "cid"`, []string{bob, cid}},
		{`not (userName eq "bob") and (active eq true)`, []string{ann}},
		{`emails[type eq "work" and value eq "bob@example.com"]`, []string{bob}},
		{`emails[type eq "work"].value eq "cid@example.com"`, []string{cid}},
		{`emails.value eq "ann@home.example"`, []string{ann}},
		{`emails co "home"`, []string{ann}},
		{`meta.created gt "2000-01-01T00:00:00Z"`, []string{ann, bob, cid}},
		{`meta.lastModified lt "2000-01-01T00:00:00Z"`, nil},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bob"`, []string{bob}},
	}
	for _, tc := range cases {
		_, res := c.list(filterPath("Users", tc.filter))
		got := []string{}
		for _, r := range res {
			got = append(got, r["id"].(string))
		}
		if strings.Join(sorted(got...), ",") != strings.Join(sorted(tc.want...), ",") {
			t.Errorf("filter %s = %v, want %v", tc.filter, got, tc.want)
		}
	}
	for _, tc := range []struct {
		filter string
		want   int
	}{
		{`displayName eq "engineering"`, 1},
		{`displayName sw "Eng"`, 1},
		{`members[value eq "` + cid + `"]`, 1},
		{`members.value eq "` + ann + `"`, 1},
		{`displayName eq "Nope"`, 0},
	} {
		if total, res := c.list(filterPath("Groups", tc.filter)); total != tc.want || len(res) != tc.want {
			t.Errorf("group filter %s = %d, want %d", tc.filter, total, tc.want)
		}
	}
	if _, res := c.list(filterPath("Groups", `displayName eq "Engineering"`, "excludedAttributes", "members")); len(res) != 1 || res[0]["id"] != g {
		t.Fatalf("group by displayName = %v", res)
	} else {
		absent(t, "filtered group without members", res[0], "members")
	}
	// Bad filters: 400 invalidFilter, never a 500.
	for _, f := range []string{
		`userName eq`, `userName zz "x"`, `(userName eq "x"`, `userName eq "x" and`, `emails[type eq "work"`,
		`userName eq "unterminated`, `][`, `and`, `userName eq x y`, `"quoted" eq "x"`, strings.Repeat("(", 500),
		`emails[type eq "work"].value[x eq "y"]`, `userName gt`,
	} {
		c.mustErr(400, "invalidFilter", "GET", filterPath("Users", f), nil)
	}
	c.mustErr(400, "invalidFilter", "GET", filterPath("Groups", `displayName eq`), nil)
	// An attribute roster does not know matches nothing rather than failing.
	resp := c.send("GET", filterPath("Users", `nickName eq "x"`), nil)
	if resp.Status != 200 && resp.Status != 400 {
		t.Fatalf("unknown attribute = %s", resp)
	}
})

var _ = golden.add("SCIMCreateConflictsAndErrors", func(t *testing.T, c *idp) {
	resp := c.send("POST", "/Users", `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bob@example.com"}`)
	if resp.Status != 201 {
		t.Fatalf("create = %s", resp)
	}
	u := resp.JSON()
	loc := resp.Header.Get("Location")
	meta := u["meta"].(map[string]any)
	if loc == "" || loc != meta["location"] || !strings.HasSuffix(loc, "/Users/"+u["id"].(string)) {
		t.Fatalf("Location %q, meta.location %v", loc, meta["location"])
	}
	if resp.Header.Get("ETag") == "" || resp.Header.Get("ETag") != meta["version"] {
		t.Fatalf("ETag %q, meta.version %v", resp.Header.Get("ETag"), meta["version"])
	}
	like(t, "created user", u, `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bob@example.com", "active": true,
			"meta": {"resourceType": "User", "created": "*", "lastModified": "*", "version": "*", "location": "*"}}`)
	// userName is email and no emails: the roster uses userName.
	c.roster("bob@example.com")
	c.mustErr(409, "uniqueness", "POST", "/Users", `{"userName": "BOB@example.COM"}`)
	c.mustErr(400, "invalidValue", "POST", "/Users", `{"name": {"givenName": "x"}}`)
	c.mustErr(400, "invalidSyntax", "POST", "/Users", `{"userName": `)
	// A wrong JSON shape is invalidSyntax, a wrong value invalidValue.
	c.mustErr(400, "invalidSyntax", "POST", "/Users", `{"userName": "x", "emails": "x@example.com"}`)
	c.mustErr(400, "invalidSyntax", "POST", "/Users", `{"userName": "x", "name": "X Y"}`)
	c.mustErr(400, "invalidSyntax", "POST", "/Users", `{"userName": "x", "`+urnEnterprise+`": "Sales"}`)
	c.mustErr(400, "invalidValue", "POST", "/Users", `{"userName": "x", "active": "yes"}`)
	// One email sent as an object rather than a list is taken as the list.
	single := c.must(201, "POST", "/Users", `{"userName": "solo", "emails": {"value": "solo@example.com", "type": "work"}}`)
	like(t, "single email", single, `{"emails": [{"value": "solo@example.com", "type": "work"}]}`)
	c.must(204, "DELETE", "/Users/"+single["id"].(string), nil)
	c.mustErr(400, "", "POST", "/Users", ``)
	c.mustErr(404, "", "GET", "/Users/00000000-0000-0000-0000-000000000000", nil)
	c.mustErr(404, "", "PUT", "/Users/00000000-0000-0000-0000-000000000000", `{"userName": "x"}`)
	c.mustErr(404, "", "PATCH", "/Users/00000000-0000-0000-0000-000000000000", `{"schemas": ["`+urnPatchOp+`"], "Operations": [{"op": "replace", "path": "active", "value": false}]}`)
	c.mustErr(404, "", "DELETE", "/Groups/00000000-0000-0000-0000-000000000000", nil)
	amy := c.user("amy", "amy@example.com")
	c.mustErr(409, "uniqueness", "PUT", "/Users/"+amy, `{"userName": "Bob@Example.com"}`)
	// Member deltas on a group that does not exist: 404, whether they would
	// have changed rows or not.
	for _, op := range []string{"add", "remove"} {
		c.mustErr(404, "", "PATCH", "/Groups/00000000-0000-0000-0000-000000000000", `{"schemas": ["`+urnPatchOp+`"], "Operations": [{"op": "`+op+`", "path": "members", "value": [{"value": "`+amy+`"}]}]}`)
	}
	c.patch(409, "/Users/"+amy, `{"op": "replace", "path": "userName", "value": "bob@EXAMPLE.com"}`)
	// Groups: displayName is unique in the directory.
	gid := c.group("Admins")
	c.mustErr(409, "uniqueness", "POST", "/Groups", `{"displayName": "Admins"}`)
	other := c.group("Others")
	c.patch(409, "/Groups/"+other, `{"op": "replace", "path": "displayName", "value": "Admins"}`)
	c.mustErr(400, "invalidValue", "POST", "/Groups", `{"displayName": "X", "members": [{"value": "no-such-user"}]}`)
	c.mustErr(400, "", "POST", "/Groups", `{"members": []}`)
	c.waitGroups(map[string]int{"Admins": 0, "Others": 0})
	// Unknown PATCH op and missing Operations are 400s.
	c.patch(400, "/Groups/"+gid, `{"op": "merge", "path": "displayName", "value": "x"}`)
	c.mustErr(400, "", "PATCH", "/Groups/"+gid, `{"schemas": ["`+urnPatchOp+`"]}`)
	// Wrong methods.
	c.mustErr(405, "", "POST", "/Users/"+amy, `{}`)
	c.mustErr(405, "", "DELETE", "/Users", nil)
	c.roster("bob@example.com", "amy@example.com")
})

var _ = golden.add("SCIMVersions", func(t *testing.T, c *idp) {
	id := c.user("ann", "ann@example.com")
	resp := c.send("GET", "/Users/"+id, nil)
	v1 := resp.Header.Get("ETag")
	if !strings.HasPrefix(v1, `W/"`) || resp.JSON()["meta"].(map[string]any)["version"] != v1 {
		t.Fatalf("ETag %q, body %s", v1, resp.Body)
	}
	if r := c.send("GET", "/Users/"+id, nil, "If-None-Match", v1); r.Status != 304 {
		t.Fatalf("If-None-Match current = %s", r)
	}
	put := `{"userName": "ann", "displayName": "Ann L", "emails": [{"value": "ann@example.com", "primary": true}]}`
	resp = c.send("PUT", "/Users/"+id, put, "If-Match", v1)
	if resp.Status != 200 {
		t.Fatalf("PUT with current If-Match = %s", resp)
	}
	v2 := resp.Header.Get("ETag")
	if v2 == v1 || v2 == "" {
		t.Fatalf("version did not change: %q → %q", v1, v2)
	}
	c.mustErr(412, "", "PUT", "/Users/"+id, put, "If-Match", v1)
	c.mustErr(412, "", "PATCH", "/Users/"+id, `{"schemas": ["`+urnPatchOp+`"], "Operations": [{"op": "replace", "path": "active", "value": false}]}`, "If-Match", v1)
	c.mustErr(412, "", "DELETE", "/Users/"+id, nil, "If-Match", v1)
	c.must(200, "PATCH", "/Users/"+id, `{"schemas": ["`+urnPatchOp+`"], "Operations": [{"op": "replace", "path": "title", "value": "CTO"}]}`, "If-Match", v2)
	c.roster("ann@example.com")
	c.waitName("ann@example.com", "Ann L")
	// A replayed PATCH changes nothing, not even the version.
	v3 := c.send("GET", "/Users/"+id, nil).Header.Get("ETag")
	resp = c.send("PATCH", "/Users/"+id, `{"schemas": ["`+urnPatchOp+`"], "Operations": [{"op": "replace", "path": "title", "value": "CTO"}]}`)
	if resp.Status != 200 || resp.Header.Get("ETag") != v3 {
		t.Fatalf("replayed PATCH = %s, ETag %q want %q", resp, resp.Header.Get("ETag"), v3)
	}
	// Groups: a member change bumps the version; re-adding one does not.
	gid := c.group("Eng")
	g1 := c.send("GET", "/Groups/"+gid, nil).Header.Get("ETag")
	resp = c.send("PATCH", "/Groups/"+gid, `{"schemas": ["`+urnPatchOp+`"], "Operations": [{"op": "add", "path": "members", "value": [{"value": "`+id+`"}]}]}`, "If-Match", g1)
	if resp.Status != 204 && resp.Status != 200 {
		t.Fatalf("group PATCH = %s", resp)
	}
	g2 := c.send("GET", "/Groups/"+gid, nil).Header.Get("ETag")
	if g2 == g1 {
		t.Fatalf("group version unchanged after a member add")
	}
	c.patch(204, "/Groups/"+gid, `{"op": "add", "path": "members", "value": [{"value": "`+id+`"}]}`)
	if g3 := c.send("GET", "/Groups/"+gid, nil).Header.Get("ETag"); g3 != g2 {
		t.Fatalf("re-adding a member changed the version %s → %s", g2, g3)
	}
	c.mustErr(412, "", "PUT", "/Groups/"+gid, `{"displayName": "Eng", "members": []}`, "If-Match", g1)
	c.mustErr(412, "", "DELETE", "/Groups/"+gid, nil, "If-Match", g1)
	c.waitMember("ann@example.com", "Eng")
})

var _ = golden.add("SCIMPatchAtomicAndReplays", func(t *testing.T, c *idp) {
	ann := c.user("ann", "ann@example.com")
	bob := c.user("bob", "bob@example.com")
	gid := c.group("Eng", ann)
	// A good operation followed by a bad one: nothing applies.
	c.patch(400, "/Users/"+ann, `{"op": "replace", "path": "displayName", "value": "Changed"}`, `{"op": "replace", "path": "active", "value": "maybe"}`)
	if u := c.must(200, "GET", "/Users/"+ann, nil); u["displayName"] != nil {
		t.Fatalf("half-applied PATCH: %v", u)
	}
	c.patch(400, "/Groups/"+gid, `{"op": "add", "path": "members", "value": [{"value": "`+bob+`"}]}`, `{"op": "add", "path": "members", "value": [{"value": "ghost"}]}`)
	if ids := c.memberIDs(gid); len(ids) != 1 || ids[0] != ann {
		t.Fatalf("half-applied group PATCH: %v", ids)
	}
	c.patch(400, "/Groups/"+gid, `{"op": "remove", "path": "members[value eq \"`+ann+`\"]"}`, `{"op": "replace", "path": "displayName", "value": ""}`)
	if ids := c.memberIDs(gid); len(ids) != 1 || ids[0] != ann {
		t.Fatalf("half-applied group PATCH: %v", ids)
	}
	// Removing someone who is not there is harmless.
	c.patch(204, "/Groups/"+gid, `{"op": "remove", "path": "members[value eq \"`+bob+`\"]"}`)
	// A remove of members with no value and no filter empties the group.
	c.patch(204, "/Groups/"+gid, `{"op": "add", "path": "members", "value": [{"value": "`+bob+`"}]}`)
	c.waitGroups(map[string]int{"Eng": 2})
	c.patch(204, "/Groups/"+gid, `{"op": "remove", "path": "members"}`)
	c.waitGroups(map[string]int{"Eng": 0})
	if ids := c.memberIDs(gid); len(ids) != 0 {
		t.Fatalf("members after remove all = %v", ids)
	}
	// PATCH on a group may ask for the result.
	got := c.must(200, "PATCH", "/Groups/"+gid+"?attributes=members,displayName", map[string]any{"schemas": []string{urnPatchOp},
		"Operations": []any{map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": ann}}}}})
	if ids := idsOf(got["members"]); len(ids) != 1 || ids[0] != ann || got["displayName"] != "Eng" {
		t.Fatalf("PATCH ?attributes=members = %v", got)
	}
	c.waitMember("ann@example.com", "Eng")
	c.waitMember("bob@example.com")
})

var _ = golden.add("SCIMUserLifecycle", func(t *testing.T, c *idp) {
	ann := c.user("ann", "ann@example.com")
	gid := c.group("Eng", ann)
	c.setGroupLimit(gid, 2500)
	m := c.waitMember("ann@example.com", "Eng")
	if cents, src := limitOf(m); cents != 2500.0 || src["group_id"] != gid {
		t.Fatalf("limit = %v %v", cents, src)
	}
	c.patch(200, "/Users/"+ann, `{"op": "replace", "path": "active", "value": false}`)
	c.roster()
	// Still readable, still in the group over SCIM.
	if u := c.must(200, "GET", "/Users/"+ann, nil); u["active"] != false {
		t.Fatalf("inactive user = %v", u)
	}
	if ids := c.memberIDs(gid); len(ids) != 1 {
		t.Fatalf("inactive user left the SCIM group: %v", ids)
	}
	c.waitGroups(map[string]int{"Eng": 0})
	// Back, with the group and its limit.
	c.patch(200, "/Users/"+ann, `{"op": "replace", "path": "active", "value": true}`)
	m = c.waitMember("ann@example.com", "Eng")
	if cents, _ := limitOf(m); cents != 2500.0 {
		t.Fatalf("limit after reactivation = %v", cents)
	}
	// Delete: 204, then 404 everywhere, and gone from the group.
	c.must(204, "DELETE", "/Users/"+ann, nil)
	c.mustErr(404, "", "GET", "/Users/"+ann, nil)
	c.mustErr(404, "", "DELETE", "/Users/"+ann, nil)
	if ids := c.memberIDs(gid); len(ids) != 0 {
		t.Fatalf("deleted user still a member: %v", ids)
	}
	c.roster()
	c.waitGroups(map[string]int{"Eng": 0})
	// Email rules: primary, else first, else userName when an email.
	c.must(201, "POST", "/Users", `{"userName": "x1", "emails": [{"value": "Second@Example.com"}, {"value": "prim@example.com", "primary": "True"}]}`)
	c.must(201, "POST", "/Users", `{"userName": "x2", "emails": [{"value": "First@Example.com"}, {"value": "other@example.com"}]}`)
	c.must(201, "POST", "/Users", `{"userName": "Name@Example.com"}`)
	c.roster("prim@example.com", "first@example.com", "name@example.com")
})

var _ = golden.add("SCIMUnknownExtensionKept", func(t *testing.T, c *idp) {
	const ext = "urn:example:params:scim:schemas:extension:acme:2.0:User"
	body := `{
			"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "` + ext + `"],
			"userName": "ann@example.com",
			"nickName": "annie",
			"x509Certificates": [{"value": "MIIB"}],
			"` + ext + `": {"badge": "B-17", "clearance": {"level": 3, "areas": ["lab", "dock"]}, "remote": true}
		}`
	u := c.must(201, "POST", "/Users", body)
	want := `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "` + ext + `"], "nickName": "annie",
			"x509Certificates": [{"value": "MIIB"}],
			"` + ext + `": {"badge": "B-17", "clearance": {"level": 3, "areas": ["lab", "dock"]}, "remote": true}}`
	like(t, "created", u, want)
	id := u["id"].(string)
	like(t, "read back", c.must(200, "GET", "/Users/"+id, nil), want)
	c.patch(200, "/Users/"+id, `{"op": "replace", "path": "`+ext+`:badge", "value": "B-18"}`)
	got := c.must(200, "GET", "/Users/"+id, nil)
	like(t, "after PATCH", got, `{"`+ext+`": {"badge": "B-18", "clearance": {"level": 3, "areas": ["lab", "dock"]}, "remote": true}}`)
	_, res := c.list(filterPath("Users", `userName eq "ann@example.com"`))
	like(t, "listed", res[0], `{"`+ext+`": {"badge": "B-18"}}`)
	// Groups keep unknown attributes too.
	const gext = "urn:example:params:scim:schemas:extension:acme:2.0:Group"
	g := c.must(201, "POST", "/Groups", `{"schemas": ["`+urnGroup+`", "`+gext+`"], "displayName": "Lab", "`+gext+`": {"site": "Oslo"}}`)
	like(t, "group", c.must(200, "GET", "/Groups/"+g["id"].(string), nil), `{"`+gext+`": {"site": "Oslo"}}`)
	c.roster("ann@example.com")
	c.waitGroups(map[string]int{"Lab": 0})
})

var _ = golden.add("SCIMSearch", func(t *testing.T, c *idp) {
	ann := c.user("ann", "ann@example.com")
	c.user("bob", "bob@example.com")
	c.group("Eng", ann)
	m := c.must(200, "POST", "/Users/.search", `{"schemas": ["`+urnSearch+`"], "filter": "userName eq \"ann\"", "attributes": ["userName", "emails"], "startIndex": 1, "count": 10}`)
	total, res := listOf(t, m)
	if total != 1 || res[0]["id"] != ann || res[0]["name"] != nil || res[0]["emails"] == nil {
		t.Fatalf(".search = %v", m)
	}
	m = c.must(200, "POST", "/Groups/.search", `{"schemas": ["`+urnSearch+`"], "filter": "displayName eq \"Eng\"", "excludedAttributes": ["members"]}`)
	if total, res := listOf(t, m); total != 1 || res[0]["members"] != nil {
		t.Fatalf("group .search = %v", m)
	}
	m = c.must(200, "POST", "/Users/.search", `{"schemas": ["`+urnSearch+`"], "count": 0}`)
	if total, res := listOf(t, m); total != 2 || len(res) != 0 {
		t.Fatalf(".search count 0 = %v", m)
	}
	c.mustErr(400, "invalidFilter", "POST", "/Users/.search", `{"schemas": ["`+urnSearch+`"], "filter": "userName eq"}`)
	c.mustErr(405, "", "GET", "/Users/.search", nil)
	// At the base URL a search spans users and groups, paged as one list.
	c.patch(200, "/Users/"+ann, `{"op": "replace", "path": "displayName", "value": "Eng Lead"}`)
	m = c.must(200, "POST", "/.search", `{"schemas": ["`+urnSearch+`"], "filter": "displayName sw \"Eng\"", "excludedAttributes": ["members"]}`)
	total, res = listOf(t, m)
	if total != 2 || len(res) != 2 || res[0]["id"] != ann || res[1]["displayName"] != "Eng" {
		t.Fatalf("root .search = %v", m)
	}
	m = c.must(200, "POST", "/.search", `{"schemas": ["`+urnSearch+`"], "startIndex": 3, "count": 1}`)
	if total, res = listOf(t, m); total != 3 || len(res) != 1 || !hasString(res[0]["schemas"], urnGroup) {
		t.Fatalf("root .search page 3 = %v", m)
	}
	if total, res = c.list("/?filter=" + url.QueryEscape(`userName eq "bob"`)); total != 1 || len(res) != 1 {
		t.Fatalf("GET base URL with a filter = %d %v", total, res)
	}
	c.waitMember("ann@example.com", "Eng")
})

var _ = golden.add("SCIMBulk", func(t *testing.T, c *idp) {
	// The group comes first and names users created later in the request.
	req := `{"schemas": ["` + urnBulkReq + `"], "failOnErrors": 0, "Operations": [
			{"method": "POST", "path": "/Groups", "bulkId": "g1", "data": {"schemas": ["` + urnGroup + `"], "displayName": "Bulk Team",
				"members": [{"type": "User", "value": "bulkId:u1"}, {"type": "User", "value": "bulkId:u2"}]}},
			{"method": "POST", "path": "/Users", "bulkId": "u1", "data": {"schemas": ["` + urnUser + `"], "userName": "u1@example.com"}},
			{"method": "POST", "path": "/Users", "bulkId": "u2", "data": {"schemas": ["` + urnUser + `"], "userName": "u2@example.com"}},
			{"method": "POST", "path": "/Users", "bulkId": "u3", "data": {"schemas": ["` + urnUser + `"], "userName": "u3@example.com"}},
			{"method": "PATCH", "path": "/Groups/bulkId:g1", "data": {"schemas": ["` + urnPatchOp + `"],
				"Operations": [{"op": "add", "path": "members", "value": [{"value": "bulkId:u3"}]}]}}
		]}`
	m := c.must(200, "POST", "/Bulk", req)
	like(t, "bulk response", m, `{"schemas": ["`+urnBulkResp+`"], "Operations": [
			{"method": "POST", "bulkId": "g1", "status": "201", "location": "*", "version": "*"},
			{"method": "POST", "bulkId": "u1", "status": "201", "location": "*", "version": "*"},
			{"method": "POST", "bulkId": "u2", "status": "201", "location": "*", "version": "*"},
			{"method": "POST", "bulkId": "u3", "status": "201", "location": "*", "version": "*"},
			{"method": "PATCH", "status": "*", "location": "*"}
		]}`)
	var gid string
	for _, op := range m["Operations"].([]any) {
		o := op.(map[string]any)
		if o["bulkId"] == "g1" {
			loc := o["location"].(string)
			gid = loc[strings.LastIndex(loc, "/")+1:]
		}
		if o["method"] == "PATCH" && o["status"] != "200" && o["status"] != "204" {
			t.Fatalf("bulk PATCH = %v", o)
		}
	}
	if ids := c.memberIDs(gid); len(ids) != 3 {
		t.Fatalf("bulk group members = %v", ids)
	}
	c.setGroupLimit(gid, nil)
	c.roster("u1@example.com", "u2@example.com", "u3@example.com")
	c.waitGroups(map[string]int{"Bulk Team": 3})
	c.waitMember("u3@example.com", "Bulk Team")
	// failOnErrors: 1 stops at the first error; later operations do not run.
	m = c.must(200, "POST", "/Bulk", `{"schemas": ["`+urnBulkReq+`"], "failOnErrors": 1, "Operations": [
			{"method": "POST", "path": "/Users", "bulkId": "a", "data": {"userName": "u1@example.com"}},
			{"method": "POST", "path": "/Users", "bulkId": "b", "data": {"userName": "u9@example.com"}}
		]}`)
	ops := m["Operations"].([]any)
	if len(ops) != 1 {
		t.Fatalf("failOnErrors 1: %v", m)
	}
	like(t, "failed op", ops[0], `{"method": "POST", "bulkId": "a", "status": "409", "response": {"schemas": ["`+urnError+`"], "status": "409", "scimType": "uniqueness"}}`)
	if total, _ := c.list(filterPath("Users", `userName eq "u9@example.com"`)); total != 0 {
		t.Fatalf("an operation after failOnErrors ran")
	}
	// Without failOnErrors every operation runs; errors are per operation.
	m = c.must(200, "POST", "/Bulk", `{"schemas": ["`+urnBulkReq+`"], "Operations": [
			{"method": "POST", "path": "/Users", "bulkId": "a", "data": {"userName": "u1@example.com"}},
			{"method": "DELETE", "path": "/Users/`+c.idOf("u2@example.com")+`"},
			{"method": "POST", "path": "/Groups", "bulkId": "x", "data": {"displayName": "Loop", "members": [{"value": "bulkId:y"}]}},
			{"method": "POST", "path": "/Groups", "bulkId": "y", "data": {"displayName": "Pool", "members": [{"value": "bulkId:x"}]}}
		]}`)
	like(t, "mixed bulk", m, `{"Operations": [{"bulkId": "a", "status": "409"}, {"method": "DELETE", "status": "204"},
			{"bulkId": "x", "status": "*"}, {"bulkId": "y", "status": "*"}]}`)
	for _, op := range m["Operations"].([]any)[2:] {
		if st := op.(map[string]any)["status"].(string); st < "400" {
			t.Fatalf("circular bulkId references succeeded: %v", op)
		}
	}
	c.roster("u1@example.com", "u3@example.com")
	c.waitGroups(map[string]int{"Bulk Team": 2})
})

func (c *idp) idOf(userName string) string {
	c.t.Helper()
	_, res := c.list(filterPath("Users", fmt.Sprintf("userName eq %q", userName)))
	if len(res) != 1 {
		c.t.Fatalf("user %s: %d found", userName, len(res))
	}
	return res[0]["id"].(string)
}

func TestSCIMBulkLimits(t *testing.T) {
	alone(t, func(t *testing.T, c *idp) {
		spc := c.must(200, "GET", "/ServiceProviderConfig", nil)
		like(t, "limits", spc, `{"bulk": {"supported": true, "maxOperations": 5, "maxPayloadSize": 4096}}`)
		var ops []string
		for i := range 6 {
			ops = append(ops, fmt.Sprintf(`{"method": "POST", "path": "/Users", "bulkId": "b%d", "data": {"userName": "b%d@example.com"}}`, i, i))
		}
		c.mustErr(413, "", "POST", "/Bulk", `{"schemas": ["`+urnBulkReq+`"], "Operations": [`+strings.Join(ops, ",")+`]}`)
		big := `{"schemas": ["` + urnBulkReq + `"], "Operations": [{"method": "POST", "path": "/Users", "bulkId": "x", "data": {"userName": "big@example.com", "title": "` + strings.Repeat("x", 5000) + `"}}]}`
		c.mustErr(413, "", "POST", "/Bulk", big)
		c.must(200, "POST", "/Bulk", `{"schemas": ["`+urnBulkReq+`"], "Operations": [`+strings.Join(ops[:5], ",")+`]}`)
		c.roster("b0@example.com", "b1@example.com", "b2@example.com", "b3@example.com", "b4@example.com")
	}, func(cfg *config.Config) {
		cfg.SCIM.BulkMaxOperations = 5
		cfg.SCIM.MaxBodyBytes = 4096
	})
}

var _ = golden.add("SCIMConcurrentMemberAdds", func(t *testing.T, c *idp) {
	const n = 50
	ids := make([]string, n)
	emails := make([]string, n)
	var ops []string
	for i := range n {
		emails[i] = fmt.Sprintf("c%02d@example.com", i)
		ops = append(ops, fmt.Sprintf(`{"method": "POST", "path": "/Users", "bulkId": "c%d", "data": {"userName": %q}}`, i, emails[i]))
	}
	m := c.must(200, "POST", "/Bulk", `{"schemas": ["`+urnBulkReq+`"], "Operations": [`+strings.Join(ops, ",")+`]}`)
	for i, op := range m["Operations"].([]any) {
		loc := op.(map[string]any)["location"].(string)
		ids[i] = loc[strings.LastIndex(loc, "/")+1:]
	}
	gid := c.group("Busy")
	var wg sync.WaitGroup
	statuses := make([]int, n)
	etags := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := `{"schemas": ["` + urnPatchOp + `"], "Operations": [{"op": "add", "path": "members", "value": [{"value": "` + ids[i] + `"}]}]}`
			resp := c.r.Do("PATCH", c.d.BaseURL+"/Groups/"+gid, c.d.Token, body)
			statuses[i], etags[i] = resp.Status, resp.Header.Get("ETag")
		}()
	}
	wg.Wait()
	for i, st := range statuses {
		if st != 204 {
			t.Fatalf("concurrent PATCH %d = %d", i, st)
		}
	}
	// Each add bumped the version once, and each answer named the version
	// its own change made: versions 2 to n+1, each once.
	seen := map[string]bool{}
	for i, et := range etags {
		if seen[et] {
			t.Fatalf("two concurrent PATCHes answered ETag %s (PATCH %d)", et, i)
		}
		seen[et] = true
	}
	for v := 2; v <= n+1; v++ {
		if !seen[fmt.Sprintf(`W/"%d"`, v)] {
			t.Fatalf("no PATCH answered version %d; answers %v", v, etags)
		}
	}
	if et := c.send("GET", "/Groups/"+gid, nil).Header.Get("ETag"); et != fmt.Sprintf(`W/"%d"`, n+1) {
		t.Fatalf("group version after %d adds = %s", n, et)
	}
	if got := c.memberIDs(gid); len(got) != n {
		t.Fatalf("group has %d members after %d concurrent adds", len(got), n)
	}
	c.roster(emails...)
	c.waitGroups(map[string]int{"Busy": n})
	// And 25 concurrent removes, mixed with 25 re-adds of present members.
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			op := `{"op": "remove", "path": "members[value eq \"` + ids[i] + `\"]"}`
			if i%2 == 1 {
				op = `{"op": "add", "path": "members", "value": [{"value": "` + ids[i] + `"}]}`
			}
			statuses[i] = c.r.Do("PATCH", c.d.BaseURL+"/Groups/"+gid, c.d.Token, `{"schemas": ["`+urnPatchOp+`"], "Operations": [`+op+`]}`).Status
		}()
	}
	wg.Wait()
	for i, st := range statuses {
		if st != 204 {
			t.Fatalf("concurrent PATCH %d = %d", i, st)
		}
	}
	c.waitGroups(map[string]int{"Busy": n / 2})
	// Retried creates racing each other: one wins, the rest are 409s.
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = c.r.Do("POST", c.d.BaseURL+"/Users", c.d.Token, `{"userName": "Race@Example.com"}`).Status
		}()
	}
	wg.Wait()
	won := 0
	for _, st := range statuses[:10] {
		switch st {
		case 201:
			won++
		case 409:
		default:
			t.Fatalf("racing create = %d", st)
		}
	}
	if won != 1 {
		t.Fatalf("%d racing creates won", won)
	}
	c.roster(append(emails, "race@example.com")...)
})

var _ = golden.add("SCIMUserPatchSemantics", func(t *testing.T, c *idp) {
	id := c.must(201, "POST", "/Users", `{"userName": "ann", "name": {"givenName": "Ann", "familyName": "Lee"}, "displayName": "Ann Lee",
			"emails": [{"value": "ann@example.com", "type": "work", "primary": true}, {"value": "ann@home.example", "type": "home"}],
			"phoneNumbers": [{"value": "1", "type": "work"}]}`)["id"].(string)
	p := "/Users/" + id
	// Replace of a complex attribute keeps the sub-attributes not given (RFC 7644 §3.5.2.3).
	c.patch(200, p, `{"op": "replace", "path": "name", "value": {"givenName": "Anna"}}`)
	like(t, "replace name", c.must(200, "GET", p, nil), `{"name": {"givenName": "Anna", "familyName": "Lee"}}`)
	// Add to a multi-valued attribute appends; replace of it swaps the set.
	c.patch(200, p, `{"op": "add", "path": "phoneNumbers", "value": [{"value": "2", "type": "mobile"}]}`)
	like(t, "add phone", c.must(200, "GET", p, nil), `{"phoneNumbers": [{"value": "1", "type": "work"}, {"value": "2", "type": "mobile"}]}`)
	c.patch(200, p, `{"op": "replace", "path": "phoneNumbers", "value": [{"value": "3", "type": "work"}]}`)
	like(t, "replace phones", c.must(200, "GET", p, nil), `{"phoneNumbers": [{"value": "3", "type": "work"}]}`)
	// Filtered remove and filtered sub-attribute replace.
	c.patch(200, p, `{"op": "remove", "path": "emails[type eq \"home\"]"}`)
	c.patch(200, p, `{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "anna@example.com"}`)
	like(t, "emails", c.must(200, "GET", p, nil), `{"emails": [{"value": "anna@example.com", "type": "work", "primary": true}]}`)
	c.roster("anna@example.com")
	// Primary moves to a new address: the roster follows the primary.
	c.patch(200, p, `{"op": "add", "path": "emails", "value": [{"value": "a.lee@example.com", "type": "other", "primary": true}]}`)
	got := c.must(200, "GET", p, nil)
	primaries := 0
	for _, e := range got["emails"].([]any) {
		if e.(map[string]any)["primary"] == true {
			primaries++
		}
	}
	if primaries != 1 {
		t.Fatalf("%d primary emails after adding a new primary (RFC 7643 §2.4: at most one): %v", primaries, got["emails"])
	}
	c.roster("a.lee@example.com")
	// Remove a simple attribute; remove of an absent one is harmless.
	c.patch(200, p, `{"op": "remove", "path": "displayName"}`, `{"op": "remove", "path": "title"}`)
	if got := c.must(200, "GET", p, nil); got["displayName"] != nil {
		t.Fatalf("displayName after remove = %v", got["displayName"])
	}
	c.waitName("a.lee@example.com", "Anna Lee")
	// Attribute names and op names are case-insensitive.
	c.patch(200, p, `{"OP": "Replace", "Path": "NAME.GIVENNAME", "Value": "Annie"}`)
	like(t, "case-insensitive", c.must(200, "GET", p, nil), `{"name": {"givenName": "Annie", "familyName": "Lee"}}`)
	// Errors: bad path, read-only attribute, required attribute removed.
	c.patch(400, p, `{"op": "replace", "path": "emails[type eq", "value": "x"}`)
	c.patch(400, p, `{"op": "replace", "path": "id", "value": "other"}`)
	c.patch(400, p, `{"op": "remove", "path": "userName"}`)
	c.patch(400, p, `{"op": "add", "value": "not an object"}`)
	if got := c.must(200, "GET", p, nil); got["userName"] != "ann" || got["id"] != id {
		t.Fatalf("after refused PATCHes = %v", got)
	}
})

var _ = golden.add("SCIMNestedGroups", func(t *testing.T, c *idp) {
	ann := c.user("ann", "ann@example.com")
	bob := c.user("bob", "bob@example.com")
	inner := c.group("Platform", ann)
	outer := c.group("Engineering", bob)
	c.patch(204, "/Groups/"+outer, `{"op": "add", "path": "members", "value": [{"value": "`+inner+`", "type": "Group"}]}`)
	if got := c.must(200, "GET", "/Groups/"+outer, nil); !hasMember(got, inner, "Group") {
		t.Fatalf("nested member = %v", got["members"])
	}
	c.waitGroups(map[string]int{"Platform": 1, "Engineering": 2})
	c.waitMember("ann@example.com", "Platform", "Engineering")
	c.setGroupLimit(outer, 20000)
	c.setGroupLimit(inner, 500)
	m := c.waitMember("ann@example.com", "Platform", "Engineering")
	if cents, src := limitOf(m); cents != 20000.0 || src["group_id"] != outer {
		t.Fatalf("highest of the groups = %v %v", cents, src)
	}
	// A cycle is stored as sent and does not hang the roster.
	c.patch(204, "/Groups/"+inner, `{"op": "add", "path": "members", "value": [{"value": "`+outer+`"}]}`)
	c.waitMember("bob@example.com", "Platform", "Engineering")
	c.patch(204, "/Groups/"+inner, `{"op": "remove", "path": "members[value eq \"`+outer+`\"]"}`)
	c.waitMember("bob@example.com", "Engineering")
	// Deleting the inner group takes ann out of both.
	c.must(204, "DELETE", "/Groups/"+inner, nil)
	if got := c.memberIDs(outer); !equal(got, []string{bob}) {
		t.Fatalf("outer after inner deleted = %v", got)
	}
	m = c.waitMember("ann@example.com")
	if cents, src := limitOf(m); cents != 10000.0 || src["type"] != "team_default" {
		t.Fatalf("ann's limit = %v %v", cents, src)
	}
	c.waitGroups(map[string]int{"Engineering": 1})
})

// The read-only groups attribute of a user (RFC 7643 §4.1.2): direct
// groups, then the groups that hold those, each with its display name.
var _ = golden.add("SCIMUserGroupsAttribute", func(t *testing.T, c *idp) {
	ann := c.user("ann", "ann@example.com")
	cat := c.user("cat", "cat@example.com")
	inner := c.group("Platform", ann)
	outer := c.group("Engineering")
	c.patch(204, "/Groups/"+outer, `{"op": "add", "path": "members", "value": [{"value": "`+inner+`", "type": "Group"}]}`)
	// A cycle back to inner lists each group once.
	c.patch(204, "/Groups/"+inner, `{"op": "add", "path": "members", "value": [{"value": "`+outer+`", "type": "Group"}]}`)
	base := c.d.BaseURL
	like(t, "ann's groups", c.must(200, "GET", "/Users/"+ann, nil), `{"groups": [
		{"value": "`+inner+`", "display": "Platform", "type": "direct", "$ref": "`+base+`/Groups/`+inner+`"},
		{"value": "`+outer+`", "display": "Engineering", "type": "indirect", "$ref": "`+base+`/Groups/`+outer+`"}]}`)
	if groups := c.must(200, "GET", "/Users/"+ann, nil)["groups"].([]any); len(groups) != 2 {
		t.Fatalf("groups listed more than once: %v", groups)
	}
	absent(t, "a user in no group", c.must(200, "GET", "/Users/"+cat, nil), "groups")
	absent(t, "excludedAttributes=groups", c.must(200, "GET", "/Users/"+ann+"?excludedAttributes=groups", nil), "groups")
	// Lists carry them too, and a filter on them sees nested groups.
	_, page := c.list(filterPath("Users", `groups.value eq "`+outer+`"`, "attributes", "userName,groups"))
	if len(page) != 1 || page[0]["id"] != ann || len(page[0]["groups"].([]any)) != 2 {
		t.Fatalf("users in Engineering = %v", page)
	}
	if n, _ := c.list(filterPath("Users", `groups[display eq "platform" and type eq "direct"]`)); n != 1 {
		t.Fatalf("users directly in Platform: %d", n)
	}
	if n, _ := c.list(filterPath("Users", `not (groups pr)`)); n != 1 {
		t.Fatalf("users in no group: %d", n)
	}
	// Writes answer with them; a client cannot set them.
	put := c.must(200, "PUT", "/Users/"+ann, `{"schemas": ["`+urnUser+`"], "userName": "ann", "active": true,
		"groups": [{"value": "`+cat+`"}], "emails": [{"value": "ann@example.com", "primary": true}]}`)
	if len(put["groups"].([]any)) != 2 {
		t.Fatalf("PUT answer's groups = %v", put["groups"])
	}
	c.patch(204, "/Groups/"+inner, `{"op": "remove", "path": "members[value eq \"`+ann+`\"]"}`)
	absent(t, "ann after leaving Platform", c.must(200, "GET", "/Users/"+ann, nil), "groups")
})

func hasMember(g map[string]any, id, typ string) bool {
	list, _ := g["members"].([]any)
	for _, m := range list {
		mm := m.(map[string]any)
		if mm["value"] == id && mm["type"] == typ {
			return true
		}
	}
	return false
}

var _ = golden.add("SCIMFilterEdgeCases", func(t *testing.T, c *idp) {
	ae := c.user("Ärger@Example.com", "arger@example.com")
	q := c.user(`o'brien "the" \ one`, "ob@example.com")
	c.roster("arger@example.com", "ob@example.com")
	for f, want := range map[string]string{
		`userName eq "ärger@example.com"`:                   ae,
		`userName eq "ÄRGER@EXAMPLE.COM"`:                   ae,
		`userName eq "o'brien \"the\" \\ one"`:              q,
		`emails[primary eq true].value eq "ob@example.com"`: q,
		`emails[type eq "work" and primary eq true]`:        "",
	} {
		_, res := c.list(filterPath("Users", f))
		switch {
		case want == "" && len(res) != 2:
			t.Errorf("%s = %d, want both", f, len(res))
		case want != "" && (len(res) != 1 || res[0]["id"] != want):
			t.Errorf("%s = %v, want %s", f, res, want)
		}
	}
})

func TestSCIMRateLimitAndRequestLog(t *testing.T) {
	alone(t, func(t *testing.T, c *idp) {
		c.must(201, "POST", "/Users", `{"userName": "ann@example.com", "password": "hunter2-secret", "active": true}`)
		// 30 requests at once against a limit of 5/s with a burst of 5.
		var mu sync.Mutex
		var wg sync.WaitGroup
		var limited *Response
		for range 30 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp := c.r.Do("GET", c.d.BaseURL+"/Users?filter="+url.QueryEscape(`userName eq "x"`), c.d.Token, nil)
				if resp.Status == 429 {
					mu.Lock()
					limited = resp
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if limited == nil {
			t.Fatalf("no 429 after 30 requests at once at a limit of 5/s")
		}
		checkSCIMError(t, limited, 429)
		if limited.Header.Get("Retry-After") == "" {
			t.Fatalf("429 without Retry-After")
		}
		c.roster("ann@example.com")
		// The request log shows what happened, without the password.
		var reqs []any
		Eventually(t, 5*time.Second, "request log", func() (bool, string) {
			reqs = c.r.MustAdmin(200, "GET", "/teams/"+c.d.TeamID+"/directories/"+c.d.ID+"/requests", nil)["requests"].([]any)
			post, too := false, false
			for _, r := range reqs {
				post = post || r.(map[string]any)["method"] == "POST"
				too = too || r.(map[string]any)["status"] == 429.0
			}
			return post && too, fmt.Sprint(reqs)
		})
		var create map[string]any
		saw429 := false
		for _, r := range reqs {
			rm := r.(map[string]any)
			if rm["method"] == "POST" {
				create = rm
			}
			saw429 = saw429 || rm["status"] == 429.0
		}
		if create == nil || create["status"] != 201.0 || !saw429 {
			t.Fatalf("request log = %v", reqs)
		}
		if s := fmt.Sprint(create["body"]); strings.Contains(s, "hunter2") || !strings.Contains(s, "ann@example.com") {
			t.Fatalf("logged body = %s", s)
		}
	}, func(cfg *config.Config) {
		cfg.SCIM.RateLimit = 5
		cfg.SCIM.Burst = 5
	})
}

// What a write answers in meta is what later reads return: clients keep
// meta.lastModified and meta.created from the write's answer and compare.
var _ = golden.add("SCIMMetaTimesStable", func(t *testing.T, c *idp) {
	meta := func(m map[string]any) (string, string) {
		mt, _ := m["meta"].(map[string]any)
		created, _ := mt["created"].(string)
		modified, _ := mt["lastModified"].(string)
		if created == "" || modified == "" {
			t.Fatalf("meta without created/lastModified: %v", m)
		}
		return created, modified
	}
	same := func(what string, wrote, read map[string]any) {
		t.Helper()
		wc, wm := meta(wrote)
		rc, rm := meta(read)
		if wc != rc || wm != rm {
			t.Errorf("%s: the write answered created %s lastModified %s, a read returns %s and %s", what, wc, wm, rc, rm)
		}
	}
	u := c.must(201, "POST", "/Users", map[string]any{"schemas": []string{urnUser}, "userName": "tim", "emails": []any{map[string]any{"value": "tim@example.com", "primary": true}}})
	id := u["id"].(string)
	same("user create", u, c.must(200, "GET", "/Users/"+id, nil))
	p := c.patch(200, "/Users/"+id, `{"op": "replace", "path": "title", "value": "Lead"}`)
	same("user PATCH", p, c.must(200, "GET", "/Users/"+id, nil))
	g := c.must(201, "POST", "/Groups", map[string]any{"schemas": []string{urnGroup}, "displayName": "Ops"})
	gid := g["id"].(string)
	same("group create", g, c.must(200, "GET", "/Groups/"+gid, nil))
	// A member-only PATCH asked to return the group goes through the
	// version bump alone, without rewriting the group.
	pg := c.must(200, "PATCH", "/Groups/"+gid+"?attributes=meta,displayName", map[string]any{"schemas": []string{urnPatchOp},
		"Operations": []any{map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": id}}}}})
	same("group member PATCH", pg, c.must(200, "GET", "/Groups/"+gid, nil))
})
