package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/roster-dev/roster/api"
	"github.com/roster-dev/roster/store"
	"github.com/roster-dev/roster/web"
)

// webBackend is the web page's way into the admin API: sign-in is the
// API's Authenticate, and every page request is served in-process as the
// session's principal (ServeAs), so who may do what is decided by the API
// alone.
type webBackend struct {
	api   *api.Server
	store *store.Store
}

// Authenticate resolves an operator or team admin token.
func (b webBackend) Authenticate(ctx context.Context, token string) (web.Principal, error) {
	p, err := b.api.Authenticate(ctx, token)
	if errors.Is(err, api.ErrBadToken) {
		return web.Principal{}, web.ErrBadToken
	}
	if err != nil {
		return web.Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	return web.Principal{Operator: p.Operator, TeamID: p.TeamID, TokenID: p.TokenID, Name: p.Name}, nil
}

// Valid reports whether a team principal's token still exists. It reads
// the store, not the API's copy of the tokens, so a token deleted on
// another replica ends its sessions at their next request.
func (b webBackend) Valid(ctx context.Context, p web.Principal) (bool, error) {
	if p.Operator {
		return true, nil
	}
	toks, err := b.store.ListTeamTokens(ctx, p.TeamID)
	if err != nil {
		return false, fmt.Errorf("read team tokens: %w", err)
	}
	for _, t := range toks {
		if t.ID == p.TokenID {
			return true, nil
		}
	}
	return false, nil
}

// ServeAs serves an admin API request as the principal.
func (b webBackend) ServeAs(p web.Principal, w http.ResponseWriter, r *http.Request) {
	b.api.ServeAs(api.Principal{Operator: p.Operator, TeamID: p.TeamID, TokenID: p.TokenID, Name: p.Name}, w, r)
}
