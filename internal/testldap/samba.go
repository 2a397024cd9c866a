package testldap

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// The shared Samba domain.
const (
	SambaRealm    = "ROSTER.TEST"
	SambaDomain   = "ROSTER"
	SambaDomainDN = "DC=roster,DC=test"
	sambaAdminPW  = "Adm1n-Passw0rd!"
	sambaSvcPW    = "Svc-Passw0rd!roster"
	sambaSvcName  = "roster-svc"
	sambaLockFile = "roster-testldap-samba.lock"
)

// Samba is a view of the shared Samba AD DC for one test: its BaseDN is a
// fresh OU (with People, Groups and Other below it) so tests don't see each
// other's entries. Account names (sAMAccountName) get Prefix so they stay
// unique in the domain; AccountName tells the one a name got.
type Samba struct {
	Dir
	// RootBaseDN is the domain's DN; ServiceCanDirSync says whether the
	// service account was granted "Replicating Directory Changes".
	RootBaseDN string
	// LimitedDN/LimitedPassword is a second read-only account without the
	// replication right (DirSync is refused to it).
	LimitedDN, LimitedPassword string
}

type sambaServer struct {
	dir     string
	certs   *Certs
	cmd     *exec.Cmd
	exited  chan struct{}
	lock    *os.File
	err     error
	started time.Time
}

var (
	sambaOnce sync.Once
	sambaSrv  *sambaServer
	sambaSeq  atomic.Int64
)

var nonAlnum = regexp.MustCompile(`[^A-Za-z0-9]+`)

// SambaAD returns a view of the shared Samba AD DC, provisioning and
// starting it on first use in this process (about 10 s). It listens on the
// standard ports 389 and 636 of 127.0.0.1, so test processes take turns
// through a lock file; StopSamba (from TestMain) or the end of the process
// stops it.
func SambaAD(t testing.TB) *Samba {
	t.Helper()
	bins := Require(t, "samba", "samba-tool")
	sambaOnce.Do(func() { sambaSrv = startSamba(bins) })
	if sambaSrv.err != nil {
		t.Fatalf("testldap: Samba AD: %v", sambaSrv.err)
	}
	n := sambaSeq.Add(1)
	s := &Samba{RootBaseDN: SambaDomainDN}
	s.Flavor = ActiveDirectory
	s.URL = "ldap://127.0.0.1:389"
	s.LDAPSURL = "ldaps://127.0.0.1:636"
	s.CACertPEM = sambaSrv.certs.CAPEM
	s.AdminDN, s.AdminPassword = "CN=Administrator,CN=Users,"+SambaDomainDN, sambaAdminPW
	s.ServiceDN, s.ServicePassword = "CN="+sambaSvcName+",CN=Users,"+SambaDomainDN, sambaSvcPW
	s.LimitedDN, s.LimitedPassword = "CN=roster-limited,CN=Users,"+SambaDomainDN, sambaSvcPW
	s.Prefix = fmt.Sprintf("t%d", n)
	name := nonAlnum.ReplaceAllString(t.Name(), "-")
	if len(name) > 40 {
		name = name[:40]
	}
	root := "OU=Roster," + SambaDomainDN
	s.BaseDN = s.AddOU(t, root, fmt.Sprintf("%s-%d", name, n))
	s.UsersDN = s.AddOU(t, s.BaseDN, "People")
	s.GroupsDN = s.AddOU(t, s.BaseDN, "Groups")
	s.OtherDN = s.AddOU(t, s.BaseDN, "Other")
	s.OutsideDN = "OU=Outside," + SambaDomainDN
	t.Cleanup(s.closeAdmin)
	return s
}

// StopSamba stops the shared Samba (call it from TestMain after m.Run).
func StopSamba() {
	if sambaSrv == nil {
		return
	}
	if sambaSrv.cmd != nil {
		sambaSrv.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-sambaSrv.exited:
		case <-time.After(10 * time.Second):
			sambaSrv.cmd.Process.Kill()
			<-sambaSrv.exited
		}
		sambaSrv.cmd = nil
	}
	if sambaSrv.dir != "" {
		os.RemoveAll(sambaSrv.dir)
	}
	if sambaSrv.lock != nil {
		sambaSrv.lock.Close()
	}
}

func startSamba(bins map[string]string) *sambaServer {
	srv := &sambaServer{started: time.Now()}
	fail := func(format string, a ...any) *sambaServer {
		srv.err = fmt.Errorf(format, a...)
		return srv
	}
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), sambaLockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fail("lock file: %v", err)
	}
	deadline := time.Now().Add(15 * time.Minute)
	for {
		err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			lock.Close()
			return fail("another test process holds the Samba lock %s", lock.Name())
		}
		time.Sleep(200 * time.Millisecond)
	}
	srv.lock = lock
	if c, err := net.DialTimeout("tcp", "127.0.0.1:389", 500*time.Millisecond); err == nil {
		c.Close()
		return fail("port 389 is taken by another LDAP server; Samba AD needs it (stop the system slapd/samba)")
	}
	dir, err := os.MkdirTemp("", "roster-samba-")
	if err != nil {
		return fail("temp dir: %v", err)
	}
	srv.dir = dir
	run := func(args ...string) error {
		cmd := exec.Command(bins["samba-tool"], args...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("samba-tool %s: %v\n%s", args[0]+" "+args[1], err, tail(string(out), 3000))
		}
		return nil
	}
	prov := filepath.Join(dir, "prov")
	if err := run("domain", "provision", "--targetdir="+prov, "--use-rfc2307", "--realm="+SambaRealm,
		"--domain="+SambaDomain, "--adminpass="+sambaAdminPW, "--server-role=dc", "--dns-backend=NONE",
		"--host-name=rosterdc"); err != nil {
		return fail("%v", err)
	}
	certs, err := NewCerts("rosterdc", "rosterdc.roster.test")
	if err != nil {
		return fail("certificates: %v", err)
	}
	srv.certs = certs
	tlsDir := filepath.Join(prov, "tls")
	os.MkdirAll(tlsDir, 0o700)
	for name, v := range map[string]string{"ca.pem": certs.CAPEM, "cert.pem": certs.CertPEM, "key.pem": certs.KeyPEM} {
		if err := os.WriteFile(filepath.Join(tlsDir, name), []byte(v), 0o600); err != nil {
			return fail("%v", err)
		}
	}
	conf := filepath.Join(prov, "etc", "smb.conf")
	raw, err := os.ReadFile(conf)
	if err != nil {
		return fail("%v", err)
	}
	var out []string
	for _, line := range strings.Split(string(raw), "\n") {
		trim := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trim, "server services"), strings.HasPrefix(trim, "log file"), strings.HasPrefix(trim, "logging"):
			continue
		}
		out = append(out, line)
		if trim == "[global]" {
			out = append(out,
				"\tserver services = ldap",
				"\tldap server require strong auth = no",
				"\tlog file = "+filepath.Join(prov, "log.%m"),
				"\ttls enabled = yes",
				"\ttls keyfile = "+filepath.Join(tlsDir, "key.pem"),
				"\ttls certfile = "+filepath.Join(tlsDir, "cert.pem"),
				"\ttls cafile = "+filepath.Join(tlsDir, "ca.pem"),
				"\tinterfaces = lo",
				"\tbind interfaces only = yes",
			)
		}
	}
	if err := os.WriteFile(conf, []byte(strings.Join(out, "\n")), 0o644); err != nil {
		return fail("%v", err)
	}
	sam := filepath.Join(prov, "private", "sam.ldb")
	for _, name := range []string{sambaSvcName, "roster-limited"} {
		if err := run("user", "create", name, sambaSvcPW, "-H", sam, "--configfile="+conf); err != nil {
			return fail("%v", err)
		}
	}
	for _, car := range []string{"get-changes"} {
		if err := run("dsacl", "set", "-H", sam, "--configfile="+conf, "--car="+car, "--action=allow",
			"--objectdn="+SambaDomainDN, "--trusteedn=CN="+sambaSvcName+",CN=Users,"+SambaDomainDN); err != nil {
			return fail("%v", err)
		}
	}
	// Samba's DirSync (unlike Windows, as far as its docs say) hides
	// tombstones from an account that only has "Replicating Directory
	// Changes" unless it may list and read CN=Deleted Objects, whose
	// descriptor samba-tool dsacl cannot edit: do it with show_deleted.
	sid, err := exec.Command(bins["samba-tool"], "user", "show", sambaSvcName, "-H", sam, "--configfile="+conf, "--attributes=objectSid").CombinedOutput()
	if err != nil {
		return fail("samba-tool user show: %v\n%s", err, sid)
	}
	m := regexp.MustCompile(`objectSid: (S-[0-9-]+)`).FindSubmatch(sid)
	if m == nil {
		return fail("no objectSid for %s: %s", sambaSvcName, sid)
	}
	py := `import sys
from samba.samdb import SamDB
from samba.auth import system_session
from samba.param import LoadParm
import ldb
lp = LoadParm(); lp.load(sys.argv[2])
db = SamDB(url=sys.argv[1], session_info=system_session(), lp=lp)
dn = "CN=Deleted Objects," + str(db.get_default_basedn())
sd = "O:SYG:SYD:PAI(A;;RPWPCCDCLCRCWOWDSDSW;;;SY)(A;;RPLC;;;BA)(A;;RPLC;;;%s)" % sys.argv[3]
db.modify_ldif("dn: %s\nchangetype: modify\nreplace: nTSecurityDescriptor\nnTSecurityDescriptor: %s\n" % (dn, sd), ["show_deleted:1"])
`
	if out, err := exec.Command("/usr/bin/python3", "-c", py, sam, conf, string(m[1])).CombinedOutput(); err != nil {
		return fail("grant read on Deleted Objects: %v\n%s", err, out)
	}
	// Start samba in the foreground from a goroutine that keeps its OS
	// thread: Pdeathsig then kills samba when this process ends.
	started := make(chan error, 1)
	srv.exited = make(chan struct{})
	go func() {
		runtime.LockOSThread()
		cmd := exec.Command(bins["samba"], "-i", "-M", "single", "-s", conf)
		logf, _ := os.Create(filepath.Join(prov, "samba.out"))
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			started <- err
			close(srv.exited)
			return
		}
		srv.cmd = cmd
		started <- nil
		cmd.Wait()
		logf.Close()
		close(srv.exited)
		select {} // keep the thread (and so Pdeathsig's parent) alive
	}()
	if err := <-started; err != nil {
		return fail("start samba: %v", err)
	}
	deadline = time.Now().Add(60 * time.Second)
	for {
		select {
		case <-srv.exited:
			log, _ := os.ReadFile(filepath.Join(prov, "samba.out"))
			return fail("samba exited: %s", tail(string(log), 3000))
		default:
		}
		c, err := ldap.DialURL("ldap://127.0.0.1:389")
		if err == nil {
			err = c.Bind("CN=Administrator,CN=Users,"+SambaDomainDN, sambaAdminPW)
			if err == nil {
				err = setupSambaOUs(c)
				c.Close()
				if err != nil {
					return fail("create OUs: %v", err)
				}
				return srv
			}
			c.Close()
		}
		if time.Now().After(deadline) {
			return fail("samba did not answer LDAP within 60s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func setupSambaOUs(c *ldap.Conn) error {
	for _, dn := range []string{"OU=Roster," + SambaDomainDN, "OU=Outside," + SambaDomainDN} {
		req := ldap.NewAddRequest(dn, nil)
		req.Attribute("objectClass", []string{"top", "organizationalUnit"})
		if err := c.Add(req); err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultEntryAlreadyExists) {
			return err
		}
	}
	return nil
}

// AccountName is the sAMAccountName AddUser/AddGroup give name.
func (d *Dir) AccountName(name string) string {
	if d.Prefix == "" {
		return name
	}
	return d.Prefix + "-" + name
}
