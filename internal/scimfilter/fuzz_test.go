package scimfilter

import (
	"encoding/json"
	"fmt"
	"testing"
)

// parseNoRecover is Parse without the safety net, so that fuzzing sees
// panics.
func parseNoRecover(s string, fast bool) (Expr, error) {
	if len(s) > MaxFilterLength {
		return nil, errorf(s, "too long")
	}
	return parse(s, true, fast)
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`userName eq "bjensen@example.com"`,
		`emails[type eq "work" and primary eq true].value eq "x@y.com"`,
		`userName sw "j" and not (active eq false)`,
	} {
		f.Add(s)
	}
	res := decode(f, bjensen)
	f.Fuzz(func(t *testing.T, s string) {
		e, err := parseNoRecover(s, true)
		slow, slowErr := parseNoRecover(s, false)
		if (err == nil) != (slowErr == nil) {
			t.Fatalf("fast path disagrees on %q: %v vs %v", s, err, slowErr)
		}
		if err != nil {
			return
		}
		if e.String() != slow.String() {
			t.Fatalf("fast path disagrees on %q: %s vs %s", s, e, slow)
		}
		e2, err := Parse(e.String())
		if err != nil {
			t.Fatalf("Parse(%q) ok but its String %q does not parse: %v", s, e.String(), err)
		}
		if e2.String() != e.String() {
			t.Fatalf("String not stable for %q: %q then %q", s, e.String(), e2.String())
		}
		if Match(e, res, nil) == Match(&Not{e}, res, nil) {
			t.Fatalf("not (%s) is not the negation", e)
		}
	})
}

// FuzzAttrPath checks that the hand-written attribute-path reader agrees
// with the library wherever it answers.
func FuzzAttrPath(f *testing.F) {
	for _, s := range []string{"members", "name.givenName", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "emails.value", "x-y_1", "1a", "a..b", "a.b.c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fast, ok := fastAttrPath(s)
		if !ok {
			return
		}
		slow, err := libraryAttrPath(s)
		if err != nil {
			t.Fatalf("fast path accepts %q, the library does not: %v", s, err)
		}
		if fast != slow {
			t.Fatalf("fast path reads %q as %+v, the library as %+v", s, fast, slow)
		}
	})
}

func FuzzMatch(f *testing.F) {
	f.Add(`emails[type eq "work"].value eq "bjensen@example.com"`, []byte(bjensen))
	f.Add(`active eq true`, []byte(stringBools))
	f.Fuzz(func(t *testing.T, filter string, resource []byte) {
		e, err := parseNoRecover(filter, true)
		if err != nil {
			return
		}
		var res map[string]any
		if json.Unmarshal(resource, &res) != nil {
			return
		}
		got := Match(e, res, nil)
		if Match(&Not{e}, res, nil) == got {
			t.Fatalf("not (%s) is not the negation on %s", e, resource)
		}
		e2, err := Parse(e.String())
		if err != nil {
			t.Fatal(err)
		}
		if Match(e2, res, nil) != got {
			t.Fatalf("%s and its reprint %s disagree on %s", e, e2, resource)
		}
		_ = fmt.Sprint(Match(e, res, func(string) bool { return true }))
	})
}
