package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/roster-dev/roster/store"
)

// memSessions keeps sessions in memory.
type memSessions struct {
	mu sync.Mutex
	m  map[string]store.WebSession
}

func (s *memSessions) CreateWebSession(_ context.Context, ws *store.WebSession) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[ws.IDHash] = *ws
	return nil
}

func (s *memSessions) GetWebSession(_ context.Context, id string, now time.Time) (*store.WebSession, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws, ok := s.m[id]
	if !ok || !ws.ExpiresAt.After(now) {
		return nil, store.ErrNotFound
	}
	return &ws, nil
}

func (s *memSessions) TouchWebSession(_ context.Context, id string, seen, exp time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := s.m[id]
	ws.LastSeenAt, ws.ExpiresAt = seen, exp
	s.m[id] = ws
	return nil
}

func (s *memSessions) SetWebSessionFlash(_ context.Context, id, f string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := s.m[id]
	ws.Flash = f
	s.m[id] = ws
	return nil
}

func (s *memSessions) DeleteWebSession(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
	return nil
}

func (s *memSessions) DeleteWebSessionsOfToken(_ context.Context, tokenID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, ws := range s.m {
		if ws.TokenID == tokenID {
			delete(s.m, k)
		}
	}
	return nil
}

func (s *memSessions) DeleteExpiredWebSessions(context.Context, time.Time) error { return nil }

func (s *memSessions) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// teamBackend knows one team token and answers GET /teams/acme.
type teamBackend struct {
	mu      sync.Mutex
	revoked bool
}

func (b *teamBackend) Authenticate(_ context.Context, token string) (Principal, error) {
	if token != "team-token" {
		return Principal{}, ErrBadToken
	}
	return Principal{TeamID: "acme", TokenID: "tok1"}, nil
}

func (b *teamBackend) Valid(_ context.Context, p Principal) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return p.TokenID == "tok1" && !b.revoked, nil
}

func (b *teamBackend) ServeAs(p Principal, w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == "/api/v1/teams/acme":
		io.WriteString(w, `{"id": "acme", "name": "Acme", "plan": "enterprise", "sso": {"status": "active"}, "default_spend_limit": {"per_user_cents": 5000}}`)
	case r.URL.Path == "/api/v1/teams/acme/events":
		io.WriteString(w, `{"events": [], "next_cursor": "0"}`)
	case r.URL.Path == "/api/v1/teams/acme/limits/review":
		io.WriteString(w, `{"groups": [], "members": [], "next_cursor": ""}`)
	case r.URL.Path == "/api/v1/teams/acme/directories":
		io.WriteString(w, `{"directories": []}`)
	default:
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error": {"code": "not_found", "message": "no team"}}`)
	}
}

// TestTeamTokenSession signs in with a team token: it lands on its team;
// once the token is revoked the next request signs out and the session is
// gone from the store.
func TestTeamTokenSession(t *testing.T) {
	sessions := &memSessions{m: map[string]store.WebSession{}}
	be := &teamBackend{}
	h, err := New(Options{Backend: be, Sessions: sessions})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (*http.Response, string) {
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	_, page := get("/signin")
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)[1]
	resp, err := c.PostForm(srv.URL+"/signin", url.Values{"token": {"team-token"}, "csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/teams/acme" {
		t.Fatalf("team sign-in = %d %q, want 303 /teams/acme", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := get("/"); resp.Header.Get("Location") != "/teams/acme" {
		t.Fatalf("GET / = %q, want /teams/acme", resp.Header.Get("Location"))
	}
	// A team token has no team list: it goes to its team.
	if resp, _ := get("/teams"); resp.Header.Get("Location") != "/teams/acme" {
		t.Fatalf("GET /teams = %d %q, want 303 /teams/acme", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, page = get("/teams/acme")
	if resp.StatusCode != 200 || !strings.Contains(page, `id="sso-status">active`) || strings.Contains(page, "All teams") {
		t.Fatalf("team page = %d: %s", resp.StatusCode, page)
	}
	// Another team: what the API says (404), nothing more.
	if resp, page := get("/teams/other"); resp.StatusCode != 404 || !strings.Contains(page, `id="error"`) {
		t.Fatalf("other team = %d: %s", resp.StatusCode, page)
	}
	be.mu.Lock()
	be.revoked = true
	be.mu.Unlock()
	if resp, _ := get("/teams/acme"); resp.StatusCode != 303 || !strings.HasPrefix(resp.Header.Get("Location"), "/signin") {
		t.Fatalf("after the token's deletion = %d %q, want 303 to /signin", resp.StatusCode, resp.Header.Get("Location"))
	}
	if n := sessions.count(); n != 0 {
		t.Fatalf("%d sessions left after the token's deletion, want 0", n)
	}
}

func TestFlashNeedsTheCookie(t *testing.T) {
	sealed, err := seal("cookie-a", flash{Kind: "scim-token", For: "d1", Value: "rst_scim_secret"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "rst_scim_secret") {
		t.Fatal("the sealed flash shows the secret")
	}
	if f, ok := unseal("cookie-a", sealed); !ok || f.Value != "rst_scim_secret" {
		t.Fatalf("unseal = %+v, %v", f, ok)
	}
	if _, ok := unseal("cookie-b", sealed); ok {
		t.Fatal("another cookie opened the flash")
	}
}

func withLimits(m *member, raws ...string) *member {
	for i := range m.Groups {
		m.Groups[i].Limit = json.RawMessage(raws[i])
	}
	return m
}

func TestWhy(t *testing.T) {
	c := func(v int64) *int64 { return &v }
	s := func(v string) *string { return &v }
	tm := &team{}
	tm.DefaultLimit.Cents = c(5000)
	// The limits of a member's groups, as the members answer carries them
	// (per_user_cents; absent on a group without a limit; null: unlimited).
	limits := map[string]string{"eng": `20000`, "sales": `10000`, "ops": ``, "all": `null`}
	mem := func(cents *int64, src string, groups ...string) *member {
		m := &member{}
		m.SpendLimit.Cents = cents
		m.SpendLimit.Source.Type = "team_default"
		if src != "" {
			m.SpendLimit.Source.Type, m.SpendLimit.Source.GroupID = "group", s(src)
			m.SpendLimit.Source.GroupName = s(map[string]string{"eng": "Engineering", "all": "Everyone"}[src])
		}
		for _, g := range groups {
			m.Groups = append(m.Groups, groupRef{ID: g, Name: map[string]string{"eng": "Engineering", "sales": "Sales", "ops": "Ops", "all": "Everyone"}[g], Limit: json.RawMessage(limits[g])})
		}
		return m
	}
	for _, tc := range []struct {
		m    *member
		want string
	}{
		{mem(c(20000), "eng", "eng", "sales", "ops"), "$200.00 from Engineering; also in Sales ($100.00); team default $50.00"},
		{mem(c(20000), "eng", "eng"), "$200.00 from Engineering; team default $50.00"},
		{mem(nil, "all", "all", "eng"), "Unlimited from Everyone; also in Engineering ($200.00); team default $50.00"},
		{mem(c(5000), ""), "$50.00 from the team default"},
		{mem(c(5000), "", "ops"), "$50.00 from the team default; none of their groups sets a limit"},
		// Other limits on the same groups.
		{withLimits(mem(c(30000), "eng", "eng", "sales", "ops"), `30000`, `25000`, ``), "$300.00 from Engineering; also in Sales ($250.00); team default $50.00"},
		{withLimits(mem(nil, "all", "all", "sales"), `null`, `25000`), "Unlimited from Everyone; also in Sales ($250.00); team default $50.00"},
	} {
		if got := why(tc.m, tm); got != tc.want {
			t.Errorf("why = %q, want %q", got, tc.want)
		}
	}
}
