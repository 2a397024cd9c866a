// Package testldap starts real directory servers for tests: OpenLDAP slapd
// (one per test, on a free loopback port, configured in a temp folder) and a
// Samba Active Directory domain controller (one per test process, on the
// standard ports 389/636, guarded by a machine-wide lock). Both come with a
// read-only service account and helpers to change the directory as an
// admin.
//
// Tests using them run when ROSTER_TEST_LDAP=1 or
// ROSTER_TEST_REQUIRE_SERVICES=1. When the server binaries are missing they
// are skipped, unless ROSTER_TEST_REQUIRE_SERVICES is set, which makes them
// fail (CI installs the servers with .ci/install-ldap.sh).
package testldap

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Flavors, as the connector names them.
const (
	OpenLDAP        = "openldap"
	ActiveDirectory = "active_directory"
)

// Enabled reports whether directory-server tests should run.
func Enabled() bool {
	return os.Getenv("ROSTER_TEST_LDAP") == "1" || os.Getenv("ROSTER_TEST_REQUIRE_SERVICES") != ""
}

// Require skips the test unless server tests are enabled and the binaries
// exist; when ROSTER_TEST_REQUIRE_SERVICES is set, missing binaries fail it.
func Require(t testing.TB, bins ...string) map[string]string {
	t.Helper()
	if !Enabled() {
		t.Skip("directory server tests are off: set ROSTER_TEST_LDAP=1 (install servers with .ci/install-ldap.sh)")
	}
	paths := map[string]string{}
	var missing []string
	for _, b := range bins {
		p, err := lookBin(b)
		if err != nil {
			missing = append(missing, b)
			continue
		}
		paths[b] = p
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("missing %s: run .ci/install-ldap.sh", strings.Join(missing, ", "))
		if os.Getenv("ROSTER_TEST_REQUIRE_SERVICES") != "" {
			t.Fatal(msg + " (ROSTER_TEST_REQUIRE_SERVICES is set)")
		}
		t.Skip(msg)
	}
	return paths
}

func lookBin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin"} {
		p := dir + "/" + name
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Certs is a test CA and a server certificate signed by it, valid for
// localhost, 127.0.0.1 and the given extra names.
type Certs struct {
	CAPEM, CertPEM, KeyPEM string
}

// NewCerts makes a CA and a server certificate with subjectAltNames (Go
// refuses certificates without them).
func NewCerts(names ...string) (*Certs, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "roster test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if n != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Certs{
		CAPEM:   string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})),
		CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		KeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})),
	}, nil
}

// Dir is what both servers share: addresses, accounts and admin helpers.
// Helpers fail the test on error.
type Dir struct {
	Flavor string
	// URL is ldap:// on loopback; LDAPSURL is ldaps:// (empty when the
	// server has no TLS). CACertPEM is the CA that signed the server
	// certificate.
	URL, LDAPSURL string
	CACertPEM     string
	// BaseDN is the subtree roster should read; UsersDN and GroupsDN are
	// OUs below it, OtherDN another OU below it (for moves), OutsideDN one
	// outside BaseDN.
	BaseDN, UsersDN, GroupsDN, OtherDN, OutsideDN string
	AdminDN, AdminPassword                        string
	// ServiceDN and ServicePassword are the read-only service account.
	ServiceDN, ServicePassword string
	// Prefix is put before AD account names (sAMAccountName is unique
	// domain-wide); see AccountName.
	Prefix string

	mu    sync.Mutex
	admin *ldap.Conn
}

// Admin returns a connection bound as the directory admin (reconnecting
// when needed). Don't close it.
func (d *Dir) Admin(t testing.TB) *ldap.Conn {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.admin != nil && !d.admin.IsClosing() {
		return d.admin
	}
	c, err := ldap.DialURL(d.URL)
	if err != nil {
		t.Fatalf("testldap: connect as admin: %v", err)
	}
	if err := c.Bind(d.AdminDN, d.AdminPassword); err != nil {
		c.Close()
		t.Fatalf("testldap: bind as admin: %v", err)
	}
	d.admin = c
	return c
}

func (d *Dir) closeAdmin() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.admin != nil {
		d.admin.Close()
		d.admin = nil
	}
}

func (d *Dir) isAD() bool { return d.Flavor == ActiveDirectory }

// UserDN is where AddUser puts user name.
func (d *Dir) UserDN(name string) string {
	if d.isAD() {
		return "CN=" + ldap.EscapeDN(name) + "," + d.UsersDN
	}
	return "uid=" + ldap.EscapeDN(name) + "," + d.UsersDN
}

// GroupDN is where AddGroup puts group name.
func (d *Dir) GroupDN(name string) string { return "cn=" + ldap.EscapeDN(name) + "," + d.GroupsDN }

// AddUser adds a user in UsersDN with the given mail ("" for none) and
// returns its DN.
func (d *Dir) AddUser(t testing.TB, name, mail string) string {
	t.Helper()
	return d.AddUserIn(t, d.UsersDN, name, mail)
}

// AddUserIn adds a user below parentDN.
func (d *Dir) AddUserIn(t testing.TB, parentDN, name, mail string) string {
	t.Helper()
	var dn string
	var req *ldap.AddRequest
	if d.isAD() {
		dn = "CN=" + ldap.EscapeDN(name) + "," + parentDN
		req = ldap.NewAddRequest(dn, nil)
		req.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "user"})
		req.Attribute("sAMAccountName", []string{d.AccountName(name)})
		req.Attribute("userPrincipalName", []string{d.AccountName(name) + "@" + d.realm()})
		// NORMAL_ACCOUNT | PASSWD_NOTREQD: enabled without a password.
		req.Attribute("userAccountControl", []string{"544"})
	} else {
		dn = "uid=" + ldap.EscapeDN(name) + "," + parentDN
		req = ldap.NewAddRequest(dn, nil)
		req.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "inetOrgPerson"})
		req.Attribute("uid", []string{name})
		req.Attribute("cn", []string{name})
	}
	req.Attribute("givenName", []string{"Given " + name})
	req.Attribute("sn", []string{"Family " + name})
	req.Attribute("displayName", []string{"Display " + name})
	if mail != "" {
		req.Attribute("mail", []string{mail})
	}
	if err := d.Admin(t).Add(req); err != nil {
		t.Fatalf("testldap: add user %s: %v", dn, err)
	}
	return dn
}

func (d *Dir) realm() string {
	var parts []string
	for _, p := range strings.Split(d.BaseDN, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, "dc") {
			parts = append(parts, v)
		}
	}
	return strings.ToLower(strings.Join(parts, "."))
}

// AddGroup adds a group in GroupsDN with the given member DNs.
func (d *Dir) AddGroup(t testing.TB, name string, members ...string) string {
	t.Helper()
	dn := d.GroupDN(name)
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("cn", []string{name})
	if d.isAD() {
		req.Attribute("objectClass", []string{"top", "group"})
		req.Attribute("sAMAccountName", []string{d.AccountName(name)})
		if len(members) > 0 {
			req.Attribute("member", members)
		}
	} else {
		req.Attribute("objectClass", []string{"top", "groupOfNames"})
		if len(members) == 0 {
			members = []string{""} // groupOfNames needs one member
		}
		req.Attribute("member", members)
	}
	if err := d.Admin(t).Add(req); err != nil {
		t.Fatalf("testldap: add group %s: %v", dn, err)
	}
	return dn
}

// AddUniqueGroup adds a groupOfUniqueNames (OpenLDAP only).
func (d *Dir) AddUniqueGroup(t testing.TB, name string, members ...string) string {
	t.Helper()
	if d.isAD() {
		t.Fatal("testldap: groupOfUniqueNames is for OpenLDAP")
	}
	dn := d.GroupDN(name)
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("cn", []string{name})
	req.Attribute("objectClass", []string{"top", "groupOfUniqueNames"})
	if len(members) == 0 {
		members = []string{""}
	}
	req.Attribute("uniqueMember", members)
	if err := d.Admin(t).Add(req); err != nil {
		t.Fatalf("testldap: add group %s: %v", dn, err)
	}
	return dn
}

// AddOU adds an organizational unit below parentDN.
func (d *Dir) AddOU(t testing.TB, parentDN, name string) string {
	t.Helper()
	dn := "OU=" + ldap.EscapeDN(name) + "," + parentDN
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"top", "organizationalUnit"})
	req.Attribute("ou", []string{name})
	if err := d.Admin(t).Add(req); err != nil {
		t.Fatalf("testldap: add OU %s: %v", dn, err)
	}
	return dn
}

// Set replaces attr on dn (no values deletes it).
func (d *Dir) Set(t testing.TB, dn, attr string, values ...string) {
	t.Helper()
	m := ldap.NewModifyRequest(dn, nil)
	if len(values) == 0 {
		m.Delete(attr, nil)
	} else {
		m.Replace(attr, values)
	}
	if err := d.Admin(t).Modify(m); err != nil {
		t.Fatalf("testldap: set %s on %s: %v", attr, dn, err)
	}
}

// AddMember adds memberDN to the group.
func (d *Dir) AddMember(t testing.TB, groupDN, memberDN string) {
	t.Helper()
	m := ldap.NewModifyRequest(groupDN, nil)
	m.Add(d.memberAttr(t, groupDN), []string{memberDN})
	if err := d.Admin(t).Modify(m); err != nil {
		t.Fatalf("testldap: add member %s to %s: %v", memberDN, groupDN, err)
	}
}

// RemoveMember removes memberDN from the group.
func (d *Dir) RemoveMember(t testing.TB, groupDN, memberDN string) {
	t.Helper()
	attr := d.memberAttr(t, groupDN)
	m := ldap.NewModifyRequest(groupDN, nil)
	m.Delete(attr, []string{memberDN})
	err := d.Admin(t).Modify(m)
	if err != nil && !d.isAD() && ldap.IsErrorWithCode(err, ldap.LDAPResultObjectClassViolation) {
		// groupOfNames must keep one member.
		m = ldap.NewModifyRequest(groupDN, nil)
		m.Replace(attr, []string{""})
		err = d.Admin(t).Modify(m)
	}
	if err != nil {
		t.Fatalf("testldap: remove member %s from %s: %v", memberDN, groupDN, err)
	}
}

func (d *Dir) memberAttr(t testing.TB, groupDN string) string {
	if d.isAD() {
		return "member"
	}
	res, err := d.Admin(t).Search(ldap.NewSearchRequest(groupDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"objectClass"}, nil))
	if err == nil && len(res.Entries) == 1 {
		for _, c := range res.Entries[0].GetAttributeValues("objectClass") {
			if strings.EqualFold(c, "groupOfUniqueNames") {
				return "uniqueMember"
			}
		}
	}
	return "member"
}

// Move moves dn below newParentDN and returns the new DN.
func (d *Dir) Move(t testing.TB, dn, newParentDN string) string {
	t.Helper()
	rdn, _, _ := strings.Cut(dn, ",")
	if err := d.Admin(t).ModifyDN(ldap.NewModifyDNRequest(dn, rdn, true, newParentDN)); err != nil {
		t.Fatalf("testldap: move %s to %s: %v", dn, newParentDN, err)
	}
	return rdn + "," + newParentDN
}

// Delete removes dn.
func (d *Dir) Delete(t testing.TB, dn string) {
	t.Helper()
	if err := d.Admin(t).Del(ldap.NewDelRequest(dn, nil)); err != nil {
		t.Fatalf("testldap: delete %s: %v", dn, err)
	}
}

// Disable and Enable switch an AD account (userAccountControl bit 0x2).
func (d *Dir) Disable(t testing.TB, dn string) {
	t.Helper()
	if !d.isAD() {
		t.Fatal("testldap: Disable is for Active Directory")
	}
	d.Set(t, dn, "userAccountControl", "546")
}

// Enable re-enables an AD account.
func (d *Dir) Enable(t testing.TB, dn string) {
	t.Helper()
	if !d.isAD() {
		t.Fatal("testldap: Enable is for Active Directory")
	}
	d.Set(t, dn, "userAccountControl", "544")
}

// ID returns the stable id the connector reports for dn: entryUUID, or
// objectGUID as a lower-case GUID string.
func (d *Dir) ID(t testing.TB, dn string) string {
	t.Helper()
	attr := "entryUUID"
	if d.isAD() {
		attr = "objectGUID"
	}
	res, err := d.Admin(t).Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{attr}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("testldap: read %s of %s: %v", attr, dn, err)
	}
	if !d.isAD() {
		return strings.ToLower(res.Entries[0].GetAttributeValue(attr))
	}
	b := res.Entries[0].GetRawAttributeValue(attr)
	if len(b) != 16 {
		t.Fatalf("testldap: objectGUID of %s has %d bytes", dn, len(b))
	}
	o := []byte{b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6]}
	o = append(o, b[8:]...)
	h := hex.EncodeToString(o)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
