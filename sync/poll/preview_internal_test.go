package poll

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/roster-dev/roster/connectors"
	"github.com/roster-dev/roster/store"
)

func TestPreviewOf(t *testing.T) {
	cur := &mirrorState{
		users: map[string]store.MirrorUserLite{
			"stays":    {ID: "stays", Email: "stays@x", DisplayName: "Stays", Active: true},
			"renamed":  {ID: "renamed", Email: "renamed@x", DisplayName: "Old Name", Active: true},
			"leaves":   {ID: "leaves", Email: "leaves@x", DisplayName: "Leaves", Active: true},
			"disabled": {ID: "disabled", Email: "disabled@x", DisplayName: "Disabled", Active: true},
			"returns":  {ID: "returns", Email: "returns@x", DisplayName: "Returns", Active: false},
		},
		groups:  map[string]string{"g1": "Eng", "gone": "Old"},
		members: map[string]map[string]string{"g1": {"stays": "user"}, "gone": {}},
	}
	cur.activeCount = 4
	snap := &connectors.Snapshot{
		Users: []connectors.User{
			{ExternalID: "stays", Email: "stays@x", DisplayName: "Stays", Active: true},
			{ExternalID: "renamed", Email: "renamed@x", DisplayName: "New Name", Active: true},
			{ExternalID: "disabled", Email: "disabled@x", DisplayName: "Disabled", Active: false},
			{ExternalID: "returns", Email: "returns@x", DisplayName: "Returns", Active: true},
			{ExternalID: "new", Email: "new@x", GivenName: "New", FamilyName: "Person", Active: true},
			{ExternalID: "new-inactive", Email: "ni@x", Active: false},
		},
		Groups:  []connectors.Group{{ExternalID: "g1", Name: "Eng", Members: []string{"stays", "new"}}, {ExternalID: "g2", Name: "Sales"}},
		Skipped: []connectors.Skipped{{ID: "cn=x", Reason: "no email"}},
	}
	pl := planPoll("d", cur, listing{snap: snap})
	got := previewOf(cur, pl, true)
	want := &Preview{
		WouldAdd: 2, WouldRemove: 2, WouldUpdate: 1, Held: true, Skipped: 1, Listing: "full",
		Groups: PreviewGroups{Created: 1, Deleted: 1, MembersChanged: 1},
		Sample: PreviewSample{
			Add:     []PreviewPerson{{ExternalID: "new", Email: "new@x", Name: "New Person"}, {ExternalID: "returns", Email: "returns@x", Name: "Returns"}},
			Remove:  []PreviewPerson{{ExternalID: "disabled", Email: "disabled@x", Name: "Disabled"}, {ExternalID: "leaves", Email: "leaves@x", Name: "Leaves"}},
			Update:  []PreviewPerson{{ExternalID: "renamed", Email: "renamed@x", Name: "New Name"}},
			Skipped: []connectors.Skipped{{ID: "cn=x", Reason: "no email"}},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("preview (-want +got):\n%s", diff)
	}
}
