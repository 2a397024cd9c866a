package webhooks

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

func TestValidateURL(t *testing.T) {
	tests := []struct {
		url          string
		allowPrivate bool
		wantErr      string // "" for accepted
	}{
		{"https://hooks.example.com/roster", false, ""},
		{"https://hooks.example.com:8443/roster?team=1", false, ""},
		{"HTTPS://hooks.example.com/", false, ""},
		{"https://93.184.215.14/x", false, ""},
		{"https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/x", false, ""},
		// http:// only to loopback, and loopback only with private networks allowed.
		{"http://127.0.0.1:8080/x", true, ""},
		{"http://127.9.9.9/x", true, ""},
		{"http://[::1]:8080/x", true, ""},
		{"http://localhost:8080/x", true, ""},
		{"http://LOCALHOST./x", true, ""},
		{"http://127.0.0.1:8080/x", false, "127.0.0.1 is a loopback address, refused unless the operator sets webhooks.allow_private_networks"},
		{"http://[::1]/x", false, "::1 is a loopback address"},
		{"http://localhost/x", false, "localhost is a loopback address"},
		{"https://localhost/x", false, "localhost is a loopback address"},
		{"http://hooks.example.com/x", true, "http:// is allowed only for loopback hosts"},
		{"http://10.0.0.1/x", true, "http:// is allowed only for loopback hosts"},
		{"http://localhost.example.com/x", true, "http:// is allowed only for loopback hosts"},
		// Literal addresses the guard would refuse anyway.
		{"https://10.1.2.3/x", false, "10.1.2.3 is a private address"},
		{"https://172.16.0.1/x", false, "private address"},
		{"https://192.168.1.1/x", false, "private address"},
		{"https://100.64.0.1/x", false, "CGNAT address"},
		{"https://169.254.1.1/x", false, "link-local address"},
		{"https://[fe80::1]/x", false, "link-local address"},
		{"https://[fd12::1]/x", false, "private address"},
		{"https://[::ffff:10.0.0.1]/x", false, "10.0.0.1 is a private address"},
		{"https://10.1.2.3/x", true, ""},
		{"https://169.254.169.254/latest/meta-data", false, "169.254.169.254 is a cloud metadata address, always refused"},
		{"https://169.254.169.254/latest/meta-data", true, "cloud metadata address, always refused"},
		{"https://[fd00:ec2::254]/", true, "cloud metadata address, always refused"},
		{"https://0.0.0.0/", true, "unspecified address, always refused"},
		{"https://[::]/", true, "unspecified address, always refused"},
		{"https://224.0.0.1/", true, "multicast address, always refused"},
		// Not URLs we send to.
		{"ftp://hooks.example.com/", false, `scheme "ftp" is not supported`},
		{"hooks.example.com/x", false, "not an absolute URL"},
		{"https:///x", false, "not an absolute URL"},
		{"https://user:pass@hooks.example.com/x", false, "carries credentials"},
		{"https://hooks.example.com/x#frag", false, "#fragment"},
		{"https://hooks.example.com:0/x", false, "bad port"},
		{"https://hooks.example.com:99999/x", false, "bad port"},
		{"mailto:ops@example.com", false, "not an absolute URL"},
		{"://", false, "not an absolute URL"},
		// Errors reach the API and the logs: no credential they quote.
		{"https://user:hunter2@hooks.example.com/x?token=hunter2", false, "carries credentials"},
		{"https://hooks.example.com/x?token=hunter2#frag", false, "#fragment"},
		{"http://hooks.example.com/x?token=hunter2", false, "loopback hosts"},
		{"hooks.example.com/x?token=hunter2", false, "not an absolute URL"},
		{"user:hunter2@hooks.example.com/x", false, "not an absolute URL"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := ValidateURL(tt.url, tt.allowPrivate)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateURL(%q, %v) = %v, want nil", tt.url, tt.allowPrivate, err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrBadURL) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ValidateURL(%q, %v) = %v, want ErrBadURL saying %q", tt.url, tt.allowPrivate, err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "pass@") || strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error %q shows the URL's password", err)
			}
		})
	}
}

func TestCheckAddr(t *testing.T) {
	tests := []struct {
		addr string
		kind string // "" for allowed without allowPrivate
		// allowable: allowed once private networks are.
		allowable bool
	}{
		{"93.184.215.14", "", true},
		{"8.8.8.8", "", true},
		{"2606:4700::1111", "", true},
		{"172.32.0.1", "", true},  // just past 172.16/12
		{"100.128.0.1", "", true}, // just past 100.64/10
		{"127.0.0.1", "loopback", true},
		{"127.255.255.254", "loopback", true},
		{"::1", "loopback", true},
		{"::ffff:127.0.0.1", "loopback", true},
		{"10.0.0.1", "private", true},
		{"172.16.0.1", "private", true},
		{"172.31.255.255", "private", true},
		{"192.168.0.1", "private", true},
		{"fc00::1", "private", true},
		{"fdff::1", "private", true},
		{"100.64.0.1", "CGNAT", true},
		{"100.127.255.255", "CGNAT", true},
		{"169.254.0.1", "link-local", true},
		{"fe80::1", "link-local", true},
		{"fe80::1%eth0", "link-local", true},
		{"169.254.169.254", "cloud metadata", false},
		{"fd00:ec2::254", "cloud metadata", false},
		{"::ffff:169.254.169.254", "cloud metadata", false},
		{"0.0.0.0", "unspecified", false},
		{"::", "unspecified", false},
		{"224.0.0.251", "multicast", false},
		{"ff02::1", "multicast", false},
		{"255.255.255.255", "reserved", false},
		{"64:ff9b::a00:1", "private", true},             // NAT64 of 10.0.0.1
		{"64:ff9b::5db8:d70e", "", true},                // NAT64 of 93.184.215.14
		{"64:ff9b::a9fe:a9fe", "cloud metadata", false}, // NAT64 of 169.254.169.254
		{"2002:7f00:1::1", "loopback", true},            // 6to4 of 127.0.0.1
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			a := netip.MustParseAddr(tt.addr)
			err := checkAddr(a, false)
			if tt.kind == "" {
				if err != nil {
					t.Fatalf("checkAddr(%s, false) = %v, want nil", a, err)
				}
			} else {
				var re *RefusedAddressError
				if !errors.As(err, &re) || re.Kind != tt.kind || re.Allowable != tt.allowable {
					t.Fatalf("checkAddr(%s, false) = %#v, want kind %q allowable %v", a, err, tt.kind, tt.allowable)
				}
			}
			err = checkAddr(a, true)
			if tt.allowable && err != nil {
				t.Fatalf("checkAddr(%s, true) = %v, want nil", a, err)
			}
			if !tt.allowable && err == nil {
				t.Fatalf("checkAddr(%s, true) = nil, want refused", a)
			}
		})
	}
}

// The guard sits in the dialer: it judges the address being connected,
// whatever the URL said.
func TestGuardAtConnect(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()

	d := net.Dialer{Control: guardControl(false)}
	_, err := d.Dial("tcp", srv.Listener.Addr().String())
	var re *RefusedAddressError
	if !errors.As(err, &re) || re.Kind != "loopback" {
		t.Fatalf("dial loopback without private networks: %v, want a loopback refusal", err)
	}
	d = net.Dialer{Control: guardControl(true)}
	c, err := d.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatalf("dial loopback with private networks: %v", err)
	}
	c.Close()
}

// A name that resolves to loopback passes URL validation (it is only a
// name) and is refused when the connection is made; with private networks
// allowed the same delivery goes through, so the refusal is the guard's
// and not a resolver failure.
func TestDNSNameResolvingToLoopback(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	u := must(url.Parse(srv.URL))
	// httptest's certificate is valid for example.com; make that name
	// resolve to the test server.
	hookURL := "https://example.com:" + u.Port() + "/hook"
	resolver := fakeDNS(t, netip.MustParseAddr("127.0.0.1"))
	ep := &Endpoint{ID: "wh_1", URL: hookURL, Keys: Keys{Current: NewSecret()}}
	ev := Event{ID: "1", Type: "member.added", Body: []byte(`{"id":"1"}`)}

	if err := ValidateURL(hookURL, false); err != nil {
		t.Fatalf("ValidateURL(%q) = %v; a public-looking name must pass", hookURL, err)
	}
	refusing := NewClient(Options{Resolver: resolver, TLSConfig: &tls.Config{RootCAs: roots}})
	a := refusing.Deliver(context.Background(), ep, ev)
	if a.Outcome != Retry || a.StatusCode != 0 || !strings.Contains(a.Error, "refused: 127.0.0.1 is a loopback address") {
		t.Fatalf("attempt %+v, want a retry refused for loopback", a)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("receiver got %d requests, want none", n)
	}

	allowing := NewClient(Options{Resolver: resolver, TLSConfig: &tls.Config{RootCAs: roots}, AllowPrivateNetworks: true})
	a = allowing.Deliver(context.Background(), ep, ev)
	if a.Outcome != Delivered || a.StatusCode != http.StatusNoContent {
		t.Fatalf("with private networks allowed: attempt %+v, want delivered 204", a)
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("receiver got %d requests, want 1", n)
	}
}

// Metadata addresses stay refused with private networks allowed, also
// when a name leads there; no packet is sent to them.
func TestMetadataRefusedEvenWhenPrivateAllowed(t *testing.T) {
	c := NewClient(Options{AllowPrivateNetworks: true, Resolver: fakeDNS(t, netip.MustParseAddr("169.254.169.254"))})
	for _, u := range []string{"https://169.254.169.254/latest/meta-data/iam", "https://metadata.example.com/computeMetadata/v1/"} {
		ep := &Endpoint{ID: "wh_1", URL: u, Keys: Keys{Current: NewSecret()}}
		a := c.Deliver(context.Background(), ep, Event{ID: "1", Body: []byte(`{}`)})
		if a.Outcome != Retry || !strings.Contains(a.Error, "169.254.169.254 is a cloud metadata address, always refused") {
			t.Errorf("%s: attempt %+v, want a metadata refusal", u, a)
		}
	}
}

// A private literal address is refused before any connection.
func TestPrivateLiteralRefused(t *testing.T) {
	c := NewClient(Options{})
	for _, u := range []string{"https://10.0.0.5/hook", "https://192.168.1.10:8443/hook", "https://[fd00::5]/hook", "http://127.0.0.1:1/hook"} {
		ep := &Endpoint{ID: "wh_1", URL: u, Keys: Keys{Current: NewSecret()}}
		a := c.Deliver(context.Background(), ep, Event{ID: "1", Body: []byte(`{}`)})
		if a.Outcome != Retry || !strings.Contains(a.Error, "refused unless the operator sets webhooks.allow_private_networks") {
			t.Errorf("%s: attempt %+v, want a refusal naming the setting", u, a)
		}
	}
}
