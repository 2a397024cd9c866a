package rules_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/roster-dev/roster/sync/rules"
)

func cents(v int64) *int64 { return &v }

// graph is a small directory used by the limit and closure tests:
//
//	eng ⊃ platform ⊃ sre        sales        interns        execs
//	loopA ⊃ loopB ⊃ loopA (a cycle)
var (
	parents = map[string][]string{
		"platform": {"eng"},
		"sre":      {"platform"},
		"loopA":    {"loopB"},
		"loopB":    {"loopA"},
	}
	names = map[string]string{
		"eng": "Engineering", "platform": "Platform", "sre": "SRE", "sales": "Sales",
		"interns": "Interns", "execs": "Execs", "loopA": "Loop A", "loopB": "Loop B",
		"twinA": "Twins", "twinB": "Twins",
	}
)

func TestEffectiveLimit(t *testing.T) {
	tests := []struct {
		name        string
		direct      []string // the member's direct groups; nesting is added
		limits      map[string]*int64
		teamDefault *int64
		want        rules.Limit
	}{
		{
			name:        "no groups: team default",
			teamDefault: cents(1000),
			want:        rules.Limit{Cents: cents(1000), Source: rules.SourceTeamDefault},
		},
		{
			name:        "groups without limits: team default",
			direct:      []string{"sales"},
			limits:      map[string]*int64{"eng": cents(5000)},
			teamDefault: cents(1000),
			want:        rules.Limit{Cents: cents(1000), Source: rules.SourceTeamDefault},
		},
		{
			name:   "unlimited team default",
			direct: []string{"sales"},
			want:   rules.Limit{Source: rules.SourceTeamDefault},
		},
		{
			name:        "limit inherited through two levels of nesting",
			direct:      []string{"sre"},
			limits:      map[string]*int64{"eng": cents(5000)},
			teamDefault: cents(1000),
			want:        rules.Limit{Cents: cents(5000), Source: rules.SourceGroup, GroupID: "eng", GroupName: "Engineering"},
		},
		{
			name:        "highest of the member's groups wins",
			direct:      []string{"sre", "sales"},
			limits:      map[string]*int64{"eng": cents(5000), "sales": cents(7000), "platform": cents(100)},
			teamDefault: cents(1000),
			want:        rules.Limit{Cents: cents(7000), Source: rules.SourceGroup, GroupID: "sales", GroupName: "Sales"},
		},
		{
			name:        "lower than the default still wins",
			direct:      []string{"interns"},
			limits:      map[string]*int64{"interns": cents(500)},
			teamDefault: cents(1000),
			want:        rules.Limit{Cents: cents(500), Source: rules.SourceGroup, GroupID: "interns", GroupName: "Interns"},
		},
		{
			name:        "zero is a limit, not unset",
			direct:      []string{"interns"},
			limits:      map[string]*int64{"interns": cents(0)},
			teamDefault: cents(1000),
			want:        rules.Limit{Cents: cents(0), Source: rules.SourceGroup, GroupID: "interns", GroupName: "Interns"},
		},
		{
			name:        "unlimited group beats any number",
			direct:      []string{"execs", "sales"},
			limits:      map[string]*int64{"execs": nil, "sales": cents(1 << 40)},
			teamDefault: cents(1000),
			want:        rules.Limit{Source: rules.SourceGroup, GroupID: "execs", GroupName: "Execs"},
		},
		{
			name:        "unlimited group beats a limited default",
			direct:      []string{"execs"},
			limits:      map[string]*int64{"execs": nil},
			teamDefault: cents(1000),
			want:        rules.Limit{Source: rules.SourceGroup, GroupID: "execs", GroupName: "Execs"},
		},
		{
			name:        "a cycle is followed once",
			direct:      []string{"loopA"},
			limits:      map[string]*int64{"loopB": cents(300)},
			teamDefault: cents(1000),
			want:        rules.Limit{Cents: cents(300), Source: rules.SourceGroup, GroupID: "loopB", GroupName: "Loop B"},
		},
		{
			name:        "tie: the name that sorts first",
			direct:      []string{"sales", "eng"},
			limits:      map[string]*int64{"eng": cents(2000), "sales": cents(2000)},
			teamDefault: cents(1000),
			want:        rules.Limit{Cents: cents(2000), Source: rules.SourceGroup, GroupID: "eng", GroupName: "Engineering"},
		},
		{
			name:        "tie on the name too: the lower id",
			direct:      []string{"twinB", "twinA"},
			limits:      map[string]*int64{"twinA": cents(2000), "twinB": cents(2000)},
			teamDefault: cents(1000),
			want:        rules.Limit{Cents: cents(2000), Source: rules.SourceGroup, GroupID: "twinA", GroupName: "Twins"},
		},
		{
			name:        "tie between unlimited groups",
			direct:      []string{"sales", "execs"},
			limits:      map[string]*int64{"execs": nil, "sales": nil},
			teamDefault: cents(1000),
			want:        rules.Limit{Source: rules.SourceGroup, GroupID: "execs", GroupName: "Execs"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			groups := rules.NewClosure(parents, names).Of(tt.direct)
			got := rules.EffectiveLimit(groups, tt.limits, names, tt.teamDefault)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("EffectiveLimit(%v) (-want +got):\n%s", groups, diff)
			}
			// The order the groups come in does not matter.
			rev := append([]string(nil), groups...)
			for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
				rev[i], rev[j] = rev[j], rev[i]
			}
			if again := rules.EffectiveLimit(rev, tt.limits, names, tt.teamDefault); !again.Equal(got) {
				t.Errorf("reversed groups give %+v, want %+v", again, got)
			}
		})
	}
}

func TestLimitEqual(t *testing.T) {
	a := rules.Limit{Cents: cents(5), Source: rules.SourceGroup, GroupID: "g", GroupName: "G"}
	for _, tt := range []struct {
		name string
		b    rules.Limit
		want bool
	}{
		{"same", rules.Limit{Cents: cents(5), Source: rules.SourceGroup, GroupID: "g", GroupName: "G"}, true},
		{"other cents", rules.Limit{Cents: cents(6), Source: rules.SourceGroup, GroupID: "g", GroupName: "G"}, false},
		{"unlimited", rules.Limit{Source: rules.SourceGroup, GroupID: "g", GroupName: "G"}, false},
		{"renamed group", rules.Limit{Cents: cents(5), Source: rules.SourceGroup, GroupID: "g", GroupName: "H"}, false},
		{"from the default", rules.Limit{Cents: cents(5), Source: rules.SourceTeamDefault}, false},
	} {
		if got := a.Equal(tt.b); got != tt.want {
			t.Errorf("%s: Equal = %v, want %v", tt.name, got, tt.want)
		}
	}
	if !rules.SameCents(nil, nil) || rules.SameCents(nil, cents(0)) || rules.SameCents(cents(0), nil) || !rules.SameCents(cents(3), cents(3)) {
		t.Error("SameCents: nil equals only nil; numbers compare by value")
	}
}

func TestGuardHolds(t *testing.T) {
	def := rules.Guard{MaxRemovals: 500, MaxFraction: 0.2}
	tests := []struct {
		name            string
		guard           rules.Guard
		leaving, active int
		want            bool
	}{
		{"nothing leaves", def, 0, 1000, false},
		{"nothing leaves an empty directory", def, 0, 0, false},
		{"under both limits", def, 100, 1000, false},
		{"exactly the fraction", def, 200, 1000, false},
		{"just over the fraction", def, 201, 1000, true},
		{"exactly the count", rules.Guard{MaxRemovals: 500, MaxFraction: 1}, 500, 100000, false},
		{"just over the count", rules.Guard{MaxRemovals: 500, MaxFraction: 1}, 501, 100000, true},
		{"count holds even under the fraction", def, 501, 100000, true},
		{"everyone leaves", def, 50, 50, true},
		{"one removal in a tiny directory", def, 1, 2, false},
		{"one removal of the only member", def, 1, 1, false},
		{"two removals in a tiny directory", def, 2, 3, true},
		{"max_removals 0 holds one removal", rules.Guard{MaxRemovals: 0, MaxFraction: 1}, 1, 1000, true},
		{"max_removals 0 lets an empty poll through", rules.Guard{MaxRemovals: 0, MaxFraction: 1}, 0, 1000, false},
		{"fraction 1 never holds by share", rules.Guard{MaxRemovals: 1 << 30, MaxFraction: 1}, 1000, 1000, false},
		{"the floor: 10 of 20 not held by share", rules.Guard{MaxRemovals: 50, MaxFraction: 0.2, FractionFloor: 10}, 10, 20, false},
		{"past the floor: 11 of 40 held by share", rules.Guard{MaxRemovals: 50, MaxFraction: 0.2, FractionFloor: 10}, 11, 40, true},
		{"the floor does not lift the count", rules.Guard{MaxRemovals: 5, MaxFraction: 1, FractionFloor: 10}, 6, 1000, true},
		{"no active count: only the count applies", def, 10, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.guard.Holds(tt.leaving, tt.active); got != tt.want {
				t.Errorf("%+v.Holds(%d, %d) = %v, want %v", tt.guard, tt.leaving, tt.active, got, tt.want)
			}
		})
	}
}

func TestClosure(t *testing.T) {
	tests := []struct {
		name    string
		parents map[string][]string
		exists  map[string]string
		direct  []string
		want    []string
	}{
		{"no groups", parents, names, nil, nil},
		{"direct only", parents, names, []string{"sales"}, []string{"sales"}},
		{"nested two levels", parents, names, []string{"sre"}, []string{"eng", "platform", "sre"}},
		{"several direct groups, shared ancestors once", parents, names, []string{"sre", "platform", "sales"}, []string{"eng", "platform", "sales", "sre"}},
		{"cycle", parents, names, []string{"loopA"}, []string{"loopA", "loopB"}},
		{"self loop", map[string][]string{"a": {"a"}}, map[string]string{"a": "A"}, []string{"a"}, []string{"a"}},
		{
			"a group that is gone is walked through but not reported",
			map[string][]string{"child": {"gone"}, "gone": {"top"}},
			map[string]string{"child": "Child", "top": "Top"},
			[]string{"child"}, []string{"child", "top"},
		},
		{
			"diamond",
			map[string][]string{"d": {"b", "c"}, "b": {"a"}, "c": {"a"}},
			map[string]string{"a": "A", "b": "B", "c": "C", "d": "D"},
			[]string{"d"}, []string{"a", "b", "c", "d"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := rules.NewClosure(tt.parents, tt.exists)
			got := c.Of(tt.direct)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Of(%v) (-want +got):\n%s", tt.direct, diff)
			}
			// A memoised answer is the same answer.
			if diff := cmp.Diff(tt.want, c.Of(tt.direct)); diff != "" {
				t.Errorf("second Of(%v) (-want +got):\n%s", tt.direct, diff)
			}
		})
	}
}

// TestClosureDeepChain follows a chain far deeper than any cut a query
// might impose, and a ring of the same length.
func TestClosureDeepChain(t *testing.T) {
	const depth = 250
	chain := map[string][]string{}
	ring := map[string][]string{}
	exists := map[string]string{}
	var want []string
	for i := 0; i < depth; i++ {
		id := fmt.Sprintf("g%03d", i)
		exists[id] = id
		want = append(want, id)
		if i+1 < depth {
			chain[id] = []string{fmt.Sprintf("g%03d", i+1)}
		}
		ring[id] = []string{fmt.Sprintf("g%03d", (i+1)%depth)}
	}
	if diff := cmp.Diff(want, rules.NewClosure(chain, exists).Of([]string{"g000"})); diff != "" {
		t.Errorf("chain of %d (-want +got):\n%s", depth, diff)
	}
	if got := rules.NewClosure(chain, exists).Of([]string{"g200"}); len(got) != depth-200 || got[0] != "g200" || got[len(got)-1] != "g249" {
		t.Errorf("chain from g200 = %v, want g200..g249", got)
	}
	if diff := cmp.Diff(want, rules.NewClosure(ring, exists).Of([]string{"g123"})); diff != "" {
		t.Errorf("ring of %d (-want +got):\n%s", depth, diff)
	}
}
