// Package ldap polls an Active Directory or OpenLDAP directory and lists its
// users and groups for roster (a connectors.DeltaSource). It knows only the
// connectors contract: the poller decides when to list everything, and
// enforces the deletion guard.
//
// It reads only: paged searches (streamed, page by page), range retrieval of
// large member attributes, and incremental polls with DirSync or uSNChanged
// (Active Directory) and RFC 4533 sync (OpenLDAP) or modifyTimestamp. Any
// failed page, range or connection makes the whole poll fail: a partial
// listing is never returned as if it were complete.
package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/roster-dev/roster/connectors"
)

// Flavors of directory server.
const (
	FlavorActiveDirectory = "active_directory"
	FlavorOpenLDAP        = "openldap"
)

// Defaults of the LDAP settings; those every polled source shares
// (schedule, deletion guard, full sync) are in package connectors.
const (
	DefaultPageSize = 500
	DefaultTimeout  = 30 * time.Second
)

// Config is one LDAP / Active Directory connection as an admin configures it
// (YAML file or the admin API body {"type":"ldap","ldap":{...}}).
type Config struct {
	// URL is one server, e.g. ldaps://dc1.corp.example:636. URLs lists
	// several, tried in order (domain controller failover). Either may be
	// given; URL comes first.
	URL  string   `json:"url,omitempty" yaml:"url,omitempty"`
	URLs []string `json:"urls,omitempty" yaml:"urls,omitempty"`

	BindDN       string `json:"bind_dn,omitempty" yaml:"bind_dn,omitempty"`
	BindPassword string `json:"bind_password,omitempty" yaml:"bind_password,omitempty"`

	BaseDN      string `json:"base_dn" yaml:"base_dn"`
	UserFilter  string `json:"user_filter,omitempty" yaml:"user_filter,omitempty"`
	GroupFilter string `json:"group_filter,omitempty" yaml:"group_filter,omitempty"`

	// Flavor is active_directory or openldap; empty means detect it from the
	// root DSE.
	Flavor string `json:"flavor,omitempty" yaml:"flavor,omitempty"`

	// StartTLS upgrades an ldap:// connection with the StartTLS operation.
	StartTLS bool `json:"start_tls,omitempty" yaml:"start_tls,omitempty"`
	// CACert is a PEM bundle of CAs to trust instead of the system pool.
	CACert string `json:"ca_cert,omitempty" yaml:"ca_cert,omitempty"`
	// ClientCert and ClientKey (PEM) authenticate the client over TLS.
	ClientCert string `json:"client_cert,omitempty" yaml:"client_cert,omitempty"`
	ClientKey  string `json:"client_key,omitempty" yaml:"client_key,omitempty"`
	// InsecureSkipVerify turns off server certificate checks. For tests only:
	// it makes TLS useless against an attacker.
	InsecureSkipVerify bool `json:"insecure_skip_verify,omitempty" yaml:"insecure_skip_verify,omitempty"`

	// Timeout bounds dialing and each LDAP operation (default 30s).
	Timeout connectors.Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	// PageSize is the paged-results page size (default 500; AD caps it at
	// 1000).
	PageSize int `json:"page_size,omitempty" yaml:"page_size,omitempty"`

	// Attributes overrides attribute names.
	Attributes Attributes `json:"attributes,omitempty" yaml:"attributes,omitempty"`

	// NestedGroups, when true (the default), lists groups that are members
	// of groups as members; false drops group members.
	NestedGroups *bool `json:"nested_groups,omitempty" yaml:"nested_groups,omitempty"`

	// PollSettings are schedule, deletion_guard and full_sync_every, which
	// sit beside the fields above in JSON and YAML. The scheduler and the
	// poller read them; this package only validates them. A full listing
	// finds the deletions and the entries that left the filters which
	// incremental polls (uSNChanged in particular) cannot see.
	connectors.PollSettings `yaml:",inline"`
}

// Attributes names the directory attributes roster reads. Empty fields take
// the flavor's default (shown as AD / OpenLDAP).
type Attributes struct {
	ID          string `json:"id,omitempty" yaml:"id,omitempty"`                     // objectGUID / entryUUID
	Username    string `json:"username,omitempty" yaml:"username,omitempty"`         // sAMAccountName / uid
	Email       string `json:"email,omitempty" yaml:"email,omitempty"`               // mail
	GivenName   string `json:"given_name,omitempty" yaml:"given_name,omitempty"`     // givenName
	FamilyName  string `json:"family_name,omitempty" yaml:"family_name,omitempty"`   // sn
	DisplayName string `json:"display_name,omitempty" yaml:"display_name,omitempty"` // displayName (then cn)
	GroupName   string `json:"group_name,omitempty" yaml:"group_name,omitempty"`     // cn
	// Member is the group's member attribute; default member (AD) and
	// member + uniqueMember (OpenLDAP).
	Member string `json:"member,omitempty" yaml:"member,omitempty"`
}

// ServerURLs returns URL then URLs, without duplicates.
func (c *Config) ServerURLs() []string {
	var out []string
	seen := map[string]bool{}
	for _, u := range append([]string{c.URL}, c.URLs...) {
		u = strings.TrimSpace(u)
		if u == "" || seen[u] {
			continue
		}
		seen[u] = true
		out = append(out, u)
	}
	return out
}

// Redacted returns a copy (a Config) without the bind password and the
// client key, fit for API answers and logs. A redacted secret reads
// "(redacted)" so callers can show that one is set.
func (c Config) Redacted() any {
	if c.BindPassword != "" {
		c.BindPassword = redacted
	}
	if c.ClientKey != "" {
		c.ClientKey = redacted
	}
	c.URLs = append([]string(nil), c.URLs...)
	return c
}

const redacted = "(redacted)"

// LogValue keeps secrets out of slog output.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Any("urls", c.ServerURLs()),
		slog.String("bind_dn", c.BindDN),
		slog.String("base_dn", c.BaseDN),
		slog.String("flavor", c.Flavor),
	)
}

func (c *Config) pageSize() int {
	if c.PageSize <= 0 {
		return DefaultPageSize
	}
	return c.PageSize
}

func (c *Config) timeout() time.Duration {
	if c.Timeout <= 0 {
		return DefaultTimeout
	}
	return c.Timeout.D()
}

func (c *Config) nestedGroups() bool { return c.NestedGroups == nil || *c.NestedGroups }

// Validate checks the configuration and reports every problem at once, each
// with what to do about it.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	urls := c.ServerURLs()
	if len(urls) == 0 {
		add("url: missing; set url (or urls) to the directory, e.g. ldaps://dc1.example.com:636")
	}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			add("url %q: not a URL; write it like ldap://host:389 or ldaps://host:636", raw)
			continue
		}
		switch strings.ToLower(u.Scheme) {
		case "ldap":
		case "ldaps":
			if c.StartTLS {
				add("url %q: start_tls is for ldap:// URLs; use ldap:// with start_tls, or ldaps:// without it", raw)
			}
		default:
			add("url %q: scheme %q is not supported; use ldap:// (with start_tls) or ldaps://", raw, u.Scheme)
		}
	}
	if c.BindDN == "" && c.BindPassword != "" {
		add("bind_dn: missing while bind_password is set; set the service account's DN")
	}
	if c.BindDN != "" && c.BindPassword == "" {
		add("bind_password: missing for bind_dn %q; set the service account's password", c.BindDN)
	}
	if c.BindDN != "" && !looksLikeBindName(c.BindDN) {
		add("bind_dn %q: not a DN (or user@domain); write it like CN=svc-roster,OU=Service,DC=example,DC=com", c.BindDN)
	}
	if strings.TrimSpace(c.BaseDN) == "" {
		add("base_dn: missing; set the subtree to read, e.g. DC=example,DC=com or OU=People,DC=example,DC=com")
	} else if _, err := goldap.ParseDN(c.BaseDN); err != nil {
		add("base_dn %q: not a DN (%v); write it like OU=People,DC=example,DC=com", c.BaseDN, err)
	}
	for name, f := range map[string]string{"user_filter": c.UserFilter, "group_filter": c.GroupFilter} {
		if f == "" {
			continue
		}
		if _, err := goldap.CompileFilter(f); err != nil {
			add("%s %q: not an LDAP filter (%v); write it like (objectClass=person) with balanced parentheses", name, f, err)
		}
	}
	switch c.Flavor {
	case "", FlavorActiveDirectory, FlavorOpenLDAP:
	default:
		add("flavor %q: unknown; use %q, %q, or leave it empty to detect it", c.Flavor, FlavorActiveDirectory, FlavorOpenLDAP)
	}
	if c.CACert != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(c.CACert)) {
			add("ca_cert: no PEM certificate found; paste the CA certificate(s) including the BEGIN/END CERTIFICATE lines")
		}
	}
	if (c.ClientCert == "") != (c.ClientKey == "") {
		add("client_cert/client_key: give both or neither")
	} else if c.ClientCert != "" {
		if _, err := tls.X509KeyPair([]byte(c.ClientCert), []byte(c.ClientKey)); err != nil {
			// The error text of X509KeyPair never contains key material.
			add("client_cert/client_key: unusable (%v); give a PEM certificate and its matching PEM private key", err)
		} else if b, _ := pem.Decode([]byte(c.ClientCert)); b == nil {
			add("client_cert: not PEM")
		}
	}
	if c.Timeout < 0 {
		add("timeout: negative; use e.g. 30s")
	}
	if c.PageSize < 0 {
		add("page_size %d: negative; use e.g. 500 (Active Directory serves at most 1000)", c.PageSize)
	}
	a := c.Attributes
	for name, v := range map[string]string{"id": a.ID, "username": a.Username, "email": a.Email, "given_name": a.GivenName,
		"family_name": a.FamilyName, "display_name": a.DisplayName, "group_name": a.GroupName, "member": a.Member} {
		if v != "" && !validAttrName(v) {
			add("attributes.%s %q: not an attribute name; use a name like mail or an OID", name, v)
		}
	}
	errs = append(errs, c.Problems()...)
	if len(errs) == 0 {
		return nil
	}
	return &ConfigError{Source: "ldap config", Problems: errs}
}

// ConfigError lists every problem Validate found.
type ConfigError = connectors.ConfigError

func looksLikeBindName(s string) bool {
	if _, err := goldap.ParseDN(s); err == nil && strings.Contains(s, "=") {
		return true
	}
	// AD also binds with user@domain or DOMAIN\user.
	return strings.Contains(s, "@") || strings.Contains(s, `\`)
}

func validAttrName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case (r >= '0' && r <= '9' || r == '-' || r == '.') && i > 0:
		case r >= '0' && r <= '9':
		default:
			return false
		}
	}
	return true
}

var errNoServer = errors.New("ldap: no server could be reached")

// Polling returns the settings every polled source shares.
func (c *Config) Polling() connectors.PollSettings { return c.PollSettings }

// Open connects the source (see the package function Open).
func (c *Config) Open(ctx context.Context, log *slog.Logger) (connectors.Source, error) {
	s, err := Open(ctx, *c, log)
	if err != nil {
		return nil, err // not a nil *Source in a non-nil interface
	}
	return s, nil
}

var _ connectors.Config = (*Config)(nil)
