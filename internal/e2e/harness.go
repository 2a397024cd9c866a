// Package e2e runs roster the way a user does, over HTTP, for end-to-end
// tests: an in-process app (embedded or on PostgreSQL and Redis) and a
// client for its admin API and SCIM endpoint.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/roster-dev/roster/app"
	"github.com/roster-dev/roster/config"
	"github.com/roster-dev/roster/internal/testenv"
)

// AdminToken is the admin token test instances use.
const AdminToken = "test-admin-token-0123456789"

// Mode is a deployment shape tests run against.
type Mode struct {
	Name     string
	Database func(t testing.TB) string
	Redis    func(t testing.TB) string
}

// Modes are the embedded default and the scaled set-up (PostgreSQL + Redis).
func Modes() []Mode {
	return []Mode{
		{Name: "embedded", Database: func(testing.TB) string { return "" }, Redis: func(testing.TB) string { return "" }},
		{Name: "postgres+redis", Database: testenv.PostgresURL, Redis: testenv.RedisURL},
	}
}

// Roster is a running roster instance.
type Roster struct {
	T    testing.TB
	URL  string
	App  *app.App
	stop func()
}

// Start runs roster in-process on a free port.
func Start(t testing.TB, m Mode, mutate ...func(*config.Config)) *Roster {
	t.Helper()
	return StartHooked(t, m, nil, mutate...)
}

// StartHooked is Start with a hook that may adjust the app before it runs.
func StartHooked(t testing.TB, m Mode, hook func(*app.App), mutate ...func(*config.Config)) *Roster {
	t.Helper()
	return start(t, m, hook, nil, mutate...)
}

// StartLogged is Start with every line roster logs going to log.
func StartLogged(t testing.TB, m Mode, log *slog.Logger, mutate ...func(*config.Config)) *Roster {
	t.Helper()
	return start(t, m, nil, log, mutate...)
}

func start(t testing.TB, m Mode, hook func(*app.App), log *slog.Logger, mutate ...func(*config.Config)) *Roster {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.DatabaseURL = m.Database(t)
	cfg.RedisURL = m.Redis(t)
	cfg.AdminToken = AdminToken
	cfg.Queue.Namespace = "rt" + testenv.RandomHex(4)
	cfg.SCIM.RateLimit = 0
	for _, f := range mutate {
		f(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if log == nil {
		level := slog.LevelWarn
		if os.Getenv("ROSTER_TEST_LOG") != "" {
			level = slog.LevelDebug
		}
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("start roster: %v", err)
	}
	addr, err := a.Listen()
	if err != nil {
		cancel()
		a.Close()
		t.Fatal(err)
	}
	if hook != nil {
		hook(a)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	r := &Roster{T: t, URL: "http://" + addr.String(), App: a}
	stopped := false
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("roster did not stop within 30s")
		}
		a.Close()
	}
	t.Cleanup(r.stop)
	return r
}

// Stop shuts the instance down.
func (r *Roster) Stop() { r.stop() }

// Response is an HTTP answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body.
func (resp *Response) JSON() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(resp.Body, &m)
	return m
}

func (resp *Response) String() string { return fmt.Sprintf("%d %s", resp.Status, resp.Body) }

// Do sends a request with a bearer token; body may be nil, a string or any
// JSON-able value.
func (r *Roster) Do(method, path, token string, body any, header ...string) *Response {
	r.T.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			r.T.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	url := path
	if !strings.HasPrefix(path, "http") {
		url = r.URL + path
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		r.T.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// Admin calls the admin API.
func (r *Roster) Admin(method, path string, body any) *Response {
	r.T.Helper()
	return r.Do(method, "/api/v1"+path, AdminToken, body)
}

// MustAdmin calls the admin API and fails unless the status is want.
func (r *Roster) MustAdmin(want int, method, path string, body any) map[string]any {
	r.T.Helper()
	resp := r.Admin(method, path, body)
	if resp.Status != want {
		r.T.Fatalf("%s %s = %s, want %d", method, path, resp, want)
	}
	return resp.JSON()
}

// Directory is a SCIM directory of a test team.
type Directory struct {
	TeamID  string
	ID      string
	BaseURL string
	Token   string
}

// NewSCIMTeam creates an enterprise team with active SSO and a SCIM
// directory.
func (r *Roster) NewSCIMTeam(defaultCents any) Directory {
	r.T.Helper()
	team := r.MustAdmin(201, "POST", "/teams", map[string]any{"name": "Acme", "plan": "enterprise", "default_spend_limit": map[string]any{"per_user_cents": defaultCents}})
	tid := team["id"].(string)
	r.MustAdmin(200, "PUT", "/teams/"+tid+"/sso", map[string]any{"status": "active", "provider": "okta"})
	d := r.MustAdmin(201, "POST", "/teams/"+tid+"/directories", map[string]any{"type": "scim"})
	scim := d["scim"].(map[string]any)
	return Directory{TeamID: tid, ID: d["id"].(string), BaseURL: scim["base_url"].(string), Token: scim["token"].(string)}
}

// SCIM calls a directory's SCIM endpoint; path is relative to the base URL.
func (r *Roster) SCIM(d Directory, method, path string, body any, header ...string) *Response {
	r.T.Helper()
	return r.Do(method, d.BaseURL+path, d.Token, body, header...)
}

// Members lists every current member of a team.
func (r *Roster) Members(teamID string) []map[string]any {
	r.T.Helper()
	var out []map[string]any
	cursor := ""
	for {
		page := r.MustAdmin(200, "GET", "/teams/"+teamID+"/members?limit=500&cursor="+cursor, nil)
		for _, m := range page["members"].([]any) {
			out = append(out, m.(map[string]any))
		}
		cursor, _ = page["next_cursor"].(string)
		if cursor == "" {
			return out
		}
	}
}

// Eventually retries cond until it holds or the timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: not true after %v: %s", what, timeout, last)
}

// MembersByEmail waits until the team's roster has exactly the given emails
// and returns the members keyed by email.
func (r *Roster) WaitRoster(teamID string, emails ...string) map[string]map[string]any {
	r.T.Helper()
	var got map[string]map[string]any
	Eventually(r.T, 5*time.Second, "roster", func() (bool, string) {
		got = map[string]map[string]any{}
		for _, m := range r.Members(teamID) {
			got[m["email"].(string)] = m
		}
		if len(got) != len(emails) {
			return false, fmt.Sprintf("have %d members %v, want %v", len(got), keys(got), emails)
		}
		for _, e := range emails {
			if _, ok := got[e]; !ok {
				return false, fmt.Sprintf("have %v, want %v", keys(got), emails)
			}
		}
		return true, ""
	})
	return got
}

func keys(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
