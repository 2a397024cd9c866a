package msgraph_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/roster-dev/roster/connectors"
	"github.com/roster-dev/roster/connectors/msgraph"
	"github.com/roster-dev/roster/connectors/msgraph/msgraphfake"
)

const (
	tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	client = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	group1 = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
)

func TestValidate(t *testing.T) {
	certPEM, keyPEM, _, err := msgraphfake.NewCertificate("a")
	must(t, err)
	_, otherKey, _, err := msgraphfake.NewCertificate("b")
	must(t, err)
	good := func() *msgraph.Config {
		return &msgraph.Config{TenantID: tenant, ClientID: client, ClientSecret: "secret"}
	}
	n := func(i int) *int { return &i }
	for _, tc := range []struct {
		name string
		edit func(*msgraph.Config)
		want []string // each must appear in the error; none means valid
	}{
		{"secret", func(*msgraph.Config) {}, nil},
		{"certificate", func(c *msgraph.Config) {
			c.ClientSecret, c.ClientCertificatePEM, c.ClientKeyPEM = "", certPEM, keyPEM
		}, nil},
		{"domain tenant, scoped, overrides on loopback", func(c *msgraph.Config) {
			c.TenantID = "contoso.onmicrosoft.com"
			c.GroupIDs = []string{group1}
			c.GraphURL, c.LoginURL = "http://127.0.0.1:8080", "http://localhost:9000/"
			c.Schedule = "@every 10m"
		}, nil},
		{"national cloud", func(c *msgraph.Config) {
			c.GraphURL, c.LoginURL = "https://graph.microsoft.us", "https://login.microsoftonline.us"
		}, nil},
		{"ipv6 loopback", func(c *msgraph.Config) { c.GraphURL = "http://[::1]:8080" }, nil},
		{"empty", func(c *msgraph.Config) { *c = msgraph.Config{} },
			[]string{"tenant_id: missing", "client_id: missing", "client_secret: missing"}},
		{"common tenant", func(c *msgraph.Config) { c.TenantID = "common" }, []string{"needs one tenant"}},
		{"bad ids", func(c *msgraph.Config) { c.TenantID, c.ClientID = "not a tenant!", "My App" },
			[]string{`tenant_id "not a tenant!"`, `client_id "My App": not a GUID`}},
		{"both credentials", func(c *msgraph.Config) { c.ClientCertificatePEM, c.ClientKeyPEM = certPEM, keyPEM },
			[]string{"not both"}},
		{"certificate without key", func(c *msgraph.Config) { c.ClientSecret, c.ClientCertificatePEM = "", certPEM },
			[]string{"client_key_pem: missing"}},
		{"key without certificate", func(c *msgraph.Config) { c.ClientSecret, c.ClientKeyPEM = "", keyPEM },
			[]string{"client_certificate_pem: missing"}},
		{"key of another certificate", func(c *msgraph.Config) {
			c.ClientSecret, c.ClientCertificatePEM, c.ClientKeyPEM = "", certPEM, otherKey
		}, []string{"does not match"}},
		{"not PEM", func(c *msgraph.Config) {
			c.ClientSecret, c.ClientCertificatePEM, c.ClientKeyPEM = "", "MIIB...", "garbage"
		}, []string{"no PEM certificate"}},
		{"secret with a line break", func(c *msgraph.Config) { c.ClientSecret = "secret\n" }, []string{"spaces or line breaks"}},
		{"group ids", func(c *msgraph.Config) { c.GroupIDs = []string{"Engineering", group1, strings.ToUpper(group1), ""} },
			[]string{`group_ids[0] "Engineering"`, "listed twice", "group_ids[3]: empty"}},
		{"http to a remote host", func(c *msgraph.Config) { c.GraphURL = "http://graph.example.com" },
			[]string{"graph_url", "only for loopback"}},
		{"http to a private address", func(c *msgraph.Config) { c.LoginURL = "http://10.0.0.5" },
			[]string{"login_url", "only for loopback"}},
		{"loopback look-alike", func(c *msgraph.Config) { c.GraphURL = "http://127.0.0.1.example.com" },
			[]string{"only for loopback"}},
		{"other scheme", func(c *msgraph.Config) { c.GraphURL = "ftp://graph.microsoft.com" }, []string{`scheme "ftp"`}},
		{"credentials in the URL", func(c *msgraph.Config) { c.LoginURL = "https://user:pw@login.example.com" },
			[]string{"user name or password"}},
		{"not a URL", func(c *msgraph.Config) { c.GraphURL = "graph.microsoft.com" }, []string{"not a URL"}},
		{"poll settings", func(c *msgraph.Config) {
			c.Schedule = "every five minutes"
			c.DeletionGuard.MaxRemovals = n(-1)
		}, []string{"schedule:", "deletion_guard.max_removals"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.edit(c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate passed, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			for _, secret := range []string{keyPEM, otherKey, "secret\n"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error holds a secret: %q", err)
				}
			}
		})
	}
}

func TestSettingsJSON(t *testing.T) {
	raw := `{"tenant_id":"` + tenant + `","client_id":"` + client + `","client_secret":"hunter2-very-secret",
		"group_ids":["` + group1 + `"],"graph_url":"https://graph.microsoft.com/v1.0/","schedule":"*/10 * * * *",
		"deletion_guard":{"max_removals":0},"full_sync_every":"2h"}`
	cfg := msgraph.Type.NewConfig()
	if err := json.Unmarshal([]byte(raw), cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	ps := cfg.Polling()
	if ps.ScheduleSpec() != "*/10 * * * *" || ps.FullSyncInterval().Hours() != 2 {
		t.Errorf("poll settings = %+v", ps)
	}
	if max, _ := ps.DeletionGuard.Limits(); max != 0 {
		t.Errorf("max_removals = %d, want 0", max)
	}

	red, err := json.Marshal(cfg.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(red), "hunter2") || !strings.Contains(string(red), `"client_secret":"(redacted)"`) {
		t.Errorf("Redacted = %s", red)
	}
	if !strings.Contains(string(red), `"schedule":"*/10 * * * *"`) || !strings.Contains(string(red), group1) {
		t.Errorf("Redacted lost settings: %s", red)
	}
	// The original keeps its secret.
	if cfg.(*msgraph.Config).ClientSecret != "hunter2-very-secret" {
		t.Error("Redacted changed the original")
	}

	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	c := *cfg.(*msgraph.Config)
	c.ClientKeyPEM = "-----BEGIN PRIVATE KEY-----\nkeymaterial\n-----END PRIVATE KEY-----"
	log.Info("open", "msgraph", c)
	printed := fmt.Sprintf("%v %+v %#v %s", c, c, c, c)
	for _, out := range []string{buf.String(), printed} {
		if strings.Contains(out, "hunter2") || strings.Contains(out, "keymaterial") {
			t.Errorf("a secret leaked: %s", out)
		}
	}
	if !strings.Contains(buf.String(), tenant) || !strings.Contains(buf.String(), `"auth":"client_secret"`) {
		t.Errorf("LogValue = %s", buf.String())
	}
}

func TestConfigOpen(t *testing.T) {
	srv := newFake(t, msgraphfake.Options{})
	populate(t, srv, 5, 1)
	var cfg connectors.Config = configFor(srv)
	src, err := cfg.Open(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := src.(connectors.DeltaSource); !ok {
		t.Error("the source is not a DeltaSource")
	}
	if c, ok := src.(connectors.Checker); !ok || c.Check(t.Context()) != nil {
		t.Error("the source is not a working Checker")
	}
	if _, err := (&msgraph.Config{}).Open(t.Context(), nil); err == nil {
		t.Error("Open with empty settings passed")
	}
}
