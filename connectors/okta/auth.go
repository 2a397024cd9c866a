package okta

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Okta API scopes a service app needs.
const (
	scopeUsers  = "okta.users.read"
	scopeGroups = "okta.groups.read"
	scopeApps   = "okta.apps.read"
	scopeLogs   = "okta.logs.read"
)

// authorizer gives the Authorization header of API requests.
type authorizer interface {
	header(ctx context.Context) (string, error)
	// refresh drops a cached access token after a 401.
	refresh()
	kind() string
}

type sswsAuth struct{ token string }

func (a sswsAuth) header(context.Context) (string, error) { return "SSWS " + a.token, nil }
func (a sswsAuth) refresh()                               {}
func (a sswsAuth) kind() string                           { return "api_token" }

// serviceAppAuth gets access tokens for an OAuth service app with the
// client credentials grant, authenticating with a private_key_jwt client
// assertion (RFC 7523) signed RS256.
type serviceAppAuth struct {
	clientID string
	key      *rsa.PrivateKey
	tokenURL string
	scopes   []string
	http     *http.Client // token requests, through their own apiclient
	now      func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
}

func (a *serviceAppAuth) kind() string { return "service_app" }

func (a *serviceAppAuth) refresh() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.token = ""
}

func (a *serviceAppAuth) header(ctx context.Context) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if a.token != "" && now.Before(a.expires) {
		return "Bearer " + a.token, nil
	}
	assertion, err := a.assertion(now)
	if err != nil {
		return "", err
	}
	cc := clientcredentials.Config{
		ClientID: a.clientID,
		TokenURL: a.tokenURL,
		Scopes:   a.scopes,
		EndpointParams: url.Values{
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion":      {assertion},
		},
		AuthStyle: oauth2.AuthStyleInParams,
	}
	tok, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, a.http))
	if err != nil {
		return "", a.explain(err)
	}
	if tok.AccessToken == "" {
		return "", fmt.Errorf("okta: token endpoint answered without an access token")
	}
	// Okta's service-app tokens last an hour; renew a minute early so a
	// token does not expire between header() and the request.
	life := time.Duration(tok.ExpiresIn) * time.Second
	if life <= 0 {
		life = time.Hour
	}
	a.token, a.expires = tok.AccessToken, now.Add(life-time.Minute)
	return "Bearer " + a.token, nil
}

// assertion builds the client assertion: iss = sub = client_id, aud = the
// token endpoint, a unique jti, valid for five minutes.
func (a *serviceAppAuth) assertion(now time.Time) (string, error) {
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", fmt.Errorf("client assertion: %w", err)
	}
	hdr, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT"})
	claims, _ := json.Marshal(map[string]any{
		"iss": a.clientID, "sub": a.clientID, "aud": a.tokenURL,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": hex.EncodeToString(jti),
	})
	signing := base64.RawURLEncoding.EncodeToString(hdr) + "." + base64.RawURLEncoding.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, a.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign client assertion: %w", err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// explain turns a token endpoint failure into an error naming the fix.
func (a *serviceAppAuth) explain(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return fmt.Errorf("okta: get an access token from %s: %w", a.tokenURL, err)
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	e := &APIError{Status: status, Code: re.ErrorCode, Summary: re.ErrorDescription, Request: "POST /oauth2/v1/token"}
	switch re.ErrorCode {
	case "invalid_client":
		e.Fix = fmt.Sprintf("Okta rejected the client assertion of client_id %q: register the public key of private_key_pem on that service app (Applications > the app > General > Public keys) and check that client authentication is \"Public key / Private key\"", a.clientID)
	case "invalid_scope":
		e.Fix = fmt.Sprintf("grant the scopes %s to the service app (Applications > the app > Okta API Scopes)", joinScopes(a.scopes))
	case "invalid_dpop_proof", "use_dpop_nonce":
		e.Fix = "the service app requires DPoP-bound tokens, which roster does not send: clear \"Require Demonstrating Proof of Possession (DPoP) header in token requests\" in the app's General settings"
	case "unauthorized_client", "unsupported_grant_type":
		e.Fix = "use an API Services app (OAuth service app) with the Client Credentials grant"
	default:
		if e.Code == "" {
			e.Code = "token_error"
			e.Summary = string(bytes.TrimSpace(re.Body))
		}
		e.Fix = "check org_url and the service app's settings"
	}
	return e
}

func joinScopes(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ", "
		}
		out += v
	}
	return out
}
