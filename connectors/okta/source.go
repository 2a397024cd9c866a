package okta

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/roster-dev/roster/connectors"
	"github.com/roster-dev/roster/connectors/internal/apiclient"
)

var (
	_ connectors.Config      = (*Config)(nil)
	_ connectors.DeltaSource = (*Source)(nil)
	_ connectors.Checker     = (*Source)(nil)
	_ connectors.Meter       = (*Source)(nil)
)

// Page sizes: the largest each endpoint serves.
const (
	usersPageSize    = 200
	groupsPageSize   = 200
	membersPageSize  = 1000
	appUsersPageSize = 500
	logPageSize      = 1000
)

const (
	// idsPerFilter bounds the ids in one filter=id eq ... or ... request,
	// keeping the URL well under proxies' limits.
	idsPerFilter = 50
	// maxLogPages bounds the System Log pages one poll reads; the rest is
	// read by the next poll, from the cursor.
	maxLogPages = 50
	// maxRereadUsers and maxRereadGroups are where re-reading what changed
	// costs about as much as listing everything; past them Changes lists
	// everything and returns it with Delta.Present.
	maxRereadUsers  = 5000
	maxRereadGroups = 250
	// logOverlap starts the System Log this long before a full listing
	// began, so a change made while it ran is read again.
	logOverlap = 2 * time.Minute
	// settleTime is how long Okta's eventually consistent filter results
	// may lag an event; objects changed this recently are read again at the
	// next poll.
	settleTime = 30 * time.Second
	// cursorVersion changes when the event filter or cursor shape does.
	cursorVersion = 1
)

// Option changes how a Source is made; tests use them.
type Option func(*options)

type options struct {
	httpClient  *http.Client
	sleep       func(ctx context.Context, d time.Duration) error
	now         func() time.Time
	concurrency int
}

// WithHTTPClient sends requests through c's transport.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// WithSleep replaces waiting (backoff, Retry-After, rate-limit pacing).
func WithSleep(f func(ctx context.Context, d time.Duration) error) Option {
	return func(o *options) { o.sleep = f }
}

// WithClock replaces the clock.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithConcurrency bounds requests in flight (default apiclient's).
func WithConcurrency(n int) Option { return func(o *options) { o.concurrency = n } }

// Source reads one Okta org. Polls are serialised.
type Source struct {
	cfg  Config
	org  *url.URL
	log  *slog.Logger
	now  func() time.Time
	auth authorizer

	api      *apiclient.Client
	tokenAPI *apiclient.Client
	pacer    *pacer

	pages, items atomic.Int64
	concurrency  int

	poll     sync.Mutex
	dateMu   sync.Mutex
	pollDate time.Time // server time of the poll's first answer
}

// Open makes the source; it does not call Okta (Check does).
func (c *Config) Open(_ context.Context, log *slog.Logger) (connectors.Source, error) {
	return New(*c, log)
}

// New checks cfg and makes a source.
func New(cfg Config, log *slog.Logger, opts ...Option) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	org, _ := parseOrgURL(cfg.OrgURL)
	base := http.DefaultTransport
	timeout := 60 * time.Second
	if o.httpClient != nil {
		if o.httpClient.Transport != nil {
			base = o.httpClient.Transport
		}
		if o.httpClient.Timeout > 0 {
			timeout = o.httpClient.Timeout
		}
	}
	sleep := o.sleep
	if sleep == nil {
		sleep = apiclient.Sleep
	}
	s := &Source{cfg: cfg, org: org, log: log.With("connector", "okta"), now: o.now}
	s.pacer = &pacer{next: base, sleep: sleep, now: o.now, buckets: map[string]*bucket{}}
	paced := &http.Client{Transport: s.pacer, Timeout: timeout, CheckRedirect: noRedirects}
	s.api = &apiclient.Client{HTTP: paced, Concurrency: o.concurrency, Classify: classify, Sleep: o.sleep}
	s.concurrency = o.concurrency
	if s.concurrency <= 0 {
		s.concurrency = apiclient.DefaultConcurrency
	}
	if cfg.APIToken != "" {
		s.auth = sswsAuth{token: cfg.APIToken}
	} else {
		key, _ := parsePrivateKey(cfg.PrivateKeyPEM)
		s.tokenAPI = &apiclient.Client{HTTP: paced, Concurrency: 1, Classify: classify, Sleep: o.sleep}
		s.auth = &serviceAppAuth{
			clientID: cfg.ClientID, key: key, tokenURL: org.String() + "/oauth2/v1/token", scopes: s.scopes(),
			http: &http.Client{Transport: apiclient.Transport{Client: s.tokenAPI}, Timeout: timeout}, now: o.now,
		}
	}
	return s, nil
}

// noRedirects keeps the Authorization header from following a redirect.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// scopes are what a service app asks for.
func (s *Source) scopes() []string {
	sc := []string{scopeUsers, scopeGroups}
	if s.cfg.AppID != "" {
		sc = append(sc, scopeApps)
	}
	return append(sc, scopeLogs)
}

// Usage says what the source's requests cost since it was opened.
func (s *Source) Usage() connectors.Usage {
	u := connectors.Usage{
		Requests:  s.api.Stats.Requests.Load(),
		Retries:   s.api.Stats.Retries.Load(),
		Throttled: s.api.Stats.Throttled.Load(),
		Pages:     s.pages.Load(),
		Items:     s.items.Load(),
	}
	if s.tokenAPI != nil {
		u.Requests += s.tokenAPI.Stats.Requests.Load()
		u.Retries += s.tokenAPI.Stats.Retries.Load()
		u.Throttled += s.tokenAPI.Stats.Throttled.Load()
	}
	return u
}

func (s *Source) startPoll() {
	s.dateMu.Lock()
	s.pollDate = time.Time{}
	s.dateMu.Unlock()
}

// noteDate keeps the server time of a poll's first answer.
func (s *Source) noteDate(h http.Header) {
	s.dateMu.Lock()
	defer s.dateMu.Unlock()
	if !s.pollDate.IsZero() {
		return
	}
	if t, err := http.ParseTime(h.Get("Date")); err == nil {
		s.pollDate = t
	} else {
		s.pollDate = s.now()
	}
}

func (s *Source) serverStart(local time.Time) time.Time {
	s.dateMu.Lock()
	defer s.dateMu.Unlock()
	if s.pollDate.IsZero() {
		return local
	}
	return s.pollDate
}

func (s *Source) url(path string, q url.Values) string {
	u := s.org.String() + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// ---- JSON ----

type oktaUser struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Profile struct {
		Login       string `json:"login"`
		Email       string `json:"email"`
		FirstName   string `json:"firstName"`
		LastName    string `json:"lastName"`
		DisplayName string `json:"displayName"`
	} `json:"profile"`
}

type oktaGroup struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Profile struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	} `json:"profile"`
}

type oktaAppUser struct {
	ID       string `json:"id"`
	Scope    string `json:"scope"`
	Embedded struct {
		User *oktaUser `json:"user"`
	} `json:"_embedded"`
}

type logEvent struct {
	UUID      string `json:"uuid"`
	Published string `json:"published"`
	EventType string `json:"eventType"`
	Target    []struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	} `json:"target"`
}

func mapUser(u *oktaUser) (connectors.User, *connectors.Skipped) {
	email := strings.ToLower(strings.TrimSpace(u.Profile.Email))
	if email == "" && strings.Contains(u.Profile.Login, "@") {
		email = strings.ToLower(strings.TrimSpace(u.Profile.Login))
	}
	if u.ID == "" {
		return connectors.User{}, &connectors.Skipped{ID: u.Profile.Login, Reason: "user without an id"}
	}
	if email == "" {
		return connectors.User{}, &connectors.Skipped{ID: u.ID, Reason: "user without an email (profile.email, or a login that is an email)"}
	}
	display := strings.TrimSpace(u.Profile.DisplayName)
	if display == "" {
		display = strings.TrimSpace(u.Profile.FirstName + " " + u.Profile.LastName)
	}
	return connectors.User{
		ExternalID:  u.ID,
		UserName:    u.Profile.Login,
		Email:       email,
		DisplayName: display,
		GivenName:   u.Profile.FirstName,
		FamilyName:  u.Profile.LastName,
		// SUSPENDED and DEPROVISIONED people leave the roster; STAGED,
		// PROVISIONED, RECOVERY, LOCKED_OUT and PASSWORD_EXPIRED are still
		// people of the org.
		Active: u.Status != "SUSPENDED" && u.Status != "DEPROVISIONED",
		Attrs:  map[string]any{"status": u.Status},
	}, nil
}

func mapGroup(g *oktaGroup, members []string) connectors.Group {
	attrs := map[string]any{"type": g.Type}
	if g.Profile.Description != "" {
		attrs["description"] = g.Profile.Description
	}
	return connectors.Group{ExternalID: g.ID, Name: g.Profile.Name, Members: members, Attrs: attrs}
}

// ---- listings ----

// list reads every page from first on, handing each page's body to each,
// which returns how many items it held. A page shorter than asked that
// still has a next link fails the listing.
func (s *Source) list(ctx context.Context, first string, limit int, each func(body []byte) (int, error)) error {
	next := first
	for next != "" {
		resp, err := s.get(ctx, next)
		if err != nil {
			return err
		}
		n, err := each(resp.Body)
		if err != nil {
			return fmt.Errorf("okta: GET %s: read page: %w", pathOf(next), err)
		}
		s.pages.Add(1)
		s.items.Add(int64(n))
		link, err := s.nextLink(resp.Header)
		if err != nil {
			return err
		}
		if link != "" && n < limit {
			return fmt.Errorf("okta: GET %s: short page (%d items of %d asked, with a next link); the listing is not used", pathOf(next), n, limit)
		}
		next = link
	}
	return nil
}

func decodeUsers(body []byte, add func(*oktaUser)) (int, error) {
	var page []oktaUser
	if err := json.Unmarshal(body, &page); err != nil {
		return 0, err
	}
	for i := range page {
		add(&page[i])
	}
	return len(page), nil
}

type listing struct {
	mu      sync.Mutex
	users   map[string]connectors.User
	groups  []connectors.Group
	skipped []connectors.Skipped
}

func newListing() *listing { return &listing{users: map[string]connectors.User{}} }

func (l *listing) addUser(u *oktaUser) {
	cu, skip := mapUser(u)
	l.mu.Lock()
	defer l.mu.Unlock()
	if skip != nil {
		l.skipped = append(l.skipped, *skip)
		return
	}
	l.users[cu.ExternalID] = cu
}

func (l *listing) snapshot() *connectors.Snapshot {
	snap := &connectors.Snapshot{Groups: l.groups, Skipped: l.skipped}
	for _, id := range sortedKeys(l.users) {
		snap.Users = append(snap.Users, l.users[id])
	}
	sort.Slice(snap.Groups, func(i, j int) bool { return snap.Groups[i].ExternalID < snap.Groups[j].ExternalID })
	return snap
}

// listUsers reads every user but DEPROVISIONED ones (Okta's default
// listing leaves them out, and they are not members anyway).
func (s *Source) listUsers(ctx context.Context, l *listing) error {
	first := s.url("/api/v1/users", url.Values{"limit": {strconv.Itoa(usersPageSize)}})
	return s.list(ctx, first, usersPageSize, func(b []byte) (int, error) { return decodeUsers(b, l.addUser) })
}

// listAppUsers reads the people assigned to the app, with their user
// objects embedded.
func (s *Source) listAppUsers(ctx context.Context, l *listing) error {
	first := s.url("/api/v1/apps/"+url.PathEscape(s.cfg.AppID)+"/users",
		url.Values{"limit": {strconv.Itoa(appUsersPageSize)}, "expand": {"user"}})
	return s.list(ctx, first, appUsersPageSize, func(b []byte) (int, error) {
		var page []oktaAppUser
		if err := json.Unmarshal(b, &page); err != nil {
			return 0, err
		}
		for i := range page {
			u := page[i].Embedded.User
			if u == nil {
				return 0, fmt.Errorf("app user %s without _embedded.user", page[i].ID)
			}
			l.addUser(u)
		}
		return len(page), nil
	})
}

// listGroups reads groups: all OKTA_GROUP and APP_GROUP groups, or those
// of filter. The BUILT_IN Everyone group is left out: it holds every user,
// says nothing a roster needs, and would cost a member listing of the org.
func (s *Source) listGroups(ctx context.Context, filter string) ([]oktaGroup, error) {
	if filter == "" {
		filter = `type eq "OKTA_GROUP" or type eq "APP_GROUP"`
	}
	first := s.url("/api/v1/groups", url.Values{"limit": {strconv.Itoa(groupsPageSize)}, "filter": {filter}})
	var out []oktaGroup
	err := s.list(ctx, first, groupsPageSize, func(b []byte) (int, error) {
		var page []oktaGroup
		if err := json.Unmarshal(b, &page); err != nil {
			return 0, err
		}
		for _, g := range page {
			if g.Type != "BUILT_IN" {
				out = append(out, g)
			}
		}
		return len(page), nil
	})
	return out, err
}

// groupsByID reads the groups with these ids, in batches.
func (s *Source) groupsByID(ctx context.Context, ids []string) ([]oktaGroup, error) {
	var out []oktaGroup
	for _, batch := range batches(ids, idsPerFilter) {
		gs, err := s.listGroups(ctx, idFilter(batch))
		if err != nil {
			return nil, err
		}
		out = append(out, gs...)
	}
	return out, nil
}

// members reads a group's complete member list; addUser, when set, gets
// each member's user object.
func (s *Source) members(ctx context.Context, groupID string, addUser func(*oktaUser)) ([]string, error) {
	first := s.url("/api/v1/groups/"+url.PathEscape(groupID)+"/users", url.Values{"limit": {strconv.Itoa(membersPageSize)}})
	var ids []string
	err := s.list(ctx, first, membersPageSize, func(b []byte) (int, error) {
		return decodeUsers(b, func(u *oktaUser) {
			ids = append(ids, u.ID)
			if addUser != nil {
				addUser(u)
			}
		})
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(ids)
	return ids, nil
}

// groupsWithMembers reads the member lists of groups, a bounded number at a
// time.
func (s *Source) groupsWithMembers(ctx context.Context, groups []oktaGroup, addUser func(*oktaUser)) ([]connectors.Group, error) {
	out := make([]connectors.Group, len(groups))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(s.concurrency)
	for i := range groups {
		g.Go(func() error {
			ids, err := s.members(ctx, groups[i].ID, addUser)
			if err != nil {
				return err
			}
			out[i] = mapGroup(&groups[i], ids)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// listAll lists the configured scope.
func (s *Source) listAll(ctx context.Context) (*connectors.Snapshot, error) {
	l := newListing()
	if len(s.cfg.GroupIDs) > 0 {
		groups, err := s.groupsByID(ctx, s.cfg.GroupIDs)
		if err != nil {
			return nil, err
		}
		if missing := missingIDs(s.cfg.GroupIDs, groups); len(missing) > 0 {
			return nil, &APIError{Status: http.StatusNotFound, Code: "E0000007", Request: "GET /api/v1/groups",
				Summary: "Not found: " + strings.Join(missing, ", "),
				Fix:     "group_ids: these groups do not exist in this org; copy each id (00g...) from the group's address in the Admin Console"}
		}
		l.groups, err = s.groupsWithMembers(ctx, groups, l.addUser)
		if err != nil {
			return nil, err
		}
		return l.snapshot(), nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if s.cfg.AppID != "" {
			return s.listAppUsers(gctx, l)
		}
		return s.listUsers(gctx, l)
	})
	g.Go(func() error {
		groups, err := s.listGroups(gctx, "")
		if err != nil {
			return err
		}
		gs, err := s.groupsWithMembers(gctx, groups, nil)
		if err != nil {
			return err
		}
		l.mu.Lock()
		l.groups = gs
		l.mu.Unlock()
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return l.snapshot(), nil
}

// Full lists the whole scope. Its cursor starts the System Log a little
// before the listing began.
func (s *Source) Full(ctx context.Context) (*connectors.Snapshot, json.RawMessage, error) {
	s.poll.Lock()
	defer s.poll.Unlock()
	s.startPoll()
	local := s.now()
	snap, err := s.listAll(ctx)
	if err != nil {
		return nil, nil, err
	}
	c := cursor{V: cursorVersion, Config: s.digest(), Since: s.serverStart(local).Add(-logOverlap).UTC().Format(time.RFC3339)}
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, nil, fmt.Errorf("okta: cursor: %w", err)
	}
	return snap, raw, nil
}

// ---- incremental ----

// cursor is where the next incremental poll starts.
type cursor struct {
	V      int    `json:"v"`
	Config string `json:"config"`
	// Next is the System Log's next link (path and query); Since starts the
	// log when there is none yet.
	Next  string `json:"next,omitempty"`
	Since string `json:"since,omitempty"`
	// RecheckUsers and RecheckGroups changed too shortly before the last
	// poll for Okta's filter results to be sure to show it.
	RecheckUsers  []string `json:"recheck_users,omitempty"`
	RecheckGroups []string `json:"recheck_groups,omitempty"`
}

// digest names the settings that shape a listing; a cursor made under
// other settings is not used.
func (s *Source) digest() string {
	h := sha256.New()
	ids := append([]string(nil), s.cfg.GroupIDs...)
	sort.Strings(ids)
	for _, v := range []string{s.org.String(), s.cfg.AppID, strings.Join(ids, ","), strconv.Itoa(cursorVersion)} {
		h.Write([]byte(v))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// eventTypes are the System Log events that can change what roster lists.
func (s *Source) eventTypes() []string {
	t := []string{
		"user.lifecycle.create", "user.lifecycle.activate", "user.lifecycle.reactivate",
		"user.lifecycle.deactivate", "user.lifecycle.suspend", "user.lifecycle.unsuspend",
		"user.lifecycle.delete.initiated", "user.lifecycle.delete.completed", "user.account.update_profile",
		"group.user_membership.add", "group.user_membership.remove",
		"group.lifecycle.create", "group.lifecycle.delete", "group.lifecycle.update", "group.profile.update",
	}
	if s.cfg.AppID != "" {
		t = append(t, "application.user_membership.add", "application.user_membership.remove",
			"group.application_assignment.add", "group.application_assignment.remove")
	}
	return t
}

func (s *Source) logFilter() string {
	parts := make([]string, 0, 20)
	for _, t := range s.eventTypes() {
		parts = append(parts, `eventType eq "`+t+`"`)
	}
	return strings.Join(parts, " or ")
}

// changes is what the System Log says changed.
type changes struct {
	users, groups map[string]bool
	relistApp     bool // a group's assignment to the app changed
	touched       bool // anything in scope changed
	recentUsers   []string
	recentGroups  []string
}

// Changes reads the System Log from cursor and re-reads what it names.
func (s *Source) Changes(ctx context.Context, raw json.RawMessage) (*connectors.Delta, json.RawMessage, error) {
	s.poll.Lock()
	defer s.poll.Unlock()
	s.startPoll()
	var c cursor
	if err := json.Unmarshal(raw, &c); err != nil || c.V != cursorVersion || (c.Next == "" && c.Since == "") {
		return nil, nil, fmt.Errorf("okta: unreadable cursor: %w", connectors.ErrResync)
	}
	if c.Config != s.digest() {
		return nil, nil, fmt.Errorf("okta: cursor made for other settings: %w", connectors.ErrResync)
	}
	ch, next, err := s.readLog(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	for _, id := range c.RecheckUsers {
		ch.users[id], ch.touched = true, true
	}
	for _, id := range c.RecheckGroups {
		ch.groups[id], ch.touched = true, true
	}
	var d *connectors.Delta
	switch {
	case !ch.touched:
		d = &connectors.Delta{}
	case len(s.cfg.GroupIDs) > 0 || len(ch.users) > maxRereadUsers || len(ch.groups) > maxRereadGroups:
		// With group_ids, whether a changed user is in scope depends on
		// memberships roster does not keep: list the (small) scope again.
		d, err = s.relistAll(ctx)
	default:
		d, err = s.reread(ctx, ch)
	}
	if err != nil {
		return nil, nil, err
	}
	nc := cursor{V: cursorVersion, Config: c.Config, Next: next, RecheckUsers: ch.recentUsers, RecheckGroups: ch.recentGroups}
	out, err := json.Marshal(nc)
	if err != nil {
		return nil, nil, fmt.Errorf("okta: cursor: %w", err)
	}
	return d, out, nil
}

// readLog reads System Log pages from the cursor until a page is not full
// (or maxLogPages), and returns what they name and the next link to start
// from next time. A polling request always has a next link, so a page
// shorter than asked is the end of the log for now, not a short page.
func (s *Source) readLog(ctx context.Context, c cursor) (*changes, string, error) {
	var first string
	if c.Next != "" {
		if !strings.HasPrefix(c.Next, "/api/v1/logs?") {
			return nil, "", fmt.Errorf("okta: cursor holds a foreign link: %w", connectors.ErrResync)
		}
		first = s.org.String() + c.Next
	} else {
		first = s.url("/api/v1/logs", url.Values{
			"since": {c.Since}, "sortOrder": {"ASCENDING"}, "limit": {strconv.Itoa(logPageSize)}, "filter": {s.logFilter()},
		})
	}
	ch := &changes{users: map[string]bool{}, groups: map[string]bool{}}
	recentU, recentG := map[string]bool{}, map[string]bool{}
	var latest time.Time
	var events []logEvent
	link := first
	for page := 0; page < maxLogPages; page++ {
		resp, err := s.get(ctx, link)
		if err != nil {
			var ae *APIError
			if page == 0 && errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
				// Okta refuses a since older than its limit, or an after
				// token it no longer knows: the cursor is gone.
				return nil, "", fmt.Errorf("%w (%v)", connectors.ErrResync, err)
			}
			return nil, "", err
		}
		if t, err := http.ParseTime(resp.Header.Get("Date")); err == nil && t.After(latest) {
			latest = t
		}
		var evs []logEvent
		if err := json.Unmarshal(resp.Body, &evs); err != nil {
			return nil, "", fmt.Errorf("okta: GET /api/v1/logs: read page: %w", err)
		}
		s.pages.Add(1)
		s.items.Add(int64(len(evs)))
		events = append(events, evs...)
		nl, err := s.nextLink(resp.Header)
		if err != nil {
			return nil, "", err
		}
		if nl == "" {
			return nil, "", fmt.Errorf("okta: GET /api/v1/logs: polling answer without a next link")
		}
		link = nl
		if len(evs) < logPageSize {
			break
		}
	}
	if latest.IsZero() {
		latest = s.now()
	}
	for _, e := range events {
		s.note(ch, e)
		if pub, err := time.Parse(time.RFC3339Nano, e.Published); err == nil && latest.Sub(pub) < settleTime {
			for _, t := range e.Target {
				switch t.Type {
				case "User":
					recentU[t.ID] = true
				case "UserGroup":
					recentG[t.ID] = true
				}
			}
		}
	}
	ch.recentUsers, ch.recentGroups = sortedKeys(recentU), sortedKeys(recentG)
	u, err := url.Parse(link)
	if err != nil {
		return nil, "", fmt.Errorf("okta: unreadable next link")
	}
	return ch, u.RequestURI(), nil
}

// note records what one event names.
func (s *Source) note(ch *changes, e logEvent) {
	appEvent := strings.HasPrefix(e.EventType, "application.") || strings.HasPrefix(e.EventType, "group.application_assignment.")
	if appEvent {
		ours := false
		for _, t := range e.Target {
			if t.Type == "AppInstance" && t.ID == s.cfg.AppID {
				ours = true
			}
		}
		if !ours {
			return
		}
		if strings.HasPrefix(e.EventType, "group.application_assignment.") {
			ch.relistApp, ch.touched = true, true
			return
		}
	}
	if len(s.cfg.GroupIDs) > 0 && strings.HasPrefix(e.EventType, "group.") {
		// Another group's membership or profile cannot change the scope.
		ours := false
		for _, t := range e.Target {
			ours = ours || t.Type == "UserGroup" && slices.Contains(s.cfg.GroupIDs, t.ID)
		}
		if !ours {
			return
		}
	}
	for _, t := range e.Target {
		switch t.Type {
		case "User":
			ch.users[t.ID], ch.touched = true, true
		case "UserGroup":
			ch.groups[t.ID], ch.touched = true, true
		}
	}
}

// relistAll lists the scope again and returns it whole.
func (s *Source) relistAll(ctx context.Context) (*connectors.Delta, error) {
	snap, err := s.listAll(ctx)
	if err != nil {
		return nil, err
	}
	d := &connectors.Delta{Users: snap.Users, Groups: snap.Groups, Skipped: snap.Skipped, Present: map[string]struct{}{}}
	for _, u := range snap.Users {
		d.Present[u.ExternalID] = struct{}{}
	}
	for _, g := range snap.Groups {
		d.Present[g.ExternalID] = struct{}{}
	}
	return d, nil
}

// reread reads again every user and group the log named.
func (s *Source) reread(ctx context.Context, ch *changes) (*connectors.Delta, error) {
	d := &connectors.Delta{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if ch.relistApp {
			// A group's assignment changed: who is assigned is the app's
			// whole user list; groups are listed without members just to
			// say which still exist.
			l := newListing()
			if err := s.listAppUsers(gctx, l); err != nil {
				return err
			}
			groups, err := s.listGroups(gctx, "")
			if err != nil {
				return err
			}
			snap := l.snapshot()
			mu.Lock()
			defer mu.Unlock()
			d.Users, d.Skipped = snap.Users, append(d.Skipped, snap.Skipped...)
			d.Present = map[string]struct{}{}
			for _, u := range snap.Users {
				d.Present[u.ExternalID] = struct{}{}
			}
			for _, gr := range groups {
				d.Present[gr.ID] = struct{}{}
			}
			return nil
		}
		users, skipped, gone, err := s.usersByID(gctx, sortedKeys(ch.users))
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		d.Users, d.DeletedUsers = users, gone
		d.Skipped = append(d.Skipped, skipped...)
		return nil
	})
	g.Go(func() error {
		ids := sortedKeys(ch.groups)
		if len(ids) == 0 {
			return nil
		}
		groups, err := s.groupsByID(gctx, ids)
		if err != nil {
			return err
		}
		gs, err := s.groupsWithMembers(gctx, groups, nil)
		if err != nil {
			return err
		}
		found := map[string]bool{}
		for _, gr := range groups {
			found[gr.ID] = true
		}
		mu.Lock()
		defer mu.Unlock()
		d.Groups = gs
		for _, id := range ids {
			if !found[id] {
				d.DeletedGroups = append(d.DeletedGroups, id)
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if d.Present != nil {
		for _, gr := range d.Groups {
			d.Present[gr.ExternalID] = struct{}{}
		}
	}
	return d, nil
}

// usersByID re-reads users: all of them through filter=id eq ... (which,
// unlike the default listing, includes DEPROVISIONED users), or with app_id
// each one's assignment to the app. gone are ids that no longer exist or
// left the scope.
func (s *Source) usersByID(ctx context.Context, ids []string) (users []connectors.User, skipped []connectors.Skipped, gone []string, err error) {
	if len(ids) == 0 {
		return nil, nil, nil, nil
	}
	l := newListing()
	found := map[string]bool{}
	var mu sync.Mutex
	if s.cfg.AppID != "" {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(s.concurrency)
		for _, id := range ids {
			g.Go(func() error {
				u, err := s.appUser(gctx, id)
				if err != nil || u == nil {
					return err
				}
				mu.Lock()
				found[id] = true
				mu.Unlock()
				l.addUser(u)
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return nil, nil, nil, err
		}
	} else {
		for _, batch := range batches(ids, idsPerFilter) {
			first := s.url("/api/v1/users", url.Values{"limit": {strconv.Itoa(usersPageSize)}, "filter": {idFilter(batch)}})
			err := s.list(ctx, first, usersPageSize, func(b []byte) (int, error) {
				return decodeUsers(b, func(u *oktaUser) {
					found[u.ID] = true
					l.addUser(u)
				})
			})
			if err != nil {
				return nil, nil, nil, err
			}
		}
	}
	for _, id := range ids {
		if !found[id] {
			gone = append(gone, id)
		}
	}
	snap := l.snapshot()
	return snap.Users, snap.Skipped, gone, nil
}

// appUser reads one user's assignment to the app; nil when unassigned.
func (s *Source) appUser(ctx context.Context, userID string) (*oktaUser, error) {
	u := s.url("/api/v1/apps/"+url.PathEscape(s.cfg.AppID)+"/users/"+url.PathEscape(userID), url.Values{"expand": {"user"}})
	resp, err := s.get(ctx, u)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound && strings.Contains(ae.Summary, "AppUser") {
			return nil, nil
		}
		return nil, err
	}
	s.pages.Add(1)
	s.items.Add(1)
	var au oktaAppUser
	if err := json.Unmarshal(resp.Body, &au); err != nil {
		return nil, fmt.Errorf("okta: GET /api/v1/apps/{app}/users/{user}: %w", err)
	}
	if au.Embedded.User == nil {
		return nil, fmt.Errorf("okta: app user %s without _embedded.user", userID)
	}
	return au.Embedded.User, nil
}

// ---- Check ----

// Check proves the credential and the permissions a poll needs with the
// cheapest requests that touch each: one page of one item from the users
// (or the app's users, or each listed group's members), the groups and the
// System Log. It stops at the first failure, whose error names the fix.
func (s *Source) Check(ctx context.Context) error {
	one := url.Values{"limit": {"1"}}
	var urls []string
	switch {
	case s.cfg.AppID != "":
		urls = append(urls, s.url("/api/v1/apps/"+url.PathEscape(s.cfg.AppID)+"/users", one), s.url("/api/v1/groups", one))
	case len(s.cfg.GroupIDs) > 0:
		for _, id := range s.cfg.GroupIDs {
			urls = append(urls, s.url("/api/v1/groups/"+url.PathEscape(id)+"/users", one))
		}
	default:
		urls = append(urls, s.url("/api/v1/users", one), s.url("/api/v1/groups", one))
	}
	since := s.now().Add(-time.Minute).UTC().Format(time.RFC3339)
	urls = append(urls, s.url("/api/v1/logs", url.Values{"limit": {"1"}, "since": {since}, "sortOrder": {"ASCENDING"}}))
	for _, u := range urls {
		if _, err := s.get(ctx, u); err != nil {
			return err
		}
	}
	return nil
}

// ---- helpers ----

func idFilter(ids []string) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = `id eq "` + id + `"`
	}
	return strings.Join(parts, " or ")
}

func batches(ids []string, n int) [][]string {
	var out [][]string
	for len(ids) > 0 {
		k := min(n, len(ids))
		out = append(out, ids[:k])
		ids = ids[k:]
	}
	return out
}

func missingIDs(want []string, got []oktaGroup) []string {
	have := map[string]bool{}
	for _, g := range got {
		have[g.ID] = true
	}
	var out []string
	for _, id := range want {
		if !have[id] {
			out = append(out, id)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
