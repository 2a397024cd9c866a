package google

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/roster-dev/roster/connectors"
	"github.com/roster-dev/roster/connectors/google/googlefake"
)

func validKey(t *testing.T) string {
	k, _ := keys(t)
	return googlefake.KeyJSON("svc@proj.iam.gserviceaccount.com", "1234567890", "kid1", k, "https://oauth2.googleapis.com/token")
}

// keyMaterial is a piece of the PEM body that must never leak.
func keyMaterial(key string) string {
	var kf keyFile
	_ = json.Unmarshal([]byte(key), &kf)
	lines := strings.Split(kf.PrivateKey, "\n")
	return lines[len(lines)/2]
}

func TestValidate(t *testing.T) {
	key := validKey(t)
	withKey := func(mutate func(m map[string]any)) string {
		var m map[string]any
		_ = json.Unmarshal([]byte(key), &m)
		mutate(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	good := Config{ServiceAccountJSON: ServiceAccountKey(key), AdminEmail: "admin@example.com"}
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []string // substrings of the error; none means valid
	}{
		{name: "minimal", mutate: func(c *Config) {}},
		{name: "customer id", mutate: func(c *Config) { c.Customer = "C03az79cb" }},
		{name: "domain", mutate: func(c *Config) { c.Domain = "example.com" }},
		{name: "group keys", mutate: func(c *Config) { c.GroupKeys = []string{"eng@example.com", "03ab12cd"} }},
		{name: "https overrides", mutate: func(c *Config) {
			c.APIURL, c.TokenURL = "https://proxy.example.com/admin/directory/v1", "https://proxy.example.com/token"
		}},
		{name: "http loopback v4", mutate: func(c *Config) { c.APIURL, c.TokenURL = "http://127.0.0.1:8080", "http://127.9.9.9/token" }},
		{name: "http loopback v6 and localhost", mutate: func(c *Config) { c.APIURL, c.TokenURL = "http://[::1]:9000", "http://localhost:9000/token" }},
		{name: "poll settings", mutate: func(c *Config) {
			c.Schedule = "*/10 * * * *"
			n := 0
			c.DeletionGuard.MaxRemovals = &n
		}},
		{name: "empty", mutate: func(c *Config) { *c = Config{} },
			want: []string{"service_account_json: missing", "admin_email: missing"}},
		{name: "http elsewhere", mutate: func(c *Config) { c.APIURL, c.TokenURL = "http://admin.example.com", "http://10.0.0.7/token" },
			want: []string{"api_url", "token_url", "only for loopback hosts"}},
		{name: "http look-alike host", mutate: func(c *Config) { c.APIURL = "http://127.0.0.1.example.com" },
			want: []string{"api_url", "loopback"}},
		{name: "other scheme", mutate: func(c *Config) { c.TokenURL = "ftp://127.0.0.1/token" }, want: []string{"token_url", "scheme"}},
		{name: "credentials in url", mutate: func(c *Config) { c.APIURL = "https://u:pw@proxy.example.com" },
			want: []string{"api_url", "credentials"}},
		{name: "not a url", mutate: func(c *Config) { c.APIURL = "admin.googleapis.com" }, want: []string{"api_url", "not a URL"}},
		{name: "key not json", mutate: func(c *Config) { c.ServiceAccountJSON = "-----BEGIN PRIVATE KEY-----\nabc" },
			want: []string{"service_account_json: not a JSON key file"}},
		{name: "oauth client file", mutate: func(c *Config) {
			c.ServiceAccountJSON = ServiceAccountKey(withKey(func(m map[string]any) { m["type"] = "authorized_user" }))
		}, want: []string{`type is "authorized_user"`}},
		{name: "key without email and broken pem", mutate: func(c *Config) {
			c.ServiceAccountJSON = ServiceAccountKey(withKey(func(m map[string]any) {
				delete(m, "client_email")
				m["private_key"] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
			}))
		}, want: []string{"client_email missing", "private_key is not a PKCS #8 or PKCS #1 RSA key"}},
		{name: "key file token_uri over http", mutate: func(c *Config) {
			c.ServiceAccountJSON = ServiceAccountKey(withKey(func(m map[string]any) { m["token_uri"] = "http://evil.example.com/token" }))
		}, want: []string{"token_uri", "loopback"}},
		{name: "admin not an email", mutate: func(c *Config) { c.AdminEmail = "Admin <admin@example.com>" }, want: []string{"admin_email"}},
		{name: "customer and domain", mutate: func(c *Config) { c.Customer, c.Domain = "my_customer", "example.com" },
			want: []string{"customer and domain: give one"}},
		{name: "bad customer and domain", mutate: func(c *Config) { c.Customer = "my customer!" },
			want: []string{`customer "my customer!"`}},
		{name: "bad domain", mutate: func(c *Config) { c.Domain = "example" }, want: []string{`domain "example"`}},
		{name: "group keys", mutate: func(c *Config) { c.GroupKeys = []string{"a@example.com", " ", "A@example.com", "x/y"} },
			want: []string{"group_keys[1]: empty", "group_keys[2]", "twice", "group_keys[3]"}},
		{name: "poll settings checked", mutate: func(c *Config) {
			c.Schedule = "now and then"
			f := 2.0
			c.DeletionGuard.MaxFraction = &f
		}, want: []string{"schedule", "deletion_guard.max_fraction"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.mutate(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Validate = %v, want a ConfigError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), keyMaterial(key)) || strings.Contains(err.Error(), "BEGIN PRIVATE KEY") {
				t.Errorf("error quotes key material: %v", err)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Config{AdminEmail: "nope", Customer: "x y", Domain: "bad", APIURL: "http://example.com", GroupKeys: []string{""}}
	var ce *ConfigError
	if err := c.Validate(); !errors.As(err, &ce) {
		t.Fatalf("Validate = %v", err)
	}
	// key, admin, customer+domain, customer, domain, api_url, group key
	if len(ce.Problems) != 7 {
		t.Errorf("%d problems, want 7: %v", len(ce.Problems), ce)
	}
}

func TestKeyAsStringOrObject(t *testing.T) {
	key := validKey(t)
	quoted, _ := json.Marshal(key)
	asString := `{"service_account_json": ` + string(quoted) + `, "admin_email": "admin@example.com", "schedule": "@every 10m", "deletion_guard": {"max_removals": 3}, "full_sync_every": "2h"}`
	asObject := `{"service_account_json": ` + key + `, "admin_email": "admin@example.com", "group_keys": ["eng@example.com"]}`
	for name, body := range map[string]string{"string": asString, "object": asObject} {
		t.Run(name, func(t *testing.T) {
			c := Type.NewConfig()
			dec := json.NewDecoder(strings.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(c); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			gc := c.(*Config)
			kf, errs := gc.ServiceAccountJSON.parse()
			if len(errs) > 0 || kf.ClientEmail != "svc@proj.iam.gserviceaccount.com" || kf.PrivateKeyID != "kid1" {
				t.Fatalf("key file = %+v, %v", kf, errs)
			}
		})
	}
	c := Config{}
	if err := json.Unmarshal([]byte(asString), &c); err != nil {
		t.Fatal(err)
	}
	p := c.Polling()
	if p.ScheduleSpec() != "@every 10m" || *p.DeletionGuard.MaxRemovals != 3 || p.FullSyncInterval().String() != "2h0m0s" {
		t.Errorf("poll settings = %+v", p)
	}
	if err := json.Unmarshal([]byte(`{"service_account_json": 42}`), &c); err == nil || strings.Contains(err.Error(), "42") {
		t.Errorf("number as key: %v", err)
	}
}

func TestKeyInYAML(t *testing.T) {
	key := validKey(t)
	var m map[string]any
	_ = json.Unmarshal([]byte(key), &m)
	doc, _ := yaml.Marshal(map[string]any{"service_account_json": m, "admin_email": "admin@example.com", "schedule": "@every 1m"})
	var c Config
	if err := yaml.Unmarshal(doc, &c); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if c.Schedule != "@every 1m" {
		t.Errorf("schedule = %q: PollSettings not inlined", c.Schedule)
	}
	doc, _ = yaml.Marshal(map[string]any{"service_account_json": key, "admin_email": "admin@example.com"})
	c = Config{}
	if err := yaml.Unmarshal(doc, &c); err != nil || c.Validate() != nil {
		t.Fatalf("yaml string key: %v / %v", err, c.Validate())
	}
}

func TestSecretsStayOut(t *testing.T) {
	key := validKey(t)
	secret := keyMaterial(key)
	c := &Config{ServiceAccountJSON: ServiceAccountKey(key), AdminEmail: "admin@example.com", GroupKeys: []string{"eng@example.com"}}

	red, _ := json.Marshal(c.Redacted())
	if strings.Contains(string(red), secret) || strings.Contains(string(red), "PRIVATE KEY") {
		t.Errorf("Redacted holds the key: %s", red)
	}
	var back map[string]any
	_ = json.Unmarshal(red, &back)
	if back["service_account_json"] != "(redacted)" || back["admin_email"] != "admin@example.com" {
		t.Errorf("Redacted = %s", red)
	}
	if string(c.ServiceAccountJSON) != key {
		t.Error("Redacted changed the original")
	}
	if empty, _ := json.Marshal((&Config{}).Redacted()); strings.Contains(string(empty), "redacted") {
		t.Errorf("an unset key reads as set: %s", empty)
	}

	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("directory", "config", *c, "key", c.ServiceAccountJSON)
	log.Info("directory", "config", c)
	if strings.Contains(buf.String(), secret) || strings.Contains(buf.String(), "PRIVATE KEY") {
		t.Errorf("log holds the key: %s", buf.String())
	}
	if !strings.Contains(buf.String(), "svc@proj.iam.gserviceaccount.com") {
		t.Errorf("log lacks the service account: %s", buf.String())
	}
	if s := fmt.Sprintf("%v %+v", *c, c); strings.Contains(s, secret) {
		t.Errorf("fmt prints the key: %s", s)
	}
}

func TestConfigImplementsContract(t *testing.T) {
	var _ connectors.Config = Type.NewConfig()
	key := validKey(t)
	c := &Config{ServiceAccountJSON: ServiceAccountKey(key), AdminEmail: "admin@example.com"}
	src, err := c.Open(t.Context(), nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	s := src.(*Source)
	if s.base != DefaultAPIURL+"/admin/directory/v1" || s.jwt.TokenURL != "https://oauth2.googleapis.com/token" || s.jwt.Subject != "admin@example.com" {
		t.Errorf("defaults: base %q token %q subject %q", s.base, s.jwt.TokenURL, s.jwt.Subject)
	}
	if _, ok := src.(connectors.DeltaSource); ok {
		t.Error("the Google source claims deltas it cannot give")
	}
	c.APIURL = "http://127.0.0.1:1/admin/directory/v1/"
	s2, _ := New(*c, nil)
	if s2.base != "http://127.0.0.1:1/admin/directory/v1" {
		t.Errorf("api_url with the path: base = %q", s2.base)
	}
	if _, err := (&Config{}).Open(t.Context(), nil); err == nil {
		t.Error("Open of an empty config succeeded")
	}
}
