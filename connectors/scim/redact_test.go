package scim

import (
	"strings"
	"testing"
)

func TestRedactBody(t *testing.T) {
	for _, c := range []struct {
		name, body string
		keep       bool   // the body is logged as sent
		hidden     string // must not appear in the log
	}{
		{"member patch", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"u1"}]}]}`, true, ""},
		{"password attribute", `{"userName":"a","password":"hunter2"}`, false, "hunter2"},
		{"password in any case", `{"userName":"a","PassWord":"hunter2"}`, false, "hunter2"},
		{"escaped key", `{"userName":"a","pass\u0077ord":"hunter2"}`, false, "hunter2"},
		{"patch path", `{"Operations":[{"op":"replace","path":"password","value":"hunter2"}]}`, false, "hunter2"},
		{"nested secret", `{"x":{"clientSecret":"s3cr3t"}}`, false, "s3cr3t"},
		{"token suffix", `{"accessToken":"tok123"}`, false, "tok123"},
	} {
		got := redactBody([]byte(c.body), 4096)
		if c.keep && got != c.body {
			t.Errorf("%s: logged %q, want the body as sent", c.name, got)
		}
		if c.hidden != "" && strings.Contains(got, c.hidden) {
			t.Errorf("%s: secret %q in the log: %s", c.name, c.hidden, got)
		}
	}
	// Too long: a marker, never a cut-off JSON document.
	long := `{"userName":"` + strings.Repeat("a", 100) + `"}`
	if got := redactBody([]byte(long), 50); !strings.Contains(got, `"truncated"`) {
		t.Errorf("long body logged as %q", got)
	}
	// Not JSON: kept, cut to the limit, valid UTF-8.
	if got := redactBody([]byte("not json \xff"), 100); got != "not json ?" {
		t.Errorf("invalid body logged as %q", got)
	}
}
