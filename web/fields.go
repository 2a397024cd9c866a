package web

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// field is one setting of a directory type on the wizard's form. Its form
// name is the type and the API's setting name, dotted ("ldap.bind_dn",
// "scim.deletion_guard.enabled").
type field struct {
	Name  string
	Label string
	// Kind: text, password, textarea, secret-textarea, checkbox, number,
	// list (comma- or line-separated).
	Kind string
	Help string
}

// ID is the field's element id.
func (f field) ID() string { return "f-" + strings.ReplaceAll(f.Name, ".", "-") }

var directoryTypes = []string{"scim", "ldap", "google", "msgraph", "okta"}

var typeFields = map[string][]field{
	"scim": {
		{"scim.deletion_guard.enabled", "Hold back mass unassignments for review", "checkbox", "When the identity provider removes many people at once, roster waits for an admin to approve."},
		{"scim.deletion_guard.max_removals", "At most this many removals without review", "number", ""},
		{"scim.deletion_guard.max_fraction", "At most this share of members without review (0 to 1)", "number", ""},
		{"scim.deletion_guard.window", "Within this window (e.g. 10m)", "text", ""},
	},
	"ldap": {
		{"ldap.url", "Server URL", "text", "ldaps://dc1.example.com:636, or ldap://... with StartTLS"},
		{"ldap.bind_dn", "Bind DN (read-only service account)", "text", ""},
		{"ldap.bind_password", "Bind password", "password", "Kept secret: never shown again."},
		{"ldap.base_dn", "Base DN", "text", "DC=example,DC=com"},
		{"ldap.user_filter", "User filter", "text", "Optional; the flavour's default otherwise."},
		{"ldap.group_filter", "Group filter", "text", "Optional."},
		{"ldap.flavor", "Flavour (ad or openldap)", "text", "Optional; detected otherwise."},
		{"ldap.start_tls", "Use StartTLS", "checkbox", ""},
		{"ldap.ca_cert", "CA certificate (PEM)", "textarea", "Optional: the CA that signed the server's certificate."},
		{"ldap.schedule", "Schedule", "text", "e.g. @every 5m"},
	},
	"google": {
		{"google.service_account_json", "Service account key (JSON)", "secret-textarea", "Kept secret: never shown again."},
		{"google.admin_email", "Admin email to act as", "text", ""},
		{"google.customer", "Customer ID", "text", "my_customer, or give the domain"},
		{"google.domain", "Domain", "text", ""},
		{"google.group_keys", "Groups (emails or ids)", "list", "Comma- or line-separated; empty for all."},
		{"google.schedule", "Schedule", "text", "e.g. @every 5m"},
		{"google.api_url", "Directory API URL", "text", "Optional override."},
		{"google.token_url", "Token URL", "text", "Optional override."},
	},
	"msgraph": {
		{"msgraph.tenant_id", "Tenant ID", "text", ""},
		{"msgraph.client_id", "Client (application) ID", "text", ""},
		{"msgraph.client_secret", "Client secret", "password", "Or a certificate and key below. Kept secret."},
		{"msgraph.client_certificate_pem", "Client certificate (PEM)", "textarea", ""},
		{"msgraph.client_key_pem", "Client key (PEM)", "secret-textarea", "Kept secret."},
		{"msgraph.group_ids", "Group ids", "list", "Comma- or line-separated; empty for all."},
		{"msgraph.schedule", "Schedule", "text", "e.g. @every 5m"},
		{"msgraph.graph_url", "Graph URL", "text", "Optional override."},
		{"msgraph.login_url", "Login URL", "text", "Optional override."},
	},
	"okta": {
		{"okta.org_url", "Okta org URL", "text", "https://example.okta.com"},
		{"okta.api_token", "API token", "password", "Or a client id and private key below. Kept secret."},
		{"okta.client_id", "Client ID", "text", ""},
		{"okta.private_key_pem", "Private key (PEM)", "secret-textarea", "Kept secret."},
		{"okta.app_id", "App ID", "text", "Optional: only people assigned to this app."},
		{"okta.group_ids", "Group ids", "list", "Comma- or line-separated; empty for all."},
		{"okta.schedule", "Schedule", "text", "e.g. @every 5m"},
	},
}

// settingsFromForm builds a type's settings object from the wizard's form:
// only the fields filled in, in the API's names.
func settingsFromForm(r *http.Request, typ string) (map[string]any, string) {
	out := map[string]any{}
	for _, f := range typeFields[typ] {
		raw := r.PostFormValue(f.Name)
		if f.Kind != "password" && f.Kind != "secret-textarea" && f.Kind != "textarea" {
			raw = strings.TrimSpace(raw)
		}
		if strings.TrimSpace(raw) == "" {
			continue
		}
		var val any = raw
		switch f.Kind {
		case "checkbox":
			val = true
		case "number":
			n, err := strconv.ParseFloat(raw, 64)
			if err != nil || n < 0 {
				return nil, f.Label + ": enter a number of zero or more"
			}
			val = json.Number(raw)
		case "list":
			val = splitList(raw)
		}
		if f.Name == "google.service_account_json" {
			val = json.RawMessage(strconv.Quote(raw))
		}
		put(out, strings.Split(strings.TrimPrefix(f.Name, typ+"."), "."), val)
	}
	return out, ""
}

func put(m map[string]any, path []string, v any) {
	for _, k := range path[:len(path)-1] {
		sub, ok := m[k].(map[string]any)
		if !ok {
			sub = map[string]any{}
			m[k] = sub
		}
		m = sub
	}
	m[path[len(path)-1]] = v
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// secretField says whether a field's value is a secret, never written back
// into a re-shown form.
func secretField(name string) bool {
	for _, fs := range typeFields {
		for _, f := range fs {
			if f.Name == name {
				return f.Kind == "password" || f.Kind == "secret-textarea"
			}
		}
	}
	return name == "token" || name == "csrf"
}

// formValues are a posted form's values to show again after an error,
// without secrets.
func formValues(r *http.Request) map[string]string {
	out := map[string]string{}
	for k, v := range r.PostForm {
		if len(v) > 0 && !secretField(k) {
			out[k] = v[0]
		}
	}
	return out
}
