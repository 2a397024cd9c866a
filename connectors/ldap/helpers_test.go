package ldap_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/roster-dev/roster/connectors"
	"github.com/roster-dev/roster/connectors/ldap"
	"github.com/roster-dev/roster/internal/testldap"
)

func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("ROSTER_TEST_VERBOSE") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func configFor(d *testldap.Dir) ldap.Config {
	return ldap.Config{
		URL:          d.URL,
		BindDN:       d.ServiceDN,
		BindPassword: d.ServicePassword,
		BaseDN:       d.BaseDN,
		Timeout:      connectors.Duration(20 * time.Second),
	}
}

func open(t testing.TB, cfg ldap.Config) *ldap.Source {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := ldap.Open(ctx, cfg, testLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func full(t testing.TB, s *ldap.Source) (*connectors.Snapshot, json.RawMessage) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	snap, cur, err := s.Full(ctx)
	if err != nil {
		t.Fatalf("Full: %v", err)
	}
	return snap, cur
}

func changes(t testing.TB, s *ldap.Source, cur json.RawMessage) (*connectors.Delta, json.RawMessage) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, next, err := s.Changes(ctx, cur)
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	return d, next
}

func usersByID(us []connectors.User) map[string]connectors.User {
	m := map[string]connectors.User{}
	for _, u := range us {
		m[u.ExternalID] = u
	}
	return m
}

func groupsByID(gs []connectors.Group) map[string]connectors.Group {
	m := map[string]connectors.Group{}
	for _, g := range gs {
		m[g.ExternalID] = g
	}
	return m
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func equalSets(a, b []string) bool {
	a, b = sorted(a), sorted(b)
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func isEmptyDelta(d *connectors.Delta) bool {
	return len(d.Users) == 0 && len(d.Groups) == 0 && len(d.DeletedUsers) == 0 && len(d.DeletedGroups) == 0 && d.Present == nil
}
