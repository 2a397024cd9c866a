// Package google polls a Google Workspace account through the Admin SDK
// Directory API and lists its users and groups for roster's sync core.
//
// It signs in as a service account with domain-wide delegation: a JWT
// assertion (RFC 7523) with Subject set to the configured admin and the
// read-only scopes admin.directory.user.readonly and
// admin.directory.group.readonly. Every request goes through apiclient: a
// bounded number in flight, 429/503 and Google's 403 rate-limit reasons
// (userRateLimitExceeded, rateLimitExceeded, quotaExceeded) waited out and
// retried, other transient failures retried with capped backoff.
//
// A listing reads users.list (500 a page), groups.list (200 a page) and
// members.list (200 a page) of each group, with partial responses (fields)
// so only what roster uses comes back. Nested groups are walked, not
// flattened with includeDerivedMembership: each group's direct members keep
// the nesting that the roster shows, and walking costs no more requests
// (one members.list per group either way). A group that is a member of a
// group is listed as a group, never as a user. A page that fails, or that
// holds fewer items than asked while naming a next page, fails the whole
// listing: a partial snapshot is never returned.
//
// Google offers no change feed for groups or memberships (and none for
// users that a read-only scope can poll), so the source implements Source,
// not DeltaSource: every scheduled poll lists the directory in full.
package google

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/jwt"
	"golang.org/x/sync/errgroup"

	"github.com/roster-dev/roster/connectors"
	"github.com/roster-dev/roster/connectors/internal/apiclient"
)

// Page sizes: the largest the Directory API serves.
const (
	usersPageSize   = 500
	groupsPageSize  = 200
	membersPageSize = 200
)

// Partial-response selectors: only the fields roster reads.
const (
	usersFields   = "nextPageToken,users(id,primaryEmail,name(givenName,familyName,fullName),suspended,archived,orgUnitPath)"
	groupsFields  = "nextPageToken,groups(id,email,name)"
	groupFields   = "id,email,name"
	membersFields = "nextPageToken,members(id,email,type)"
)

// requestTimeout bounds one HTTP exchange; a listing is many of them.
const requestTimeout = 2 * time.Minute

var (
	_ connectors.Source  = (*Source)(nil)
	_ connectors.Checker = (*Source)(nil)
	_ connectors.Meter   = (*Source)(nil)
)

// Source reads one Google Workspace account. One poll runs at a time;
// concurrent calls are serialised.
type Source struct {
	cfg  Config
	key  keyFile
	log  *slog.Logger
	base string // API root + /admin/directory/v1
	jwt  *jwt.Config

	api  *apiclient.Client // directory requests
	tokc *apiclient.Client // token requests: its own slots, so a token fetch never waits behind the requests that need it

	tokMu sync.Mutex
	tok   *oauth2.Token

	poll  sync.Mutex
	pages atomic.Int64
	items atomic.Int64
}

// New checks cfg and makes a source. It does not call Google.
func New(cfg Config, log *slog.Logger) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kf, _ := cfg.ServiceAccountJSON.parse()
	hc := &http.Client{Timeout: requestTimeout}
	s := &Source{
		cfg:  cfg,
		key:  kf,
		log:  log.With("connector", "google"),
		base: cfg.apiURL() + directoryPath,
		jwt: &jwt.Config{
			Email:        kf.ClientEmail,
			PrivateKey:   []byte(kf.PrivateKey),
			PrivateKeyID: kf.PrivateKeyID,
			Subject:      strings.TrimSpace(cfg.AdminEmail),
			Scopes:       Scopes,
			TokenURL:     cfg.tokenURL(kf),
		},
		api:  &apiclient.Client{HTTP: hc, Concurrency: apiclient.DefaultConcurrency},
		tokc: &apiclient.Client{HTTP: hc, Concurrency: 1, MaxAttempts: 3},
	}
	s.api.Classify = classify
	return s, nil
}

// Usage says what the polls of this source cost so far.
func (s *Source) Usage() connectors.Usage {
	return connectors.Usage{
		Requests:  s.api.Stats.Requests.Load() + s.tokc.Stats.Requests.Load(),
		Pages:     s.pages.Load(),
		Items:     s.items.Load(),
		Throttled: s.api.Stats.Throttled.Load() + s.tokc.Stats.Throttled.Load(),
		Retries:   s.api.Stats.Retries.Load() + s.tokc.Stats.Retries.Load(),
	}
}

// classify recognises Google's 403 rate-limit answers, which must be
// retried like a 429, never read as "no access" or "no users".
func classify(resp *http.Response, body []byte) (apiclient.Verdict, bool) {
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusTooManyRequests {
		return apiclient.Verdict{}, false
	}
	switch reason(body) {
	case "userRateLimitExceeded", "rateLimitExceeded", "quotaExceeded":
		return apiclient.Verdict{Retry: true, Throttled: true}, true
	}
	return apiclient.Verdict{}, false
}

// googleError is Google's JSON error body.
type googleError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Errors  []struct {
			Message string `json:"message"`
			Domain  string `json:"domain"`
			Reason  string `json:"reason"`
		} `json:"errors"`
	} `json:"error"`
}

func parseError(body []byte) (reason, message string) {
	var ge googleError
	if json.Unmarshal(body, &ge) != nil {
		return "", ""
	}
	message = ge.Error.Message
	for _, e := range ge.Error.Errors {
		if e.Reason != "" {
			return e.Reason, message
		}
	}
	return "", message
}

func reason(body []byte) string {
	r, _ := parseError(body)
	return r
}

// get sends one GET to the Directory API and decodes the answer into out.
// A 401 on a cached token is retried once with a fresh token.
func (s *Source) get(ctx context.Context, op, path string, q url.Values, out any) error {
	return s.getPage(ctx, op, 0, path, q, out)
}

// getPage is get for page n of a listing (0: not a listing, or its first
// page), which error messages name.
func (s *Source) getPage(ctx context.Context, op string, n int, path string, q url.Values, out any) error {
	u := s.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	for attempt := 0; ; attempt++ {
		tok, err := s.token(ctx)
		if err != nil {
			return err
		}
		resp, err := s.api.Do(ctx, func(ctx context.Context) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err != nil {
				return nil, err
			}
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			req.Header.Set("Accept", "application/json")
			return req, nil
		})
		if err != nil {
			if attempt == 0 && apiclient.IsStatus(err, http.StatusUnauthorized) {
				s.dropToken(tok)
				continue
			}
			return s.apiError(op, n, err)
		}
		if err := json.Unmarshal(resp.Body, out); err != nil {
			return fmt.Errorf("google %s: decode answer: %w", opPage(op, n), err)
		}
		return nil
	}
}

// APIError is a Directory API answer that failed the poll, with the fix
// for the admin.
type APIError struct {
	Op      string // "users.list"
	Page    int    // page of a listing after the first, else 0
	Status  int
	Reason  string // Google's reason: forbidden, insufficientPermissions, ...
	Message string
	Fix     string
	err     error
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("google %s: HTTP %d", opPage(e.Op, e.Page), e.Status)
	if e.Reason != "" {
		msg += " " + e.Reason
	}
	if e.Message != "" {
		msg += " (" + e.Message + ")"
	}
	if e.Fix != "" {
		msg += "; " + e.Fix
	}
	return msg
}

func (e *APIError) Unwrap() error { return e.err }

func opPage(op string, n int) string {
	if n > 1 {
		return fmt.Sprintf("%s page %d", op, n)
	}
	return op
}

func (s *Source) apiError(op string, n int, err error) error {
	var se *apiclient.StatusError
	if !errors.As(err, &se) {
		return fmt.Errorf("google %s: %w", opPage(op, n), err)
	}
	r, msg := parseError(se.Body)
	e := &APIError{Op: op, Page: n, Status: se.Status, Reason: r, Message: msg, err: err}
	scopes := strings.Join(Scopes, ",")
	switch {
	case r == "insufficientPermissions":
		e.Fix = fmt.Sprintf("delegate the scopes %s to the service account's client ID %s in the Admin console "+
			"(Security → Access and data control → API controls → Manage domain-wide delegation)", scopes, s.clientIDText())
	case r == "forbidden" || (se.Status == http.StatusForbidden && r == ""):
		e.Fix = fmt.Sprintf("admin_email %s must be an admin allowed to read users and groups (Admin console → Account → Admin roles: "+
			"a super admin, or a role with the Users and Groups read privileges)", s.cfg.AdminEmail)
		if s.cfg.Domain != "" {
			e.Fix += fmt.Sprintf(", and domain %s must be one of the account's domains", s.cfg.Domain)
		}
	case r == "accessNotConfigured":
		e.Fix = "enable the Admin SDK API in the service account's Google Cloud project (APIs & Services → Library → Admin SDK API)"
	case r == "dailyLimitExceeded":
		e.Fix = "the Cloud project's daily Admin SDK quota is used up; the next poll tries again, or raise the quota in the Google Cloud console"
	case r == "userRateLimitExceeded" || r == "rateLimitExceeded" || r == "quotaExceeded" || se.Status == http.StatusTooManyRequests:
		e.Fix = "Google kept rate-limiting after the retries; the next poll tries again (raise the Admin SDK quota or poll less often if it persists)"
	case se.Status == http.StatusUnauthorized:
		e.Fix = "Google refused the access token; check that the service account and its key still exist and that domain-wide delegation is on"
	case se.Status == http.StatusBadRequest && (op == "users.list" || op == "groups.list") && s.cfg.Domain == "":
		e.Fix = fmt.Sprintf("customer %q was refused; use my_customer or the customer ID from the Admin console (Account → Account settings)", s.cfg.customer())
	}
	return e
}

// page is one page of a listing.
type page interface {
	count() int
	next() string
}

type apiUser struct {
	ID           string `json:"id"`
	PrimaryEmail string `json:"primaryEmail"`
	Name         struct {
		GivenName  string `json:"givenName"`
		FamilyName string `json:"familyName"`
		FullName   string `json:"fullName"`
	} `json:"name"`
	Suspended   bool   `json:"suspended"`
	Archived    bool   `json:"archived"`
	OrgUnitPath string `json:"orgUnitPath"`
}

type apiGroup struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
}

type apiMember struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Type  string `json:"type"` // USER, GROUP, CUSTOMER
}

type usersPage struct {
	Users         []apiUser `json:"users"`
	NextPageToken string    `json:"nextPageToken"`
}

func (p *usersPage) count() int   { return len(p.Users) }
func (p *usersPage) next() string { return p.NextPageToken }

type groupsPage struct {
	Groups        []apiGroup `json:"groups"`
	NextPageToken string     `json:"nextPageToken"`
}

func (p *groupsPage) count() int   { return len(p.Groups) }
func (p *groupsPage) next() string { return p.NextPageToken }

type membersPage struct {
	Members       []apiMember `json:"members"`
	NextPageToken string      `json:"nextPageToken"`
}

func (p *membersPage) count() int   { return len(p.Members) }
func (p *membersPage) next() string { return p.NextPageToken }

// paginate reads every page of a listing, handing each to each. It fails on
// a failed page, a short page (fewer items than asked, with a next page) and
// a page token seen before.
func paginate[P page](ctx context.Context, s *Source, op, path string, q url.Values, size int, newPage func() P, each func(P)) error {
	q.Set("maxResults", strconv.Itoa(size))
	seen := map[string]bool{}
	token := ""
	for n := 1; ; n++ {
		if token != "" {
			q.Set("pageToken", token)
		}
		p := newPage()
		if err := s.getPage(ctx, op, n, path, q, p); err != nil {
			return err
		}
		s.pages.Add(1)
		s.items.Add(int64(p.count()))
		next := p.next()
		if next != "" && p.count() < size {
			return fmt.Errorf("google %s page %d: %d items where %d were asked, with a next page: a short page, so the listing may miss entries; nothing is applied", op, n, p.count(), size)
		}
		if next != "" && seen[next] {
			return fmt.Errorf("google %s page %d: the next page token repeats; the listing would never end", op, n)
		}
		seen[next] = true
		each(p)
		if next == "" {
			return nil
		}
		token = next
	}
}

// scopeParams are customer= or domain=.
func (s *Source) scopeParams() url.Values {
	q := url.Values{}
	if s.cfg.Domain != "" {
		q.Set("domain", s.cfg.Domain)
	} else {
		q.Set("customer", s.cfg.customer())
	}
	return q
}

func (s *Source) listUsers(ctx context.Context) ([]apiUser, error) {
	var users []apiUser
	q := s.scopeParams()
	q.Set("fields", usersFields)
	err := paginate(ctx, s, "users.list", "/users", q, usersPageSize,
		func() *usersPage { return &usersPage{} },
		func(p *usersPage) { users = append(users, p.Users...) })
	return users, err
}

// dirGroup is a group with its direct members as listed.
type dirGroup struct {
	apiGroup
	members []apiMember
}

// walk lists the groups in scope and their members: every group of the
// account (or domain), or the groups of group_keys, and then any group met
// as a member that is not listed yet, level by level. It returns the groups
// in the order met, and the ids of nested groups Google did not find.
func (s *Source) walk(ctx context.Context) (groups []*dirGroup, missing []string, err error) {
	known := map[string]*dirGroup{}
	var level []*dirGroup
	if len(s.cfg.GroupKeys) == 0 {
		q := s.scopeParams()
		q.Set("fields", groupsFields)
		err := paginate(ctx, s, "groups.list", "/groups", q, groupsPageSize,
			func() *groupsPage { return &groupsPage{} },
			func(p *groupsPage) {
				for _, g := range p.Groups {
					if g.ID != "" && known[g.ID] == nil {
						dg := &dirGroup{apiGroup: g}
						known[g.ID] = dg
						level = append(level, dg)
					}
				}
			})
		if err != nil {
			return nil, nil, err
		}
	} else {
		got, _, err := s.getGroups(ctx, s.cfg.GroupKeys, true)
		if err != nil {
			return nil, nil, err
		}
		for _, g := range got {
			if known[g.ID] == nil { // two keys may name one group
				known[g.ID] = g
				level = append(level, g)
			}
		}
	}
	for len(level) > 0 {
		groups = append(groups, level...)
		if err := s.listMembers(ctx, level); err != nil {
			return nil, nil, err
		}
		var nested []string
		queued := map[string]bool{}
		for _, g := range level {
			for _, m := range g.members {
				if m.Type == "GROUP" && m.ID != "" && known[m.ID] == nil && !queued[m.ID] {
					queued[m.ID] = true
					nested = append(nested, m.ID)
				}
			}
		}
		got, notFound, err := s.getGroups(ctx, nested, false)
		if err != nil {
			return nil, nil, err
		}
		missing = append(missing, notFound...)
		level = level[:0:0]
		for _, g := range got {
			known[g.ID] = g
			level = append(level, g)
		}
	}
	return groups, missing, nil
}

// getGroups reads groups by key (groups.get), a bounded number at a time.
// For configured keys a missing group fails the poll; for nested groups met
// as members it is reported in notFound.
func (s *Source) getGroups(ctx context.Context, keys []string, configured bool) (got []*dirGroup, notFound []string, err error) {
	if len(keys) == 0 {
		return nil, nil, nil
	}
	res := make([]*dirGroup, len(keys))
	miss := make([]bool, len(keys))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(apiclient.DefaultConcurrency)
	for i, key := range keys {
		g.Go(func() error {
			var ag apiGroup
			q := url.Values{"fields": {groupFields}}
			err := s.get(gctx, "groups.get", "/groups/"+url.PathEscape(strings.TrimSpace(key)), q, &ag)
			if apiclient.IsStatus(err, http.StatusNotFound) {
				if configured {
					return fmt.Errorf("group_keys: Google has no group %q; give an existing group's email, alias or ID: %w", key, err)
				}
				miss[i] = true
				return nil
			}
			if err != nil {
				return err
			}
			s.pages.Add(1)
			s.items.Add(1)
			if ag.ID == "" {
				return fmt.Errorf("google groups.get %q: the answer has no id", key)
			}
			res[i] = &dirGroup{apiGroup: ag}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	for i, dg := range res {
		if dg != nil {
			got = append(got, dg)
		} else if miss[i] {
			notFound = append(notFound, keys[i])
		}
	}
	return got, notFound, nil
}

// listMembers reads the direct members of each group, a bounded number of
// groups at a time; one group's pages are read in order.
func (s *Source) listMembers(ctx context.Context, groups []*dirGroup) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(apiclient.DefaultConcurrency)
	for _, dg := range groups {
		g.Go(func() error {
			q := url.Values{"fields": {membersFields}}
			return paginate(gctx, s, "members.list", "/groups/"+url.PathEscape(dg.ID)+"/members", q, membersPageSize,
				func() *membersPage { return &membersPage{} },
				func(p *membersPage) { dg.members = append(dg.members, p.Members...) })
		})
	}
	return g.Wait()
}

// Full lists the account's users and groups (or those in scope of
// group_keys). It returns no cursor: Google has nothing to continue from.
func (s *Source) Full(ctx context.Context) (*connectors.Snapshot, json.RawMessage, error) {
	s.poll.Lock()
	defer s.poll.Unlock()
	start := time.Now()
	before := s.Usage()

	var users []apiUser
	var groups []*dirGroup
	var missing []string
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		users, err = s.listUsers(gctx)
		return err
	})
	g.Go(func() (err error) {
		groups, missing, err = s.walk(gctx)
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	snap := s.snapshot(users, groups, missing)
	u := s.Usage()
	s.log.LogAttrs(ctx, slog.LevelDebug, "google listing",
		slog.Int("users", len(snap.Users)), slog.Int("groups", len(snap.Groups)), slog.Int("skipped", len(snap.Skipped)),
		slog.Int64("requests", u.Requests-before.Requests), slog.Int64("throttled", u.Throttled-before.Throttled),
		slog.Float64("duration", time.Since(start).Seconds()))
	return snap, nil, nil
}

// snapshot turns what was listed into roster's shape: group_keys scoping,
// members resolved to listed users and groups, inactive users marked.
func (s *Source) snapshot(users []apiUser, groups []*dirGroup, missing []string) *connectors.Snapshot {
	snap := &connectors.Snapshot{}
	byID := make(map[string]*apiUser, len(users))
	for i := range users {
		u := &users[i]
		if u.ID == "" || u.PrimaryEmail == "" {
			snap.Skipped = append(snap.Skipped, connectors.Skipped{ID: u.ID + u.PrimaryEmail, Reason: "user without id or primaryEmail"})
			continue
		}
		byID[u.ID] = u
	}
	groupByID := make(map[string]*dirGroup, len(groups))
	for _, g := range groups {
		groupByID[g.ID] = g
	}
	for _, id := range missing {
		snap.Skipped = append(snap.Skipped, connectors.Skipped{ID: id, Reason: "nested group Google does not find (another account's group?)"})
	}

	// With group_keys, only the users reached from those groups, through
	// nesting, are in scope; every walked group is in scope by construction.
	inScope := func(string) bool { return true }
	if len(s.cfg.GroupKeys) > 0 {
		reached := map[string]bool{}
		everyone := false
		for _, g := range groups {
			for _, m := range g.members {
				switch m.Type {
				case "USER":
					reached[m.ID] = true
				case "CUSTOMER":
					everyone = true
				}
			}
		}
		if !everyone {
			inScope = func(id string) bool { return reached[id] }
		}
	}

	listed := make(map[string]bool, len(byID))
	for i := range users {
		u := &users[i]
		if byID[u.ID] != u || !inScope(u.ID) {
			continue
		}
		listed[u.ID] = true
		snap.Users = append(snap.Users, toUser(u))
	}

	outside := map[string]bool{}
	for _, g := range groups {
		grp := connectors.Group{ExternalID: g.ID, Name: g.Name, Attrs: map[string]any{"email": strings.ToLower(g.Email)}}
		if grp.Name == "" {
			grp.Name = g.Email
		}
		seen := map[string]bool{}
		add := func(id string) {
			if !seen[id] {
				seen[id] = true
				grp.Members = append(grp.Members, id)
			}
		}
		for _, m := range g.members {
			switch m.Type {
			case "USER":
				if listed[m.ID] {
					add(m.ID)
				} else if !outside[m.ID] {
					outside[m.ID] = true
					snap.Skipped = append(snap.Skipped, connectors.Skipped{ID: m.ID,
						Reason: fmt.Sprintf("member %s of group %s is not a user of the listed account or domain", strings.ToLower(m.Email), g.Email)})
				}
			case "GROUP":
				if groupByID[m.ID] != nil {
					add(m.ID)
				}
			case "CUSTOMER":
				// Every user of the account is a member.
				for _, u := range snap.Users {
					add(u.ExternalID)
				}
			}
		}
		snap.Groups = append(snap.Groups, grp)
	}
	return snap
}

func toUser(u *apiUser) connectors.User {
	name := strings.TrimSpace(u.Name.FullName)
	if name == "" {
		name = strings.TrimSpace(u.Name.GivenName + " " + u.Name.FamilyName)
	}
	out := connectors.User{
		ExternalID:  u.ID,
		UserName:    u.PrimaryEmail,
		Email:       strings.ToLower(u.PrimaryEmail),
		DisplayName: name,
		GivenName:   u.Name.GivenName,
		FamilyName:  u.Name.FamilyName,
		// Suspended and archived users keep their account but are not
		// members: they leave the roster.
		Active: !u.Suspended && !u.Archived,
	}
	if u.OrgUnitPath != "" {
		out.Attrs = map[string]any{"org_unit_path": u.OrgUnitPath}
	}
	return out
}

// Check proves the key, the delegation and the admin's privileges with the
// cheapest calls that need each scope: one user, and one group (or each of
// group_keys). Its error names the fix.
func (s *Source) Check(ctx context.Context) error {
	q := s.scopeParams()
	q.Set("maxResults", "1")
	q.Set("fields", "users(id)")
	var up usersPage
	if err := s.get(ctx, "users.list", "/users", q, &up); err != nil {
		return err
	}
	if len(s.cfg.GroupKeys) > 0 {
		_, _, err := s.getGroups(ctx, s.cfg.GroupKeys, true)
		return err
	}
	q = s.scopeParams()
	q.Set("maxResults", "1")
	q.Set("fields", "groups(id)")
	var gp groupsPage
	return s.get(ctx, "groups.list", "/groups", q, &gp)
}
