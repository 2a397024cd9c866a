package testldap

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// SlapdOptions shapes a test slapd.
//
// Bulk users are uid=u000000..,<UsersDN> with mail u000000@example.com
// (the last UsersWithoutMail have none). Bulk groups are cn=g00000..,
// <GroupsDN>; group j has the users i with i%Groups == j; every fifth group
// (j%5 == 4) is a groupOfUniqueNames, the others groupOfNames; g00000 has
// g00001 as a member, and g00002 and g00003 are members of each other (a
// cycle), when there are enough groups.
type SlapdOptions struct {
	Users, Groups    int
	UsersWithoutMail int
	// SizeLimit is the service account's limit on unpaged searches
	// (default 100); paged searches are unlimited.
	SizeLimit int
	// TLS adds an ldaps:// listener and StartTLS with a test CA.
	TLS bool
	// NoSyncProv leaves out the syncprov overlay (no RFC 4533).
	NoSyncProv bool
	// SessionLog is syncprov's session log size (default 10000); -1 for
	// none (every refresh with a cookie then runs a present phase).
	SessionLog int
}

// Slapd is a running test OpenLDAP server.
type Slapd struct {
	Dir
	Opts SlapdOptions
	Port int

	bin, dir, conf string
	mu             sync.Mutex
	cmd            *exec.Cmd
	exited         chan struct{}
	urls           string
}

const (
	slapdSuffix = "dc=example,dc=com"
)

// StartSlapd starts slapd from a generated slapd.conf in t.TempDir() on a
// free loopback port, bulk-loaded with slapadd; it stops at the test's end.
func StartSlapd(t testing.TB, opts SlapdOptions) *Slapd {
	t.Helper()
	bins := Require(t, "slapd", "slapadd")
	if opts.SizeLimit == 0 {
		opts.SizeLimit = 100
	}
	if opts.SessionLog == 0 {
		opts.SessionLog = 10000
	}
	dir := t.TempDir()
	s := &Slapd{Opts: opts, bin: bins["slapd"], dir: dir}
	s.Flavor = OpenLDAP
	s.BaseDN = "ou=roster," + slapdSuffix
	s.UsersDN = "ou=people," + s.BaseDN
	s.GroupsDN = "ou=groups," + s.BaseDN
	s.OtherDN = "ou=other," + s.BaseDN
	s.OutsideDN = "ou=outside," + slapdSuffix
	s.AdminDN, s.AdminPassword = "cn=admin,"+slapdSuffix, "admin-secret"
	s.ServiceDN, s.ServicePassword = "cn=roster-svc,ou=service,"+slapdSuffix, "svc-secret"

	var certs *Certs
	if opts.TLS {
		var err error
		certs, err = NewCerts()
		if err != nil {
			t.Fatalf("testldap: certificates: %v", err)
		}
		s.CACertPEM = certs.CAPEM
		for name, v := range map[string]string{"ca.pem": certs.CAPEM, "cert.pem": certs.CertPEM, "key.pem": certs.KeyPEM} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	s.conf = filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(s.conf, []byte(s.config(certs != nil)), 0o600); err != nil {
		t.Fatal(err)
	}
	ldif := filepath.Join(dir, "data.ldif")
	if err := s.writeLDIF(ldif); err != nil {
		t.Fatalf("testldap: write LDIF: %v", err)
	}
	start := time.Now()
	out, err := exec.Command(bins["slapadd"], "-q", "-w", "-f", s.conf, "-l", ldif).CombinedOutput()
	if err != nil {
		t.Fatalf("testldap: slapadd: %v\n%s", err, out)
	}
	os.Remove(ldif)
	t.Logf("testldap: slapadd loaded %d users, %d groups in %s", opts.Users, opts.Groups, time.Since(start).Round(time.Millisecond))

	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	s.Port = port
	s.URL = fmt.Sprintf("ldap://127.0.0.1:%d", port)
	s.urls = s.URL + "/"
	if opts.TLS {
		tlsPort, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		s.LDAPSURL = fmt.Sprintf("ldaps://127.0.0.1:%d", tlsPort)
		s.urls += " " + s.LDAPSURL + "/"
	}
	if err := s.Start(); err != nil {
		t.Fatalf("testldap: %v", err)
	}
	t.Cleanup(func() {
		s.closeAdmin()
		s.Stop()
	})
	return s
}

func (s *Slapd) config(tls bool) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	for _, sch := range []string{"core", "cosine", "inetorgperson", "nis"} {
		w("include /etc/ldap/schema/%s.schema", sch)
	}
	w("modulepath /usr/lib/ldap")
	w("moduleload back_mdb")
	if !s.Opts.NoSyncProv {
		w("moduleload syncprov")
	}
	w("pidfile %s", filepath.Join(s.dir, "slapd.pid"))
	w("argsfile %s", filepath.Join(s.dir, "slapd.args"))
	w("sizelimit %d", s.Opts.SizeLimit)
	w("loglevel none")
	if tls {
		w("TLSCACertificateFile %s", filepath.Join(s.dir, "ca.pem"))
		w("TLSCertificateFile %s", filepath.Join(s.dir, "cert.pem"))
		w("TLSCertificateKeyFile %s", filepath.Join(s.dir, "key.pem"))
	}
	w(`access to dn.base="" by * read`)
	w(`access to dn.base="cn=Subschema" by * read`)
	w("database mdb")
	w("maxsize %d", 4<<30)
	w(`suffix "%s"`, slapdSuffix)
	w(`rootdn "%s"`, s.AdminDN)
	w(`rootpw %s`, s.AdminPassword)
	w("directory %s", filepath.Join(s.dir, "db"))
	w("index objectClass,entryUUID,entryCSN eq")
	w("index uid,mail,cn eq")
	w("index member,uniqueMember eq")
	w(`limits dn.exact="%s" size.soft=%d size.hard=%d size.pr=unlimited size.prtotal=unlimited`,
		s.ServiceDN, s.Opts.SizeLimit, s.Opts.SizeLimit)
	w(`access to attrs=userPassword by self write by anonymous auth by * none`)
	w(`access to * by dn.exact="%s" read by * none`, s.ServiceDN)
	if !s.Opts.NoSyncProv {
		w("overlay syncprov")
		w("syncprov-checkpoint 100 1")
		if s.Opts.SessionLog > 0 {
			w("syncprov-sessionlog %d", s.Opts.SessionLog)
		}
	}
	return b.String()
}

// BulkUserDN is bulk user i's DN.
func (s *Slapd) BulkUserDN(i int) string { return fmt.Sprintf("uid=u%06d,%s", i, s.UsersDN) }

// BulkUserMail is bulk user i's mail ("" when it has none).
func (s *Slapd) BulkUserMail(i int) string {
	if i >= s.Opts.Users-s.Opts.UsersWithoutMail {
		return ""
	}
	return fmt.Sprintf("u%06d@example.com", i)
}

// BulkGroupDN is bulk group j's DN.
func (s *Slapd) BulkGroupDN(j int) string { return fmt.Sprintf("cn=g%05d,%s", j, s.GroupsDN) }

// BulkGroupMembers returns bulk group j's direct member DNs.
func (s *Slapd) BulkGroupMembers(j int) []string {
	var out []string
	for i := j; i < s.Opts.Users; i += s.Opts.Groups {
		out = append(out, s.BulkUserDN(i))
	}
	n := s.Opts.Groups
	switch {
	case j == 0 && n >= 2:
		out = append(out, s.BulkGroupDN(1))
	case j == 2 && n >= 4:
		out = append(out, s.BulkGroupDN(3))
	case j == 3 && n >= 4:
		out = append(out, s.BulkGroupDN(2))
	}
	return out
}

func (s *Slapd) writeLDIF(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	entry := func(lines ...string) {
		for _, l := range lines {
			w.WriteString(l)
			w.WriteByte('\n')
		}
		w.WriteByte('\n')
	}
	ou := func(dn, name string) {
		entry("dn: "+dn, "objectClass: organizationalUnit", "ou: "+name)
	}
	entry("dn: "+slapdSuffix, "objectClass: dcObject", "objectClass: organization", "dc: example", "o: Example")
	ou("ou=service,"+slapdSuffix, "service")
	entry("dn: "+s.ServiceDN, "objectClass: person", "cn: roster-svc", "sn: service", "userPassword: "+s.ServicePassword)
	ou(s.BaseDN, "roster")
	ou(s.UsersDN, "people")
	ou(s.GroupsDN, "groups")
	ou(s.OtherDN, "other")
	ou(s.OutsideDN, "outside")
	for i := 0; i < s.Opts.Users; i++ {
		lines := []string{
			"dn: " + s.BulkUserDN(i),
			"objectClass: inetOrgPerson",
			fmt.Sprintf("uid: u%06d", i),
			fmt.Sprintf("cn: User %d", i),
			fmt.Sprintf("givenName: Given%d", i),
			fmt.Sprintf("sn: Family%d", i),
			fmt.Sprintf("displayName: User Number %d", i),
		}
		if m := s.BulkUserMail(i); m != "" {
			lines = append(lines, "mail: "+m)
		}
		entry(lines...)
	}
	for j := 0; j < s.Opts.Groups; j++ {
		attr, class := "member", "groupOfNames"
		if j%5 == 4 {
			attr, class = "uniqueMember", "groupOfUniqueNames"
		}
		lines := []string{"dn: " + s.BulkGroupDN(j), "objectClass: " + class, fmt.Sprintf("cn: g%05d", j)}
		members := s.BulkGroupMembers(j)
		if len(members) == 0 {
			members = []string{""}
		}
		for _, m := range members {
			lines = append(lines, attr+": "+m)
		}
		entry(lines...)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// Start starts (or restarts) slapd on its port.
func (s *Slapd) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		cmd := exec.Command(s.bin, "-h", s.urls, "-f", s.conf, "-d", "0")
		logf, _ := os.OpenFile(filepath.Join(s.dir, "slapd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start slapd: %w", err)
		}
		exited := make(chan struct{})
		go func() {
			cmd.Wait()
			if logf != nil {
				logf.Close()
			}
			close(exited)
		}()
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-exited:
				log, _ := os.ReadFile(filepath.Join(s.dir, "slapd.log"))
				lastErr = fmt.Errorf("slapd exited at start: %s", tail(string(log), 2000))
			default:
			}
			if lastErr != nil {
				break
			}
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.Port), time.Second)
			if err == nil {
				c.Close()
				s.cmd, s.exited = cmd, exited
				return nil
			}
			time.Sleep(10 * time.Millisecond)
		}
		if lastErr == nil {
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("slapd did not listen within 15s")
		}
	}
	return lastErr
}

// Stop stops slapd (the data stays; Start brings it back).
func (s *Slapd) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
	s.closeAdminLocked()
}

func (s *Slapd) closeAdminLocked() {
	s.Dir.mu.Lock()
	defer s.Dir.mu.Unlock()
	if s.admin != nil {
		s.admin.Close()
		s.admin = nil
	}
}

// ContextCSN returns the suffix's contextCSN (for debugging sync).
func (s *Slapd) ContextCSN(t testing.TB) string {
	t.Helper()
	res, err := s.Admin(t).Search(ldap.NewSearchRequest(slapdSuffix, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"contextCSN"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("testldap: contextCSN: %v", err)
	}
	return res.Entries[0].GetAttributeValue("contextCSN")
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Rebuild replaces the server with a fresh one at the same URL: it stops
// slapd, deletes its database and loads a new one with users and groups
// bulk entries (same suffix, base DN and accounts, new entryUUIDs and sync
// state), then starts it again. It is what an operator restoring a blank
// server or repointing DNS looks like to a client.
func (s *Slapd) Rebuild(t testing.TB, users, groups int) {
	t.Helper()
	s.Stop()
	db := filepath.Join(s.dir, "db")
	if err := os.RemoveAll(db); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(db, 0o700); err != nil {
		t.Fatal(err)
	}
	s.Opts.Users, s.Opts.Groups, s.Opts.UsersWithoutMail = users, groups, 0
	ldif := filepath.Join(s.dir, "data.ldif")
	if err := s.writeLDIF(ldif); err != nil {
		t.Fatalf("testldap: write LDIF: %v", err)
	}
	bins := Require(t, "slapadd")
	if out, err := exec.Command(bins["slapadd"], "-q", "-w", "-f", s.conf, "-l", ldif).CombinedOutput(); err != nil {
		t.Fatalf("testldap: slapadd: %v\n%s", err, out)
	}
	os.Remove(ldif)
	if err := s.Start(); err != nil {
		t.Fatalf("testldap: %v", err)
	}
}
