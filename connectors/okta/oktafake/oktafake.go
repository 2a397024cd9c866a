// Package oktafake is an in-process Okta org for tests: an httptest server
// that answers the parts of the Okta management API roster's Okta connector
// uses, the way Okta documents them, with fault injection and request
// counters.
//
// Documented behaviour it follows:
//
//   - Auth: "Authorization: SSWS <api token>", or "Bearer <access token>"
//     minted by the org authorization server's token endpoint
//     ({URL}/oauth2/v1/token) for an OAuth service app: client_credentials
//     grant with a private_key_jwt client assertion (RS256; iss = sub =
//     client_id, aud = the token URL, exp at most one hour ahead, jti not
//     reused), verified against the app's registered public keys (JWKS). Each
//     requested scope must be granted to the app (okta.users.read,
//     okta.groups.read, okta.apps.read, okta.logs.read); tokens last 3600 s.
//     Token errors are RFC 6749 JSON ({"error", "error_description"}):
//     invalid_client (401), invalid_scope, unsupported_grant_type,
//     invalid_request, and invalid_dpop_proof for an app that requires DPoP.
//   - API errors are Okta's error object {"errorCode", "errorSummary",
//     "errorLink", "errorId", "errorCauses"}: 401 E0000011 "Invalid token
//     provided"; 403 E0000006 "You do not have permission to perform the
//     requested action" for an admin role without the permission, and the
//     same 403 with WWW-Authenticate error="insufficient_scope" for an access
//     token without the endpoint's scope; 404 E0000007 "Not found: Resource
//     not found: <id> (<type>)"; 429 E0000047 "API call exceeded rate limit
//     due to too many requests."; 500 E0000009 (timeout); 400 E0000001,
//     E0000031 and E0000053 for bad parameters, filters and System Log
//     cursors.
//   - Rate limits: every answer carries X-Rate-Limit-Limit,
//     X-Rate-Limit-Remaining and X-Rate-Limit-Reset (UTC epoch seconds) for
//     its endpoint's bucket (per-minute windows); a request over the limit
//     gets 429 E0000047. Okta sends no Retry-After; neither does this fake.
//   - Paging: Link headers <...>; rel="self" and <...after=...>; rel="next",
//     no next link on the last page. Page sizes: users 200 (default and
//     maximum), groups 200, group members 1000, application users 500
//     (default 50), System Log 1000 (default 100). Larger limits are cut to
//     the maximum.
//   - GET /api/v1/users leaves out DEPROVISIONED users unless filter= or
//     search= is given; filter supports status, lastUpdated, id,
//     profile.login, profile.email, profile.firstName and profile.lastName
//     with eq (and gt/ge/lt/le for lastUpdated), and / or. GET
//     /api/v1/users/{id} returns a user in any status. The Content-Type
//     okta-response=omitCredentials parameter drops the credentials object.
//   - GET /api/v1/groups with filter on id, type, lastUpdated and
//     lastMembershipUpdated. Types OKTA_GROUP, APP_GROUP and BUILT_IN (the
//     Everyone group, which holds every user). Okta groups do not contain
//     groups: GET /api/v1/groups/{id}/users lists users only. What Okta
//     offers instead of nesting, group rules that add the members of source
//     groups to a target group, is modelled (AddGroupRule): the rule's
//     members are listed as members of the target.
//   - GET /api/v1/apps/{id}/users[?expand=user] and
//     /api/v1/apps/{id}/users/{userId}: users assigned directly (scope USER)
//     or through an assigned group (scope GROUP); deactivating a user removes
//     their assignments.
//   - System Log GET /api/v1/logs: polling requests (no until, ascending)
//     always carry a next link, also on an empty page; since defaults to
//     seven days ago and more than 180 days ago is refused with 400 E0000053
//     "Invalid parameter: The since parameter is over 180 days prior to the
//     current day."; since and after are mutually exclusive; filter on
//     eventType, target.id, target.type, actor.id and outcome.result. Every
//     change made through the Server's methods is logged with the event type
//     Okta uses (user.lifecycle.create / activate / suspend / unsuspend /
//     deactivate / reactivate / delete.initiated, user.account.update_profile,
//     group.lifecycle.create / delete, group.profile.update,
//     group.user_membership.add / remove, application.user_membership.add /
//     remove, group.application_assignment.add / remove) and targets.
//
// Not covered: writes through the HTTP API (the directory changes only
// through the Server's methods), search= and q= beyond what filter does,
// sortBy, expand=stats, custom profile attributes, user types, Okta's
// concurrent-request limit, DPoP itself, EC keys, the Events API, and the
// System Log's persistence-time reordering (events are persisted in the
// order they happen). Two answers are not documented and are this fake's
// choice: an expired or unknown System Log after= token answers 400
// E0000053 "Invalid parameter: after", and the error_description texts of
// the token endpoint. Application assignments reached through a group are
// logged per user as application.user_membership.add / remove, besides the
// group.application_assignment event.
package oktafake

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Endpoints, as counted by Requests and named in faults.
const (
	EndpointUsers      = "users"       // GET /api/v1/users
	EndpointUser       = "user"        // GET /api/v1/users/{id}
	EndpointGroups     = "groups"      // GET /api/v1/groups
	EndpointGroupUsers = "group_users" // GET /api/v1/groups/{id}/users
	EndpointAppUsers   = "app_users"   // GET /api/v1/apps/{id}/users
	EndpointAppUser    = "app_user"    // GET /api/v1/apps/{id}/users/{userId}
	EndpointLogs       = "logs"        // GET /api/v1/logs
	EndpointToken      = "token"       // POST /oauth2/v1/token
)

// User statuses.
const (
	StatusStaged        = "STAGED"
	StatusProvisioned   = "PROVISIONED"
	StatusActive        = "ACTIVE"
	StatusSuspended     = "SUSPENDED"
	StatusDeprovisioned = "DEPROVISIONED"
	StatusLockedOut     = "LOCKED_OUT"
)

// Scopes of the org authorization server.
const (
	ScopeUsersRead  = "okta.users.read"
	ScopeGroupsRead = "okta.groups.read"
	ScopeAppsRead   = "okta.apps.read"
	ScopeLogsRead   = "okta.logs.read"
)

// Permissions are what an API token's admin, or a service app's admin role,
// may read.
type Permissions struct {
	Users, Groups, Apps, Logs bool
}

// ReadOnlyAdmin may read everything the connector reads.
var ReadOnlyAdmin = Permissions{Users: true, Groups: true, Apps: true, Logs: true}

// Profile is a user's profile.
type Profile struct {
	Login, Email, FirstName, LastName, DisplayName string
}

// Option configures a Server.
type Option func(*Server)

// WithClock makes the server read time from now (timestamps, rate-limit
// windows, token expiry, the System Log).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// Server is a fake Okta org.
type Server struct {
	URL      string
	TokenURL string

	srv *httptest.Server
	now func() time.Time

	mu       sync.Mutex
	seq      int64
	users    map[string]*user
	userIDs  []string // sorted, every existing user
	groups   map[string]*group
	groupIDs []string // sorted
	everyone string
	apps     map[string]*app
	rules    []*rule
	events   []*event
	logGen   int

	apiTokens    map[string]*Permissions
	clients      map[string]*ServiceApp
	accessTokens map[string]*accessToken
	usedJTI      map[string]bool

	counts           map[string]int
	throttledAnswers int
	throttleNext     int
	throttleWait     time.Duration
	unauthorizedNext int
	faults           []*fault
	limits           map[string]int
	windows          map[string]*window
}

type user struct {
	id            string
	status        string
	profile       Profile
	created       time.Time
	activated     time.Time
	statusChanged time.Time
	lastUpdated   time.Time
}

type group struct {
	id, typ, name, desc   string
	created, lastUpdated  time.Time
	lastMembershipUpdated time.Time
	members               map[string]bool // direct members
}

type rule struct {
	id      string
	target  string
	sources []string
}

type app struct {
	id, label string
	users     map[string]bool
	groups    map[string]bool
}

// ServiceApp is an OAuth 2.0 service app (API Services integration).
type ServiceApp struct {
	ClientID string
	// JWKS are the registered public keys, as Okta stores them.
	JWKS []JWK
	// Scopes are the granted Okta API scopes.
	Scopes []string
	// Role is what the app's admin role may read.
	Role Permissions
	// RequireDPoP refuses token requests without a DPoP proof.
	RequireDPoP bool
}

// JWK is a public RSA JSON Web Key.
type JWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid,omitempty"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// PublicJWK returns pub as a JWK.
func PublicJWK(pub *rsa.PublicKey, kid string) JWK {
	return JWK{Kty: "RSA", Kid: kid, Alg: "RS256", Use: "sig",
		N: base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		E: base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes())}
}

func (k JWK) rsa() (*rsa.PublicKey, error) {
	if k.Kty != "RSA" {
		return nil, fmt.Errorf("kty %q", k.Kty)
	}
	n, err := base64.RawURLEncoding.DecodeString(k.N)
	if err != nil {
		return nil, err
	}
	e, err := base64.RawURLEncoding.DecodeString(k.E)
	if err != nil {
		return nil, err
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
}

type accessToken struct {
	client  string
	scopes  map[string]bool
	expires time.Time
}

type fault struct {
	endpoint string
	page     int
	kind     string // throttle, fail, short
	times    int    // <0: always
	wait     time.Duration
}

type window struct {
	start time.Time
	used  int
}

// New starts a fake org with the Everyone group and no users.
func New(opts ...Option) *Server {
	s := &Server{
		now:          time.Now,
		users:        map[string]*user{},
		groups:       map[string]*group{},
		apps:         map[string]*app{},
		apiTokens:    map[string]*Permissions{},
		clients:      map[string]*ServiceApp{},
		accessTokens: map[string]*accessToken{},
		usedJTI:      map[string]bool{},
		counts:       map[string]int{},
		limits:       map[string]int{},
		windows:      map[string]*window{},
	}
	for _, o := range opts {
		o(s)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	s.TokenURL = s.URL + "/oauth2/v1/token"
	now := s.now().UTC()
	s.everyone = s.newID("00g")
	s.groups[s.everyone] = &group{id: s.everyone, typ: "BUILT_IN", name: "Everyone",
		desc: "All users in your organization", created: now, lastUpdated: now, lastMembershipUpdated: now, members: map[string]bool{}}
	s.groupIDs = append(s.groupIDs, s.everyone)
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// Client returns an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// newID returns a 20-character Okta-style id; ids sort in creation order.
func (s *Server) newID(prefix string) string {
	s.seq++
	n := strconv.FormatInt(s.seq, 36)
	return prefix + strings.Repeat("0", 17-len(n)) + n
}

// ---- credentials ----

// AddAPIToken registers an SSWS API token created by an admin with perm.
func (s *Server) AddAPIToken(token string, perm Permissions) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := perm
	s.apiTokens[token] = &p
}

// RevokeAPIToken makes token invalid (401 E0000011).
func (s *Server) RevokeAPIToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.apiTokens, token)
}

// SetAPITokenPermissions changes what token's admin may read.
func (s *Server) SetAPITokenPermissions(token string, perm Permissions) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.apiTokens[token]; ok {
		*p = perm
	}
}

// AddServiceApp registers an OAuth service app.
func (s *Server) AddServiceApp(a ServiceApp) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := a
	c.JWKS = append([]JWK(nil), a.JWKS...)
	c.Scopes = append([]string(nil), a.Scopes...)
	s.clients[a.ClientID] = &c
}

// UpdateServiceApp changes a registered service app (scopes, keys, role,
// DPoP). Access tokens already minted keep their scopes until they expire.
func (s *Server) UpdateServiceApp(clientID string, f func(*ServiceApp)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.clients[clientID]; ok {
		f(c)
	}
}

// RevokeAccessTokens makes every minted access token invalid, as when they
// expire.
func (s *Server) RevokeAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accessTokens = map[string]*accessToken{}
}

// ---- faults ----

// ThrottleNext answers the next n API requests with 429 E0000047, the
// rate-limit window resetting after wait.
func (s *Server) ThrottleNext(n int, wait time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttleNext, s.throttleWait = n, wait
}

// ThrottlePage answers the first request for page (1-based) of a listing of
// endpoint with 429 E0000047, resetting after wait.
func (s *Server) ThrottlePage(endpoint string, page int, wait time.Duration) {
	s.addFault(&fault{endpoint: endpoint, page: page, kind: "throttle", times: 1, wait: wait})
}

// FailPage answers page (1-based) of a listing of endpoint with 500
// E0000009, times times (negative: always).
func (s *Server) FailPage(endpoint string, page, times int) {
	s.addFault(&fault{endpoint: endpoint, page: page, kind: "fail", times: times})
}

// ShortPage answers page (1-based) of a listing of endpoint once with half
// the items it should hold, and the next link as if it were whole.
func (s *Server) ShortPage(endpoint string, page int) {
	s.addFault(&fault{endpoint: endpoint, page: page, kind: "short", times: 1})
}

// ClearFaults drops every fault not yet spent, ThrottleNext and
// UnauthorizedNext included.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
	s.throttleNext, s.unauthorizedNext = 0, 0
}

func (s *Server) addFault(f *fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f)
}

// UnauthorizedNext answers the next n API requests with 401 E0000011, as a
// transient authentication failure.
func (s *Server) UnauthorizedNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unauthorizedNext = n
}

// ExpireLogCursors makes every System Log after= token issued so far
// unusable.
func (s *Server) ExpireLogCursors() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logGen++
}

// SetRateLimit sets the per-minute limit of endpoint's rate-limit bucket
// (0: the default of 10,000).
func (s *Server) SetRateLimit(endpoint string, perMinute int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits[endpoint] = perMinute
}

// ---- counters ----

// Requests returns how many requests endpoint received.
func (s *Server) Requests(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[endpoint]
}

// TotalRequests returns how many requests the server received.
func (s *Server) TotalRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.counts {
		n += c
	}
	return n
}

// ThrottledAnswers returns how many 429 answers the server sent.
func (s *Server) ThrottledAnswers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.throttledAnswers
}

// ResetCounters zeroes the request counters.
func (s *Server) ResetCounters() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts = map[string]int{}
	s.throttledAnswers = 0
}

// ---- directory changes ----

func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// AddUser creates an ACTIVE user and returns its id.
func (s *Server) AddUser(p Profile) string {
	return s.AddUserWithStatus(p, StatusActive)
}

// AddUserWithStatus creates a user in status (STAGED, PROVISIONED, ACTIVE,
// SUSPENDED, ...).
func (s *Server) AddUserWithStatus(p Profile, status string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC()
	u := &user{id: s.newID("00u"), status: status, profile: p, created: now, statusChanged: now, lastUpdated: now}
	if status != StatusStaged {
		u.activated = now
	}
	s.users[u.id] = u
	s.userIDs = append(s.userIDs, u.id)
	s.logUser("user.lifecycle.create", "Create okta user", u)
	if status != StatusStaged {
		s.logUser("user.lifecycle.activate", "Activate Okta user", u)
	}
	return u.id
}

// UpdateUser replaces a user's profile.
func (s *Server) UpdateUser(id string, p Profile) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return fmt.Errorf("no user %s", id)
	}
	u.profile = p
	u.lastUpdated = s.now().UTC()
	s.logUser("user.account.update_profile", "Update user profile for Okta", u)
	return nil
}

// SuspendUser moves an ACTIVE user to SUSPENDED.
func (s *Server) SuspendUser(id string) error {
	return s.setStatus(id, StatusSuspended, "user.lifecycle.suspend", "Suspend Okta user")
}

// UnsuspendUser moves a SUSPENDED user back to ACTIVE.
func (s *Server) UnsuspendUser(id string) error {
	return s.setStatus(id, StatusActive, "user.lifecycle.unsuspend", "Unsuspend Okta user")
}

// DeactivateUser moves a user to DEPROVISIONED, which removes their
// application assignments.
func (s *Server) DeactivateUser(id string) error {
	return s.setStatus(id, StatusDeprovisioned, "user.lifecycle.deactivate", "Deactivate Okta user")
}

// ReactivateUser moves a DEPROVISIONED user to PROVISIONED.
func (s *Server) ReactivateUser(id string) error {
	return s.setStatus(id, StatusProvisioned, "user.lifecycle.reactivate", "Reactivate Okta user")
}

func (s *Server) setStatus(id, status, eventType, msg string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return fmt.Errorf("no user %s", id)
	}
	before := s.appsOf(id)
	now := s.now().UTC()
	u.status, u.statusChanged, u.lastUpdated = status, now, now
	if status == StatusDeprovisioned {
		for _, a := range s.apps {
			delete(a.users, id)
		}
	}
	s.logUser(eventType, msg, u)
	s.logAppChanges(id, before)
	return nil
}

// DeleteUser deletes a user, deactivating them first as Okta does.
func (s *Server) DeleteUser(id string) error {
	u, ok := s.userByID(id)
	if !ok {
		return fmt.Errorf("no user %s", id)
	}
	if u.status != StatusDeprovisioned {
		if err := s.DeactivateUser(id); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// The user leaves every group with the account; Okta logs the deletion,
	// not one membership event per group.
	for _, g := range s.groups {
		delete(g.members, id)
	}
	delete(s.users, id)
	s.userIDs = removeSorted(s.userIDs, id)
	s.logUser("user.lifecycle.delete.initiated", "Delete Okta user", u)
	return nil
}

func (s *Server) userByID(id string) (*user, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	return u, ok
}

// CreateGroup creates an OKTA_GROUP and returns its id.
func (s *Server) CreateGroup(name, description string) string {
	return s.createGroup("OKTA_GROUP", name, description)
}

// CreateAppGroup creates an APP_GROUP (as an Active Directory import does).
func (s *Server) CreateAppGroup(name, description string) string {
	return s.createGroup("APP_GROUP", name, description)
}

func (s *Server) createGroup(typ, name, desc string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC()
	g := &group{id: s.newID("00g"), typ: typ, name: name, desc: desc, created: now, lastUpdated: now, lastMembershipUpdated: now, members: map[string]bool{}}
	s.groups[g.id] = g
	s.groupIDs = append(s.groupIDs, g.id)
	s.logGroup("group.lifecycle.create", "Create okta group", g)
	return g.id
}

// RenameGroup changes a group's name.
func (s *Server) RenameGroup(id, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[id]
	if !ok {
		return fmt.Errorf("no group %s", id)
	}
	g.name, g.lastUpdated = name, s.now().UTC()
	s.logGroup("group.profile.update", "Update group profile", g)
	return nil
}

// DeleteGroup deletes a group (its rules go with it).
func (s *Server) DeleteGroup(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[id]
	if !ok || g.typ == "BUILT_IN" {
		return fmt.Errorf("no deletable group %s", id)
	}
	members := s.effectiveMembers(id)
	before := map[string][]string{}
	for uid := range members {
		before[uid] = s.appsOf(uid)
	}
	delete(s.groups, id)
	s.groupIDs = removeSorted(s.groupIDs, id)
	for _, a := range s.apps {
		delete(a.groups, id)
	}
	var keep []*rule
	for _, r := range s.rules {
		if r.target != id {
			keep = append(keep, r)
		}
	}
	s.rules = keep
	s.logGroup("group.lifecycle.delete", "Delete Okta group", g)
	for uid, b := range before {
		s.logAppChanges(uid, b)
	}
	return nil
}

// AddMember adds a user to an OKTA_GROUP or APP_GROUP.
func (s *Server) AddMember(groupID, userID string) error {
	return s.changeMember(groupID, userID, true)
}

// RemoveMember removes a user from a group.
func (s *Server) RemoveMember(groupID, userID string) error {
	return s.changeMember(groupID, userID, false)
}

// SetMembers makes userIDs the group's direct members.
func (s *Server) SetMembers(groupID string, userIDs ...string) error {
	s.mu.Lock()
	g, ok := s.groups[groupID]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("no group %s", groupID)
	}
	want := map[string]bool{}
	for _, u := range userIDs {
		want[u] = true
	}
	var add, remove []string
	for u := range want {
		if !g.members[u] {
			add = append(add, u)
		}
	}
	for u := range g.members {
		if !want[u] {
			remove = append(remove, u)
		}
	}
	s.mu.Unlock()
	sort.Strings(add)
	sort.Strings(remove)
	for _, u := range remove {
		if err := s.changeMember(groupID, u, false); err != nil {
			return err
		}
	}
	for _, u := range add {
		if err := s.changeMember(groupID, u, true); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) changeMember(groupID, userID string, add bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[groupID]
	if !ok || g.typ == "BUILT_IN" {
		return fmt.Errorf("no group %s whose members can change", groupID)
	}
	u, ok := s.users[userID]
	if !ok {
		return fmt.Errorf("no user %s", userID)
	}
	if g.members[userID] == add {
		return nil
	}
	// Rule targets and apps this membership feeds, before the change.
	targets := map[string]bool{}
	for _, r := range s.rules {
		for _, src := range r.sources {
			if src == groupID {
				targets[r.target] = s.isEffectiveMember(r.target, userID)
			}
		}
	}
	apps := s.appsOf(userID)
	now := s.now().UTC()
	if add {
		g.members[userID] = true
	} else {
		delete(g.members, userID)
	}
	g.lastMembershipUpdated = now
	s.logMembership(add, u, g)
	for t, was := range targets {
		if is := s.isEffectiveMember(t, userID); is != was {
			tg := s.groups[t]
			tg.lastMembershipUpdated = now
			s.logMembership(is, u, tg)
		}
	}
	s.logAppChanges(userID, apps)
	return nil
}

// AddGroupRule adds an active group rule that puts the members of sources
// into target, and returns its id.
func (s *Server) AddGroupRule(target string, sources ...string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tg, ok := s.groups[target]
	if !ok || tg.typ != "OKTA_GROUP" {
		return "", fmt.Errorf("no OKTA_GROUP %s", target)
	}
	before := s.effectiveMembers(target)
	r := &rule{id: s.newID("0pr"), target: target, sources: append([]string(nil), sources...)}
	s.rules = append(s.rules, r)
	after := s.effectiveMembers(target)
	now := s.now().UTC()
	for _, uid := range sortedKeys(after) {
		if !before[uid] {
			tg.lastMembershipUpdated = now
			s.logMembership(true, s.users[uid], tg)
		}
	}
	return r.id, nil
}

// CreateApp creates an application and returns its id.
func (s *Server) CreateApp(label string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := &app{id: s.newID("0oa"), label: label, users: map[string]bool{}, groups: map[string]bool{}}
	s.apps[a.id] = a
	return a.id
}

// AssignUser assigns a user to an app directly.
func (s *Server) AssignUser(appID, userID string) error {
	return s.assign(appID, userID, "", true)
}

// UnassignUser removes a direct assignment.
func (s *Server) UnassignUser(appID, userID string) error {
	return s.assign(appID, userID, "", false)
}

// AssignGroup assigns a group (and so its members) to an app.
func (s *Server) AssignGroup(appID, groupID string) error {
	return s.assign(appID, "", groupID, true)
}

// UnassignGroup removes a group assignment.
func (s *Server) UnassignGroup(appID, groupID string) error {
	return s.assign(appID, "", groupID, false)
}

func (s *Server) assign(appID, userID, groupID string, on bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[appID]
	if !ok {
		return fmt.Errorf("no app %s", appID)
	}
	affected := map[string][]string{}
	if userID != "" {
		if _, ok := s.users[userID]; !ok {
			return fmt.Errorf("no user %s", userID)
		}
		affected[userID] = s.appsOf(userID)
		if on {
			a.users[userID] = true
		} else {
			delete(a.users, userID)
		}
	} else {
		g, ok := s.groups[groupID]
		if !ok {
			return fmt.Errorf("no group %s", groupID)
		}
		for uid := range s.effectiveMembers(groupID) {
			affected[uid] = s.appsOf(uid)
		}
		if on {
			a.groups[groupID] = true
		} else {
			delete(a.groups, groupID)
		}
		typ, msg := "group.application_assignment.add", "Add assigned application to group"
		if !on {
			typ, msg = "group.application_assignment.remove", "Remove assigned application from group"
		}
		s.logEvent(typ, msg, target{ID: a.id, Type: "AppInstance", AlternateID: a.label, DisplayName: a.label},
			target{ID: g.id, Type: "UserGroup", AlternateID: "unknown", DisplayName: g.name})
	}
	for _, uid := range sortedKeys(affected) {
		s.logAppChanges(uid, affected[uid])
	}
	return nil
}

// ---- membership computations (s.mu held) ----

func (s *Server) effectiveMembers(groupID string) map[string]bool {
	g := s.groups[groupID]
	out := map[string]bool{}
	if g == nil {
		return out
	}
	if g.typ == "BUILT_IN" {
		for id := range s.users {
			out[id] = true
		}
		return out
	}
	for id := range g.members {
		out[id] = true
	}
	for _, r := range s.rules {
		if r.target != groupID {
			continue
		}
		for _, src := range r.sources {
			if sg := s.groups[src]; sg != nil {
				for id := range sg.members {
					out[id] = true
				}
			}
		}
	}
	return out
}

func (s *Server) isEffectiveMember(groupID, userID string) bool {
	g := s.groups[groupID]
	if g == nil {
		return false
	}
	if g.typ == "BUILT_IN" || g.members[userID] {
		return g.typ != "BUILT_IN" || s.users[userID] != nil
	}
	for _, r := range s.rules {
		if r.target != groupID {
			continue
		}
		for _, src := range r.sources {
			if sg := s.groups[src]; sg != nil && sg.members[userID] {
				return true
			}
		}
	}
	return false
}

// appScope says how a user is assigned to an app: "USER", "GROUP" or "".
func (s *Server) appScope(a *app, userID string) string {
	u := s.users[userID]
	if u == nil || u.status == StatusDeprovisioned {
		return ""
	}
	if a.users[userID] {
		return "USER"
	}
	for gid := range a.groups {
		if s.isEffectiveMember(gid, userID) {
			return "GROUP"
		}
	}
	return ""
}

func (s *Server) appsOf(userID string) []string {
	var out []string
	for id, a := range s.apps {
		if s.appScope(a, userID) != "" {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

func (s *Server) appUsers(a *app) []string {
	var out []string
	for _, id := range s.userIDs {
		if s.appScope(a, id) != "" {
			out = append(out, id)
		}
	}
	return out
}

// logAppChanges logs the assignments userID gained or lost since before.
func (s *Server) logAppChanges(userID string, before []string) {
	if len(s.apps) == 0 {
		return
	}
	was := map[string]bool{}
	for _, id := range before {
		was[id] = true
	}
	is := map[string]bool{}
	for _, id := range s.appsOf(userID) {
		is[id] = true
	}
	u := s.users[userID]
	for _, id := range sortedKeys(s.apps) {
		if was[id] == is[id] {
			continue
		}
		a := s.apps[id]
		typ, msg := "application.user_membership.add", "Add user to application membership"
		if !is[id] {
			typ, msg = "application.user_membership.remove", "Remove users application membership"
		}
		ut := target{ID: userID, Type: "User"}
		if u != nil {
			ut.AlternateID, ut.DisplayName = u.profile.Login, displayName(u.profile)
		}
		s.logEvent(typ, msg, target{ID: a.id, Type: "AppInstance", AlternateID: a.label, DisplayName: a.label},
			target{ID: userID, Type: "AppUser"}, ut)
	}
}

// ---- System Log ----

type event struct {
	UUID           string            `json:"uuid"`
	Published      string            `json:"published"`
	EventType      string            `json:"eventType"`
	Version        string            `json:"version"`
	Severity       string            `json:"severity"`
	LegacyType     *string           `json:"legacyEventType"`
	DisplayMessage string            `json:"displayMessage"`
	Actor          target            `json:"actor"`
	Client         map[string]any    `json:"client"`
	Outcome        map[string]string `json:"outcome"`
	Target         []target          `json:"target"`
	Transaction    map[string]any    `json:"transaction"`
	DebugContext   map[string]any    `json:"debugContext"`

	published time.Time
}

type target struct {
	ID          string         `json:"id"`
	Type        string         `json:"type"`
	AlternateID string         `json:"alternateId"`
	DisplayName string         `json:"displayName"`
	DetailEntry map[string]any `json:"detailEntry"`
}

func displayName(p Profile) string {
	if p.DisplayName != "" {
		return p.DisplayName
	}
	return strings.TrimSpace(p.FirstName + " " + p.LastName)
}

func (s *Server) logUser(typ, msg string, u *user) {
	s.logEvent(typ, msg, target{ID: u.id, Type: "User", AlternateID: u.profile.Login, DisplayName: displayName(u.profile)})
}

func (s *Server) logGroup(typ, msg string, g *group) {
	s.logEvent(typ, msg, target{ID: g.id, Type: "UserGroup", AlternateID: "unknown", DisplayName: g.name})
}

func (s *Server) logMembership(add bool, u *user, g *group) {
	typ, msg := "group.user_membership.add", "Add user to group membership"
	if !add {
		typ, msg = "group.user_membership.remove", "Remove user from group membership"
	}
	s.logEvent(typ, msg, target{ID: u.id, Type: "User", AlternateID: u.profile.Login, DisplayName: displayName(u.profile)},
		target{ID: g.id, Type: "UserGroup", AlternateID: "unknown", DisplayName: g.name})
}

func (s *Server) logEvent(typ, msg string, targets ...target) {
	now := s.now().UTC()
	s.events = append(s.events, &event{
		UUID: randHex(16), Published: ts(now), EventType: typ, Version: "0", Severity: "INFO",
		DisplayMessage: msg,
		Actor:          target{ID: "00u000000000000admin", Type: "User", AlternateID: "admin@example.com", DisplayName: "Admin"},
		Client:         map[string]any{"ipAddress": "127.0.0.1", "zone": "null"},
		Outcome:        map[string]string{"result": "SUCCESS"},
		Target:         targets,
		Transaction:    map[string]any{"type": "WEB", "id": randHex(8)},
		DebugContext:   map[string]any{"debugData": map[string]any{}},
		published:      now,
	})
}

// ---- HTTP ----

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC()
	w.Header().Set("Date", now.Format(http.TimeFormat))

	if r.URL.Path == "/oauth2/v1/token" {
		s.counts[EndpointToken]++
		if !s.rateLimit(w, EndpointToken, now) {
			return
		}
		s.token(w, r, now)
		return
	}
	ep, ids := route(r)
	if ep == "" {
		writeErr(w, http.StatusNotFound, "E0000022", "The endpoint does not support the provided HTTP method")
		return
	}
	s.counts[ep]++
	if s.unauthorizedNext > 0 {
		s.unauthorizedNext--
		s.setRateHeaders(w, ep, now)
		writeErr(w, http.StatusUnauthorized, "E0000011", "Invalid token provided")
		return
	}
	if s.throttleNext > 0 {
		s.throttleNext--
		s.throttle(w, ep, now, s.throttleWait)
		return
	}
	if !s.rateLimit(w, ep, now) {
		return
	}
	if !s.authorize(w, r, ep, now) {
		return
	}
	switch ep {
	case EndpointUsers:
		s.listUsers(w, r, now)
	case EndpointUser:
		u, ok := s.users[ids[0]]
		if !ok {
			writeErr(w, http.StatusNotFound, "E0000007", fmt.Sprintf("Not found: Resource not found: %s (User)", ids[0]))
			return
		}
		writeJSON(w, s.userJSON(u, omitCredentials(r)))
	case EndpointGroups:
		s.listGroups(w, r, now)
	case EndpointGroupUsers:
		s.listGroupUsers(w, r, ids[0], now)
	case EndpointAppUsers:
		s.listAppUsers(w, r, ids[0], now)
	case EndpointAppUser:
		s.getAppUser(w, r, ids[0], ids[1])
	case EndpointLogs:
		s.listLogs(w, r, now)
	}
}

func route(r *http.Request) (string, []string) {
	if r.Method != http.MethodGet {
		return "", nil
	}
	p := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(p) < 3 || p[0] != "api" || p[1] != "v1" {
		return "", nil
	}
	switch {
	case p[2] == "users" && len(p) == 3:
		return EndpointUsers, nil
	case p[2] == "users" && len(p) == 4:
		return EndpointUser, p[3:]
	case p[2] == "groups" && len(p) == 3:
		return EndpointGroups, nil
	case p[2] == "groups" && len(p) == 5 && p[4] == "users":
		return EndpointGroupUsers, p[3:4]
	case p[2] == "apps" && len(p) == 5 && p[4] == "users":
		return EndpointAppUsers, p[3:4]
	case p[2] == "apps" && len(p) == 6 && p[4] == "users":
		return EndpointAppUser, []string{p[3], p[5]}
	case p[2] == "logs" && len(p) == 3:
		return EndpointLogs, nil
	}
	return "", nil
}

const defaultRateLimit = 10000

func (s *Server) limit(ep string) int {
	if n := s.limits[ep]; n > 0 {
		return n
	}
	return defaultRateLimit
}

func (s *Server) window(ep string, now time.Time) *window {
	start := now.Truncate(time.Minute)
	w := s.windows[ep]
	if w == nil || !w.start.Equal(start) {
		w = &window{start: start}
		s.windows[ep] = w
	}
	return w
}

func (s *Server) setRateHeaders(w http.ResponseWriter, ep string, now time.Time) {
	win := s.window(ep, now)
	lim := s.limit(ep)
	w.Header().Set("X-Rate-Limit-Limit", strconv.Itoa(lim))
	w.Header().Set("X-Rate-Limit-Remaining", strconv.Itoa(max(0, lim-win.used)))
	w.Header().Set("X-Rate-Limit-Reset", strconv.FormatInt(win.start.Add(time.Minute).Unix(), 10))
}

// rateLimit counts the request in ep's window, or answers 429 when the
// window is used up.
func (s *Server) rateLimit(w http.ResponseWriter, ep string, now time.Time) bool {
	win := s.window(ep, now)
	if win.used >= s.limit(ep) {
		s.throttle(w, ep, now, win.start.Add(time.Minute).Sub(now))
		return false
	}
	win.used++
	s.setRateHeaders(w, ep, now)
	return true
}

func (s *Server) throttle(w http.ResponseWriter, ep string, now time.Time, wait time.Duration) {
	s.throttledAnswers++
	reset := now.Add(wait)
	if reset.Truncate(time.Second).Before(reset) {
		reset = reset.Truncate(time.Second).Add(time.Second)
	}
	w.Header().Set("X-Rate-Limit-Limit", strconv.Itoa(s.limit(ep)))
	w.Header().Set("X-Rate-Limit-Remaining", "0")
	w.Header().Set("X-Rate-Limit-Reset", strconv.FormatInt(reset.Unix(), 10))
	writeErr(w, http.StatusTooManyRequests, "E0000047", "API call exceeded rate limit due to too many requests.")
}

func scopeFor(ep string) string {
	switch ep {
	case EndpointUsers, EndpointUser:
		return ScopeUsersRead
	case EndpointGroups, EndpointGroupUsers:
		return ScopeGroupsRead
	case EndpointAppUsers, EndpointAppUser:
		return ScopeAppsRead
	}
	return ScopeLogsRead
}

func permitted(p Permissions, ep string) bool {
	switch scopeFor(ep) {
	case ScopeUsersRead:
		return p.Users
	case ScopeGroupsRead:
		return p.Groups
	case ScopeAppsRead:
		return p.Apps
	}
	return p.Logs
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request, ep string, now time.Time) bool {
	h := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(h, " ")
	var perm Permissions
	switch {
	case strings.EqualFold(scheme, "SSWS"):
		p, ok := s.apiTokens[cred]
		if !ok {
			writeErr(w, http.StatusUnauthorized, "E0000011", "Invalid token provided")
			return false
		}
		perm = *p
	case strings.EqualFold(scheme, "Bearer"):
		t, ok := s.accessTokens[cred]
		if !ok || !now.Before(t.expires) {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization_uri="%s/oauth2/v1/authorize", realm="%s", scope="%s", error="invalid_token", error_description="The access token is invalid.", resource="%s"`,
				s.URL, s.URL, scopeFor(ep), r.URL.Path))
			writeErr(w, http.StatusUnauthorized, "E0000011", "Invalid token provided")
			return false
		}
		if !t.scopes[scopeFor(ep)] {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization_uri="%s/oauth2/v1/authorize", realm="%s", scope="%s", error="insufficient_scope", error_description="The access token provided does not contain the required scopes.", resource="%s"`,
				s.URL, s.URL, scopeFor(ep), r.URL.Path))
			writeErr(w, http.StatusForbidden, "E0000006", "You do not have permission to perform the requested action")
			return false
		}
		c, ok := s.clients[t.client]
		if !ok {
			writeErr(w, http.StatusUnauthorized, "E0000011", "Invalid token provided")
			return false
		}
		perm = c.Role
	default:
		writeErr(w, http.StatusUnauthorized, "E0000011", "Invalid token provided")
		return false
	}
	if !permitted(perm, ep) {
		writeErr(w, http.StatusForbidden, "E0000006", "You do not have permission to perform the requested action")
		return false
	}
	return true
}

// ---- listings ----

// pageOf applies the paging parameters and faults to ids (sorted) and
// writes the Link headers. It returns the ids of the page, or false when it
// answered already.
func (s *Server) pageOf(w http.ResponseWriter, r *http.Request, ep string, ids []string, defLimit, maxLimit int, now time.Time) ([]string, bool) {
	q := r.URL.Query()
	limit := defLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeErr(w, http.StatusBadRequest, "E0000001", "Api validation failed: limit", "limit: must be a positive number")
			return nil, false
		}
		if n > 0 {
			limit = min(n, maxLimit)
		}
	}
	start := 0
	if after := q.Get("after"); after != "" {
		start = sort.SearchStrings(ids, after)
		if start < len(ids) && ids[start] == after {
			start++
		}
	}
	page := start/limit + 1
	short := false
	for _, f := range s.faults {
		if f.endpoint != ep || f.page != page || f.times == 0 {
			continue
		}
		if f.times > 0 {
			f.times--
		}
		switch f.kind {
		case "throttle":
			s.throttle(w, ep, now, f.wait)
			return nil, false
		case "fail":
			writeErr(w, http.StatusInternalServerError, "E0000009", "Your last request took too long to complete. This is likely due to a load issue on our side. We've logged this and will work to address it. Please either simplify your query or wait a few minutes and try again.")
			return nil, false
		case "short":
			short = true
		}
	}
	end := min(start+limit, len(ids))
	items := ids[start:end]
	w.Header().Add("Link", fmt.Sprintf(`<%s>; rel="self"`, s.URL+r.URL.RequestURI()))
	if end < len(ids) {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("after", ids[end-1])
		nq.Set("limit", strconv.Itoa(limit))
		w.Header().Add("Link", fmt.Sprintf(`<%s%s?%s>; rel="next"`, s.URL, r.URL.Path, nq.Encode()))
	}
	if short {
		items = items[:len(items)/2]
	}
	return items, true
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, now time.Time) {
	q := r.URL.Query()
	ids := s.userIDs
	expr := q.Get("filter")
	if expr == "" {
		expr = q.Get("search")
	}
	if expr != "" {
		e, err := parseFilter(expr, func(a string) bool {
			switch a {
			case "status", "lastUpdated", "id", "profile.login", "profile.email", "profile.firstName", "profile.lastName", "created", "activated", "statusChanged":
				return true
			}
			return false
		})
		if err != nil {
			writeErr(w, http.StatusBadRequest, "E0000031", "Invalid search criteria.", err.Error())
			return
		}
		var match []string
		for _, id := range s.userIDs {
			u := s.users[id]
			if e.eval(func(a string) (string, bool) { return userAttr(u, a) }) {
				match = append(match, id)
			}
		}
		ids = match
	} else {
		var live []string
		for _, id := range s.userIDs {
			if s.users[id].status != StatusDeprovisioned {
				live = append(live, id)
			}
		}
		ids = live
	}
	page, ok := s.pageOf(w, r, EndpointUsers, ids, 200, 200, now)
	if !ok {
		return
	}
	omit := omitCredentials(r)
	out := make([]userJSON, 0, len(page))
	for _, id := range page {
		out = append(out, s.userJSON(s.users[id], omit))
	}
	writeJSON(w, out)
}

func userAttr(u *user, a string) (string, bool) {
	switch a {
	case "status":
		return u.status, true
	case "lastUpdated":
		return ts(u.lastUpdated), true
	case "created":
		return ts(u.created), true
	case "statusChanged":
		return ts(u.statusChanged), true
	case "activated":
		return ts(u.activated), !u.activated.IsZero()
	case "id":
		return u.id, true
	case "profile.login":
		return u.profile.Login, true
	case "profile.email":
		return u.profile.Email, true
	case "profile.firstName":
		return u.profile.FirstName, true
	case "profile.lastName":
		return u.profile.LastName, true
	}
	return "", false
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request, now time.Time) {
	ids := s.groupIDs
	if f := r.URL.Query().Get("filter"); f != "" {
		e, err := parseFilter(f, func(a string) bool {
			switch a {
			case "id", "type", "lastUpdated", "lastMembershipUpdated":
				return true
			}
			return false
		})
		if err != nil {
			writeErr(w, http.StatusBadRequest, "E0000031", "Invalid search criteria.", err.Error())
			return
		}
		var match []string
		for _, id := range s.groupIDs {
			g := s.groups[id]
			if e.eval(func(a string) (string, bool) {
				switch a {
				case "id":
					return g.id, true
				case "type":
					return g.typ, true
				case "lastUpdated":
					return ts(g.lastUpdated), true
				case "lastMembershipUpdated":
					return ts(g.lastMembershipUpdated), true
				}
				return "", false
			}) {
				match = append(match, id)
			}
		}
		ids = match
	}
	page, ok := s.pageOf(w, r, EndpointGroups, ids, 200, 200, now)
	if !ok {
		return
	}
	out := make([]groupJSON, 0, len(page))
	for _, id := range page {
		out = append(out, s.groupJSON(s.groups[id]))
	}
	writeJSON(w, out)
}

func (s *Server) listGroupUsers(w http.ResponseWriter, r *http.Request, gid string, now time.Time) {
	if _, ok := s.groups[gid]; !ok {
		writeErr(w, http.StatusNotFound, "E0000007", fmt.Sprintf("Not found: Resource not found: %s (UserGroup)", gid))
		return
	}
	ids := sortedKeys(s.effectiveMembers(gid))
	page, ok := s.pageOf(w, r, EndpointGroupUsers, ids, 1000, 1000, now)
	if !ok {
		return
	}
	omit := omitCredentials(r)
	out := make([]userJSON, 0, len(page))
	for _, id := range page {
		out = append(out, s.userJSON(s.users[id], omit))
	}
	writeJSON(w, out)
}

func (s *Server) listAppUsers(w http.ResponseWriter, r *http.Request, appID string, now time.Time) {
	a, ok := s.apps[appID]
	if !ok {
		writeErr(w, http.StatusNotFound, "E0000007", fmt.Sprintf("Not found: Resource not found: %s (AppInstance)", appID))
		return
	}
	page, ok := s.pageOf(w, r, EndpointAppUsers, s.appUsers(a), 50, 500, now)
	if !ok {
		return
	}
	expand := r.URL.Query().Get("expand") == "user"
	out := make([]appUserJSON, 0, len(page))
	for _, id := range page {
		out = append(out, s.appUserJSON(a, s.users[id], expand))
	}
	writeJSON(w, out)
}

func (s *Server) getAppUser(w http.ResponseWriter, r *http.Request, appID, userID string) {
	a, ok := s.apps[appID]
	if !ok {
		writeErr(w, http.StatusNotFound, "E0000007", fmt.Sprintf("Not found: Resource not found: %s (AppInstance)", appID))
		return
	}
	if s.appScope(a, userID) == "" {
		writeErr(w, http.StatusNotFound, "E0000007", fmt.Sprintf("Not found: Resource not found: %s (AppUser)", userID))
		return
	}
	writeJSON(w, s.appUserJSON(a, s.users[userID], r.URL.Query().Get("expand") == "user"))
}

func (s *Server) listLogs(w http.ResponseWriter, r *http.Request, now time.Time) {
	q := r.URL.Query()
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1000 {
			writeErr(w, http.StatusBadRequest, "E0000001", "Api validation failed: 'limit': must be an integer between 0 and 1000.")
			return
		}
		if n > 0 {
			limit = n
		}
	}
	if so := q.Get("sortOrder"); so != "" && so != "ASCENDING" {
		writeErr(w, http.StatusBadRequest, "E0000053", "Invalid parameter: this fake serves only sortOrder=ASCENDING")
		return
	}
	if q.Get("since") != "" && q.Get("after") != "" {
		writeErr(w, http.StatusBadRequest, "E0000001", "Api validation failed: 'since' and 'after' can't be specified together.")
		return
	}
	start := 0
	if after := q.Get("after"); after != "" {
		gen, idx, ok := decodeAfter(after)
		if !ok || gen != s.logGen || idx > len(s.events) {
			writeErr(w, http.StatusBadRequest, "E0000053", "Invalid parameter: after")
			return
		}
		start = idx
	} else {
		since := now.Add(-7 * 24 * time.Hour)
		if v := q.Get("since"); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				writeErr(w, http.StatusBadRequest, "E0000001",
					"Api validation failed: 'since': The date format in your query is not recognized. Please enter dates using ISO8601 string format.. 'since': must be a valid date-time or empty.",
					"since: The date format in your query is not recognized. Please enter dates using ISO8601 string format.", "since: must be a valid date-time or empty.")
				return
			}
			since = t
		}
		if now.Sub(since) > 180*24*time.Hour {
			writeErr(w, http.StatusBadRequest, "E0000053", "Invalid parameter: The since parameter is over 180 days prior to the current day.")
			return
		}
		start = sort.Search(len(s.events), func(i int) bool { return !s.events[i].published.Before(since) })
	}
	var match expr
	if f := q.Get("filter"); f != "" {
		e, err := parseFilter(f, func(a string) bool {
			switch a {
			case "eventType", "target.id", "target.type", "actor.id", "outcome.result":
				return true
			}
			return false
		})
		if err != nil {
			writeErr(w, http.StatusBadRequest, "E0000053", fmt.Sprintf("Invalid filter '%s': %v", f, err))
			return
		}
		match = e
	}
	// Faults by page: the n-th request of a poll is not knowable, so page 1
	// is a request without after= and page 2 any request with after=.
	page := 1
	if q.Get("after") != "" {
		page = 2
	}
	for _, f := range s.faults {
		if f.endpoint != EndpointLogs || f.page != page || f.times == 0 {
			continue
		}
		if f.times > 0 {
			f.times--
		}
		switch f.kind {
		case "throttle":
			s.throttle(w, EndpointLogs, now, f.wait)
			return
		case "fail":
			writeErr(w, http.StatusInternalServerError, "E0000009", "Your last request took too long to complete.")
			return
		}
	}
	out := []*event{}
	i := start
	for ; i < len(s.events) && len(out) < limit; i++ {
		e := s.events[i]
		if match == nil || eventMatches(match, e) {
			out = append(out, e)
		}
	}
	w.Header().Add("Link", fmt.Sprintf(`<%s>; rel="self"`, s.URL+r.URL.RequestURI()))
	nq := url.Values{}
	for k, v := range q {
		if k != "since" {
			nq[k] = v
		}
	}
	nq.Set("after", encodeAfter(s.logGen, i))
	w.Header().Add("Link", fmt.Sprintf(`<%s/api/v1/logs?%s>; rel="next"`, s.URL, nq.Encode()))
	writeJSON(w, out)
}

// eventMatches evaluates a filter on an event; target.* matches when any
// target matches the whole comparison.
func eventMatches(e expr, ev *event) bool {
	switch x := e.(type) {
	case orExpr:
		return eventMatches(x.l, ev) || eventMatches(x.r, ev)
	case andExpr:
		return eventMatches(x.l, ev) && eventMatches(x.r, ev)
	case cmpExpr:
		if strings.HasPrefix(x.attr, "target.") {
			for _, t := range ev.Target {
				if x.eval(func(a string) (string, bool) {
					if a == "target.id" {
						return t.ID, true
					}
					return t.Type, true
				}) {
					return true
				}
			}
			return false
		}
		return x.eval(func(a string) (string, bool) {
			switch a {
			case "eventType":
				return ev.EventType, true
			case "actor.id":
				return ev.Actor.ID, true
			case "outcome.result":
				return ev.Outcome["result"], true
			}
			return "", false
		})
	}
	return false
}

func encodeAfter(gen, idx int) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d.%d.%s", gen, idx, randHex(4)))
}

func decodeAfter(s string) (gen, idx int, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, 0, false
	}
	parts := strings.Split(string(b), ".")
	if len(parts) != 3 {
		return 0, 0, false
	}
	g, err1 := strconv.Atoi(parts[0])
	i, err2 := strconv.Atoi(parts[1])
	return g, i, err1 == nil && err2 == nil && i >= 0
}

// ---- JSON shapes ----

type userJSON struct {
	ID              string            `json:"id"`
	Status          string            `json:"status"`
	Created         string            `json:"created"`
	Activated       *string           `json:"activated"`
	StatusChanged   *string           `json:"statusChanged"`
	LastLogin       *string           `json:"lastLogin"`
	LastUpdated     string            `json:"lastUpdated"`
	PasswordChanged *string           `json:"passwordChanged"`
	Type            map[string]string `json:"type"`
	Profile         profileJSON       `json:"profile"`
	Credentials     *credentialsJSON  `json:"credentials,omitempty"`
	Links           map[string]any    `json:"_links"`
}

type profileJSON struct {
	FirstName   string  `json:"firstName"`
	LastName    string  `json:"lastName"`
	MobilePhone *string `json:"mobilePhone"`
	SecondEmail *string `json:"secondEmail"`
	Login       string  `json:"login"`
	Email       string  `json:"email"`
	DisplayName string  `json:"displayName,omitempty"`
}

type credentialsJSON struct {
	Password map[string]any    `json:"password"`
	Provider map[string]string `json:"provider"`
}

func optTS(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	v := ts(t)
	return &v
}

func (s *Server) userJSON(u *user, omitCreds bool) userJSON {
	j := userJSON{
		ID: u.id, Status: u.status, Created: ts(u.created), Activated: optTS(u.activated),
		StatusChanged: optTS(u.statusChanged), LastUpdated: ts(u.lastUpdated),
		Type: map[string]string{"id": "oty00000000000000001"},
		Profile: profileJSON{FirstName: u.profile.FirstName, LastName: u.profile.LastName, Login: u.profile.Login,
			Email: u.profile.Email, DisplayName: u.profile.DisplayName},
		Links: map[string]any{"self": map[string]string{"href": s.URL + "/api/v1/users/" + u.id}},
	}
	if !omitCreds {
		j.Credentials = &credentialsJSON{Password: map[string]any{}, Provider: map[string]string{"type": "OKTA", "name": "OKTA"}}
	}
	return j
}

type groupJSON struct {
	ID                    string         `json:"id"`
	Created               string         `json:"created"`
	LastUpdated           string         `json:"lastUpdated"`
	LastMembershipUpdated string         `json:"lastMembershipUpdated"`
	ObjectClass           []string       `json:"objectClass"`
	Type                  string         `json:"type"`
	Profile               map[string]any `json:"profile"`
	Links                 map[string]any `json:"_links"`
}

func (s *Server) groupJSON(g *group) groupJSON {
	oc := "okta:user_group"
	if g.typ == "APP_GROUP" {
		oc = "okta:windows_security_principal"
	}
	return groupJSON{
		ID: g.id, Created: ts(g.created), LastUpdated: ts(g.lastUpdated), LastMembershipUpdated: ts(g.lastMembershipUpdated),
		ObjectClass: []string{oc}, Type: g.typ, Profile: map[string]any{"name": g.name, "description": g.desc},
		Links: map[string]any{
			"users": map[string]string{"href": s.URL + "/api/v1/groups/" + g.id + "/users"},
			"apps":  map[string]string{"href": s.URL + "/api/v1/groups/" + g.id + "/apps"},
		},
	}
}

type appUserJSON struct {
	ID            string         `json:"id"`
	ExternalID    *string        `json:"externalId"`
	Created       string         `json:"created"`
	LastUpdated   string         `json:"lastUpdated"`
	Scope         string         `json:"scope"`
	Status        string         `json:"status"`
	StatusChanged string         `json:"statusChanged"`
	SyncState     string         `json:"syncState"`
	Credentials   map[string]any `json:"credentials"`
	Profile       map[string]any `json:"profile"`
	Embedded      map[string]any `json:"_embedded,omitempty"`
	Links         map[string]any `json:"_links"`
}

func (s *Server) appUserJSON(a *app, u *user, expand bool) appUserJSON {
	j := appUserJSON{
		ID: u.id, Created: ts(u.created), LastUpdated: ts(u.lastUpdated), Scope: s.appScope(a, u.id),
		Status: "ACTIVE", StatusChanged: ts(u.statusChanged), SyncState: "DISABLED",
		Credentials: map[string]any{"userName": u.profile.Login},
		Profile:     map[string]any{},
		Links: map[string]any{
			"app":  map[string]string{"href": s.URL + "/api/v1/apps/" + a.id},
			"user": map[string]string{"href": s.URL + "/api/v1/users/" + u.id},
		},
	}
	if expand {
		j.Embedded = map[string]any{"user": s.userJSON(u, true)}
	}
	return j
}

func omitCredentials(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Content-Type"), "omitCredentials")
}

type errorJSON struct {
	ErrorCode    string              `json:"errorCode"`
	ErrorSummary string              `json:"errorSummary"`
	ErrorLink    string              `json:"errorLink"`
	ErrorID      string              `json:"errorId"`
	ErrorCauses  []map[string]string `json:"errorCauses"`
}

func writeErr(w http.ResponseWriter, status int, code, summary string, causes ...string) {
	e := errorJSON{ErrorCode: code, ErrorSummary: summary, ErrorLink: code, ErrorID: "oae" + randHex(10), ErrorCauses: []map[string]string{}}
	for _, c := range causes {
		e.ErrorCauses = append(e.ErrorCauses, map[string]string{"errorSummary": c})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(e)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func removeSorted(ids []string, id string) []string {
	i := sort.SearchStrings(ids, id)
	if i < len(ids) && ids[i] == id {
		return append(ids[:i], ids[i+1:]...)
	}
	return ids
}
