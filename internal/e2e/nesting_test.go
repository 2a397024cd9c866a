package e2e

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// NestedGroupsAgree builds over SCIM a chain of nested groups deeper than
// 64 levels, closed into a cycle, with a diamond hanging from it, and
// checks that "the groups a person is in" has one meaning: each user's
// SCIM groups attribute (read one by one and as a list) holds exactly the
// groups the roster gives the member, and both are the closure the test
// computes itself. Then the cycle is cut and they must agree again.
var _ = golden.add("NestedGroupsAgree", func(t *testing.T, c *idp) {
	const depth = 70
	users := map[string]string{} // email -> SCIM id
	for _, n := range []string{"bottom", "middle", "diamond", "single", "none"} {
		email := n + "@nest.example"
		users[email] = c.user(email, email)
	}
	// The graph, as member -> the groups listing it; "L0" lists the
	// bottom user, "L(i)" lists "L(i-1)".
	parents := map[string][]string{}
	ids := map[string]string{} // group name -> SCIM id
	names := map[string]string{}
	group := func(name string, members ...string) {
		t.Helper()
		var refs []string
		for _, m := range members {
			ref, ok := ids[m]
			if !ok {
				ref = users[m]
			}
			refs = append(refs, ref)
			parents[m] = append(parents[m], name)
		}
		ids[name] = c.group(name, refs...)
		names[ids[name]] = name
	}
	level := func(i int) string { return fmt.Sprintf("L%02d", i) }
	group(level(0), "bottom@nest.example")
	for i := 1; i < depth; i++ {
		if i == 40 {
			group(level(i), level(i-1), "middle@nest.example")
			continue
		}
		group(level(i), level(i-1))
	}
	group("D", "diamond@nest.example", "middle@nest.example")
	group("A", "D")
	group("B", "D")
	group("T", "A", "B")
	group("Single", "single@nest.example")
	// T hangs from L50, and the top of the chain goes back into its bottom.
	c.patch(204, "/Groups/"+ids[level(50)], `{"op": "add", "path": "members", "value": [{"value": "`+ids["T"]+`"}]}`)
	parents["T"] = append(parents["T"], level(50))
	c.patch(204, "/Groups/"+ids[level(0)], `{"op": "add", "path": "members", "value": [{"value": "`+ids[level(depth-1)]+`"}]}`)
	parents[level(depth-1)] = append(parents[level(depth-1)], level(0))

	closure := func(email string) []string {
		seen := map[string]bool{}
		queue := []string{email}
		for len(queue) > 0 {
			m := queue[0]
			queue = queue[1:]
			for _, g := range parents[m] {
				if !seen[g] {
					seen[g] = true
					queue = append(queue, g)
				}
			}
		}
		out := []string{}
		for g := range seen {
			out = append(out, ids[g])
		}
		sort.Strings(out)
		return out
	}
	groupIDs := func(v any, key string) []string {
		out := []string{}
		list, _ := v.([]any)
		for _, g := range list {
			out = append(out, g.(map[string]any)[key].(string))
		}
		sort.Strings(out)
		return out
	}
	readable := func(gids []string) string {
		var ns []string
		for _, id := range gids {
			ns = append(ns, names[id])
		}
		sort.Strings(ns)
		return strings.Join(ns, ",")
	}
	check := func(when string) {
		t.Helper()
		want := map[string][]string{}
		for email := range users {
			want[email] = closure(email)
		}
		if n := len(want["bottom@nest.example"]); n != depth {
			t.Fatalf("%s: the test's own closure gives the bottom user %d groups, want %d", when, n, depth)
		}
		// SCIM answers at once (the mirror); the roster once reconciled.
		list := map[string][]string{}
		_, res := c.list("/Users?count=100&attributes=" + url.QueryEscape("userName,groups"))
		for _, u := range res {
			list[u["userName"].(string)] = groupIDs(u["groups"], "value")
		}
		for email, id := range users {
			one := groupIDs(c.must(200, "GET", "/Users/"+id, nil)["groups"], "value")
			if diff := cmp.Diff(want[email], one); diff != "" {
				t.Errorf("%s: SCIM groups of %s (-closure +GET):\n%s", when, email, diff)
			}
			if diff := cmp.Diff(want[email], list[email]); diff != "" {
				t.Errorf("%s: SCIM groups of %s in a list (-closure +list):\n%s", when, email, diff)
			}
		}
		Eventually(t, 10*time.Second, when+": the roster's groups", func() (bool, string) {
			got := map[string][]string{}
			for _, m := range c.r.Members(c.d.TeamID) {
				got[m["email"].(string)] = groupIDs(m["groups"], "id")
			}
			for email := range users {
				if !cmp.Equal(want[email], got[email]) {
					return false, fmt.Sprintf("%s is in %s, SCIM says %s", email, readable(got[email]), readable(want[email]))
				}
			}
			return true, ""
		})
	}
	check("with the cycle")

	// Cut the cycle: the diamond's users now reach only L50 and above.
	c.patch(204, "/Groups/"+ids[level(0)], `{"op": "remove", "path": "members[value eq \"`+ids[level(depth-1)]+`\"]"}`)
	parents[level(depth-1)] = nil
	check("without the cycle")
})
