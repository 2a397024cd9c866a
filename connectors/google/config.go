package google

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"net/url"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/roster-dev/roster/connectors"
)

// Defaults and fixed values.
const (
	// DefaultAPIURL is the Admin SDK's root; paths /admin/directory/v1/...
	// are added to it (an api_url that already ends in /admin/directory/v1
	// is accepted too).
	DefaultAPIURL = "https://admin.googleapis.com"
	// DefaultTokenURL is Google's OAuth 2.0 token endpoint, used when
	// neither token_url nor the key file's token_uri says otherwise.
	DefaultTokenURL = "https://oauth2.googleapis.com/token"
	// DefaultCustomer is the alias of the account the admin belongs to.
	DefaultCustomer = "my_customer"

	directoryPath = "/admin/directory/v1"
	redacted      = "(redacted)"
)

// Scopes roster asks for: read-only, users and groups (members.list is
// covered by the group scope).
const (
	ScopeUserReadonly  = "https://www.googleapis.com/auth/admin.directory.user.readonly"
	ScopeGroupReadonly = "https://www.googleapis.com/auth/admin.directory.group.readonly"
)

// Scopes is what the Admin console's domain-wide delegation must grant the
// service account's client ID.
var Scopes = []string{ScopeUserReadonly, ScopeGroupReadonly}

// Type registers the google directory type with the core.
var Type = connectors.Type{NewConfig: func() connectors.Config { return &Config{} }}

// Config is one Google Workspace directory as an admin configures it (the
// admin API body {"type":"google","google":{...}}).
type Config struct {
	// ServiceAccountJSON is the service account's JSON key file, given as a
	// string or as the JSON object itself. It is a secret.
	ServiceAccountJSON ServiceAccountKey `json:"service_account_json,omitempty" yaml:"service_account_json,omitempty"`
	// AdminEmail is the admin the service account acts as through
	// domain-wide delegation.
	AdminEmail string `json:"admin_email,omitempty" yaml:"admin_email,omitempty"`
	// Customer is the account's customer ID, default my_customer. Domain,
	// instead, lists only the users and groups of one domain.
	Customer string `json:"customer,omitempty" yaml:"customer,omitempty"`
	Domain   string `json:"domain,omitempty" yaml:"domain,omitempty"`
	// GroupKeys, when set, limits the roster to the members of these groups
	// (by email, alias or ID), through nested groups.
	GroupKeys []string `json:"group_keys,omitempty" yaml:"group_keys,omitempty"`
	// APIURL and TokenURL override Google's endpoints, for tests and
	// proxies.
	APIURL   string `json:"api_url,omitempty" yaml:"api_url,omitempty"`
	TokenURL string `json:"token_url,omitempty" yaml:"token_url,omitempty"`

	connectors.PollSettings `yaml:",inline"`
}

var _ connectors.Config = (*Config)(nil)

// ServiceAccountKey is a key file's JSON. It decodes from a JSON string
// holding the file, or from the file's object itself, and encodes as a
// string.
type ServiceAccountKey string

// UnmarshalJSON accepts "{...}" (a string) or {...} (an object).
func (k *ServiceAccountKey) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*k = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return errors.New("service_account_json: not a JSON string")
		}
		*k = ServiceAccountKey(s)
	case len(b) > 0 && b[0] == '{':
		var buf bytes.Buffer
		if err := json.Compact(&buf, b); err != nil {
			return errors.New("service_account_json: not a JSON object")
		}
		*k = ServiceAccountKey(buf.String())
	default:
		// The value itself is left out of the error: it may be key material.
		return errors.New("service_account_json: give the key file as a JSON object or as a string holding it")
	}
	return nil
}

// UnmarshalYAML accepts the key file as a string (a block scalar) or as a
// mapping.
func (k *ServiceAccountKey) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*k = ServiceAccountKey(n.Value)
		return nil
	case yaml.MappingNode:
		var m map[string]any
		if err := n.Decode(&m); err != nil {
			return errors.New("service_account_json: not a mapping of strings")
		}
		b, err := json.Marshal(m)
		if err != nil {
			return errors.New("service_account_json: not a mapping of strings")
		}
		*k = ServiceAccountKey(b)
		return nil
	}
	return errors.New("service_account_json: give the key file as a mapping or as a string holding its JSON")
}

// keyFile is the part of a service account key file roster uses.
type keyFile struct {
	Type         string `json:"type"`
	ClientEmail  string `json:"client_email"`
	ClientID     string `json:"client_id"`
	PrivateKey   string `json:"private_key"`
	PrivateKeyID string `json:"private_key_id"`
	TokenURI     string `json:"token_uri"`
}

// parse reads the key file and checks it; problems never quote key
// material.
func (k ServiceAccountKey) parse() (keyFile, []error) {
	var kf keyFile
	var errs []error
	if strings.TrimSpace(string(k)) == "" {
		return kf, []error{errors.New("service_account_json: missing; create a JSON key for the service account (Google Cloud console → IAM & Admin → Service accounts → Keys → Add key → JSON) and paste the file")}
	}
	if err := json.Unmarshal([]byte(k), &kf); err != nil {
		return kf, []error{errors.New("service_account_json: not a JSON key file; paste the whole file the Cloud console downloaded")}
	}
	if kf.Type != "service_account" {
		errs = append(errs, fmt.Errorf("service_account_json: type is %q, not \"service_account\"; use a service account's key file, not an OAuth client's", kf.Type))
	}
	if kf.ClientEmail == "" {
		errs = append(errs, errors.New("service_account_json: client_email missing; paste the whole key file"))
	}
	if kf.PrivateKey == "" {
		errs = append(errs, errors.New("service_account_json: private_key missing; paste the whole key file"))
	} else if _, err := parseRSAKey(kf.PrivateKey); err != nil {
		errs = append(errs, fmt.Errorf("service_account_json: private_key %v; paste the key file unchanged (the PEM block with its \\n line breaks)", err))
	}
	if kf.TokenURI != "" {
		if err := checkURL(kf.TokenURI); err != nil {
			errs = append(errs, fmt.Errorf("service_account_json: token_uri %v", err))
		}
	}
	return kf, errs
}

// parseRSAKey reads a PEM RSA key (PKCS #8, as Google issues them, or
// PKCS #1). Its errors name no key material.
func parseRSAKey(p string) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(p))
	if block == nil {
		return nil, errors.New("is not PEM")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, errors.New("is not an RSA key")
		}
		return rk, nil
	}
	if rk, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return rk, nil
	}
	return nil, errors.New("is not a PKCS #8 or PKCS #1 RSA key")
}

// checkURL allows https://, and http:// only to a loopback host.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not a URL; write it like https://admin.googleapis.com", raw)
	}
	shown := u.Redacted()
	if u.User != nil {
		return fmt.Errorf("%q carries credentials; leave them out of the URL", shown)
	}
	if err := connectors.CheckScheme(u); err != nil {
		return fmt.Errorf("%q: %w", shown, err)
	}
	return nil
}

// Validate reports every problem at once, each saying what to do.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	_, keyErrs := c.ServiceAccountJSON.parse()
	errs = append(errs, keyErrs...)

	if strings.TrimSpace(c.AdminEmail) == "" {
		add("admin_email: missing; give the email of a Google Workspace admin the service account acts as (domain-wide delegation), e.g. admin@example.com")
	} else if a, err := mail.ParseAddress(c.AdminEmail); err != nil || a.Address != strings.TrimSpace(c.AdminEmail) || !strings.Contains(a.Address, "@") {
		add("admin_email %q: not an email address; give the admin's primary email, e.g. admin@example.com", c.AdminEmail)
	}
	if c.Customer != "" && c.Domain != "" {
		add("customer and domain: give one, not both; customer (default my_customer) lists the whole account, domain only one of its domains")
	}
	if c.Customer != "" && !validCustomer(c.Customer) {
		add("customer %q: use my_customer or the customer ID from the Admin console (Account → Account settings), e.g. C03az79cb", c.Customer)
	}
	if c.Domain != "" && !validDomain(c.Domain) {
		add("domain %q: not a domain name; give one of the account's domains, e.g. example.com", c.Domain)
	}
	seen := map[string]bool{}
	for i, k := range c.GroupKeys {
		k = strings.TrimSpace(k)
		switch {
		case k == "":
			add("group_keys[%d]: empty; give a group's email, alias or ID, or remove the entry", i)
		case seen[strings.ToLower(k)]:
			add("group_keys[%d]: %q is listed twice; remove one", i, k)
		case strings.ContainsAny(k, "/?#% "):
			add("group_keys[%d]: %q is not a group email, alias or ID", i, k)
		}
		seen[strings.ToLower(k)] = true
	}
	if c.APIURL != "" {
		if err := checkURL(c.APIURL); err != nil {
			add("api_url: %v", err)
		}
	}
	if c.TokenURL != "" {
		if err := checkURL(c.TokenURL); err != nil {
			add("token_url: %v", err)
		}
	}
	errs = append(errs, c.PollSettings.Problems()...)
	if len(errs) == 0 {
		return nil
	}
	return &ConfigError{Source: "google config", Problems: errs}
}

func validCustomer(s string) bool {
	if s == DefaultCustomer {
		return true
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

func validDomain(s string) bool {
	if len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// ConfigError lists every problem Validate found.
type ConfigError = connectors.ConfigError

// Polling returns the settings every polled source shares.
func (c *Config) Polling() connectors.PollSettings { return c.PollSettings }

// Redacted returns a copy of the settings without the key file ("(redacted)"
// when one is set), fit for API answers, events and logs.
func (c *Config) Redacted() any {
	cp := *c
	if cp.ServiceAccountJSON != "" {
		cp.ServiceAccountJSON = redacted
	}
	cp.GroupKeys = append([]string(nil), c.GroupKeys...)
	return &cp
}

// LogValue keeps the key file out of slog output; the service account is
// shown by its client_email, which is not secret.
func (c Config) LogValue() slog.Value {
	kf, _ := c.ServiceAccountJSON.parse()
	return slog.GroupValue(
		slog.String("client_email", kf.ClientEmail),
		slog.String("admin_email", c.AdminEmail),
		slog.String("customer", c.customer()),
		slog.String("domain", c.Domain),
		slog.Any("group_keys", c.GroupKeys),
		slog.String("api_url", c.apiURL()),
		slog.String("schedule", c.ScheduleSpec()),
	)
}

// LogValue keeps a key file out of slog output wherever it is logged alone.
func (k ServiceAccountKey) LogValue() slog.Value {
	if k == "" {
		return slog.StringValue("")
	}
	return slog.StringValue(redacted)
}

// String keeps a key file out of fmt output.
func (k ServiceAccountKey) String() string { return k.LogValue().String() }

func (c *Config) customer() string {
	if c.Domain != "" {
		return ""
	}
	if c.Customer == "" {
		return DefaultCustomer
	}
	return c.Customer
}

// apiURL is the API root, without a trailing /admin/directory/v1.
func (c *Config) apiURL() string {
	u := strings.TrimRight(c.APIURL, "/")
	if u == "" {
		return DefaultAPIURL
	}
	return strings.TrimSuffix(u, directoryPath)
}

func (c *Config) tokenURL(kf keyFile) string {
	switch {
	case c.TokenURL != "":
		return c.TokenURL
	case kf.TokenURI != "":
		return kf.TokenURI
	}
	return DefaultTokenURL
}

// Open checks the settings and makes the source. It does not call Google;
// Check does.
func (c *Config) Open(ctx context.Context, log *slog.Logger) (connectors.Source, error) {
	return New(*c, log)
}
