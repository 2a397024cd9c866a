package ldap_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/roster-dev/roster/connectors"
	"github.com/roster-dev/roster/connectors/ldap"
)

func TestValidateReportsEverything(t *testing.T) {
	frac := 1.5
	c := ldap.Config{
		URLs:       []string{"http://x", "ldaps://ok:636"},
		StartTLS:   true,
		BindDN:     "CN=svc,DC=x",
		BaseDN:     "not a dn",
		UserFilter: "(objectClass=user",
		Flavor:     "novell",
		CACert:     "junk",
		ClientCert: "only cert",
		PageSize:   -1,
		Attributes: ldap.Attributes{Email: "m a i l"},
		PollSettings: connectors.PollSettings{
			Schedule:      "every now and then",
			DeletionGuard: connectors.DeletionGuard{MaxFraction: &frac},
		},
	}
	err := c.Validate()
	var ce *ldap.ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("want ConfigError, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"http://x", "start_tls", "bind_password", "base_dn", "user_filter", "schedule",
		"flavor", "ca_cert", "client_cert/client_key", "page_size", "attributes.email", "max_fraction"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q: %s", want, msg)
		}
	}
	if len(ce.Problems) < 12 {
		t.Errorf("%d problems: %v", len(ce.Problems), ce.Problems)
	}
	if err := (&ldap.Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "url: missing") {
		t.Errorf("empty config: %v", err)
	}
	ok := ldap.Config{URL: "ldap://dc1:389", StartTLS: true, BindDN: "svc@example.com", BindPassword: "pw",
		BaseDN: "DC=example,DC=com", PollSettings: connectors.PollSettings{Schedule: "@every 30s"}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	ok.Schedule = "*/5 * * * *"
	if err := ok.Validate(); err != nil {
		t.Fatalf("cron schedule: %v", err)
	}
}

func TestConfigDecodeAndRedact(t *testing.T) {
	body := `{"type":"ldap","ldap":{"urls":["ldaps://dc1:636","ldaps://dc2:636"],"bind_dn":"CN=svc,DC=x","bind_password":"hunter2",
	  "base_dn":"DC=x","timeout":"15s","page_size":800,"nested_groups":false,"full_sync_every":"2h",
	  "deletion_guard":{"max_removals":10},"client_cert":"c","client_key":"secret-key","attributes":{"email":"userPrincipalName"}}}`
	var req struct {
		Type string      `json:"type"`
		LDAP ldap.Config `json:"ldap"`
	}
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	c := req.LDAP
	if c.Timeout.D() != 15*time.Second || c.FullSyncEvery.D() != 2*time.Hour || c.PageSize != 800 || *c.NestedGroups ||
		c.Attributes.Email != "userPrincipalName" || len(c.URLs) != 2 {
		t.Fatalf("decoded %+v", c)
	}
	if n, f := c.DeletionGuard.Limits(); n != 10 || f != connectors.DefaultMaxFraction {
		t.Fatalf("guard %d %g", n, f)
	}
	r := c.Redacted()
	out, _ := json.Marshal(r)
	if strings.Contains(string(out), "hunter2") || strings.Contains(string(out), "secret-key") {
		t.Fatalf("redacted config shows secrets: %s", out)
	}
	if c.BindPassword != "hunter2" {
		t.Fatal("Redacted changed the original")
	}

	var y ldap.Config
	err := yaml.Unmarshal([]byte("url: ldap://dc1\nbind_dn: CN=svc,DC=x\nbind_password: pw\nbase_dn: DC=x\ntimeout: 45s\nstart_tls: true\nnested_groups: true\n"), &y)
	if err != nil {
		t.Fatal(err)
	}
	if y.Timeout.D() != 45*time.Second || !y.StartTLS || y.URL != "ldap://dc1" || !*y.NestedGroups {
		t.Fatalf("yaml %+v", y)
	}
}

func TestFormatGUID(t *testing.T) {
	// The byte order AD stores for {3F2504E0-4F89-11D3-9A0C-0305E82C3301}.
	raw := []byte{0xE0, 0x04, 0x25, 0x3F, 0x89, 0x4F, 0xD3, 0x11, 0x9A, 0x0C, 0x03, 0x05, 0xE8, 0x2C, 0x33, 0x01}
	if got := ldap.FormatGUID(raw); got != "3f2504e0-4f89-11d3-9a0c-0305e82c3301" {
		t.Fatalf("FormatGUID = %s", got)
	}
}

func TestCursorKind(t *testing.T) {
	if k := ldap.CursorKind(json.RawMessage(`{"kind":"usn","usn":5}`)); k != "usn" {
		t.Fatal(k)
	}
	if k := ldap.CursorKind(json.RawMessage(`garbage`)); k != "" {
		t.Fatal(k)
	}
}
