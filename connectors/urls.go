package connectors

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// CheckScheme applies the rule every directory-API URL follows: https://,
// or http:// only to a loopback host (tests, and a local proxy), so a token
// never crosses a network in the clear.
func CheckScheme(u *url.URL) error {
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		if IsLoopbackHost(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("http:// is accepted only for loopback hosts (127.0.0.0/8, ::1, localhost); use https://")
	}
	return fmt.Errorf("scheme %q is not supported; use https://", u.Scheme)
}

// IsLoopbackHost reports whether host is localhost or a loopback address.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
