package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// session is one bound connection to one server.
type session struct {
	conn   *goldap.Conn
	url    string
	rootDN rootDSE
}

// rootDSE is what the server says about itself.
type rootDSE struct {
	Flavor              string
	DefaultNC           string
	DSServiceName       string
	HighestCommittedUSN int64
	Controls            map[string]bool
	Vendor              string
}

const (
	oidPaging          = "1.2.840.113556.1.4.319"
	oidADCapability    = "1.2.840.113556.1.4.800"
	oidADLDSCapability = "1.2.840.113556.1.4.1851"
	oidDirSync         = "1.2.840.113556.1.4.841"
	oidShowDeleted     = "1.2.840.113556.1.4.417"
	oidSyncRequest     = "1.3.6.1.4.1.4203.1.9.1.1"
)

func (c *Config) tlsConfig(host string) (*tls.Config, error) {
	tc := &tls.Config{
		ServerName:         host,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // documented as for tests only
	}
	if c.CACert != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(c.CACert)) {
			return nil, errors.New("ca_cert holds no PEM certificate")
		}
		tc.RootCAs = pool
	}
	if c.ClientCert != "" {
		pair, err := tls.X509KeyPair([]byte(c.ClientCert), []byte(c.ClientKey))
		if err != nil {
			return nil, fmt.Errorf("client_cert/client_key: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// dialOne connects to one URL, upgrades to TLS as configured, binds and
// reads the root DSE.
func (s *Source) dialOne(ctx context.Context, raw string) (*session, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("url %q: %w", raw, err)
	}
	scheme := strings.ToLower(u.Scheme)
	host := u.Hostname()
	port := u.Port()
	if port == "" {
		port = "389"
		if scheme == "ldaps" {
			port = "636"
		}
	}
	timeout := s.cfg.timeout()
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(dctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", raw, err)
	}
	tc, err := s.cfg.tlsConfig(host)
	if err != nil {
		nc.Close()
		return nil, err
	}
	isTLS := false
	if scheme == "ldaps" {
		tlsConn := tls.Client(nc, tc)
		if err := tlsConn.HandshakeContext(dctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", raw, err)
		}
		nc = tlsConn
		isTLS = true
	}
	conn := goldap.NewConn(nc, isTLS)
	conn.Start()
	conn.SetTimeout(timeout)
	ok := false
	defer func() {
		if !ok {
			conn.Close()
		}
	}()
	stop := closeOnDone(dctx, conn)
	defer stop()
	if s.cfg.StartTLS && scheme == "ldap" {
		if err := conn.StartTLS(tc); err != nil {
			return nil, fmt.Errorf("StartTLS with %s: %w", raw, ctxErr(dctx, err))
		}
	}
	if s.cfg.BindDN != "" {
		if err := conn.Bind(s.cfg.BindDN, s.cfg.BindPassword); err != nil {
			if goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials) {
				return nil, fmt.Errorf("bind to %s as %q refused (invalid credentials): check bind_dn and bind_password, and that the account is enabled: %w", raw, s.cfg.BindDN, err)
			}
			return nil, fmt.Errorf("bind to %s as %q: %w", raw, s.cfg.BindDN, ctxErr(dctx, err))
		}
	}
	dse, err := readRootDSE(conn)
	if err != nil {
		return nil, fmt.Errorf("read root DSE of %s: %w", raw, ctxErr(dctx, err))
	}
	ok = true
	return &session{conn: conn, url: raw, rootDN: dse}, nil
}

// connect returns a live session, dialing the URLs in order when the held
// one is gone.
func (s *Source) connect(ctx context.Context) (*session, error) {
	s.mu.Lock()
	sess := s.sess
	s.mu.Unlock()
	if sess != nil && !sess.conn.IsClosing() {
		return sess, nil
	}
	var errs []error
	for _, u := range s.cfg.ServerURLs() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sess, err := s.dialOne(ctx, u)
		if err != nil {
			s.log.Warn("ldap: server unavailable, trying the next", "url", u, "err", err)
			errs = append(errs, err)
			continue
		}
		s.mu.Lock()
		s.sess = sess
		s.mu.Unlock()
		if s.flavor == "" {
			s.flavor = sess.rootDN.Flavor
		}
		s.log.Debug("ldap: connected", "url", u, "flavor", sess.rootDN.Flavor)
		return sess, nil
	}
	return nil, fmt.Errorf("%w: %w", errNoServer, errors.Join(errs...))
}

// drop closes the held session (after a failure) so the next call redials.
func (s *Source) drop(sess *session) {
	s.mu.Lock()
	if s.sess == sess {
		s.sess = nil
	}
	s.mu.Unlock()
	if sess != nil {
		sess.conn.Close()
	}
}

// closeOnDone closes conn when ctx ends before stop is called: go-ldap's
// synchronous calls take no context, closing the connection is how to
// cancel them.
func closeOnDone(ctx context.Context, conn *goldap.Conn) (stop func()) {
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			conn.Close()
		case <-done:
		}
	}()
	return func() { close(done) }
}

// ctxErr prefers the context's error when it caused err.
func ctxErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ce := ctx.Err(); ce != nil {
		return fmt.Errorf("%w (%v)", ce, err)
	}
	return err
}

func readRootDSE(conn *goldap.Conn) (rootDSE, error) {
	req := goldap.NewSearchRequest("", goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)",
		[]string{"supportedControl", "supportedCapabilities", "defaultNamingContext", "dsServiceName",
			"highestCommittedUSN", "vendorName", "namingContexts", "objectClass"}, nil)
	res, err := conn.Search(req)
	if err != nil {
		return rootDSE{}, err
	}
	if len(res.Entries) != 1 {
		return rootDSE{}, fmt.Errorf("root DSE: %d entries", len(res.Entries))
	}
	e := res.Entries[0]
	d := rootDSE{Controls: map[string]bool{}, Flavor: FlavorOpenLDAP}
	for _, c := range e.GetEqualFoldAttributeValues("supportedControl") {
		d.Controls[c] = true
	}
	for _, c := range e.GetEqualFoldAttributeValues("supportedCapabilities") {
		if c == oidADCapability || c == oidADLDSCapability {
			d.Flavor = FlavorActiveDirectory
		}
	}
	d.DefaultNC = e.GetEqualFoldAttributeValue("defaultNamingContext")
	d.DSServiceName = e.GetEqualFoldAttributeValue("dsServiceName")
	d.Vendor = e.GetEqualFoldAttributeValue("vendorName")
	if v := e.GetEqualFoldAttributeValue("highestCommittedUSN"); v != "" {
		d.HighestCommittedUSN, _ = strconv.ParseInt(v, 10, 64)
	}
	return d, nil
}

// isNetworkErr reports errors after which the connection is unusable.
func isNetworkErr(err error) bool {
	var le *goldap.Error
	if errors.As(err, &le) {
		return le.ResultCode == goldap.ErrorNetwork || le.ResultCode == goldap.LDAPResultServerDown ||
			le.ResultCode == goldap.LDAPResultUnavailable || le.ResultCode == goldap.LDAPResultBusy
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, net.ErrClosed)
}
