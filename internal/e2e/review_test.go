package e2e

import (
	"net/url"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// LimitReviewAndSearch: the member and group queries the admin page uses
// (search, group with nesting, limit source, the group that decides) and
// the review of members in several groups with a limit, where the higher
// limit wins and unlimited beats any number, also through nesting.
var _ = golden.add("LimitReviewAndSearch", func(t *testing.T, c *idp) {
	team := "/teams/" + c.d.TeamID
	u := map[string]string{}
	for _, n := range []string{"ann", "bob", "cat", "dan", "eve"} {
		u[n] = c.user(n+"@review.example", n+"@review.example")
	}
	g := map[string]string{}
	g["Eng"] = c.group("Eng", u["ann"], u["bob"])
	g["Sales"] = c.group("Sales", u["bob"], u["cat"], u["eve"])
	g["Leads"] = c.group("Leads", u["cat"])
	g["Exec"] = c.group("Exec", g["Leads"]) // cat is in Exec through Leads
	g["Contractors"] = c.group("Contractors", u["eve"])
	c.roster("ann@review.example", "bob@review.example", "cat@review.example", "dan@review.example", "eve@review.example")
	c.waitMember("cat@review.example", "Exec", "Leads", "Sales")
	c.setGroupLimit(g["Eng"], 20000)
	c.setGroupLimit(g["Sales"], 10000)
	c.setGroupLimit(g["Contractors"], 5000)
	c.r.MustAdmin(200, "PUT", team+"/groups/"+g["Exec"]+"/spend-limit", map[string]any{"unlimited": true})

	emails := func(path string) []string {
		t.Helper()
		out := []string{}
		cursor := ""
		for {
			sep := "&"
			if cursor == "" {
				sep = ""
			}
			page := c.r.MustAdmin(200, "GET", path+sep+cursorArg(cursor), nil)
			for _, m := range page["members"].([]any) {
				out = append(out, m.(map[string]any)["email"].(string)[:3])
			}
			if cursor, _ = page["next_cursor"].(string); cursor == "" {
				sort.Strings(out)
				return out
			}
		}
	}
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"q=BOB%40", []string{"bob"}},
		{"q=test", []string{"ann", "bob", "cat", "dan", "eve"}}, // the family name
		{"q=" + url.QueryEscape("%"), []string{}},               // a wildcard is a plain character
		{"q=_", []string{}},
		{"group=" + g["Exec"], []string{"cat"}},
		{"group=" + g["Sales"], []string{"bob", "cat", "eve"}},
		{"source=team_default", []string{"dan"}},
		{"source=group&limit=1", []string{"ann", "bob", "cat", "eve"}},
		{"source_group=" + g["Eng"], []string{"ann", "bob"}},
		{"source_group=" + g["Sales"], []string{"eve"}}, // bob is in Sales, but Eng's higher limit decides
		{"source_group=" + g["Exec"], []string{"cat"}},  // unlimited beats Sales' number, through nesting
		{"source_group=" + g["Contractors"], []string{}},
		{"source_group=" + g["Sales"] + "&q=bob", []string{}},
		{"group=" + g["Sales"] + "&source_group=" + g["Eng"] + "&q=review", []string{"bob"}},
	} {
		if diff := cmp.Diff(c.want, emails(team+"/members?limit=2&"+c.query)); diff != "" {
			t.Errorf("members?%s (-want +got):\n%s", c.query, diff)
		}
	}
	if resp := c.r.Admin("GET", team+"/members?source=groups", nil); resp.Status != 400 {
		t.Errorf("bad source = %s, want 400", resp)
	}

	groups := func(q string) []string {
		t.Helper()
		out := []string{}
		for _, x := range c.r.MustAdmin(200, "GET", team+"/groups?q="+q, nil)["groups"].([]any) {
			out = append(out, x.(map[string]any)["name"].(string))
		}
		sort.Strings(out)
		return out
	}
	if diff := cmp.Diff([]string{"Exec"}, groups("EXE")); diff != "" {
		t.Errorf("groups?q=EXE (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Contractors", "Leads", "Sales"}, groups("s")); diff != "" {
		t.Errorf("groups?q=s (-want +got):\n%s", diff)
	}

	// The review: every group with a limit and how many it decides...
	rev := c.r.MustAdmin(200, "GET", team+"/limits/review", nil)
	type row struct {
		Name             string
		Cents            any
		Members, Decides float64
	}
	var got []row
	for _, x := range rev["groups"].([]any) {
		m := x.(map[string]any)
		got = append(got, row{m["name"].(string), m["per_user_cents"], m["member_count"].(float64), m["decides"].(float64)})
	}
	want := []row{{"Contractors", 5000.0, 1, 0}, {"Eng", 20000.0, 2, 2}, {"Exec", nil, 1, 1}, {"Sales", 10000.0, 3, 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("review groups (-want +got):\n%s", diff)
	}
	// ...and, paged, the members in two or more of them, with the group
	// that decides and every group's limit.
	decided := map[string]string{}
	cursor := ""
	for pages := 0; ; pages++ {
		page := c.r.MustAdmin(200, "GET", team+"/limits/review?limit=2&"+cursorArg(cursor), nil)
		for _, x := range page["members"].([]any) {
			m := x.(map[string]any)
			_, src := limitOf(m)
			decided[m["email"].(string)[:3]] = src["group_name"].(string)
			if m["email"] == "cat@review.example" {
				limits := map[string]any{}
				for _, gx := range m["groups"].([]any) {
					gm := gx.(map[string]any)
					if v, ok := gm["per_user_cents"]; ok {
						limits[gm["name"].(string)] = v
					}
				}
				if diff := cmp.Diff(map[string]any{"Exec": nil, "Sales": 10000.0}, limits); diff != "" {
					t.Errorf("cat's group limits (-want +got):\n%s", diff)
				}
				if cents, _ := limitOf(m); cents != nil {
					t.Errorf("cat's limit = %v, want unlimited", cents)
				}
			}
		}
		if cursor, _ = page["next_cursor"].(string); cursor == "" {
			if pages != 1 {
				t.Errorf("review took %d pages of 2 for 3 members", pages+1)
			}
			break
		}
	}
	if diff := cmp.Diff(map[string]string{"bob": "Eng", "cat": "Exec", "eve": "Sales"}, decided); diff != "" {
		t.Errorf("review members and who decides (-want +got):\n%s", diff)
	}
})

func cursorArg(c string) string {
	if c == "" {
		return ""
	}
	return "cursor=" + url.QueryEscape(c)
}
