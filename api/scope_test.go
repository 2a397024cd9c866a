package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/roster-dev/roster/internal/secret"
	"github.com/roster-dev/roster/internal/testenv"
	"github.com/roster-dev/roster/store"
)

const (
	operatorToken = "scope-test-operator-token"
	teamAToken    = "rst_team_scope-test-team-a"
)

func scopeServer(t *testing.T, e testenv.Engine) (*Server, *store.Store) {
	t.Helper()
	ctx := context.Background()
	st := testenv.OpenStore(t, e)
	for _, id := range []string{"A", "B"} {
		if err := st.CreateTeam(ctx, &store.Team{ID: id, Name: id, Plan: store.PlanEnterprise}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CreateTeamToken(ctx, &store.AdminToken{ID: "tokA", TeamID: "A", Name: "a", Hash: secret.Hash(teamAToken)}); err != nil {
		t.Fatal(err)
	}
	srv := &Server{Store: st}
	if err := srv.AddAdminToken(ctx, operatorToken, "test"); err != nil {
		t.Fatal(err)
	}
	return srv, st
}

// request builds a request for a route pattern, on team, with every other
// wildcard filled in.
func request(pattern, team string) *http.Request {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = http.MethodGet, pattern
	}
	path = strings.NewReplacer("{team}", team, "{dir}", "d", "{id}", "i", "{rest...}", "r").Replace(path)
	if strings.HasSuffix(path, "/") {
		path += "x"
	}
	r := httptest.NewRequest(method, path, strings.NewReader("{}"))
	r.Header.Set("Authorization", "Bearer "+teamAToken)
	return r
}

func errorOf(t *testing.T, w *httptest.ResponseRecorder) (code, message string) {
	t.Helper()
	var body struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	return body.Error.Code, body.Error.Message
}

// TestTeamTokenScopeEveryRoute walks every route Handler serves with team
// A's token on team B's path: each answers exactly what a team that does
// not exist gets, and routes outside a team answer 403.
func TestTeamTokenScopeEveryRoute(t *testing.T) {
	for _, e := range testenv.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			srv, _ := scopeServer(t, e)
			h := srv.Handler()
			routes := srv.routes()
			if len(routes) < 30 {
				t.Fatalf("only %d routes listed", len(routes))
			}
			for _, rt := range routes {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, request(rt.pattern, "B"))
				code, msg := errorOf(t, w)
				switch {
				case rt.teamScoped:
					ghost := httptest.NewRecorder()
					h.ServeHTTP(ghost, request(rt.pattern, "ghost"))
					gcode, gmsg := errorOf(t, ghost)
					if w.Code != 404 || code != CodeNotFound || msg != `no team "B"` {
						t.Errorf("%s on team B = %d %s %q, want 404 not_found `no team \"B\"`", rt.pattern, w.Code, code, msg)
					}
					if ghost.Code != w.Code || gcode != code || strings.ReplaceAll(gmsg, "ghost", "B") != msg {
						t.Errorf("%s: another team's answer %d %q differs from a missing team's %d %q", rt.pattern, w.Code, msg, ghost.Code, gmsg)
					}
				case rt.operatorOnly:
					if w.Code != 403 || code != CodeForbidden {
						t.Errorf("%s with a team token = %d %s, want 403", rt.pattern, w.Code, code)
					}
				default: // the fallback: no such path, for anyone
					if w.Code != 404 || !strings.Contains(msg, "no such API path") {
						t.Errorf("%s = %d %q, want 404 no such API path", rt.pattern, w.Code, msg)
					}
				}
			}
		})
	}
}

func TestServeAsAndAuthenticate(t *testing.T) {
	for _, e := range testenv.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			srv, st := scopeServer(t, e)
			p, err := srv.Authenticate(ctx, teamAToken)
			if err != nil || p != (Principal{TeamID: "A", TokenID: "tokA", Name: "a"}) {
				t.Fatalf("Authenticate(team token) = %+v, %v", p, err)
			}
			op, err := srv.Authenticate(ctx, operatorToken)
			if err != nil || !op.Operator || op.TeamID != "" {
				t.Fatalf("Authenticate(operator) = %+v, %v", op, err)
			}
			if _, err := srv.Authenticate(ctx, "rst_team_nope"); err != ErrBadToken {
				t.Fatalf("Authenticate(unknown) err = %v, want ErrBadToken", err)
			}
			serve := func(p Principal, method, path string) int {
				w := httptest.NewRecorder()
				srv.ServeAs(p, w, httptest.NewRequest(method, path, nil))
				return w.Code
			}
			for _, c := range []struct {
				p      Principal
				method string
				path   string
				want   int
			}{
				{p, "GET", "/api/v1/teams/A", 200},
				{p, "GET", "/api/v1/teams/B", 404},
				{p, "GET", "/api/v1/teams", 403},
				{op, "GET", "/api/v1/teams/B", 200},
				{op, "GET", "/api/v1/teams", 200},
				{Principal{}, "GET", "/api/v1/teams/A", 401},
				{Principal{Operator: true, TeamID: "A"}, "GET", "/api/v1/teams/A", 401},
			} {
				if got := serve(c.p, c.method, c.path); got != c.want {
					t.Errorf("ServeAs(%+v) %s %s = %d, want %d", c.p, c.method, c.path, got, c.want)
				}
			}
			// A team token cannot delete itself; the operator can, and the
			// principal stops working on this process at once.
			if got := serve(p, "DELETE", "/api/v1/teams/A/admin-tokens/tokA"); got != 409 {
				t.Fatalf("self-delete = %d, want 409", got)
			}
			if got := serve(op, "DELETE", "/api/v1/teams/A/admin-tokens/tokA"); got != 204 {
				t.Fatalf("operator delete = %d, want 204", got)
			}
			if got := serve(p, "GET", "/api/v1/teams/A"); got != 401 {
				t.Fatalf("deleted token's principal = %d, want 401", got)
			}
			if _, err := srv.Authenticate(ctx, teamAToken); err != ErrBadToken {
				t.Fatalf("deleted token authenticates: %v", err)
			}
			if toks, _ := st.ListTeamTokens(ctx, "A"); len(toks) != 0 {
				t.Fatalf("tokens after delete = %+v", toks)
			}
		})
	}
}
