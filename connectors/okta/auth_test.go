package okta

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/roster-dev/roster/connectors/okta/oktafake"
)

const clientID = "0oa1bcdefGHIJKLmnop2"

var allScopes = []string{oktafake.ScopeUsersRead, oktafake.ScopeGroupsRead, oktafake.ScopeAppsRead, oktafake.ScopeLogsRead}

func (e *env) serviceApp(t *testing.T, registered *rsa.PublicKey, scopes []string, role oktafake.Permissions) {
	e.fake.AddServiceApp(oktafake.ServiceApp{ClientID: clientID, JWKS: []oktafake.JWK{oktafake.PublicJWK(registered, "k1")}, Scopes: scopes, Role: role})
}

func (e *env) appConfig(t *testing.T, key *rsa.PrivateKey) Config {
	return Config{OrgURL: e.fake.URL, ClientID: clientID, PrivateKeyPEM: pkcs8PEM(t, key)}
}

func TestServiceAppListing(t *testing.T) {
	a, _ := testKeys(t)
	e := newEnv(t)
	uids, _ := smallDirectory(t, e.fake)
	e.serviceApp(t, &a.PublicKey, allScopes, oktafake.ReadOnlyAdmin)
	e.clock.Advance(time.Hour)
	s := e.open(e.appConfig(t, a))
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	snap, cur := e.full(s)
	if len(snap.Users) != 30 || len(snap.Groups) != 3 {
		t.Fatalf("full: %d users, %d groups", len(snap.Users), len(snap.Groups))
	}
	if got := e.fake.Requests(oktafake.EndpointToken); got != 1 {
		t.Errorf("token requests = %d, want 1 (the token is reused)", got)
	}

	// A transient 401: retried once with a fresh token.
	must(t, e.fake.SuspendUser(uids[0]))
	e.clock.Advance(time.Minute)
	e.fake.UnauthorizedNext(1)
	d, cur := e.changes(s, cur)
	if len(d.Users) != 1 || d.Users[0].Active {
		t.Errorf("delta after a transient 401: %+v", d.Users)
	}
	if got := e.fake.Requests(oktafake.EndpointToken); got != 2 {
		t.Errorf("token requests = %d, want 2 (a fresh token after the 401)", got)
	}
	// Two 401s in a row fail the poll, naming what to check.
	e.fake.UnauthorizedNext(2)
	_, _, err := s.Changes(context.Background(), cur)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || !strings.Contains(err.Error(), "service app") {
		t.Errorf("Changes after two 401s: %v", err)
	}
	// Tokens expire after an hour; the connector renews them itself.
	e.clock.Advance(2 * time.Hour)
	e.fake.ResetCounters()
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("Check after the token expired: %v", err)
	}
	if got := e.fake.Requests(oktafake.EndpointToken); got != 1 {
		t.Errorf("token requests after expiry = %d, want 1", got)
	}
}

func TestCheck(t *testing.T) {
	a, b := testKeys(t)
	tests := []struct {
		name  string
		setup func(e *env) Config
		want  []string // nil: Check passes
	}{
		{"api token ok", func(e *env) Config { return e.tokenConfig() }, nil},
		{"bad api token", func(e *env) Config {
			c := e.tokenConfig()
			c.APIToken = "00wrongTOKENwrongTOKENwrongTOKENwrongTOK"
			return c
		}, []string{"HTTP 401", "E0000011", "create a new API token", "set api_token"}},
		{"api token admin without groups", func(e *env) Config {
			e.fake.SetAPITokenPermissions(testToken, oktafake.Permissions{Users: true, Logs: true})
			return e.tokenConfig()
		}, []string{"HTTP 403", "E0000006", "may not read groups", "Read-only Administrator"}},
		{"api token admin without the log", func(e *env) Config {
			e.fake.SetAPITokenPermissions(testToken, oktafake.Permissions{Users: true, Groups: true})
			return e.tokenConfig()
		}, []string{"E0000006", "System Log"}},
		{"no such app", func(e *env) Config {
			c := e.tokenConfig()
			c.AppID = "0oa000000000000000zz"
			return c
		}, []string{"HTTP 404", "E0000007", `app_id "0oa000000000000000zz"`}},
		{"no such group", func(e *env) Config {
			c := e.tokenConfig()
			c.GroupIDs = []string{"00g000000000000000zz"}
			return c
		}, []string{"HTTP 404", "group_ids"}},
		{"service app ok", func(e *env) Config {
			e.serviceApp(t, &a.PublicKey, allScopes, oktafake.ReadOnlyAdmin)
			return e.appConfig(t, a)
		}, nil},
		{"service app signed with another key", func(e *env) Config {
			e.serviceApp(t, &a.PublicKey, allScopes, oktafake.ReadOnlyAdmin)
			return e.appConfig(t, b)
		}, []string{"invalid_client", "signature is invalid", "register the public key of private_key_pem"}},
		{"service app scope not granted", func(e *env) Config {
			e.serviceApp(t, &a.PublicKey, []string{oktafake.ScopeUsersRead, oktafake.ScopeGroupsRead}, oktafake.ReadOnlyAdmin)
			return e.appConfig(t, a)
		}, []string{"invalid_scope", "okta.logs.read", "Okta API Scopes"}},
		{"service app without admin role", func(e *env) Config {
			e.serviceApp(t, &a.PublicKey, allScopes, oktafake.Permissions{})
			return e.appConfig(t, a)
		}, []string{"HTTP 403", "E0000006", "admin role", "Read-only Administrator"}},
		{"service app requiring DPoP", func(e *env) Config {
			e.serviceApp(t, &a.PublicKey, allScopes, oktafake.ReadOnlyAdmin)
			e.fake.UpdateServiceApp(clientID, func(sa *oktafake.ServiceApp) { sa.RequireDPoP = true })
			return e.appConfig(t, a)
		}, []string{"invalid_dpop_proof", "DPoP"}},
		{"unknown client", func(e *env) Config {
			return e.appConfig(t, a)
		}, []string{"invalid_client", clientID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			smallDirectory(t, e.fake)
			cfg := tt.setup(e)
			s := e.open(cfg)
			err := s.Check(context.Background())
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check passed, want an error with %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Check error %q\nwant it to contain %q", err, w)
				}
			}
			for _, secret := range []string{cfg.APIToken, "PRIVATE KEY"} {
				if secret != "" && strings.Contains(err.Error(), secret) {
					t.Errorf("Check error %q holds a secret", err)
				}
			}
		})
	}
}

// TestTokenEndpoint posts client assertions to the fake directly: it must
// reject what Okta rejects, or the connector's tests would prove nothing.
func TestTokenEndpoint(t *testing.T) {
	a, b := testKeys(t)
	e := newEnv(t)
	e.serviceApp(t, &a.PublicKey, allScopes, oktafake.ReadOnlyAdmin)
	now := e.clock.Now()
	sign := func(key *rsa.PrivateKey, claims map[string]any) string {
		sa := &serviceAppAuth{clientID: clientID, key: key, tokenURL: e.fake.TokenURL}
		tok, err := sa.assertion(now)
		if err != nil {
			t.Fatal(err)
		}
		if claims == nil {
			return tok
		}
		// Sign other claims with the same key.
		hdr, _ := json.Marshal(map[string]string{"alg": "RS256"})
		body, _ := json.Marshal(claims)
		signing := base64.RawURLEncoding.EncodeToString(hdr) + "." + base64.RawURLEncoding.EncodeToString(body)
		return signing + "." + rsaSign(t, key, signing)
	}
	post := func(assertion, scope string) (int, string) {
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}
		resp, err := e.fake.Client().PostForm(e.fake.TokenURL, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, fmt.Sprint(body["error"], ": ", body["error_description"])
	}
	claims := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{"iss": clientID, "sub": clientID, "aud": e.fake.TokenURL, "exp": now.Add(5 * time.Minute).Unix(), "jti": fmt.Sprint(time.Now().UnixNano())}
		if mod != nil {
			mod(c)
		}
		return c
	}
	good := sign(a, nil)
	tests := []struct {
		name      string
		assertion string
		scope     string
		status    int
		want      string
	}{
		{"good", good, "okta.users.read okta.groups.read", 200, ""},
		{"replayed jti", good, "okta.users.read", 401, "already been used"},
		{"wrong key", sign(b, nil), "okta.users.read", 401, "signature is invalid"},
		{"tampered claims", func() string {
			p := strings.Split(sign(a, nil), ".")
			body, _ := json.Marshal(claims(func(c map[string]any) { c["sub"] = clientID }))
			return p[0] + "." + base64.RawURLEncoding.EncodeToString(body) + "." + p[2]
		}(), "okta.users.read", 401, "signature is invalid"},
		{"wrong audience", sign(a, claims(func(c map[string]any) { c["aud"] = e.fake.URL + "/oauth2/default/v1/token" })), "okta.users.read", 401, "audience"},
		{"sub is not iss", sign(a, claims(func(c map[string]any) { c["sub"] = "someone" })), "okta.users.read", 401, "sub"},
		{"expired", sign(a, claims(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() })), "okta.users.read", 401, "expired"},
		{"too long", sign(a, claims(func(c map[string]any) { c["exp"] = now.Add(3 * time.Hour).Unix() })), "okta.users.read", 401, "too far"},
		{"unsigned", func() string {
			p := strings.Split(sign(a, nil), ".")
			hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`))
			return hdr + "." + p[1] + "."
		}(), "okta.users.read", 401, "unsupported signing algorithm"},
		{"scope not granted", sign(a, nil), "okta.users.manage", 400, "invalid_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, msg := post(tt.assertion, tt.scope)
			if status != tt.status || !strings.Contains(msg, tt.want) {
				t.Errorf("token endpoint = %d %q, want %d %q", status, msg, tt.status, tt.want)
			}
		})
	}
}

func rsaSign(t *testing.T, key *rsa.PrivateKey, signing string) string {
	t.Helper()
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(sig)
}
