package msgraph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/roster-dev/roster/connectors"
	"github.com/roster-dev/roster/connectors/msgraph"
	"github.com/roster-dev/roster/connectors/msgraph/msgraphfake"
)

const testSecret = "s3cr3t~Value.For-Tests_0123456789"

func newFake(t *testing.T, opts msgraphfake.Options) *msgraphfake.Server {
	t.Helper()
	if opts.ClientSecret == "" && opts.Certificates == nil {
		opts.ClientSecret = testSecret
	}
	srv := msgraphfake.New(opts)
	t.Cleanup(srv.Close)
	return srv
}

func configFor(srv *msgraphfake.Server) *msgraph.Config {
	return &msgraph.Config{
		TenantID:     srv.TenantID,
		ClientID:     srv.ClientID,
		ClientSecret: testSecret,
		GraphURL:     srv.URL,
		LoginURL:     srv.LoginURL,
	}
}

// sleeps records the waits a source asked for and returns at once.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

func open(t *testing.T, cfg *msgraph.Config, sl *sleeps, log *slog.Logger) *msgraph.Source {
	t.Helper()
	if sl == nil {
		sl = &sleeps{}
	}
	src, err := msgraph.Open(context.Background(), cfg, log, msgraph.Options{
		Sleep:       sl.sleep,
		BaseBackoff: time.Millisecond,
		MaxBackoff:  5 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return src
}

func quietLog(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// directory is what a test built in a fake, to compare listings against.
type directory struct {
	users    []string // every user id, in order
	disabled map[string]bool
	noMail   map[string]bool // users with neither mail nor a usable UPN
	groups   []string
	nested   map[string]string // child group -> parent group
}

// populate builds nUsers users and nGroups groups: each user is in two
// groups, every 25th user is disabled, every 1000th has no usable address
// (a guest without mail), and every 10th group holds the next group as a
// nested member.
func populate(t *testing.T, srv *msgraphfake.Server, nUsers, nGroups int) *directory {
	t.Helper()
	d := &directory{disabled: map[string]bool{}, noMail: map[string]bool{}, nested: map[string]string{}}
	us := make([]msgraphfake.User, nUsers)
	for i := range us {
		u := msgraphfake.User{
			DisplayName:       fmt.Sprintf("User %05d", i),
			GivenName:         "User",
			Surname:           fmt.Sprintf("%05d", i),
			Mail:              fmt.Sprintf("User%05d@Contoso.com", i),
			UserPrincipalName: fmt.Sprintf("user%05d@contoso.onmicrosoft.com", i),
			AccountEnabled:    i%25 != 7,
		}
		if i%1000 == 999 {
			u.Mail = ""
			u.UserPrincipalName = fmt.Sprintf("guest%05d_fabrikam.com#EXT#@contoso.onmicrosoft.com", i)
		}
		us[i] = u
	}
	d.users = srv.AddUsers(us)
	for i, u := range us {
		if !u.AccountEnabled {
			d.disabled[d.users[i]] = true
		}
		if u.Mail == "" {
			d.noMail[d.users[i]] = true
		}
	}
	members := make([][]string, nGroups)
	for i, id := range d.users {
		a, b := i%nGroups, (i*7+3)%nGroups
		members[a] = append(members[a], id)
		if b != a {
			members[b] = append(members[b], id)
		}
	}
	for g := 0; g < nGroups; g++ {
		id, err := srv.AddGroup(msgraphfake.Group{DisplayName: fmt.Sprintf("Group %03d", g)}, members[g]...)
		if err != nil {
			t.Fatal(err)
		}
		d.groups = append(d.groups, id)
	}
	for g := 0; g+1 < nGroups; g += 10 {
		if err := srv.AddMember(d.groups[g], d.groups[g+1]); err != nil {
			t.Fatal(err)
		}
		d.nested[d.groups[g+1]] = d.groups[g]
	}
	return d
}

func byUser(users []connectors.User) map[string]connectors.User {
	m := make(map[string]connectors.User, len(users))
	for _, u := range users {
		m[u.ExternalID] = u
	}
	return m
}

func byGroup(groups []connectors.Group) map[string]connectors.Group {
	m := make(map[string]connectors.Group, len(groups))
	for _, g := range groups {
		m[g.ExternalID] = g
	}
	return m
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func full(t *testing.T, src *msgraph.Source) (*connectors.Snapshot, json.RawMessage) {
	t.Helper()
	snap, cur, err := src.Full(context.Background())
	if err != nil {
		t.Fatalf("Full: %v", err)
	}
	return snap, cur
}

func changes(t *testing.T, src *msgraph.Source, cur json.RawMessage) (*connectors.Delta, json.RawMessage) {
	t.Helper()
	d, next, err := src.Changes(context.Background(), cur)
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	return d, next
}
