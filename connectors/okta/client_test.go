package okta

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/roster-dev/roster/connectors/okta/oktafake"
)

func TestClassify(t *testing.T) {
	date := time.Date(2025, 3, 10, 9, 0, 30, 0, time.UTC)
	h := func(kv ...string) http.Header {
		out := http.Header{"Date": {date.Format(http.TimeFormat)}}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	reset := func(d time.Duration) string { return itoa(date.Add(d).Unix()) }
	tests := []struct {
		name     string
		status   int
		header   http.Header
		handled  bool
		wantWait time.Duration
	}{
		{"429 waits until the window resets", 429, h("X-Rate-Limit-Reset", reset(30*time.Second)), true, 30 * time.Second},
		{"429 with Retry-After leaves the wait to it", 429, h("Retry-After", "5", "X-Rate-Limit-Reset", reset(30*time.Second)), true, 0},
		{"429 without headers waits a second", 429, h(), true, time.Second},
		{"500 is apiclient's default", 500, h(), false, 0},
		{"403 is not throttling", 403, h(), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := classify(&http.Response{StatusCode: tt.status, Header: tt.header}, nil)
			if ok != tt.handled {
				t.Fatalf("handled = %v, want %v", ok, tt.handled)
			}
			if ok && (!v.Retry || !v.Throttled || v.Wait != tt.wantWait) {
				t.Errorf("verdict = %+v, want retry, throttled, wait %v", v, tt.wantWait)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestBucketKey(t *testing.T) {
	for path, want := range map[string]string{
		"/api/v1/users": "/api/v1/users",
		"/api/v1/groups/00g1emaKYZTWRYYRRTSK/users":                    "/api/v1/groups/*/users",
		"/api/v1/apps/0oa2v0el0gP90aqjJ0g7/users/00u1f96ECLNVOKVMUSEA": "/api/v1/apps/*/users/*",
		"/api/v1/logs":     "/api/v1/logs",
		"/oauth2/v1/token": "/oauth2/v1/token",
	} {
		if got := bucketKey(path); got != want {
			t.Errorf("bucketKey(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestTransient401WithAPIToken(t *testing.T) {
	e := newEnv(t)
	smallDirectory(t, e.fake)
	s := e.open(e.tokenConfig())
	e.fake.UnauthorizedNext(1)
	snap, _ := e.full(s)
	if len(snap.Users) != 30 {
		t.Errorf("users = %d after a transient 401", len(snap.Users))
	}
	// Check's requests go one after the other: two 401s in a row fail it.
	e.fake.UnauthorizedNext(2)
	if err := s.Check(t.Context()); err == nil {
		t.Errorf("Check after two 401s in a row passed; want an error")
	}
	e.fake.UnauthorizedNext(1000)
	if _, _, err := s.Full(t.Context()); err == nil {
		t.Errorf("Full with every answer 401 passed; want an error")
	}
	if got := e.fake.Requests(oktafake.EndpointToken); got != 0 {
		t.Errorf("an API token needs no token endpoint; got %d requests", got)
	}
}
