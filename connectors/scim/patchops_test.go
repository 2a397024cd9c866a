package scim

import (
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/roster-dev/roster/store"
)

func TestReadGroupPatch(t *testing.T) {
	const addU1 = `{"Operations":[{"op":"add","path":"members","value":[{"value":"u1"}]}]}`
	for _, c := range []struct {
		name, body, ifMatch string
		q                   url.Values
		lock, answer, reads bool
	}{
		{name: "plain add, 204", body: addU1},
		{name: "plain remove by filter, 204", body: `{"Operations":[{"op":"remove","path":"members[value eq \"u1\" or value eq \"u2\"]"}]}`},
		{name: "plain add answered with attributes", body: addU1, q: url.Values{"attributes": {"id"}}, answer: true, reads: true},
		{name: "If-Match", body: addU1, ifMatch: `W/"3"`, lock: true, reads: true},
		{name: "attribute", body: `{"Operations":[{"op":"replace","path":"displayName","value":"x"}]}`, lock: true, reads: true},
		{name: "member replace", body: `{"Operations":[{"op":"replace","path":"members","value":[]}]}`, lock: true, reads: true},
		{name: "member filter that is not by value", body: `{"Operations":[{"op":"remove","path":"members[type eq \"Group\"]"}]}`, lock: true, reads: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, serr := readGroupPatch([]byte(c.body), c.ifMatch, c.q)
			if serr != nil {
				t.Fatalf("readGroupPatch: %v", serr)
			}
			if req.lock != c.lock || req.answer != c.answer || req.readsGroup() != c.reads {
				t.Errorf("lock, answer, readsGroup = %v, %v, %v; want %v, %v, %v", req.lock, req.answer, req.readsGroup(), c.lock, c.answer, c.reads)
			}
		})
	}
	for _, c := range []struct{ name, body, scimType string }{
		{"not JSON", `{`, "invalidSyntax"},
		{"no operations", `{"Operations":[]}`, "invalidValue"},
		{"unknown op", `{"Operations":[{"op":"move","path":"members"}]}`, "invalidValue"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, serr := readGroupPatch([]byte(c.body), "", nil)
			if serr == nil || serr.Status != 400 || serr.ScimType != c.scimType {
				t.Fatalf("readGroupPatch(%s) = %v; want 400 %s", c.body, serr, c.scimType)
			}
		})
	}
}

func TestPlanGroupPatch(t *testing.T) {
	created := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	eng := &store.Group{DirectoryID: "d", ID: "g", DisplayName: "Eng", ExternalID: "x1",
		Resource: []byte(`{"displayName":"Eng","externalId":"x1"}`), Version: 4, CreatedAt: created}
	members := []store.Member{{ID: "u1", Type: store.MemberUser}, {ID: "u2", Type: store.MemberUser}, {ID: "g2", Type: store.MemberGroup}}
	for _, c := range []struct {
		name, body string
		want       groupPlan
	}{
		{
			name: "plain deltas: members only, no group",
			body: `{"Operations":[{"op":"add","path":"members","value":[{"value":"u1"},{"value":"u2"}]},{"op":"remove","path":"members[value eq \"u3\"]"}]}`,
			want: groupPlan{add: []string{"u1", "u2"}, remove: []string{"u3"}},
		},
		{
			name: "rename: the new attributes, version and creation time left to the store",
			body: `{"Operations":[{"op":"replace","path":"displayName","value":"Platform"}]}`,
			want: groupPlan{group: &store.Group{DirectoryID: "d", ID: "g", DisplayName: "Platform", ExternalID: "x1",
				Resource: []byte(`{"displayName":"Platform","externalId":"x1"}`)}},
		},
		{
			name: "a rename to the current name writes no group",
			body: `{"Operations":[{"op":"replace","path":"displayName","value":"Eng"}]}`,
			want: groupPlan{},
		},
		{
			name: "Okta's pathless replace: members replaced, id accepted, group renamed",
			body: `{"Operations":[{"op":"replace","value":{"id":"g","displayName":"Eng2","members":[{"value":"u9"}]}}]}`,
			want: groupPlan{replace: true, members: []string{"u9"}, group: &store.Group{DirectoryID: "d", ID: "g", DisplayName: "Eng2", ExternalID: "x1",
				Resource: []byte(`{"displayName":"Eng2","externalId":"x1"}`)}},
		},
		{
			name: "a member filter that is not by value is applied to the loaded members",
			body: `{"Operations":[{"op":"remove","path":"members[type eq \"Group\"]"}]}`,
			want: groupPlan{replace: true, members: []string{"u1", "u2"}},
		},
		{
			name: "removing every member through a filter leaves none",
			body: `{"Operations":[{"op":"remove","path":"members[value ne \"\"]"}]}`,
			want: groupPlan{replace: true},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, serr := readGroupPatch([]byte(c.body), "", nil)
			if serr != nil {
				t.Fatalf("readGroupPatch: %v", serr)
			}
			cur, loaded := (*store.Group)(nil), []store.Member(nil)
			if req.readsGroup() {
				g := *eng
				cur = &g
			}
			if req.split.NeedsMembers {
				loaded = members
			}
			got, serr := planGroupPatch("d", "g", cur, loaded, req)
			if serr != nil {
				t.Fatalf("planGroupPatch: %v", serr)
			}
			if d := cmp.Diff(c.want, got, cmp.AllowUnexported(groupPlan{}), cmpopts.EquateEmpty()); d != "" {
				t.Errorf("plan (-want +got):\n%s", d)
			}
		})
	}
	for _, c := range []struct{ name, body, scimType string }{
		{"displayName removed", `{"Operations":[{"op":"remove","path":"displayName"}]}`, "mutability"},
		{"displayName emptied", `{"Operations":[{"op":"replace","path":"displayName","value":"  "}]}`, "invalidValue"},
		{"another group's id", `{"Operations":[{"op":"replace","value":{"id":"other","displayName":"Eng"}}]}`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, serr := readGroupPatch([]byte(c.body), "", nil)
			if serr != nil {
				t.Fatalf("readGroupPatch: %v", serr)
			}
			g := *eng
			_, serr = planGroupPatch("d", "g", &g, nil, req)
			if serr == nil || serr.Status != 400 || (c.scimType != "" && serr.ScimType != c.scimType) {
				t.Fatalf("planGroupPatch(%s) = %v; want a 400 %s", c.body, serr, c.scimType)
			}
		})
	}
}
