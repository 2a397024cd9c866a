package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/roster-dev/roster/internal/secret"
	"github.com/roster-dev/roster/store"
	"github.com/roster-dev/roster/web"
)

// operatorBackend is the web page's way into the admin API while the API
// knows only operator tokens: a session signed in with an operator token
// acts as the operator, and its requests reach the API in-process with a
// credential of this process (a random admin token whose hash is stored at
// start and removed at Close), so the page never keeps the admin's token.
// Once the API authenticates principals itself (team tokens), this is the
// one place to switch to it.
type operatorBackend struct {
	store *store.Store
	api   http.Handler
	token string
}

func newOperatorBackend(ctx context.Context, a *App) (*operatorBackend, error) {
	tok := secret.NewToken("rst_web_")
	if err := a.API.AddAdminToken(ctx, tok, "web page (this process; removed at shutdown)"); err != nil {
		return nil, fmt.Errorf("store the web page's credential: %w", err)
	}
	return &operatorBackend{store: a.Store, api: a.API.Handler(), token: tok}, nil
}

func (b *operatorBackend) close(ctx context.Context) error {
	return b.store.RemoveAdminTokenHash(ctx, secret.Hash(b.token))
}

// Authenticate accepts the operator's admin tokens.
func (b *operatorBackend) Authenticate(ctx context.Context, token string) (web.Principal, error) {
	if token == "" || secret.Matches(token, secret.Hash(b.token)) {
		return web.Principal{}, web.ErrBadToken
	}
	hashes, err := b.store.AdminTokenHashes(ctx)
	if err != nil {
		return web.Principal{}, fmt.Errorf("read admin tokens: %w", err)
	}
	if !secret.MatchesAny(token, hashes) {
		return web.Principal{}, web.ErrBadToken
	}
	return web.Principal{Operator: true, TokenID: secret.Hash(token), Name: "operator"}, nil
}

// Valid reports whether the session's admin token is still stored.
func (b *operatorBackend) Valid(ctx context.Context, p web.Principal) (bool, error) {
	if !p.Operator {
		return false, nil
	}
	hashes, err := b.store.AdminTokenHashes(ctx)
	if err != nil {
		return false, fmt.Errorf("read admin tokens: %w", err)
	}
	for _, h := range hashes {
		if h == p.TokenID {
			return true, nil
		}
	}
	return false, nil
}

// ServeAs serves an admin API request as the operator.
func (b *operatorBackend) ServeAs(p web.Principal, w http.ResponseWriter, r *http.Request) {
	if !p.Operator {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": "forbidden", "message": "this session may not use the admin API"}})
		return
	}
	r.Header.Set("Authorization", "Bearer "+b.token)
	b.api.ServeHTTP(w, r)
}
