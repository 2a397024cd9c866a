package poll_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/roster-dev/roster/connectors"
	"github.com/roster-dev/roster/internal/testenv"
	"github.com/roster-dev/roster/store"
	"github.com/roster-dev/roster/sync/poll"
	"github.com/roster-dev/roster/sync/reconcile"
)

// fakeSource is an in-memory directory that answers as the test sets it.
type fakeSource struct {
	mu           sync.Mutex
	snap         *connectors.Snapshot
	delta        *connectors.Delta
	fullErr      error
	changesErr   error
	fullCalls    int
	changesCalls int
	seq          int
}

func (f *fakeSource) Full(context.Context) (*connectors.Snapshot, json.RawMessage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fullCalls++
	if f.fullErr != nil {
		return nil, nil, f.fullErr
	}
	f.seq++
	return f.snap, json.RawMessage(fmt.Sprintf(`{"kind":"fakesync","seq":%d}`, f.seq)), nil
}

func (f *fakeSource) Changes(_ context.Context, cursor json.RawMessage) (*connectors.Delta, json.RawMessage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changesCalls++
	if f.changesErr != nil {
		return nil, nil, f.changesErr
	}
	d := f.delta
	if d == nil {
		d = &connectors.Delta{}
	}
	f.delta = nil
	f.seq++
	return d, json.RawMessage(fmt.Sprintf(`{"kind":"fakesync","seq":%d}`, f.seq)), nil
}

func (f *fakeSource) calls() (full, changes int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fullCalls, f.changesCalls
}

var (
	sourcesMu sync.Mutex
	sources   = map[string]*fakeSource{}
)

// fullOnly is a fakeSource that cannot list changes (a plain Source).
type fullOnly struct{ f *fakeSource }

func (s fullOnly) Full(ctx context.Context) (*connectors.Snapshot, json.RawMessage, error) {
	return s.f.Full(ctx)
}

// fakeConfig names the fakeSource a directory polls.
type fakeConfig struct {
	connectors.PollSettings
	Source   string `json:"source"`
	FullOnly bool   `json:"full_only"`
}

func (c *fakeConfig) Validate() error                  { return errors.Join(c.Problems()...) }
func (c *fakeConfig) Polling() connectors.PollSettings { return c.PollSettings }
func (c *fakeConfig) Redacted() any                    { return *c }
func (c *fakeConfig) Open(context.Context, *slog.Logger) (connectors.Source, error) {
	sourcesMu.Lock()
	defer sourcesMu.Unlock()
	s, ok := sources[c.Source]
	if !ok {
		return nil, fmt.Errorf("no fake source %q", c.Source)
	}
	if c.FullOnly {
		return fullOnly{s}, nil
	}
	return s, nil
}

type fixture struct {
	t         *testing.T
	ctx       context.Context
	s         *store.Store
	p         *poll.Poller
	src       *fakeSource
	dir       string
	triggered []string
	after     int64
}

func newFixture(t *testing.T, e testenv.Engine, guard string) *fixture {
	t.Helper()
	ctx := context.Background()
	s := testenv.OpenStore(t, e)
	f := &fixture{t: t, ctx: ctx, s: s, src: &fakeSource{snap: &connectors.Snapshot{}}, dir: "dir-" + testenv.RandomHex(4)}
	sourcesMu.Lock()
	sources[f.dir] = f.src
	sourcesMu.Unlock()
	t.Cleanup(func() {
		sourcesMu.Lock()
		delete(sources, f.dir)
		sourcesMu.Unlock()
	})
	f.p = &poll.Poller{
		Store: s,
		Log:   slog.New(slog.DiscardHandler),
		Types: map[string]connectors.Type{"fake": {NewConfig: func() connectors.Config { return &fakeConfig{} }}},
		Trigger: func(_ context.Context, dirID string) error {
			f.triggered = append(f.triggered, dirID)
			return nil
		},
	}
	if err := s.CreateTeam(ctx, &store.Team{ID: "team", Name: "Team", Plan: store.PlanEnterprise, SSOStatus: "active"}); err != nil {
		t.Fatal(err)
	}
	settings := fmt.Sprintf(`{"source":%q%s}`, f.dir, guard)
	err := s.WithTx(ctx, func(tx *store.Tx) error {
		if err := tx.CreateDirectory(ctx, &store.Directory{ID: f.dir, TeamID: "team", Type: "fake", Settings: json.RawMessage(settings), State: store.StateSyncing}); err != nil {
			return err
		}
		return tx.CreateDirectory(ctx, &store.Directory{ID: f.dir + "-scim", TeamID: "team", Type: "scim"})
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) poll() {
	f.t.Helper()
	if err := f.p.Poll(f.ctx, f.dir); err != nil {
		f.t.Fatalf("poll: %v", err)
	}
}

func (f *fixture) directory() *store.Directory {
	f.t.Helper()
	d, err := f.s.GetDirectory(f.ctx, f.dir)
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

// mirror is the mirror as the tests compare it: users as "email active",
// and each group as "name: sorted members".
type mirror struct {
	Users  map[string]string
	Groups map[string]string
}

func (f *fixture) mirror() mirror {
	f.t.Helper()
	m := mirror{Users: map[string]string{}, Groups: map[string]string{}}
	members := map[string][]string{}
	err := f.s.ReadSnapshot(f.ctx, func(rt *store.ReadTx) error {
		if err := rt.EachMirrorUser(f.ctx, f.dir, func(u store.MirrorUserLite) {
			m.Users[u.ID] = fmt.Sprintf("%s %v", u.Email, u.Active)
		}); err != nil {
			return err
		}
		names, err := rt.MirrorGroupNames(f.ctx, f.dir)
		if err != nil {
			return err
		}
		for id, n := range names {
			m.Groups[id] = n + ":"
		}
		return rt.EachMembership(f.ctx, f.dir, func(r store.MembershipRow) {
			members[r.GroupID] = append(members[r.GroupID], r.MemberID)
		})
	})
	if err != nil {
		f.t.Fatal(err)
	}
	for g, ms := range members {
		sort.Strings(ms)
		m.Groups[g] += fmt.Sprint(ms)
	}
	return m
}

// events returns the types of the feed's events since the last call.
func (f *fixture) events() []string {
	f.t.Helper()
	evs, err := f.s.ListEvents(f.ctx, "team", f.after, 1000)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
		f.after = e.Seq
	}
	return out
}

func user(id string, active bool) connectors.User {
	return connectors.User{ExternalID: id, UserName: id, Email: id + "@example.com", DisplayName: "User " + id, Active: active}
}

func group(id, name string, members ...string) connectors.Group {
	return connectors.Group{ExternalID: id, Name: name, Members: members}
}

func forEngines(t *testing.T, fn func(t *testing.T, e testenv.Engine)) {
	for _, e := range testenv.Engines() {
		t.Run(e.Name, func(t *testing.T) { fn(t, e) })
	}
}

func TestPollFullThenIncremental(t *testing.T) {
	forEngines(t, func(t *testing.T, e testenv.Engine) {
		f := newFixture(t, e, "")
		f.src.snap = &connectors.Snapshot{
			Users: []connectors.User{user("a", true), user("b", true), user("c", false)},
			Groups: []connectors.Group{
				group("g1", "Eng", "a", "g2", "g1"), // a group never holds itself
				group("g2", "Platform", "b", "nobody"),
			},
			Skipped: []connectors.Skipped{{ID: "cn=x", Reason: "no email"}},
		}
		f.poll()
		want := mirror{
			Users:  map[string]string{"a": "a@example.com true", "b": "b@example.com true", "c": "c@example.com false"},
			Groups: map[string]string{"g1": "Eng:[a g2]", "g2": "Platform:[b]"},
		}
		if diff := cmp.Diff(want, f.mirror()); diff != "" {
			t.Fatalf("mirror after the full poll (-want +got):\n%s", diff)
		}
		d := f.directory()
		if d.State != store.StateOK || d.CursorKind != "fakesync" || d.LastFullAt == nil || d.LastSyncAt == nil {
			t.Fatalf("directory after the full poll: state %q cursor kind %q last full %v", d.State, d.CursorKind, d.LastFullAt)
		}
		if d.LastError != "1 entries skipped, e.g. cn=x: no email" {
			t.Errorf("last_error = %q, want the skipped entry", d.LastError)
		}
		if diff := cmp.Diff([]string{f.dir}, f.triggered); diff != "" {
			t.Errorf("reconciles triggered (-want +got):\n%s", diff)
		}

		// The mirror reaches the roster.
		r := &reconcile.Reconciler{Store: f.s}
		if _, err := r.Reconcile(f.ctx, f.dir); err != nil {
			t.Fatal(err)
		}
		c, err := f.s.CountDirectory(f.ctx, f.dir)
		if err != nil || c.Members != 2 {
			t.Fatalf("roster members = %d (err %v), want a and b", c.Members, err)
		}

		// The next poll continues from the cursor.
		f.src.delta = &connectors.Delta{
			Users:        []connectors.User{{ExternalID: "a", UserName: "a", Email: "a.new@example.com", Active: true}, user("d", true)},
			Groups:       []connectors.Group{group("g1", "Engineering", "a", "d")},
			DeletedUsers: []string{"b", "never-seen"},
		}
		f.poll()
		if full, changes := f.src.calls(); full != 1 || changes != 1 {
			t.Fatalf("Full called %d times, Changes %d; want 1 and 1", full, changes)
		}
		want = mirror{
			Users:  map[string]string{"a": "a.new@example.com true", "c": "c@example.com false", "d": "d@example.com true"},
			Groups: map[string]string{"g1": "Engineering:[a d]", "g2": "Platform:"},
		}
		if diff := cmp.Diff(want, f.mirror()); diff != "" {
			t.Fatalf("mirror after the incremental poll (-want +got):\n%s", diff)
		}
		if d := f.directory(); d.LastError != "" || string(d.Cursor) != `{"kind":"fakesync","seq":2}` {
			t.Fatalf("directory after the incremental poll: last_error %q cursor %s", d.LastError, d.Cursor)
		}

		// A delta with a Present set deletes what it does not name.
		f.src.delta = &connectors.Delta{Present: map[string]struct{}{"a": {}, "g1": {}}}
		f.poll()
		want = mirror{Users: map[string]string{"a": "a.new@example.com true"}, Groups: map[string]string{"g1": "Engineering:[a]"}}
		if diff := cmp.Diff(want, f.mirror()); diff != "" {
			t.Fatalf("mirror after a present set (-want +got):\n%s", diff)
		}
	})
}

func TestPollChoosesFullListing(t *testing.T) {
	forEngines(t, func(t *testing.T, e testenv.Engine) {
		f := newFixture(t, e, "")
		f.src.snap = &connectors.Snapshot{Users: []connectors.User{user("a", true)}}
		f.poll() // no cursor yet: full
		f.poll() // recent full listing: incremental
		if full, changes := f.src.calls(); full != 1 || changes != 1 {
			t.Fatalf("Full %d, Changes %d; want 1, 1", full, changes)
		}
		// full_sync_every (default 1h) has passed.
		d := f.directory()
		old := time.Now().Add(-2 * time.Hour)
		d.LastFullAt = &old
		if err := f.s.UpdateDirectory(f.ctx, d); err != nil {
			t.Fatal(err)
		}
		f.poll()
		if full, changes := f.src.calls(); full != 2 || changes != 1 {
			t.Fatalf("after full_sync_every: Full %d, Changes %d; want 2, 1", full, changes)
		}
		// The cursor no longer works: the poll lists everything.
		f.src.changesErr = fmt.Errorf("%w: test", connectors.ErrResync)
		f.poll()
		if full, changes := f.src.calls(); full != 3 || changes != 2 {
			t.Fatalf("after ErrResync: Full %d, Changes %d; want 3, 2", full, changes)
		}
	})
}

func TestPollFailureChangesNothing(t *testing.T) {
	forEngines(t, func(t *testing.T, e testenv.Engine) {
		f := newFixture(t, e, "")
		f.src.snap = &connectors.Snapshot{Users: []connectors.User{user("a", true)}}
		f.poll()
		before := f.mirror()
		f.triggered = nil
		f.src.changesErr = errors.New("server went away")
		if err := f.p.Poll(f.ctx, f.dir); err == nil {
			t.Fatal("poll of a failing source succeeded")
		}
		if diff := cmp.Diff(before, f.mirror()); diff != "" {
			t.Fatalf("mirror changed by a failed poll (-before +after):\n%s", diff)
		}
		if d := f.directory(); d.State != store.StateError || d.LastError == "" {
			t.Fatalf("directory after a failed poll: state %q last_error %q", d.State, d.LastError)
		}
		if len(f.triggered) != 0 {
			t.Fatalf("a failed poll triggered %v", f.triggered)
		}
		if err := f.p.Poll(f.ctx, f.dir+"-scim"); !errors.Is(err, poll.ErrNotPolled) {
			t.Fatalf("poll of a SCIM directory: err = %v, want ErrNotPolled", err)
		}
	})
}

func TestDeletionGuard(t *testing.T) {
	forEngines(t, func(t *testing.T, e testenv.Engine) {
		f := newFixture(t, e, `,"full_only":true,"deletion_guard":{"max_removals":2,"max_fraction":1}`)
		var users []connectors.User
		for i := 0; i < 10; i++ {
			users = append(users, user(fmt.Sprintf("u%d", i), true))
		}
		f.src.snap = &connectors.Snapshot{Users: users}
		f.poll()
		f.events()

		// Two removals (one deleted, one disabled) are allowed.
		f.src.snap = &connectors.Snapshot{Users: append([]connectors.User{user("u0", false)}, users[2:]...)}
		f.poll()
		if d := f.directory(); d.State != store.StateOK {
			t.Fatalf("state after two removals %q, want ok", d.State)
		}

		// Three more are held, and the mirror is untouched.
		before := f.mirror()
		f.src.snap = &connectors.Snapshot{Users: append([]connectors.User{user("u0", false)}, users[5:]...)}
		f.poll()
		d := f.directory()
		if d.State != store.StateNeedsReview {
			t.Fatalf("state after three removals %q, want needs_review", d.State)
		}
		var rv poll.Review
		if err := json.Unmarshal(d.Review, &rv); err != nil {
			t.Fatal(err)
		}
		wantSample := []string{"u2@example.com", "u3@example.com", "u4@example.com"}
		if rv.WouldRemove != 3 || rv.ActiveBefore != 8 || rv.MaxRemovals != 2 || rv.MaxFraction != 1 || !cmp.Equal(rv.Sample, wantSample) {
			t.Fatalf("review = %+v", rv)
		}
		if diff := cmp.Diff(before, f.mirror()); diff != "" {
			t.Fatalf("a held poll changed the mirror (-before +after):\n%s", diff)
		}
		// Held again: no second event.
		f.poll()
		if diff := cmp.Diff([]string{poll.EventDirectoryHeld}, f.events()); diff != "" {
			t.Fatalf("events of a poll held twice (-want +got):\n%s", diff)
		}

		if err := poll.Approve(f.ctx, f.s, f.dir); err != nil {
			t.Fatal(err)
		}
		f.poll()
		if d := f.directory(); d.State != store.StateOK || len(d.Review) != 0 {
			t.Fatalf("after approval: state %q review %s", d.State, d.Review)
		}
		if _, ok := f.mirror().Users["u2"]; ok {
			t.Fatal("approved removal not applied")
		}
		if diff := cmp.Diff([]string{poll.EventDirectoryApproved}, f.events()); diff != "" {
			t.Fatalf("events of the approved poll (-want +got):\n%s", diff)
		}
		if err := poll.Approve(f.ctx, f.s, f.dir); !errors.Is(err, poll.ErrNothingToApprove) {
			t.Fatalf("approve with nothing held: err = %v, want ErrNothingToApprove", err)
		}
	})
}

// max_removals: 0 holds every removal, where it once meant "the default".
func TestDeletionGuardZeroHoldsEveryRemoval(t *testing.T) {
	forEngines(t, func(t *testing.T, e testenv.Engine) {
		f := newFixture(t, e, `,"full_only":true,"deletion_guard":{"max_removals":0}`)
		f.src.snap = &connectors.Snapshot{Users: []connectors.User{user("a", true), user("b", true), user("c", true)}}
		f.poll()
		if d := f.directory(); d.State != store.StateOK {
			t.Fatalf("adding members with max_removals 0: state %q, want ok", d.State)
		}
		f.src.snap = &connectors.Snapshot{Users: []connectors.User{user("a", true), user("b", true)}}
		f.poll()
		if d := f.directory(); d.State != store.StateNeedsReview {
			t.Fatalf("one removal with max_removals 0: state %q, want needs_review", d.State)
		}
	})
}

// An incremental poll is guarded too: its removals are counted against the
// directory's active members, read only when it removes someone.
func TestDeletionGuardOnDelta(t *testing.T) {
	forEngines(t, func(t *testing.T, e testenv.Engine) {
		f := newFixture(t, e, `,"deletion_guard":{"max_removals":1}`)
		f.src.snap = &connectors.Snapshot{Users: []connectors.User{user("a", true), user("b", true), user("c", true), user("d", false)}}
		f.poll()
		f.src.delta = &connectors.Delta{DeletedUsers: []string{"a", "d"}} // d is not active: one removal
		f.poll()
		if d := f.directory(); d.State != store.StateOK {
			t.Fatalf("one removal under max_removals 1: state %q", d.State)
		}
		f.src.delta = &connectors.Delta{DeletedUsers: []string{"b"}, Users: []connectors.User{user("c", false)}}
		f.poll()
		d := f.directory()
		var rv poll.Review
		_ = json.Unmarshal(d.Review, &rv)
		if d.State != store.StateNeedsReview || rv.WouldRemove != 2 || rv.ActiveBefore != 2 {
			t.Fatalf("two removals over max_removals 1: state %q review %+v", d.State, rv)
		}
	})
}

// TestPollBackoff checks that failed polls in a row back off, capped, in
// the directory's last_poll, and that one success resets it.
func TestPollBackoff(t *testing.T) {
	forEngines(t, func(t *testing.T, e testenv.Engine) {
		f := newFixture(t, e, `,"schedule":"@every 1m"`)
		f.src.snap = &connectors.Snapshot{Users: []connectors.User{user("a", true)}}
		f.poll()
		if _, _, ok := poll.BackoffUntil(f.directory().LastPoll); ok {
			t.Fatalf("backing off after a good poll: %s", f.directory().LastPoll)
		}
		f.src.changesErr = errors.New("server went away")
		want := []time.Duration{2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour}
		for i, wait := range want {
			if err := f.p.Poll(f.ctx, f.dir); err == nil {
				t.Fatal("poll of a failing source succeeded")
			}
			d := f.directory()
			var lp poll.LastPoll
			if err := json.Unmarshal(d.LastPoll, &lp); err != nil {
				t.Fatal(err)
			}
			if lp.ConsecutiveFailures != i+1 || lp.NextPollAt == nil || lp.Result != "error" {
				t.Fatalf("failure %d: last_poll %s", i+1, d.LastPoll)
			}
			if got := lp.NextPollAt.Sub(lp.At); got != wait {
				t.Fatalf("failure %d: next poll %s after its start, want %s", i+1, got, wait)
			}
			until, n, ok := poll.BackoffUntil(d.LastPoll)
			if !ok || n != i+1 || !until.Equal(*lp.NextPollAt) {
				t.Fatalf("BackoffUntil = %v %d %v", until, n, ok)
			}
			if d.State != store.StateError {
				t.Fatalf("state %q, want error", d.State)
			}
		}
		f.src.changesErr = nil
		f.poll()
		d := f.directory()
		if _, _, ok := poll.BackoffUntil(d.LastPoll); ok || d.State != store.StateOK {
			t.Fatalf("after a success: state %q last_poll %s", d.State, d.LastPoll)
		}
		var m map[string]any
		_ = json.Unmarshal(d.LastPoll, &m)
		if _, ok := m["consecutive_failures"]; ok {
			t.Fatalf("consecutive_failures kept after a success: %s", d.LastPoll)
		}
	})
}
