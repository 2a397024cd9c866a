package scim

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/roster-dev/roster/internal/logtest"
	"github.com/roster-dev/roster/internal/secret"
	"github.com/roster-dev/roster/internal/testenv"
	"github.com/roster-dev/roster/store"
)

// TestRequestLines sends SCIM requests through a server on a real store
// and checks their lines: one debug line per request without the query or
// the token, and failed authentication sampled at warn.
func TestRequestLines(t *testing.T) {
	for _, e := range testenv.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			st := testenv.OpenStore(t, e)
			tok := secret.NewToken("rst_scim_")
			if err := st.CreateTeam(ctx, &store.Team{ID: "t1", Name: "Acme", Plan: store.PlanEnterprise, SSOStatus: "active", SSOProvider: "okta"}); err != nil {
				t.Fatal(err)
			}
			err := st.WithTx(ctx, func(tx *store.Tx) error {
				return tx.CreateDirectory(ctx, &store.Directory{ID: "d1", TeamID: "t1", Type: "scim", TokenHash: secret.Hash(tok)})
			})
			if err != nil {
				t.Fatal(err)
			}
			var logs logtest.Capture
			s := NewServer(Options{Store: st, Log: logs.Logger(), Trigger: func(context.Context, string) error { return nil }})
			srv := httptest.NewServer(s)
			defer srv.Close()
			send := func(token, path string, header ...string) *http.Response {
				t.Helper()
				req, _ := http.NewRequest("GET", srv.URL+"/scim/v2/d1"+path, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				for i := 0; i+1 < len(header); i += 2 {
					req.Header.Set(header[i], header[i+1])
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp
			}
			query := "?filter=" + url.QueryEscape(`userName eq "ann@example.com"`) + "&access_token=leaked-in-url-123"
			resp := send(tok, "/Users"+query, "X-Request-Id", "idp-req-42")
			if got := resp.Header.Get("X-Request-Id"); got != "idp-req-42" {
				t.Errorf("X-Request-Id = %q, want the client's", got)
			}
			if got := send(tok, "/Users").Header.Get("X-Request-Id"); got == "" {
				t.Errorf("no X-Request-Id made for a request without one")
			}
			wrong := "rst_scim_wrong-token-0123456789"
			for range 5 {
				send(wrong, "/Users")
			}

			lines, problems := logs.Lines()
			for _, p := range problems {
				t.Errorf("bad line: %s", p)
			}
			var requests, authLines []logtest.Line
			for _, l := range lines {
				switch l.Msg() {
				case "scim request":
					requests = append(requests, l)
				case "scim authentication failed":
					authLines = append(authLines, l)
				}
			}
			if len(requests) != 7 {
				t.Fatalf("got %d request lines, want 7 (one per request):\n%s", len(requests), logs.Text())
			}
			first := requests[0]
			if first.Level() != "DEBUG" || first.Str("path") != "/scim/v2/d1/Users" || first.Str("status") != "200" ||
				first.Str("directory") != "d1" || first.Str("request_id") != "idp-req-42" || first.Str("method") != "GET" {
				t.Errorf("first request line = %s", first.Raw)
			}
			if _, ok := first.Attrs["duration"].(float64); !ok {
				t.Errorf("duration is not seconds as a number: %s", first.Raw)
			}
			if last := requests[6]; last.Str("status") != "401" || last.Str("directory") != "" || last.Level() != "DEBUG" {
				t.Errorf("a request that did not authenticate = %s", last.Raw)
			}
			if len(authLines) != 1 || authLines[0].Level() != "WARN" || authLines[0].Str("directory") != "d1" || authLines[0].Str("failures") != "1" {
				t.Errorf("authentication failure lines = %v, want one warn line for d1", authLines)
			}
			text := logs.Text()
			for _, secretValue := range []string{tok, wrong, "leaked-in-url-123", "ann@example.com"} {
				if strings.Contains(text, secretValue) {
					t.Errorf("the log holds %q:\n%s", secretValue, text)
				}
			}
			// The request log keeps the query, without the credential.
			if p := redactQuery(mustURL(t, "/scim/v2/d1/Users"+query)); strings.Contains(p, "leaked-in-url-123") || !strings.Contains(p, "filter=") {
				t.Errorf("request log path = %q", p)
			}
		})
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestServerErrorLine checks that a 5xx's one line is at error level,
// visible at the default level.
func TestServerErrorLine(t *testing.T) {
	var logs logtest.Capture
	s := NewServer(Options{Log: logs.Logger()})
	r := httptest.NewRequest("POST", "/scim/v2/d1/Users?x=1", nil)
	s.logRequest(r, "d1", true, &recorder{status: 503, detail: "internal error: database is locked", requestID: "r1"}, time.Millisecond)
	lines, _ := logs.Lines()
	if len(lines) != 1 || lines[0].Level() != "ERROR" || lines[0].Str("status") != "503" || lines[0].Str("detail") == "" || lines[0].Str("path") != "/scim/v2/d1/Users" {
		t.Fatalf("lines = %v, want one error line with status, detail and the path without query", lines)
	}
}

// TestAuthSampler checks the sampling: the first failure logs, then at
// most one line a minute per directory, counting what it covers.
func TestAuthSampler(t *testing.T) {
	var a authSampler
	t0 := time.Unix(1000, 0)
	steps := []struct {
		key     string
		at      time.Duration
		wantLog bool
		wantN   int
	}{
		{"d1", 0, true, 1},
		{"d1", time.Second, false, 0},
		{"d2", 2 * time.Second, true, 1},
		{"d1", 30 * time.Second, false, 0},
		{"d1", 61 * time.Second, true, 3},
		{"d1", 62 * time.Second, false, 0},
		{"d2", 70 * time.Second, true, 1},
	}
	for i, s := range steps {
		log, n := a.note(s.key, t0.Add(s.at))
		if log != s.wantLog || n != s.wantN {
			t.Errorf("step %d (%s at %v): got (%v, %d), want (%v, %d)", i, s.key, s.at, log, n, s.wantLog, s.wantN)
		}
	}
}
