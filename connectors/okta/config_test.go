package okta

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	a, _ := testKeys(t)
	pemA := pkcs8PEM(t, a)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const org = "https://acme.okta.com"
	tok := testToken
	neg := -1
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error; none: valid
	}{
		{name: "api token", cfg: Config{OrgURL: org, APIToken: tok}},
		{name: "service app pkcs8", cfg: Config{OrgURL: org, ClientID: "0oa1bcdefGHIJKLmnop2", PrivateKeyPEM: pemA}},
		{name: "service app pkcs1", cfg: Config{OrgURL: org, ClientID: "0oa1bcdefGHIJKLmnop2", PrivateKeyPEM: pkcs1PEM(a)}},
		{name: "trailing slash", cfg: Config{OrgURL: org + "/", APIToken: tok}},
		{name: "app scope", cfg: Config{OrgURL: org, APIToken: tok, AppID: "0oa2v0el0gP90aqjJ0g7"}},
		{name: "group scope", cfg: Config{OrgURL: org, APIToken: tok, GroupIDs: []string{"00g1emaKYZTWRYYRRTSK", "00garwpuyxHaWOkdV0g4"}}},
		{name: "http loopback v4", cfg: Config{OrgURL: "http://127.0.0.1:8080", APIToken: tok}},
		{name: "http loopback 127/8", cfg: Config{OrgURL: "http://127.3.4.5:8080", APIToken: tok}},
		{name: "http loopback v6", cfg: Config{OrgURL: "http://[::1]:8080", APIToken: tok}},
		{name: "http localhost", cfg: Config{OrgURL: "http://localhost:8080", APIToken: tok}},
		{name: "missing org", cfg: Config{APIToken: tok}, want: []string{"org_url: missing"}},
		{name: "http elsewhere", cfg: Config{OrgURL: "http://acme.okta.com", APIToken: tok}, want: []string{"http:// is accepted only for loopback", "use https://"}},
		{name: "http private address", cfg: Config{OrgURL: "http://10.0.0.5", APIToken: tok}, want: []string{"only for loopback"}},
		{name: "ftp", cfg: Config{OrgURL: "ftp://acme.okta.com", APIToken: tok}, want: []string{`scheme "ftp"`}},
		{name: "path", cfg: Config{OrgURL: org + "/api/v1", APIToken: tok}, want: []string{"without a path"}},
		{name: "admin console", cfg: Config{OrgURL: "https://acme-admin.okta.com", APIToken: tok}, want: []string{"without -admin"}},
		{name: "user info", cfg: Config{OrgURL: "https://bob:pw@acme.okta.com", APIToken: tok}, want: []string{"user name or password"}},
		{name: "no credentials", cfg: Config{OrgURL: org}, want: []string{"give api_token", "client_id with private_key_pem"}},
		{name: "both credentials", cfg: Config{OrgURL: org, APIToken: tok, ClientID: "0oa1bcdefGHIJKLmnop2", PrivateKeyPEM: pemA}, want: []string{"not both"}},
		{name: "SSWS prefix", cfg: Config{OrgURL: org, APIToken: "SSWS " + tok}, want: []string{`without the "SSWS " prefix`}},
		{name: "client id without key", cfg: Config{OrgURL: org, ClientID: "0oa1bcdefGHIJKLmnop2"}, want: []string{"private_key_pem: missing"}},
		{name: "key without client id", cfg: Config{OrgURL: org, PrivateKeyPEM: pemA}, want: []string{"client_id: missing"}},
		{name: "bad client id", cfg: Config{OrgURL: org, ClientID: "roster", PrivateKeyPEM: pemA}, want: []string{"not an Okta client id"}},
		{name: "not pem", cfg: Config{OrgURL: org, ClientID: "0oa1bcdefGHIJKLmnop2", PrivateKeyPEM: "secret-not-a-key"}, want: []string{"no PEM block"}},
		{name: "small key", cfg: Config{OrgURL: org, ClientID: "0oa1bcdefGHIJKLmnop2", PrivateKeyPEM: pkcs8PEM(t, small)}, want: []string{"1024 bits", "2048"}},
		{name: "EC key", cfg: Config{OrgURL: org, ClientID: "0oa1bcdefGHIJKLmnop2", PrivateKeyPEM: pkcs8PEM(t, ec)}, want: []string{"not an RSA key"}},
		{name: "app and groups", cfg: Config{OrgURL: org, APIToken: tok, AppID: "0oa2v0el0gP90aqjJ0g7", GroupIDs: []string{"00g1emaKYZTWRYYRRTSK"}}, want: []string{"not both"}},
		{name: "bad app id", cfg: Config{OrgURL: org, APIToken: tok, AppID: "Slack"}, want: []string{"not an Okta application id"}},
		{name: "group name for id", cfg: Config{OrgURL: org, APIToken: tok, GroupIDs: []string{"Engineering"}}, want: []string{`"Engineering" is not an Okta group id`}},
		{name: "duplicate group", cfg: Config{OrgURL: org, APIToken: tok, GroupIDs: []string{"00g1emaKYZTWRYYRRTSK", "00g1emaKYZTWRYYRRTSK"}}, want: []string{"listed twice"}},
		{name: "bad schedule", cfg: func() Config {
			c := Config{OrgURL: org, APIToken: tok}
			c.Schedule = "every five minutes"
			return c
		}(), want: []string{"schedule:"}},
		{name: "bad guard", cfg: func() Config {
			c := Config{OrgURL: org, APIToken: tok}
			c.DeletionGuard.MaxRemovals = &neg
			return c
		}(), want: []string{"deletion_guard.max_removals"}},
		{name: "everything wrong at once", cfg: Config{OrgURL: "http://example.com/x", AppID: "x", GroupIDs: []string{"y"}},
			want: []string{"org_url", "credentials: missing", "app_id and group_ids", "not an Okta application id", "not an Okta group id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error with %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
			for _, secret := range []string{tok, "secret-not-a-key", "MII"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q holds a secret", err)
				}
			}
			var ce *ConfigError
			if !asConfigError(err, &ce) || len(ce.Problems) < len(tt.want) && tt.name == "everything wrong at once" {
				t.Errorf("error %T is not a ConfigError with every problem", err)
			}
		})
	}
}

func asConfigError(err error, target **ConfigError) bool {
	ce, ok := err.(*ConfigError)
	*target = ce
	return ok
}

func TestRedactedAndLogValue(t *testing.T) {
	a, _ := testKeys(t)
	pemA := pkcs8PEM(t, a)
	for _, cfg := range []Config{
		{OrgURL: "https://acme.okta.com", APIToken: testToken},
		{OrgURL: "https://acme.okta.com", ClientID: "0oa1bcdefGHIJKLmnop2", PrivateKeyPEM: pemA},
	} {
		r := cfg.Redacted().(Config)
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), testToken) || strings.Contains(string(b), "PRIVATE KEY") {
			t.Errorf("Redacted() = %s, holds a secret", b)
		}
		if cfg.APIToken != "" && r.APIToken != "(redacted)" || cfg.PrivateKeyPEM != "" && r.PrivateKeyPEM != "(redacted)" {
			t.Errorf("Redacted() = %+v, want set secrets shown as (redacted)", r)
		}
		if r.OrgURL != cfg.OrgURL || r.ClientID != cfg.ClientID {
			t.Errorf("Redacted() lost non-secret settings: %+v", r)
		}
		if cfg.APIToken == "" && r.APIToken != "" {
			t.Errorf("Redacted() invented an api_token")
		}
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "okta", cfg, "ptr", &cfg)
		if strings.Contains(buf.String(), testToken) || strings.Contains(buf.String(), "PRIVATE KEY") {
			t.Errorf("log line %s holds a secret", buf.String())
		}
		if !strings.Contains(buf.String(), "acme.okta.com") {
			t.Errorf("log line %s lacks org_url", buf.String())
		}
	}
}

func TestConfigJSON(t *testing.T) {
	raw := `{"org_url": "https://acme.okta.com", "api_token": "` + testToken + `", "group_ids": ["00g1emaKYZTWRYYRRTSK"],
		"schedule": "@every 10m", "deletion_guard": {"max_removals": 3}, "full_sync_every": "2h"}`
	c := Type.NewConfig()
	if err := json.Unmarshal([]byte(raw), c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	p := c.Polling()
	if p.ScheduleSpec() != "@every 10m" || p.FullSyncInterval().Hours() != 2 {
		t.Errorf("Polling() = %+v, want the shared settings decoded beside okta's", p)
	}
	if n, _ := p.DeletionGuard.Limits(); n != 3 {
		t.Errorf("max_removals = %d, want 3", n)
	}
	oc := c.(*Config)
	if oc.OrgURL != "https://acme.okta.com" || len(oc.GroupIDs) != 1 {
		t.Errorf("decoded %+v", oc)
	}
}
