package webhooks

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// ErrBadURL is returned by ValidateURL.
var ErrBadURL = errors.New("bad webhook URL")

// ValidateURL checks an endpoint URL before it is stored, and again before
// every attempt. It wants https://, or http:// to a loopback host
// (127.0.0.0/8, ::1, localhost) for tests. It refuses what the URL alone
// shows to be unreachable under the address rules: a literal address (or
// "localhost") that the connect-time guard would refuse. So without
// allowPrivate no http:// URL passes, since every loopback host is
// refused; with it, loopback http:// is fine. Names are checked again
// when they resolve, at connect time (see Options.AllowPrivateNetworks).
func ValidateURL(raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("%w: %q is not an absolute URL; write it like https://hooks.example.com/roster", ErrBadURL, shorten(strippedURL(raw), 100))
	}
	// Errors reach the admin API and the logs: never the credentials a
	// URL may carry in its user part or its query.
	shown := shorten(redactURL(raw), 100)
	if u.User != nil {
		return fmt.Errorf("%w: %q carries credentials; leave them out (receivers check the signature instead)", ErrBadURL, shown)
	}
	if u.Fragment != "" {
		return fmt.Errorf("%w: %q has a #fragment, which is never sent; leave it out", ErrBadURL, shown)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("%w: %q has no host", ErrBadURL, shown)
	}
	if p := u.Port(); p != "" {
		if _, err := net.LookupPort("tcp", p); err != nil || p == "0" {
			return fmt.Errorf("%w: %q has a bad port", ErrBadURL, shown)
		}
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !isLoopbackHost(host) {
			return fmt.Errorf("%w: %q: http:// is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost); use https://", ErrBadURL, shown)
		}
	default:
		return fmt.Errorf("%w: %q: scheme %q is not supported; use https://", ErrBadURL, shown, u.Scheme)
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		if !allowPrivate {
			return fmt.Errorf("%w: %q: localhost is a loopback address, refused unless the operator sets webhooks.allow_private_networks", ErrBadURL, shown)
		}
		return nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if err := checkAddr(a, allowPrivate); err != nil {
			return fmt.Errorf("%w: %q: %w", ErrBadURL, shown, err)
		}
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// RefusedAddressError says why the guard refused an address.
type RefusedAddressError struct {
	Addr netip.Addr
	// Kind names the range: "loopback", "private", "link-local", "cloud
	// metadata", ...
	Kind string
	// Allowable is true when webhooks.allow_private_networks would let the
	// address through.
	Allowable bool
}

func (e *RefusedAddressError) Error() string {
	if e.Allowable {
		return fmt.Sprintf("%s is a %s address, refused unless the operator sets webhooks.allow_private_networks", e.Addr, e.Kind)
	}
	return fmt.Sprintf("%s is a %s address, always refused", e.Addr, e.Kind)
}

type addrRange struct {
	prefix netip.Prefix
	kind   string
	// always: refused even with webhooks.allow_private_networks. Metadata
	// services hand out the host's cloud credentials, and the delivery
	// log would show their answer to the endpoint's owner; unspecified,
	// multicast, broadcast and reserved addresses are never a receiver.
	always bool
}

// refused lists the ranges the guard refuses, most specific first (the
// first match names the kind).
var refused = func() []addrRange {
	rows := []struct {
		cidr, kind string
		always     bool
	}{
		{"169.254.169.254/32", "cloud metadata", true}, // AWS, GCP, Azure, OpenStack, ...
		{"169.254.170.2/32", "cloud metadata", true},   // AWS ECS task credentials
		{"fd00:ec2::254/128", "cloud metadata", true},  // AWS over IPv6
		{"100.100.100.200/32", "cloud metadata", true}, // Alibaba Cloud
		{"0.0.0.0/8", "unspecified", true},             // 0.0.0.0 reaches the local host on Linux
		{"::/128", "unspecified", true},                // so does ::
		{"224.0.0.0/4", "multicast", true},
		{"ff00::/8", "multicast", true},
		{"240.0.0.0/4", "reserved", true}, // class E and the broadcast address
		{"127.0.0.0/8", "loopback", false},
		{"::1/128", "loopback", false},
		{"10.0.0.0/8", "private", false}, // RFC 1918
		{"172.16.0.0/12", "private", false},
		{"192.168.0.0/16", "private", false},
		{"fc00::/7", "private", false},       // unique local, RFC 4193
		{"fec0::/10", "private", false},      // site-local, deprecated but still routed inside sites
		{"64:ff9b:1::/48", "private", false}, // local-use NAT64, RFC 8215
		{"100.64.0.0/10", "CGNAT", false},    // shared address space, RFC 6598
		{"169.254.0.0/16", "link-local", false},
		{"fe80::/10", "link-local", false},
		{"192.0.0.0/24", "special-purpose", false},  // IETF protocol assignments, RFC 6890
		{"198.18.0.0/15", "special-purpose", false}, // benchmarking, RFC 2544; used inside networks
	}
	out := make([]addrRange, 0, len(rows))
	for _, r := range rows {
		out = append(out, addrRange{prefix: netip.MustParsePrefix(r.cidr), kind: r.kind, always: r.always})
	}
	return out
}()

// Prefixes whose addresses carry an IPv4 address, which is judged too:
// NAT64 (the IPv4 address in the last 4 bytes) and 6to4 (in bytes 2 to 5).
var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
)

// checkAddr returns a *RefusedAddressError when the guard refuses a.
// IPv4-mapped IPv6 addresses (::ffff:10.0.0.1) are judged as IPv4.
func checkAddr(a netip.Addr, allowPrivate bool) error {
	a = a.Unmap().WithZone("")
	if !a.IsValid() {
		return &RefusedAddressError{Addr: a, Kind: "invalid"}
	}
	b := a.As16()
	switch {
	case nat64Prefix.Contains(a):
		if err := checkAddr(netip.AddrFrom4([4]byte(b[12:16])), allowPrivate); err != nil {
			return err
		}
	case sixToFour.Contains(a):
		if err := checkAddr(netip.AddrFrom4([4]byte(b[2:6])), allowPrivate); err != nil {
			return err
		}
	}
	for _, r := range refused {
		if !r.prefix.Contains(a) {
			continue
		}
		if r.always || !allowPrivate {
			return &RefusedAddressError{Addr: a, Kind: r.kind, Allowable: !r.always}
		}
		return nil
	}
	return nil
}

// guardControl is a net.Dialer Control hook: it runs after the name is
// resolved, on the very address about to be connected, so a name that
// resolves (or re-resolves, DNS rebinding) to a refused address is caught.
func guardControl(allowPrivate bool) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("guard: unexpected address %q: %w", address, err)
		}
		return checkAddr(ap.Addr(), allowPrivate)
	}
}

// strippedURL is an unparsable URL as an error may quote it: without
// what may come after a '?' or '#', or before an '@'.
func strippedURL(raw string) string {
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i] + "?..."
	}
	if i := strings.LastIndex(raw, "@"); i >= 0 {
		raw = raw[i+1:]
	}
	return raw
}
