package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/roster-dev/roster/internal/secret"
	"github.com/roster-dev/roster/store"
)

// TeamTokenPrefix starts every team admin token.
const TeamTokenPrefix = "rst_team_"

// How long the API trusts its copy of the admin tokens. A token deleted on
// this process stops working at once (the copy is dropped); on another
// replica within tokenTTL. A token it has not seen (made on another
// replica) makes it look again, at most once per missRetry.
const (
	tokenTTL  = 5 * time.Second
	missRetry = time.Second
	// touchEvery bounds how often a token's last_used_at is written.
	touchEvery = time.Minute
)

// ErrBadToken: the token is no admin token roster knows.
var ErrBadToken = errors.New("the admin token is not valid")

// Principal is who an admin API request acts as: the operator, who sees
// every team, or a team token, which sees only its team.
type Principal struct {
	Operator bool
	TeamID   string // the team of a team token; empty for the operator
	TokenID  string // the team token's id; empty for the operator
	Name     string // the token's name
}

func (p Principal) valid() bool { return p.Operator != (p.TeamID != "") }

// Sees reports whether p may read and change team teamID.
func (p Principal) Sees(teamID string) bool { return p.Operator || p.TeamID == teamID }

type principalKey struct{}

// PrincipalFrom returns the principal an API request is served as.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Authenticate checks an admin token (operator's or a team's) and returns
// who it is. ErrBadToken when roster does not know it.
func (s *Server) Authenticate(ctx context.Context, token string) (Principal, error) {
	token = strings.TrimSpace(token)
	if token == "" {
		return Principal{}, ErrBadToken
	}
	toks, err := s.adminTokens(ctx, false)
	if err != nil {
		return Principal{}, err
	}
	t, ok := matchToken(token, toks)
	if !ok {
		if toks, err = s.adminTokens(ctx, true); err != nil {
			return Principal{}, err
		}
		if t, ok = matchToken(token, toks); !ok {
			return Principal{}, ErrBadToken
		}
	}
	s.touch(ctx, t)
	if t.TeamID == "" {
		return Principal{Operator: true, Name: t.Name}, nil
	}
	return Principal{TeamID: t.TeamID, TokenID: t.ID, Name: t.Name}, nil
}

// ServeAs serves an admin API request as p, without a bearer header: the
// web page calls the API in-process with its signed-in principal, so the
// rules of who may do what live only here. A team principal whose token
// has been deleted gets 401, as its bearer token would.
func (s *Server) ServeAs(p Principal, w http.ResponseWriter, r *http.Request) {
	s.Handler().ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
}

// matchToken finds the stored token that token hashes to, comparing with
// every one in constant time (no early exit).
func matchToken(token string, toks []store.AdminToken) (store.AdminToken, bool) {
	got := []byte(secret.Hash(token))
	found := -1
	for i := range toks {
		if subtle.ConstantTimeCompare(got, []byte(toks[i].Hash)) == 1 {
			found = i
		}
	}
	if found < 0 {
		return store.AdminToken{}, false
	}
	return toks[found], true
}

// adminTokens returns the cached tokens, reloading them when older than
// tokenTTL, or older than missRetry after a miss. The lock is held while
// reading, so a reload cannot put back a token that forgetTokens dropped
// after its delete committed.
func (s *Server) adminTokens(ctx context.Context, miss bool) ([]store.AdminToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	age := time.Since(s.loadedAt)
	if s.loadedAt.IsZero() || age > tokenTTL || miss && age > missRetry {
		toks, err := s.Store.AdminTokens(ctx)
		switch {
		case err == nil:
			s.tokens, s.loadedAt = toks, time.Now()
		case s.loadedAt.IsZero():
			return nil, fmt.Errorf("read admin tokens: %w", err)
		default:
			s.log().Warn("read admin tokens; using the last copy", "err", err)
		}
	}
	return s.tokens, nil
}

// forgetTokens drops the cached tokens, so the next request reads them.
func (s *Server) forgetTokens() {
	s.mu.Lock()
	s.tokens, s.loadedAt = nil, time.Time{}
	s.mu.Unlock()
}

// tokenLive reports whether the team token id still exists, as far as
// this process knows (see tokenTTL).
func (s *Server) tokenLive(ctx context.Context, id string) (bool, error) {
	toks, err := s.adminTokens(ctx, false)
	if err != nil {
		return false, err
	}
	for _, t := range toks {
		if t.ID == id && t.TeamID != "" {
			return true, nil
		}
	}
	return false, nil
}

// touch records, at most once per touchEvery, that a team token was used.
func (s *Server) touch(ctx context.Context, t store.AdminToken) {
	if t.ID == "" {
		return
	}
	now := time.Now()
	s.mu.Lock()
	if s.touched == nil {
		s.touched = map[string]time.Time{}
	}
	last, seen := s.touched[t.ID]
	if !seen && t.LastUsedAt != nil {
		last = *t.LastUsedAt
	}
	due := now.Sub(last) >= touchEvery
	if due {
		s.touched[t.ID] = now
	}
	s.mu.Unlock()
	if due {
		if err := s.Store.TouchTeamToken(ctx, t.ID, now); err != nil {
			s.log().Warn("record admin token use", "token_id", t.ID, "err", err)
		}
	}
}

// principal is who r is served as: the principal ServeAs gave, or the
// bearer token's.
func (s *Server) principal(r *http.Request) (Principal, *apiError) {
	if p, ok := PrincipalFrom(r.Context()); ok {
		if !p.valid() {
			return Principal{}, errorf(http.StatusUnauthorized, CodeUnauthorized, "sign in with an admin token")
		}
		if p.TokenID != "" {
			live, err := s.tokenLive(r.Context(), p.TokenID)
			if err != nil {
				return Principal{}, internal(err)
			}
			if !live {
				return Principal{}, errorf(http.StatusUnauthorized, CodeUnauthorized, "the admin token is not valid: it was deleted")
			}
		}
		return p, nil
	}
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		tok, ok = strings.CutPrefix(auth, "bearer ")
	}
	tok = strings.TrimSpace(tok)
	if !ok || tok == "" {
		return Principal{}, errorf(http.StatusUnauthorized, CodeUnauthorized, "send the admin token as Authorization: Bearer <token>")
	}
	p, err := s.Authenticate(r.Context(), tok)
	if errors.Is(err, ErrBadToken) {
		return Principal{}, errorf(http.StatusUnauthorized, CodeUnauthorized, "the admin token is not valid")
	}
	if err != nil {
		return Principal{}, internal(err)
	}
	return p, nil
}

// authorize applies a team principal's scope to a route: on another team's
// path it gets the answer a team that does not exist gets, so it learns
// nothing; routes outside any team are the operator's.
func authorize(p Principal, rt route, r *http.Request) *apiError {
	switch {
	case p.Operator:
		return nil
	case rt.teamScoped:
		if team := r.PathValue("team"); team != p.TeamID {
			return noTeam(team)
		}
	case rt.operatorOnly:
		return errorf(http.StatusForbidden, CodeForbidden, "a team admin token sees only its own team; this needs the operator's admin token")
	}
	return nil
}

func noTeam(id string) *apiError {
	return errorf(http.StatusNotFound, CodeNotFound, "no team %q", id)
}
