package connectors

import (
	"net/url"
	"testing"
)

func TestCheckScheme(t *testing.T) {
	for _, tt := range []struct {
		raw string
		ok  bool
	}{
		{"https://graph.microsoft.com", true},
		{"HTTPS://acme.okta.com", true},
		{"http://127.0.0.1:8080", true},
		{"http://127.9.9.9", true},
		{"http://[::1]:9000", true},
		{"http://localhost:1234", true},
		{"http://example.com", false},
		{"http://10.0.0.1", false},
		{"http://localhost.example.com", false},
		{"ftp://127.0.0.1", false},
	} {
		u, err := url.Parse(tt.raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckScheme(u); (err == nil) != tt.ok {
			t.Errorf("CheckScheme(%q) = %v, want ok %v", tt.raw, err, tt.ok)
		}
	}
}
