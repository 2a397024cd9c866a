package ldap_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/roster-dev/roster/connectors"
	"github.com/roster-dev/roster/connectors/ldap"
	"github.com/roster-dev/roster/internal/testldap"
)

func TestSambaFull(t *testing.T) {
	sa := testldap.SambaAD(t)
	var users []string
	for _, n := range []string{"u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9", "u10", "u11", "u12"} {
		users = append(users, sa.AddUser(t, n, n+"@Roster.Test"))
	}
	nomail := sa.AddUser(t, "nomail", "")
	sa.Disable(t, users[1])
	inner := sa.AddGroup(t, "inner", users[0], users[1])
	outer := sa.AddGroup(t, "outer", inner, users[2])
	// A cycle.
	sa.AddMember(t, inner, outer)

	cfg := configFor(&sa.Dir)
	cfg.PageSize = 5 // several pages
	s := open(t, cfg)
	if s.Flavor() != ldap.FlavorActiveDirectory {
		t.Fatalf("flavor %q", s.Flavor())
	}
	snap, cur := full(t, s)
	if k := ldap.CursorKind(cur); k != ldap.KindDirSync {
		t.Fatalf("cursor kind %q, want dirsync", k)
	}
	if len(snap.Users) != 12 || len(snap.Groups) != 2 || len(snap.Skipped) != 1 {
		t.Fatalf("users %d groups %d skipped %d", len(snap.Users), len(snap.Groups), len(snap.Skipped))
	}
	if snap.Skipped[0].ID != sa.ID(t, nomail) {
		t.Fatalf("skipped %+v", snap.Skipped)
	}
	byID := usersByID(snap.Users)
	u0 := byID[sa.ID(t, users[0])]
	if u0.Email != "u1@roster.test" || u0.UserName != sa.AccountName("u1") || !u0.Active {
		t.Fatalf("user: %+v", u0)
	}
	if byID[sa.ID(t, users[1])].Active {
		t.Fatal("disabled user is active")
	}
	gs := groupsByID(snap.Groups)
	if g := gs[sa.ID(t, inner)]; !equalSets(g.Members, []string{sa.ID(t, users[0]), sa.ID(t, users[1]), sa.ID(t, outer)}) {
		t.Fatalf("inner: %+v", g)
	}
	if g := gs[sa.ID(t, outer)]; !equalSets(g.Members, []string{sa.ID(t, inner), sa.ID(t, users[2])}) {
		t.Fatalf("outer: %+v", g)
	}
}

func TestSambaChangesDirSync(t *testing.T) {
	sa := testldap.SambaAD(t)
	runChangeScenarios(t, &sa.Dir, configFor(&sa.Dir), ldap.KindDirSync)
}

func TestSambaChangesUSN(t *testing.T) {
	sa := testldap.SambaAD(t)
	cfg := configFor(&sa.Dir)
	// This account lacks "Replicating Directory Changes": DirSync is
	// refused and the source polls uSNChanged.
	cfg.BindDN, cfg.BindPassword = sa.LimitedDN, sa.LimitedPassword
	a := sa.AddUser(t, "usn-a", "a@roster.test")
	g := sa.AddGroup(t, "usn-g", a)
	s := open(t, cfg)
	_, cur := full(t, s)
	if k := ldap.CursorKind(cur); k != ldap.KindUSN {
		t.Fatalf("cursor kind %q, want usn", k)
	}
	if d, _ := changes(t, s, cur); !isEmptyDelta(d) {
		t.Fatalf("no change: %+v", d)
	}
	b := sa.AddUser(t, "usn-b", "b@roster.test")
	sa.AddMember(t, g, b)
	sa.Disable(t, a)
	d, cur := changes(t, s, cur)
	us := usersByID(d.Users)
	if _, ok := us[sa.ID(t, b)]; !ok {
		t.Fatalf("added user missing: %+v", d)
	}
	if u, ok := us[sa.ID(t, a)]; !ok || u.Active {
		t.Fatalf("disabled user: %+v", d.Users)
	}
	if gg := groupsByID(d.Groups)[sa.ID(t, g)]; !equalSets(gg.Members, []string{sa.ID(t, a), sa.ID(t, b)}) {
		t.Fatalf("group: %+v", d.Groups)
	}
	// uSNChanged cannot show deletions; the periodic full listing (Full,
	// run by the poller once full_sync_every has passed) does, and its
	// cursor continues with uSNChanged.
	bid := sa.ID(t, b)
	sa.Delete(t, b)
	snap, cur := full(t, s)
	listed := usersByID(snap.Users)
	if _, ok := listed[bid]; ok {
		t.Fatal("deleted user still listed by Full")
	}
	if _, ok := listed[sa.ID(t, a)]; !ok {
		t.Fatal("a not listed by Full")
	}
	if k := ldap.CursorKind(cur); k != ldap.KindUSN {
		t.Fatalf("cursor kind after Full %q, want usn", k)
	}

	// USN going backwards (restored DC) and another DC: ErrResync.
	tamper := func(f func(m map[string]any)) json.RawMessage {
		var m map[string]any
		json.Unmarshal(cur, &m)
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	ctx := context.Background()
	if _, _, err := s.Changes(ctx, tamper(func(m map[string]any) { m["usn"] = 1 << 40 })); !errors.Is(err, connectors.ErrResync) {
		t.Fatalf("USN rollback: %v", err)
	}
	if _, _, err := s.Changes(ctx, tamper(func(m map[string]any) { m["invocation_id"] = "00000000-0000-0000-0000-000000000001" })); !errors.Is(err, connectors.ErrResync) {
		t.Fatalf("other DC: %v", err)
	}
}

func TestSambaFailoverResync(t *testing.T) {
	sa := testldap.SambaAD(t)
	sa.AddUser(t, "fo", "fo@roster.test")
	cfg := configFor(&sa.Dir)
	cfg.URLs = []string{"ldap://127.0.0.1:1", sa.URL} // first DC down
	s := open(t, cfg)
	_, cur := full(t, s)
	var m map[string]any
	json.Unmarshal(cur, &m)
	m["invocation_id"] = "00000000-0000-0000-0000-000000000002" // made on another DC
	other, _ := json.Marshal(m)
	if _, _, err := s.Changes(context.Background(), other); !errors.Is(err, connectors.ErrResync) {
		t.Fatalf("cursor from another DC: %v", err)
	}
	// A cursor for other settings.
	cfg2 := cfg
	cfg2.UserFilter = "(&(objectClass=user)(mail=*))"
	s2 := open(t, cfg2)
	if _, _, err := s2.Changes(context.Background(), cur); !errors.Is(err, connectors.ErrResync) {
		t.Fatalf("cursor for other settings: %v", err)
	}
}

func TestSambaTLS(t *testing.T) {
	sa := testldap.SambaAD(t)
	sa.AddUser(t, "tls", "tls@roster.test")
	for name, mod := range map[string]func(*ldap.Config){
		"ldaps":    func(c *ldap.Config) { c.URL = sa.LDAPSURL; c.CACert = sa.CACertPEM },
		"starttls": func(c *ldap.Config) { c.StartTLS = true; c.CACert = sa.CACertPEM },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := configFor(&sa.Dir)
			mod(&cfg)
			s := open(t, cfg)
			snap, _ := full(t, s)
			if len(snap.Users) != 1 {
				t.Fatalf("users %d", len(snap.Users))
			}
		})
	}
}
