package patch

import (
	"encoding/json"
	"testing"

	"github.com/roster-dev/roster/internal/scimfilter"
)

func FuzzPath(f *testing.F) {
	for _, s := range []string{
		`emails[type eq "work"].value`,
		`members[value eq "2819c223-7f76-453a-919d-413861904646"]`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := scimfilter.ParsePath(s)
		if err != nil {
			return
		}
		p2, err := scimfilter.ParsePath(p.String())
		if err != nil {
			t.Fatalf("ParsePath(%q) = %q, which does not parse: %v", s, p.String(), err)
		}
		if p2.String() != p.String() {
			t.Fatalf("unstable: %q then %q", p.String(), p2.String())
		}
		// A path is usable in every op without panicking.
		res := obj(t, user)
		for _, op := range []string{"add", "replace", "remove"} {
			_, _ = Apply(res, []Operation{{Op: op, Path: s, Value: "x"}}, UserSchema)
			_, _ = Apply(res, []Operation{{Op: op, Path: s, Value: map[string]any{"value": "x", "primary": true}}}, UserSchema)
		}
		_, _ = SplitGroupPatch([]Operation{{Op: "remove", Path: s}})
	})
}

func FuzzApply(f *testing.F) {
	f.Add([]byte(user), []byte(`[{"op":"Replace","path":"emails[type eq \"work\"].value","value":"x@y.com"}]`))
	f.Add([]byte(group), []byte(`[{"op":"Remove","path":"members","value":[{"value":"u1"}]}]`))
	f.Fuzz(func(t *testing.T, resource, body []byte) {
		var res map[string]any
		var o []Operation
		if json.Unmarshal(resource, &res) != nil || json.Unmarshal(body, &o) != nil {
			return
		}
		before, err := json.Marshal(res)
		if err != nil {
			return
		}
		for _, s := range []Schema{UserSchema, GroupSchema} {
			out, err := Apply(res, o, s)
			after, _ := json.Marshal(res)
			if string(after) != string(before) {
				t.Fatalf("Apply modified its input")
			}
			if err != nil {
				if _, ok := err.(*Error); !ok {
					t.Fatalf("error %T", err)
				}
				continue
			}
			if _, err := json.Marshal(out); err != nil {
				t.Fatalf("result does not marshal: %v", err)
			}
			// Applying the same request again is harmless (replays).
			_, _ = Apply(out, o, s)
		}
		g, err := SplitGroupPatch(o)
		if err == nil && !g.NeedsMembers {
			_, _ = Apply(res, g.Ops, GroupSchema)
		}
	})
}
