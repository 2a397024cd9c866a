// Package okta polls an Okta org through its management API and lists its
// users and groups for roster's sync core (connectors.Source,
// connectors.DeltaSource, connectors.Checker, connectors.Meter).
//
// Full lists users (GET /api/v1/users, 200 a page), groups (GET
// /api/v1/groups, types OKTA_GROUP and APP_GROUP, 200 a page) and each
// group's members (GET /api/v1/groups/{id}/users, 1,000 a page). With
// app_id the users are those assigned to the application (GET
// /api/v1/apps/{id}/users?expand=user, 500 a page), directly or through a
// group; with group_ids they are the members of those groups, and only those
// groups are listed. Okta groups hold users only (what Okta offers instead
// of nesting, group rules, shows up as plain members of the rule's group),
// so no group is ever listed as a member.
//
// Changes reads the System Log (GET /api/v1/logs, a polling request whose
// next link is the cursor) for the event types that change a user, a group
// or a membership, and re-reads every object an event names: users in
// batches through filter=id eq ..., groups likewise, then the complete
// member list of each changed group. A replayed or stale event therefore
// cannot undo newer state. Objects whose events are younger than
// settleTime are read once more at the next poll, because Okta's filter
// results are eventually consistent.
//
// Requests go through apiclient (a bounded number in flight, Retry-After,
// capped backoff with jitter). Okta's rate limits are per endpoint, org-wide
// and shared with every other app of the org, so the connector also reads
// X-Rate-Limit-Limit / -Remaining / -Reset on every answer and waits for the
// window to reset before it would use the last tenth of a bucket, rather
// than running into 429 E0000047. A 429 that happens anyway is waited out
// until X-Rate-Limit-Reset. A 401 is retried once with a fresh token.
//
// Any failed page, or a page shorter than asked that still has a next link,
// fails the whole poll: a partial listing is never returned.
package okta

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/roster-dev/roster/connectors"
)

// Type registers the Okta source with the core.
var Type = connectors.Type{NewConfig: func() connectors.Config { return &Config{} }}

// Config is one Okta org as an admin configures it (the admin API body
// {"type": "okta", "okta": {...}} or the YAML file).
type Config struct {
	// OrgURL is the org's address, e.g. https://acme.okta.com (not the
	// -admin address of the Admin Console).
	OrgURL string `json:"org_url" yaml:"org_url"`

	// APIToken is an Okta API token, sent as "Authorization: SSWS <token>".
	// It acts with the permissions of the admin who created it.
	APIToken string `json:"api_token,omitempty" yaml:"api_token,omitempty"`

	// ClientID and PrivateKeyPEM are an OAuth 2.0 service app (API Services
	// integration) that authenticates with private_key_jwt; its public key
	// is registered on the app.
	ClientID      string `json:"client_id,omitempty" yaml:"client_id,omitempty"`
	PrivateKeyPEM string `json:"private_key_pem,omitempty" yaml:"private_key_pem,omitempty"`

	// AppID limits the roster to the people assigned to this application
	// (directly or through a group). GroupIDs limits it to the members of
	// these groups. Give at most one of the two.
	AppID    string   `json:"app_id,omitempty" yaml:"app_id,omitempty"`
	GroupIDs []string `json:"group_ids,omitempty" yaml:"group_ids,omitempty"`

	connectors.PollSettings `yaml:",inline"`
}

const redacted = "(redacted)"

// Polling returns the settings every polled source shares.
func (c *Config) Polling() connectors.PollSettings { return c.PollSettings }

// Redacted returns a copy without the API token and the private key; a set
// secret reads "(redacted)".
func (c *Config) Redacted() any {
	r := *c
	if r.APIToken != "" {
		r.APIToken = redacted
	}
	if r.PrivateKeyPEM != "" {
		r.PrivateKeyPEM = redacted
	}
	r.GroupIDs = append([]string(nil), c.GroupIDs...)
	return r
}

// LogValue keeps secrets out of slog output.
func (c Config) LogValue() slog.Value {
	auth := "none"
	switch {
	case c.APIToken != "":
		auth = "api_token"
	case c.ClientID != "":
		auth = "service_app"
	}
	return slog.GroupValue(
		slog.String("org_url", c.OrgURL),
		slog.String("auth", auth),
		slog.String("client_id", c.ClientID),
		slog.String("app_id", c.AppID),
		slog.Any("group_ids", c.GroupIDs),
	)
}

// ConfigError lists every problem Validate found.
type ConfigError = connectors.ConfigError

// Validate reports every problem at once, each saying what to do. Error
// texts never contain a secret.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if strings.TrimSpace(c.OrgURL) == "" {
		add("org_url: missing; set it to your Okta org's address, e.g. https://acme.okta.com")
	} else if _, err := parseOrgURL(c.OrgURL); err != nil {
		add("org_url %q: %v", c.OrgURL, err)
	}

	hasToken, hasApp := c.APIToken != "", c.ClientID != "" || c.PrivateKeyPEM != ""
	switch {
	case !hasToken && !hasApp:
		add("credentials: missing; give api_token (an Okta API token) or client_id with private_key_pem (an OAuth service app using private_key_jwt)")
	case hasToken && hasApp:
		add("credentials: give either api_token or client_id with private_key_pem, not both")
	case hasToken:
		if strings.HasPrefix(strings.ToUpper(c.APIToken), "SSWS ") {
			add("api_token: give the token alone, without the \"SSWS \" prefix")
		} else if strings.ContainsAny(c.APIToken, " \t\r\n") {
			add("api_token: contains white space; paste the token exactly as Okta showed it")
		}
	default:
		if strings.TrimSpace(c.ClientID) == "" {
			add("client_id: missing while private_key_pem is set; copy the service app's client ID (Applications > the app > General)")
		} else if !isID(c.ClientID, "0oa") {
			add("client_id %q: not an Okta client id (they look like 0oa1bcdefGHIJKLmnop2); copy it from the service app's General tab", c.ClientID)
		}
		if c.PrivateKeyPEM == "" {
			add("private_key_pem: missing for client_id %q; paste the PEM private key whose public key is registered on the service app", c.ClientID)
		} else if _, err := parsePrivateKey(c.PrivateKeyPEM); err != nil {
			add("private_key_pem: %v", err)
		}
	}

	if c.AppID != "" && len(c.GroupIDs) > 0 {
		add("app_id and group_ids: give one of them (people assigned to the app, or members of the groups), not both")
	}
	if c.AppID != "" && !isID(c.AppID, "0oa") {
		add("app_id %q: not an Okta application id (they look like 0oa1bcdefGHIJKLmnop2); copy it from the app's address in the Admin Console", c.AppID)
	}
	seen := map[string]bool{}
	for _, g := range c.GroupIDs {
		switch {
		case !isID(g, "00g"):
			add("group_ids: %q is not an Okta group id (they look like 00g1emaKYZTWRYYRRTSK); copy it from the group's address in the Admin Console", g)
		case seen[g]:
			add("group_ids: %q is listed twice; list each group once", g)
		}
		seen[g] = true
	}
	errs = append(errs, c.PollSettings.Problems()...)
	if len(errs) == 0 {
		return nil
	}
	return &ConfigError{Source: "okta config", Problems: errs}
}

// parseOrgURL checks an org URL: https://, or http:// for a loopback host,
// and nothing but scheme and host.
func parseOrgURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("not a URL; write it like https://acme.okta.com")
	}
	if err := connectors.CheckScheme(u); err != nil {
		return nil, err
	}
	if u.User != nil {
		return nil, fmt.Errorf("holds a user name or password; give only the address and put the credentials in api_token or client_id/private_key_pem")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("give only the org's address, without a path or query, e.g. https://acme.okta.com")
	}
	if host := strings.ToLower(u.Hostname()); strings.Contains(host, "-admin.") {
		return nil, fmt.Errorf("that is the Admin Console's address; use the org URL without -admin, e.g. https://acme.okta.com")
	}
	return &url.URL{Scheme: strings.ToLower(u.Scheme), Host: u.Host}, nil
}

// isID reports whether s looks like an Okta object id with the prefix Okta
// gives that kind of object.
func isID(s, prefix string) bool {
	if len(s) < len(prefix)+4 || len(s) > 64 || !strings.HasPrefix(s, prefix) {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// parsePrivateKey reads an RSA private key in PEM (PKCS #1 or PKCS #8). Its
// errors never quote the key.
func parsePrivateKey(s string) (*rsa.PrivateKey, error) {
	b, _ := pem.Decode([]byte(strings.TrimSpace(s)))
	if b == nil {
		return nil, fmt.Errorf("no PEM block found; paste the key including its -----BEGIN PRIVATE KEY----- and -----END PRIVATE KEY----- lines")
	}
	if strings.Contains(b.Type, "ENCRYPTED") || b.Headers["Proc-Type"] != "" {
		return nil, fmt.Errorf("the key is encrypted; give it unencrypted (openssl pkcs8 -topk8 -nocrypt)")
	}
	var key *rsa.PrivateKey
	switch b.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("not a readable PKCS #1 RSA key; export it again as PEM")
		}
		key = k
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("not a readable PKCS #8 key; export it again as PEM")
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("not an RSA key; roster signs its client assertion with RS256, so register an RSA key on the service app")
		}
		key = rk
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key; give the PRIVATE KEY block", b.Type)
	}
	if key.N.BitLen() < 2048 {
		return nil, fmt.Errorf("RSA key of %d bits; Okta needs 2048 bits or more", key.N.BitLen())
	}
	return key, nil
}
