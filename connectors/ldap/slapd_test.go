package ldap_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/roster-dev/roster/connectors"
	"github.com/roster-dev/roster/connectors/ldap"
	"github.com/roster-dev/roster/internal/testldap"
)

func TestSlapdFullAboveSizeLimit(t *testing.T) {
	sl := testldap.StartSlapd(t, testldap.SlapdOptions{Users: 1200, Groups: 12, UsersWithoutMail: 3, SizeLimit: 100})
	// The limit is real: an unpaged search by the service account fails.
	c, err := goldap.DialURL(sl.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(sl.ServiceDN, sl.ServicePassword); err != nil {
		t.Fatal(err)
	}
	_, err = c.Search(goldap.NewSearchRequest(sl.BaseDN, goldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=inetOrgPerson)", []string{"uid"}, nil))
	if !goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) {
		t.Fatalf("unpaged search: want size limit exceeded, got %v", err)
	}

	mixed := sl.AddUser(t, "mixed", "Mixed.Case@Example.COM")
	cfg := configFor(&sl.Dir)
	cfg.PageSize = 250
	s := open(t, cfg)
	if s.Flavor() != ldap.FlavorOpenLDAP {
		t.Fatalf("flavor %q", s.Flavor())
	}
	snap, cur := full(t, s)
	if got := ldap.CursorKind(cur); got != ldap.KindSyncrepl {
		t.Fatalf("cursor kind %q, want syncrepl", got)
	}
	if len(snap.Users) != 1198 || len(snap.Skipped) != 3 || len(snap.Groups) != 12 {
		t.Fatalf("users %d skipped %d groups %d; want 1198, 3, 12", len(snap.Users), len(snap.Skipped), len(snap.Groups))
	}
	for _, sk := range snap.Skipped {
		if !strings.Contains(sk.Reason, "no email") {
			t.Errorf("skipped reason %q", sk.Reason)
		}
	}
	users := usersByID(snap.Users)
	if u := users[sl.ID(t, mixed)]; u.Email != "mixed.case@example.com" || u.UserName != "mixed" || u.DisplayName != "Display mixed" ||
		u.GivenName != "Given mixed" || u.FamilyName != "Family mixed" || !u.Active {
		t.Fatalf("mixed user: %+v", u)
	}
	groups := groupsByID(snap.Groups)
	for j := 0; j < 12; j++ {
		id := sl.ID(t, sl.BulkGroupDN(j))
		g, ok := groups[id]
		if !ok {
			t.Fatalf("group %d missing", j)
		}
		var want []string
		for _, dn := range sl.BulkGroupMembers(j) {
			want = append(want, sl.ID(t, dn))
		}
		if !equalSets(g.Members, want) {
			t.Fatalf("group g%05d members: got %d, want %d", j, len(g.Members), len(want))
		}
		if g.Name != fmt.Sprintf("g%05d", j) {
			t.Fatalf("group name %q", g.Name)
		}
	}
	// Nested groups off: group members are dropped.
	off := false
	cfg.NestedGroups = &off
	s2 := open(t, cfg)
	snap2, _ := full(t, s2)
	g0 := groupsByID(snap2.Groups)[sl.ID(t, sl.BulkGroupDN(0))]
	if contains(g0.Members, sl.ID(t, sl.BulkGroupDN(1))) || len(g0.Members) != 100 {
		t.Fatalf("nested off: g00000 has %d members", len(g0.Members))
	}
}

// scenario runs the change scenarios shared by slapd and Samba.
type scenario struct {
	d       *testldap.Dir
	s       *ldap.Source
	cur     []byte
	ad      bool
	resolve func(dn string) string
}

func (sc *scenario) step(t *testing.T) *connectors.Delta {
	t.Helper()
	d, next := changes(t, sc.s, sc.cur)
	sc.cur = next
	return d
}

func runChangeScenarios(t *testing.T, d *testldap.Dir, cfg ldap.Config, wantKind string) {
	alice := d.AddUser(t, "alice", "alice@example.com")
	bob := d.AddUser(t, "bob", "bob@example.com")
	carol := d.AddUser(t, "carol", "carol@example.com")
	eng := d.AddGroup(t, "eng", alice, bob)
	all := d.AddGroup(t, "all", eng)
	outsider := d.AddUserIn(t, d.OutsideDN, "outsider", "outsider@example.com")

	s := open(t, cfg)
	snap, cur := full(t, s)
	if got := ldap.CursorKind(cur); got != wantKind {
		t.Fatalf("cursor kind %q, want %q", got, wantKind)
	}
	id := func(dn string) string { return d.ID(t, dn) }
	users := usersByID(snap.Users)
	if _, ok := users[id(outsider)]; ok {
		t.Fatal("user outside base_dn listed")
	}
	for _, dn := range []string{alice, bob, carol} {
		if _, ok := users[id(dn)]; !ok {
			t.Fatalf("%s not listed", dn)
		}
	}
	groups := groupsByID(snap.Groups)
	if g := groups[id(eng)]; !equalSets(g.Members, []string{id(alice), id(bob)}) {
		t.Fatalf("eng members %v", g.Members)
	}
	if g := groups[id(all)]; !equalSets(g.Members, []string{id(eng)}) {
		t.Fatalf("all members %v", g.Members)
	}
	sc := &scenario{d: d, s: s, cur: cur, ad: d.Flavor == testldap.ActiveDirectory}

	// Nothing changed.
	if dl := sc.step(t); !isEmptyDelta(dl) {
		t.Fatalf("no change: got %+v", dl)
	}

	t.Run("add", func(t *testing.T) {
		dave := d.AddUser(t, "dave", "Dave@Example.com")
		dl := sc.step(t)
		u, ok := usersByID(dl.Users)[id(dave)]
		if !ok || u.Email != "dave@example.com" {
			t.Fatalf("added user: %+v", dl)
		}
	})
	t.Run("modify mail and name", func(t *testing.T) {
		d.Set(t, alice, "mail", "alice.new@example.com")
		d.Set(t, alice, "displayName", "Alice Renamed")
		dl := sc.step(t)
		u, ok := usersByID(dl.Users)[id(alice)]
		if !ok || u.Email != "alice.new@example.com" || u.DisplayName != "Alice Renamed" || u.UserName != d.AccountName("alice") {
			t.Fatalf("modified user: %+v", dl)
		}
	})
	t.Run("move to another OU", func(t *testing.T) {
		before := id(bob)
		bob = d.Move(t, bob, d.OtherDN)
		if id(bob) != before {
			t.Fatal("id changed on move")
		}
		dl := sc.step(t)
		u, ok := usersByID(dl.Users)[before]
		if !ok || !strings.EqualFold(u.Attrs["dn"].(string), bob) {
			t.Fatalf("moved user: %+v", dl)
		}
		if len(dl.DeletedUsers) != 0 {
			t.Fatalf("move reported a deletion: %v", dl.DeletedUsers)
		}
		// AD keeps the group's member value pointing at the moved user;
		// OpenLDAP (no refint overlay here) does not.
		if !sc.ad {
			d.RemoveMember(t, eng, strings.Replace(bob, d.OtherDN, d.UsersDN, 1))
			d.AddMember(t, eng, bob)
		}
		dl = sc.step(t)
		if sc.ad {
			// nothing else changed
		} else if g := groupsByID(dl.Groups)[id(eng)]; !equalSets(g.Members, []string{id(alice), before}) {
			t.Fatalf("eng after move: %+v", dl.Groups)
		}
	})
	t.Run("membership", func(t *testing.T) {
		d.AddMember(t, eng, carol)
		dl := sc.step(t)
		g, ok := groupsByID(dl.Groups)[id(eng)]
		if !ok || !equalSets(g.Members, []string{id(alice), id(bob), id(carol)}) {
			t.Fatalf("eng after add: %+v", dl.Groups)
		}
		d.RemoveMember(t, eng, alice)
		dl = sc.step(t)
		g, ok = groupsByID(dl.Groups)[id(eng)]
		if !ok || !equalSets(g.Members, []string{id(bob), id(carol)}) {
			t.Fatalf("eng after remove: %+v", dl.Groups)
		}
	})
	t.Run("nested group", func(t *testing.T) {
		ops := d.AddGroup(t, "ops", carol)
		d.AddMember(t, all, ops)
		dl := sc.step(t)
		gs := groupsByID(dl.Groups)
		if g, ok := gs[id(all)]; !ok || !equalSets(g.Members, []string{id(eng), id(ops)}) {
			t.Fatalf("all after nesting: %+v", dl.Groups)
		}
		if g, ok := gs[id(ops)]; !ok || !equalSets(g.Members, []string{id(carol)}) {
			t.Fatalf("ops: %+v", dl.Groups)
		}
	})
	if sc.ad {
		t.Run("disable", func(t *testing.T) {
			d.Disable(t, carol)
			dl := sc.step(t)
			u, ok := usersByID(dl.Users)[id(carol)]
			if !ok || u.Active {
				t.Fatalf("disabled user: %+v", dl.Users)
			}
			d.Enable(t, carol)
			dl = sc.step(t)
			if u := usersByID(dl.Users)[id(carol)]; !u.Active {
				t.Fatalf("enabled user: %+v", dl.Users)
			}
		})
	}
	t.Run("mail removed", func(t *testing.T) {
		d.Set(t, carol, "mail")
		dl := sc.step(t)
		if len(dl.Skipped) != 1 || dl.Skipped[0].ID != id(carol) {
			t.Fatalf("mail removed: %+v", dl)
		}
		d.Set(t, carol, "mail", "carol@example.com")
		sc.step(t)
	})
	t.Run("delete", func(t *testing.T) {
		gone := id(alice)
		d.Delete(t, alice)
		dl := sc.step(t)
		if !contains(dl.DeletedUsers, gone) && !presentMissing(dl, gone) {
			t.Fatalf("deleted user not reported: %+v", dl)
		}
		ops := d.GroupDN("ops")
		gid := id(ops)
		d.Delete(t, ops)
		dl = sc.step(t)
		if !contains(dl.DeletedGroups, gid) && !presentMissing(dl, gid) {
			t.Fatalf("deleted group not reported: %+v", dl)
		}
	})
	t.Run("move out of scope", func(t *testing.T) {
		before := id(bob)
		bob = d.Move(t, bob, d.OutsideDN)
		dl := sc.step(t)
		if !contains(dl.DeletedUsers, before) && !presentMissing(dl, before) {
			// slapd's refreshOnly session log does not report an entry that
			// left the search scope by a rename; the periodic full listing
			// finds it.
			if sc.ad {
				t.Fatalf("user moved out of base_dn not reported: %+v", dl)
			}
			t.Logf("moved out of scope: not in this delta (found by the periodic full listing)")
		}
	})
	t.Run("fresh source continues the cursor", func(t *testing.T) {
		// Another worker (no in-memory index) continues from the cursor:
		// member DNs are looked up.
		s2 := open(t, cfg)
		erin := d.AddUser(t, "erin", "erin@example.com")
		d.AddMember(t, eng, erin)
		dl, next := changes(t, s2, sc.cur)
		sc.cur = next
		g, ok := groupsByID(dl.Groups)[id(eng)]
		if !ok || !contains(g.Members, id(erin)) || !contains(g.Members, id(carol)) {
			t.Fatalf("eng via fresh source: %+v", dl.Groups)
		}
	})
	t.Run("periodic full listing", func(t *testing.T) {
		// The poller runs Full once full_sync_every has passed; the
		// listing shows what deltas may miss (bob left the scope), and
		// its cursor continues incrementally.
		snap, next := full(t, s)
		users := usersByID(snap.Users)
		if _, ok := users[id(carol)]; !ok {
			t.Fatal("carol not listed")
		}
		if _, ok := users[id(bob)]; ok {
			t.Fatal("bob, moved out of base_dn, still listed")
		}
		if _, ok := groupsByID(snap.Groups)[id(eng)]; !ok {
			t.Fatal("eng not listed")
		}
		if got := ldap.CursorKind(next); got != wantKind {
			t.Fatalf("cursor kind after the full listing %q, want %q", got, wantKind)
		}
		sc.cur = next
	})
	if dl := sc.step(t); !isEmptyDelta(dl) {
		t.Fatalf("no change at the end: got %+v", dl)
	}
}

func presentMissing(d *connectors.Delta, id string) bool {
	if d.Present == nil {
		return false
	}
	_, ok := d.Present[id]
	return !ok
}

func TestSlapdChanges(t *testing.T) {
	sl := testldap.StartSlapd(t, testldap.SlapdOptions{Users: 150, Groups: 3})
	runChangeScenarios(t, &sl.Dir, configFor(&sl.Dir), ldap.KindSyncrepl)
}

func TestSlapdChangesPresentPhase(t *testing.T) {
	// Without a session log, slapd answers a refresh with a present phase.
	sl := testldap.StartSlapd(t, testldap.SlapdOptions{Users: 50, Groups: 3, SessionLog: -1, SizeLimit: 1000})
	s := open(t, configFor(&sl.Dir))
	_, cur := full(t, s)
	victim := sl.BulkUserDN(7)
	vid := sl.ID(t, victim)
	sl.Delete(t, victim)
	d, _ := changes(t, s, cur)
	if !contains(d.DeletedUsers, vid) && !presentMissing(d, vid) {
		t.Fatalf("deletion not reported: %+v", d)
	}
	if d.Present != nil {
		if len(d.Present) != 49+3 {
			t.Fatalf("present has %d ids, want 52", len(d.Present))
		}
	}
}

func TestSlapdTimestampFallback(t *testing.T) {
	sl := testldap.StartSlapd(t, testldap.SlapdOptions{Users: 20, Groups: 2, NoSyncProv: true})
	s := open(t, configFor(&sl.Dir))
	_, cur := full(t, s)
	if k := ldap.CursorKind(cur); k != ldap.KindTimestamp {
		t.Fatalf("kind %q", k)
	}
	u := sl.AddUser(t, "late", "late@example.com")
	d, cur := changes(t, s, cur)
	if _, ok := usersByID(d.Users)[sl.ID(t, u)]; !ok {
		t.Fatalf("added user not in delta: %+v", d.Users)
	}
	sl.AddMember(t, sl.BulkGroupDN(0), u)
	d, _ = changes(t, s, cur)
	if g := groupsByID(d.Groups)[sl.ID(t, sl.BulkGroupDN(0))]; !contains(g.Members, sl.ID(t, u)) {
		t.Fatalf("group change not in delta: %+v", d.Groups)
	}
}

func TestSlapdServerDown(t *testing.T) {
	sl := testldap.StartSlapd(t, testldap.SlapdOptions{Users: 30, Groups: 2})
	s := open(t, configFor(&sl.Dir))
	_, cur := full(t, s)
	sl.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	snap, _, err := s.Full(ctx)
	if err == nil || snap != nil {
		t.Fatalf("Full with the server down: snap=%v err=%v", snap, err)
	}
	d, _, err := s.Changes(ctx, cur)
	if err == nil || d != nil || errors.Is(err, connectors.ErrResync) {
		t.Fatalf("Changes with the server down: d=%v err=%v", d, err)
	}
	if err := sl.Start(); err != nil {
		t.Fatal(err)
	}
	// Reconnects by itself.
	d, _ = changes(t, s, cur)
	if !isEmptyDelta(d) {
		t.Fatalf("after restart: %+v", d)
	}
}

func TestSlapdURLFailoverAndTLS(t *testing.T) {
	sl := testldap.StartSlapd(t, testldap.SlapdOptions{Users: 10, Groups: 1, TLS: true})
	dead := "ldap://127.0.0.1:1" // nothing listens on port 1
	for _, tc := range []struct {
		name string
		mod  func(*ldap.Config)
		ok   bool
	}{
		{"failover", func(c *ldap.Config) { c.URL = dead; c.URLs = []string{sl.URL} }, true},
		{"starttls", func(c *ldap.Config) { c.StartTLS = true; c.CACert = sl.CACertPEM }, true},
		{"ldaps", func(c *ldap.Config) { c.URL = sl.LDAPSURL; c.CACert = sl.CACertPEM }, true},
		{"ldaps unknown CA", func(c *ldap.Config) { c.URL = sl.LDAPSURL }, false},
		{"starttls via localhost name", func(c *ldap.Config) {
			c.URL = strings.Replace(sl.URL, "127.0.0.1", "localhost", 1)
			c.StartTLS = true
			c.CACert = sl.CACertPEM
		}, true},
		{"wrong password", func(c *ldap.Config) { c.BindPassword = "nope" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := configFor(&sl.Dir)
			cfg.Timeout = connectors.Duration(5 * time.Second)
			tc.mod(&cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			s, err := ldap.Open(ctx, cfg, testLogger(t))
			if !tc.ok {
				if err == nil {
					s.Close()
					t.Fatal("Open succeeded")
				}
				if strings.Contains(err.Error(), cfg.BindPassword) {
					t.Fatal("error shows the password")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			snap, _, err := s.Full(ctx)
			if err != nil || len(snap.Users) != 10 {
				t.Fatalf("Full: %v", err)
			}
		})
	}
}

func TestSlapdCancel(t *testing.T) {
	sl := testldap.StartSlapd(t, testldap.SlapdOptions{Users: 5000, Groups: 10})
	cfg := configFor(&sl.Dir)
	cfg.PageSize = 50
	s := open(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	snap, _, err := s.Full(ctx)
	if err == nil || snap != nil {
		t.Fatalf("cancelled Full: %v", err)
	}
	// And works afterwards.
	snap, _ = full(t, s)
	if len(snap.Users) != 5000 {
		t.Fatalf("users %d", len(snap.Users))
	}
}

// TestSlapdReplacedServer replaces the server at the directory's URL with a
// fresh one (same base DN, empty tree) between two polls: the cursor from
// the old database must not read as "nothing changed".
func TestSlapdReplacedServer(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts testldap.SlapdOptions
		kind string
	}{
		{"syncrepl", testldap.SlapdOptions{Users: 40, Groups: 2, SizeLimit: 1000}, ldap.KindSyncrepl},
		{"timestamp", testldap.SlapdOptions{Users: 40, Groups: 2, NoSyncProv: true}, ldap.KindTimestamp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sl := testldap.StartSlapd(t, tc.opts)
			s := open(t, configFor(&sl.Dir))
			_, cur := full(t, s)
			if k := ldap.CursorKind(cur); k != tc.kind {
				t.Fatalf("kind %q, want %q", k, tc.kind)
			}
			// The same server keeps its cursor.
			_, cur = changes(t, s, cur)

			sl.Rebuild(t, 0, 0)
			d, _, err := s.Changes(context.Background(), cur)
			if !errors.Is(err, connectors.ErrResync) {
				t.Fatalf("Changes on a replaced server = %+v, %v; want ErrResync", d, err)
			}
			snap, cur2 := full(t, s)
			if len(snap.Users) != 0 {
				t.Fatalf("fresh server lists %d users", len(snap.Users))
			}
			// The new cursor belongs to the new database.
			if _, _, err := s.Changes(context.Background(), cur2); err != nil {
				t.Fatalf("Changes after the resync: %v", err)
			}
		})
	}
}
