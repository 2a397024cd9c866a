package ldap_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/roster-dev/roster/connectors"
	"github.com/roster-dev/roster/connectors/ldap"
	"github.com/roster-dev/roster/internal/testldap"
)

// The fake server needs no installed binaries: these tests always run.

func fakeGUID(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:16]
}

// fakeAD fills a fake AD with users u0..u(n-1) and returns the config.
func fakeAD(t *testing.T, users int) (*testldap.Fake, ldap.Config) {
	f := testldap.StartFake(t)
	for i := 0; i < users; i++ {
		dn := fmt.Sprintf("CN=u%d,OU=People,DC=fake,DC=test", i)
		e := (&testldap.FakeEntry{DN: dn}).
			Set("objectClass", "top", "person", "user").
			Set("objectCategory", "person").
			Set("sAMAccountName", fmt.Sprintf("u%d", i)).
			Set("mail", fmt.Sprintf("U%d@Fake.Test", i)).
			Set("userAccountControl", "512").
			SetRaw("objectGUID", fakeGUID(dn))
		f.Add(e)
	}
	cfg := ldap.Config{URL: f.URL, BindDN: "CN=svc,DC=fake,DC=test", BindPassword: f.Password, BaseDN: "DC=fake,DC=test",
		Timeout: connectors.Duration(10 * time.Second)}
	return f, cfg
}

func fakeGroup(f *testldap.Fake, name string, members int) string {
	dn := "CN=" + name + ",OU=Groups,DC=fake,DC=test"
	var m []string
	for i := 0; i < members; i++ {
		m = append(m, fmt.Sprintf("CN=u%d,OU=People,DC=fake,DC=test", i))
	}
	f.Add((&testldap.FakeEntry{DN: dn}).Set("objectClass", "top", "group").Set("cn", name).Set("member", m...).SetRaw("objectGUID", fakeGUID(dn)))
	return ldap.FormatGUID(fakeGUID(dn))
}

func TestFakePageSizeCap(t *testing.T) {
	f, cfg := fakeAD(t, 2500)
	cfg.PageSize = 2000 // AD serves at most 1000 per page
	s := open(t, cfg)
	if s.Flavor() != ldap.FlavorActiveDirectory {
		t.Fatalf("flavor %q", s.Flavor())
	}
	snap, _ := full(t, s)
	if len(snap.Users) != 2500 {
		t.Fatalf("users %d, want 2500", len(snap.Users))
	}
	if n := f.PagedSearches.Load(); n < 3 {
		t.Fatalf("paged requests %d: pages were not followed", n)
	}
	if snap.Users[0].Email != "u0@fake.test" {
		t.Fatalf("email %q", snap.Users[0].Email)
	}
}

func TestFakeRangeRetrieval(t *testing.T) {
	f, cfg := fakeAD(t, 5000)
	big := fakeGroup(f, "big", 5000)
	exact := fakeGroup(f, "exact", 1500)
	over := fakeGroup(f, "over", 1501)
	s := open(t, cfg)
	snap, _ := full(t, s)
	gs := groupsByID(snap.Groups)
	for id, want := range map[string]int{big: 5000, exact: 1500, over: 1501} {
		g := gs[id]
		if len(g.Members) != want {
			t.Errorf("group %s: %d members, want %d", g.Name, len(g.Members), want)
		}
	}
	// 5000 = 0-1499 + 1500-2999 + 3000-4499 + 4500-*: three range reads;
	// 1501: one.
	if n := f.RangeReads.Load(); n != 4 {
		t.Errorf("range reads %d, want 4", n)
	}
}

func TestFakeSuccessZeroEntries(t *testing.T) {
	f, cfg := fakeAD(t, 10)
	s := open(t, cfg)
	f.Empty.Store(true)
	snap, _ := full(t, s)
	// Faithful: an empty directory is reported as empty; the core's
	// deletion guard decides what to do with it.
	if len(snap.Users) != 0 || len(snap.Groups) != 0 {
		t.Fatalf("snapshot %+v", snap)
	}
}

func TestFakeDropMidPaging(t *testing.T) {
	f, cfg := fakeAD(t, 3000)
	cfg.PageSize = 500
	s := open(t, cfg)
	f.DropAfter.Store(1200)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	snap, cur, err := s.Full(ctx)
	if err == nil || snap != nil || cur != nil {
		t.Fatalf("dropped connection: snap=%v err=%v", snap != nil, err)
	}
	f.DropAfter.Store(0)
	snap, _ = full(t, s)
	if len(snap.Users) != 3000 {
		t.Fatalf("after recovery: %d users", len(snap.Users))
	}
}
