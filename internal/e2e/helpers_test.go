package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/roster-dev/roster/config"
)

// SCIM message URNs the golden tests send and expect.
const (
	urnUser       = "urn:ietf:params:scim:schemas:core:2.0:User"
	urnGroup      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	urnEnterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	urnPatchOp    = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	urnListResp   = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	urnError      = "urn:ietf:params:scim:api:messages:2.0:Error"
	urnBulkReq    = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
	urnBulkResp   = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
	urnSearch     = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
)

// idp is one identity provider's session with a fresh SCIM directory of a
// fresh enterprise team.
type idp struct {
	t *testing.T
	r *Roster
	d Directory
}

// suites holds the golden suites. TestGolden runs them all against one
// roster per mode, each suite in parallel with a fresh team and SCIM
// directory of its own (default spend limit 10000 cents): run one with
// go test -run 'TestGolden/.*/OktaGroupPush'.
type suites struct {
	names []string
	fns   []func(t *testing.T, c *idp)
}

var golden suites

// goldenConcurrency is how many suites run at once against one roster.
const goldenConcurrency = 4

func (s *suites) add(name string, fn func(t *testing.T, c *idp)) bool {
	s.names = append(s.names, name)
	s.fns = append(s.fns, fn)
	return true
}

func TestGolden(t *testing.T) {
	t.Parallel()
	for _, m := range Modes() {
		t.Run(m.Name, func(t *testing.T) {
			t.Parallel()
			shared := Start(t, m)
			// The suites spend their time waiting for the roster, so they
			// run several at a time (t.Run may be called concurrently),
			// whatever -parallel says.
			sem := make(chan struct{}, goldenConcurrency)
			var wg sync.WaitGroup
			for i, name := range golden.names {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer func() { <-sem; wg.Done() }()
					t.Run(name, func(t *testing.T) {
						r := &Roster{T: t, URL: shared.URL, App: shared.App, stop: func() {}}
						golden.fns[i](t, &idp{t: t, r: r, d: r.NewSCIMTeam(10000)})
					})
				}()
			}
			wg.Wait()
		})
	}
}

// alone runs fn in every mode against a roster of its own, configured by
// mutate.
func alone(t *testing.T, fn func(t *testing.T, c *idp), mutate ...func(*config.Config)) {
	t.Parallel()
	for _, m := range Modes() {
		t.Run(m.Name, func(t *testing.T) {
			t.Parallel()
			r := Start(t, m, mutate...)
			fn(t, &idp{t: t, r: r, d: r.NewSCIMTeam(10000)})
		})
	}
}

// send sends a SCIM request; body may be a JSON string (placeholders
// {{name}} replaced from vars) or any JSON-able value.
func (c *idp) send(method, path string, body any, header ...string) *Response {
	c.t.Helper()
	return c.r.SCIM(c.d, method, path, body, header...)
}

// must sends a request and fails unless the answer has status want. Error
// answers must be SCIM errors: application/scim+json, the Error schema and
// the status as a string.
func (c *idp) must(want int, method, path string, body any, header ...string) map[string]any {
	c.t.Helper()
	resp := c.send(method, path, body, header...)
	if resp.Status != want {
		c.t.Fatalf("%s %s = %s, want %d", method, path, resp, want)
	}
	if want >= 400 {
		checkSCIMError(c.t, resp, want)
	} else if want != 204 && want != 304 {
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/scim+json") {
			c.t.Fatalf("%s %s: Content-Type %q, want application/scim+json", method, path, ct)
		}
	}
	if want == 204 && len(resp.Body) != 0 {
		c.t.Fatalf("%s %s = 204 with a body %q", method, path, resp.Body)
	}
	return resp.JSON()
}

func checkSCIMError(t testing.TB, resp *Response, status int) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/scim+json") {
		t.Fatalf("error answer has Content-Type %q, want application/scim+json: %s", ct, resp)
	}
	var e struct {
		Schemas []string `json:"schemas"`
		Status  any      `json:"status"`
		Detail  string   `json:"detail"`
	}
	if err := json.Unmarshal(resp.Body, &e); err != nil {
		t.Fatalf("error answer is not JSON: %s", resp)
	}
	if len(e.Schemas) != 1 || e.Schemas[0] != urnError {
		t.Fatalf("error answer schemas = %v: %s", e.Schemas, resp)
	}
	if s, ok := e.Status.(string); !ok || s != fmt.Sprint(status) {
		t.Fatalf("error answer status = %#v, want the string %q: %s", e.Status, fmt.Sprint(status), resp)
	}
	if e.Detail == "" {
		t.Fatalf("error answer has no detail: %s", resp)
	}
}

// mustErr expects a SCIM error with the status and scimType (empty: any).
func (c *idp) mustErr(status int, scimType, method, path string, body any, header ...string) map[string]any {
	c.t.Helper()
	m := c.must(status, method, path, body, header...)
	if scimType != "" && m["scimType"] != scimType {
		c.t.Fatalf("%s %s: scimType = %v, want %s: %v", method, path, m["scimType"], scimType, m)
	}
	return m
}

// patch sends a PatchOp with the given operations (JSON strings or values).
func (c *idp) patch(want int, path string, ops ...any) map[string]any {
	c.t.Helper()
	list := make([]any, len(ops))
	for i, op := range ops {
		if s, ok := op.(string); ok {
			var v any
			if err := json.Unmarshal([]byte(s), &v); err != nil {
				c.t.Fatalf("bad operation JSON %s: %v", s, err)
			}
			list[i] = v
		} else {
			list[i] = op
		}
	}
	return c.must(want, "PATCH", path, map[string]any{"schemas": []string{urnPatchOp}, "Operations": list})
}

// user creates a user with a work email and returns its id.
func (c *idp) user(userName, email string) string {
	c.t.Helper()
	body := map[string]any{
		"schemas": []string{urnUser}, "userName": userName, "active": true,
		"name":   map[string]any{"givenName": userName, "familyName": "Test"},
		"emails": []any{map[string]any{"value": email, "type": "work", "primary": true}},
	}
	return c.must(201, "POST", "/Users", body)["id"].(string)
}

// group creates a group with the given member ids and returns its id.
func (c *idp) group(name string, members ...string) string {
	c.t.Helper()
	ms := []any{}
	for _, m := range members {
		ms = append(ms, map[string]any{"value": m})
	}
	return c.must(201, "POST", "/Groups", map[string]any{"schemas": []string{urnGroup}, "displayName": name, "members": ms})["id"].(string)
}

// list runs a list query and returns totalResults and the resources.
func (c *idp) list(path string) (int, []map[string]any) {
	c.t.Helper()
	m := c.must(200, "GET", path, nil)
	return listOf(c.t, m)
}

func listOf(t testing.TB, m map[string]any) (int, []map[string]any) {
	t.Helper()
	if !hasString(m["schemas"], urnListResp) {
		t.Fatalf("not a ListResponse: %v", m)
	}
	total, ok := m["totalResults"].(float64)
	if !ok {
		t.Fatalf("ListResponse without totalResults: %v", m)
	}
	raw, ok := m["Resources"].([]any)
	if !ok {
		t.Fatalf("ListResponse without a Resources array: %v", m)
	}
	if ipp, ok := m["itemsPerPage"].(float64); !ok || int(ipp) != len(raw) {
		t.Fatalf("itemsPerPage = %v with %d resources", m["itemsPerPage"], len(raw))
	}
	out := make([]map[string]any, len(raw))
	for i, x := range raw {
		out[i] = x.(map[string]any)
	}
	return int(total), out
}

// filter builds a list path with a URL-encoded filter.
func filterPath(resource, f string, extra ...string) string {
	q := url.Values{"filter": {f}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return "/" + resource + "?" + q.Encode()
}

// roster waits until the team's roster holds exactly these emails.
func (c *idp) roster(emails ...string) map[string]map[string]any {
	c.t.Helper()
	return c.r.WaitRoster(c.d.TeamID, emails...)
}

// groupsNow reads the team's groups keyed by name.
func (c *idp) groupsNow() map[string]map[string]any {
	c.t.Helper()
	out := map[string]map[string]any{}
	cursor := ""
	for {
		page := c.r.MustAdmin(200, "GET", "/teams/"+c.d.TeamID+"/groups?limit=500&cursor="+cursor, nil)
		for _, g := range page["groups"].([]any) {
			gm := g.(map[string]any)
			out[gm["name"].(string)] = gm
		}
		cursor, _ = page["next_cursor"].(string)
		if cursor == "" {
			return out
		}
	}
}

// waitGroups waits until the team's groups are exactly these names with
// these member counts, and returns them by name.
func (c *idp) waitGroups(want map[string]int) map[string]map[string]any {
	c.t.Helper()
	var got map[string]map[string]any
	Eventually(c.t, 5*time.Second, "groups", func() (bool, string) {
		got = c.groupsNow()
		have := map[string]int{}
		for n, g := range got {
			have[n] = int(g["member_count"].(float64))
		}
		return reflect.DeepEqual(have, want), fmt.Sprintf("have %v, want %v", have, want)
	})
	return got
}

// waitMember waits until the member with this email is in exactly these
// groups (by name), and returns the member.
func (c *idp) waitMember(email string, groups ...string) map[string]any {
	c.t.Helper()
	sort.Strings(groups)
	var got map[string]any
	Eventually(c.t, 5*time.Second, "groups of "+email, func() (bool, string) {
		got = nil
		for _, m := range c.r.Members(c.d.TeamID) {
			if m["email"] == email {
				got = m
			}
		}
		if got == nil {
			return false, email + " is not a member"
		}
		names := []string{}
		for _, g := range got["groups"].([]any) {
			names = append(names, g.(map[string]any)["name"].(string))
		}
		sort.Strings(names)
		return strings.Join(names, ",") == strings.Join(groups, ","), fmt.Sprintf("in %v, want %v", names, groups)
	})
	return got
}

// limitOf returns a member's effective limit (nil: unlimited) and source.
func limitOf(m map[string]any) (any, map[string]any) {
	sl := m["spend_limit"].(map[string]any)
	return sl["per_user_cents"], sl["source"].(map[string]any)
}

// setGroupLimit sets a directory group's per-user spend limit.
func (c *idp) setGroupLimit(groupID string, cents any) {
	c.t.Helper()
	c.r.MustAdmin(200, "PUT", "/teams/"+c.d.TeamID+"/groups/"+groupID+"/spend-limit", map[string]any{"per_user_cents": cents})
}

// memberIDs lists a SCIM group's member ids, sorted.
func (c *idp) memberIDs(groupID string) []string {
	c.t.Helper()
	g := c.must(200, "GET", "/Groups/"+groupID, nil)
	return idsOf(g["members"])
}

func idsOf(v any) []string {
	ids := []string{}
	list, _ := v.([]any)
	for _, m := range list {
		ids = append(ids, m.(map[string]any)["value"].(string))
	}
	sort.Strings(ids)
	return ids
}

func sorted(ss ...string) []string {
	out := append([]string{}, ss...)
	sort.Strings(out)
	return out
}

func hasString(v any, s string) bool {
	list, _ := v.([]any)
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// like checks that got contains want (a JSON document): objects may have
// more keys, arrays must have the same length and each wanted element
// matches a distinct element in any order; the string "*" matches any
// present value.
func like(t testing.TB, what string, got any, want string) {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad golden JSON: %v", what, err)
	}
	// Normalise got through JSON too.
	b, _ := json.Marshal(got)
	var g any
	_ = json.Unmarshal(b, &g)
	if p, ok := subset(w, g, "$"); !ok {
		t.Fatalf("%s: mismatch at %s\n got: %s\nwant: %s", what, p, b, want)
	}
}

func subset(want, got any, at string) (string, bool) {
	if s, ok := want.(string); ok && s == "*" {
		return at, got != nil
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return at, false
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				return at + "." + k + " (missing)", false
			}
			if p, ok := subset(wv, gv, at+"."+k); !ok {
				return p, false
			}
		}
		return "", true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return at + " (length)", false
		}
		used := make([]bool, len(g))
		for i, wv := range w {
			found := false
			for j, gv := range g {
				if used[j] {
					continue
				}
				if _, ok := subset(wv, gv, ""); ok {
					used[j], found = true, true
					break
				}
			}
			if !found {
				return fmt.Sprintf("%s[%d]", at, i), false
			}
		}
		return "", true
	default:
		return at, reflect.DeepEqual(want, got)
	}
}

// absent fails when the object has any of the keys (case-insensitively).
func absent(t testing.TB, what string, m map[string]any, keys ...string) {
	t.Helper()
	for k := range m {
		for _, a := range keys {
			if strings.EqualFold(k, a) {
				t.Fatalf("%s: %q must not be returned: %v", what, k, m)
			}
		}
	}
}

// fill replaces {{name}} placeholders in a JSON template.
func fill(tmpl string, kv ...string) string {
	for i := 0; i+1 < len(kv); i += 2 {
		tmpl = strings.ReplaceAll(tmpl, "{{"+kv[i]+"}}", kv[i+1])
	}
	return tmpl
}

// waitName waits until the member with this email has this name.
func (c *idp) waitName(email, name string) {
	c.t.Helper()
	Eventually(c.t, 5*time.Second, "name of "+email, func() (bool, string) {
		for _, m := range c.r.Members(c.d.TeamID) {
			if m["email"] == email {
				return m["name"] == name, fmt.Sprint(m["name"])
			}
		}
		return false, email + " is not a member"
	})
}
