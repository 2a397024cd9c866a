package msgraph

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionLifetime is how long a client assertion is valid; Entra needs
// only a few minutes, and a short one limits a leaked assertion's use.
const assertionLifetime = 10 * time.Minute

// tokenSource gets application tokens from the tenant's token endpoint
// and keeps them, shared by every source opened with the same credential
// in this process: the poller opens a source per poll, and a token lasts
// about an hour, so polls do not each cost a token request.
type tokenSource struct {
	tokenURL string
	clientID string
	scope    string
	secret   string
	cert     *certificate
	// http sends the token requests (through its own apiclient, so a token
	// request never waits for a slot held by the Graph request that needs
	// the token).
	http *http.Client
	key  [32]byte

	mu      sync.Mutex // one token request at a time per source
	fetched map[string]bool
}

var tokenCache = struct {
	sync.Mutex
	m map[[32]byte]*oauth2.Token
}{m: map[[32]byte]*oauth2.Token{}}

// tokenMargin renews a token this long before it expires, so a request
// never goes out with a token about to lapse.
const tokenMargin = 2 * time.Minute

func newTokenSource(cfg *Config, cert *certificate, client *http.Client) *tokenSource {
	ts := &tokenSource{
		tokenURL: cfg.tokenURL(),
		clientID: strings.TrimSpace(cfg.ClientID),
		scope:    cfg.scope(),
		secret:   cfg.ClientSecret,
		cert:     cert,
		http:     client,
	}
	h := sha256.New()
	for _, part := range []string{ts.tokenURL, ts.clientID, ts.scope, cfg.ClientSecret, cfg.ClientCertificatePEM, cfg.ClientKeyPEM} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	copy(ts.key[:], h.Sum(nil))
	return ts
}

func cachedToken(key [32]byte) *oauth2.Token {
	tokenCache.Lock()
	defer tokenCache.Unlock()
	t := tokenCache.m[key]
	if t == nil || time.Until(t.Expiry) < tokenMargin {
		return nil
	}
	return t
}

func storeToken(key [32]byte, t *oauth2.Token) {
	tokenCache.Lock()
	defer tokenCache.Unlock()
	now := time.Now()
	for k, old := range tokenCache.m {
		if old.Expiry.Before(now) {
			delete(tokenCache.m, k)
		}
	}
	tokenCache.m[key] = t
}

// drop forgets the cached token, after Graph refused it.
func (ts *tokenSource) drop(access string) {
	tokenCache.Lock()
	defer tokenCache.Unlock()
	if t := tokenCache.m[ts.key]; t != nil && t.AccessToken == access {
		delete(tokenCache.m, ts.key)
	}
}

// fetchedHere reports whether this source got the token from the token
// endpoint itself (rather than from the cache).
func (ts *tokenSource) fetchedHere(access string) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.fetched[access]
}

// Token returns a valid access token, asking the token endpoint when the
// cached one is missing or about to expire.
func (ts *tokenSource) Token(ctx context.Context) (*oauth2.Token, error) {
	if t := cachedToken(ts.key); t != nil {
		return t, nil
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if t := cachedToken(ts.key); t != nil {
		return t, nil
	}
	cc := clientcredentials.Config{
		ClientID:  ts.clientID,
		TokenURL:  ts.tokenURL,
		Scopes:    []string{ts.scope},
		AuthStyle: oauth2.AuthStyleInParams,
	}
	if ts.cert != nil {
		a, err := ts.assertion(time.Now())
		if err != nil {
			return nil, err
		}
		cc.EndpointParams = url.Values{"client_assertion_type": {assertionType}, "client_assertion": {a}}
	} else {
		cc.ClientSecret = ts.secret
	}
	t, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, ts.http))
	if err != nil {
		return nil, tokenError(err, ts.cert != nil)
	}
	if t.Expiry.IsZero() {
		// Entra always says how long a token lasts; without that, keep it
		// only briefly rather than for ever.
		t.Expiry = time.Now().Add(tokenMargin + 5*time.Minute)
	}
	storeToken(ts.key, t)
	if ts.fetched == nil {
		ts.fetched = map[string]bool{}
	}
	ts.fetched[t.AccessToken] = true
	return t, nil
}

// assertion is the client assertion of Microsoft's certificate
// credentials: an RS256 JWT naming the certificate by its SHA-256 (and
// SHA-1, for older tenants) thumbprint, for the token endpoint, from and
// about the client.
func (ts *tokenSource) assertion(now time.Time) (string, error) {
	s256 := sha256.Sum256(ts.cert.cert.Raw)
	s1 := sha1.Sum(ts.cert.cert.Raw)
	hdr := map[string]string{
		"alg":      "RS256",
		"typ":      "JWT",
		"x5t#S256": base64.RawURLEncoding.EncodeToString(s256[:]),
		"x5t":      base64.RawURLEncoding.EncodeToString(s1[:]),
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("client assertion: %w", err)
	}
	claims := map[string]any{
		"aud": ts.tokenURL,
		"iss": ts.clientID,
		"sub": ts.clientID,
		"jti": hex.EncodeToString(jti[:]),
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(assertionLifetime).Unix(),
	}
	hb, err := json.Marshal(hdr)
	if err != nil {
		return "", fmt.Errorf("client assertion: %w", err)
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("client assertion: %w", err)
	}
	signing := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	digest := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, ts.cert.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("client assertion: sign: %w", err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// AuthError is a token request Entra refused, with what to do about it.
type AuthError struct {
	// Code is the OAuth2 error ("invalid_client") and AADSTS the Entra
	// error number (7000215), when Entra gave them.
	Code   string
	AADSTS int
	// Fix says what the admin should change.
	Fix string
	// Detail is Entra's own description, without its trace lines.
	Detail string
}

func (e *AuthError) Error() string {
	var b strings.Builder
	b.WriteString("get a Microsoft Graph token: ")
	b.WriteString(e.Fix)
	if e.Detail != "" {
		b.WriteString(" (Entra said: ")
		b.WriteString(e.Detail)
		b.WriteString(")")
	}
	return b.String()
}

var reAADSTS = regexp.MustCompile(`AADSTS(\d+)`)

// tokenError turns an oauth2 error into an AuthError naming the fix.
func tokenError(err error, withCert bool) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return fmt.Errorf("get a Microsoft Graph token: %w", err)
	}
	ae := &AuthError{Code: re.ErrorCode}
	desc := re.ErrorDescription
	var body struct {
		ErrorCodes []int `json:"error_codes"`
	}
	if json.Unmarshal(re.Body, &body) == nil && len(body.ErrorCodes) > 0 {
		ae.AADSTS = body.ErrorCodes[0]
	} else if m := reAADSTS.FindStringSubmatch(desc); m != nil {
		ae.AADSTS, _ = strconv.Atoi(m[1])
	}
	// Entra's description ends with trace, correlation and time lines.
	if i := strings.IndexAny(desc, "\r\n"); i >= 0 {
		desc = desc[:i]
	}
	if len(desc) > 300 {
		desc = desc[:300] + "..."
	}
	ae.Detail = desc
	switch ae.AADSTS {
	case 7000215:
		ae.Fix = "client_secret is wrong: give the secret's Value (not its Secret ID) from the app registration's Certificates & secrets, or add a new secret"
	case 7000222:
		ae.Fix = "client_secret has expired: add a new client secret under Certificates & secrets and give its Value"
	case 7000218:
		ae.Fix = "no credential was accepted: give client_secret, or client_certificate_pem and client_key_pem"
	case 700016:
		ae.Fix = "client_id is not an application in this tenant: give the Application (client) ID of an app registered in tenant_id, or grant admin consent to it there"
	case 90002, 900023, 90033:
		ae.Fix = "tenant_id is not a tenant: give the Directory (tenant) ID, and check that login_url is the sign-in endpoint of the tenant's cloud"
	case 700027:
		ae.Fix = "the certificate was refused: upload client_certificate_pem under the app registration's Certificates & secrets, and give its own private key as client_key_pem"
	case 700024:
		ae.Fix = "the client assertion is outside its valid time: set this server's clock right (NTP)"
	case 700021:
		ae.Fix = "the client assertion names another application: check client_id"
	case 1002012, 70011, 500011:
		ae.Fix = "the scope was refused: graph_url must be Microsoft Graph's root for the tenant's cloud, e.g. https://graph.microsoft.com"
	case 7000112, 700025:
		ae.Fix = "the application is disabled or is a public client: enable it, and use a confidential (web) app registration"
	case 50057, 50053:
		ae.Fix = "the application's service principal is disabled or locked: enable it under Enterprise applications"
	default:
		switch {
		case re.ErrorCode == "invalid_client" && withCert:
			ae.Fix = "the client certificate was refused: check client_id, client_certificate_pem and client_key_pem"
		case re.ErrorCode == "invalid_client":
			ae.Fix = "the client credential was refused: check client_id and client_secret"
		case re.Response != nil && re.Response.StatusCode >= 500:
			ae.Fix = fmt.Sprintf("the token endpoint failed (HTTP %d); the next poll tries again", re.Response.StatusCode)
		default:
			ae.Fix = "the token request was refused: check tenant_id, client_id and the credential"
		}
	}
	return ae
}
