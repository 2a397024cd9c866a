// Package msgraph polls Microsoft Entra ID (Azure AD) through Microsoft
// Graph and lists its users and groups for roster's core
// (connectors.Source, connectors.DeltaSource, connectors.Checker,
// connectors.Meter).
//
// A full listing is one round of users/delta and one of groups/delta (with
// $select, members included), read at the same time; the delta links that
// end the rounds are the cursor. An incremental poll follows those links
// and re-reads, in one $batch, the complete member list of every group the
// round names, because Graph gives only the members that changed. A delta
// link Graph no longer knows (410 Gone, syncStateNotFound, resyncRequired)
// is connectors.ErrResync. With group_ids, only users who are members of
// those groups, directly or through nested groups, are listed (see
// scope.go).
//
// Authentication is the OAuth2 client credentials grant against
// {login_url}/{tenant_id}/oauth2/v2.0/token, with a client secret or a
// certificate (a signed client assertion). The application needs the
// Microsoft Graph application permissions User.Read.All and
// GroupMember.Read.All, with admin consent.
package msgraph

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"

	"github.com/roster-dev/roster/connectors"
)

// Defaults of the URL settings.
const (
	DefaultGraphURL = "https://graph.microsoft.com"
	DefaultLoginURL = "https://login.microsoftonline.com"
)

// Type registers the connector with the core.
var Type = connectors.Type{NewConfig: func() connectors.Config { return &Config{} }}

// Config is one Entra ID directory as an admin configures it (the admin API
// body {"type": "msgraph", "msgraph": {...}} or the YAML file).
type Config struct {
	// TenantID is the Directory (tenant) ID, a GUID, or a verified domain
	// such as contoso.onmicrosoft.com.
	TenantID string `json:"tenant_id" yaml:"tenant_id"`
	// ClientID is the app registration's Application (client) ID.
	ClientID string `json:"client_id" yaml:"client_id"`
	// ClientSecret is a client secret's value. Give it, or a certificate.
	ClientSecret string `json:"client_secret,omitempty" yaml:"client_secret,omitempty"`
	// ClientCertificatePEM is a certificate uploaded to the app registration
	// and ClientKeyPEM its RSA private key (PKCS#1 or PKCS#8 PEM).
	ClientCertificatePEM string `json:"client_certificate_pem,omitempty" yaml:"client_certificate_pem,omitempty"`
	ClientKeyPEM         string `json:"client_key_pem,omitempty" yaml:"client_key_pem,omitempty"`
	// GroupIDs, when set, limits the directory to the users who are members
	// of these groups (object ids), directly or through nested groups.
	GroupIDs []string `json:"group_ids,omitempty" yaml:"group_ids,omitempty"`
	// GraphURL and LoginURL override https://graph.microsoft.com and
	// https://login.microsoftonline.com (national clouds, proxies, tests).
	GraphURL string `json:"graph_url,omitempty" yaml:"graph_url,omitempty"`
	LoginURL string `json:"login_url,omitempty" yaml:"login_url,omitempty"`

	connectors.PollSettings `yaml:",inline"`
}

const redacted = "(redacted)"

// Polling returns the settings every polled source shares.
func (c *Config) Polling() connectors.PollSettings { return c.PollSettings }

// Redacted returns a copy without the client secret and the private key. A
// redacted secret reads "(redacted)" so callers can show that one is set.
// The certificate is public and kept.
func (c *Config) Redacted() any {
	r := *c
	if r.ClientSecret != "" {
		r.ClientSecret = redacted
	}
	if r.ClientKeyPEM != "" {
		r.ClientKeyPEM = redacted
	}
	r.GroupIDs = append([]string(nil), c.GroupIDs...)
	return &r
}

// auth names the credential kind, for logs.
func (c *Config) auth() string {
	switch {
	case c.ClientSecret != "" && c.ClientCertificatePEM == "":
		return "client_secret"
	case c.ClientCertificatePEM != "" && c.ClientSecret == "":
		return "certificate"
	case c.ClientSecret != "":
		return "client_secret and certificate"
	}
	return "none"
}

// LogValue keeps secrets out of slog output.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("tenant_id", c.TenantID),
		slog.String("client_id", c.ClientID),
		slog.String("auth", c.auth()),
		slog.Int("group_ids", len(c.GroupIDs)),
		slog.String("graph_url", c.graphURL()),
		slog.String("login_url", c.loginURL()),
	)
}

// String keeps secrets out of fmt's %v and %s.
func (c Config) String() string {
	return fmt.Sprintf("msgraph{tenant_id=%s client_id=%s auth=%s group_ids=%d graph_url=%s login_url=%s}",
		c.TenantID, c.ClientID, c.auth(), len(c.GroupIDs), c.graphURL(), c.loginURL())
}

// GoString keeps secrets out of fmt's %#v.
func (c Config) GoString() string { return c.String() }

func (c *Config) graphURL() string {
	u := strings.TrimRight(strings.TrimSpace(c.GraphURL), "/")
	if u == "" {
		return DefaultGraphURL
	}
	// Accept a URL given with the API version.
	return strings.TrimSuffix(u, "/v1.0")
}

func (c *Config) loginURL() string {
	u := strings.TrimRight(strings.TrimSpace(c.LoginURL), "/")
	if u == "" {
		return DefaultLoginURL
	}
	return u
}

// tokenURL is the tenant's OAuth2 v2.0 token endpoint.
func (c *Config) tokenURL() string {
	return c.loginURL() + "/" + url.PathEscape(strings.TrimSpace(c.TenantID)) + "/oauth2/v2.0/token"
}

// scope asks for every application permission granted on Graph.
func (c *Config) scope() string { return c.graphURL() + "/.default" }

var (
	reGUID   = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	reDomain = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$`)
)

// Validate checks the settings and reports every problem at once, each
// with what to do about it. Error texts never hold a secret.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	switch t := strings.TrimSpace(c.TenantID); {
	case t == "":
		add("tenant_id: missing; set the Directory (tenant) ID from the app registration's Overview page in the Entra admin center")
	case strings.EqualFold(t, "common") || strings.EqualFold(t, "organizations") || strings.EqualFold(t, "consumers"):
		add("tenant_id %q: an application token needs one tenant; give the Directory (tenant) ID (a GUID) instead", t)
	case !reGUID.MatchString(t) && !reDomain.MatchString(t):
		add("tenant_id %q: not a GUID or a domain; give the Directory (tenant) ID, like 72f988bf-86f1-41af-91ab-2d7cd011db47", t)
	}
	switch id := strings.TrimSpace(c.ClientID); {
	case id == "":
		add("client_id: missing; set the Application (client) ID from the app registration's Overview page")
	case !reGUID.MatchString(id):
		add("client_id %q: not a GUID; give the Application (client) ID, not the app's name or object ID", id)
	}

	hasCert, hasKey := strings.TrimSpace(c.ClientCertificatePEM) != "", strings.TrimSpace(c.ClientKeyPEM) != ""
	switch {
	case c.ClientSecret != "" && (hasCert || hasKey):
		add("client_secret and client_certificate_pem: give one credential, the client secret or the certificate with its key, not both")
	case c.ClientSecret == "" && !hasCert && !hasKey:
		add("client_secret: missing; give a client secret's Value (Certificates & secrets), or client_certificate_pem and client_key_pem")
	case hasCert && !hasKey:
		add("client_key_pem: missing; give the private key of client_certificate_pem in PEM")
	case hasKey && !hasCert:
		add("client_certificate_pem: missing; give the certificate uploaded to the app registration, in PEM, with client_key_pem")
	case hasCert && hasKey:
		if _, err := parseCertificate(c.ClientCertificatePEM, c.ClientKeyPEM); err != nil {
			errs = append(errs, err)
		}
	}
	if strings.TrimSpace(c.ClientSecret) != c.ClientSecret && c.ClientSecret != "" {
		add("client_secret: has spaces or line breaks around it; paste the secret's Value exactly")
	}

	seen := map[string]bool{}
	for i, g := range c.GroupIDs {
		g = strings.TrimSpace(g)
		switch {
		case g == "":
			add("group_ids[%d]: empty; give each group's Object ID", i)
		case !reGUID.MatchString(g):
			add("group_ids[%d] %q: not an Object ID (a GUID); copy it from the group's Overview page", i, g)
		case seen[strings.ToLower(g)]:
			add("group_ids[%d] %q: listed twice; give each group once", i, g)
		}
		seen[strings.ToLower(g)] = true
	}

	if err := checkURL("graph_url", c.GraphURL); err != nil {
		errs = append(errs, err)
	}
	if err := checkURL("login_url", c.LoginURL); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.PollSettings.Problems()...)
	if len(errs) == 0 {
		return nil
	}
	return &ConfigError{Source: "msgraph settings", Problems: errs}
}

// ConfigError lists every problem Validate found.
type ConfigError = connectors.ConfigError

// checkURL accepts https:// URLs, and http:// ones only for loopback hosts,
// so a token never crosses a network in the clear.
func checkURL(field, raw string) error {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%s %q: not a URL; write it like https://graph.microsoft.us", field, raw)
	}
	if u.User != nil {
		return fmt.Errorf("%s: must not hold a user name or password; remove the part before @", field)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%s %q: must not have a query or fragment; give the root URL only", field, raw)
	}
	if err := connectors.CheckScheme(u); err != nil {
		return fmt.Errorf("%s %q: %w", field, raw, err)
	}
	return nil
}

// certificate is a parsed client certificate and its key.
type certificate struct {
	cert *x509.Certificate
	key  *rsa.PrivateKey
}

// parseCertificate reads the certificate (the first one whose public key
// matches the key, so a chain may follow it) and its RSA key. Its errors
// never quote key material.
func parseCertificate(certPEM, keyPEM string) (*certificate, error) {
	var certs []*x509.Certificate
	rest := []byte(certPEM)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("client_certificate_pem: unreadable certificate (%v); give the PEM certificate (BEGIN CERTIFICATE) uploaded to the app registration", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("client_certificate_pem: no PEM certificate found; paste it with its BEGIN CERTIFICATE and END CERTIFICATE lines")
	}
	key, err := parseRSAKey(keyPEM)
	if err != nil {
		return nil, err
	}
	for _, c := range certs {
		if pub, ok := c.PublicKey.(*rsa.PublicKey); ok && pub.Equal(&key.PublicKey) {
			return &certificate{cert: c, key: key}, nil
		}
	}
	return nil, errors.New("client_key_pem: does not match client_certificate_pem; give the private key of that certificate")
}

func parseRSAKey(keyPEM string) (*rsa.PrivateKey, error) {
	rest := []byte(keyPEM)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("client_key_pem: no PEM private key found; paste it with its BEGIN PRIVATE KEY (or BEGIN RSA PRIVATE KEY) line, unencrypted")
		}
		switch b.Type {
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(b.Bytes)
			if err != nil {
				return nil, errors.New("client_key_pem: unreadable RSA private key; give it unencrypted in PEM")
			}
			return k, nil
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, errors.New("client_key_pem: unreadable private key; give it unencrypted in PEM")
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, errors.New("client_key_pem: not an RSA key; Entra certificate credentials here need an RSA key")
			}
			return rk, nil
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("client_key_pem: the key is encrypted; give it unencrypted (openssl pkey -in key.pem -out plain.pem)")
		}
	}
}

// Open makes the source; it does not call Graph (Check does).
func (c *Config) Open(ctx context.Context, log *slog.Logger) (connectors.Source, error) {
	return Open(ctx, c, log, Options{})
}
